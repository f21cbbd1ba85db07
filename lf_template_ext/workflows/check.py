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

from ..modeldir.files import generation_eos_ids, inspect_dir, read_chat_template, read_config_template
from ..model.options import TemplateOptions


@dataclass
class CheckResult:
    report: Any  # AlignmentReport
    template_file: str
    missing_stop_ids: list[int] = field(default_factory=list)
    stop_ids: list[int] = field(default_factory=list)
    engine_stop_ids: list[int] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def exit_code(self, strict: bool = False) -> int:
        if self.missing_stop_ids:
            return 1
        return self.report.exit_code(strict=strict)


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
    from ..cli.common import load_tokenizer
    from ..verifier.probe import AlignmentReport, CaseResult, verify_template

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
    if jinja is None:
        prepared = lf_compat.prepare(template, tokenizer, options)
        report = AlignmentReport(template=template, options=options.to_dict(), engine="hf", lf_version=prepared.lf_version)
        report.cases.append(
            CaseResult("chat_template", "differs", reason=f"no chat template in {model_dir}: engines refuse chat requests")
        )
    else:
        report = verify_template(template, tokenizer, conversations, jinja=jinja, options=options, frozen=frozen)
        prepared = lf_compat.prepare(template, tokenizer, options)
    stop_ids = lf_compat.stop_token_ids(prepared)
    engine_ids = []
    if tokenizer.eos_token_id is not None:
        engine_ids.append(tokenizer.eos_token_id)
    for i in generation_eos_ids(model_dir):
        if i not in engine_ids:
            engine_ids.append(i)
    missing = [i for i in stop_ids if i not in engine_ids]
    return CheckResult(
        report=report,
        template_file=where,
        missing_stop_ids=missing,
        stop_ids=stop_ids,
        engine_stop_ids=engine_ids,
        warnings=warnings,
    )
