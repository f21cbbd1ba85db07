"""``template_ext_tokenize: whole``: any LF template, trained on the engines' whole-string ids.

:func:`wrap` turns the template LF prepared (``get_template_and_fix_tokenizer``: the enable
hook calls it when the option is on) into a :class:`WholeTemplate`: the same fields (LF's
processors read ``efficient_eos``, ``mm_plugin``, ``enable_thinking``... from it unchanged),
whose ``encode_multiturn``/``encode_oneturn`` return LF's pairs cut from the compiled template's
rendering tokenized whole (``native.whole``). Everything around them is LF's own: the dataset
converter, the supervised loop (``cutoff_len``, ``train_on_prompt``, ``mask_history``,
``efficient_eos`` labels), packing, the pairwise/KTO processors, ``llamafactory-cli chat``/``api``.

The labels come from LF itself: :class:`TextRecorder` stands in for the tokenizer in a call of
the original template's ``encode_*`` and returns each piece's *text* instead of its ids, so the
(prompt, response) texts carry every rule of LF's template class (reasoning templates' thought
words, ``enable_thinking``, history thoughts, tool formats, the default system).

The compiled template comes from one function, :func:`compiled_template` (``lf.compat.snapshot``
+ ``compiler.compile_spec``), so a compile option that whole mode needs is set in one place.
"""

from __future__ import annotations

import functools
import json
from typing import Any, Optional

from llamafactory.data.template import Template

from ..compiler import compile_spec
from ..model.options import TemplateOptions
from ..model.spec import kind_passes_call_words
from ..model.tool_order import canonical_tools, tool_order_for
from ..native.render import ChatRenderer, Conversation, openai_tools
from ..native.whole import WholeEncoder, WholeSample
from . import compat

#: Marker class attribute (lets ``is_whole`` answer without importing LF).
MARKER = "_lf_template_ext_whole"


def compiled_template(template: Any, tokenizer: Any, options: TemplateOptions) -> str:
    """THE compiled Jinja of an LF template (a registered name or a Template) for whole mode.

    Every whole-mode caller (training, ``check``'s reference, the tests, the bench) compiles
    through here; compile options whole mode needs are switched on here.
    """
    snap = compat.snapshot(template, tokenizer, options)
    return compile_spec(snap.spec, snap.facts, tool_order=tool_order_for("whole"))


def canonical_tools_text(tools: Any) -> Any:
    """A sample's tools (LF's ``_tools`` JSON text) in the canonical order the compiled template writes.

    Whole mode trains on the compiled template's text, which writes tool definitions in one fixed order
    (``model.tool_order``: what every engine's re-serialization comes back to); LF's pieces must be cut
    from the same text, so LF encodes the canonical definitions too. Text that is not JSON is left to LF.
    """
    if not tools or not isinstance(tools, str):
        return tools
    try:
        parsed = json.loads(tools)
    except ValueError:
        return tools
    return json.dumps(canonical_tools(parsed), ensure_ascii=False)


class TextRecorder:
    """A stand-in tokenizer for LF's ``_convert_elements_to_ids``: every element becomes its text.

    ``encode(text)`` -> ``[text]``; a token (``{"token": ...}``) -> its text; ``bos``/``eos``
    sets -> the real tokenizer's bos/eos text (``None`` when it has none, as LF checks). The
    "ids" LF concatenates are then strings, and each piece's text is their join.
    """

    def __init__(self, tokenizer: Any) -> None:
        self._tok = tokenizer

    def encode(self, text: str, add_special_tokens: bool = False, **_: Any) -> list[str]:
        return [text] if text else []

    def convert_tokens_to_ids(self, token: Any) -> Any:
        return token

    @property
    def bos_token_id(self) -> Optional[str]:
        return self._tok.bos_token if self._tok.bos_token_id is not None else None

    @property
    def eos_token_id(self) -> Optional[str]:
        return self._tok.eos_token if self._tok.eos_token_id is not None else None

    def __getattr__(self, name: str) -> Any:  # anything else LF asks (names, special tokens) is the tokenizer's
        return getattr(self._tok, name)


def _text(pieces: Any) -> str:
    return "".join(pieces)


class WholeTemplate(Template):
    """An LF template whose ids are the compiled template's rendering tokenized whole (module doc)."""

    _lf_template_ext_whole = True

    # -- pickling: ``datasets`` fingerprints the processor (and this template) with dill -----------
    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_lfx_")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    # -- the pieces ---------------------------------------------------------------------------------
    def _conv(self, messages: list, system: Optional[str], tools: Optional[str]) -> Conversation:
        from ..model.messages import from_lf

        inner = self._whole_inner
        kind = compat.template_kind(inner, strict=False)
        tcw = tuple(inner.tool_call_words) if kind_passes_call_words(kind) else None
        msgs, tool_list = from_lf(
            [{"role": str(m["role"]), "content": m["content"]} for m in messages],
            system or None,
            tools or None,
            thought_words=tuple(inner.thought_words),
            tool_call_words=tcw,
        )
        return Conversation(messages=msgs, tools=openai_tools(tool_list))

    def _encoder(self, tokenizer: Any) -> WholeEncoder:
        encoders = self.__dict__.setdefault("_lfx_encoders", {})
        hit = encoders.get(id(tokenizer))
        if hit is None or hit[0] is not tokenizer:
            renderer = ChatRenderer(tokenizer, enable_thinking=None, chat_template=self._whole_jinja, cache=False)
            name = f"LF template {self._whole_name!r} compiled (template_ext_tokenize: whole)"
            hit = encoders[id(tokenizer)] = (tokenizer, WholeEncoder(renderer, template_name=name))
        return hit[1]

    def whole_pieces(self, tokenizer: Any, messages: list, system: Any, tools: Any, *discard: Any) -> list[tuple[str, str]]:
        """LF's own ``encode_multiturn`` of the original template, as texts."""
        pairs = self._whole_inner.encode_multiturn(TextRecorder(tokenizer), messages, system, tools, *discard)
        return [(_text(p), _text(r)) for p, r in pairs]

    def whole_sample(self, tokenizer: Any, messages: list, system: Any, tools: Any, *discard: Any) -> WholeSample:
        tools = canonical_tools_text(tools)
        return WholeSample(self._conv(messages, system, tools), self.whole_pieces(tokenizer, messages, system, tools, *discard))

    def whole_pairs_batch(self, tokenizer: Any, samples: list[WholeSample], names: list[Any]) -> list[list[tuple]]:
        return self._encoder(tokenizer).pairs_batch(samples, names)

    # -- LF's encoding methods ------------------------------------------------------------------------
    def encode_multiturn(self, tokenizer, messages, system=None, tools=None, *args: Any, **kwargs: Any):
        ready = self.__dict__.pop("_lfx_next", None)  # set by the batch path (plugin.native_processors)
        if ready is not None:
            return ready
        self.__dict__["_lfx_row_encodes"] = self.__dict__.get("_lfx_row_encodes", 0) + 1  # tests: the batch path hit
        discard = (*args, *kwargs.values())
        sample = self.whole_sample(tokenizer, messages, system, tools, *discard)
        return self._encoder(tokenizer).pairs_batch([sample], [_name(messages)])[0]

    def encode_oneturn(self, tokenizer, messages, system=None, tools=None):
        """The compiled template's generation prompt (tokenized alone when the answer is empty: LF's chat/API),
        then the answer as LF's multi-turn encoding renders the last turn (DPO/KTO pairs).

        The prompt follows the project's reference rule (``verifier.reference``), not LF's inference-only
        ``encode_oneturn`` text: it is what engines render, the training sequence up to the last answer of
        the conversation with that answer left empty.
        """
        answer = str(messages[-1].get("content", "")) if messages else ""
        tools = canonical_tools_text(tools)
        blank = list(messages[:-1]) + [{"role": "assistant", "content": ""}]
        pieces = self.whole_pieces(tokenizer, blank, system, tools)
        prompt = "".join(p + r for p, r in pieces[:-1]) + pieces[-1][0]
        response = self.whole_pieces(tokenizer, messages, system, tools)[-1][1] if answer else ""
        conv = self._conv(messages[:-1], system, tools)
        return self._encoder(tokenizer).oneturn(conv, prompt, response, _name(messages))

    def _get_jinja_template(self, tokenizer):
        """The compiled template: what whole mode trains on, and what LF writes into an export."""
        return self._whole_jinja


def _name(messages: list) -> Any:
    from ..native.mode import sample_name

    return functools.partial(sample_name, 0, messages)


def is_whole(template: Any) -> bool:
    return bool(getattr(type(template), MARKER, False))


def wrap(template: Any, tokenizer: Any, data_args: Any, *, jinja: Optional[str] = None) -> WholeTemplate:
    """The template LF prepared, encoding whole (``template_ext_tokenize: whole``).

    ``jinja``: the compiled template when the caller has it (from :func:`compiled_template`).
    """
    if is_whole(template):
        return template
    name = getattr(data_args, "template", None) or "custom"
    if jinja is None:
        options = TemplateOptions.from_data_args(data_args)
        jinja = compiled_template(name if name in compat.template_names() else template, tokenizer, options)
    out = WholeTemplate.__new__(WholeTemplate)
    out.__dict__.update(template.__dict__)
    out.__dict__.update(_whole_inner=template, _whole_jinja=jinja, _whole_name=name)
    return out
