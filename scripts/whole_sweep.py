"""Every LF template in ``template_ext_tokenize: whole``: the *whole* column of docs/coverage.md.

    python scripts/whole_sweep.py               # every template: writes docs/coverage-whole.json (~15-30 min)
    python scripts/whole_sweep.py qwen llama3   # only these; the others keep their committed result

For each template, the probe corpus plus whole mode's boundary corpus (``tests/whole_corpus.py``: leading and
trailing whitespace and newlines in every role, contents that merge with the slot before them) goes through LF's
real supervised processor with the template wrapped whole (``lf.whole_template``), with ``train_on_prompt`` and
``mask_history`` variants; a case is exact when the ids are the compiled template's rendering tokenized whole and
the labels are LF's label rule (``whole_corpus.check_template``). ``python scripts/coverage_table.py`` then
writes the column from the JSON; ``tests/test_whole.py::test_every_template_whole``
(``LF_TEMPLATE_EXT_WHOLE_SWEEP=1``) re-runs it and compares with the JSON.

Run it in the test venv with ``HF_HUB_OFFLINE=1`` and the fixtures (``LF_TEMPLATE_EXT_FIXTURES``).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))
RESULTS = REPO / "docs" / "coverage-whole.json"


def cell(result: dict) -> str:
    """The coverage table's cell for one template's result."""
    if result.get("failures"):
        return f"FAILS ({len(result['failures'])})"
    text = "exact"
    if result.get("unsupported"):
        text += f" ({result['unsupported']} unsupported)"
    if result.get("text_only"):
        text += " text only"
    return text


def whole_cells() -> dict[str, str]:
    """The committed results as table cells, by template."""
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    return {name: cell(r) for name, r in results.items()}


def sweep_one(name: str) -> dict:
    from harness import harness_tokenizer
    from test_whole import VARIANTS
    from whole_corpus import check_template

    tok, label = harness_tokenizer(name)
    result = check_template(name, tok, data_variants=VARIANTS)
    return {
        "tokenizer": label, "cases": result["cases"], "exact": result["exact"], "unsupported": result["unsupported"],
        "text_only": bool(result.get("text_only")), "failures": [str(f)[:300] for f in result["failures"]],
    }


def main() -> int:
    from lf_template_ext.lf import compat as lf_compat

    names = sys.argv[1:] or lf_compat.template_names()
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    t0 = time.time()
    for i, name in enumerate(names, 1):
        results[name] = sweep_one(name)
        print(f"[{i}/{len(names)}] {name}: {cell(results[name])}", file=sys.stderr, flush=True)
    results = {k: results[k] for k in sorted(results)}
    RESULTS.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    failing = [k for k, r in results.items() if r["failures"]]
    print(f"{len(names)} template(s) in {time.time() - t0:.0f} s; failing: {failing or 'none'}", file=sys.stderr)
    return 1 if failing else 0


if __name__ == "__main__":
    raise SystemExit(main())
