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


def print_report(report: Any, out: Optional[TextIO] = None, *, verbose: bool = True) -> None:
    """The cases grouped by cause, then the summary.

    Identical cases are one count line. Cases that diverge at the same first token pair (or are refused for
    the same reason) are one group: its count, its case ids, and one example's first diverging token with the
    decoded context on both sides (a boundary-only case: each side's token split). One cause, one group: a
    template whose default system differs shows one DIFFERS group, not one line per probe."""
    out = out or sys.stdout
    groups: dict[tuple, list[Any]] = {}
    for case in report.cases:
        if case.status == "identical":
            key: tuple = ("identical",)
        elif case.first_diff is not None and case.status in ("differs", "boundary_only"):
            d = case.first_diff
            key = (case.status, tuple(d.expected_tokens[:1]), tuple(d.actual_tokens[:1]), d.expected_text == d.actual_text)
        else:
            key = (case.status, case.reason)
        groups.setdefault(key, []).append(case)
    for key, cases in groups.items():
        case = cases[0]
        label = STATUS_LABEL.get(case.status, case.status)
        if key == ("identical",):
            print(f"  {label:13s} {_ids(cases)}", file=out)
            continue
        line = f"  {label:13s} {_ids(cases)}"
        if case.first_diff is not None and case.status in ("differs", "boundary_only"):
            d = case.first_diff
            training, engine = d.shown(case.status)
            where = f" ({case.id})" if len(cases) > 1 else ""
            line += f"  at token {d.index}{where}: training {training} | engine {engine}"
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


def _ids(cases: list[Any], shown: int = 4) -> str:
    """One case's id, or ``N cases: a, b, c, d and K more``."""
    if len(cases) == 1:
        return cases[0].id
    ids = ", ".join(c.id for c in cases[:shown])
    return f"{len(cases)} cases: {ids}" + (f" and {len(cases) - shown} more" if len(cases) > shown else "")


def dump(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)


def verdict(ok: bool, what: str, out: Optional[TextIO] = None) -> None:
    print(("ALIGNED: " if ok else "MISALIGNED: ") + what, file=out or sys.stdout)
