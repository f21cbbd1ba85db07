"""Issue 13, item 1, the user's journey: training options win at export unless the export says otherwise.

A real `llamafactory-cli train` (LoRA SFT of a tiny Qwen3-tokenizer model, `template: qwen3`,
`enable_thinking: false`, `LF_TEMPLATE_EXT=1`) and two real `llamafactory-cli export`s with a merge YAML like
LF's `examples/merge_lora` (which does not repeat `enable_thinking`). Trains once, exports twice (CI budget).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_models import build_tiny_model, read_json, write_yaml

pytestmark = [pytest.mark.slow]

QWEN3 = "Qwen--Qwen3-4B"
EMPTY_THOUGHT = "<think>\n\n</think>\n\n"
CHATS = [
    [{"role": "user", "content": "What is 2+2?"}],
    [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "Name a colour."},
    ],
]


def _cli(*argv: str, env: dict, cwd: Path) -> subprocess.CompletedProcess:
    exe = str(Path(sys.executable).parent / "llamafactory-cli")
    return subprocess.run([exe, *argv], capture_output=True, text=True, env=env, cwd=cwd, timeout=1200)


def _export(root: Path, base: Path, adapter: Path, name: str, env: dict, extra: dict) -> tuple[Path, str]:
    export_dir = root / name
    cfg = write_yaml(
        root / f"{name}.yaml",
        {  # LF's examples/merge_lora/qwen3_lora_sft.yaml, with our paths and a CPU export
            "model_name_or_path": str(base), "adapter_name_or_path": str(adapter), "template": "qwen3",
            "trust_remote_code": True, "export_dir": str(export_dir), "export_size": 5, "export_device": "cpu",
            "export_legacy_format": False, **extra,
        },
    )  # fmt: skip
    proc = _cli("export", str(cfg), env=env, cwd=root)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return export_dir, proc.stderr


def _served_vs_trained(export_dir: Path, enable_thinking: bool) -> tuple[list, list]:
    """Generation-prompt ids the exported template renders (whole-string tokenization, as vLLM/SGLang do) vs
    the prompt ids LF trained on for the same chats with ``enable_thinking`` (``verifier.reference``)."""
    from transformers import AutoTokenizer

    from lf_template_ext import TemplateOptions
    from lf_template_ext.lf import compat as lf_compat
    from lf_template_ext.verifier.reference import TrainingReference

    tok = AutoTokenizer.from_pretrained(export_dir)
    reference = TrainingReference(lf_compat.prepare("qwen3", tok, TemplateOptions(enable_thinking=enable_thinking)))
    served, trained = [], []
    for chat in CHATS:
        text = tok.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
        served.append(tok.encode(text, add_special_tokens=False))
        trained.append(reference.for_conversation({"messages": chat + [{"role": "assistant", "content": "Ok."}]})[1])
    return served, trained


def test_training_options_win_at_export_unless_the_export_says_otherwise(tmp_path):
    base = build_tiny_model(tmp_path / "base", QWEN3)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    samples = [
        {"conversations": [{"from": "human", "value": f"Question {i}?"}, {"from": "gpt", "value": f"Answer {i}."}]}
        for i in range(4)
    ]
    (data_dir / "tiny.json").write_text(json.dumps(samples))
    (data_dir / "dataset_info.json").write_text(json.dumps({"tiny": {"file_name": "tiny.json", "formatting": "sharegpt"}}))
    out = tmp_path / "saves"
    train = write_yaml(
        tmp_path / "train.yaml",
        {
            "model_name_or_path": str(base), "stage": "sft", "do_train": True, "finetuning_type": "lora",
            "lora_target": "all", "dataset": "tiny", "dataset_dir": str(data_dir), "template": "qwen3",
            "enable_thinking": False, "cutoff_len": 64, "output_dir": str(out), "per_device_train_batch_size": 2,
            "max_steps": 1, "save_steps": 100, "logging_steps": 1, "overwrite_output_dir": True, "report_to": "none",
        },
    )  # fmt: skip
    env = dict(os.environ, LF_TEMPLATE_EXT="1", HF_HUB_OFFLINE="1", CUDA_VISIBLE_DEVICES="", FORCE_TORCHRUN="0")
    proc = _cli("train", str(train), env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]
    record = read_json(out / "lf_template_ext.json")
    assert record["template"] == "qwen3" and record["options"]["enable_thinking"] is False

    # 1. the export YAML does not mention enable_thinking: training's value, not LF's default (true)
    plain, stderr = _export(tmp_path, base, out, "merged", env, {})
    assert "enable_thinking: false (training record)" in stderr, stderr[-3000:]
    assert "differs from what training used" not in stderr
    served, trained = _served_vs_trained(plain, enable_thinking=False)
    assert served == trained  # served prompt == trained prompt, chat for chat
    text = json.loads((plain / "tokenizer_config.json").read_text())["chat_template"]
    assert (plain / "chat_template.jinja").read_text() == text
    from transformers import AutoTokenizer

    rendered = AutoTokenizer.from_pretrained(plain).apply_chat_template(CHATS[0], add_generation_prompt=True, tokenize=False)
    assert rendered.endswith("<|im_start|>assistant\n" + EMPTY_THOUGHT)
    assert read_json(plain / "lf_template_ext.json")["options"]["enable_thinking"] is False
    report = read_json(plain / "alignment_report.json")
    assert report["options_provenance"]["enable_thinking"] == "false (training record)"
    serving = (plain / "SERVING.md").read_text()
    assert "--reasoning-parser qwen3" not in serving and "No `--reasoning-parser`: trained with thinking off" in serving
    assert "--default-chat-template-kwargs '{\"enable_thinking\": false}'" in serving
    check = subprocess.run(
        [sys.executable, "-m", "lf_template_ext.cli.main", "check", str(plain)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr

    # 2. enable_thinking: true written at export: the export's value, and a warning naming both
    switched, stderr = _export(tmp_path, base, out, "merged_thinking", env, {"enable_thinking": True})
    assert "enable_thinking=True (export arguments) differs from what training used (enable_thinking=False, training record)" in stderr
    assert "enable_thinking: true (export arguments)" in stderr
    served, trained_off = _served_vs_trained(switched, enable_thinking=False)
    assert served != trained_off
    assert served == _served_vs_trained(switched, enable_thinking=True)[1]
    assert read_json(switched / "lf_template_ext.json")["options"]["enable_thinking"] is True
