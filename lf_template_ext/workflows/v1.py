"""Check and repair a model dir trained on LF's v1 path (``USE_V1=1``; its record says ``"lf_path": "v1"``).

v1 trains through its own renderers, not LF's templates (``lf.v1``), so the reference of every case is v1's
renderer run live on the probe corpus, and the engine side is the dir's chat template as transformers/vLLM
render it (whole text, ``add_special_tokens=False``), exactly as for the v0 path (``workflows.check``).
The repair writes the Jinja twin of the renderer (``lf.v1.JINJA``) only after it rendered every probe case
token-identical to the installed renderer: an LF whose renderer changed is refused (exit 3), never
mis-served. Files go through the journal (``workflows.repair.apply_plan``): ``chat_template.jinja`` and
``tokenizer_config.json``'s ``chat_template`` (same text), ``generation_config.json`` ``eos_token_id``
(tokenizer eos + ``<|im_end|>``, v1's end of turn), ``alignment_report.json``. Not written on this path:
SERVING.md and the Ollama/LMDeploy/Open WebUI files (their compilers start from an LF template, which v1
does not have); asking for them is exit 3.
"""

from __future__ import annotations

import os
from typing import Any, Optional

from ..errors import BadInputError, UnsupportedTemplateError
from ..lf import v1 as lf_v1
from ..model.options import TemplateOptions
from ..model.stops import missing_ids, ordered_ids
from ..modeldir.files import (
    CHAT_TEMPLATE_JINJA,
    CHAT_TEMPLATE_JSON,
    GENERATION_CONFIG,
    TOKENIZER_CONFIG,
    dump_json,
    engine_stop_ids,
    inspect_dir,
    load_json_object,
    read_chat_template,
)
from .check import CheckResult
from .repair import REPORT_FILE, REPORT_TIME, RepairPlan

#: the engines this path serves: the ones that render the dir's Jinja template
ENGINES = ("vllm", "hf", "sglang")


def _require_renderer() -> None:
    if not lf_v1.installed():
        raise BadInputError(
            "this model dir was trained on LF's v1 path (USE_V1=1), and the installed LLaMA-Factory has no v1 "
            "renderer (llamafactory.v1.core.utils.rendering) to compare with",
            hint="install the LLaMA-Factory that trained it (0.9.5 or later)",
        )


def stop_ids(tokenizer: Any) -> list[int]:
    """v1's end-of-turn token (``<|im_end|>``) when the tokenizer has it as one token; else none (the template's
    turns then end in plain text, which no engine can stop on: ``check`` warns)."""
    tid = tokenizer.convert_tokens_to_ids(lf_v1.END_OF_TURN)
    return [tid] if isinstance(tid, int) and tid != tokenizer.unk_token_id else []


def probe_report(template: str, tokenizer: Any, jinja: Optional[str], conversations: Optional[list] = None) -> Any:
    """v1's renderer vs ``jinja`` on the probe corpus: one full-sequence and one generation-prompt case per
    conversation; ``unsupported`` where v1 itself raises (chatml and a tool call)."""
    from ..lf.versions import installed_version
    from ..model.corpus import probe_corpus
    from ..render.hf import Renderer
    from ..verifier.report import AlignmentReport, CaseResult, compare_ids

    report = AlignmentReport(
        template=template, options={}, engine="hf", lf_version=f"{installed_version() or 'unknown'} (v1 path)"
    )
    if jinja is None:
        report.cases.append(CaseResult("chat_template", "differs", reason="no chat template: engines refuse chat requests"))
        return report
    renderer = Renderer(tokenizer, jinja, REPORT_TIME)
    for conv in probe_corpus() if conversations is None else conversations:
        cid = str(conv.get("id", "conversation"))
        try:
            full, prompt = lf_v1.reference_ids(template, tokenizer, conv)
        except Exception as e:  # v1 cannot render it: nothing to compare against
            reason = f"LF v1 renderer {template!r} cannot render this conversation: {type(e).__name__}: {e}"
            report.cases += [CaseResult(f"{cid}/full", "unsupported", reason=reason), CaseResult(f"{cid}/gen", "unsupported", reason=reason)]
            continue
        kwargs = {"enable_thinking": conv["enable_thinking"]} if "enable_thinking" in conv else {}
        msgs, tools = conv["messages"], conv.get("tools")
        for suffix, part, agp, expected in (("full", msgs, False, full), ("gen", msgs[:-1], True, prompt)):
            try:
                actual = renderer.ids(part, tools, agp, **kwargs)
            except Exception as e:  # the template refused what v1 renders
                reason = f"template raised {type(e).__name__}: {e}"
                report.cases.append(CaseResult(f"{cid}/{suffix}", "differs", reason=reason, expected_len=len(expected), actual_len=0))
                continue
            report.cases.append(compare_ids(f"{cid}/{suffix}", expected, actual, tokenizer))
    return report


def _tokenizer(model_dir: str, tokenizer: Any, trust_remote_code: bool) -> Any:
    if tokenizer is not None:
        return tokenizer
    from ..modeldir.tokenizer import load_tokenizer

    return load_tokenizer(model_dir, trust_remote_code=trust_remote_code)


def check_v1_dir(model_dir: str, template: str, *, tokenizer: Any = None, trust_remote_code: bool = False) -> CheckResult:
    """What v1 trained on vs what engines render from ``model_dir`` (``workflows.check.CheckResult``)."""
    _require_renderer()
    lf_v1.require_covered(template)
    info = inspect_dir(model_dir)
    tokenizer = _tokenizer(model_dir, tokenizer, trust_remote_code)
    jinja, where = read_chat_template(model_dir)
    report = probe_report(template, tokenizer, jinja)
    stops = stop_ids(tokenizer)
    engine_ids = engine_stop_ids(model_dir, tokenizer)
    warnings = []
    if not stops:
        warnings.append(f"the tokenizer has no {lf_v1.END_OF_TURN} token: v1's turns end in plain text no engine stops on")
    if info.is_adapter:
        warnings.append("adapter dir: engines read the base model's template; pass this dir's chat_template.jinja with --chat-template")
    return CheckResult(
        report=report, template_file=where, missing_stop_ids=missing_ids(stops, engine_ids), stop_ids=stops,
        engine_stop_ids=engine_ids, warnings=warnings,
    )  # fmt: skip


def plan_v1_repair(
    model_dir: str, template: str, *, engines: tuple[str, ...] = ("vllm",), tokenizer: Any = None,
    trust_remote_code: bool = False,
) -> RepairPlan:  # fmt: skip
    """The files that make ``model_dir`` serve v1's renderer ``template``; nothing is written here."""
    _require_renderer()
    lf_v1.require_covered(template)
    other = [e for e in engines if e not in ENGINES]
    if other:
        raise UnsupportedTemplateError(
            template,
            f"engine file(s) {', '.join(other)} are not written for a dir trained on LF's v1 path (their compilers start "
            "from an LF template, which v1 does not use); the Jinja chat template serves vLLM, SGLang, transformers, "
            "LMDeploy (--chat-template) and llama.cpp (--jinja)",
            feature="v1 renderer",
        )
    info = inspect_dir(model_dir)
    if not info.has_tokenizer:
        raise BadInputError("no tokenizer files in this dir", path=model_dir, hint="repair the merged model dir (v1's merge saves the tokenizer)")
    tokenizer = _tokenizer(model_dir, tokenizer, trust_remote_code)
    jinja = lf_v1.JINJA[template]
    report = probe_report(template, tokenizer, jinja)
    bad = [c.id for c in report.cases if c.status == "differs"]
    if bad:
        raise UnsupportedTemplateError(
            template,
            f"the Jinja twin of LF's v1 renderer does not render what the installed LF's renderer renders "
            f"({len(bad)} probe case(s) differ, first {bad[0]}): nothing written to {model_dir}; the renderer changed "
            "since LF 0.9.5, and this release does not know the new one",
            feature="v1 renderer",
        )
    files: dict[str, Optional[bytes]] = {CHAT_TEMPLATE_JINJA: jinja.encode("utf-8")}
    notes = [f"LF v1 path: template {template!r} is v1's own renderer; its Jinja twin was verified on the probe corpus"]
    if info.is_adapter:
        notes.append("adapter dir: engines read the base model's template; pass this dir's chat_template.jinja with --chat-template")
    else:
        cfg_path = os.path.join(model_dir, TOKENIZER_CONFIG)
        if os.path.isfile(cfg_path):
            cfg = load_json_object(cfg_path)
            cfg["chat_template"] = jinja
            files[TOKENIZER_CONFIG] = dump_json(cfg).encode("utf-8")
        legacy = os.path.join(model_dir, CHAT_TEMPLATE_JSON)
        if os.path.isfile(legacy):
            files[CHAT_TEMPLATE_JSON] = dump_json({**load_json_object(legacy), "chat_template": jinja}).encode("utf-8")
    stops = stop_ids(tokenizer)
    gen_path = os.path.join(model_dir, GENERATION_CONFIG)
    gen = load_json_object(gen_path) if os.path.isfile(gen_path) else {}
    gen["eos_token_id"] = ordered_ids([tokenizer.eos_token_id], stops)
    files[GENERATION_CONFIG] = dump_json(gen).encode("utf-8")
    data = report.to_dict()
    data["lf_path"] = lf_v1.PATH
    data["stop_ids"] = {"template": stops, "engine": gen["eos_token_id"], "missing": missing_ids(stops, gen["eos_token_id"])}
    files[REPORT_FILE] = dump_json(data).encode("utf-8")
    return RepairPlan(
        model=info, template=template, options=TemplateOptions(), mode="fix", engines=tuple(engines), files=files,
        report=report, notes=notes,
    )  # fmt: skip


def repair_v1_dir(model_dir: str, template: str, *, record: Optional[dict[str, Any]] = None, **kwargs: Any) -> tuple[RepairPlan, Any]:
    """Plan and apply (journaled, locked), with the train-time ``record`` in the same transaction:
    ``(plan, transaction)``. The hook's entry point after v1's merge and full fine-tuning."""
    import json

    from ..modeldir.lock import dir_lock
    from ..modeldir.record import RECORD_NAME
    from .repair import apply_plan

    with dir_lock(model_dir):
        plan = plan_v1_repair(model_dir, template, **kwargs)
        if record is not None:
            plan.files[RECORD_NAME] = (json.dumps(record, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
        _backup, txn = apply_plan(plan)
    return plan, txn

