"""Results of a token-level comparison: cases, their status, the first divergence, the report.

Status of a case:

* ``identical``: same ids;
* ``boundary_only``: different ids, same decoded text. LF tokenizes every slot piece on its
  own, so a BPE merge across a piece boundary (e.g. a response starting with newlines)
  splits differently when the text is tokenized whole. Reported, never hidden;
* ``differs``: the text differs (or the template raised where LF encodes);
* ``unsupported``: LF itself cannot encode the conversation (the reason says why).

The exit-code rule of every check is :func:`exit_code` (docs/contracts.md "Exit codes").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

from .._version import __version__

SCHEMA_VERSION = 1
STATUSES = ("identical", "boundary_only", "differs", "unsupported")
WINDOW_BEFORE = 4
WINDOW_AFTER = 8
#: tokens shown one by one from the first divergence (``FirstDiff.expected_tokens``)
SPLIT_TOKENS = 4


@dataclass
class FirstDiff:
    index: int
    expected_ids: list[int]
    actual_ids: list[int]
    expected_text: str
    actual_text: str
    window_start: int = 0
    #: each side's tokens from the divergence on, decoded one by one (a boundary-only case renders the same
    #: text: its tokens show what differs)
    expected_tokens: list[str] = field(default_factory=list)
    actual_tokens: list[str] = field(default_factory=list)

    def shown(self, status: str, limit: int = 80) -> tuple[str, str]:
        """What to print for training and engine: the token split of a boundary-only case (``'\\n' + '\\n\\n'``
        vs ``'\\n\\n\\n'``), the decoded window otherwise; reprs, cut at ``limit`` characters."""
        if status == "boundary_only" and (self.expected_tokens or self.actual_tokens):
            return _cut(" + ".join(map(repr, self.expected_tokens)), limit), _cut(" + ".join(map(repr, self.actual_tokens)), limit)
        return _cut(repr(self.expected_text), limit), _cut(repr(self.actual_text), limit)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class CaseResult:
    id: str
    status: str
    first_diff: Optional[FirstDiff] = None
    reason: Optional[str] = None
    expected_len: Optional[int] = None
    actual_len: Optional[int] = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "status": self.status}
        d["first_diff"] = asdict(self.first_diff) if self.first_diff else None
        if self.reason:
            d["reason"] = self.reason
        if self.expected_len is not None:
            d["expected_len"] = self.expected_len
            d["actual_len"] = self.actual_len
        return d


@dataclass
class AlignmentReport:
    template: str
    options: dict[str, Any]
    engine: str
    lf_version: str
    cases: list[CaseResult] = field(default_factory=list)
    package_version: str = __version__
    schema_version: int = SCHEMA_VERSION
    #: how training encoded (``slots``: LF's own; ``whole``: ``template_ext_tokenize: whole``), the reference's rule
    tokenize: str = "slots"

    @property
    def summary(self) -> dict[str, int]:
        counts = {s: 0 for s in STATUSES}
        for c in self.cases:
            counts[c.status] += 1
        return counts

    @property
    def aligned(self) -> bool:
        """No case differs (boundary-only cases are aligned text, reported separately)."""
        return self.summary["differs"] == 0

    def exit_code(self, strict: bool = False) -> int:
        """:func:`exit_code` of this report's summary."""
        return exit_code(self.summary, strict=strict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "lf_version": self.lf_version,
            "package_version": self.package_version,
            "template": self.template,
            "options": self.options,
            "engine": self.engine,
            **({"tokenize": self.tokenize} if self.tokenize != "slots" else {}),
            "summary": self.summary,
            "cases": [c.to_dict() for c in self.cases],
        }


def _decode(tokenizer: Any, ids: list[int]) -> str:
    return tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)


def compare_ids(case_id: str, expected: list[int], actual: list[int], tokenizer: Any) -> CaseResult:
    """Classify two id sequences; on a difference, point at the first diverging token."""
    if expected == actual:
        return CaseResult(case_id, "identical", expected_len=len(expected), actual_len=len(actual))
    i = 0
    n = min(len(expected), len(actual))
    while i < n and expected[i] == actual[i]:
        i += 1
    start = max(0, i - WINDOW_BEFORE)
    exp_w, act_w = expected[start : i + WINDOW_AFTER], actual[start : i + WINDOW_AFTER]
    diff = FirstDiff(
        index=i,
        expected_ids=exp_w,
        actual_ids=act_w,
        expected_text=_decode(tokenizer, exp_w),
        actual_text=_decode(tokenizer, act_w),
        window_start=start,
        expected_tokens=[_decode(tokenizer, [t]) for t in expected[i : i + SPLIT_TOKENS]],
        actual_tokens=[_decode(tokenizer, [t]) for t in actual[i : i + SPLIT_TOKENS]],
    )
    same_text = _decode(tokenizer, expected) == _decode(tokenizer, actual)
    return CaseResult(
        case_id,
        "boundary_only" if same_text else "differs",
        first_diff=diff,
        expected_len=len(expected),
        actual_len=len(actual),
    )




def exit_code(
    summary: Mapping[str, int], *, strict: bool = False, missing_stop_ids: Sequence[int] = (), skipped: int = 0,
    allow_skipped: bool = True,
) -> int:
    """The one exit-code rule of a check (docs/contracts.md): 1 when any case differs, when boundary-only
    cases exist under ``strict``, when a template stop id is missing from what engines stop on, or
    when samples were skipped and that is not allowed; 0 otherwise. Bad input (2) and unsupported
    targets (3) are errors raised before a check runs, mapped by the CLI."""
    if missing_stop_ids or summary.get("differs", 0):
        return 1
    if strict and summary.get("boundary_only", 0):
        return 1
    if skipped and not allow_skipped:
        return 1
    return 0
