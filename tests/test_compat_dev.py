"""LF's dev line (GitHub main, ``llamafactory-kt==0.9.6.dev0`` on PyPI) through the compat layer.

The wheel is fetched into the cache on first use (``tests/lf_wheels.py``: requirements/ and scripts/env.sh,
which key the venv, are unchanged), its ``llamafactory/`` unpacked and put first on ``PYTHONPATH`` of a
subprocess (``DISABLE_VERSION_CHECK=1``, LF's own dependency check), the way test_compat_094.py runs 0.9.4.
One sweep over every template in one subprocess (the same as ``scripts/coverage_dev.py``) checks the committed
docs/coverage-0.9.6.dev0.md; the CLI runs ``jinja``, ``repair`` and ``check`` on a tiny model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from harness import FIXTURES

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
sys.path.insert(0, str(REPO / "scripts"))

import coverage_dev  # noqa: E402

QWEN3 = "Qwen--Qwen3-4B"
NEW_TEMPLATES = ("hy_dense_1_8b", "hy_dense_7b", "moss_vl", "deepseek4_nothink", "qwen3_8", "minicpm5")


@pytest.fixture(scope="module")
def dev_root(tmp_path_factory) -> Path:
    from lf_wheels import DEV_LINE, unpack, wheel

    root = tmp_path_factory.mktemp("lf-dev")
    unpack(wheel(DEV_LINE), root / "lf-dev")
    return root


def _cli(dev_root: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(dev_root / "lf-dev"), str(TESTS), str(REPO)]), DISABLE_VERSION_CHECK="1"
    )
    return subprocess.run(
        [sys.executable, "-m", "lf_template_ext.cli.main", *args], capture_output=True, text=True, env=env, timeout=900
    )


@pytest.mark.slow
@pytest.mark.optin
@pytest.mark.skipif(
    os.environ.get("LF_TEMPLATE_EXT_DEV_SWEEP") != "1",
    reason="set LF_TEMPLATE_EXT_DEV_SWEEP=1 for the dev line's full template sweep (about 4 minutes; CI's budget)",
)
def test_every_dev_template_is_exact_or_refused_and_the_table_is_current(dev_root):
    result = coverage_dev.sweep(dev_root)
    assert result["version"] == "0.9.6.dev0"
    assert result["capabilities"]["tools_lstrip_without_system"] is True
    assert result["capabilities"]["discarding_history_cot"] is True
    rows = result["rows"]
    for name in NEW_TEMPLATES:
        assert name in rows, f"{name} missing from the dev line's sweep"
    # never silently wrong: a row with a difference is one the gate refuses
    silent = {n: r for n, r in rows.items() if "DIFFERS" in r.values() and r["gate"] != "refused"}
    assert not silent, silent
    assert rows["qwen"]["tools"] == "exact" and rows["qwen3"]["tools"] == "exact"  # tools_no_system included
    assert rows["moss_vl"]["gate"] in ("proven", "refused") and "MossVLTemplate" in rows["moss_vl"]["kind"]
    assert rows["deepseek4_nothink"]["gate"] in ("proven", "refused")
    assert rows["hy_dense_1_8b"]["gate"] == "-" and rows["hy_dense_1_8b"]["plain"] == "exact"
    print(
        "\nLF 0.9.6.dev0: %d templates, proven %d, refused %d"
        % (len(rows), sum(r["gate"] == "proven" for r in rows.values()), sum(r["gate"] == "refused" for r in rows.values()))
    )
    committed = coverage_dev.DOC.read_text(encoding="utf-8") if coverage_dev.DOC.exists() else ""
    assert committed == result["markdown"], "docs/coverage-0.9.6.dev0.md is stale: run python scripts/coverage_dev.py"


TOOLS_NO_SYSTEM = r"""
import dataclasses, json
from harness import fixture_tokenizer, FROZEN
from lf_template_ext.compiler import compile_spec
from lf_template_ext.lf import compat as lf_compat
from lf_template_ext.model.corpus import probe_corpus
from lf_template_ext.model.options import TemplateOptions
from lf_template_ext.verifier.probe import verify_template
tok = fixture_tokenizer("Qwen--Qwen3-4B")  # qwen3: no default system, so the rule applies
conv = [c for c in probe_corpus() if c["id"] == "tools_no_system"]
snap = lf_compat.snapshot("qwen3", tok, TemplateOptions())
old = dataclasses.replace(snap.spec, tools_lstrip_without_system=False)  # 0.9.5's rule on the dev line
out = {"spec": snap.spec.tools_lstrip_without_system}
for label, spec in (("dev", snap.spec), ("0.9.5 rule", old)):
    r = verify_template("qwen3", tok, conv, jinja=compile_spec(spec, snap.facts), frozen=FROZEN, prepared=snap.prepared)
    out[label] = [c.status for c in r.cases]
# media parts (issue 12): every dev plugin has a rule; a dev template's parts vs the dev line's process_messages
from lf_template_ext.model import media as mm
from media_check import check_template
specs = {n: lf_compat.media_spec(t.mm_plugin) for n, t in lf_compat._template_module().TEMPLATES.items()}
out["media"] = {n: [m.plugin, mm.status(m)[0], list(mm.kinds_compiled(m))] for n, m in specs.items() if m is not None}
r = check_template("qwen3_vl")
out["qwen3_vl_media"] = [r.ok, r.counts_engine]
print("RESULT" + json.dumps(out))
"""


@pytest.mark.slow
def test_dev_line_cli_jinja_repair_check_and_tools_without_system(dev_root, tmp_path):
    from tiny_models import build_tiny_model

    jinja = _cli(dev_root, "jinja", "--template", "qwen3", "--tokenizer", str(FIXTURES / QWEN3))
    assert jinja.returncode == 0, jinja.stderr[-3000:]
    assert "from LLaMA-Factory 0.9.6.dev0 template 'qwen3'" in jinja.stdout.splitlines()[0]
    assert "verified on" not in jinja.stderr  # a tested version and a known class: nothing to prove
    model = build_tiny_model(tmp_path / "tiny", QWEN3)
    repair = _cli(dev_root, "repair", str(model), "--template", "qwen3")
    assert repair.returncode == 0, repair.stderr[-3000:]
    check = _cli(dev_root, "check", str(model), "--template", "qwen3", "--json")
    assert check.returncode == 0, check.stderr[-3000:] + check.stdout[-3000:]
    report = json.loads(check.stdout)
    assert report["lf_version"] == "0.9.6.dev0"
    statuses = {c["id"]: c["status"] for c in report["cases"]}
    assert statuses["tools_no_system/full"] == "identical" and statuses["tools_no_system/gen"] == "identical"
    # Ollama: the Modelfile writes the tool list, without the leading newlines when there is no system text;
    # what differs is what 0.9.5 declares too (JSON key order from Go maps; {{idx}} left literal)
    ollama = _cli(dev_root, "check", str(model), "--template", "qwen3", "--engine", "ollama", "--json")
    assert ollama.returncode in (0, 1), ollama.stderr[-3000:]
    cases = json.loads(ollama.stdout)["cases"]
    assert not [c for c in cases if "does not support tools" in (c.get("reason") or "")]
    for c in cases:
        if c["status"] == "differs":
            text = c["first_diff"]["expected_text"]
            assert text.startswith('<tools>\n{"type": "function"') or "{{content}} and 1 stay literal" in text, c
    # the dev line's rule matters: without it the tools-without-system case differs
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(dev_root / "lf-dev"), str(TESTS), str(REPO)]), DISABLE_VERSION_CHECK="1")
    proc = subprocess.run([sys.executable, "-c", TOOLS_NO_SYSTEM], capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.split("RESULT", 1)[1])
    assert out["spec"] is True
    assert out["dev"] == ["identical", "identical"]
    assert "differs" in out["0.9.5 rule"], out
    media = out["media"]  # the dev line's plugins (moss_vl is new) all have a rule; the parts match LF's text
    assert media["moss_vl"] == ["MossVLPlugin", "compiled", ["image"]], media["moss_vl"]
    assert media["paligemma"][1] == "refused" and len(media) >= 49, media
    assert out["qwen3_vl_media"] == [True, {"image": 2, "video": 1}], out["qwen3_vl_media"]
