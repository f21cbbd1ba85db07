"""Every registered LF template, verified on the probe corpus with a real tokenizer.

Asserts what the compiler issue promises: no text difference anywhere (token-identical or
boundary-only, the latter reported), and the committed table in docs/coverage.md is the
table these runs produce (so the docs cannot drift from the code).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from harness import COLUMNS, coverage_row

from lf_template_ext.lf import compat as lf_compat

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from whole_sweep import whole_cells  # noqa: E402

DOC = Path(__file__).resolve().parents[1] / "docs" / "coverage.md"


def _doc_rows() -> dict[str, list[str]]:
    rows = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\| (\S+) \| (\w+) \| (\S+) \| (.+) \|$", line)
        if m and m.group(1) not in ("template", "---"):
            rows[m.group(1)] = [m.group(2), m.group(3)] + [c.strip() for c in m.group(4).split(" | ")]
    return rows


DOC_ROWS = _doc_rows() if DOC.exists() else {}
#: the *whole* column: scripts/whole_sweep.py's committed results (re-run: LF_TEMPLATE_EXT_WHOLE_SWEEP=1 tests/test_whole.py)
WHOLE = whole_cells()


@pytest.mark.slow
@pytest.mark.parametrize("name", lf_compat.template_names())
def test_template_is_reproduced(name):
    row = coverage_row(name)
    cells = row["cells"]
    differs = {c: notes for c, (v, notes) in cells.items() if v == "DIFFERS"}
    assert not differs, f"{name}: text differences {differs}"
    for column in ("plain", "system", "gen_prompt"):
        assert cells[column][0].split(" ")[0] in ("exact", "boundary"), (name, column, cells[column])
    for column in ("tools", "reasoning"):
        assert not cells[column][0].startswith("unsupported"), (name, column, cells[column])
    assert name in DOC_ROWS, f"{name} missing from {DOC}; regenerate with scripts/coverage_table.py"
    expected = [row["kind"], row["tokenizer"]] + [cells[c][0] for c in COLUMNS] + [WHOLE.get(name, "not run")]
    assert DOC_ROWS[name] == expected, f"docs/coverage.md row for {name} is stale: {DOC_ROWS[name]} != {expected}"


def test_table_lists_every_template_once():
    assert sorted(DOC_ROWS) == sorted(lf_compat.template_names())
