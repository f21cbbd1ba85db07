#!/usr/bin/env python
"""Benchmark: preparing LF templates on copies of a frozen tokenizer vs full deep copies, same process.

Every sweep of the test suite (coverage, Ollama, LMDeploy, LF's own Jinja, the 0.9.4 overlay)
prepares LF's templates one by one: ``lf_compat.prepare`` runs LF's real
``get_template_and_fix_tokenizer`` on a private copy of the tokenizer. A deep copy of a
150k-vocabulary fast tokenizer re-parses its Rust backend (~1.4 s); copies of a *frozen*
tokenizer (``modeldir/tokenizer_copy.py``) share it until they write to it.

Measures, on the same templates and the same tokenizer (the test harness's Qwen2.5 with every
template's markers added):

* **baseline**: the tokenizer not frozen, so every preparation deep-copies it (what users' tokenizers
  get, and what every sweep paid before);
* **frozen**: the same tokenizer frozen (what the test fixtures are).

Prints both times and the ratio. Run in the test venv with the fixtures (``tests/fixtures/README.md``):

    python scripts/bench_prepare.py                 # all of LF's templates
    python scripts/bench_prepare.py --templates 20  # the first 20
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--templates", type=int, default=0, help="only the first N of LF's templates (default: all)")
    args = ap.parse_args()

    import harness

    from lf_template_ext.lf import compat as lf_compat
    from lf_template_ext.model.options import TemplateOptions
    from lf_template_ext.modeldir.tokenizer_copy import is_frozen

    names = lf_compat.template_names()
    names = names[: args.templates] if args.templates else names
    frozen = harness._marked_qwen25()
    assert is_frozen(frozen)
    plain = copy.deepcopy(frozen)  # the same tokenizer, not frozen: full copies
    assert not is_frozen(plain)

    def run(tok) -> float:
        lf_compat._PREPARED.clear()
        lf_compat._FIXED.clear()
        t0 = time.perf_counter()
        for n in names:
            lf_compat.prepare(n, tok, TemplateOptions())
        return time.perf_counter() - t0

    base = run(plain)
    fast = run(frozen)
    print(f"templates: {len(names)} (LF {lf_compat.installed_version()}), tokenizer: Qwen2.5 + markers ({len(frozen)})")
    print(f"baseline (deep copies):      {base:7.1f} s  ({base / len(names):.2f} s per template)")
    print(f"frozen (copy-on-write):      {fast:7.1f} s  ({fast / len(names):.3f} s per template)")
    print(f"speed-up: {base / fast:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
