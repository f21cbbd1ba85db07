"""The baseline: LF 0.9.5's own Jinja export against its training ids, and ours beside it.

The compiler issue measured LF's own `_get_jinja_template` token-identical for 69 of 121
templates on four plain conversations (Qwen2.5 tokenizer). This test re-measures it with
the same verifier, and measures the compiled templates on the same inputs.
"""

from __future__ import annotations

import pytest

from lf_template_ext.lf import compat as lf_compat
from lf_template_ext.model.corpus import PLAIN_PROBES, probe_corpus
from lf_template_ext.model.options import TemplateOptions
from lf_template_ext.verifier.probe import verify_template


@pytest.mark.slow
def test_lf_own_jinja_vs_compiled(qwen25):
    convs = [p for p in probe_corpus() if p["id"] in PLAIN_PROBES]
    names = lf_compat.template_names()
    lf_exact = ours_exact = ours_text_equal = 0
    for name in names:
        prepared = lf_compat.prepare(name, qwen25, TemplateOptions())
        try:
            lf_jinja = prepared.template._get_jinja_template(prepared.tokenizer)
        except ValueError:  # dict slots: LF logs "Cannot add this chat template" and keeps the native one
            lf_jinja = None
        if lf_jinja is not None:
            full = [c for c in verify_template(name, qwen25, convs, jinja=lf_jinja, prepared=prepared).cases if c.id.endswith("/full")]
            lf_exact += all(c.status == "identical" for c in full)
        try:
            ours = verify_template(name, qwen25, convs, prepared=prepared).cases
        except Exception:  # chatglm3/yuan dict slots need their family's tokens: covered in test_coverage
            continue
        full = [c for c in ours if c.id.endswith("/full")]
        ours_exact += all(c.status == "identical" for c in full)
        ours_text_equal += all(c.status in ("identical", "boundary_only") for c in ours)
    print(f"\nLF's own Jinja: {lf_exact}/{len(names)} token-identical; compiled: {ours_exact}/{len(names)} "
          f"token-identical, {ours_text_equal}/{len(names)} text-identical (rest boundary-only)")
    assert lf_exact == 69  # the figure the issue reports for LF 0.9.5
    assert ours_exact > lf_exact
    assert ours_text_equal >= len(names) - 2  # chatglm3 / yuan: their slot tokens are not Qwen2.5 tokens
