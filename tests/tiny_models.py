"""Tiny real models for end-to-end tests: a family config, random weights, the real tokenizer.

The weights are random (seeded): what matters to these tests is LF's export path, the files it
writes and the tokenizer/template files, all of which are real.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from harness import FIXTURES

LLAMA31 = "meta-llama--Meta-Llama-3.1-8B-Instruct"
QWEN25 = "Qwen--Qwen2.5-1.5B-Instruct"


def copy_tokenizer_files(fixture: str, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for f in (FIXTURES / fixture).iterdir():
        if f.is_file() and f.name not in ("LICENSE",):
            shutil.copy(f, dest / f.name)


def build_tiny_model(dest: Path, fixture: str = LLAMA31, seed: int = 0) -> Path:
    """A 1-layer model of the fixture's family with the fixture's tokenizer files."""
    import torch
    from transformers import AutoTokenizer

    copy_tokenizer_files(fixture, dest)
    tok = AutoTokenizer.from_pretrained(dest)
    vocab = len(tok)
    torch.manual_seed(seed)
    if fixture.startswith("Qwen"):
        from transformers import Qwen2Config, Qwen2ForCausalLM

        config = Qwen2Config(
            vocab_size=vocab, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
            num_key_value_heads=1, max_position_embeddings=512, tie_word_embeddings=True,
            eos_token_id=tok.eos_token_id, bos_token_id=None,
        )
        model = Qwen2ForCausalLM(config)
    else:
        from transformers import LlamaConfig, LlamaForCausalLM

        config = LlamaConfig(
            vocab_size=vocab, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
            num_key_value_heads=1, max_position_embeddings=512, tie_word_embeddings=True,
            bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        )
        model = LlamaForCausalLM(config)
    model.save_pretrained(dest)
    return dest


def build_tiny_model_from_tokenizer(tok, dest: Path, seed: int = 0) -> Path:
    """A 1-layer Qwen2 model around an already built tokenizer (saved with it)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    dest.mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(dest)
    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, max_position_embeddings=512, tie_word_embeddings=True,
        eos_token_id=tok.eos_token_id, bos_token_id=None,
    )
    Qwen2ForCausalLM(config).save_pretrained(dest)
    return dest


def build_lora_adapter(base: Path, dest: Path, seed: int = 1) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base)
    peft_model = get_peft_model(model, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    peft_model.save_pretrained(dest)
    return dest


def write_sharegpt_dataset(data_dir: Path, name: str = "tiny", rows: int = 8) -> Path:
    """An LF dataset dir: ``rows`` one-turn sharegpt conversations registered as ``name`` in dataset_info.json."""
    data_dir.mkdir(parents=True, exist_ok=True)
    samples = [
        {"conversations": [{"from": "human", "value": f"Question {i}?"}, {"from": "gpt", "value": f"Answer {i}."}]}
        for i in range(rows)
    ]
    (data_dir / f"{name}.json").write_text(json.dumps(samples))
    (data_dir / "dataset_info.json").write_text(json.dumps({name: {"file_name": f"{name}.json", "formatting": "sharegpt"}}))
    return data_dir


def write_yaml(path: Path, data: dict) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))
