"""LF's v1 path (``USE_V1=1 llamafactory-cli sft|merge``, LF 0.9.5) with the switch on: docs/lf-versions.md "v1 path".

Real runs: v1's own trainer and merge on a tiny Qwen2 model with the Qwen3 tokenizer fixture, on CPU (a few
seconds each); the reference of every check is v1's renderer itself, called live.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from harness import FIXTURES
from tiny_models import build_tiny_model, write_yaml

QWEN3 = "Qwen--Qwen3-4B"
BIN = Path(sys.executable).parent

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("v1_path")]


def _run(cmd: list[str], root: Path, *, switch: bool) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", USE_V1="1", LF_TEMPLATE_EXT="1" if switch else "0")
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=root, timeout=600)


def test_jinja_twins_render_what_v1_renders():
    """Each covered renderer's Jinja twin is token-identical to the installed v1 renderer on the probe corpus, and
    the check can fail: the Qwen3 model's own chat template differs from every v1 renderer."""
    from transformers import AutoTokenizer

    from lf_template_ext.lf import v1
    from lf_template_ext.workflows.v1 import probe_report

    tok = AutoTokenizer.from_pretrained(FIXTURES / QWEN3)
    for name in v1.COVERED:
        twin = probe_report(name, tok, v1.JINJA[name]).summary
        assert twin["differs"] == 0 and twin["boundary_only"] == 0 and twin["identical"] >= 14, (name, twin)
        own = probe_report(name, tok, tok.chat_template).summary
        assert own["differs"] > 0, (name, own)
    # chatml renders text only: v1 itself refuses tool calls and reasoning, reported as unsupported
    assert probe_report("chatml", tok, v1.JINJA["chatml"]).summary["unsupported"] > 0


def test_v1_sft_and_merge_with_the_switch(tmp_path):
    """sft (LoRA) with the switch prints the start-up line and records the renderer; merge with the switch serves
    the renderer's Jinja twin (v1's merge alone keeps the base model's Qwen3 template: see the next test)."""
    root = tmp_path
    base = build_tiny_model(root / "base", QWEN3)
    data = root / "data.jsonl"
    rows = [
        [("user", "Hi there"), ("assistant", "Hello!")],
        [("system", "Be brief."), ("user", "2+2?"), ("assistant", "4")],
    ]
    data.write_text("".join(
        json.dumps({"messages": [{"role": r, "content": [{"type": "text", "value": v}]} for r, v in row]}) + "\n" for row in rows
    ))  # fmt: skip
    common = {"model": str(base), "template": "qwen3_nothink"}
    sft = write_yaml(root / "sft.yaml", {
        **common, "train_dataset": str(data), "output_dir": str(root / "lora"),
        "peft_config": {"name": "lora", "r": 2, "target_modules": "all"}, "micro_batch_size": 1, "max_steps": 1,
        "bf16": False, "batching_workers": 0, "enable_activation_checkpointing": False, "cutoff_len": 64,
    })  # fmt: skip
    proc = _run([str(BIN / "llamafactory-cli"), "sft", str(sft)], root, switch=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "lf-template-ext: LF's v1 path (USE_V1=1): renderers chatml, qwen3, qwen3_nothink are covered" in proc.stderr
    record = json.loads((root / "lora" / "lf_template_ext.json").read_text())
    assert record["lf_path"] == "v1" and record["template"] == "qwen3_nothink" and record["cutoff_len"] == 64
    assert record["model_name_or_path"] == str(base)

    merged = root / "merged"
    cfg = write_yaml(root / "merge.yaml", {
        **common, "peft_config": {"name": "lora", "adapter_name_or_path": str(root / "lora"), "export_dir": str(merged)},
    })  # fmt: skip
    proc = _run([str(BIN / "llamafactory-cli"), "merge", str(cfg)], root, switch=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "28 identical, 0 boundary-only, 0 differ" in proc.stderr, proc.stderr[-3000:]
    from lf_template_ext.lf.v1 import JINJA

    assert (merged / "chat_template.jinja").read_text() == JINJA["qwen3_nothink"]
    assert json.loads((merged / "tokenizer_config.json").read_text())["chat_template"] == JINJA["qwen3_nothink"]
    report = json.loads((merged / "alignment_report.json").read_text())
    assert report["lf_path"] == "v1" and report["summary"]["differs"] == 0 and report["stop_ids"]["missing"] == []
    rec = json.loads((merged / "lf_template_ext.json").read_text())
    assert rec["source"] == "merge" and rec["template"] == "qwen3_nothink" and rec["lf_path"] == "v1"


def _v1_dir(tmp_path: Path, template: str) -> Path:
    """What v1's merge leaves for the engines (measured: the base model's tokenizer files, its own Qwen3 chat
    template) plus the record a run with the switch writes; no weights (check and repair read the tokenizer)."""
    from lf_template_ext.modeldir.record import make_v1_record

    d = tmp_path / "model"
    shutil.copytree(FIXTURES / QWEN3, d)
    (d / "lf_template_ext.json").write_text(json.dumps(make_v1_record(template, "0.9.5", None, None)))
    return d


def test_check_and_repair_a_v1_dir(tmp_path, capsys):
    """check: exit 1 (Qwen3's own template is not v1's qwen3_nothink); repair: exit 0 with a backup; check: exit 0."""
    from lf_template_ext.cli.main import main

    d = _v1_dir(tmp_path, "qwen3_nothink")
    assert main(["check", str(d)]) == 1
    out = capsys.readouterr().out
    assert "LF v1 renderer 'qwen3_nothink'" in out and "MISALIGNED" in out and " differ," in out
    assert main(["repair", str(d)]) == 0
    assert (d / ".lf-template-backups").is_dir()
    capsys.readouterr()
    assert main(["check", str(d)]) == 0
    assert "ALIGNED: engines render what v1 training saw" in capsys.readouterr().out
    assert main(["repair", str(d)]) == 0  # idempotent
    assert "nothing to change" in capsys.readouterr().out


def test_uncovered_renderer_is_refused(tmp_path, capsys):
    """A renderer outside lf.v1.COVERED (a user's v1 plugin): check and repair exit 3 naming it; other commands
    refuse a v1 dir too (its template is not an LF template); the hook's line says the same."""
    from lf_template_ext.cli.main import main
    from lf_template_ext.lf.plugin.v1_hooks import refusal_line

    d = _v1_dir(tmp_path, "my_renderer")
    for args in (["check", str(d)], ["repair", str(d)], ["emit", str(d), "--engine", "vllm"]):
        assert main(args) == 3, args
        err = capsys.readouterr().err
        assert "my_renderer" in err and "v1" in err, err
    assert not (d / ".lf-template-backups").exists()
    line = refusal_line("my_renderer")
    assert "LF's v1 path (USE_V1=1) is not covered for renderer 'my_renderer'" in line and "run without USE_V1" in line
