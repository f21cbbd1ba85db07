"""``template_ext_tokenize: whole``: an LF template's training ids as every engine makes them.

LF encodes each slot of its template on its own (``tokenizer.encode`` per piece) and
concatenates the ids; an engine renders the whole prompt and tokenizes it once. Wherever a
message starts or ends with whitespace, or its text merges with the slot before it, the two
differ (the "boundary-only" cases of a check), and no chat template can reproduce a slot-wise
split. Whole mode moves training to the engines' side:

* the **text** of a sample is the compiled Jinja template (``lf.whole_template.compiled_template``)
  rendered for it, as an engine renders it (``ChatRenderer``, native mode's renderer, with that
  template instead of the tokenizer's own; per sample through :class:`PlainRender`, its plain-Jinja
  mirror, proved against it on every batch);
* the **ids** are that text tokenized whole with ``add_special_tokens=False`` (one batched call
  per preprocessing batch, native mode's ``NativeEncoder._tokenize``);
* the **labels** are LF's: LF's own ``encode_multiturn``/``encode_oneturn`` is run with a text
  recorder for a tokenizer (``lf.whole_template``), which yields the text of every (prompt,
  response) slot pair with all of LF's rules applied (reasoning templates' thought words and
  ``enable_thinking``, history thoughts, tool calls, observations, the default system). The
  rendering must equal those pieces joined (the compiled template renders exactly LF's text;
  a sample where it does not is refused, naming it). The whole ids are then cut into LF's pairs
  at the pieces' character borders (a token that a merge makes straddle a border belongs to the
  piece its last character is in, native mode's rule, except that a prompt piece keeps at least one
  token: LF's loop labels the first prompt token with eos for ``efficient_eos`` templates) and handed back to LF's own supervised
  loop, which applies ``cutoff_len``, ``train_on_prompt``, ``mask_history`` and ``efficient_eos``
  exactly as for slot encoding.

LF-free: the LF side hands in the pieces and the compiled template.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Optional

from .encode import NativeEncoder, Pair, Sample, to_pairs
from .render import ChatRenderer, Conversation, NativeRenderError

logger = logging.getLogger("llamafactory.lf_template_ext.native")

#: The values of ``template_ext_tokenize``: LF's own slot-wise encoding, or the engines' whole-string one.
TOKENIZE_MODES = ("slots", "whole")
#: The pieces LF's encoder produced for one sample: per (prompt, response) pair, their texts.
Pieces = Sequence[tuple[str, str]]


@dataclass(frozen=True)
class WholeSample:
    """One sample: the request an engine would get, and LF's slot texts for it."""

    conv: Conversation
    pieces: Pieces


class WholeEncoder(NativeEncoder):
    """Whole-string ids of LF samples rendered with a compiled LF template (see module doc).

    Derives from :class:`NativeEncoder` for its tokenization (batched, Rust encodings, the
    char -> token map) and its errors; native mode's layout and policies are not used: LF trains
    every turn inside the one sequence, so its pairs are located in the rendering directly.
    """

    def __init__(self, renderer: ChatRenderer, *, template_name: str, ignore_index: int = -100, **kw: Any) -> None:
        from .encode import LFDataOptions

        super().__init__(
            renderer, policy="mask", data=LFDataOptions(), infer_seqlen=lambda a, b, c: (a, b),
            ignore_index=ignore_index, template_name=template_name, **kw,
        )
        self._plain = PlainRender.for_renderer(renderer)
        self._proved = False  # the plain render compared with the engines' render in this batch

    # -- text --------------------------------------------------------------------------------------
    def full_text(self, sample: WholeSample, name: Sample) -> str:
        """The rendering of the whole conversation, checked against LF's pieces joined.

        Rendered by :class:`PlainRender` when there is one (the same text at half the cost); the first
        sample of every batch is also rendered the engines' way and compared (:meth:`_prove`), and a
        sample the plain render cannot render is rendered the engines' way, whose error is the one to report.
        """
        plain, conv = self._plain, sample.conv
        text = None
        if plain is not None:
            text = plain.render(conv.messages, conv.tools, False)
            if text is not None and not self._proved:
                text = self._prove(conv, text)
        if text is None:
            try:
                text = self.renderer.render(conv, len(conv.messages), False)
            except NativeRenderError as e:
                raise self.fail(name, f"the compiled template cannot render it: {e}", _FIX) from e
        expected = "".join(p + r for p, r in sample.pieces)
        if text != expected:
            raise self.fail(name, _differs("its rendering", text, expected), _FIX)
        return text

    def prompt_text(self, conv: Conversation, expected: str, name: Sample) -> str:
        """The generation prompt of ``conv`` (every message): what an engine feeds, checked against LF's prompt."""
        try:
            text = self.renderer.render(conv, len(conv.messages), True)
        except NativeRenderError as e:
            raise self.fail(name, f"the compiled template cannot render its generation prompt: {e}", _FIX) from e
        if text != expected:
            raise self.fail(name, _differs("its generation prompt", text, expected), _FIX)
        return text

    # -- ids -----------------------------------------------------------------------------------------
    def pairs_batch(self, samples: Sequence[WholeSample], names: Sequence[Sample]) -> list[list[Pair]]:
        """LF's (prompt, response) id pairs of every sample, cut from its whole-tokenized rendering."""
        self._proved = False
        texts = [self.full_text(s, n) for s, n in zip(samples, names, strict=True)]
        ids_list, mappers, _ = self._tokenize(texts)
        out = []
        for sample, ids, to_tokens in zip(samples, ids_list, mappers, strict=True):
            ranges, pos, prev = [], 0, 0
            for prompt, response in sample.pieces:
                start = pos + len(prompt)
                pos = start + len(response)
                i, j = to_tokens((start, pos))
                if prompt and i <= prev < j:  # one merged token covers the whole prompt piece: it stays prompt
                    i = prev + 1
                ranges.append((i, j))
                prev = max(prev, j)
            out.append(to_pairs(ids, ranges))
            self.stats["conversations"] += 1
        return out

    def _prove(self, conv: Conversation, text: str) -> Optional[str]:
        """The engines' render of ``conv`` compared with the plain one; a difference turns the plain render off."""
        self._proved = True
        try:
            real = self.renderer.render(conv, len(conv.messages), False)
        except NativeRenderError:
            real = None
        if real != text:
            logger.warning(
                "whole mode: %s: plain Jinja rendered a sample differently from the engines' sandboxed render; "
                "rendering every sample the engines' way",
                self.template_name,
            )
            self._plain = None
        return real

    def oneturn(self, prompt_conv: Conversation, prompt: str, response: str, name: Sample) -> tuple[list[int], list[int]]:
        """LF's ``encode_oneturn``: the generation prompt an engine feeds, and the answer after it.

        The prompt is the compiled template's generation prompt for the messages before the answer
        (checked against LF's prompt text). With an empty answer (LF's chat/API engines,
        prediction) it is tokenized on its own, exactly as the engine tokenizes it; otherwise
        (DPO/KTO pairs) prompt and answer are tokenized whole together and cut where the answer
        starts.
        """
        text = self.prompt_text(prompt_conv, prompt, name)
        if not response:
            (ids,), _, _ = self._tokenize([text])
            return list(ids), []
        (ids,), (to_tokens,), _ = self._tokenize([text + response])
        i, _ = to_tokens((len(text), len(text) + len(response)))
        return list(ids[:i]), list(ids[i:])


class PlainRender:
    """The compiled template rendered by plain Jinja with the engines' settings: the same text, half the cost.

    Engines render a chat template through transformers' ``apply_chat_template``, in Jinja's
    ``ImmutableSandboxedEnvironment`` (``trim_blocks``, ``lstrip_blocks``, ``loopcontrols``, a ``tojson``
    that keeps non-ASCII, ``raise_exception``, ``strftime_now``), with the tokenizer's special tokens
    (``bos_token``...) and the caller's variables. A sandbox only *refuses* (unsafe attributes, mutating
    methods): every rendering it lets through is the plain environment's, character for character. Its
    checks on every attribute access are half the cost of rendering a compiled LF template (``loop.index0``,
    namespaces), paid per sample in whole mode. So whole mode renders with this mirror, and keeps the
    guarantee by proof, not by assumption: the first sample of every batch is also rendered the engines'
    way and compared (a difference, e.g. a transformers release that changes its environment, turns the
    mirror off for the run, with a warning), a sample the mirror cannot render is rendered the engines'
    way (whose error is reported), and every text is still compared with LF's pieces.
    Only for the compiled LF templates whole mode renders (our compiler's output, no sandbox-refused
    access): native mode renders the model's own template the engines' way.
    """

    def __init__(self, template_text: str, variables: Mapping[str, Any]) -> None:
        import jinja2
        import jinja2.ext

        env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
        env.filters["tojson"] = _tojson
        env.globals["raise_exception"] = _raise_exception
        env.globals["strftime_now"] = _strftime_now
        self._template = env.from_string(template_text)
        self._variables = dict(variables)

    @classmethod
    def for_renderer(cls, renderer: ChatRenderer) -> Optional["PlainRender"]:
        """The mirror of ``renderer``'s ``apply_chat_template`` call, or ``None`` when it cannot be built."""
        kwargs = dict(renderer.kwargs)
        text = kwargs.pop("chat_template", None)
        special = getattr(renderer.tokenizer, "special_tokens_map", None)
        if not isinstance(text, str) or not isinstance(special, Mapping):
            return None
        try:  # a keyword apply_chat_template consumes itself is not a template variable: leave it to the real call
            consumed = set(inspect.signature(renderer.tokenizer.apply_chat_template).parameters)
        except (TypeError, ValueError):
            return None
        if consumed & set(kwargs):
            return None
        try:
            return cls(text, {**special, **kwargs})
        except Exception:  # a template plain Jinja cannot compile: the engines' render decides
            return None

    def render(self, messages: list, tools: Any, add_generation_prompt: bool) -> Optional[str]:
        """The text, or ``None`` when rendering raised (the caller renders the engines' way for the error)."""
        try:
            text = self._template.render(
                messages=messages, tools=tools, documents=None, add_generation_prompt=add_generation_prompt,
                **self._variables,
            )
        except Exception:
            return None
        return text if isinstance(text, str) else None


def _tojson(x: Any, ensure_ascii: bool = False, indent: Any = None, separators: Any = None, sort_keys: bool = False) -> str:
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _raise_exception(message: str) -> None:
    from jinja2.exceptions import TemplateError

    raise TemplateError(message)


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


_FIX = (
    "the compiled template does not render LF's text for this sample; train it with `template_ext_tokenize: slots` "
    "(LF's own encoding) or drop the sample, and report it"
)


def _differs(what: str, got: str, expected: str) -> str:
    k = next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b), min(len(got), len(expected)))
    return (
        f"{what} differs from LF's text at character {k}: compiled {got[max(0, k - 20):k + 20]!r}, "
        f"LF {expected[max(0, k - 20):k + 20]!r}"
    )


def tokenize_mode() -> str:
    """``template_ext_tokenize`` in effect: the hook's options (YAML) > ``LF_TEMPLATE_EXT_TOKENIZE`` > ``slots``."""
    import os

    from ..model.options import EXTENSION_KEYS, EXTENSION_OPTIONS, TOKENIZE_KEY

    if TOKENIZE_KEY in EXTENSION_OPTIONS:
        return parse_tokenize(EXTENSION_OPTIONS[TOKENIZE_KEY], f"YAML key {TOKENIZE_KEY}")
    env = EXTENSION_KEYS[TOKENIZE_KEY] or ""
    value = os.environ.get(env)
    return parse_tokenize(value, env) if value not in (None, "") else "slots"


def parse_tokenize(value: Any, source: str) -> str:
    """``slots`` or ``whole`` (``template_ext_tokenize`` / ``LF_TEMPLATE_EXT_TOKENIZE``)."""
    from .options import NativeOptionError

    mode = str(value).strip().lower()
    if mode not in TOKENIZE_MODES:
        raise NativeOptionError(
            f"{source}: unknown tokenization {value!r}; use `slots` (LF's own, per slot) or `whole` (the compiled "
            "template rendered and tokenized whole, as engines do; docs/native-mode.md)"
        )
    return mode
