"""Opt-in: the compiled template gives LF's training ids through vLLM's real chat path.

Runs only when ``LF_TEMPLATE_EXT_VLLM`` names a ``vllm`` executable (vLLM pins its own torch, so
it lives in its own venv; docs/development.md says how to build it). For each template, a model dir
made of the fixture's real tokenizer and a tiny ``config.json`` (the render server loads no
weights) is repaired with `lf-template repair`, served by vLLM's GPU-less render server
(``VLLM_TARGET_DEVICE=cpu vllm launch render DIR``), and checked with
``lf-template check --endpoint``: every probe conversation and every sample of a small dataset
goes through ``POST /tokenize`` with ``messages`` (vLLM's own request validation, message parsing,
template loading, ``chat_template_kwargs`` forwarding and tokenization) and must give LF's ids.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from harness import FIXTURES

from lf_template_ext.cli.main import main as cli_main

VLLM = os.environ.get("LF_TEMPLATE_EXT_VLLM")
pytestmark = pytest.mark.skipif(not VLLM, reason="set LF_TEMPLATE_EXT_VLLM=/path/to/vllm to run vLLM's render server")

STARTUP_SECONDS = 600


def tiny_model_dir(dest: Path, fixture: str, family: str) -> Path:
    """The fixture's tokenizer files and a one-layer config of its family (no weights)."""
    from transformers import AutoTokenizer, LlamaConfig, Qwen2Config, Qwen3Config

    shutil.copytree(FIXTURES / fixture, dest)
    vocab = len(AutoTokenizer.from_pretrained(dest))
    cls = {"qwen2": Qwen2Config, "qwen3": Qwen3Config, "llama": LlamaConfig}[family]
    cls(
        vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, max_position_embeddings=8192,
    ).save_pretrained(dest)  # fmt: skip
    return dest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RenderServer:
    def __init__(self, model_dir: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "VLLM_TARGET_DEVICE": "cpu", "HF_HUB_OFFLINE": "1"}
        self.log = open(log, "w")
        self.proc = subprocess.Popen(
            [VLLM, "launch", "render", str(model_dir), "--port", str(self.port), "--host", "127.0.0.1"],
            stdout=self.log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip

    def wait(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        body = json.dumps({"messages": [{"role": "user", "content": "hi"}]}).encode()
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"vllm render server exited with {self.proc.returncode}; see {self.log.name}")
            try:
                req = urllib.request.Request(self.url + "/tokenize", data=body, headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(req, timeout=5) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(2)
        raise RuntimeError(f"vllm render server did not answer within {STARTUP_SECONDS}s; see {self.log.name}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # its own session: the server and its children only
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


DATASET = [
    {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello!"}], "system": "Be kind."},
    {"conversations": [{"from": "human", "value": "Weather in Rome?"},
                       {"from": "function_call", "value": json.dumps({"name": "get_weather", "arguments": {"city": "Rome"}})},
                       {"from": "observation", "value": "{\"temp\": 30}"}, {"from": "gpt", "value": "Hot: 30."}],
     "tools": json.dumps([{"name": "get_weather", "description": "Weather of a city",
                           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}])},
    {"conversations": [{"from": "human", "value": "a <|im_end|> <|eot_id|> b"}, {"from": "gpt", "value": "c"},
                       {"from": "human", "value": "  spaced  "}, {"from": "gpt", "value": "d\t"}]},
]  # fmt: skip


def run_check(capsys, *args: str) -> tuple[int, dict]:
    capsys.readouterr()
    code = cli_main(["check", *args, "--json"])
    return code, json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(
    "template, fixture, family, thinking",
    [
        ("qwen", "Qwen--Qwen2.5-1.5B-Instruct", "qwen2", None),
        ("llama3", "meta-llama--Meta-Llama-3.1-8B-Instruct", "llama", None),
        ("qwen3", "Qwen--Qwen3-4B", "qwen3", False),
    ],
)
def test_compiled_template_through_vllm_tokenize(tmp_path, capsys, template, fixture, family, thinking):
    model = tiny_model_dir(tmp_path / "model", fixture, family)
    data = tmp_path / "data.json"
    data.write_text(json.dumps(DATASET))
    assert cli_main(["repair", str(model), "--template", template]) == 0
    server = RenderServer(model, tmp_path / "vllm.log")
    try:
        server.wait()
        base = [str(model), "--template", template, "--endpoint", server.url]
        code, probe = run_check(capsys, *base)
        assert code == 0 and probe["summary"]["differs"] == 0, probe["kinds"]
        assert probe["engine"] == "vllm-endpoint" and probe["summary"]["identical"] >= 10
        code, sampled = run_check(capsys, *base, "--dataset", str(data))
        assert code == 0 and sampled["summary"]["differs"] == 0, sampled["kinds"]
        if thinking is not None:
            # trained with enable_thinking=false, served with the compiled default (true) unless the
            # request says otherwise: vLLM must forward chat_template_kwargs to the template
            off = ["--enable-thinking", "false"]
            code, without = run_check(capsys, *base, *off)
            assert code == 1 and without["summary"]["differs"] > 0
            kwargs = json.dumps({"enable_thinking": thinking})
            code, with_kwargs = run_check(capsys, *base, *off, "--chat-template-kwargs", kwargs)
            assert code == 0 and with_kwargs["summary"]["differs"] == 0, with_kwargs["kinds"]
            code, data_kwargs = run_check(capsys, *base, *off, "--chat-template-kwargs", kwargs, "--dataset", str(data))
            assert code == 0 and data_kwargs["summary"]["differs"] == 0, data_kwargs["kinds"]
    finally:
        server.stop()


def test_whole_trained_and_exported_dir_through_vllm_tokenize(tmp_path, capsys):
    """Issue 14: a tiny Qwen2.5 trained (`llamafactory-cli train`) and exported (`llamafactory-cli export`,
    LoRA merged) with `template_ext_tokenize: whole`, the export dir served by vLLM's render server as it is
    (no repair: the export wrote its files). `check --endpoint` takes whole mode's ids as the reference (the
    record) and vLLM's /tokenize gives exactly those on the probe corpus and a small dataset, none
    boundary-only where slot-wise ids would be; and the four tool conversations, tools sent in several client
    key orders (vLLM's own tool models re-serialize them), equal whole mode's training ids too."""
    import dataclasses

    from test_tool_order import whole_tool_cases
    from test_whole import train_and_export_whole, whole_prepared

    from lf_template_ext.model.corpus import probe_corpus
    from lf_template_ext.render.endpoint import VLLMEndpoint
    from lf_template_ext.verifier.probe import reference_ids

    _, merged = train_and_export_whole(tmp_path)
    data = tmp_path / "data.json"
    data.write_text(json.dumps(DATASET))
    whole = whole_prepared(merged)
    # the check can fail: slot-wise ids (LF's default) differ from whole mode's on the whitespace probe
    spaced = next(c for c in probe_corpus() if c["id"] == "whitespace")
    assert reference_ids(whole, spaced) != reference_ids(dataclasses.replace(whole, tokenize="slots"), spaced)
    server = RenderServer(merged, tmp_path / "vllm.log")
    try:
        server.wait()
        code, probe = run_check(capsys, str(merged), "--endpoint", server.url)
        summary = probe["summary"]
        assert code == 0 and summary["differs"] == summary["boundary_only"] == 0, probe["kinds"]
        assert probe["engine"] == "vllm-endpoint" and probe["tokenize"] == "whole" and summary["identical"] >= 14, summary
        code, sampled = run_check(capsys, str(merged), "--endpoint", server.url, "--dataset", str(data))
        assert code == 0 and sampled["summary"]["identical"] == len(DATASET), sampled["summary"]
        keys, requests, want = whole_tool_cases(whole)
        got = VLLMEndpoint(server.url).ids_batch(requests)
        for key, ids, expected in zip(keys, got, want, strict=True):
            assert ids == expected, (key, ids if isinstance(ids, Exception) else whole.tokenizer.decode(ids))
        assert len(keys) == 4 * 4 * 2
    finally:
        server.stop()


# -- vLLM's own content-format detection --------------------------------------------------------------

CONTENT_FORMAT_TEMPLATES = ("qwen", "qwen3", "llama3", "mistral", "glm4", "default", "gemma3", "deepseekr1", "chatglm3")
MULTIMODAL = ("gemma3",)


def test_vllm_detects_the_content_format(tmp_path):
    """vLLM decides "string" vs "openai" content by looking for loops over ``message.content`` in the
    template (``vllm/renderers/hf.py`` ``_detect_content_format``); run that very function on compiled
    templates (with tools, thinking, Llama2-style and dict slots) in vLLM's own interpreter."""
    from harness import harness_tokenizer

    import lf_template_ext as lte

    paths = {}
    for name in CONTENT_FORMAT_TEMPLATES:
        p = tmp_path / f"{name}.jinja"
        p.write_text(lte.compile_jinja(name, harness_tokenizer(name)[0]), encoding="utf-8")
        paths[name] = str(p)
    vllm_python = str(Path(VLLM).with_name("python"))
    script = (
        "import json, sys\n"
        "from vllm.renderers.hf import _detect_content_format\n"
        "paths = json.loads(sys.argv[1])\n"
        "print(json.dumps({n: _detect_content_format(open(p).read(), default='openai') for n, p in paths.items()}))\n"
    )
    proc = subprocess.run([vllm_python, "-c", script, json.dumps(paths)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    # a template with an LF multimodal plugin (gemma3) loops over content parts: vLLM passes them ("openai"),
    # so media placeholders land where the client put the parts (docs/multimodal.md); the others stay "string"
    assert found == {n: "openai" if n in MULTIMODAL else "string" for n in CONTENT_FORMAT_TEMPLATES}
    # the check can fail: a template that loops over content parts is "openai"
    loop = "{% for m in messages %}{% for part in m['content'] %}{{ part['text'] }}{% endfor %}{% endfor %}"
    p = tmp_path / "loop.jinja"
    p.write_text(loop)
    proc = subprocess.run([vllm_python, "-c", script, json.dumps({"loop": str(p)})], capture_output=True, text=True, timeout=600)
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"loop": "openai"}, proc.stderr[-2000:]


# -- a VLM through vLLM's own multimodal path (issue 12) ----------------------------------------------


def qwen25_vl_model_dir(dest: Path) -> Path:
    """Qwen2.5-VL's processor files (tests/processor_fixtures.py: the Qwen2.5 tokenizer + Qwen2.5-VL's
    preprocessor/processor/chat-template files) and a one-layer ``Qwen2_5_VLConfig`` with the real media
    token ids (the render server builds the processor from the config; it loads no weights), plus the
    training record a ``qwen2_vl`` fine-tune with LF's default media arguments carries."""
    from processor_fixtures import QWEN2_5_VL, processor_dir
    from transformers import Qwen2_5_VLConfig

    from lf_template_ext.model.media_args import MediaArgs

    processor_dir(QWEN2_5_VL, dest)
    Qwen2_5_VLConfig(
        text_config={"vocab_size": 152064, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "num_key_value_heads": 1, "max_position_embeddings": 8192},
        vision_config={"depth": 1, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64},
        image_token_id=151655, video_token_id=151656, vision_start_token_id=151652, vision_end_token_id=151653,
    ).save_pretrained(dest)  # fmt: skip
    (dest / "lf_template_ext.json").write_text(
        json.dumps({"template": "qwen2_vl", "options": {}, "media": MediaArgs().to_record(), "mm_plugin": "qwen2_vl"})
    )
    return dest


def data_url(image) -> str:
    import base64
    import io

    buf = io.BytesIO()
    image.save(buf, format="PNG")  # lossless: the server decodes the very pixels sent
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def vllm_tokenize(url: str, messages: list, add_generation_prompt: bool) -> list[int]:
    """vLLM's ``/tokenize`` with chat messages whose images are OpenAI ``image_url`` parts (data URLs)."""
    wire = []
    for m in messages:
        content = m["content"]
        if isinstance(content, list):
            content = [
                {"type": "image_url", "image_url": {"url": data_url(p["image"])}} if p["type"] == "image" else p
                for p in content
            ]
        wire.append({**m, "content": content})
    body = {"messages": wire, "add_generation_prompt": add_generation_prompt, "add_special_tokens": False}
    req = urllib.request.Request(url + "/tokenize", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=300) as resp:
            return [int(t) for t in json.loads(resp.read())["tokens"]]
    except urllib.error.HTTPError as e:
        raise AssertionError(f"vLLM refused the request: {e.code} {e.read()[:500]!r}") from None


def test_qwen25_vl_images_through_vllm_tokenize(tmp_path):
    """Issue 12: a Qwen2.5-VL dir repaired for ``qwen2_vl`` (compiled template with media parts, the processor
    cap in preprocessor_config.json) served by vLLM's render server; conversations with images generated here
    go through ``/tokenize`` as OpenAI content parts, and vLLM's own path (content-format detection, media
    parsing, the template, the HF processor's expansion) gives LF's training ids, expansion included: a small
    image as sent, a 2000x1500 one after the client resize SERVING.md gives (``resize_like_training``).
    Sent without that resize, the large image is another <|image_pad|> count (the numbers are printed)."""
    from lf_template_ext import resize_like_training
    from lf_template_ext.lf import compat
    from lf_template_ext.lf import media as lf_media
    from lf_template_ext.lf.media import MediaInputs
    from lf_template_ext.model.options import TemplateOptions
    from lf_template_ext.verifier.media import openai_messages, probe_image
    from lf_template_ext.verifier.reference import TrainingReference

    model = qwen25_vl_model_dir(tmp_path / "model")
    # LF's reference uses the processor as training loaded it: the dir before repair
    processor = lf_media.load_processor(str(model))
    prepared = compat.prepare("qwen2_vl", processor.tokenizer, TemplateOptions())
    reference = TrainingReference(prepared, lf_media.training_processor(processor, prepared.tokenizer, None))
    pad = prepared.tokenizer.convert_tokens_to_ids("<|image_pad|>")

    assert cli_main(["repair", str(model), "--template", "qwen2_vl"]) == 0
    assert json.loads((model / "preprocessor_config.json").read_text())["max_pixels"] == 698_544
    assert "resize_like_training" in (model / "SERVING.md").read_text()

    small, large = probe_image(56, 56), probe_image(2000, 1500, seed=2)
    client_large = resize_like_training(large, str(model))
    cases = [  # (id, LF's messages, system, the image LF trained on, the image the client sends)
        ("small", [{"role": "user", "content": "<image>What is in the picture?"}, {"role": "assistant", "content": "Stripes."}],
         "You describe images tersely.", small, small),
        ("large-resized", [{"role": "user", "content": "Look: <image> Where is the box?"}, {"role": "assistant", "content": "Top left."}],
         None, large, client_large),
        ("later-turn", [{"role": "user", "content": "Hello."}, {"role": "assistant", "content": "Hi! Send a picture."},
                        {"role": "user", "content": "<image>Here it is."}, {"role": "assistant", "content": "Nice."}],
         None, small, small),
    ]  # fmt: skip
    server = RenderServer(model, tmp_path / "vllm.log")
    try:
        server.wait()
        counts = {}
        for case_id, messages, system, trained, sent in cases:
            expected, prompt, _ = reference.encode_media((messages, system, None), MediaInputs(images=[trained]))
            wire = openai_messages(messages, system, MediaInputs(images=[sent]))
            full = vllm_tokenize(server.url, wire, False)
            gen = vllm_tokenize(server.url, wire[:-1], True)
            assert full == expected, (case_id, prepared.tokenizer.decode(full)[:2000], prepared.tokenizer.decode(expected)[:2000])
            assert gen == prompt, (case_id, prepared.tokenizer.decode(gen)[:2000], prepared.tokenizer.decode(prompt)[:2000])
            counts[case_id] = expected.count(pad)
        # the check can fail: the large image sent as it is (the repaired cap alone) is another count
        messages, system = cases[1][1], cases[1][2]
        raw = vllm_tokenize(server.url, openai_messages(messages, system, MediaInputs(images=[large])), False)
        print(
            f"\nvLLM /tokenize, Qwen2.5-VL: LF {counts}; 2000x1500 sent without the client resize: "
            f"{raw.count(pad)} <|image_pad|> (LF {counts['large-resized']}, client image {client_large.width}x{client_large.height})"
        )
        assert counts["small"] == 4 and counts["large-resized"] == 768
        assert raw.count(pad) != counts["large-resized"] and raw != reference.encode_media((messages, system, None), MediaInputs(images=[large]))[0]
    finally:
        server.stop()
