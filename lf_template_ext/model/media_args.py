"""LF's media arguments and the resolution arithmetic: what size an image had when LF trained on it.

Why this exists: a vision-language fine-tune learned its images at LF's resolution. LF 0.9.5 first
resizes every image with PIL so it fits ``image_max_pixels`` (``mm_plugin._preprocess_image``, int
truncation of ``sqrt(max / area)``; the Qwen-VL plugins then force a 28 px minimum side and cut aspect
ratios over 200 to 180), and only then hands it to the model's processor, whose own ``smart_resize``
rounds each side to a multiple of ``patch_size * merge_size``. A server sees the original image and
only the second step, with the processor's own limits (Qwen2.5-VL: up to 12,845,056 pixels), so the
same photo becomes a different number of vision tokens at a different resolution.

No static processor setting reproduces the two steps (:func:`qwen_static_cap` and
``tests/test_media_resolution.py`` show it over a sweep: the processor floors where LF truncates and
then rounds). What does reproduce LF exactly is LF's first step done by the client
(``lf_template_ext.resize_like_training``) with a processor whose cap lets every such image through
unchanged; :func:`qwen_static_cap` is that cap, the smallest one, so a client that does not resize
is still held close to the training budget.

Pure arithmetic and data: no PIL, no LF, no file I/O (``modeldir.media`` reads and writes the files).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from typing import Any, Mapping, Optional

from ..errors import BadInputError

#: the key of the train-time record (``lf_template_ext.json``) that keeps LF's media arguments
RECORD_KEY = "media"
#: the record key naming LF's mm plugin (a key of ``llamafactory.data.mm_plugin.PLUGINS``)
PLUGIN_KEY = "mm_plugin"


_TYPES: dict[str, Any] = {"int": int, "float": (int, float), "bool": bool}


@dataclass(frozen=True)
class MediaArgs:
    """LF 0.9.5's ``ProcessorArguments`` (hparams/model_args.py): same names, same defaults. LF sets
    them on the processor (``model/patcher.py: patch_processor``) and its mm plugins read them back."""

    image_max_pixels: int = 768 * 768
    image_min_pixels: int = 32 * 32
    image_do_pan_and_scan: bool = False
    crop_to_patches: bool = False
    video_max_pixels: int = 256 * 256
    video_min_pixels: int = 16 * 16
    video_fps: float = 2.0
    video_maxlen: int = 128
    use_audio_in_video: bool = False
    audio_sampling_rate: int = 16000

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, data: Any, *, path: Optional[str] = None) -> "MediaArgs":
        """The record's ``media`` object; unknown keys are ignored (a newer LF may add some), a value of
        the wrong type is bad input naming the key."""
        if not isinstance(data, Mapping):
            raise BadInputError(f"the record's {RECORD_KEY!r} is not an object", path=path, hint="fix or delete the key")
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in data:
                continue
            value = data[f.name]
            want = _TYPES[str(f.type)]
            if isinstance(value, bool) != (f.type == "bool") or not isinstance(value, want):
                raise BadInputError(
                    f"the record's {RECORD_KEY}.{f.name} is {value!r}, not a {f.type}",
                    path=path,
                    hint=f"write LF's value of {f.name} (its default: {f.default!r})",
                )
            values[f.name] = value
        return cls(**values)

    @classmethod
    def from_obj(cls, obj: Any) -> "MediaArgs":
        """From anything carrying LF's attribute names (LF's ``ModelArguments``, a patched processor)."""
        return cls(**{f.name: getattr(obj, f.name) for f in fields(cls) if getattr(obj, f.name, None) is not None})


#: LF plugins whose ``_preprocess_image`` adds the Qwen-VL rules (min side 28, aspect > 200 cut to 180):
#: ``Qwen2VLPlugin`` and its subclasses in LF 0.9.5's PLUGINS table
QWEN_RULE_PLUGINS = frozenset({"qwen2_vl", "qwen3_vl", "glm4v", "qwen2_omni"})


def lf_resize_steps(width: int, height: int, max_pixels: int, min_pixels: int, plugin: Optional[str] = None) -> list[tuple[int, int]]:
    """The sizes of the PIL resizes LF's ``_preprocess_image`` makes, in order (``image_*`` or, for video
    frames, ``video_*`` pixel limits); ``plugin`` (LF's plugin name) adds that plugin's own rules. Each
    step is a separate ``image.resize`` in LF, so a client that wants LF's pixels makes the same calls."""
    steps: list[tuple[int, int]] = []
    if width * height > max_pixels:
        factor = math.sqrt(max_pixels / (width * height))
        width, height = int(width * factor), int(height * factor)
        steps.append((width, height))
    if width * height < min_pixels:
        factor = math.sqrt(min_pixels / (width * height))
        width, height = int(width * factor), int(height * factor)
        steps.append((width, height))
    if plugin in QWEN_RULE_PLUGINS:
        if min(width, height) < 28:
            width, height = max(width, 28), max(height, 28)
            steps.append((width, height))
        if width / height > 200:
            width, height = height * 180, height
            steps.append((width, height))
        if height / width > 200:
            width, height = width, width * 180
            steps.append((width, height))
    return steps


def lf_resize(width: int, height: int, max_pixels: int, min_pixels: int, plugin: Optional[str] = None) -> tuple[int, int]:
    """The (width, height) LF's ``_preprocess_image`` gives an image (:func:`lf_resize_steps`' last size)."""
    steps = lf_resize_steps(width, height, max_pixels, min_pixels, plugin)
    return steps[-1] if steps else (width, height)


def qwen_smart_resize(height: int, width: int, factor: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """(height, width) the Qwen2-VL image processor (transformers' ``smart_resize``, also Qwen2.5-VL's
    and, with factor 32, Qwen3-VL's) resizes to: each side rounded to a multiple of ``factor``; above
    ``max_pixels`` both sides scaled down and floored, below ``min_pixels`` scaled up and ceiled.
    Aspect ratios over 200 are an error there; LF's own rules keep its images under that."""
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


@dataclass(frozen=True)
class QwenGeometry:
    """What a Qwen2-VL-style processor config says about resizing: the rounding factor and its limits."""

    factor: int
    min_pixels: int
    max_pixels: int
    merge_size: int


def qwen_geometry(config: Mapping[str, Any]) -> QwenGeometry:
    """From a ``preprocessor_config.json`` / ``video_preprocessor_config.json`` of the Qwen2-VL image or
    video processor: ``min_pixels``/``max_pixels`` win over ``size`` (transformers' rule), then the
    class defaults (56*56, 28*28*1280)."""
    size = config.get("size") if isinstance(config.get("size"), Mapping) else {}
    patch = int(config.get("patch_size", 14))
    merge = int(config.get("merge_size", 2))
    lo = config.get("min_pixels", size.get("shortest_edge", 56 * 56))
    hi = config.get("max_pixels", size.get("longest_edge", 28 * 28 * 1280))
    return QwenGeometry(factor=patch * merge, min_pixels=int(lo), max_pixels=int(hi), merge_size=merge)


def qwen_trained_grid(width: int, height: int, max_pixels: int, min_pixels: int, plugin: str, geo: QwenGeometry) -> tuple[int, int]:
    """(height, width) of the image LF's training fed the model: LF's resize, then the processor's."""
    w, h = lf_resize(width, height, max_pixels, min_pixels, plugin)
    return qwen_smart_resize(h, w, geo.factor, geo.min_pixels, geo.max_pixels)


@lru_cache(maxsize=64)
def qwen_static_cap(max_pixels: int, min_pixels: int, factor: int, proc_min_pixels: int, plugin: str) -> int:
    """The smallest processor ``max_pixels`` that passes every image LF's resize can produce through
    ``smart_resize`` untouched: the largest rounded area of an LF-resized image.

    Why it is exact: LF's output sizes are every (w, h) with w*h <= max_pixels (smaller images pass LF
    unchanged) plus what the min-pixels and Qwen rules make of them; rounding is monotone in each side,
    so for each width the tallest such height gives the largest rounded area. With the Qwen plugins' rules
    (every Qwen2-VL-style processor comes with one) heights under 28 become 28 and widths over 200 x 28 are
    cut to 180 x 28, so the walk stops at width ``max_pixels // 27``.

    With a cap at least this large, ``resize_like_training`` on the client + this processor == LF's grid
    for every image size; with a smaller cap some client-resized images are floored again."""
    best = 0
    for width in range(1, max_pixels // 27 + 2):
        height = max(1, max_pixels // width)
        w, h = lf_resize(width, height, max_pixels, min_pixels, plugin)
        hb, wb = qwen_smart_resize(h, w, factor, proc_min_pixels, 1 << 62)
        best = max(best, hb * wb)
    return best


# -- per processor class: the static setting ---------------------------------------------------------

#: image processor classes (``image_processor_type`` without a ``Fast`` suffix) that resize with
#: Qwen2-VL's ``smart_resize``: Qwen2-VL, Qwen2.5-VL (its hub config names ``Qwen2VLImageProcessor``),
#: Qwen3-VL (patch 16), and the ``Qwen2_5_VLImageProcessor`` name some older configs carry
QWEN_IMAGE_PROCESSORS = frozenset({"Qwen2VLImageProcessor", "Qwen2_5_VLImageProcessor", "Qwen3VLImageProcessor"})
QWEN_VIDEO_PROCESSORS = frozenset({"Qwen2VLVideoProcessor"})


@dataclass(frozen=True)
class StaticSetting:
    """What the serving processor's config should say so it serves images at LF's training resolution.

    ``keys``: the config keys to write (None: nothing to write); ``exact``: the config alone reproduces
    LF's grid for every image size; ``client_resize``: exactness needs ``resize_like_training`` on the
    client (then ``keys`` are chosen not to disturb a client-resized image); ``reason``: one sentence."""

    processor_class: str
    keys: Optional[dict[str, Any]]
    exact: bool
    client_resize: bool
    reason: str
    #: pixels LF's training allowed per image / the cap the processor would have after the write
    trained_max_pixels: Optional[int] = None
    serving_max_pixels: Optional[int] = None
    #: processor kwargs a server must pass on every call (vLLM's ``--mm-processor-kwargs``), where the
    #: processor overrides its own config per call so that no config key can carry the setting
    request_kwargs: Optional[dict[str, Any]] = None


def processor_class(config: Mapping[str, Any], kind: str = "image") -> str:
    key = "video_processor_type" if kind == "video" else "image_processor_type"
    name = str(config.get(key) or config.get("image_processor_type") or "")
    return name[:-4] if name.endswith("Fast") else name


def static_setting(config: Mapping[str, Any], media: MediaArgs, plugin: Optional[str], kind: str = "image") -> StaticSetting:
    """The static setting of the processor ``config`` (a ``preprocessor_config.json`` or, ``kind`` video,
    a ``video_preprocessor_config.json``) that comes closest to LF's training resolution (see the
    module docstring). Classes not listed: nothing written, the client resize is the way."""
    cls = processor_class(config, kind)
    if kind == "image" and cls in QWEN_IMAGE_PROCESSORS or kind == "video" and cls in QWEN_VIDEO_PROCESSORS:
        geo = qwen_geometry(config)
        lo, hi = (media.video_min_pixels, media.video_max_pixels) if kind == "video" else (media.image_min_pixels, media.image_max_pixels)
        cap = qwen_static_cap(hi, lo, geo.factor, geo.min_pixels, plugin or "qwen2_vl")
        keys: dict[str, Any] = {"max_pixels": cap}
        if isinstance(config.get("size"), Mapping):
            keys["size"] = {**dict(config["size"]), "longest_edge": cap}
        return StaticSetting(
            cls,
            keys,
            exact=False,
            client_resize=True,
            reason=(
                f"LF resizes to at most {hi:,} pixels before the processor rounds to multiples of {geo.factor}; "
                f"no max_pixels reproduces both steps, max_pixels={cap:,} (the largest rounded LF size) keeps "
                "client-resized images exact and caps the others near the training budget"
            ),
            trained_max_pixels=hi,
            serving_max_pixels=cap,
        )
    if cls in ("CLIPImageProcessor", "SiglipImageProcessor"):
        return StaticSetting(
            cls, None, exact=True, client_resize=False,
            reason="fixed input size (resize + center crop): the token count does not depend on the image size; "
            "LF's pre-resize changes only the pixels (resize_like_training reproduces them)",
        )
    if cls == "Gemma3ImageProcessor":
        if not media.image_do_pan_and_scan:
            return StaticSetting(cls, None, exact=True, client_resize=False,
                                 reason="fixed 896x896 input without pan-and-scan: 256 tokens whatever the size")
        return StaticSetting(
            cls,
            {"do_pan_and_scan": True, "pan_and_scan_min_crop_size": 256, "pan_and_scan_max_num_crops": 4,
             "pan_and_scan_min_ratio_to_activate": 1.2},
            exact=False, client_resize=True,
            reason="pan-and-scan as LF runs it (its four settings); the crops depend on the LF-resized size",
        )
    if cls == "GotOcr2ImageProcessor":  # InternVL
        if not media.crop_to_patches:  # LF calls the image processor with its config: one 448x448 tile
            return StaticSetting(
                cls, None, exact=True, client_resize=False,
                reason="LF trained one tile per image (crop_to_patches off); transformers' InternVLProcessor turns "
                "tiling on in every call whatever the config says, so the server must pass crop_to_patches=false",
                request_kwargs={"crop_to_patches": False},
            )
        return StaticSetting(
            cls, {"crop_to_patches": True, "max_patches": 12, "min_patches": 1}, exact=False, client_resize=True,
            reason="crop_to_patches as LF runs it (1 to 12 patches); the tile grid follows the aspect ratio of the "
            "LF-resized image",
        )
    return StaticSetting(
        cls or "(unknown)", None, exact=False, client_resize=True,
        reason="no static setting known for this processor class: resize_like_training reproduces LF's input image",
    )
