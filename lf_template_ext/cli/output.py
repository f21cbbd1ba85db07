"""Human-readable output shared by the commands (reports, diffs, summaries)."""

from __future__ import annotations

import json
import sys
from typing import Any, Optional, TextIO

STATUS_LABEL = {
    "identical": "identical",
    "boundary_only": "boundary-only",
    "differs": "DIFFERS",
    "unsupported": "unsupported",
}


def _short(text: str, limit: int = 80) -> str:
    r = repr(text)
    return r if len(r) <= limit else r[: limit - 3] + "..."


def print_report(report: Any, out: Optional[TextIO] = None, *, verbose: bool = True) -> None:
    """One line per case; the first diverging token with decoded context on both sides."""
    out = out or sys.stdout
    for case in report.cases:
        label = STATUS_LABEL.get(case.status, case.status)
        line = f"  {label:13s} {case.id}"
        if case.first_diff is not None and case.status in ("differs", "boundary_only"):
            d = case.first_diff
            line += f"  at token {d.index}: training {_short(d.expected_text)} | engine {_short(d.actual_text)}"
        elif case.reason and (verbose or case.status != "unsupported"):
            line += f"  ({case.reason})"
        print(line, file=out)
    s = report.summary
    print(
        f"summary: {s['identical']} identical, {s['boundary_only']} boundary-only, {s['differs']} differ, "
        f"{s['unsupported']} unsupported",
        file=out,
    )
    if s["boundary_only"]:
        print(
            "warning: boundary-only cases render the same text, split into different tokens at an LF slot boundary "
            "(LF tokenizes each slot on its own); --strict treats them as failures",
            file=sys.stderr,
        )


def dump(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)


def verdict(ok: bool, what: str, out: Optional[TextIO] = None) -> None:
    print(("ALIGNED: " if ok else "MISALIGNED: ") + what, file=out or sys.stdout)
