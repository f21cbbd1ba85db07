"""LF's media arguments of a model dir, its processor configs, and the client-side resize.

Why: the size an image had in training is LF's PIL resize (``image_max_pixels``...) followed by the
processor's own rounding (``model.media_args``). A server only does the second step, so a client that
wants the training resolution applies the first: :func:`resize_like_training` (public as
``lf_template_ext.resize_like_training``). The dir's record (``lf_template_ext.json`` ``media`` and
``mm_plugin``, written by the training hook) says which arguments training used; without one, LF's
defaults are what LF used unless the training YAML changed them.

PIL is imported inside the function that needs it.
"""

from __future__ import annotations

import json
import os
from typing import Any, Optional, Union

from ..errors import BadInputError
from ..model.media_args import PLUGIN_KEY, RECORD_KEY, MediaArgs, lf_resize_steps
from .record import RECORD_NAME, read_record

PREPROCESSOR_CONFIG = "preprocessor_config.json"
VIDEO_PREPROCESSOR_CONFIG = "video_preprocessor_config.json"


def recorded_media(model_dir: str) -> tuple[Optional[MediaArgs], Optional[str]]:
    """(media arguments, LF plugin name) the dir's training record keeps; (None, None) without them."""
    record = read_record(model_dir) if os.path.isdir(model_dir) else None
    if not record or RECORD_KEY not in record:
        return None, None
    path = os.path.join(model_dir, RECORD_NAME)
    plugin = record.get(PLUGIN_KEY)
    return MediaArgs.from_record(record[RECORD_KEY], path=path), plugin if isinstance(plugin, str) else None


def read_processor_config(model_dir: str, name: str = PREPROCESSOR_CONFIG) -> Optional[dict[str, Any]]:
    """A processor config of the dir as a dict (None: no such file); malformed JSON is bad input."""
    path = os.path.join(model_dir, name)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise BadInputError(f"cannot read the processor config: {e}", path=path, hint="restore the file from the base model") from None
    if not isinstance(data, dict):
        raise BadInputError("the processor config is not a JSON object", path=path, hint="restore the file from the base model")
    return data


Source = Union[MediaArgs, str, os.PathLike, dict]


def _media_of(source: Source) -> tuple[MediaArgs, Optional[str]]:
    if isinstance(source, MediaArgs):
        return source, None
    if isinstance(source, dict):  # a training record (lf_template_ext.json) or its "media" object
        if RECORD_KEY in source:
            plugin = source.get(PLUGIN_KEY)
            return MediaArgs.from_record(source[RECORD_KEY]), plugin if isinstance(plugin, str) else None
        return MediaArgs.from_record(source), None
    model_dir = os.fspath(source)
    if not os.path.isdir(model_dir):
        raise BadInputError("no such model dir", path=model_dir, hint="pass the fine-tuned model dir, a record or a MediaArgs")
    media, plugin = recorded_media(model_dir)
    if media is None:
        raise BadInputError(
            "the dir's training record keeps no media arguments (trained without LF_TEMPLATE_EXT=1, or not multimodal)",
            path=os.path.join(model_dir, RECORD_NAME),
            hint="pass MediaArgs(image_max_pixels=..., image_min_pixels=...) with the values of your training YAML "
            "(LF's defaults: MediaArgs())",
        )
    return media, plugin


def resize_like_training(image: Any, source: Source, *, plugin: Optional[str] = None, video: bool = False) -> Any:
    """The PIL image LF's training would have handed the processor: LF's ``_preprocess_image`` resize
    (``image_max_pixels``/``image_min_pixels``, or the ``video_*`` ones for a video frame; the Qwen-VL
    plugins' 28 px / aspect rules) and RGB conversion. Apply it before sending an image to a server; the
    server's processor then rounds exactly as in training (SERVING.md of a repaired dir).

    ``source``: a model dir with a training record, a record dict, or :class:`MediaArgs`; ``plugin``: LF's
    plugin name (``qwen2_vl``...) when the source does not record it. The same PIL call as LF's (``resize``
    with its default filter), so the pixels match too."""
    media, recorded_plugin = _media_of(source)
    plugin = plugin or recorded_plugin
    hi, lo = (media.video_max_pixels, media.video_min_pixels) if video else (media.image_max_pixels, media.image_min_pixels)
    for size in lf_resize_steps(image.width, image.height, hi, lo, plugin):  # LF's PIL calls, one by one
        image = image.resize(size)
    if image.mode != "RGB":
        image = image.convert("RGB")
    return image
