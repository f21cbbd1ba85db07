"""Plan and apply the files that make a model dir serve its training format.

``plan_repair`` computes the new content of every file (pure apart from reading the dir and
loading its tokenizer); ``apply_plan`` writes them through one journaled transaction. The
same plan serves ``lf-template repair``, the export hook and the train-time checkpoint hook.

Files (docs/contracts.md "Files written into a model dir"):

* ``tokenizer_config.json`` ``chat_template`` and ``chat_template.jinja``: the same compiled
  text (a legacy ``chat_template.json`` and a processor's ``chat_template`` key too), since
  transformers/vLLM/SGLang/LMDeploy read the ``.jinja`` first while llama.cpp's and Ollama's
  converters read the config key;
* ``generation_config.json`` ``eos_token_id``: tokenizer eos + the template's stop ids, in
  template order, always a list (vLLM, SGLang and LMDeploy stop on all of them);
* the tokenizer's ``eos_token`` as LF set it, and its extra special tokens: the original
  list plus stop words not in it (LF on transformers 5 replaces the whole list);
* ``SERVING.md``, ``alignment_report.json``, and the engine files asked for.

LoRA adapter dirs: engines read the *base* model's files, so only ``chat_template.jinja``,
``generation_config.json``, ``SERVING.md`` and the report are written there, to be passed
with ``--chat-template`` / ``--generation-config``.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from dataclasses import dataclass, field
from typing import Any, Optional

from ..errors import BadInputError
from ..model.options import MODES, TemplateOptions
from ..model.tool_order import CLIENT, template_tool_order, tool_order_for, tool_order_report
from ..modeldir.adapter import adapter_base_model
from ..modeldir.files import (
    CHAT_TEMPLATE_JINJA,
    CHAT_TEMPLATE_JSON,
    GENERATION_CONFIG,
    PROCESSOR_CONFIG,
    TOKENIZER_CONFIG,
    ModelDir,
    dump_json,
    inspect_dir,
    load_json_object,
    read_chat_template,
)
from ..modeldir.journal import BackupInfo, Transaction
from ..modeldir.record import trained_tokenize

#: ``template: native`` (``lf_template_ext.native``): trained with the model's own chat template.
NATIVE = "native"
REPORT_FILE = "alignment_report.json"
SERVING_FILE = "SERVING.md"
#: Reports are computed with time frozen here, so a re-run writes the same bytes (idempotence).
REPORT_TIME = _dt.datetime(2025, 1, 1, 12, 0, 0)


@dataclass
class RepairPlan:
    model: ModelDir
    template: str
    options: TemplateOptions
    mode: str
    engines: tuple[str, ...]
    files: dict[str, Optional[bytes]]  # None: the file is removed
    report: Any  # AlignmentReport of the state after the repair
    notes: list[str] = field(default_factory=list)
    cutoff_len: Optional[int] = None


def _special_token_list_key(cfg: dict[str, Any]) -> str:
    for key in ("extra_special_tokens", "additional_special_tokens"):
        if isinstance(cfg.get(key), list):
            return key
    return "extra_special_tokens"


def _token_text(value: Any) -> Optional[str]:
    if isinstance(value, dict):
        return value.get("content")
    return value if isinstance(value, str) else None


def _set_token(cfg: dict[str, Any], key: str, text: str) -> None:
    current = cfg.get(key)
    if isinstance(current, dict):
        if current.get("content") != text:
            cfg[key] = {**current, "content": text}
    elif current != text:
        cfg[key] = text


def plan_repair(
    model_dir: str,
    template: str,
    options: TemplateOptions,
    *,
    mode: str = "fix",
    engines: tuple[str, ...] = ("vllm",),
    cutoff_len: Optional[int] = None,
    original_extra_tokens: Optional[list[str]] = None,
    tokenizer: Any = None,
    trust_remote_code: bool = False,
    base_model: Optional[str] = None,
    serve_max_len: Optional[int] = None,
    provenance: Optional[dict[str, str]] = None,
    sampling: Any = None,
    tokenize: Optional[str] = None,
    media: Any = None,
    mm_plugin: Optional[str] = None,
) -> RepairPlan:
    """Compute every file the repair writes; nothing is written here. ``provenance``
    (``{key: "value (source)"}``, ``model.options.Provenanced.describe``) goes into the report and SERVING.md.
    ``sampling`` (``model.generation.Sampling``): the values written into ``generation_config.json`` and a
    Modelfile; by default none, and the report compares LF chat's defaults with what engines will use.
    ``tokenize``: how training encoded (default: the dir's record, ``modeldir.record.trained_tokenize``); the
    report's reference and the template's tool order (``model.tool_order.tool_order_for``) follow it.
    ``media`` (``model.media_args.MediaArgs``) / ``mm_plugin``: LF's media arguments of training (default: the
    dir's record, else LF's defaults) for a template with an mm plugin: the processor configs' static setting
    and SERVING.md's Images section (``workflows.media``)."""
    from ..compiler import compile_spec
    from ..workflows.engines import parse_names

    if mode not in MODES:
        raise BadInputError(f"unknown mode {mode!r} (choose {', '.join(MODES)})")
    engines = parse_names(list(engines))
    info = inspect_dir(model_dir)
    if tokenizer is None:
        if not info.has_tokenizer:
            raise BadInputError(
                "no tokenizer files in this dir, so the template's tokens cannot be checked",
                path=model_dir,
                hint="repair the merged/exported model dir (LF saves the tokenizer with every export and checkpoint)",
            )
        from ..modeldir.tokenizer import load_tokenizer

        tokenizer = load_tokenizer(model_dir, trust_remote_code=trust_remote_code)
    if template == NATIVE:
        return _plan_native(info, tokenizer, options, engines, cutoff_len, base_model, serve_max_len, trust_remote_code)
    from ..verifier import gate

    snap = gate.snapshot(template, tokenizer, options, trained_with=model_dir)  # proven when it must be
    tokenize = tokenize or trained_tokenize(model_dir)
    notes: list[str] = []
    if mode == "fix":  # the current template is replaced unread (it may be unreadable: not UTF-8)
        jinja: Optional[str] = compile_spec(snap.spec, snap.facts, tool_order=tool_order_for(tokenize))
    else:
        jinja, _where = read_chat_template(model_dir)
        notes.append("keep-native: the model's own chat template is left in place; the report shows how it differs")

    files: dict[str, Optional[bytes]] = {}
    if not info.is_adapter:  # tokenizer files: engines read the base model's in an adapter dir
        files.update(_tokenizer_files(model_dir, snap, jinja, mode, original_extra_tokens))
    if mode == "fix" and jinja is not None:
        files[CHAT_TEMPLATE_JINJA] = jinja.encode("utf-8")
    if info.is_adapter:
        notes.append(
            "adapter dir: engines read the base model's template and generation config, so this dir's "
            "chat_template.jinja and generation_config.json must be passed explicitly (see SERVING.md)"
        )

    # generation_config.json: eos + stop ids, template order, always a list
    gen_path = os.path.join(model_dir, GENERATION_CONFIG)
    gen = load_json_object(gen_path) if os.path.isfile(gen_path) else {}
    gen["eos_token_id"] = list(snap.stop_ids)
    if sampling is None:
        sampling = default_sampling()
    gen = with_sampling(gen, sampling)
    files[GENERATION_CONFIG] = dump_json(gen).encode("utf-8")

    from .engines import EmitContext
    from .engines import verdicts as engine_verdicts

    if info.is_adapter and not base_model:
        base_model = adapter_base_model(model_dir)
    ctx = EmitContext(
        snap, info.path, info.name, tokenizer, cutoff_len, serve_max_len=serve_max_len, is_adapter=info.is_adapter,
        base_model=base_model, provenance=provenance, sampling=sampling, generation=gen, tokenize=tokenize,
    )  # fmt: skip
    verdicts = engine_verdicts(ctx)
    written = _engine_files(ctx, info, engines, verdicts, files, notes)
    from .media import after_repair, media_files, resolution

    # an adapter dir: engines read the base model's processor (SERVING.md gives the cap as a flag)
    base_configs = base_model if info.is_adapter and base_model and os.path.isdir(base_model) else None
    res = resolution(model_dir, template, media=media, plugin=mm_plugin, config_dir=base_configs)
    if res is not None and not info.is_adapter:  # an adapter dir: engines read the base model's processor
        media_written, media_notes = media_files(res, model_dir)
        files.update(media_written)
        notes.extend(media_notes)
        res = after_repair(res, media_written)
    docs, report = dir_docs(
        ctx, template, options, jinja, verdicts, written, notes, mode=mode, tokenize=tokenize, resolution=res
    )
    files.update(docs)
    return RepairPlan(
        model=info,
        template=template,
        options=options,
        mode=mode,
        engines=tuple(engines),
        files=files,
        report=report,
        notes=notes,
        cutoff_len=cutoff_len,
    )


def _plan_native(
    info: ModelDir,
    tokenizer: Any,
    options: TemplateOptions,
    engines: tuple[str, ...],
    cutoff_len: Optional[int],
    base_model: Optional[str],
    serve_max_len: Optional[int],
    trust_remote_code: bool,
) -> RepairPlan:
    """A dir trained with ``template: native``: its own chat template *is* the training format, so it is
    kept; the stop ids (tokenizer eos + ``generation_config.json``'s, native mode's rule) become a list
    engines read, and the report is native mode's probe check (training examples vs the dir's template).

    Only the engines that render the Jinja template serve it as trained: Ollama's TEMPLATE and LMDeploy's
    JSON are compiled from an LF template, which native mode does not have (their notes say so)."""
    from ..native import mode as native
    from .check import check_native_dir
    from .serving import ServingFacts, serving_md

    native.require_chat_template(tokenizer)  # NativeModeError (bad input) names the model and the fix
    stop_ids = native.stop_token_ids(tokenizer)
    notes = [f"template: native: the model's own chat template is what training saw, so it is kept ({info.path})"]
    files: dict[str, Optional[bytes]] = {}
    gen_path = os.path.join(info.path, GENERATION_CONFIG)
    gen = load_json_object(gen_path) if os.path.isfile(gen_path) else {}
    gen["eos_token_id"] = list(stop_ids)
    files[GENERATION_CONFIG] = dump_json(gen).encode("utf-8")
    for name in engines:
        if name in ("ollama", "lmdeploy"):
            notes.append(
                f"{name}: no file written: its template is compiled from an LF template and native mode trained with "
                "the model's own Jinja template (serve it with an engine that renders Jinja: vLLM, SGLang, "
                "LMDeploy's --chat-template hf, llama.cpp --jinja)"
            )
        elif name == "openwebui":
            notes.append("openwebui: no preset written for template: native (not supported yet); in Open WebUI leave the "
                         "system prompts empty and set the stop strings by hand")
    check = check_native_dir(info.path, options, trust_remote_code=trust_remote_code)
    if info.is_adapter and not base_model:
        base_model = adapter_base_model(info.path)
    facts = ServingFacts(
        model_dir=info.path, template=NATIVE, is_reasoning=False, tool_format=None, thought_words=("", ""),
        stop_ids=list(stop_ids), stop_tokens=[tokenizer.convert_ids_to_tokens(i) for i in stop_ids],
        cutoff_len=cutoff_len, serve_max_len=serve_max_len, is_adapter=info.is_adapter, base_model=base_model,
        native=True,
    )  # fmt: skip
    files[REPORT_FILE] = dump_json(check.to_dict()).encode("utf-8")
    files[SERVING_FILE] = serving_md(facts).encode("utf-8")
    return RepairPlan(
        model=info, template=NATIVE, options=options, mode="keep-native", engines=tuple(engines), files=files,
        report=check, notes=notes, cutoff_len=cutoff_len,
    )  # fmt: skip


def default_sampling(given: Optional[dict[str, Any]] = None, mode: str = "model") -> Any:
    """``model.generation.Sampling`` with LF chat's defaults of the installed LF."""
    from ..lf import compat as lf_compat
    from ..model.generation import Sampling

    try:
        return Sampling.of(given or {}, mode, lf_compat.chat_sampling_defaults())
    except ValueError as e:
        raise BadInputError(f"sampling: {e}", hint="LF's generating arguments: do_sample, temperature, top_p, top_k, "
                            "repetition_penalty, max_new_tokens") from None


def with_sampling(gen: dict[str, Any], sampling: Any) -> dict[str, Any]:
    """``generation_config.json`` with the sampling values written (greedy drops the sampling-only keys)."""
    from ..model.generation import generation_config_update

    set_, remove = generation_config_update(sampling.written)
    out = {k: v for k, v in gen.items() if k not in remove}
    out.update(set_)
    return out


def _tokenizer_files(
    model_dir: str, snap: Any, jinja: Optional[str], mode: str, original_extra_tokens: Optional[list[str]]
) -> dict[str, bytes]:
    """``tokenizer_config.json`` (template, eos as LF set it, stop words among the special tokens) and the
    legacy files that carry a ``chat_template`` too."""
    files: dict[str, bytes] = {}
    tok_fixed = snap.prepared.tokenizer
    stop_words = list(snap.spec.stop_words)
    cfg_path = os.path.join(model_dir, TOKENIZER_CONFIG)
    if os.path.isfile(cfg_path):
        cfg = load_json_object(cfg_path)
        if mode == "fix":
            cfg["chat_template"] = jinja
        if tok_fixed.eos_token:
            _set_token(cfg, "eos_token", tok_fixed.eos_token)
        key = _special_token_list_key(cfg)
        base = original_extra_tokens if original_extra_tokens is not None else list(cfg.get(key) or [])
        base_texts = [_token_text(t) for t in base]
        extra = list(base) + [w for w in stop_words if w not in base_texts]
        if extra or key in cfg:
            cfg[key] = extra
        files[TOKENIZER_CONFIG] = dump_json(cfg).encode("utf-8")
    for legacy in (CHAT_TEMPLATE_JSON, PROCESSOR_CONFIG):
        path = os.path.join(model_dir, legacy)
        if mode == "fix" and os.path.isfile(path):
            data = load_json_object(path)
            if "chat_template" in data or legacy == CHAT_TEMPLATE_JSON:
                data["chat_template"] = jinja
                files[legacy] = dump_json(data).encode("utf-8")
    return files


def _engine_files(
    ctx: Any,
    info: ModelDir,
    engines: tuple[str, ...],
    verdicts: dict[str, Any],
    files: dict[str, Optional[bytes]],
    notes: list[str],
) -> set[str]:
    """The files of the engines asked for (the engine registry), into ``files``; the names written.

    An engine whose verdict is "not expressible" gets no file (a stale one of an earlier run is removed,
    through the journal), and the reason goes to the notes; caveats of a written file go there too."""
    from ..workflows.engines import ENGINES

    written: set[str] = set()
    for name in engines:
        engine = ENGINES[name]
        if name == "gguf":
            notes.append("gguf: convert this dir with llama.cpp (it reads tokenizer_config.json's chat_template), or "
                         "repair an existing GGUF with `lf-template repair model.gguf`")
        if not engine.written_by_repair:
            continue
        verdict = verdicts[name]
        if not verdict.ok:
            notes.append(f"{name}: {engine.filename} not written: {verdict.reason}")
            if os.path.lexists(os.path.join(info.path, engine.filename)):
                files[engine.filename] = None  # type: ignore[assignment]  # removed: it would be recommended
            continue
        files[engine.filename] = engine.emit(ctx).encode("utf-8")
        written.add(name)
        notes.extend(f"{name}: caveat: {c}" for c in verdict.caveats)
    return written


def present_engine_files(model_dir: str, verdicts: dict[str, Any]) -> set[str]:
    """The engines whose file is in the dir now and may be recommended (ours, expressible)."""
    from ..modeldir.output import is_ours
    from .engines import ENGINES

    present: set[str] = set()
    for name, engine in ENGINES.items():
        if not engine.written_by_repair or not verdicts[name].ok:
            continue
        path = os.path.join(model_dir, engine.filename)
        if os.path.isfile(path) and (engine.filename.endswith(".json") or is_ours(path, b"\0")):
            present.add(name)
    return present


def dir_docs(
    ctx: Any,
    template: str,
    options: TemplateOptions,
    jinja: Optional[str],
    verdicts: dict[str, Any],
    written: set[str],
    notes: list[str],
    *,
    mode: str,
    tokenize: Optional[str] = None,
    resolution: Any = None,
) -> tuple[dict[str, bytes], Any]:
    """``alignment_report.json`` and ``SERVING.md`` for the dir as it is after this run (``repair``,
    the hooks and ``emit`` all write them from here, so they cannot drift from the engine files), and the
    report object."""
    from .adapters import check_adapter

    info = inspect_dir(ctx.model_dir)
    tokenize = tokenize or ctx.tokenize or trained_tokenize(ctx.model_dir)
    report = _report(template, ctx.tokenizer, options, ctx.snapshot, jinja, notes, tokenize)
    adapter = check_adapter(ctx.model_dir, ctx.base_model, ctx.tokenizer) if info.is_adapter else None
    notes.extend(f"adapter: {f['text']}" for f in (adapter or {}).get("findings", []))
    present = written | present_engine_files(ctx.model_dir, verdicts)
    data = report.to_dict()
    data["stop_ids"] = stop_ids_report(ctx.snapshot.stop_ids, ctx.snapshot.stop_ids)
    data["engines"] = engines_report(verdicts, present)
    if adapter is not None:
        data["adapter"] = adapter
    if ctx.provenance:
        data["options_provenance"] = dict(ctx.provenance)
    sampling_rows = _sampling_rows(ctx)
    if sampling_rows is not None:
        data["sampling"] = {"mode": ctx.sampling.mode, "written": dict(ctx.sampling.written), "rows": sampling_rows}
    tool_order = template_tool_order(jinja) if jinja else CLIENT
    if ctx.snapshot.spec.function.tool_format:
        data["tool_order"] = tool_order_report(tool_order)
    if resolution is None:  # emit regenerates the docs of a repaired dir: its processor configs as they are
        from .media import resolution as media_resolution

        base = ctx.base_model if info.is_adapter and ctx.base_model and os.path.isdir(ctx.base_model) else None
        resolution = media_resolution(ctx.model_dir, template, config_dir=base)
    if resolution is not None:
        from .media import describe

        data["resolution"] = describe(resolution)
    report_bytes = dump_json(data).encode("utf-8")
    serving = _serving(ctx, template, info, mode, present, verdicts, adapter, tool_order, resolution)
    return {REPORT_FILE: report_bytes, SERVING_FILE: serving.encode("utf-8")}, report


def stop_ids_report(template_ids: Any, engine_ids: Any) -> dict[str, list[int]]:
    """The report's ``stop_ids`` (the same keys as ``check``'s): the template's, what engines stop on after this
    run (``generation_config.json``'s ``eos_token_id`` as written), and the template's ids engines miss."""
    from ..model.stops import missing_ids

    return {"template": list(template_ids), "engine": list(engine_ids), "missing": missing_ids(list(template_ids), list(engine_ids))}


def _sampling_rows(ctx: Any) -> Optional[list[dict[str, Any]]]:
    """LF chat's sampling vs what engines will use (``model.generation.side_by_side``), or None."""
    from ..model.generation import side_by_side

    if ctx.sampling is None:
        return None
    gen = ctx.generation
    if gen is None:
        path = os.path.join(ctx.model_dir, GENERATION_CONFIG)
        gen = load_json_object(path) if os.path.isfile(path) else {}
    return side_by_side(ctx.sampling.lf_chat, gen)


def engines_report(verdicts: dict[str, Any], present: set[str]) -> dict[str, Any]:
    """The report's ``engines``: per engine, its file, whether it is in the dir, and the registry's verdict."""
    from .engines import ENGINES

    return {
        name: {"file": ENGINES[name].filename, "present": name in present, **verdict.to_dict()}
        for name, verdict in verdicts.items()
        if ENGINES[name].written_by_repair
    }


def _report(
    template: str, tokenizer: Any, options: TemplateOptions, snap: Any, jinja: Optional[str], notes: list[str],
    tokenize: str = "slots",
) -> Any:
    """The alignment report of the state after the repair (time frozen: a re-run writes the same bytes)."""
    from ..verifier.probe import verify_template
    from ..verifier.report import AlignmentReport

    if jinja:
        return verify_template(
            template, tokenizer, jinja=jinja, options=options, frozen=REPORT_TIME, prepared=snap.prepared, tokenize=tokenize
        )
    notes.append("no chat template in this dir: engines will refuse chat requests")
    return AlignmentReport(template=template, options=options.to_dict(), engine="hf", lf_version=snap.prepared.lf_version)


def _serving(
    ctx: Any, template: str, info: ModelDir, mode: str, present: set[str], verdicts: dict[str, Any],
    adapter: Optional[dict[str, Any]] = None, tool_order: str = CLIENT, resolution: Any = None,
) -> str:  # fmt: skip
    from .adapters import findings_of
    from .engines import lmdeploy_name_warning, served_name
    from .serving import ServingFacts, serving_md, sglang_name_warning

    snap = ctx.snapshot
    serving = ServingFacts(
        model_dir=ctx.model_dir,
        template=template,
        is_reasoning=snap.spec.is_reasoning,
        tool_format=snap.spec.function.tool_format,
        thought_words=snap.spec.thought_words,
        stop_ids=list(snap.stop_ids),
        stop_tokens=snap.stop_tokens(),
        cutoff_len=ctx.cutoff_len,
        serve_max_len=ctx.serve_max_len,
        is_adapter=info.is_adapter,
        base_model=ctx.base_model,
        has_modelfile="ollama" in present,
        has_lmdeploy_json="lmdeploy" in present,
        keep_native=mode == "keep-native",
        verdicts=verdicts,
        adapter_findings=findings_of(adapter),
        enable_thinking=snap.spec.enable_thinking,
        provenance=dict(ctx.provenance or {}),
        sampling_rows=_sampling_rows(ctx),
        has_openwebui_preset="openwebui" in present,
        served_name=served_name(ctx),
        tool_order=tool_order,
    )
    if resolution is not None:
        from .media import serving_lines

        serving.media_lines = serving_lines(resolution, ctx.model_dir, info.is_adapter)
    if info.is_adapter and not ctx.base_model:
        serving.warnings.append("base model unknown: replace <base model dir> in the commands below")
    if not info.is_adapter:
        for warning in (lmdeploy_name_warning(info.name), sglang_name_warning(os.path.abspath(ctx.model_dir))):
            if warning:
                serving.warnings.append(warning)
    return serving_md(serving)


def stage_plan(plan: RepairPlan) -> Transaction:
    txn = Transaction(plan.model.path, tool="lf-template repair")
    for relpath, content in plan.files.items():
        txn.stage(relpath, content)
    return txn


def apply_plan(plan: RepairPlan) -> tuple[Optional[BackupInfo], Transaction]:
    """Write the plan through one journaled transaction (``None``: nothing needed changing)."""
    from ..modeldir.journal import recover

    recover(plan.model.path)
    txn = stage_plan(plan)
    return txn.commit(), txn


def report_json(plan: RepairPlan) -> str:
    return json.dumps(plan.report.to_dict(), indent=2, ensure_ascii=False)
