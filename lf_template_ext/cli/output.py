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


def apply_and_tell(args: Any, plan: Any, target: str, serves: str, how: str = "") -> int:
    """Stage ``plan``; ``--dry-run`` shows it (``--diff``: the diff), else commits it through the journal;
    then what changed, the backup and the alignment. Every repair path (LF templates, LF's v1 path) ends here."""
    from ..workflows.repair import stage_plan

    for note in plan.notes:
        print(f"note: {note}", file=sys.stderr)
    txn = stage_plan(plan)
    if args.dry_run:
        if not txn.changes:
            print(f"nothing to change: {target} already serves {serves}")
        elif getattr(args, "diff", False):
            sys.stdout.write(txn.diff())
        else:
            print_dry_run(txn, target)
        return 0
    backup = txn.commit()
    if backup is None:
        print(f"nothing to change: {target} already serves {serves}")
    else:
        print(f"repaired {target} for {serves}{' ' + how if how else ''}:")
        for c in txn.changes:
            print(f"  {c.kind:7s} {c.relpath}")
        print(f"backup: {backup.path}  (undo with: lf-template restore {target})")
    print("alignment after repair:")
    print_report(plan.report, verbose=False)
    return 0


def print_dry_run(txn: Any, target: str) -> None:
    """``--dry-run``: one line per file (``--diff`` shows the diff itself)."""
    import difflib

    print(f"would change {len(txn.changes)} file(s) in {target}:")
    for c in txn.changes:
        if c.before is None or c.after is None:
            size = len(c.after if c.after is not None else c.before or b"")
            print(f"  {c.kind:7s} {c.relpath} ({size} bytes)")
            continue
        try:
            a, b = c.before.decode("utf-8").splitlines(), c.after.decode("utf-8").splitlines()
        except UnicodeDecodeError:
            print(f"  {c.kind:7s} {c.relpath} (binary, {len(c.before)} -> {len(c.after)} bytes)")
            continue
        diff = list(difflib.unified_diff(a, b, lineterm="", n=0))
        plus = sum(1 for line in diff if line.startswith("+") and not line.startswith("+++"))
        minus = sum(1 for line in diff if line.startswith("-") and not line.startswith("---"))
        print(f"  {c.kind:7s} {c.relpath} (+{plus} -{minus} lines)")
    print("nothing written (--diff shows the changes; run without --dry-run to apply them, with a backup)")
