"""Regenerate docs/engines-ollama.md: every LF template x feature, rendered by Go's text/template.

    python scripts/ollama_table.py            # writes docs/engines-ollama.md
    python scripts/ollama_table.py --check    # exit 1 if the committed file is stale

Needs the Go toolchain (Debian golang-go >= 1.19), ../shared/fixtures (tokenizer fixtures) and the test
environment (scripts/env.sh). tests/test_engine_ollama.py asserts the committed file equals this output.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "tests" / "ollama_render")]
DOC = REPO / "docs" / "engines-ollama.md"


def build() -> str:
    import ollama_check

    from lf_template_ext.lf import compat as lf_compat

    with tempfile.TemporaryDirectory(prefix="ollama_render-") as tmp:
        binary = ollama_check.build_renderer(tmp)
        rows = ollama_check.evaluate_all(lf_compat.template_names(), binary)
    return ollama_check.document(rows)


from _script_utils import write_or_check  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/engines-ollama.md is stale")
    args = parser.parse_args()
    return write_or_check(build(), DOC, "ollama_table.py", args.check)

if __name__ == "__main__":
    sys.exit(main())
