"""LF's full multimodal path: the reference ids of a conversation with images, videos or audio.

What training saw for a sample with media is not the template's text: LF's supervised processor
(``SupervisedDatasetProcessor._encode_data_example``) first lets the template's ``mm_plugin``
replace every ``<image>``/``<video>``/``<audio>`` tag with the model's own placeholder, expanded to
as many tokens as the processor makes of the medium *after LF's own resize* (``image_max_pixels``
and friends, set on the processor by ``model/patcher.py: patch_processor``), then asks the plugin
for extra leading ids (``process_token_ids``: PaliGemma's image tokens), then encodes the turns with
``encode_multiturn``. This module runs exactly those steps with LF's own objects:

* :func:`load_processor`: ``AutoProcessor`` loaded as LF's ``load_tokenizer`` loads it (fast first,
  the slow one on ``ValueError``, dropped when it is not a ``*Processor``);
* :func:`training_processor`: a copy of it patched by LF's own ``patch_processor`` with LF's media
  arguments (:func:`media_argument_defaults` are ``ProcessorArguments``' defaults, read from LF's
  source) and the tokenizer LF fixed for the template (``Prepared.tokenizer``);
* :func:`encode_training`: the plugin's two hooks with the media, then ``lf.compat``'s encoding
  (the same ``encode_multiturn`` call the text-only reference makes, ``compat.encode_multiturn``);
* :func:`regularized`: the media as LF hands them to the processor (its resize), which the
  verifier feeds an engine to tell a resolution difference from a placeholder-count one.

The reference rule itself (ids, generation prompt) stays in ``verifier.reference``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Optional

from ..errors import BadInputError
from . import compat

#: LF's media arguments, the names ``patch_processor`` sets on the processor (LF 0.9.4-0.9.6.dev).
MEDIA_ARGUMENTS = (
    "image_max_pixels",
    "image_min_pixels",
    "image_do_pan_and_scan",
    "crop_to_patches",
    "video_max_pixels",
    "video_min_pixels",
    "video_fps",
    "video_maxlen",
    "use_audio_in_video",
    "audio_sampling_rate",
)


@dataclass
class MediaInputs:
    """The media of one sample, in LF's order (the order of their tags in the messages).

    Each item is what LF's dataset holds or a test makes: a path, a PIL image, a video as a path or
    a list of frames, an audio as a path or a 1-D float array.
    """

    images: list[Any] = field(default_factory=list)
    videos: list[Any] = field(default_factory=list)
    audios: list[Any] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.images or self.videos or self.audios)


def media_argument_defaults() -> dict[str, Any]:
    """The defaults of LF's media arguments, read from its ``hparams/model_args.py`` source
    (``compat.hparam_defaults``). An argument this LF does not declare is left out (``patch_processor`` decides)."""
    return {k: v for k, v in compat.hparam_defaults("model_args").items() if k in MEDIA_ARGUMENTS}


def media_arguments(given: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """LF's media arguments: ``given`` (a training run's values) over LF's defaults; unknown names refused."""
    given = dict(given or {})
    unknown = sorted(set(given) - set(MEDIA_ARGUMENTS))
    if unknown:
        raise BadInputError(
            f"unknown LF media argument(s): {', '.join(unknown)}", hint=f"LF's media arguments: {', '.join(MEDIA_ARGUMENTS)}"
        )
    return {**media_argument_defaults(), **given}


def load_processor(model_dir: str, trust_remote_code: bool = False) -> Any:
    """The model dir's processor, loaded the way LF's ``load_tokenizer`` loads it, or ``None``.

    As LF: the fast one first, the slow one on ``ValueError``; any other failure means no processor (LF
    logs it and trains text only), and so does what ``AutoProcessor`` returns when it is not a
    ``*Processor`` (a bare tokenizer or image processor).
    """
    from transformers import AutoProcessor

    kwargs = {"trust_remote_code": trust_remote_code}
    try:
        try:
            processor = AutoProcessor.from_pretrained(model_dir, use_fast=True, **kwargs)
        except ValueError:
            processor = AutoProcessor.from_pretrained(model_dir, use_fast=False, **kwargs)
    except Exception:  # LF: "Failed to load processor", training goes on without one
        return None
    if processor is not None and "Processor" not in type(processor).__name__:
        return None
    return processor


def training_processor(processor: Any, tokenizer: Any, media_args: Optional[dict[str, Any]] = None) -> Any:
    """A copy of ``processor`` as LF trains with it: LF's ``patch_processor`` with LF's media arguments.

    ``tokenizer`` is the one LF fixed for the template (``Prepared.tokenizer``): LF patches the
    processor with the tokenizer it then fixes in place. The caller's processor is not changed (the
    engine side uses it as a server loads it).
    """
    with compat._quiet_lf():
        from llamafactory.model.patcher import patch_processor

    patched = copy.copy(processor)
    patch_processor(patched, tokenizer, SimpleNamespace(**media_arguments(media_args)))
    return patched


def plugin_of(prepared: Any) -> Any:
    return prepared.template.mm_plugin


def media_tokens(prepared: Any, processor: Any) -> dict[str, list[int]]:
    """The ids a medium expands into, per kind: the plugin's tokens and the processor's own, when single ids.

    The verifier collapses runs of them to tell a placeholder difference from a count difference.
    """
    tok = prepared.tokenizer
    plugin = plugin_of(prepared)
    out: dict[str, list[int]] = {}
    for kind in ("image", "video", "audio"):
        ids: list[int] = []
        for token in (getattr(plugin, f"{kind}_token", None), getattr(processor, f"{kind}_token", None)):
            if isinstance(token, str) and token:
                i = tok.convert_tokens_to_ids(token)
                if isinstance(i, int) and i != tok.unk_token_id and i not in ids:
                    ids.append(i)
        pid = getattr(processor, f"{kind}_token_id", None)
        if isinstance(pid, int) and pid not in ids:
            ids.append(pid)
        if ids:
            out[kind] = ids
    return out


def encode_training(
    prepared: Any,
    processor: Any,
    messages: list[dict[str, str]],
    system: Optional[str],
    tools: Optional[str],
    media: MediaInputs,
    expand: bool = True,
) -> tuple[list[int], list[tuple[list[int], list[int]]]]:
    """``(prefix ids, pairs)``: LF's supervised encoding of a sample with media, before cutoff.

    ``processor`` is :func:`training_processor`'s. Mirrors ``_encode_data_example``: the plugin's
    ``process_messages`` (tags -> expanded placeholders), ``process_token_ids`` on empty ids (the
    leading ids some plugins add), then ``encode_multiturn`` as the text-only reference runs it.
    Raises what LF raises (a tag count that does not match the media, a template without media
    support).

    ``expand=False``: the same with a copy of the plugin whose ``expand_mm_tokens`` is off (LF's own
    switch): one unexpanded placeholder per medium, the text a chat template should render for the
    processor to expand. The verifier uses it to tell a template difference from an expansion one.
    """
    plugin = plugin_of(prepared)
    if not expand:
        plugin = copy.copy(plugin)
        plugin.expand_mm_tokens = False
    images, videos, audios = list(media.images), list(media.videos), list(media.audios)
    with compat._quiet_lf():
        msgs = plugin.process_messages([dict(m) for m in messages], images, videos, audios, processor)
        prefix, _ = plugin.process_token_ids([], [], images, videos, audios, prepared.tokenizer, processor)
        pairs = compat.encode_multiturn(prepared, msgs, system, tools)
    return list(prefix), pairs


def regularized(prepared: Any, processor: Any, media: MediaInputs) -> MediaInputs:
    """The media as LF hands them to the processor: LF's reading and resize with its media arguments.

    Images become PIL images resized by the plugin's ``_preprocess_image`` (``image_max_pixels`` ...),
    videos lists of such frames (LF's frame sampling, ``video_max_pixels``), audios arrays at LF's
    sampling rate. An engine given these sees the pixels training saw: equal ids then mean the
    difference was resolution only.
    """
    plugin = plugin_of(prepared)
    args = media_arguments({k: getattr(processor, k) for k in MEDIA_ARGUMENTS if hasattr(processor, k)})
    out = MediaInputs()
    with compat._quiet_lf():
        if media.images:
            out.images = plugin._regularize_images(
                list(media.images), image_max_pixels=args["image_max_pixels"], image_min_pixels=args["image_min_pixels"]
            )["images"]
        if media.videos:
            out.videos = plugin._regularize_videos(
                list(media.videos),
                image_max_pixels=args["video_max_pixels"],
                image_min_pixels=args["video_min_pixels"],
                video_fps=args["video_fps"],
                video_maxlen=args["video_maxlen"],
            )["videos"]
        if media.audios:
            out.audios = plugin._regularize_audios(list(media.audios), sampling_rate=args["audio_sampling_rate"])["audios"]
    return out


def placeholders() -> dict[str, str]:
    """LF's dataset tags per kind: ``{"image": "<image>", "video": "<video>", "audio": "<audio>"}``."""
    from llamafactory.extras import constants

    return {"image": constants.IMAGE_PLACEHOLDER, "video": constants.VIDEO_PLACEHOLDER, "audio": constants.AUDIO_PLACEHOLDER}
