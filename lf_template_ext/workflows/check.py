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
from ..modeldir.files import engine_stop_ids, inspect_dir, read_chat_template, read_config_template


@dataclass
class CheckResult:
    report: Any  # AlignmentReport
    template_file: str
    missing_stop_ids: list[int] = field(default_factory=list)
    stop_ids: list[int] = field(default_factory=list)
    engine_stop_ids: list[int] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: reasoning templates trained with a mode: the opposite ``enable_thinking`` request (``verifier.probe.thinking_switch``)
    thinking: Optional[dict[str, Any]] = None

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

    inspect_dir(model_dir)
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
            template, tokenizer, conversations, jinja=jinja, options=options, frozen=frozen, prepared=snap.prepared
        )
        if conversations is None:
            thinking = thinking_switch(template, tokenizer, jinja=jinja, options=options, prepared=snap.prepared, frozen=frozen)
    stop_ids = list(snap.stop_ids)
    engine_ids = engine_stop_ids(model_dir, tokenizer)
    return CheckResult(
        report=report,
        template_file=where,
        missing_stop_ids=missing_ids(stop_ids, engine_ids),
        stop_ids=stop_ids,
        engine_stop_ids=engine_ids,
        warnings=warnings,
        thinking=thinking,
    )
