"""Issue 13 item 3: the sampling LF's chat uses, written where each engine reads its defaults, and read back
with each engine's own loader: transformers' ``GenerationConfig`` (vLLM, SGLang), LMDeploy 0.18's server-side
``resolve_default_gen_config`` and Ollama's Modelfile parser (re-created in Go, ``render/ollama_go.py``)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from harness import FIXTURES

QWEN25 = "Qwen--Qwen2.5-1.5B-Instruct"


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lf_template_ext.cli.main", *args], capture_output=True, text=True)


def model_dir(tmp_path: Path) -> Path:
    d = tmp_path / "merged"
    shutil.copytree(FIXTURES / QWEN25, d)
    (d / "config.json").write_text(json.dumps({"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"]}))
    return d


def config(tmp_path: Path, **sampling) -> Path:
    path = tmp_path / "chat.yaml"
    path.write_text("template: qwen\n" + "".join(f"{k}: {json.dumps(v)}\n" for k, v in sampling.items()))
    return path


def loaders(d: Path) -> tuple[dict, dict]:
    """What transformers (vLLM/SGLang) and LMDeploy's server take from the dir's generation_config.json."""
    from lmdeploy.serve.core.generation_config import resolve_default_gen_config
    from transformers import GenerationConfig

    hf = GenerationConfig.from_pretrained(d).to_diff_dict()
    return hf, resolve_default_gen_config("auto", str(d), False)


def modelfile_parameters(text: str) -> dict[str, str]:
    from lf_template_ext.render import ollama_go

    parsed = ollama_go.parse_modelfile(ollama_go.binary(), text)
    assert not parsed.get("error"), parsed
    sampling = {"temperature", "top_p", "top_k", "repeat_penalty", "num_predict"}  # PARAMETERs parse to their own name
    return {c["name"]: c["args"] for c in parsed["commands"] if c["name"] in sampling}


def test_the_values_the_user_set_are_written_and_read_back(tmp_path):
    d = model_dir(tmp_path)
    proc = cli("repair", str(d), "--config", str(config(tmp_path, temperature=0.3, top_p=0.9)))
    assert proc.returncode == 0, proc.stderr
    hf, lmdeploy = loaders(d)
    assert hf["temperature"] == 0.3 and hf["top_p"] == 0.9 and hf["eos_token_id"] == [151645]
    assert "top_k" not in hf  # model mode: only what the user set
    assert lmdeploy["temperature"] == 0.3 and lmdeploy["top_p"] == 0.9
    report = json.loads((d / "alignment_report.json").read_text())
    rows = {r["key"]: r for r in report["sampling"]["rows"]}
    assert rows["temperature"] == {"key": "temperature", "lf_chat": 0.3, "served": 0.3, "served_from": "generation_config.json", "same": True}
    assert rows["top_k"]["lf_chat"] == 50 and rows["top_k"]["same"] is False  # LF chat's default vs the engine's
    serving = (d / "SERVING.md").read_text()
    assert "| `top_k` | 50 | off (engine default) | **no** |" in serving and "--generation lf" in serving


def test_generation_lf_writes_lf_chats_defaults_everywhere(tmp_path):
    d = model_dir(tmp_path)
    proc = cli("repair", str(d), "--template", "qwen", "--generation", "lf")
    assert proc.returncode == 0, proc.stderr
    hf, lmdeploy = loaders(d)
    lf = {"do_sample": True, "temperature": 0.95, "top_p": 0.7, "top_k": 50, "max_new_tokens": 1024}
    assert {k: hf.get(k) for k in lf} == lf, hf
    assert {k: lmdeploy.get(k) for k in ("temperature", "top_p", "top_k", "max_new_tokens")} == {
        "temperature": 0.95, "top_p": 0.7, "top_k": 50, "max_new_tokens": 1024,
    }  # fmt: skip
    report = json.loads((d / "alignment_report.json").read_text())
    assert all(r["same"] for r in report["sampling"]["rows"]), report["sampling"]
    proc = cli("emit", str(d), "--template", "qwen", "--engine", "ollama", "--generation", "lf")
    assert proc.returncode == 0, proc.stderr
    params = modelfile_parameters((d / "Modelfile").read_text())
    assert params == {"temperature": "0.95", "top_p": "0.7", "top_k": "50", "repeat_penalty": "1.0", "num_predict": "1024"}


def test_greedy_decoding_is_written_the_way_each_engine_reads_it(tmp_path):
    """LF's chat with do_sample: false decodes greedily. transformers refuses to save a greedy config with
    sampling keys, so generation_config.json gets do_sample: false and no temperature/top_p/top_k (and still
    saves); the Modelfile gets temperature 0; SERVING.md tells vLLM/SGLang users to send temperature 0."""
    from transformers import GenerationConfig

    d = model_dir(tmp_path)
    (d / "generation_config.json").write_text(json.dumps({"eos_token_id": 151645, "temperature": 0.7, "top_p": 0.8}))
    cfg = config(tmp_path, do_sample=False)
    assert cli("repair", str(d), "--config", str(cfg)).returncode == 0
    hf, lmdeploy = loaders(d)
    assert hf.get("do_sample") is False and "temperature" not in hf and "top_p" not in hf
    GenerationConfig.from_pretrained(d).save_pretrained(tmp_path / "resaved")  # valid: transformers saves it
    assert "temperature" not in lmdeploy
    assert '"temperature": 0` with each request' in (d / "SERVING.md").read_text()
    proc = cli("emit", str(d), "--engine", "ollama", "--config", str(cfg))
    assert proc.returncode == 0, proc.stderr
    assert modelfile_parameters((d / "Modelfile").read_text()) == {"temperature": "0"}


def test_a_bad_sampling_value_is_exit_2(tmp_path):
    d = model_dir(tmp_path)
    proc = cli("repair", str(d), "--config", str(config(tmp_path, temperature="hot")))
    assert proc.returncode == 2 and "temperature" in proc.stderr, proc.stderr
    assert not (d / "SERVING.md").exists()
