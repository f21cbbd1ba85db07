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
