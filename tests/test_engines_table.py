"""docs/engines.md is the fold of the three generated per-engine tables, and no engine differs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_engines_table_is_up_to_date():
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "engines_table.py"), "--check"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr


def test_no_engine_cell_differs_and_every_template_has_a_row():
    sys.path.insert(0, str(REPO / "scripts"))
    import engines_table

    text = (REPO / "docs" / "engines.md").read_text(encoding="utf-8")
    rows = [l for l in text.splitlines() if l.startswith("| ") and not l.startswith(("| template", "| column", "| vLLM", "| Ollama", "| LMDeploy"))]
    assert "DIFFERS" not in "\n".join(rows)
    assert len(engines_table.read_table(REPO / "docs" / "coverage.md", "template")) == len(rows)
