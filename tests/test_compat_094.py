"""The LF compatibility layer against LF 0.9.4's template code, and version refusal.

A full 0.9.4 environment needs another transformers range (documented opt-in suite, see
docs/development.md); here the installed 0.9.5 package is copied and its
data/template.py, data/formatter.py and data/tool_utils.py are replaced by 0.9.4's, taken
from the 0.9.4 wheel that scripts/env.sh downloads. Its version string is set to 0.9.4 so
the compat layer takes its 0.9.4 code paths. Runs in a subprocess so this process keeps 0.9.5.
"""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
FILES = ("data/template.py", "data/formatter.py", "data/tool_utils.py")


def _overlay(tmp_path: Path, version: str, with_094_files: bool) -> Path:
    installed = Path(importlib.util.find_spec("llamafactory").submodule_search_locations[0])
    root = tmp_path / f"lf-{version}"
    shutil.copytree(installed, root / "llamafactory", ignore=shutil.ignore_patterns("__pycache__"))
    if with_094_files:
        wheels = glob.glob(os.path.join(sys.prefix, "lf-wheels", "llamafactory-0.9.4-*.whl"))
        assert wheels, "scripts/env.sh downloads LF 0.9.4's wheel into <venv>/lf-wheels"
        with zipfile.ZipFile(wheels[0]) as z:
            for f in FILES:
                (root / "llamafactory" / f).write_bytes(z.read(f"llamafactory/{f}"))
    env_py = root / "llamafactory" / "extras" / "env.py"
    text = env_py.read_text()
    env_py.write_text(text.replace('VERSION = "0.9.5"', f'VERSION = "{version}"'))
    return root


def _run(root: Path, code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), str(TESTS), str(REPO)]), DISABLE_VERSION_CHECK="1")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=1500)


CHECK_ALL = r"""
import json, sys
from harness import harness_tokenizer, FROZEN
from lf_template_ext.lf import compat as lf_compat
from lf_template_ext.verifier.probe import verify_template
from lf_template_ext.model.options import TemplateOptions
import llamafactory
caps = lf_compat.capabilities()
out = {"version": llamafactory.__version__, "caps": caps.__dict__, "templates": {}}
for name in lf_compat.template_names():
    tok, label = harness_tokenizer(name)
    try:
        r = verify_template(name, tok, frozen=FROZEN)
        if lf_compat.template_kind(lf_compat._template_module().TEMPLATES[name]) == "reasoning":
            r.cases += verify_template(name, tok, options=TemplateOptions(enable_thinking=False, mask_history=True), frozen=FROZEN).cases
        out["templates"][name] = {k: v for k, v in r.summary.items()}
        out["templates"][name]["bad"] = [c.id for c in r.cases if c.status == "differs"][:3]
    except Exception as e:
        out["templates"][name] = {"error": f"{type(e).__name__}: {e}"}
print("RESULT" + json.dumps(out))
"""


@pytest.mark.slow
def test_every_094_template_is_reproduced(tmp_path):
    root = _overlay(tmp_path, "0.9.4", with_094_files=True)
    proc = _run(root, CHECK_ALL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.split("RESULT", 1)[1])
    assert result["version"] == "0.9.4"
    assert result["caps"]["preserve_thinking"] is False and result["caps"]["discarding_history_cot"] is False
    templates = result["templates"]
    assert len(templates) == 124  # 0.9.4 registers more (older) templates than 0.9.5's 121
    errors = {n: t for n, t in templates.items() if "error" in t}
    differs = {n: t for n, t in templates.items() if t.get("differs")}
    print(f"\nLF 0.9.4: {len(templates)} templates, errors: {len(errors)}, with differences: {len(differs)}")
    assert not errors, errors
    assert not differs, differs


def test_unsupported_version_is_refused_clearly(tmp_path):
    root = _overlay(tmp_path, "0.9.3", with_094_files=False)
    proc = _run(
        root,
        "from lf_template_ext import UnsupportedLFVersionError\nfrom lf_template_ext.lf import compat as lf_compat\n"
        "try:\n    lf_compat.check_version()\nexcept UnsupportedLFVersionError as e:\n    print('REFUSED', e)\n",
    )
    assert "REFUSED LLaMA-Factory 0.9.3 is not supported" in proc.stdout, proc.stderr[-2000:]
    assert "0.9.4, 0.9.5" in proc.stdout
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), str(REPO)]))
    cli = subprocess.run(
        [sys.executable, "-m", "lf_template_ext.cli.main", "jinja", "--template", "qwen", "--tokenizer",
         str(REPO / "examples" / "qwen2.5-tokenizer")],
        capture_output=True, text=True, env=env,
    )
    assert cli.returncode == 2
    assert "not supported" in cli.stderr
