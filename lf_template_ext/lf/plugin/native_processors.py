"""LF's supervised processors, batch-encoding ``template: native`` conversations.

LF's ``SupervisedDatasetProcessor.preprocess_dataset`` (and the packed variant's) encodes
rows one by one through ``_encode_data_example`` -> ``template.encode_multiturn``. For a
native template, :func:`preprocess_dataset` first encodes the whole batch (one batched
tokenization, ``native_encode``), adds a row after a conversation for every extra example of
policy ``expand``, and then runs LF's own loop on those rows, whose
``_encode_data_example`` answers from the batch's encodings. LF's loop therefore still drops
invalid rows, collects the columns and packs.

``template_ext_tokenize: whole`` (``lf.whole_template``) takes the same seam: :func:`whole_batch`
tokenizes the batch's renderings in one call, and LF's own ``_encode_data_example`` then labels
each row's whole-tokenized pairs (handed to the template's ``encode_multiturn``).

Module-level functions on purpose: ``datasets`` fingerprints the ``map`` function with dill,
which pickles closures by value together with everything they reach.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from typing import Any

from ...native.mode import conversation, encoder_for, is_native, sample_name
from .. import compat

_BATCH_ATTR = "_lf_template_ext_native_batch"
_WHOLE_ATTR = "_lf_template_ext_whole_batch"
logger = logging.getLogger("llamafactory.lf_template_ext.native")


def _rows(examples: Mapping[str, list]) -> int:
    return len(examples["_prompt"])


def native_batch(processor: Any, examples: Mapping[str, list]) -> tuple[dict[str, list], dict[int, tuple]]:
    """Encode a batch: the rows LF's loop will see (extra rows for ``expand``) and their encodings.

    Encodings are keyed by the identity of each row's ``_prompt`` list, which LF's loop passes
    to ``_encode_data_example`` unchanged. Rows LF drops as invalid are passed through as is.
    """
    template, tokenizer, data_args = processor.template, processor.tokenizer, processor.data_args
    encoder = encoder_for(tokenizer, template, compat.native_helpers(), data_args)
    datasets = getattr(data_args, "dataset", None)
    valid, convs, names = [], [], []
    media_encoded: dict[int, list] = {}
    for i in range(_rows(examples)):
        prompt, response = examples["_prompt"][i], examples["_response"][i]
        if not compat.supervised_example_ok(prompt, response):
            continue  # LF's own check: it logs and drops the row
        messages = list(prompt) + list(response)
        media = {k[1:]: examples[k][i] for k in ("_images", "_videos", "_audios") if k in examples and examples[k][i]}
        if media:  # rendered with the processor's chat template, expanded by the processor (native.media)
            from ..native_template import encode_media_conversation

            _, media_encoded[i] = encode_media_conversation(
                processor, messages, examples["_system"][i], examples["_tools"][i], media,
                functools.partial(sample_name, i, messages, datasets),
            )
            continue
        valid.append(i)
        names.append(functools.partial(sample_name, i, messages, datasets))
        convs.append(conversation(template, messages, examples["_system"][i], examples["_tools"][i]))
    encoded = dict(zip(valid, encoder.encode_batch(convs, names), strict=True))
    encoded.update(media_encoded)
    keys = list(examples.keys())
    out: dict[str, list] = {k: [] for k in keys}
    cache: dict[int, tuple] = {}
    for i in range(_rows(examples)):
        for k in keys:
            out[k].append(examples[k][i])
        messages = list(examples["_prompt"][i]) + list(examples["_response"][i])
        for n, ex in enumerate(encoded.get(i, [])):
            if n > 0:  # an extra example right after its conversation: LF's loop sees a row for it
                for k in keys:
                    out[k].append(examples[k][i])
                turn = ex.turns[-1]
                out["_prompt"][-1], out["_response"][-1] = messages[: 2 * turn + 1], [messages[2 * turn + 1]]
                if i in media_encoded:  # the example holds the media of its messages only
                    _trim_media(out, messages[: 2 * turn + 2])
            cache[id(out["_prompt"][-1])] = (ex.input_ids, ex.labels)
    _log_stats(encoder)
    return out, cache


def _trim_media(out: dict[str, list], messages: list) -> None:
    """The last row's media columns cut to the media the messages' tags name (LF's collator reads them)."""
    from ..media import placeholders

    tags = placeholders()
    for kind, column in (("image", "_images"), ("video", "_videos"), ("audio", "_audios")):
        if column in out and out[column][-1]:
            n = sum(str(m.get("content", "")).count(tags[kind]) for m in messages)
            out[column][-1] = list(out[column][-1])[:n]


_logged: set = set()


def _log_stats(encoder: Any) -> None:
    s = encoder.stats
    if s["unstable_turns"] and id(encoder) not in _logged:
        _logged.add(id(encoder))
        logger.warning(
            "native mode: %s is not prefix-stable for some conversations (so far %d turns in %d conversations); "
            "policy %s: %s",
            encoder.template_name,
            s["unstable_turns"],
            s["conversations"],
            encoder.policy,
            {
                "expand": "each such turn is trained in its own example, rendered as the engine renders it",
                "mask": "such turns are left untrained",
                "strict": "refused",
            }[encoder.policy],
        )


_ORIGINALS: dict[tuple[type, str], Any] = {}


def lf_original(cls: type, name: str) -> Any:
    """LF's own ``cls.name`` as it was before :func:`install` (looked up along the MRO)."""
    for klass in cls.__mro__:
        fn = _ORIGINALS.get((klass, name))
        if fn is not None:
            return fn
    raise AttributeError(f"{cls.__name__}.{name} was not patched by lf_template_ext.lf.plugin.native_processors")


def _original(self: Any, name: str) -> Any:
    return lf_original(type(self), name)


def whole_batch(processor: Any, examples: Mapping[str, list]) -> dict[int, list]:
    """``template_ext_tokenize: whole``: LF's pairs of every valid row of a batch, keyed by its ``_prompt``'s identity.

    One batched tokenization for the batch (``native.whole``); LF's own loop then labels the
    pairs (``_encode_data_example`` hands them to ``WholeTemplate.encode_multiturn``).
    """
    from .. import whole_template

    template, tokenizer, data_args = processor.template, processor.tokenizer, processor.data_args
    # LF's own argument (0.9.5+: ``discarding_history_cot = mask_history and not preserve_thinking``)
    discard: tuple = ()
    if compat.capabilities().discarding_history_cot:
        discard = (bool(getattr(data_args, "mask_history", False) and not getattr(template, "preserve_thinking", False)),)
    datasets = getattr(data_args, "dataset", None)
    rows, samples, names = [], [], []
    for i in range(_rows(examples)):
        prompt, response = examples["_prompt"][i], examples["_response"][i]
        if not compat.supervised_example_ok(prompt, response):
            continue
        if any(k in examples and examples[k][i] for k in ("_images", "_videos", "_audios")):
            continue  # media: LF's own per-row path (WholeTemplate refuses what it cannot render)
        messages = list(prompt) + list(response)
        rows.append(i)
        names.append(functools.partial(sample_name, i, messages, datasets))
        samples.append(template.whole_sample(tokenizer, messages, examples["_system"][i], examples["_tools"][i], *discard))
    pairs = whole_template.WholeTemplate.whole_pairs_batch(template, tokenizer, samples, names)
    return {id(examples["_prompt"][i]): p for i, p in zip(rows, pairs, strict=True)}


def preprocess_dataset(self: Any, examples: Any) -> Any:
    """LF's ``preprocess_dataset``, with native conversations encoded batch-wise beforehand."""
    from ..whole_template import is_whole

    original = _original(self, "preprocess_dataset")
    if is_whole(self.template):
        self.__dict__[_WHOLE_ATTR] = whole_batch(self, examples)
        try:
            return original(self, examples)
        finally:
            self.__dict__.pop(_WHOLE_ATTR, None)
    if not is_native(self.template):
        return original(self, examples)
    expanded, cache = native_batch(self, examples)
    self.__dict__[_BATCH_ATTR] = cache
    try:
        return original(self, expanded)
    finally:
        self.__dict__.pop(_BATCH_ATTR, None)


def encode_data_example(self: Any, prompt: Any, response: Any, *args: Any, **kwargs: Any) -> Any:
    """LF's ``_encode_data_example``, answered from the batch's encodings when there is one.

    Whole mode: LF's own loop runs, with the row's whole-tokenized pairs waiting in the template.
    """
    whole = self.__dict__.get(_WHOLE_ATTR)
    if whole is not None:
        hit = whole.get(id(prompt))
        if hit is not None:
            self.template.__dict__["_lfx_next"] = hit
        try:
            return _original(self, "_encode_data_example")(self, prompt, response, *args, **kwargs)
        finally:
            self.template.__dict__.pop("_lfx_next", None)
    cache = self.__dict__.get(_BATCH_ATTR)
    if cache is not None:
        hit = cache.get(id(prompt))
        if hit is not None:
            return list(hit[0]), list(hit[1])
    return _original(self, "_encode_data_example")(self, prompt, response, *args, **kwargs)


_PATCHES = {"preprocess_dataset": preprocess_dataset, "_encode_data_example": encode_data_example}


def install(module: Any) -> None:
    """Batch-encode native conversations in LF's supervised processors (idempotent).

    Patches ``preprocess_dataset`` of ``SupervisedDatasetProcessor`` and of
    ``PackedSupervisedDatasetProcessor`` (which has its own loop) and the shared
    ``_encode_data_example`` with module-level functions (``datasets`` fingerprints them by
    reference); other templates go straight to LF's code. The pairwise module needs nothing:
    it encodes through ``encode_oneturn``.
    """
    for name in ("SupervisedDatasetProcessor", "PackedSupervisedDatasetProcessor"):
        cls = getattr(module, name, None)
        if cls is None:
            continue
        for attr, patch in _PATCHES.items():
            current = cls.__dict__.get(attr)
            if current is None or current is patch:  # inherited, or already ours
                continue
            _ORIGINALS[(cls, attr)] = current
            setattr(cls, attr, patch)
