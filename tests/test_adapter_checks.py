"""Issue 13 item 4: what each engine does with a LoRA adapter, read from the adapter's own files.

Real tiny adapters written by PEFT on a tiny Qwen2.5 model (random weights, the real tokenizer): plain, rank 64,
``modules_to_save``, and a resized vocabulary (tokens added, embeddings resized, as LF's ``resize_vocab`` does).
`repair` writes the findings into alignment_report.json and SERVING.md: the vLLM command gets the
``--max-lora-rank`` it needs, and an engine that cannot serve the adapter says "Merge first".
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_models import QWEN25, build_tiny_model

from lf_template_ext.modeldir.adapter import read_adapter, safetensors_shapes
from lf_template_ext.workflows.adapters import VLLM_MAX_LORA_RANKS, vllm_rank_flag


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("adapters") / "base", QWEN25)


def _adapter(base: Path, dest: Path, *, r: int = 2, modules_to_save=None, add_tokens: int = 0) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base)
    if add_tokens:
        tok.add_tokens([f"<new_{i}>" for i in range(add_tokens)])
        model.resize_token_embeddings(len(tok))
    config = LoraConfig(r=r, lora_alpha=2 * r, target_modules=["q_proj", "v_proj"], modules_to_save=modules_to_save)
    get_peft_model(model, config).save_pretrained(dest)
    tok.save_pretrained(dest)
    return dest


def _repair(d: Path, base: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "lf_template_ext.cli.main", "repair", str(d), "--template", "qwen"]
    (d / "lf_template_ext.json").write_text(json.dumps({"template": "qwen", "model_name_or_path": str(base)}))
    return subprocess.run(cmd, capture_output=True, text=True)


def _vllm_section(text: str) -> str:
    return text.split("## vLLM", 1)[1].split("\n## ", 1)[0]


def test_the_header_is_read_without_torch(base, tmp_path):
    d = _adapter(base, tmp_path / "plain")
    shapes = safetensors_shapes(str(d / "adapter_model.safetensors"))
    assert shapes and all(".lora_A." in n or ".lora_B." in n for n in shapes)
    a_shape = next(s for n, s in shapes.items() if n.endswith("q_proj.lora_A.weight"))
    assert a_shape == (2, 16)  # rank x hidden size of the tiny model
    facts = read_adapter(str(d))
    assert facts.rank == 2 and facts.modules_to_save == () and facts.full_tensors == {} and facts.saved_vocab is None


def test_plain_adapter_serves_as_is(base, tmp_path):
    d = _adapter(base, tmp_path / "plain")
    proc = _repair(d, base)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((d / "alignment_report.json").read_text())
    assert report["adapter"]["rank"] == 2 and report["adapter"]["findings"] == [] and report["adapter"]["base_checked"]
    vllm = _vllm_section((d / "SERVING.md").read_text())
    assert "--enable-lora --lora-modules lf=" in vllm and "--max-lora-rank" not in vllm and "Merge first" not in vllm


def test_rank_64_gets_the_max_lora_rank_flag(base, tmp_path):
    assert vllm_rank_flag(16) is None and vllm_rank_flag(17) == 32 and vllm_rank_flag(64) == 64
    assert vllm_rank_flag(300) == 320 and vllm_rank_flag(600) == 0 and VLLM_MAX_LORA_RANKS[-1] == 512
    d = _adapter(base, tmp_path / "r64", r=64)
    assert _repair(d, base).returncode == 0
    report = json.loads((d / "alignment_report.json").read_text())
    assert [(f["engine"], f["action"], f["flag"]) for f in report["adapter"]["findings"]] == [("vllm", "flag", "--max-lora-rank 64")]
    vllm = _vllm_section((d / "SERVING.md").read_text())
    assert f"--lora-modules lf={d} --max-lora-rank 64 \\" in vllm


def test_modules_to_save_means_merge_first_for_vllm(base, tmp_path):
    d = _adapter(base, tmp_path / "mts", modules_to_save=["lm_head"])
    proc = _repair(d, base)
    assert proc.returncode == 0, proc.stderr
    facts = read_adapter(str(d))
    assert facts.modules_to_save == ("lm_head",) and facts.full_tensors  # the full lm_head copy is in the file
    report = json.loads((d / "alignment_report.json").read_text())
    assert [(f["engine"], f["action"]) for f in report["adapter"]["findings"]] == [("vllm", "merge")]
    serving = (d / "SERVING.md").read_text()
    assert _vllm_section(serving).lstrip().startswith("Merge first: this adapter cannot be served as an adapter here (modules_to_save (lm_head)")
    assert "--lora-paths lf=" in serving  # SGLang keeps its command: only vLLM's refusal is known
    assert "adapter: modules_to_save (lm_head)" in proc.stderr  # repair's notes say it too


def test_resized_vocabulary_means_merge_first_everywhere(base, tmp_path):
    d = _adapter(base, tmp_path / "resized", modules_to_save=["embed_tokens", "lm_head"], add_tokens=3)
    proc = _repair(d, base)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((d / "alignment_report.json").read_text())
    adapter = report["adapter"]
    assert adapter["saved_vocab"] == adapter["base_vocab"] + 3, adapter
    assert ("all", "merge") in [(f["engine"], f["action"]) for f in adapter["findings"]]
    serving = (d / "SERVING.md").read_text()
    for title in ("vLLM", "SGLang", "LMDeploy", "Ollama", "llama.cpp"):
        section = serving.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]
        assert section.lstrip().startswith("Merge first: this adapter cannot be served as an adapter here (resized vocabulary"), title


def test_check_names_the_adapter_findings(base, tmp_path):
    d = _adapter(base, tmp_path / "r64", r=64)
    assert _repair(d, base).returncode == 0
    proc = subprocess.run([sys.executable, "-m", "lf_template_ext.cli.main", "check", str(d)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr  # aligned: the findings are about serving, not the template
    assert "warning: adapter (vllm): LoRA rank 64 is above vLLM's default --max-lora-rank 16" in proc.stderr
