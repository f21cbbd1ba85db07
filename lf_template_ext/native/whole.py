"""``template_ext_tokenize: whole``: an LF template's training ids as every engine makes them.

LF encodes each slot of its template on its own (``tokenizer.encode`` per piece) and
concatenates the ids; an engine renders the whole prompt and tokenizes it once. Wherever a
message starts or ends with whitespace, or its text merges with the slot before it, the two
differ (the "boundary-only" cases of a check), and no chat template can reproduce a slot-wise
split. Whole mode moves training to the engines' side:

* the **text** of a sample is the compiled Jinja template (``lf.whole_template.compiled_template``)
  rendered for it, as an engine renders it (``ChatRenderer``, native mode's renderer, with that
  template instead of the tokenizer's own);
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

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .encode import NativeEncoder, Pair, Sample, to_pairs
from .render import ChatRenderer, Conversation, NativeRenderError

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

    # -- text --------------------------------------------------------------------------------------
    def full_text(self, sample: WholeSample, name: Sample) -> str:
        """The rendering of the whole conversation, checked against LF's pieces joined."""
        try:
            text = self.renderer.render(sample.conv, len(sample.conv.messages), False)
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
