"""The README's "Use" section, run: every shell command of its ``bash`` blocks, paths substituted with
tiny model dirs built here, each exit code asserted (the ``# exit N`` comment, else 0) and each file the
README promises checked, so the README and the tool cannot drift apart.

Substitutions: ``./merged`` is a merged Llama-3.1 dir (a Qwen3 one for commands with ``--template qwen3``),
``./Qwen3-8B`` the Qwen3 fixture, ``./model-Q4_K_M.gguf`` a GGUF with Llama-3.1's vocabulary written with the
``gguf`` package, ``data/my_sft.json`` a small sharegpt dataset with its ``dataset_info.json`` entry,
``my_train.yaml`` an LF training YAML. Every dir has the real fixture tokenizer and a ``config.json``.

Not run, on purpose: the first block (``llamafactory-cli train`` / ``export``: trained for real in
tests/test_export_e2e.py and tests/test_hook.py; minutes here), ``--endpoint`` (needs a live vLLM:
tests/test_endpoint_vllm.py) and ``vllm serve`` (no vLLM in this environment).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from harness import FIXTURES, fixture_tokenizer

REPO = Path(__file__).resolve().parents[1]
LLAMA31 = "meta-llama--Meta-Llama-3.1-8B-Instruct"
QWEN3 = "Qwen--Qwen3-4B"
SKIP = ("export ", "llamafactory-cli ", "cat ", "vllm serve ")


def use_section() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return text.split("\n## Use\n", 1)[1].split("\n## ", 1)[0]


def commands() -> list[tuple[str, int]]:
    """(command, expected exit code) of every line of the Use section's bash blocks, in order."""
    out = []
    for block in re.findall(r"```bash\n(.*?)```", use_section(), re.S):
        for line in block.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            cmd, _, comment = line.partition("  #")
            m = re.search(r"\bexit (\d)\b", comment)
            out.append((cmd.strip(), int(m.group(1)) if m else 0))
    return out


def _model(dest: Path, fixture: str, model_type: str) -> Path:
    shutil.copytree(FIXTURES / fixture, dest)
    arch = {"llama": "LlamaForCausalLM", "qwen3": "Qwen3ForCausalLM"}[model_type]
    (dest / "config.json").write_text(json.dumps({"model_type": model_type, "architectures": [arch]}))
    return dest


def _gguf(path: Path) -> None:
    import gguf

    tok = fixture_tokenizer(LLAMA31)
    w = gguf.GGUFWriter(str(path), arch="llama")
    w.add_block_count(1)
    w.add_tokenizer_model("gpt2")
    w.add_token_list(tok.convert_ids_to_tokens(list(range(len(tok)))))
    w.add_bos_token_id(tok.bos_token_id)
    w.add_eos_token_id(tok.eos_token_id)
    w.add_add_bos_token(True)
    w.add_chat_template(tok.chat_template)
    w.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def _workspace(root: Path) -> dict[str, Path]:
    dirs = {
        "llama": _model(root / "merged", LLAMA31, "llama"),
        "qwen3": _model(root / "qwen3-merged", QWEN3, "qwen3"),
        "native": _model(root / "Qwen3-8B", QWEN3, "qwen3"),
    }
    _gguf(root / "model-Q4_K_M.gguf")
    data = root / "data"
    data.mkdir()
    rows = [
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello! How can I help?"}]},
        {"system": "Be brief.", "conversations": [{"from": "human", "value": "2+2?"}, {"from": "gpt", "value": "4"}]},
    ]  # fmt: skip
    (data / "my_sft.json").write_text(json.dumps(rows))
    info = {"my_sft": {"file_name": "my_sft.json", "formatting": "sharegpt", "columns": {"messages": "conversations", "system": "system"}}}
    (data / "dataset_info.json").write_text(json.dumps(info))
    (root / "my_train.yaml").write_text("model_name_or_path: Qwen/Qwen3-8B\ntemplate: qwen3\nenable_thinking: false\ncutoff_len: 2048\n")
    return dirs


def _argv(cmd: str, dirs: dict[str, Path]) -> list[str]:
    merged = dirs["qwen3"] if "--template qwen3" in cmd else dirs["llama"]
    words = shlex.split(cmd.replace("./merged", str(merged)).replace("./Qwen3-8B", str(dirs["native"])))
    if words[0] == "lf-template":
        return [sys.executable, "-m", "lf_template_ext.cli.main", *words[1:]]
    if words[:2] == ["python", "scripts/repair_checkpoint.py"]:
        return [sys.executable, str(REPO / "scripts" / "repair_checkpoint.py"), *words[2:]]
    raise AssertionError(f"a README command this test does not know how to run: {cmd}")


def test_readme_use_section_runs_as_written(tmp_path):
    dirs = _workspace(tmp_path)
    ran = []
    for cmd, expected in commands():
        if cmd.startswith(SKIP) or "--endpoint" in cmd:
            continue
        proc = subprocess.run(_argv(cmd, dirs), capture_output=True, text=True, cwd=tmp_path)
        assert proc.returncode == expected, f"{cmd}\nexit {proc.returncode}, README says {expected}\n{proc.stdout}\n{proc.stderr}"
        ran.append(cmd)
        merged = dirs["qwen3"] if "--template qwen3" in cmd else dirs["llama"]
        if cmd.startswith("lf-template repair ./merged") and "--dry-run" not in cmd:
            for name in ("chat_template.jinja", "SERVING.md", "alignment_report.json", "generation_config.json"):
                assert (merged / name).is_file(), f"{cmd}: README promises {name}"
            assert list((merged / ".lf-template-backups").iterdir()), f"{cmd}: README promises a backup"
        if "--dry-run" in cmd:
            assert "nothing written" in proc.stdout
        if "--report check.json" in cmd:
            assert json.loads((tmp_path / "check.json").read_text())["summary"]
        if "--engine ollama" in cmd and cmd.startswith("lf-template emit"):
            assert (merged / "Modelfile").is_file()  # "./merged/Modelfile (backed up if present)"
        if "--output qwen3_lf.jinja" in cmd:
            assert (tmp_path / "qwen3_lf.jinja").read_text().startswith("{#")
        if cmd.startswith("lf-template restore"):
            assert not (merged / "SERVING.md").exists()  # undone
    assert len(ran) >= 14, ran
