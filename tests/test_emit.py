"""`lf-template emit` and the engine files of `repair --engines`, on a real model dir."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from harness import FIXTURES, fixture_tokenizer

import lf_template_ext as lte

REPO = Path(__file__).resolve().parents[1]
QWEN3 = "Qwen--Qwen3-4B"


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lf_template_ext.cli.main", *args], capture_output=True, text=True, cwd=REPO)


@pytest.fixture
def qwen3_dir(tmp_path) -> Path:
    d = tmp_path / "Qwen3-4B-sft"
    shutil.copytree(FIXTURES / QWEN3, d)
    (d / "lf_template_ext.json").write_text(
        json.dumps({"template": "qwen3", "options": {"enable_thinking": True}, "cutoff_len": 8192, "lf_version": "0.9.5"})
    )
    return d


def test_emit_vllm_to_a_file_is_the_compiled_template(qwen3_dir, tmp_path):
    out = tmp_path / "qwen3_lf.jinja"
    proc = cli("emit", str(qwen3_dir), "--engine", "vllm", "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    assert out.read_text() == lte.compile_jinja("qwen3", fixture_tokenizer(QWEN3))


def test_emit_into_the_model_dir_is_journaled(qwen3_dir):
    proc = cli("emit", str(qwen3_dir), "--engine", "ollama")
    assert proc.returncode == 0, proc.stderr
    modelfile = (qwen3_dir / "Modelfile").read_text()
    assert 'TEMPLATE """' in modelfile and 'PARAMETER stop "<|im_end|>"' in modelfile
    assert "PARAMETER num_ctx" not in modelfile  # cutoff_len is no serving limit (issue 16)
    assert list((qwen3_dir / ".lf-template-backups").iterdir())
    again = cli("emit", str(qwen3_dir), "--engine", "ollama")
    assert again.returncode == 0 and "already up to date" in again.stdout


def test_emit_gguf_metadata(qwen3_dir):
    proc = cli("emit", str(qwen3_dir), "--engine", "gguf")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["tokenizer.ggml.add_bos_token"] is False
    assert data["tokenizer.chat_template"] == lte.compile_jinja("qwen3", fixture_tokenizer(QWEN3))


def test_repair_with_engines_writes_their_files_and_warns_on_names(tmp_path):
    d = tmp_path / "vicuna-7b-lf-sft"  # SGLang picks its built-in vicuna template by this path
    shutil.copytree(FIXTURES / "Qwen--Qwen2.5-1.5B-Instruct", d)
    proc = cli("repair", str(d), "--template", "qwen", "--engines", "vllm,ollama,lmdeploy")
    assert proc.returncode == 0, proc.stderr
    assert (d / "Modelfile").exists()
    serving = (d / "SERVING.md").read_text()
    assert "SGLang picks its built-in 'vicuna_v1.1'" in serving
    assert "ollama create my-model -f Modelfile" in serving
    assert "differ from training in key order only" in serving  # Ollama's tool JSON caveat
    if (d / "lmdeploy_chat_template.json").exists():
        assert "--chat-template" in serving and "lmdeploy_chat_template.json" in serving
