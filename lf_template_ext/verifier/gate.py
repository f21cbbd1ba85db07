"""THE gate before anything is written: a snapshot that needs proof is proven on the probe corpus.

``lf.compat`` decides *whether* a template needs proof (``Snapshot.needs_proof``: an untested LF
version, a Template subclass the compiler does not know; docs/lf-versions.md). This module gives
the proof: the compiled template is verified against the installed LF's own encoding of the probe
corpus (``verifier.probe``). Nothing differs: go ahead, with one line naming the reason and the
evidence on stderr. Anything differs: ``UnsupportedTemplateError`` (exit 3) with the first divergence.

Every command that writes or serves a compiled template (``repair``, ``emit``, ``jinja``, ``gguf``,
``check``, the export hook, ``compile_jinja``) takes its snapshot from :func:`snapshot` here;
``tests/test_layout.py`` keeps ``lf_compat.snapshot`` out of every other module above ``lf/``.
"""

from __future__ import annotations

import sys
import threading
from typing import Any, Optional

from ..errors import UnsupportedTemplateError
from ..lf import compat as lf_compat
from ..model.options import TemplateOptions


def snapshot(
    template: Any, tokenizer: Any, options: TemplateOptions, *, trained_with: Optional[str] = None
) -> lf_compat.Snapshot:
    """``lf_compat.snapshot``, proven by :func:`prove` when it needs proof."""
    snap = lf_compat.snapshot(template, tokenizer, options, trained_with=trained_with)
    if snap.needs_proof:
        key = id(snap.prepared)  # prepare() caches: a command asking twice is proven (and told) once
        with _lock:
            done = _PROVEN.get(key)
        if done is None or done[0] is not snap.prepared:
            notice = prove(snap, template, tokenizer)
            print(notice, file=sys.stderr)
            with _lock:
                if len(_PROVEN) >= 16:
                    _PROVEN.pop(next(iter(_PROVEN)))
                _PROVEN[key] = (snap.prepared, notice)
    return snap


_lock = threading.Lock()
_PROVEN: dict[int, tuple[Any, str]] = {}


def prove(snap: lf_compat.Snapshot, template: Any, tokenizer: Any) -> str:
    """Verify ``snap``'s compiled template on the probe corpus; the one-line notice, or raise."""
    from ..compiler import compile_spec
    from .probe import verify_template

    reasons = "; ".join(snap.needs_proof)
    try:
        jinja = compile_spec(snap.spec, snap.facts)
    except UnsupportedTemplateError as e:
        raise UnsupportedTemplateError(snap.name, f"{reasons}: cannot be compiled: {e.reason}", _feature(snap)) from None
    report = verify_template(template, tokenizer, jinja=jinja, options=snap.prepared.options, prepared=snap.prepared)
    s = report.summary
    checked = len(report.cases) - s["unsupported"]
    differs = [c for c in report.cases if c.status == "differs"]
    if differs or checked == 0:
        first = differs[0] if differs else None
        where = _divergence(first) if first is not None else "LF encodes none of the probe cases"
        raise UnsupportedTemplateError(
            snap.name,
            f"{reasons}: the compiled template differs from this LF's own encoding on {len(differs)} of "
            f"{len(report.cases)} probe cases; first divergence: {where}. Nothing was written "
            "(see docs/lf-versions.md)",
            _feature(snap),
        )
    extra = f", {s['unsupported']} LF cannot encode" if s["unsupported"] else ""
    return (
        f"lf-template-ext: {reasons}: template {snap.name} verified on {len(report.cases)} probe cases, "
        f"0 differ{extra}"
    )


def _feature(snap: lf_compat.Snapshot) -> str:
    return "template class" if any(r.startswith("template class") for r in snap.needs_proof) else "untested LF version"


def _divergence(case: Any) -> str:
    d = case.first_diff
    if d is None:
        return f"case {case.id}: {case.reason}"
    return f"case {case.id} at token {d.index}: LF encodes {d.expected_text!r} where the template renders {d.actual_text!r}"
