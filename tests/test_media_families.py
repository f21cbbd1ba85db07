"""Opt-in (``LF_TEMPLATE_EXT_MEDIA_SWEEP=1``): the multimodal probe for every processor fixture family.

For each family of ``tests/processor_fixtures.py``: its LF template (LF's full media path with LF's default
media arguments) against a chat template expanded by the family's real HF processor, on the generated probe
corpus (images incl. a 1600x1200 one, a 4-frame video and an MPEG-4 file, a one-second tone for audio
families). ``LF_TEMPLATE_EXT_MEDIA_JINJA`` picks the chat template: ``compiled`` (default: the package's
compiled template, ``compile_jinja``) or ``own`` (the model's own chat template). The report of every
family is printed (``-s``); docs/multimodal-verify.md holds the last run's findings.

What must hold for any template: the verifier classifies every difference (a group with its fix, or
``unsupported`` with LF's own error). With the compiled template, a ``placeholder`` difference is the
compiler's to fix unless listed in ``KNOWN`` with its reason, and the family's verdict with resolution taken out
(``verifier.media.expansion_verdict``) is the one docs/multimodal-verify.json records (scripts/multimodal_verify.py).

About 2-4 minutes for all families (video decoding, the large image): CI does not run it.
"""

from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.skipif(
    os.environ.get("LF_TEMPLATE_EXT_MEDIA_SWEEP") != "1",
    reason="the multimodal family sweep is opt-in: set LF_TEMPLATE_EXT_MEDIA_SWEEP=1",
)

processor_fixtures = pytest.importorskip(
    "processor_fixtures", reason="the processor fixtures (tests/processor_fixtures.py) are not in this tree"
)

JINJA = os.environ.get("LF_TEMPLATE_EXT_MEDIA_JINJA", "compiled")

#: family -> why its compiled template still differs in placeholder cases (empty: none expected)
KNOWN: dict[str, str] = {
    # slot-wise SentencePiece: '▁USER' after the system text in training, 'USER' in the whole string (not media)
    processor_fixtures.LLAVA: "LF encodes each slot alone on Llama-2's SentencePiece (scripts/multimodal_verify.py WHY)",
} if processor_fixtures is not None else {}


def _families() -> list[str]:
    return list(processor_fixtures.FAMILIES) if processor_fixtures is not None else []


@pytest.mark.parametrize("name", _families())
def test_family_probe(name, tmp_path):
    from lf_template_ext.lf import media as lf_media
    from lf_template_ext.verifier import media as vm

    family = processor_fixtures.FAMILIES[name]
    path = processor_fixtures.processor_dir(name, tmp_path / "model")
    processor = lf_media.load_processor(str(path), trust_remote_code=family.trust_remote_code)
    assert processor is not None, f"{name}: AutoProcessor gave no *Processor"
    kinds = [k for k in ("image", "video", "audio") if getattr(family, f"{k}_token", None)]
    jinja = None
    if JINJA == "compiled":
        import lf_template_ext

        jinja = lf_template_ext.compile_jinja(family.lf_template, processor.tokenizer)
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from multimodal_verify import SERVING  # a server's --mm-processor-kwargs to expand like training

    report = vm.verify_media(family.lf_template, processor, jinja, kinds=kinds, processor_kwargs=SERVING.get(name))
    text = vm.format_report(report)
    print(f"\n=== {name} [{family.lf_template}, {JINJA} template]\n{text}")
    for case in report.cases:
        if case.status == "differs":
            assert case.group in vm.GROUPS, f"{case.id} differs without a group\n{text}"
        if case.status == "unsupported":
            assert case.reason, text
    if JINJA == "compiled":
        from multimodal_verify import load

        recorded = load().get("families", {}).get(name, {})
        assert recorded.get("verdict") == vm.expansion_verdict(report.cases), (
            f"{name}: docs/multimodal-verify.json is stale: run python scripts/multimodal_verify.py\n{text}"
        )
    if JINJA == "compiled" and name not in KNOWN:
        placeholder = vm.groups(report)["placeholder"]
        assert not placeholder, f"{name}: the compiled template differs from LF's text around the media\n{text}"
