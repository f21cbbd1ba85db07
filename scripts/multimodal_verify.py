"""The multimodal family sweep: the compiled template, expanded by each family's real HF processor, against LF's
training ids; writes docs/multimodal-verify.json, which the coverage table's *multimodal* column reads.

    python scripts/multimodal_verify.py                 # all processor fixtures (tests/processor_fixtures.py)
    python scripts/multimodal_verify.py NAME [NAME...]  # some families; the others' records are kept

Needs the test environment and ../shared/fixtures (the tokenizers the processor fixtures borrow). A few minutes on
2 cores (video decoding, the 1600x1200 image). tests/test_media_verify.py re-runs one cheap family and asserts the
record says the same; ``LF_TEMPLATE_EXT_MEDIA_SWEEP=1 pytest tests/test_media_families.py`` runs every family.

For each family: ``verify_media`` of its LF template with LF's default media arguments against
``compile_jinja`` of that template (the Jinja a repaired dir serves) expanded by the processor. Resolution is
taken out (``verifier.media.case_after_resolution``): a case whose media the server sees at another resolution
counts as what the engine gives with the media as LF resized and sampled them (the processor's limits like
training's, or ``modeldir.media.resize_like_training`` on the client). The verdict
(``verifier.media.expansion_verdict``): ``exact after expansion`` (ids equal, the expansion included),
``boundary-only``, ``differs`` or ``unsupported``. A template is *exact after expansion* in docs/coverage.md
when every family verified on it is.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))
RECORD = REPO / "docs" / "multimodal-verify.json"

#: processor call settings a server needs to expand like training (vLLM: ``--mm-processor-kwargs``), by family
SERVING = {
    # LF calls InternVL's image processor itself, with the config's crop_to_patches (false: one 448x448 tile);
    # transformers' InternVLProcessor turns crop_to_patches on for every call (its images_kwargs default)
    "OpenGVLab--InternVL3-1B-hf": {"crop_to_patches": False},
}

#: why a family is not exact after expansion (checked against the run: a family listed here must not be exact)
WHY = {
    "llava-hf--llava-1.5-7b-hf": (
        "the fixture's tokenizer (LLaVA-1.5's Llama-2 SentencePiece, legacy): LF encodes each slot alone and gets "
        "'▁USER' after the system text where the whole-string rendering gets 'USER' (slot-wise tokenization, "
        "outside the media; `template_ext_tokenize: whole` does not encode media); the coverage table checks "
        "`llava` on Qwen2.5's tokenizer"
    ),
    "Qwen--Qwen3-VL-8B-Instruct": (
        "the video expansion's text: LF 0.9.5's Qwen3-VL plugin writes other timestamps than the processor "
        "(`<0.2 seconds>` vs `<0.0 seconds>` for frames) even at training's resolution: LF's plugin, not the template"
    ),
    "zai-org--GLM-4.1V-9B-Thinking": (
        "images: boundary-only (a token split at an LF slot boundary by the assistant's empty thought: '>\\n\\n' + '\\n' where the whole "
        "string gives '>\\n\\n\\n'; `template_ext_tokenize: whole` removes that for text, it does not encode media); "
        "video: LF 0.9.5's own Glm4vPlugin fails with transformers 5.6 (`Glm4vVideoProcessorInitKwargs got an "
        "unexpected keyword argument 'images'`): LF itself"
    ),
}


def sweep_family(name: str, workdir: str) -> dict:
    """One family's record: its LF template, verdict, report summary and each case's status after resolution."""
    import processor_fixtures

    from lf_template_ext.lf import media as lf_media
    from lf_template_ext.verifier import media as vm

    family = processor_fixtures.FAMILIES[name]
    path = processor_fixtures.processor_dir(name, Path(workdir) / name)
    processor = lf_media.load_processor(str(path), trust_remote_code=family.trust_remote_code)
    kinds = [k for k in ("image", "video", "audio") if getattr(family, f"{k}_token", None)]
    report = vm.verify_media(family.lf_template, processor, kinds=kinds, processor_kwargs=SERVING.get(name))
    verdict = vm.expansion_verdict(report.cases)
    return {
        "lf_template": family.lf_template,
        "verdict": verdict,
        "processor_kwargs": SERVING.get(name, {}),
        "summary": report.summary,
        "groups": {g: ids for g, ids in vm.groups(report).items() if ids},
        "by_kind": by_kind(report),
        "cases": {c.id: vm.case_after_resolution(c) for c in report.cases},
        "why": WHY.get(name, "") if verdict != "exact after expansion" else "",
        "report": vm.format_report(report).splitlines()[:40],
    }


def by_kind(report) -> dict:
    """The verdict of each media kind's cases (``image/...``, ``video/...``, ``audio/...``)."""
    from lf_template_ext.verifier import media as vm

    kinds = sorted({c.id.split("/", 1)[0] for c in report.cases})
    return {k: vm.expansion_verdict([c for c in report.cases if c.id.startswith(k + "/")]) for k in kinds}


def load() -> dict:
    return json.loads(RECORD.read_text(encoding="utf-8")) if RECORD.exists() else {}


def exact_templates(record: dict | None = None) -> set[str]:
    """LF templates every verified family of which is exact after expansion."""
    families = (load() if record is None else record).get("families", {})
    by_template: dict[str, list[str]] = {}
    for r in families.values():
        by_template.setdefault(r["lf_template"], []).append(r["verdict"])
    return {t for t, vs in by_template.items() if all(v == "exact after expansion" for v in vs)}


def main() -> int:
    import processor_fixtures
    import transformers

    from lf_template_ext.lf import compat as lf_compat

    names = sys.argv[1:] or list(processor_fixtures.FAMILIES)
    record = load()
    families = record.get("families", {})
    with tempfile.TemporaryDirectory(prefix="lf-template-ext-mmverify-") as d:
        for i, name in enumerate(names, 1):
            t0 = time.time()
            families[name] = sweep_family(name, d)
            r = families[name]
            print(f"[{i}/{len(names)}] {name} ({r['lf_template']}): {r['verdict']} ({time.time() - t0:.0f} s)", file=sys.stderr)
            if r["verdict"] != "exact after expansion" and name not in WHY:
                print(f"  not exact and no reason in WHY: {r['report'][:8]}", file=sys.stderr)
    record = {
        "lf_version": lf_compat.check_version(),
        "transformers": transformers.__version__,
        "families": dict(sorted(families.items())),
        "exact_templates": sorted(exact_templates({"families": families})),
    }
    RECORD.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
