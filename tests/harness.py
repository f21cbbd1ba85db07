"""Which real tokenizer each LF template is checked with, and how the table is built.

Rule (from the compiler issue): the family's fixture where one loads offline; otherwise
Qwen2.5's tokenizer with the template's marker strings added as special tokens
("qwen2.5+markers"), because every chat-model family registers its role markers as special
tokens and a bare Qwen2.5 tokenizer would split them into BPE text.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
try:  # LF_TEMPLATE_EXT_FIXTURES, ../shared, the fetched cache (tests/fixtures_locate.py; conftest stops when none)
    from fixtures_locate import locate as _locate

    FIXTURES = _locate()
except Exception:  # noqa: BLE001 - reported once by conftest.pytest_sessionstart
    FIXTURES = REPO.parent / "shared" / "fixtures" / "models"

QWEN25 = "Qwen--Qwen2.5-1.5B-Instruct"

#: LF template -> fixture folder of its model family (tokenizer loads offline, MANIFEST.md).
FAMILY: dict[str, str] = {
    "qwen": QWEN25,
    "qwen2_vl": QWEN25,
    "qwen2_audio": QWEN25,
    "qwen2_omni": QWEN25,
    "llava_next_qwen": QWEN25,
    "qwen3": "Qwen--Qwen3-4B",
    "qwen3_nothink": "Qwen--Qwen3-4B",
    "qwen3_vl": "Qwen--Qwen3-4B",
    "qwen3_vl_nothink": "Qwen--Qwen3-4B",
    "qwen3_omni": "Qwen--Qwen3-4B",
    "qwen3_omni_nothink": "Qwen--Qwen3-4B",
    "deepseekr1": QWEN25,  # R1-Distill-Qwen ships the Qwen2.5 vocabulary (+ its markers, added below)
    "llama3": "meta-llama--Meta-Llama-3.1-8B-Instruct",
    "mllama": "meta-llama--Meta-Llama-3.1-8B-Instruct",
    "llava_next_llama3": "meta-llama--Meta-Llama-3.1-8B-Instruct",
    "gemma": "google--gemma-3-1b-it",
    "gemma2": "google--gemma-3-1b-it",
    "gemma3": "google--gemma-3-1b-it",
    "paligemma_chat": "google--gemma-3-1b-it",
    "mistral": "mistralai--Mistral-7B-Instruct-v0.3",
    "llava_next_mistral": "mistralai--Mistral-7B-Instruct-v0.3",
    "llava_next_video_mistral": "mistralai--Mistral-7B-Instruct-v0.3",
}

_MARKER = re.compile(r"<\|[^<>\s|]{1,40}\|>|<｜[^<>]{1,40}｜>|<[A-Za-z_][^<>\s]{0,30}>|</[A-Za-z_][^<>\s]{0,30}>|\[[A-Za-z_/]{3,30}\]")


@functools.lru_cache(maxsize=None)
def fixture_tokenizer(folder: str, trust_remote_code: bool = False) -> Any:
    from transformers import AutoTokenizer

    from lf_template_ext.modeldir.tokenizer_copy import freeze

    # Shared by every test: frozen, so that prepare's copies share its backend (modeldir/tokenizer_copy.py)
    return freeze(AutoTokenizer.from_pretrained(str(FIXTURES / folder), trust_remote_code=trust_remote_code))


def template_markers(template: Any) -> list[str]:
    """Stop words, dict-slot tokens and marker-looking strings of an LF template's slots."""
    found: list[str] = list(template.stop_words)
    found += [w.strip() for w in template.thought_words if w.strip()]
    found += [w.strip() for w in (getattr(template, "tool_call_words", None) or ()) if w.strip()]
    for f in (
        template.format_prefix,
        template.format_system,
        template.format_user,
        template.format_assistant,
        template.format_function,
        template.format_observation,
    ):
        for s in f.slots:
            if isinstance(s, dict):
                found.append(s["token"])
            elif isinstance(s, str):
                found.extend(_MARKER.findall(s.replace("{{content}}", " ").replace("{{idx}}", " ")))
    out: list[str] = []
    for m in found:
        if m and m not in out:
            out.append(m)
    return out


@functools.lru_cache(maxsize=None)
def _marked_qwen25() -> Any:
    """Qwen2.5's tokenizer with the markers of *every* registered template added, built once.

    One shared tokenizer (instead of one per template) keeps the suite fast; a marker of another
    template is harmless, since slot and probe text only contain their own template's markers.
    """
    from lf_template_ext.lf import compat as lf_compat
    from lf_template_ext.lf.compat import copy_tokenizer

    tok = copy_tokenizer(fixture_tokenizer(QWEN25))
    markers: list[str] = []
    for template in lf_compat._template_module().TEMPLATES.values():
        markers += [m for m in template_markers(template) if m not in markers]
    new = [m for m in markers if m not in tok.get_added_vocab()]
    tok.add_special_tokens({"additional_special_tokens": new}, replace_extra_special_tokens=False)
    from lf_template_ext.modeldir.tokenizer_copy import freeze

    return freeze(tok)


def harness_tokenizer(name: str) -> tuple[Any, str]:
    """(tokenizer, label) to check LF template ``name`` with."""
    folder = FAMILY.get(name)
    if folder is not None and (folder != QWEN25 or name.startswith(("qwen", "llava_next_qwen"))):
        return fixture_tokenizer(folder), folder.split("--", 1)[1]
    return _marked_qwen25(), "qwen2.5+markers"


# -- coverage table ---------------------------------------------------------------------------

COLUMNS = ("plain", "system", "gen_prompt", "tools", "reasoning", "adversarial", "multimodal")
_PLAIN = {"plain", "multi_turn", "multi_turn_no_system"}
_SYSTEM = {"system", "empty_system"}
_TOOLS = {"tools", "tools_no_system", "tools_parallel", "tools_with_text"}
_REASONING = {"reasoning", "reasoning_history_only", "reasoning_tools"}
_ADVERSARIAL = {"adversarial", "whitespace"}
FROZEN = __import__("datetime").datetime(2026, 11, 28, 12, 0, 0)


def _cell(cases: list[Any]) -> tuple[str, list[str]]:
    if not cases:
        return "n/a", []
    notes = sorted({f"{c.id}: {c.reason}" for c in cases if c.status == "unsupported" and c.reason})
    statuses = [c.status for c in cases]
    if "differs" in statuses:
        return "DIFFERS", [f"{c.id}: {c.reason or c.first_diff}" for c in cases if c.status == "differs"]
    live = [s for s in statuses if s != "unsupported"]
    if not live:
        return "unsupported", notes
    base = "exact" if all(s == "identical" for s in live) else "boundary"
    if len(live) < len(statuses):
        base += f" ({len(statuses) - len(live)} unsupported)"
    return base, notes


def coverage_row(name: str) -> dict[str, Any]:
    """Verify one LF template on the probe corpus (and its thinking variants); one table row."""
    from lf_template_ext.lf import compat as lf_compat
    from lf_template_ext.model.corpus import probe_corpus
    from lf_template_ext.model.options import TemplateOptions
    from lf_template_ext.verifier.probe import verify_template

    tok, label = harness_tokenizer(name)
    template = lf_compat._template_module().TEMPLATES[name]
    kind = lf_compat.template_kind(template, strict=False)  # an unknown class: its base's, proven by the gate
    probes = probe_corpus()
    cases = list(verify_template(name, tok, probes, frozen=FROZEN).cases)
    if kind in ("reasoning", "glm47"):
        reasoning_probes = [p for p in probes if _REASONING & {p["id"]}]
        for value in (False, None):
            opts = TemplateOptions(enable_thinking=value)
            r = verify_template(name, tok, reasoning_probes, options=opts, frozen=FROZEN)
            cases += [_renamed(c, f"@enable_thinking={value}") for c in r.cases]
            kw = [dict(p, id=f"{p['id']}@kwarg={value}", enable_thinking=value) for p in reasoning_probes]
            cases += list(verify_template(name, tok, kw, frozen=FROZEN).cases)
        r = verify_template(name, tok, reasoning_probes, options=TemplateOptions(mask_history=True), frozen=FROZEN)
        cases += [_renamed(c, "@mask_history") for c in r.cases]
    by_probe: dict[str, list[Any]] = {}
    for c in cases:
        by_probe.setdefault(c.id.split("@")[0].split("/")[0], []).append(c)

    def pick(ids: set[str], suffix: str | None = None) -> list[Any]:
        out = []
        for pid in ids:
            out += [c for c in by_probe.get(pid, []) if suffix is None or c.id.split("@")[0].endswith(suffix)]
        return out

    cells = {
        "plain": _cell(pick(_PLAIN, "/full")),
        "system": _cell(pick(_SYSTEM, "/full")),
        "gen_prompt": _cell(pick(_PLAIN | _SYSTEM, "/gen")),
        "tools": _cell(pick(_TOOLS)),
        "reasoning": _cell(pick(_REASONING)) if kind in ("reasoning", "glm47") else ("n/a", []),
        "adversarial": _cell(pick(_ADVERSARIAL)),
        "multimodal": multimodal_cell(name),
    }
    return {"template": name, "kind": kind, "tokenizer": label, "cells": cells, "cases": cases}


def multimodal_cell(name: str) -> tuple[str, list[str]]:
    """The *multimodal* cell: the template's media parts through the compiled Jinja vs LF's plugin
    (tests/media_check.py): ``exact after expansion`` (that, and the family sweep found the ids equal with the
    media expanded by the real processor: :func:`exact_after_expansion`), ``text+count`` (same text as LF's ``process_messages`` before expansion, same
    placeholder counts), ``refused`` (the plugin cannot be expressed; the reason is a note), ``n/a``
    (no plugin). Kinds the plugin takes but a template cannot render are named: ``(video refused)``."""
    from media_check import check_template

    from lf_template_ext.lf import compat as lf_compat
    from lf_template_ext.model import media as mm

    media = lf_compat.media_spec(lf_compat._template_module().TEMPLATES[name].mm_plugin)
    status, reason = mm.status(media)
    if status == "n/a":
        return "n/a", []
    if status == "refused":
        return "refused", [f"multimodal: {reason}"]
    refused = mm.kinds_refused(media)
    r = check_template(name)
    if not r.ok:
        return "DIFFERS", [f"multimodal: {r.engine_text!r} vs LF {r.lf_text!r}"]
    cell = ("exact after expansion" if name in exact_after_expansion() else "text+count") + (
        f" ({', '.join(refused)} refused)" if refused else ""
    )
    return cell, [f"multimodal ({k}): {why}" for k, why in refused.items()]


def exact_after_expansion() -> set[str]:
    """Templates verified *exact after expansion*: every processor-fixture family on them gives training's ids
    with the media expanded (docs/multimodal-verify.json, written by scripts/multimodal_verify.py)."""
    import json

    record = Path(__file__).resolve().parents[1] / "docs" / "multimodal-verify.json"
    return set(json.loads(record.read_text(encoding="utf-8")).get("exact_templates", [])) if record.exists() else set()


def _renamed(case: Any, suffix: str) -> Any:
    import dataclasses

    head, _, tail = case.id.partition("/")
    return dataclasses.replace(case, id=f"{head}{suffix}/{tail}")


def table_markdown(rows: list[dict[str, Any]], columns: tuple[str, ...] = COLUMNS) -> str:
    head = "| template | class | tokenizer | " + " | ".join(columns) + " |"
    sep = "|" + "---|" * (3 + len(columns))
    lines = [head, sep]
    for r in rows:
        cells = " | ".join(r["cells"][c][0] for c in columns)
        lines.append(f"| {r['template']} | {r['kind']} | {r['tokenizer']} | {cells} |")
    return "\n".join(lines) + "\n"
