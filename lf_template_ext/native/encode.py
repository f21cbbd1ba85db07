"""Conversations -> LF training examples ``(input_ids, labels)`` with the model's chat template.

The pipeline for a batch (LF hands its dataset processor 1000 rows at a time):

1. render each conversation's prompts and finals (``native_render``) and lay out its turns
   (``native_layout``): which character spans are trained, in which example;
2. tokenize every example text in one batched call, whole, with ``add_special_tokens=False``
   (what vLLM does with a rendered chat prompt; ``batch_tokenize``: transformers' ids from the Rust
   backend's batch call, without transformers' per-text conversion);
3. map the character spans to tokens (the Rust encodings' ``char_to_token``, a handful of
   calls per example, instead of a Python tuple per token for every offset) and cut the
   sequence into LF's (prompt, response) pairs, then apply LF's own cutoff/label loop
   (``assemble``: ``infer_seqlen`` truncation, ``train_on_prompt``, ``mask_history``), so LF's
   options keep their meaning. An example that fits ``cutoff_len`` takes ``assemble_fitting``,
   which builds the same labels by slice assignment (LF's loop never truncates a pair that fits).

A token is trained for span ``[s, e)`` when it ends inside it (``s < end <= e``): when a
BPE merge crosses the start of an answer (LF's "boundary-only" case) the merged token is
part of the answer. Everything but the trained tokens is ``IGNORE_INDEX``.
"""

from __future__ import annotations

import functools
import logging
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Optional, Union

from ..errors import ConversationError
from .batch_tokenize import BatchTokenizer
from .layout import Example, NativeLayoutError, SpecialText, analyze, plan, turn_example
from .prefix import pieces_are_independent, split_point, splitting_tokens
from .render import ChatRenderer, Conversation, NativeRenderError, anchors

logger = logging.getLogger("llamafactory.lf_template_ext.native")
Mapper = Callable[[tuple[int, int]], tuple[int, int]]  # char span -> token range of one text

Pair = tuple[list[int], list[int]]
InferSeqlen = Callable[[int, int, int], tuple[int, int]]
Sample = Union[str, Callable[[], str]]  # a sample's name, or how to make it (only errors need it)


@dataclass(frozen=True)
class LFDataOptions:
    """The LF data arguments that change the example: same names and meaning as LF's."""

    cutoff_len: int = 2048
    train_on_prompt: bool = False
    mask_history: bool = False


@dataclass
class Encoded:
    """One training example and where it came from."""

    input_ids: list[int]
    labels: list[int]
    turns: tuple[int, ...]  # assistant turns trained in it (0-based)


class NativeSampleError(ConversationError):
    """A sample that native mode cannot train: names the sample, the template and the fix."""

    def __init__(self, sample: str, template: str, reason: str, fix: str) -> None:
        self.sample, self.template, self.reason, self.fix = sample, template, reason, fix
        super().__init__(f"native mode: {sample}: {reason}\n  chat template: {template}\n  fix: {fix}")


def special_text(tokenizer: Any) -> SpecialText:
    tokens = set(tokenizer.get_added_vocab())
    tokens.update(t for t in getattr(tokenizer, "all_special_tokens", []) if t)
    return SpecialText(tokens)


def token_range(ends: Sequence[int], span: tuple[int, int]) -> tuple[int, int]:
    """Tokens ``[i, j)`` whose end offsets fall in ``(s, e]`` (``ends`` non-decreasing)."""
    s, e = span
    return bisect_right(ends, s), bisect_right(ends, e)


def offsets_range(offsets: Sequence[tuple[int, int]], span: tuple[int, int]) -> tuple[int, int]:
    """:func:`token_range` straight on a tokenizer's offsets (no per-token list is built).

    Token end offsets never decrease for the tokenizers we know; where they would, the
    running maximum is used, as :func:`token_ends` does.
    """
    s, e = span
    end = itemgetter(1)
    i, j = bisect_right(offsets, s, key=end), bisect_right(offsets, e, key=end)
    for k in (i, j):
        if (0 < k < len(offsets) and offsets[k - 1][1] > offsets[k][1]) or (k > 1 and offsets[k - 2][1] > offsets[k - 1][1]):
            return token_range(token_ends(offsets), span)
    return i, j


def encoding_range(encoding: Any, n_chars: int, span: tuple[int, int]) -> tuple[int, int]:
    """:func:`token_range` from a Rust ``tokenizers.Encoding``, without its offsets list.

    The first token covering character ``s`` is the first token ending after ``s`` (token
    starts never decrease), so ``char_to_token`` answers both ends; a position past the text
    maps to the token count. A character no token covers (a normalizer dropped it) falls back
    to the offsets.
    """
    n_tokens = len(encoding)
    out = []
    for pos in span:
        t = n_tokens if pos >= n_chars else encoding.char_to_token(pos)
        if t is None:
            return offsets_range(encoding.offsets, span)
        out.append(t)
    return out[0], out[1]


def compose_ids(base: list[int], u: int, suffix: list[int]) -> list[int]:
    """An extra example's ids from its conversation's: ``ids(T)[:u] + ids(E[a:])`` (``native_prefix``)."""
    return base[:u] + suffix


def _composed_range(base: Mapper, suffix: Mapper, a: int, u: int, span: tuple[int, int]) -> tuple[int, int]:
    """Token range in ``ids(T)[:u] + ids(E[a:])`` of a char span of ``E`` (``E[:a] == T[:a]``)."""
    out = []
    for pos in span:
        out.append(base((pos, pos))[0] if pos < a else u + suffix((pos - a, pos - a))[0])
    return out[0], out[1]


def cuts(n: int, ranges: Sequence[tuple[int, int]]) -> list[tuple[int, int, int]]:
    """``(a, i, j)`` per LF pair: prompt ``[a, i)``, response ``[i, j)`` of ``n`` ids (see :func:`to_pairs`)."""
    out = []
    prev = 0
    for i, j in ranges:  # an overlapping or reversed range is clipped: every id in exactly one piece
        i = max(i, prev)
        j = max(i, j)
        out.append((prev, i, j))
        prev = j
    if prev < n:  # nothing trained after the last span (never for our layouts): keep it as prompt
        out.append((prev, n, n))
    return out


def to_pairs(ids: Sequence[int], ranges: Sequence[tuple[int, int]]) -> list[Pair]:
    """Cut ``ids`` into LF's (prompt, response) pairs at the trained ranges."""
    return [(list(ids[a:i]), list(ids[i:j])) for a, i, j in cuts(len(ids), ranges)]


def assemble_fitting(
    ids: list[int], ranges: Sequence[tuple[int, int]], options: LFDataOptions, ignore_index: int
) -> Optional[tuple[list[int], list[int]]]:
    """:func:`assemble` of :func:`to_pairs` for an example that fits ``cutoff_len`` (else ``None``).

    LF's ``infer_seqlen`` keeps a pair whole when it fits the room left, so a fitting example
    keeps every id in order, ``mask_history``'s reversal included; labels are then the ids of
    the trained responses (and of the prompts with ``train_on_prompt``), written by slice
    instead of LF's per-pair list building. ``tests/test_native_encode.py`` checks it against
    :func:`assemble` with LF's own ``infer_seqlen``.
    """
    if len(ids) > options.cutoff_len:
        return None
    pieces = cuts(len(ids), ranges)
    last = len(pieces) - 1
    if options.train_on_prompt:
        labels = list(ids)
        if options.mask_history:
            for k, (_, i, j) in enumerate(pieces):
                if k != last:
                    labels[i:j] = [ignore_index] * (j - i)
        return list(ids), labels
    labels = [ignore_index] * len(ids)
    for k, (_, i, j) in enumerate(pieces):
        if not options.mask_history or k == last:
            labels[i:j] = ids[i:j]
    return list(ids), labels


def assemble(
    pairs: Sequence[Pair], options: LFDataOptions, infer_seqlen: InferSeqlen, ignore_index: int
) -> tuple[list[int], list[int]]:
    """LF 0.9.4/0.9.5 ``SupervisedDatasetProcessor._encode_data_example`` after ``encode_multiturn``.

    Native templates are never ``efficient_eos``; the rest is LF's loop, line for line.
    """
    input_ids: list[int] = []
    labels: list[int] = []
    total = 0
    ordered = list(pairs)[::-1] if options.mask_history else list(pairs)
    for turn_idx, (source_ids, target_ids) in enumerate(ordered):
        if total >= options.cutoff_len:
            break
        source_len, target_len = infer_seqlen(len(source_ids), len(target_ids), options.cutoff_len - total)
        source_ids, target_ids = source_ids[:source_len], target_ids[:target_len]
        total += source_len + target_len
        source_label = source_ids if options.train_on_prompt else [ignore_index] * source_len
        if options.mask_history and turn_idx != 0:
            target_label = [ignore_index] * target_len
        else:
            target_label = target_ids
        if options.mask_history:
            input_ids = source_ids + target_ids + input_ids
            labels = source_label + target_label + labels
        else:
            input_ids += source_ids + target_ids
            labels += source_label + target_label
    return input_ids, labels


def token_ends(offsets: Sequence[tuple[int, int]]) -> list[int]:
    """End offset of every token, made non-decreasing (it already is for the tokenizers we know)."""
    ends = [e for _, e in offsets]
    if ends != sorted(ends):
        top = 0
        for i, e in enumerate(ends):
            top = ends[i] = max(top, e)
    return ends


class NativeEncoder:
    """Encodes conversations for one tokenizer + chat template + LF options (see module doc)."""

    def __init__(
        self,
        renderer: ChatRenderer,
        *,
        policy: str,
        data: LFDataOptions,
        infer_seqlen: InferSeqlen,
        ignore_index: int,
        template_name: str,
        suggest: Callable[[], Optional[str]] = lambda: None,
    ) -> None:
        self.renderer = renderer
        self.tokenizer = renderer.tokenizer
        self.special = special_text(self.tokenizer)
        self.policy = policy
        self.data = data
        self.infer_seqlen = infer_seqlen
        self.ignore_index = ignore_index
        self.template_name = template_name
        self._suggest = suggest
        self._batch = BatchTokenizer(self.tokenizer)  # transformers' ids, without its per-text conversion
        self.stats = {
            "conversations": 0, "unstable_turns": 0, "extra_examples": 0, "untrained_turns": 0, "reused_prefixes": 0,
        }
        # the tokens texts are cut at, when prefix reuse is sound for this tokenizer (native_prefix)
        self._reuse = SpecialText(splitting_tokens(self.tokenizer)) if pieces_are_independent(self.tokenizer) else None

    # -- errors ---------------------------------------------------------------------------------
    def fail(self, sample: Sample, reason: str, fix: str) -> NativeSampleError:
        name = self._suggest()
        fix = f"{fix}; or train with LF's own template for this model: `template: {name}`" if name else fix
        return NativeSampleError(sample() if callable(sample) else sample, self.template_name, reason, fix)

    def examples(self, conv: Conversation, sample: Sample, policy: Optional[str] = None) -> list[Example]:
        """The training examples of one conversation (raises :class:`NativeSampleError`)."""
        policy = policy or self.policy
        try:
            fast = self.renderer.stable_spans(conv)
            if fast is not None:  # prefix-stable, proven on cached skeletons: one example, no comparison
                full, spans = fast
                self.stats["conversations"] += 1
                return [Example(text=full, spans=tuple(spans), turns=tuple(range(len(spans))))]
            prompts, finals = self.renderer.turn_renders(conv)
            layout = analyze(prompts, finals, self.special, anchors(conv))
            out = plan(layout, prompts, finals, policy=policy, mask_history=self.data.mask_history)
        except NativeRenderError as e:
            raise self.fail(sample, f"the chat template cannot render it: {e}", "fix or drop this sample") from e
        except NativeLayoutError as e:
            raise self.fail(sample, str(e), _layout_fix(e, self.renderer)) from e
        self.stats["conversations"] += 1
        unstable = sum(1 for v in layout.verdicts if not v.in_full)
        self.stats["unstable_turns"] += unstable
        self.stats["extra_examples"] += len(out) - 1  # beyond one example per conversation
        if not self.data.mask_history and policy == "mask":
            self.stats["untrained_turns"] += unstable
        return out

    # -- tokens -----------------------------------------------------------------------------------
    def _tokenize(self, texts: list[str]) -> tuple[list[list[int]], list[Mapper], Optional[list[Any]]]:
        """Ids of every text (one batched call), per text a char span -> token range map, and the encodings."""
        if not texts:
            return [], [], []
        if not getattr(self.tokenizer, "is_fast", False):  # a slow (Python) tokenizer has no encodings
            ids, mappers = self._tokenize_slow(texts)
            return ids, mappers, None
        ids, encodings = self._batch(texts)
        if encodings is None or len(encodings) != len(texts):
            raise RuntimeError(f"{type(self.tokenizer).__name__} returned no per-text encodings")  # pragma: no cover
        mappers: list[Mapper] = [functools.partial(encoding_range, e, len(t)) for e, t in zip(encodings, texts)]
        return ids, mappers, encodings

    def _tokenize_slow(self, texts: list[str]) -> tuple[list[list[int]], list[Mapper]]:
        """Without offsets, a boundary's token index is the length of the text before it, encoded."""
        encode = functools.partial(self.tokenizer.encode, add_special_tokens=False)

        def mapper(text: str) -> Mapper:
            return lambda span: (len(encode(text[: span[0]])), len(encode(text[: span[1]])))

        return [encode(t) for t in texts], [mapper(t) for t in texts]

    def _tokenize_examples(
        self, texts: list[str], bases: Optional[Sequence[Optional[int]]]
    ) -> tuple[list[list[int]], list[Mapper]]:
        """:meth:`_tokenize`, reusing the base text's token prefix where ``native_prefix`` allows it.

        ``bases[n]`` is the index of the text whose prefix text ``n`` may share (its
        conversation's full rendering, itself tokenized whole), or ``None``.
        """
        finder = self._reuse
        splits: dict[int, tuple[int, int]] = {}
        if finder is not None and bases:
            for n, b in enumerate(bases):
                if b is not None:
                    a = split_point(finder, texts[n], texts[b])
                    if a:
                        splits[n] = (b, a)
        if not splits:
            return self._tokenize(texts)[:2]
        ids_list, mappers, encodings = self._tokenize([t[splits[n][1]:] if n in splits else t for n, t in enumerate(texts)])
        assert encodings is not None  # a finder exists only for fast tokenizers
        whole = []  # texts the reuse could not serve after all: tokenized whole below
        for n, (b, a) in splits.items():
            u = encodings[b].char_to_token(a)
            suffix = ids_list[n]
            if u is None or not suffix or ids_list[b][u] != suffix[0]:
                whole.append(n)
                continue
            ids_list[n] = compose_ids(ids_list[b], u, suffix)
            mappers[n] = functools.partial(_composed_range, mappers[b], mappers[n], a, u)
        first = next((n for n in splits if n not in whole), None)
        if first is not None:
            whole.append(first)  # the claim, checked on this batch's data
        if whole:
            ids_w, mappers_w, _ = self._tokenize([texts[n] for n in whole])
            if first is not None and ids_w[-1] != ids_list[first]:
                logger.warning(
                    "native mode: %s: reusing token prefixes changed an example's ids; tokenizing every example whole",
                    self.template_name,
                )
                self._reuse = None
                return self._tokenize(texts)[:2]
            for n, ids, mapper in zip(whole, ids_w, mappers_w):
                ids_list[n], mappers[n] = ids, mapper
        self.stats["reused_prefixes"] += len(splits) - len(whole) + (first is not None)
        return ids_list, mappers

    def encode_examples(
        self, examples: Sequence[Example], bases: Optional[Sequence[Optional[int]]] = None
    ) -> list[tuple[list[int], list[int]]]:
        ids_list, mappers = self._tokenize_examples([ex.text for ex in examples], bases)
        out = []
        for ex, ids, to_tokens in zip(examples, ids_list, mappers, strict=True):
            ranges = [to_tokens(span) for span in ex.spans]
            fitting = assemble_fitting(ids, ranges, self.data, self.ignore_index)
            out.append(fitting or assemble(to_pairs(ids, ranges), self.data, self.infer_seqlen, self.ignore_index))
        return out

    def pairs(self, conv: Conversation, sample: Sample) -> list[Pair]:
        """One example as LF's (prompt, response) pairs, for LF's stock supervised loop.

        That loop makes one example per conversation, so policy ``expand`` acts as ``mask``
        here; the batch path (``lf.plugin.native_processors``) expands.
        """
        (example,) = self.examples(conv, sample, policy="mask" if self.policy == "expand" else self.policy)[:1]
        (ids,), (to_tokens,), _ = self._tokenize([example.text])
        return to_pairs(ids, [to_tokens(span) for span in example.spans])

    def encode_batch(self, convs: Sequence[Conversation], samples: Sequence[Sample]) -> list[list[Encoded]]:
        """For each conversation, its examples (the full rendering first, then extra ones)."""
        planned = [self.examples(conv, sample) for conv, sample in zip(convs, samples, strict=True)]
        flat: list[Example] = []
        bases: list[Optional[int]] = []
        for exs in planned:  # extra examples may reuse the tokens of their conversation's full rendering
            base = len(flat)
            flat.extend(exs)
            bases.extend([None] + [base] * (len(exs) - 1))
        encoded = iter(self.encode_examples(flat, bases))
        out: list[list[Encoded]] = []
        for exs in planned:
            row = []
            for ex in exs:
                ids, labels = next(encoded)
                row.append(Encoded(ids, labels, ex.turns))
            out.append(row)
        return out

    def encode_oneturn(self, conv: Conversation) -> tuple[list[int], list[int]]:
        """LF's ``encode_oneturn``: prompt ids and response ids of the last assistant turn.

        With an empty last answer (LF's chat/API engines, prediction) the prompt is the
        generation prompt tokenized on its own: exactly what vLLM feeds. Otherwise (DPO,
        KTO pairs) the last turn's example (``native_layout.turn_example``: the engine's
        prompt, then the answer as rendered) is tokenized whole and cut where the answer
        starts.
        """
        msgs = conv.messages
        if not msgs or msgs[-1].get("role") != "assistant":
            raise NativeRenderError("the last message must be the assistant's", False, len(msgs))
        prompt_text = self.renderer.render(conv, len(msgs) - 1, True)
        last = msgs[-1]
        if not last.get("content") and not last.get("tool_calls"):
            return self.tokenizer.encode(prompt_text, add_special_tokens=False), []
        full = self.renderer.render(conv, len(msgs), False)
        example = turn_example(len(conv.assistant_indices) - 1, prompt_text, full, anchors(conv)[-1])
        (ids,), (to_tokens,), _ = self._tokenize([example.text])
        i, _ = to_tokens(example.spans[0])
        return list(ids[:i]), list(ids[i:])


def _layout_fix(error: NativeLayoutError, renderer: ChatRenderer) -> str:
    from .layout import GenerationPromptError, UnstableTurnError

    if isinstance(error, UnstableTurnError):
        return "set template_ext_native_policy: expand (or mask), or drop this sample"
    if isinstance(error, GenerationPromptError):
        if renderer.kwargs.get("enable_thinking") is False:
            return (
                "with enable_thinking: false the generation prompt closes the thought block, so a turn that carries "
                "a thought cannot be generated as rendered: remove the thoughts from the data or set "
                "enable_thinking: true"
            )
        return "the template renders this answer in a way generation cannot reach; drop the sample or use LF's template"
    return "drop this sample"
