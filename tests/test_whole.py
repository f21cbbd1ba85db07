"""``template_ext_tokenize: whole`` (issue 14 "Train as served"): LF templates trained on whole-string ids.

In CI: a few templates (Qwen's ChatML with tools, Llama-3 with tools, alpaca's plain text, Qwen3's reasoning
rules, ChatGLM3's ``efficient_eos``) on the probe corpus plus a corpus of boundary cases
(``tests/whole_corpus.py``), through LF's real supervised processor, its batch path, the generation prompt
of LF's chat, and one real ``llamafactory-cli train`` + ``lf-template check``. Every LF template:
``LF_TEMPLATE_EXT_WHOLE_SWEEP=1`` (the *whole* column of docs/coverage.md).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from harness import harness_tokenizer
from whole_corpus import BOUNDARY, check_template, corpus_conversations

from lf_template_ext.lf import compat as lf_compat
from lf_template_ext.lf import whole_template
from lf_template_ext.model import messages as msgmap
from lf_template_ext.model.corpus import probe_corpus
from lf_template_ext.model.options import TemplateOptions
from lf_template_ext.verifier.probe import reference_ids

VARIANTS = [
    {"train_on_prompt": False, "mask_history": False},
    {"train_on_prompt": True, "mask_history": False},
    {"train_on_prompt": False, "mask_history": True},
]


PLAIN, ON_PROMPT, MASK = VARIANTS
#: CI's share (the sweep runs every template with every variant): each LF option where it matters most
CI_CASES = {
    "qwen": VARIANTS,  # ChatML, tools
    "llama3": [PLAIN],  # tools (date header), a 128k vocabulary
    "alpaca": [PLAIN, ON_PROMPT],  # plain text slots, eos inside the answer slot
    "qwen3": [PLAIN, MASK],  # reasoning: empty thoughts, history thoughts dropped with mask_history
    "chatglm3": [PLAIN, MASK],  # efficient_eos (LF refuses train_on_prompt with it)
}


@pytest.mark.parametrize("name", sorted(CI_CASES))
def test_training_ids_are_the_compiled_template_tokenized_whole(name):
    tok, _ = harness_tokenizer(name)
    variants = CI_CASES[name]
    result = check_template(name, tok, data_variants=variants)
    assert not result["failures"], result["failures"][:5]
    compilations = len({v["mask_history"] for v in variants})
    assert result["exact"] == result["cases"] >= compilations * len(BOUNDARY)


def _wrapped(name: str, options: TemplateOptions = TemplateOptions()):
    tok, _ = harness_tokenizer(name)
    prep = lf_compat.prepare(name, tok, options)
    return prep, whole_template.wrap(prep.template, prep.tokenizer, SimpleNamespace(template=name, **options.to_dict()))


def test_whole_mode_differs_from_slots_where_lf_splits_a_merge():
    """The point of the mode: a reply starting with newlines is one merged token whole, two pieces in LF's slots."""
    prep, wrapped = _wrapped("qwen")
    msgs = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "\n\nHello"}]
    slots = [i for s, t in lf_compat.encode_training(prep, msgs, None, None) for i in s + t]
    whole = [i for s, t in wrapped.encode_multiturn(prep.tokenizer, msgs, None, None) for i in s + t]
    text = prep.tokenizer.apply_chat_template(msgmap.from_lf(msgs)[0], chat_template=wrapped._whole_jinja, tokenize=False)
    assert whole == prep.tokenizer.encode(text, add_special_tokens=False) != slots


def test_the_batch_path_equals_lfs_row_by_row_loop():
    """LF's ``preprocess_dataset`` (patched: one batched tokenization) gives what LF's own loop gives row by row."""
    import llamafactory.data.processor.supervised as supervised

    from lf_template_ext.lf.plugin import native_processors

    native_processors.install(supervised)
    prep, wrapped = _wrapped("qwen")
    rows = {k: [] for k in ("_prompt", "_response", "_system", "_tools", "_images", "_videos", "_audios")}
    for conv in corpus_conversations():
        try:
            lf = msgmap.to_lf(conv["messages"], conv.get("tools"))
            lf_compat.encode_training(prep, lf.messages, lf.system, lf.tools)
        except Exception:
            continue
        rows["_prompt"].append(lf.messages[:-1])
        rows["_response"].append(lf.messages[-1:])
        rows["_system"].append(lf.system)
        rows["_tools"].append(lf.tools)
        for k in ("_images", "_videos", "_audios"):
            rows[k].append(None)
    data = SimpleNamespace(cutoff_len=1 << 20, train_on_prompt=False, mask_history=False, dataset="corpus")
    proc = supervised.SupervisedDatasetProcessor(template=wrapped, tokenizer=prep.tokenizer, processor=None, data_args=data)
    wrapped.__dict__.pop("_lfx_row_encodes", None)
    batch = proc.preprocess_dataset(rows)
    assert len(batch["input_ids"]) == len(rows["_prompt"]) > 30
    assert "_lfx_row_encodes" not in wrapped.__dict__  # every row answered from the batch's one tokenization
    for i in range(len(rows["_prompt"])):
        one = proc._encode_data_example(
            rows["_prompt"][i], rows["_response"][i], rows["_system"][i], rows["_tools"][i], [], [], []
        )
        assert (batch["input_ids"][i], batch["labels"][i]) == one, i


@pytest.mark.parametrize("name", ["qwen", "qwen3"])
def test_chat_prompt_is_the_engines_generation_prompt(name):
    """LF's chat/API (``encode_oneturn`` with an empty answer) feeds the compiled generation prompt, tokenized alone."""
    prep, wrapped = _wrapped(name)
    tok = prep.tokenizer
    for conv in corpus_conversations():
        msgs = conv["messages"]
        if msgs[-1]["role"] != "assistant" or "enable_thinking" in conv:
            continue
        try:
            lf = msgmap.to_lf(msgs, conv.get("tools"), thought_words=tuple(prep.template.thought_words))
        except Exception:
            continue
        blank = lf.messages[:-1] + [{"role": "assistant", "content": ""}]
        prompt, _ = wrapped.encode_oneturn(tok, blank, lf.system, lf.tools)
        text = tok.apply_chat_template(
            msgs[:-1], tools=conv.get("tools"), chat_template=wrapped._whole_jinja, add_generation_prompt=True, tokenize=False
        )
        assert prompt == tok.encode(text, add_special_tokens=False), conv["id"]
        # a pairwise/KTO sample: the same generation prompt with LF's answer after it, tokenized whole and cut
        p_ids, r_ids = wrapped.encode_oneturn(tok, lf.messages, lf.system, lf.tools)
        answer = wrapped.whole_pieces(tok, lf.messages, lf.system, lf.tools)[-1][1]
        assert p_ids + r_ids == tok.encode(text + answer, add_special_tokens=False), conv["id"]
        assert tok.decode(r_ids).endswith(tok.decode(tok.encode(answer, add_special_tokens=False))[-3:]), conv["id"]


def test_a_bad_tokenize_value_names_the_option(monkeypatch):
    from lf_template_ext.native.options import NativeOptionError
    from lf_template_ext.native.whole import tokenize_mode

    monkeypatch.setenv("LF_TEMPLATE_EXT_TOKENIZE", "wholes")
    with pytest.raises(NativeOptionError, match="LF_TEMPLATE_EXT_TOKENIZE.*slots.*whole"):
        tokenize_mode()
    monkeypatch.setenv("LF_TEMPLATE_EXT_TOKENIZE", "whole")
    assert tokenize_mode() == "whole"
    monkeypatch.delenv("LF_TEMPLATE_EXT_TOKENIZE")
    assert tokenize_mode() == "slots"


def export_merged(tmp_path: Path, adapter: Path, base: Path, **overrides) -> tuple[Path, subprocess.CompletedProcess]:
    """A real `llamafactory-cli export` (LoRA merged into ``base``) of a dir trained by ``test_hook._train``, with
    the extension on: a servable dir (weights, config.json), the export's own files rewritten by the hook."""
    from tiny_models import write_yaml

    export_dir = tmp_path / "merged"
    config = {
        "model_name_or_path": str(base), "adapter_name_or_path": str(adapter), "template": "qwen",
        "finetuning_type": "lora", "export_dir": str(export_dir), "export_size": 1, "export_device": "cpu",
        "infer_dtype": "float32",
    }  # fmt: skip
    config.update(overrides)
    cfg = write_yaml(tmp_path / "export.yaml", config)
    env = dict(os.environ, LF_TEMPLATE_EXT="1", HF_HUB_OFFLINE="1", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "llamafactory-cli"), "export", str(cfg)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    return export_dir, proc


def train_and_export_whole(tmp_path: Path) -> tuple[Path, Path]:
    """`llamafactory-cli train` then `export` of a tiny Qwen2.5, both with `template_ext_tokenize: whole`.
    Returns (the LoRA output dir, the merged export dir)."""
    from test_hook import _train

    out, _ = _train(tmp_path, template_ext_tokenize="whole")
    merged, _ = export_merged(tmp_path, out, tmp_path / "base", template_ext_tokenize="whole")
    return out, merged


def whole_prepared(model_dir: Path):
    """The dir's template prepared as the commands prepare it, its reference whole mode's ids (from the record)."""
    import dataclasses

    from lf_template_ext.modeldir.record import read_record, trained_tokenize
    from lf_template_ext.modeldir.tokenizer import load_tokenizer

    record = read_record(str(model_dir))
    options = TemplateOptions.from_mapping(record["options"])
    snap = lf_compat.snapshot(record["template"], load_tokenizer(str(model_dir)), options, trained_with=str(model_dir))
    return dataclasses.replace(snap.prepared, tokenize=trained_tokenize(str(model_dir)))


def _check_json(capsys, *args: str) -> tuple[int, dict]:
    """`lf-template check ... --json` in this process (LF and transformers are loaded once for the whole test)."""
    from lf_template_ext.cli.main import main as cli_main

    capsys.readouterr()
    code = cli_main(["check", *args, "--json"])
    captured = capsys.readouterr()
    try:
        return code, json.loads(captured.out)
    except ValueError:
        raise AssertionError(f"check {args} exited {code}: {captured.out[-2000:]} {captured.err[-2000:]}") from None


@pytest.mark.slow
def test_train_whole_records_it_and_check_compares_whole_ids(tmp_path, capsys):
    """A real `llamafactory-cli train` with `template_ext_tokenize: whole`: the record says so, and `check`
    takes whole mode's ids as what training saw (its report says `tokenize: whole`) and exits 0. Then a real
    `llamafactory-cli export` (merge) with the switch, and the exported dir through the engines' own code."""
    out, merged = train_and_export_whole(tmp_path)
    record = json.loads((out / "lf_template_ext.json").read_text())
    assert record["template"] == "qwen" and record["tokenize"] == "whole"
    assert json.loads((out / "checkpoint-1" / "lf_template_ext.json").read_text())["tokenize"] == "whole"
    code, report = _check_json(capsys, str(out))
    assert code == 0, report["summary"]
    assert report["tokenize"] == "whole" and report["summary"]["identical"] > 0, report["summary"]
    assert json.loads((out / "alignment_report.json").read_text())["tokenize"] == "whole"
    assert "macro lf_cjson(" in (out / "chat_template.jinja").read_text()  # tools in the canonical order

    # the merged export: a servable dir (config.json, weights) whose record keeps whole mode as the reference
    exported = json.loads((merged / "lf_template_ext.json").read_text())
    assert exported["tokenize"] == "whole" and exported["source"] == "export", exported
    assert (merged / "config.json").is_file() and (merged / "model.safetensors").is_file()
    report = json.loads((merged / "alignment_report.json").read_text())  # the export's own check, whole reference
    assert report["tokenize"] == "whole" and report["summary"]["identical"] >= 28, report["summary"]
    assert report["summary"]["boundary_only"] == 0 and report["summary"]["differs"] == 0, report["summary"]
    whole = whole_prepared(merged)
    # the check can fail: on this corpus slot-wise ids (LF's default) differ from whole mode's somewhere
    slots = dataclasses.replace(whole, tokenize="slots")
    assert any(reference_ids(whole, c) != reference_ids(slots, c) for c in probe_corpus() if c["id"] == "whitespace")

    # Ollama's own template execution (render/ollama_render) of the Modelfile SERVING.md says to write
    # (`lf-template emit DIR --engine ollama`; the one LF's export wrote is LF's own, without tools), tokenized as
    # Ollama does: whole mode's ids on every probe Ollama can take, not boundary-only. The one difference is the
    # declared limitation of Ollama's format: LF replaces `{{idx}}` in a message, a Go template cannot.
    assert "tool definitions were trained in that same sorted order" in (merged / "SERVING.md").read_text()
    code, report = _check_json(capsys, str(merged), "--engine", "ollama")
    assert report["tokenize"] == "whole", report  # the reference the engine is compared with
    assert report["summary"]["boundary_only"] == 0 and report["summary"]["identical"] >= 13, report["summary"]
    differs = [c for c in report["cases"] if c["status"] != "identical"]
    assert [c["first_diff"]["actual_tokens"][1] for c in differs] == ["idx"], differs
    modelfile = report["artifact"]["text"]

    # LMDeploy's JSON chat template (`check --engine lmdeploy`: LMDeploy's ChatTemplateConfig.from_json,
    # messages2prompt and tokenizer): whole mode's ids on every conversation the JSON can carry; the rest are
    # the JSON's declared limits (tools refused, `{{idx}}`), none boundary-only
    code, report = _check_json(capsys, str(merged), "--engine", "lmdeploy")
    summary = report["summary"]
    assert report["tokenize"] == "whole", report
    assert summary["boundary_only"] == 0 and summary["identical"] >= 8, summary
    for case in (c for c in report["cases"] if c["status"] != "identical"):
        assert "UnsupportedRequest" in json.dumps(case) or case["first_diff"]["actual_tokens"][1] == "idx", case

    # LMDeploy's server path as SERVING.md serves the dir (`--chat-template hf`: request models, the dir's Jinja,
    # LMDeploy's tokenizer): every probe conversation, tools included, equals whole mode's ids
    from test_tool_order import LMDeployServer, assert_trained_dir_serves_whole_tool_ids

    server = LMDeployServer.serving(merged)
    compared = 0
    for conv in probe_corpus():
        if "enable_thinking" in conv:
            continue
        try:
            full, prompt = reference_ids(whole, conv)
        except Exception:  # noqa: BLE001 - a conversation LF cannot encode for this template: not trained
            continue
        msgs = conv["messages"]
        assert server.ids(msgs, conv.get("tools")) == full, conv["id"]
        assert server.ids(msgs[:-1], conv.get("tools")) == prompt, conv["id"]
        compared += 1
    assert compared >= 12
    # the four tool conversations, tools in several client key orders, through LMDeploy's server path and
    # Ollama's renderer (tests/test_tool_order.py)
    assert assert_trained_dir_serves_whole_tool_ids(merged, whole, modelfile) == 4 * 4 * 2


@pytest.mark.skipif(os.environ.get("LF_TEMPLATE_EXT_WHOLE_SWEEP") != "1", reason="every LF template (15-25 min): LF_TEMPLATE_EXT_WHOLE_SWEEP=1")
@pytest.mark.parametrize("name", lf_compat.template_names())
def test_every_template_whole(name):
    """The *whole* column of docs/coverage.md: re-run, and compare with the committed results."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from whole_sweep import cell, sweep_one, whole_cells

    result = sweep_one(name)
    assert not result["failures"], result["failures"][:5]
    assert whole_cells().get(name) == cell(result), "docs/coverage-whole.json is stale: run scripts/whole_sweep.py"


# -- template: native with a chosen chat template (template_ext_chat_template) ------------------------------


def _native_with(monkeypatch, value: str, tok):
    from lf_template_ext.lf import native_template

    native_template.register()
    monkeypatch.setenv("LF_TEMPLATE_EXT_CHAT_TEMPLATE", value)
    tmod = lf_compat.template_module()
    fix = getattr(tmod.get_template_and_fix_tokenizer, "__wrapped__", tmod.get_template_and_fix_tokenizer)
    return fix(tok, lf_compat._data_args("native", TemplateOptions()))


def test_native_with_lf_name_trains_a_base_tokenizer_on_the_compiled_template(monkeypatch):
    """`template: native` + `template_ext_chat_template: lf:qwen` on a tokenizer with no chat template: native mode
    renders LF's compiled qwen template, so training ids are that rendering tokenized whole."""
    tok, _ = harness_tokenizer("qwen")
    tok = lf_compat.copy_tokenizer(tok)
    tok.chat_template = None
    template = _native_with(monkeypatch, "lf:qwen", tok)
    jinja = whole_template.compiled_template("qwen", tok, TemplateOptions())
    assert tok.chat_template == jinja
    for conv in corpus_conversations()[:12]:
        lf = msgmap.to_lf(conv["messages"], conv.get("tools"))
        ids = [i for s, t in template.encode_multiturn(tok, lf.messages, lf.system, lf.tools) for i in s + t]
        text = tok.apply_chat_template(conv["messages"], tools=conv.get("tools"), tokenize=False)
        assert ids == tok.encode(text, add_special_tokens=False), conv["id"]


def test_native_with_a_template_file_and_its_errors(monkeypatch, tmp_path):
    from lf_template_ext.native.mode import NativeModeError

    tok, _ = harness_tokenizer("qwen")
    tok = lf_compat.copy_tokenizer(tok)
    path = tmp_path / "mine.jinja"
    path.write_text("{% for m in messages %}<{{ m.role }}>{{ m.content }}\n{% endfor %}")
    _native_with(monkeypatch, str(path), tok)
    assert tok.chat_template == path.read_text()
    with pytest.raises(NativeModeError, match="LF_TEMPLATE_EXT_CHAT_TEMPLATE: cannot read the chat template file.*missing"):
        _native_with(monkeypatch, str(tmp_path / "missing.jinja"), tok)
    with pytest.raises(Exception, match="lf:qwn: no such LF template"):
        _native_with(monkeypatch, "lf:qwn", tok)


# -- speed: the plain-Jinja mirror of the engines' render (native.whole.PlainRender) -------------------------


@pytest.mark.parametrize("name", ["qwen", "qwen3"])
def test_the_plain_render_is_the_engines_render(name):
    """Whole mode renders compiled templates with plain Jinja: the engines' (sandboxed) text, errors included.

    Two templates in CI (tools, reasoning); every LF template was compared once on this corpus (docs/native-mode.md).
    """
    from lf_template_ext.native.render import ChatRenderer
    from lf_template_ext.native.whole import PlainRender

    prep, wrapped = _wrapped(name)
    renderer = ChatRenderer(prep.tokenizer, enable_thinking=None, chat_template=wrapped._whole_jinja, cache=False)
    plain = PlainRender.for_renderer(renderer)
    assert plain is not None
    rendered = 0
    for conv in corpus_conversations():
        for agp in (False, True):
            try:
                real = renderer._render(conv["messages"], conv.get("tools"), agp)
            except Exception:
                real = None
            assert plain.render(conv["messages"], conv.get("tools"), agp) == real, (conv["id"], agp)
            rendered += real is not None
    assert rendered > 40


def test_a_plain_render_that_differs_turns_itself_off(caplog):
    """The proof on each batch's first sample is real: a mirror that renders otherwise is dropped, ids unchanged."""
    from lf_template_ext.native.mode import sample_name
    from lf_template_ext.native.whole import PlainRender

    prep, wrapped = _wrapped("qwen")
    tok = prep.tokenizer
    samples, names = [], []
    for conv in corpus_conversations()[:6]:
        lf = msgmap.to_lf(conv["messages"], conv.get("tools"))
        samples.append(wrapped.whole_sample(tok, lf.messages, lf.system, lf.tools))
        names.append(sample_name(0, lf.messages))
    encoder = wrapped._encoder(tok)
    assert encoder._plain is not None
    want = encoder.pairs_batch(samples, names)
    assert encoder._plain is not None  # the true mirror passed its proof
    encoder._plain = PlainRender(wrapped._whole_jinja.replace("<|im_end|>\\n", "<|im_end|>\\n\\n"), {})
    with caplog.at_level("WARNING", logger="llamafactory.lf_template_ext.native"):
        assert encoder.pairs_batch(samples, names) == want
    assert encoder._plain is None and "plain Jinja rendered a sample differently" in caplog.text
