"""patches/: each applies to the pristine LF source of its version, and the patched export works."""

from __future__ import annotations

import base64
import glob
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from tiny_models import LLAMA31, build_tiny_model, read_json, write_yaml

REPO = Path(__file__).resolve().parents[1]
TUNER = "llamafactory/train/tuner.py"


def _pristine_095() -> bytes:
    """The installed 0.9.5 tuner.py, proven pristine by the wheel's RECORD hash."""
    pkg = Path(importlib.util.find_spec("llamafactory").submodule_search_locations[0])
    record = next(pkg.parent.glob("llamafactory-0.9.5.dist-info")) / "RECORD"
    line = next(r for r in record.read_text().splitlines() if r.startswith(TUNER + ","))
    digest = line.split(",")[1].split("=", 1)[1]
    data = (pkg / "train" / "tuner.py").read_bytes()
    assert base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode() == digest
    return data


def _pristine_094() -> bytes:
    wheels = glob.glob(os.path.join(sys.prefix, "lf-wheels", "llamafactory-0.9.4-*.whl"))
    assert wheels, "scripts/env.sh downloads LF 0.9.4's wheel into <venv>/lf-wheels"
    with zipfile.ZipFile(wheels[0]) as z:
        return z.read(TUNER)


@pytest.mark.parametrize("version, pristine", [("0.9.4", _pristine_094), ("0.9.5", _pristine_095)])
def test_patch_applies_to_pristine_source(tmp_path, version, pristine):
    src = tmp_path / "src" / "llamafactory" / "train"
    src.mkdir(parents=True)
    (src / "tuner.py").write_bytes(pristine())
    patch = REPO / "patches" / f"llamafactory-{version}-export-alignment.patch"
    proc = subprocess.run(["patch", "-p1", "--forward", "-i", str(patch)], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "fuzz" not in proc.stdout and "offset" not in proc.stdout, proc.stdout  # exact, not approximate
    compile((src / "tuner.py").read_text(), "tuner.py", "exec")
    assert "_align_chat_template_and_stop_ids" in (src / "tuner.py").read_text()


@pytest.mark.slow
def test_patched_export_writes_both_files_and_stop_ids(tmp_path):
    """Stock LF 0.9.5 with the patch applied (no extension) exports aligned files."""
    installed = Path(importlib.util.find_spec("llamafactory").submodule_search_locations[0])
    overlay = tmp_path / "lf"
    shutil.copytree(installed, overlay / "llamafactory", ignore=shutil.ignore_patterns("__pycache__"))
    patch = REPO / "patches" / "llamafactory-0.9.5-export-alignment.patch"
    proc = subprocess.run(["patch", "-p2", "-i", str(patch)], cwd=overlay, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    base = build_tiny_model(tmp_path / "base", LLAMA31)
    out = tmp_path / "out"
    cfg = write_yaml(tmp_path / "e.yaml", {"model_name_or_path": str(base), "template": "llama3", "export_dir": str(out),
                                           "export_size": 1, "export_device": "cpu", "infer_dtype": "float32"})
    env = dict(os.environ, HF_HUB_OFFLINE="1", LF_TEMPLATE_EXT="0", PYTHONPATH=str(overlay))
    run = subprocess.run([sys.executable, "-c", "import sys; from llamafactory.cli import main; main()", "export", str(cfg)],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "aligned in" in run.stdout + run.stderr
    assert read_json(out / "tokenizer_config.json")["chat_template"] == (out / "chat_template.jinja").read_text()
    assert read_json(out / "generation_config.json")["eos_token_id"] == [128009, 128008]
