"""Resolution parity: LF's media arguments -> the dir's processor configs, SERVING.md, and check's one line.

Why: a multimodal fine-tune learned images at LF's resolution (``model.media_args``); a server resizes
with the dir's ``preprocessor_config.json`` (Qwen2.5-VL: up to 12,845,056 pixels per image). Repair writes
the static setting that comes closest (``model.media_args.static_setting``, per processor class) into the
processor configs through the same journaled plan as every other file, SERVING.md says how to get the
exact training resolution (``resize_like_training`` on the client; vLLM's ``--mm-processor-kwargs``),
and ``check`` says in one line when the dir serves more pixels than training saw.
"""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass
from typing import Any, Optional

from ..model.media_args import MediaArgs, StaticSetting, processor_class, qwen_geometry, static_setting
from ..modeldir.media import PREPROCESSOR_CONFIG, VIDEO_PREPROCESSOR_CONFIG, read_processor_config, recorded_media


@dataclass
class Resolution:
    """What training used and what the dir's processor does with images (and video frames)."""

    plugin: str
    media: MediaArgs
    recorded: bool  # False: no record in the dir, LF's defaults assumed
    image: Optional[StaticSetting]  # None: no preprocessor_config.json in the dir
    video: Optional[StaticSetting]  # None: no video_preprocessor_config.json
    served_max_pixels: Optional[int]  # the image cap the dir's processor has now (Qwen-style classes)
    image_config: Optional[dict[str, Any]] = None
    #: the video processor's config: the dir's video_preprocessor_config.json or, when transformers would read
    #: the image config for videos (Qwen2-VL, Qwen2.5-VL), a new one from it (``video_created``)
    video_config: Optional[dict[str, Any]] = None
    video_created: bool = False

    def mismatch(self) -> Optional[str]:
        """The one line ``check`` prints when the dir serves another pixel budget than repair would set."""
        s = self.image
        if s is None or s.serving_max_pixels is None or self.served_max_pixels == s.serving_max_pixels:
            return None
        return (
            f"training saw at most {s.trained_max_pixels:,} pixels per image, this dir serves up to "
            f"{self.served_max_pixels:,}"
        )


def resolution(
    model_dir: str, template: str, *, media: Optional[MediaArgs] = None, plugin: Optional[str] = None,
    config_dir: Optional[str] = None,
) -> Optional[Resolution]:  # fmt: skip
    """The resolution facts of ``model_dir`` for LF template ``template`` (None: a text-only template).
    ``media``/``plugin`` default to the dir's training record, then to LF's defaults / the template's plugin.
    ``config_dir``: where the engine's processor configs are (a LoRA adapter: the base model dir)."""
    rec_media, rec_plugin = recorded_media(model_dir)
    recorded = media is not None or rec_media is not None
    media = media or rec_media or MediaArgs()
    if plugin is None:
        plugin = rec_plugin
    if plugin is None:
        from ..lf.media_args import template_plugin

        plugin = template_plugin(template)
    if plugin is None:
        return None
    cfg = read_processor_config(config_dir or model_dir)
    vcfg = read_processor_config(config_dir or model_dir, VIDEO_PREPROCESSOR_CONFIG)
    created = False
    if vcfg is None and cfg is not None and cfg.get("processor_class") in QWEN_VIDEO_FROM_IMAGE_CONFIG:
        # transformers' video processor falls back to preprocessor_config.json: frames would get the image cap
        vcfg = {k: v for k, v in cfg.items() if k != "image_processor_type"}
        vcfg["video_processor_type"] = "Qwen2VLVideoProcessor"
        created = True
    image = static_setting(cfg, media, plugin) if cfg is not None else None
    video = static_setting(vcfg, media, plugin, kind="video") if vcfg is not None else None
    served = qwen_geometry(cfg).max_pixels if image is not None and image.serving_max_pixels is not None else None
    return Resolution(plugin, media, recorded, image, video, served, cfg, vcfg, created)


#: processors whose video processor is Qwen2-VL's and, without a video_preprocessor_config.json, reads the image
#: processor's config (transformers' ``video_processing_utils`` fallback to ``preprocessor_config.json``)
QWEN_VIDEO_FROM_IMAGE_CONFIG = frozenset({"Qwen2VLProcessor", "Qwen2_5_VLProcessor"})


def after_repair(res: Resolution, written: dict[str, Any]) -> Resolution:
    """The facts once ``written`` (``media_files``' output) is in the dir: the report describes that state."""
    from dataclasses import replace

    if PREPROCESSOR_CONFIG in written and res.image is not None and res.image.serving_max_pixels is not None:
        return replace(res, served_max_pixels=res.image.serving_max_pixels)
    return res


def _dump(data: dict[str, Any]) -> bytes:
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def media_files(res: Resolution, model_dir: str) -> tuple[dict[str, bytes], list[str]]:
    """The processor configs repair writes (only keys of a static setting; the rest of each file kept)
    and notes for the summary."""
    files: dict[str, bytes] = {}
    notes: list[str] = []
    for name, setting, data in (
        (PREPROCESSOR_CONFIG, res.image, res.image_config),
        (VIDEO_PREPROCESSOR_CONFIG, res.video, res.video_config),
    ):
        if setting is None or not setting.keys or data is None:
            continue
        new = {**data, **setting.keys}
        if new != data or name == VIDEO_PREPROCESSOR_CONFIG and res.video_created:
            files[name] = _dump(new)
            notes.append(f"{name}: {', '.join(f'{k}={v!r}' for k, v in setting.keys.items())} ({setting.reason})")
    if not res.recorded:
        notes.append("no media arguments recorded (trained without LF_TEMPLATE_EXT=1): LF's defaults assumed "
                     f"(image_max_pixels={res.media.image_max_pixels:,})")
    return files, notes


def serving_lines(res: Resolution, model_dir: str, is_adapter: bool) -> list[str]:
    """SERVING.md's "Images" section."""
    m = res.media
    s = res.image
    cls = s.processor_class if s else "the base model's processor"
    lines = [
        "## Images",
        "",
        f"Training (LF plugin `{res.plugin}`) resized every image with PIL to at most {m.image_max_pixels:,} pixels",
        f"(`image_max_pixels`; at least {m.image_min_pixels:,}, `image_min_pixels`) before {cls} rounded it again;",
        "a server only does the second step. For the training resolution (same vision-token count, same pixels),",
        "resize each image on the client before sending it:",
        "",
        "```python",
        "from PIL import Image",
        "from lf_template_ext import resize_like_training",
        f"image = resize_like_training(Image.open(path), {os.path.abspath(model_dir)!r})",
        "```",
        "",
    ]
    if s is not None and s.keys and s.serving_max_pixels is not None:
        kwargs = json.dumps({"max_pixels": s.serving_max_pixels})
        lines += [
            f"`{PREPROCESSOR_CONFIG}` caps images at {s.serving_max_pixels:,} pixels (`max_pixels`): the largest size an",
            "LF-resized image rounds to, so client-resized images pass unchanged and others stay near the training",
            "budget (no static setting reproduces LF's two resizes: docs/multimodal.md, Resolution).",
        ]
        if is_adapter:
            lines += ["This is an adapter dir: engines read the base model's processor, so pass the cap explicitly:"]
        else:
            lines += ["vLLM takes the same cap per server (a base model's processor, a LoRA adapter) or per request:"]
        lines += [
            "",
            "```bash",
            f"vllm serve ... --mm-processor-kwargs {shlex.quote(kwargs)}",
            "```",
            "",
            f'or `"mm_processor_kwargs": {kwargs}` in a request. SGLang reads `{PREPROCESSOR_CONFIG}` of the model path.',
            "",
        ]
    elif s is not None and s.request_kwargs:
        kwargs = json.dumps(s.request_kwargs)
        lines += [
            f"{s.processor_class}: {s.reason}. vLLM:",
            "",
            "```bash",
            f"vllm serve ... --mm-processor-kwargs {shlex.quote(kwargs)}",
            "```",
            "",
            f'or `"mm_processor_kwargs": {kwargs}` in a request.',
            "",
        ]
    elif s is not None:
        lines += [f"{s.processor_class}: {s.reason}.", ""]
    v = res.video
    if v is not None and v.serving_max_pixels is not None:
        lines += [
            f"Video frames: training resized each frame to at most {m.video_max_pixels:,} pixels (`video_max_pixels`);",
            f"`{VIDEO_PREPROCESSOR_CONFIG}` caps frames at {v.serving_max_pixels:,}. For training's frames, sample them on",
            f"the client as LF did ({m.video_fps:g} per second, at most {m.video_maxlen}, an even count) and resize each with",
            "`resize_like_training(frame, DIR, video=True)`; a server's own frame sampler picks other frames.",
            "",
        ]
    return lines


def describe(res: Resolution) -> dict[str, Any]:
    """The report's ``resolution`` object (``check --json``, alignment_report.json)."""
    s = res.image
    return {
        "mm_plugin": res.plugin,
        "media": res.media.to_record(),
        "recorded": res.recorded,
        "processor_class": s.processor_class if s else None,
        "trained_max_pixels": s.trained_max_pixels if s else None,
        "served_max_pixels": res.served_max_pixels,
        "static_max_pixels": s.serving_max_pixels if s else None,
        "config_exact": bool(s and s.exact),
        "video_static_max_pixels": res.video.serving_max_pixels if res.video else None,
        "client_resize": bool(s and s.client_resize),
        "mismatch": res.mismatch(),
    }


__all__ = ["Resolution", "resolution", "after_repair", "media_files", "serving_lines", "describe", "processor_class"]
