"""``template: native`` for a conversation with images, videos or audio (free of LF).

What an engine does with such a request (``render.hf_media``): the model's own chat template
renders the content parts (one unexpanded placeholder per medium, e.g. Qwen2.5-VL's
``<|vision_start|><|image_pad|><|vision_end|>``), then the HF processor expands every placeholder
to as many tokens as it makes of the medium. Native mode trains on exactly that:

1. the processor's chat template renders the conversation (LF's ``<image>``/``<video>``/``<audio>``
   tags become content parts at their positions, ``model.messages.from_lf(media_parts=True)``) and
   native mode's layout finds the trained character spans as it does for text (``NativeEncoder.examples``);
2. the rendering is tokenized as text (spans -> token ranges, ``NativeEncoder._tokenize``) and through
   the processor with the media *as LF hands them to it* (LF's resize with its media arguments, done
   by the LF side), so the vision-token counts are those of the pixel values LF's collator computes
   from the same media;
3. the text ids and the processor's ids are aligned segment by segment: the processor changes only
   the placeholder tokens, so every run of ids between two placeholders appears in the processor's ids
   in order; the trained token ranges move with their runs. Anything else the processor did is refused
   (:class:`MediaAlignmentError`), never guessed.

LF's own cutoff/label loop then builds the example (``encode.assemble``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

from ..errors import ConversationError
from .encode import Encoded, NativeEncoder, Sample, assemble, assemble_fitting, to_pairs
from .render import Conversation

KINDS = ("image", "video", "audio")
#: content-part type -> medium kind (``model.messages.lf_text_to_parts`` writes ``{"type": kind}``)
_PART_KIND = {"image": "image", "image_url": "image", "video": "video", "video_url": "video",
              "audio": "audio", "input_audio": "audio"}


class MediaAlignmentError(ConversationError):
    """The processor's ids are not the rendering's ids with each placeholder expanded."""


def media_counts(messages: Sequence[dict[str, Any]]) -> dict[str, int]:
    """How many media of each kind the messages' content parts hold."""
    out = dict.fromkeys(KINDS, 0)
    for m in messages:
        content = m.get("content")
        if isinstance(content, list):
            for part in content:
                kind = _PART_KIND.get(part.get("type", "")) if isinstance(part, dict) else None
                if kind:
                    out[kind] += 1
    return out


def placeholder_ids(processor: Any) -> set[int]:
    """The ids the processor expands (its ``image_token``/``video_token``/``audio_token``, and ``boi_token``:
    Gemma-3's template emits ``<start_of_image>``, which its processor replaces by the image's whole sequence)."""
    tok = processor.tokenizer
    ids: set[int] = set()
    for kind in KINDS:
        pid = getattr(processor, f"{kind}_token_id", None)
        if isinstance(pid, int):
            ids.add(pid)
    for name in [f"{kind}_token" for kind in KINDS] + ["boi_token"]:
        token = getattr(processor, name, None)
        if isinstance(token, str) and token:
            i = tok.convert_tokens_to_ids(token)
            if isinstance(i, int) and i != tok.unk_token_id:
                ids.add(i)
    return ids


def _find(haystack: Sequence[int], needle: Sequence[int], start: int) -> int:
    first, n = needle[0], len(needle)
    for p in range(start, len(haystack) - n + 1):
        if haystack[p] == first and list(haystack[p : p + n]) == list(needle):
            return p
    return -1


def align(
    text_ids: Sequence[int], full_ids: Sequence[int], placeholders: set[int], slack: int = 0
) -> tuple[list[int], list[int]]:
    """For every text token ``i``: where it starts and ends in the processor's ids.

    A placeholder token maps to the whole expansion that replaced it (the ids between its
    neighbouring runs). Raises :class:`MediaAlignmentError` when the runs between placeholders are
    not found in order, or the processor's ids begin or end differently.

    ``slack``: how many tokens of a run next to a placeholder the processor may retokenize, because its
    expansion brings text of its own (Gemma-3 wraps every image in ``\n\n``, which merges with a
    neighbouring newline). Such tokens join the placeholder's expansion (their ``starts``/``ends`` are the
    expansion's), and :func:`encode_with_media` refuses a trained span that reaches one.
    """
    n = len(text_ids)
    starts, ends = [0] * n, [0] * n
    cursor = 0  # next unmatched position in full_ids
    i = 0
    pending: list[int] = []  # placeholder (and slack) tokens whose expansion ends where the next run starts
    media = 0  # placeholders among pending
    while i < n:
        if text_ids[i] in placeholders:
            pending.append(i)
            media += 1
            i += 1
            continue
        j = i
        while j < n and text_ids[j] not in placeholders:
            j += 1
        ci = i + (slack if pending and j - i > slack else 0)
        cj = j - (slack if j < n and j - ci > slack else 0)
        pending.extend(range(i, ci))
        run = text_ids[ci:cj]
        p = cursor if not pending else _find(full_ids, run, cursor + 1)
        if p < 0 or list(full_ids[p : p + len(run)]) != list(run):
            raise MediaAlignmentError(
                f"the processor's ids do not contain the rendering's text between media placeholders (tokens {i}-{j})"
            )
        if media > 1:
            raise MediaAlignmentError("adjacent media placeholders: their expansions cannot be told apart")
        for k in pending:
            starts[k], ends[k] = cursor, p
        pending, media = list(range(cj, j)), 0
        for o in range(len(run)):
            starts[ci + o], ends[ci + o] = p + o, p + o + 1
        cursor = p + len(run)
        i = j
    if pending:
        if media > 1:
            raise MediaAlignmentError("adjacent media placeholders: their expansions cannot be told apart")
        for k in pending:
            starts[k], ends[k] = cursor, len(full_ids)
        cursor = len(full_ids)
    if cursor != len(full_ids):
        raise MediaAlignmentError("the processor's ids continue after the rendering's last token")
    return starts, ends


def encode_with_media(
    encoder: NativeEncoder,
    processor: Any,
    conv: Conversation,
    sample: Sample,
    media: dict[str, list[Any]],
    call_kwargs: Optional[dict[str, Any]] = None,
    slack: int = 0,
) -> list[Encoded]:
    """The training examples of one conversation with media (see the module docstring).

    ``encoder`` renders with the processor's chat template; ``media``: per kind (``images``,
    ``videos``, ``audios``) the media in order, already as LF hands them to the processor; ``call_kwargs``:
    further processor arguments that make it compute what LF's plugin computes (e.g. InternVL's tiling);
    ``slack``: see :func:`align`.
    """
    placeholders = placeholder_ids(processor)
    total = media_counts(conv.messages)
    for kind in KINDS:  # LF's own check (``_validate_messages``): every medium has its tag and every tag its medium
        given = len(media.get(f"{kind}s") or [])
        if total[kind] != given:
            raise encoder.fail(
                sample,
                f"it has {given} {kind}(s) but {total[kind]} <{kind}> tag(s) in its messages",
                f"give every {kind} one <{kind}> tag where it belongs in the text",
            )
    out = []
    for ex in encoder.examples(conv, sample):
        last = conv.assistant_indices[max(ex.turns)]
        counts = media_counts(conv.messages[: last + 1])
        kwargs: dict[str, Any] = dict(call_kwargs or {})
        if counts["image"]:
            kwargs["images"] = list(media.get("images", []))[: counts["image"]]
        if counts["video"]:
            kwargs["videos"] = list(media.get("videos", []))[: counts["video"]]
        if counts["audio"]:
            kwargs["audio"] = list(media.get("audios", []))[: counts["audio"]]
            fe = getattr(processor, "feature_extractor", None)
            kwargs["sampling_rate"] = int(getattr(fe, "sampling_rate", 16000) or 16000)
        (text_ids,), (to_tokens,), _ = encoder._tokenize([ex.text])
        try:
            result = processor(text=[ex.text], add_special_tokens=False, **kwargs)
        except Exception as e:  # the processor's own check (placeholder count vs media, unreadable medium)
            raise encoder.fail(sample, f"the processor cannot expand its media: {type(e).__name__}: {e}",
                               "check the sample's media and its <image>/<video>/<audio> tags") from e
        ids = result["input_ids"][0]
        full_ids = [int(t) for t in (ids.tolist() if hasattr(ids, "tolist") else ids)]
        try:
            starts, ends = align(text_ids, full_ids, placeholders, slack)
        except MediaAlignmentError as e:
            raise encoder.fail(sample, str(e), "train this model with LF's own template") from e
        ranges = []
        for span in ex.spans:
            a, b = to_tokens(span)
            if any(text_ids[k] in placeholders or ends[k] - starts[k] != 1 for k in range(a, min(b, len(text_ids)))):
                raise encoder.fail(sample, "a trained span reaches text the processor retokenized next to a medium",
                                   "train this model with LF's own template")
            ranges.append((starts[a] if a < len(starts) else len(full_ids), ends[b - 1] if b > a else
                           (starts[a] if a < len(starts) else len(full_ids))))
        data, ignore = encoder.data, encoder.ignore_index
        fitting = assemble_fitting(full_ids, ranges, data, ignore)
        input_ids, labels = fitting or assemble(to_pairs(full_ids, ranges), data, encoder.infer_seqlen, ignore)
        out.append(Encoded(input_ids, labels, ex.turns))
    return out


def processor_chat_template(processor: Optional[Any]) -> Optional[str]:
    """The processor's chat template (``chat_template.json``/``.jinja``), or ``None``."""
    template = getattr(processor, "chat_template", None) if processor is not None else None
    if isinstance(template, dict):
        template = template.get("default")
    return template if isinstance(template, str) and template.strip() else None
