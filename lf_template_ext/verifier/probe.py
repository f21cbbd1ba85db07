"""Token-level comparison of "what training saw" with "what an engine will render".

Expected ids come from LF's real encoder (``lf_compat.encode_training``: the training pairs
of ``encode_multiturn``). Actual ids come from rendering a Jinja template with
``transformers``' ``apply_chat_template`` and tokenizing the text whole with
``add_special_tokens=False``: what vLLM and SGLang do.

Each conversation is checked twice: the full sequence (``add_generation_prompt=False``)
and the prompt of its last turn (all but the last message, ``add_generation_prompt=True``,
against the training ids cut at the start of the last response).

Status of a case:

* ``identical``: same ids;
* ``boundary_only``: different ids, same decoded text. LF tokenizes every slot piece on its
  own, so a BPE merge across a piece boundary (e.g. a response starting with newlines)
  splits differently when the text is tokenized whole. Reported, never hidden;
* ``differs``: the text differs (or the template raised where LF encodes);
* ``unsupported``: LF itself cannot encode the conversation (the reason says why).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

from .._version import __version__
from ..model.options import TemplateOptions

SCHEMA_VERSION = 1
STATUSES = ("identical", "boundary_only", "differs", "unsupported")
WINDOW_BEFORE = 4
WINDOW_AFTER = 8


@dataclass
class FirstDiff:
    index: int
    expected_ids: list[int]
    actual_ids: list[int]
    expected_text: str
    actual_text: str
    window_start: int = 0


@dataclass
class CaseResult:
    id: str
    status: str
    first_diff: Optional[FirstDiff] = None
    reason: Optional[str] = None
    expected_len: Optional[int] = None
    actual_len: Optional[int] = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "status": self.status}
        d["first_diff"] = asdict(self.first_diff) if self.first_diff else None
        if self.reason:
            d["reason"] = self.reason
        if self.expected_len is not None:
            d["expected_len"] = self.expected_len
            d["actual_len"] = self.actual_len
        return d


@dataclass
class AlignmentReport:
    template: str
    options: dict[str, Any]
    engine: str
    lf_version: str
    cases: list[CaseResult] = field(default_factory=list)
    package_version: str = __version__
    schema_version: int = SCHEMA_VERSION

    @property
    def summary(self) -> dict[str, int]:
        counts = {s: 0 for s in STATUSES}
        for c in self.cases:
            counts[c.status] += 1
        return counts

    @property
    def aligned(self) -> bool:
        """No case differs (boundary-only cases are aligned text, reported separately)."""
        return self.summary["differs"] == 0

    def exit_code(self, strict: bool = False) -> int:
        """CONTRACTS.md exit codes: 0 aligned, 1 any text difference (or boundary-only with --strict)."""
        s = self.summary
        if s["differs"] or (strict and s["boundary_only"]):
            return 1
        return 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "lf_version": self.lf_version,
            "package_version": self.package_version,
            "template": self.template,
            "options": self.options,
            "engine": self.engine,
            "summary": self.summary,
            "cases": [c.to_dict() for c in self.cases],
        }


def _decode(tokenizer: Any, ids: list[int]) -> str:
    return tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)


def compare_ids(case_id: str, expected: list[int], actual: list[int], tokenizer: Any) -> CaseResult:
    """Classify two id sequences; on a difference, point at the first diverging token."""
    if expected == actual:
        return CaseResult(case_id, "identical", expected_len=len(expected), actual_len=len(actual))
    i = 0
    n = min(len(expected), len(actual))
    while i < n and expected[i] == actual[i]:
        i += 1
    start = max(0, i - WINDOW_BEFORE)
    exp_w, act_w = expected[start : i + WINDOW_AFTER], actual[start : i + WINDOW_AFTER]
    diff = FirstDiff(
        index=i,
        expected_ids=exp_w,
        actual_ids=act_w,
        expected_text=_decode(tokenizer, exp_w),
        actual_text=_decode(tokenizer, act_w),
        window_start=start,
    )
    same_text = _decode(tokenizer, expected) == _decode(tokenizer, actual)
    return CaseResult(
        case_id,
        "boundary_only" if same_text else "differs",
        first_diff=diff,
        expected_len=len(expected),
        actual_len=len(actual),
    )


class Renderer:
    """Renders conversations with a Jinja template as vLLM/SGLang do (HF renderer, no BOS added)."""

    engine = "hf"

    def __init__(self, tokenizer: Any, jinja: str, frozen: Optional[_dt.datetime] = None) -> None:
        self.tokenizer = tokenizer
        self.jinja = jinja
        self.frozen = frozen

    def text(self, messages: list[dict[str, Any]], tools: Any, add_generation_prompt: bool, **kwargs: Any) -> str:
        if self.frozen is not None:
            frozen = self.frozen
            kwargs.setdefault("strftime_now", lambda fmt: frozen.strftime(fmt))
        return self.tokenizer.apply_chat_template(
            messages,
            tools=tools,
            chat_template=self.jinja,
            add_generation_prompt=add_generation_prompt,
            tokenize=False,
            **kwargs,
        )

    def ids(self, messages: list[dict[str, Any]], tools: Any, add_generation_prompt: bool, **kwargs: Any) -> list[int]:
        text = self.text(messages, tools, add_generation_prompt, **kwargs)
        return self.tokenizer.encode(text, add_special_tokens=False)


def reference_ids(prepared: Any, conversation: dict[str, Any]) -> tuple[list[int], list[int]]:
    """LF's training ids for ``conversation`` and the prompt ids of its last turn.

    The prompt is the training sequence cut at the start of the last response, except for a
    reasoning template trained with ``enable_thinking: null``: LF then puts the empty thought
    in the prompt only when the answer has no thought, so the prompt depends on the answer.
    The compiled template follows LF's own inference there (``encode_oneturn`` with an empty
    answer: empty thought in the prompt), and so does this reference.

    Raises ``UnrepresentableConversation`` or LF's own error when LF cannot encode it.
    """
    from ..lf import compat as lf_compat
    from ..model import messages as msgmap

    words = tuple(prepared.template.thought_words)
    tcw = getattr(prepared.template, "tool_call_words", None)
    kind = lf_compat.template_kind(prepared.template)
    if kind == "llama2":
        tcw = None  # Llama2Template's FunctionFormatter gets no words: the turn is the call JSON
    conv = msgmap.to_lf(conversation["messages"], conversation.get("tools"), thought_words=words, tool_call_words=tcw)
    pairs = lf_compat.encode_training(prepared, conv.messages, conv.system, conv.tools)
    ids: list[int] = [i for src, tgt in pairs for i in src + tgt]
    prompt = ids[: len(ids) - len(pairs[-1][1])] if pairs else []
    if kind in ("reasoning", "glm47") and prepared.template.enable_thinking is None and conv.messages:
        last = conv.messages[-1]
        if last["role"] == "assistant":
            blank = conv.messages[:-1] + [{"role": "assistant", "content": ""}]
            bpairs = lf_compat.encode_training(prepared, blank, conv.system, conv.tools)
            prompt = [i for src, tgt in bpairs[:-1] for i in src + tgt] + bpairs[-1][0]
    return ids, prompt


def verify_template(
    template: Any,
    tokenizer: Any,
    conversations: Optional[list[dict[str, Any]]] = None,
    *,
    jinja: Optional[str] = None,
    options: TemplateOptions = TemplateOptions(),
    frozen: Optional[_dt.datetime] = None,
    prepared: Any = None,
) -> AlignmentReport:
    """See :func:`lf_template_ext.verify`.

    ``prepared``: the result of ``lf_compat.prepare(template, tokenizer, options)`` when the caller
    already has it (preparing copies the tokenizer, the dominant cost); it is only read.

    A conversation may carry ``"enable_thinking"``: it is then passed to the template as a
    render kwarg (as vLLM's ``chat_template_kwargs`` would) and LF's reference is encoded
    with the same setting.
    """
    from ..lf import compat as lf_compat
    from ..compiler import compile_spec
    from ..model.corpus import probe_corpus

    frozen = frozen or _dt.datetime.now().replace(microsecond=0)
    conversations = probe_corpus() if conversations is None else conversations
    base = prepared if prepared is not None else lf_compat.prepare(template, tokenizer, options)
    if jinja is None:
        jinja = compile_spec(lf_compat.template_spec(base), lf_compat.tokenizer_facts(base.tokenizer))
    report = AlignmentReport(
        template=base.name, options=options.to_dict(), engine="hf", lf_version=base.lf_version
    )
    prepared_by_thinking: dict[Any, Any] = {options.enable_thinking: base}
    renderer = Renderer(base.tokenizer, jinja, frozen)
    for conv in conversations:
        kwargs: dict[str, Any] = {}
        prepared = base
        if "enable_thinking" in conv:
            value = conv["enable_thinking"]
            kwargs["enable_thinking"] = value
            if value not in prepared_by_thinking:
                prepared_by_thinking[value] = lf_compat.prepare(
                    template, tokenizer, TemplateOptions(**{**options.to_dict(), "enable_thinking": value})
                )
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
