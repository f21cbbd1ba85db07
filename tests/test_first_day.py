"""Issue 16, "everything we write is right the first time": what a new user meets on the first day.

Each test names the finding of the issue it keeps fixed. Real inputs only: the fixture tokenizers
(Llama-3.1, Qwen2.5, Qwen3), real LF, and LMDeploy's own code for the LMDeploy measurement.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness import FIXTURES

REPO = Path(__file__).resolve().parents[1]
LLAMA31 = "meta-llama--Meta-Llama-3.1-8B-Instruct"
QWEN25 = "Qwen--Qwen2.5-1.5B-Instruct"
QWEN3 = "Qwen--Qwen3-4B"


def cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lf_template_ext.cli.main", *args], capture_output=True, text=True, cwd=cwd)


def model_dir(tmp_path: Path, fixture: str, name: str = "merged", model_type: str = "llama") -> Path:
    """A model dir as LMDeploy and the engines read it: the fixture's tokenizer and a config.json (no weights:
    nothing here loads them)."""
    d = tmp_path / name
    shutil.copytree(FIXTURES / fixture, d)
    arch = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM"}[model_type]
    (d / "config.json").write_text(json.dumps({"model_type": model_type, "architectures": [arch]}))
    return d


# -- finding 1: one truth per engine (LMDeploy JSON that breaks the system prompt) ------------------------------


def test_lmdeploy_json_for_llama3_is_not_expressible_everywhere(tmp_path):
    """Finding 1: the system-prompt difference `check --engine lmdeploy --artifact` measures on llama3's JSON is
    what the engine registry decides on: emit exits 3, repair --engines writes no JSON, SERVING.md does not
    recommend one (and says why), the report records it."""
    d = model_dir(tmp_path, LLAMA31)
    # the measurement: the JSON the compiler can still build renders a system prompt bare (exit 1)
    from harness import fixture_tokenizer

    from lf_template_ext.compiler import lmdeploy
    from lf_template_ext.lf import compat as lf_compat
    from lf_template_ext.model.options import TemplateOptions

    snap = lf_compat.snapshot("llama3", fixture_tokenizer(LLAMA31), TemplateOptions())
    config = lmdeploy.chat_template_config(snap.spec, snap.facts, model_name="merged", tokenizer_adds_bos=True)
    artifact = tmp_path / "llama3_lmdeploy.json"
    artifact.write_text(json.dumps(config))
    measured = cli("check", str(d), "--template", "llama3", "--engine", "lmdeploy", "--artifact", str(artifact))
    assert measured.returncode == 1, measured.stdout + measured.stderr
    assert "training '<|begin_of_text|><|start_header_id|>system" in measured.stdout

    emitted = cli("emit", str(d), "--template", "llama3", "--engine", "lmdeploy")
    assert emitted.returncode == 3, emitted.stderr
    assert "system" in emitted.stderr and "--chat-template hf" in emitted.stderr
    assert not (d / "lmdeploy_chat_template.json").exists()

    repaired = cli("repair", str(d), "--template", "llama3", "--engines", "vllm,lmdeploy")
    assert repaired.returncode == 0, repaired.stderr
    assert "lmdeploy: lmdeploy_chat_template.json not written" in repaired.stderr
    assert not (d / "lmdeploy_chat_template.json").exists()
    serving = (d / "SERVING.md").read_text()
    lmdeploy_part = serving.split("## LMDeploy")[1].split("## Ollama")[0]
    assert "--chat-template hf" in lmdeploy_part and "lmdeploy_chat_template.json" not in lmdeploy_part
    assert "is not written for this template: system messages" in lmdeploy_part
    report = json.loads((d / "alignment_report.json").read_text())
    assert report["engines"]["lmdeploy"]["expressible"] is False and "system" in report["engines"]["lmdeploy"]["reason"]


def test_lmdeploy_json_with_caveats_shows_them_everywhere(tmp_path):
    """Finding 1: an expressible JSON (qwen: default system) is written; what it drops (tools) is a caveat in
    emit's output, SERVING.md and the report."""
    d = model_dir(tmp_path, QWEN25, model_type="qwen2")
    repaired = cli("repair", str(d), "--template", "qwen", "--engines", "vllm,lmdeploy")
    assert repaired.returncode == 0, repaired.stderr
    assert "lmdeploy: caveat: tools:" in repaired.stderr
    serving = (d / "SERVING.md").read_text()
    lmdeploy_part = serving.split("## LMDeploy")[1].split("## Ollama")[0]
    assert "--chat-template " + str(d / "lmdeploy_chat_template.json") in lmdeploy_part
    assert "What the JSON chat template does not reproduce:" in lmdeploy_part and "- tools:" in lmdeploy_part
    report = json.loads((d / "alignment_report.json").read_text())
    assert report["engines"]["lmdeploy"] == {
        "file": "lmdeploy_chat_template.json", "present": True, "expressible": True,
        "caveats": report["engines"]["lmdeploy"]["caveats"], "reason": None,
    }  # fmt: skip
    assert any(c.startswith("tools:") for c in report["engines"]["lmdeploy"]["caveats"])

    emitted = cli("emit", str(d), "--template", "qwen", "--engine", "lmdeploy", "--output", "-")
    assert emitted.returncode == 0, emitted.stderr
    assert "caveat: tools:" in emitted.stderr
