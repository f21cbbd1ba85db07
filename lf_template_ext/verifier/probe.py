"""Token-level comparison of "what training saw" with "what an engine will render".

Expected ids come from LF's real encoder (``lf.compat.encode_training``: the training pairs
of ``encode_multiturn``). Actual ids come from rendering a Jinja template with
``transformers``' ``apply_chat_template`` and tokenizing the text whole with
``add_special_tokens=False``: what vLLM and SGLang do.

Each conversation is checked twice: the full sequence (``add_generation_prompt=False``)
and the prompt of its last turn (all but the last message, ``add_generation_prompt=True``,
against the training ids cut at the start of the last response).

Status of a case (``verifier.report``):

* ``identical``: same ids;
* ``boundary_only``: different ids, same decoded text. LF tokenizes every slot piece on its
  own, so a BPE merge across a piece boundary (e.g. a response starting with newlines)
  splits differently when the text is tokenized whole. Reported, never hidden;
* ``differs``: the text differs (or the template raised where LF encodes);
* ``unsupported``: LF itself cannot encode the conversation (the reason says why).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from typing import Any, Optional

from ..model.options import TemplateOptions
from ..render.hf import Renderer
from .report import AlignmentReport, CaseResult, compare_ids


def reference_ids(prepared: Any, conversation: dict[str, Any]) -> tuple[list[int], list[int]]:
    """LF's training ids for ``conversation`` and the prompt ids of its last turn (``verifier.reference``)."""
    from .reference import TrainingReference

    return TrainingReference(prepared).for_conversation(conversation)


def verify_template(
    template: Any,
    tokenizer: Any,
    conversations: Optional[list[dict[str, Any]]] = None,
    *,
    jinja: Optional[str] = None,
    options: TemplateOptions = TemplateOptions(),
    frozen: Optional[_dt.datetime] = None,
    prepared: Any = None,
    tokenize: str = "slots",
) -> AlignmentReport:
    """See :func:`lf_template_ext.verify`.

    ``prepared``: the result of ``lf.compat.prepare(template, tokenizer, options)`` when the caller
    already has it (preparing copies the tokenizer, the dominant cost); it is only read.
    ``tokenize``: how training encoded (``whole``: the reference is whole mode's ids, ``verifier.reference``).

    A conversation may carry ``"enable_thinking"``: it is then passed to the template as a
    render kwarg (as vLLM's ``chat_template_kwargs`` would) and LF's reference is encoded
    with the same setting.
    """
    from ..compiler import compile_spec
    from ..lf import compat as lf_compat
    from ..model.corpus import probe_corpus

    frozen = frozen or _dt.datetime.now().replace(microsecond=0)
    conversations = probe_corpus() if conversations is None else conversations
    base = prepared if prepared is not None else lf_compat.prepare(template, tokenizer, options)
    if tokenize != getattr(base, "tokenize", "slots"):
        base = dataclasses.replace(base, tokenize=tokenize)
    if jinja is None:
        snap = lf_compat.snapshot_of(base)
        jinja = compile_spec(snap.spec, snap.facts)
    report = AlignmentReport(
        template=base.name, options=options.to_dict(), engine="hf", lf_version=base.lf_version
    )
    report.tokenize = tokenize
    prepared_by_thinking: dict[Any, Any] = {options.enable_thinking: base}
    renderer = Renderer(base.tokenizer, jinja, frozen)
    for conv in conversations:
        kwargs: dict[str, Any] = {}
        prepared = base
        if "enable_thinking" in conv:
            value = conv["enable_thinking"]
            kwargs["enable_thinking"] = value
            if value not in prepared_by_thinking:
                prepared_by_thinking[value] = dataclasses.replace(lf_compat.prepare(
                    template, tokenizer, TemplateOptions(**{**options.to_dict(), "enable_thinking": value})
                ), tokenize=tokenize)
            prepared = prepared_by_thinking[value]
        report.cases.extend(check_conversation(prepared, renderer, conv, frozen, **kwargs))
    return report


def check_conversation(
    prepared: Any, renderer: Renderer, conv: dict[str, Any], frozen: Optional[_dt.datetime], **kwargs: Any
) -> list[CaseResult]:
    """The full-sequence and generation-prompt cases of one conversation."""
    from ..lf import compat as lf_compat

    cid = str(conv.get("id", "conversation"))
    try:
        with lf_compat.frozen_time(frozen):
            expected, prompt = reference_ids(prepared, conv)
    except Exception as e:  # LF (or the mapping) cannot encode it: nothing to compare against
        reason = f"LF cannot encode this conversation: {type(e).__name__}: {e}"
        return [CaseResult(f"{cid}/full", "unsupported", reason=reason), CaseResult(f"{cid}/gen", "unsupported", reason=reason)]
    out = []
    messages, tools = conv["messages"], conv.get("tools")
    for suffix, msgs, agp, exp in (
        ("full", messages, False, expected),
        ("gen", messages[:-1], True, prompt),
    ):
        case_id = f"{cid}/{suffix}"
        try:
            actual = renderer.ids(msgs, tools, agp, **kwargs)
        except Exception as e:  # the template refused what LF encodes: a real difference
            out.append(
                CaseResult(case_id, "differs", reason=f"template raised {type(e).__name__}: {e}", expected_len=len(exp), actual_len=0)
            )
            continue
        out.append(compare_ids(case_id, exp, actual, renderer.tokenizer))
    return out


def thinking_switch(
    template: Any,
    tokenizer: Any,
    *,
    jinja: str,
    options: TemplateOptions,
    prepared: Any,
    frozen: Optional[_dt.datetime] = None,
) -> Optional[dict[str, Any]]:
    """For a reasoning template trained with ``enable_thinking`` true or false: the probe corpus rendered
    with the *opposite* ``enable_thinking`` kwarg (a client's ``chat_template_kwargs``) against what training
    saw. ``None`` for other templates and for ``enable_thinking: null`` (the mode then follows the request).

    The template's behaviour without the kwarg is the probe itself (:func:`verify_template`); this says what a
    request that flips the mode gets: ``verdict`` "not what training saw" when any prompt differs from LF's
    training ids (the template follows the request, as LF's chat would with that setting), "same as training"
    when the flip changes nothing (a template that ignores the kwarg)."""
    from ..lf import compat as lf_compat
    from ..model.corpus import probe_corpus
    from ..model.spec import kind_is_reasoning

    if options.enable_thinking is None or not kind_is_reasoning(lf_compat.template_kind(prepared.template)):
        return None
    frozen = frozen or _dt.datetime.now().replace(microsecond=0)
    opposite = not options.enable_thinking
    renderer = Renderer(prepared.tokenizer, jinja, frozen)
    cases: list[CaseResult] = []
    for conv in probe_corpus():
        if "enable_thinking" not in conv:
            cases.extend(check_conversation(prepared, renderer, conv, frozen, enable_thinking=opposite))
    compared = [c for c in cases if c.status != "unsupported"]
    differ = [c.id for c in compared if c.status != "identical"]
    return {
        "trained": options.enable_thinking,
        "request": {"chat_template_kwargs": {"enable_thinking": opposite}},
        "cases": len(compared),
        "differ": len(differ),
        "verdict": "not what training saw" if differ else "same as training",
        "first": differ[:3],
    }
