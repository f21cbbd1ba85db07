"""What LF trained on vs what an engine will render from a model dir's files.

The engine side is read exactly as engines read it: the chat template that transformers
loads (``chat_template.jinja`` first, then the ``tokenizer_config.json`` key), rendered and
tokenized as vLLM/SGLang do, and the stop ids an engine stops on (tokenizer eos plus every
``generation_config.json`` eos id). A template stop id missing from that set is a
misalignment in itself: the model would run on past its end-of-turn token.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any, Optional

from ..model.options import TemplateOptions
from ..model.stops import missing_ids
from ..model.tool_order import template_tool_order, tool_order_report
from ..modeldir.files import engine_stop_ids, inspect_dir, read_chat_template, read_config_template
from ..modeldir.record import trained_tokenize  # noqa: F401 - check and repair read it here


@dataclass
class CheckResult:
    report: Any  # AlignmentReport
    template_file: str
    missing_stop_ids: list[int] = field(default_factory=list)
    stop_ids: list[int] = field(default_factory=list)
    engine_stop_ids: list[int] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: a LoRA adapter dir: what each engine does with it (``workflows.adapters.check_adapter``)
    adapter: Optional[dict[str, Any]] = None
    #: reasoning templates trained with a mode: the opposite ``enable_thinking`` request (``verifier.probe.thinking_switch``)
    thinking: Optional[dict[str, Any]] = None
    #: a template with tools: the key order its tool JSON is written in, and which engines re-order it
    #: (``model.tool_order.tool_order_report``)
    tool_order: Optional[dict[str, Any]] = None
    #: a multimodal template: training's resolution vs the dir's processor (``workflows.media.describe``)
    resolution: Optional[dict[str, Any]] = None

    def exit_code(self, strict: bool = False) -> int:
        from ..verifier.report import exit_code

        return exit_code(self.report.summary, strict=strict, missing_stop_ids=self.missing_stop_ids)


def check_model_dir(
    model_dir: str,
    template: str,
    options: TemplateOptions,
    *,
    conversations: Optional[list[dict[str, Any]]] = None,
    tokenizer: Any = None,
    trust_remote_code: bool = False,
    frozen: Optional[_dt.datetime] = None,
) -> CheckResult:
    from ..lf import compat as lf_compat
    from ..modeldir.tokenizer import load_tokenizer
    from ..verifier.probe import thinking_switch, verify_template
    from ..verifier.report import AlignmentReport, CaseResult

    info = inspect_dir(model_dir)
    if tokenizer is None:
        tokenizer = load_tokenizer(model_dir, trust_remote_code=trust_remote_code)
    jinja, where = read_chat_template(model_dir)
    warnings = []
    cfg_tpl, _ = read_config_template(model_dir)
    if jinja is not None and cfg_tpl is not None and cfg_tpl != jinja:
        warnings.append(
            "chat_template.jinja and tokenizer_config.json's chat_template differ: transformers/vLLM read the "
            ".jinja, llama.cpp's and Ollama's converters read the config key"
        )
    snap = lf_compat.snapshot(template, tokenizer, options, trained_with=model_dir)
    if jinja is None:
        report = AlignmentReport(template=template, options=options.to_dict(), engine="hf", lf_version=snap.prepared.lf_version)
        report.cases.append(
            CaseResult("chat_template", "differs", reason=f"no chat template in {model_dir}: engines refuse chat requests")
        )
    thinking = None
    if jinja is not None:
        report = verify_template(
            template, tokenizer, conversations, jinja=jinja, options=options, frozen=frozen, prepared=snap.prepared,
            tokenize=trained_tokenize(model_dir),
        )
        if conversations is None:
            thinking = thinking_switch(template, tokenizer, jinja=jinja, options=options, prepared=snap.prepared, frozen=frozen)
    stop_ids = list(snap.stop_ids)
    engine_ids = engine_stop_ids(model_dir, tokenizer)
    tool_order = None
    if jinja is not None and snap.spec.function.tool_format:
        tool_order = tool_order_report(template_tool_order(jinja))
    adapter = None
    if info.is_adapter:
        from ..modeldir.adapter import adapter_base_model
        from ..modeldir.record import read_record
        from .adapters import check_adapter

        base = (read_record(model_dir) or {}).get("model_name_or_path") or adapter_base_model(model_dir)
        adapter = check_adapter(model_dir, base, tokenizer)
        warnings.extend(f"adapter ({f['engine']}): {f['text']}" for f in (adapter or {}).get("findings", []))
    from .media import describe
    from .media import resolution as media_resolution

    res = None if info.is_adapter else media_resolution(model_dir, template)
    return CheckResult(
        resolution=describe(res) if res is not None else None,
        report=report,
        template_file=where,
        missing_stop_ids=missing_ids(stop_ids, engine_ids),
        stop_ids=stop_ids,
        engine_stop_ids=engine_ids,
        warnings=warnings,
        adapter=adapter,
        thinking=thinking,
        tool_order=tool_order,
    )


# -- the probe corpus as LF-shaped rows (native mode, live servers, artifact engines) ------------------


def probe_source() -> Any:
    """The probe corpus as a pseudo-dataset (``check`` without ``--dataset`` on a sample-based check)."""
    from ..lf.datasets import DatasetSource

    return DatasetSource(name="probe corpus", files=("<built-in>",), entry={"formatting": "lf"}, dataset_dir=".", file_type="probe")


def probe_rows(thought_words: tuple, tool_call_words: Optional[tuple]) -> list[tuple[int, dict[str, Any]]]:
    """The probe conversations LF can represent, as already-converted rows (``_prompt``/``_response``/...)."""
    from ..model.corpus import probe_corpus
    from ..model.messages import UnrepresentableConversation, to_lf

    rows = []
    for i, conv in enumerate(c for c in probe_corpus() if "enable_thinking" not in c):
        try:
            lf = to_lf(conv["messages"], conv.get("tools"), thought_words=thought_words, tool_call_words=tool_call_words)
        except UnrepresentableConversation:
            continue
        msgs = lf.messages
        rows.append((i, {"_prompt": msgs[:-1], "_response": msgs[-1:], "_system": lf.system, "_tools": lf.tools, "_id": conv["id"]}))
    return rows


def use_probe_rows(setup: Any) -> tuple[Any, list[tuple[int, dict[str, Any]]]]:
    """Point a dataset check (``verifier.dataset.build``) at the probe corpus: ``(source, rows)``."""
    source = probe_source()
    ref = setup.checker.reference
    rows = probe_rows(getattr(ref, "thought_words", ("<think>\n", "\n</think>\n\n")), getattr(ref, "tool_call_words", None))
    setup.checker.converters[source.name] = lambda row: row
    return source, rows


@dataclass
class NativeCheck:
    """``template: native``'s probe check of a model dir: its report dict (docs/contracts.md schema, with
    the dataset fields) and the stop ids. ``summary``/``cases``/``to_dict`` read like an AlignmentReport."""

    data: dict[str, Any]
    cases: list[Any]
    stop_ids: list[int]

    @property
    def summary(self) -> dict[str, int]:
        return dict(self.data["summary"])

    def to_dict(self) -> dict[str, Any]:
        return dict(self.data)


def check_native_dir(model_dir: str, options: TemplateOptions, *, trust_remote_code: bool = False) -> NativeCheck:
    """What native mode trained on (the model's own chat template, whole) vs what engines render from the
    dir now, on the probe corpus: differs only when the dir's template or kwargs changed since training."""
    from ..verifier import dataset as dc

    setup = dc.build(model_dir, "native", options, [], trust_remote_code=trust_remote_code)
    source, rows = use_probe_rows(setup)
    agg = dc.run(setup.checker, [(source.name, rows)], workers=1, batch_size=len(rows) or 1)
    data = dc.report_dict(
        agg, template="native", options=options.to_dict(), engine="hf", lf_version=setup.lf_version, sources=[source]
    )
    data["stop_ids"] = {"template": setup.stop_ids, "engine": setup.engine_stop_ids, "missing": setup.missing_stop_ids}
    return NativeCheck(data=data, cases=list(agg.cases), stop_ids=list(setup.stop_ids))
