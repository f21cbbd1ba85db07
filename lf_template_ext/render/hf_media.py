"""The engine side of a multimodal request: the model's HF processor, as vLLM and SGLang use it.

For most vision-language models vLLM and SGLang render the chat template over OpenAI content
parts (``{"type": "image_url"}`` ...: one unexpanded placeholder per part), then let the model's
HF processor expand each placeholder to as many tokens as it makes of the medium at *its own*
resolution (``preprocessor_config.json``: Qwen2.5-VL up to 12,845,056 pixels). This module does
exactly that with transformers:

1. ``processor.apply_chat_template(messages, chat_template=JINJA, tokenize=False, ...)``: the text,
   with the Jinja under test (the compiled template, or the model's own); string contents become one
   text part when the template loops over content, as vLLM's content-format detection does
   (:func:`content_format`);
2. the media collected from the parts in order (images, videos, audios: what a server hands the
   processor), read from paths / data as a server would;
3. ``processor(text=[text], images=..., videos=..., audio=..., add_special_tokens=False)``: the
   ids. ``add_special_tokens=False`` because the template writes the BOS itself (vLLM tokenizes a
   rendered chat prompt without adding special tokens, ``render.hf``).

A content part carries its medium under its type's key, as transformers' chat templates read it:
``{"type": "image", "image": <PIL image | path>}``, ``{"type": "video", "video": <path | frames>}``,
``{"type": "audio", "audio": <path | array>}``; OpenAI's ``image_url`` / ``video_url`` /
``input_audio`` (with ``url`` / ``data``) are read too.

Import-light: transformers is reached through the processor object; PIL and numpy on use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from .hf import IdsOrError, RenderRequest

#: content-part type -> medium kind (the names vLLM and transformers use)
PART_KINDS = {
    "image": "image",
    "image_url": "image",
    "video": "video",
    "video_url": "video",
    "audio": "audio",
    "input_audio": "audio",
    "audio_url": "audio",
}


@dataclass
class Media:
    """The media of one request, in part order per kind (what the processor receives)."""

    images: list[Any] = field(default_factory=list)
    videos: list[Any] = field(default_factory=list)
    audios: list[Any] = field(default_factory=list)


def _payload(part: dict[str, Any], kind: str) -> Any:
    ptype = part.get("type")
    value = part.get(kind)
    if value is None and ptype in part:
        value = part[ptype]
    if isinstance(value, dict):  # OpenAI: {"url": ...} / {"data": ..., "format": ...}
        value = value.get("url", value.get("data", value))
    if value is None:
        value = part.get("url", part.get("path"))
    if value is None:
        raise ValueError(f"a {ptype!r} content part without its {kind}")
    return value


def collect_media(messages: Sequence[dict[str, Any]]) -> Media:
    """Every medium of the messages' content parts, in order, per kind."""
    out = Media()
    for m in messages:
        content = m.get("content")
        if not isinstance(content, list):
            continue
        for part in content:
            kind = PART_KINDS.get(part.get("type", "")) if isinstance(part, dict) else None
            if kind is not None:
                getattr(out, f"{kind}s").append(_payload(part, kind))
    return out


def load_image(value: Any) -> Any:
    """A PIL image from a PIL image, a path or a ``data:`` URL (what a server decodes)."""
    from PIL import Image

    if isinstance(value, Image.Image):
        return value
    if isinstance(value, str) and value.startswith("data:"):
        import base64
        import io

        return Image.open(io.BytesIO(base64.b64decode(value.split(",", 1)[1])))
    if isinstance(value, (bytes, bytearray)):
        import io

        return Image.open(io.BytesIO(value))
    return Image.open(value)


def load_video(value: Any) -> Any:
    """Frames as the processor takes them: a list of frames as given, else the path (the processor decodes)."""
    if isinstance(value, (list, tuple)):
        return [load_image(f) if isinstance(f, str) else f for f in value]
    return value


def load_audio(value: Any, sampling_rate: int) -> Any:
    """A mono float array at ``sampling_rate``: an array as given, a file decoded and resampled."""
    import numpy as np

    if isinstance(value, np.ndarray):
        return value
    import torchaudio

    wave, sr = torchaudio.load(value)
    wave = wave.mean(dim=0) if wave.shape[0] > 1 else wave[0]
    if sr != sampling_rate:
        wave = torchaudio.functional.resample(wave, sr, sampling_rate)
    return wave.numpy()


def content_format(jinja: Optional[str]) -> str:
    """``openai`` when the template loops over a message's content (it expects a list of parts), else ``string``.

    vLLM detects this from the template's syntax tree (``--chat-template-content-format auto``) and then sends
    every message's content as parts, a plain string as one text part; templates such as LLaVA-NeXT's iterate
    over ``message['content']`` and fail on a string. A loop over ``x['content']`` / ``x.content`` (through
    filters) counts here.
    """
    if not jinja:
        return "string"
    import jinja2
    from jinja2 import nodes

    try:
        tree = jinja2.Environment().parse(jinja)
    except jinja2.TemplateSyntaxError:
        return "string"
    for loop in tree.find_all(nodes.For):
        it = loop.iter
        while isinstance(it, nodes.Filter) and it.node is not None:
            it = it.node
        if isinstance(it, nodes.Getitem) and isinstance(it.arg, nodes.Const) and it.arg.value == "content":
            return "openai"
        if isinstance(it, nodes.Getattr) and it.attr == "content":
            return "openai"
    return "string"


def as_parts(messages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every string content as one text part, the system message's too (vLLM's ``openai`` content format,
    ``chat_utils._parse_chat_message_content``); a tool message keeps its string (vLLM joins a text-only
    tool result back into one)."""
    out = []
    for m in messages:
        if isinstance(m.get("content"), str) and m.get("role") != "tool":
            m = {**m, "content": [{"type": "text", "text": m["content"]}]}
        out.append(m)
    return out


class HFProcessorEngine:
    """A chat template over content parts, expanded and tokenized by the model's HF processor."""

    def __init__(
        self,
        processor: Any,
        jinja: Optional[str],
        kwargs: Optional[dict[str, Any]] = None,
        name: str = "hf-processor",
        processor_kwargs: Optional[dict[str, Any]] = None,
    ) -> None:
        self.processor = processor
        self.jinja = jinja
        self.kwargs = dict(kwargs or {})
        #: passed to every processor call, as vLLM's ``--mm-processor-kwargs`` (e.g. InternVL's
        #: ``crop_to_patches``, which InternVLProcessor turns on per call whatever the image processor's config says)
        self.processor_kwargs = dict(processor_kwargs or {})
        self.name = name
        self.tokenizer = processor.tokenizer
        self.content_format = content_format(jinja)

    def text(self, request: RenderRequest) -> str:
        messages = as_parts(request.messages) if self.content_format == "openai" else request.messages
        return self.processor.apply_chat_template(
            messages,
            tools=request.tools,
            chat_template=self.jinja,
            add_generation_prompt=request.add_generation_prompt,
            tokenize=False,
            **{**self.kwargs, **request.kwargs},
        )

    def audio_sampling_rate(self) -> int:
        fe = getattr(self.processor, "feature_extractor", None)
        return int(getattr(fe, "sampling_rate", 16000) or 16000)

    def call_processor(self, text: str, media: Media) -> list[int]:
        """``processor(text=[text], <media>)`` -> the first sequence's ``input_ids``."""
        kwargs: dict[str, Any] = dict(self.processor_kwargs)
        if media.images:
            kwargs["images"] = [load_image(x) for x in media.images]
        if media.videos:
            kwargs["videos"] = [load_video(x) for x in media.videos]
        if media.audios:
            sr = self.audio_sampling_rate()
            kwargs["audio"] = [load_audio(x, sr) for x in media.audios]
            kwargs["sampling_rate"] = sr
        out = self.processor(text=[text], add_special_tokens=False, **kwargs)
        ids = out["input_ids"][0]
        return [int(i) for i in (ids.tolist() if hasattr(ids, "tolist") else ids)]

    def ids(self, request: RenderRequest, media: Optional[Media] = None) -> list[int]:
        """The ids of one request; ``media`` replaces the parts' own media (e.g. LF's resized copies)."""
        text = self.text(request)
        return self.call_processor(text, media if media is not None else collect_media(request.messages))

    def ids_batch(self, requests: Sequence[RenderRequest]) -> list[IdsOrError]:
        out: list[IdsOrError] = []
        for r in requests:
            try:
                out.append(self.ids(r))
            except Exception as e:  # the template's raise_exception, a part it cannot take, the processor's error
                out.append(e)
        return out


def has_media(request: RenderRequest) -> bool:
    return any(
        isinstance(m.get("content"), list)
        and any(isinstance(p, dict) and p.get("type") in PART_KINDS for p in m["content"])
        for m in request.messages
    )


class MediaRouter:
    """One engine side for a mixed dataset: requests with media parts through the processor engine,
    the others through the text engine (``render.hf.HFEngine``: batched tokenization)."""

    def __init__(self, text_engine: Any, media_engine: HFProcessorEngine) -> None:
        self.text_engine = text_engine
        self.media_engine = media_engine
        self.name = text_engine.name

    def ids_batch(self, requests: Sequence[RenderRequest]) -> list[IdsOrError]:
        media = [has_media(r) for r in requests]
        text_ids = iter(self.text_engine.ids_batch([r for r, m in zip(requests, media) if not m]))
        media_ids = iter(self.media_engine.ids_batch([r for r, m in zip(requests, media) if m]))
        return [next(media_ids) if m else next(text_ids) for m in media]
