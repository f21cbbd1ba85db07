"""Media parts: what a chat template must emit for an image/video/audio part of each LF multimodal plugin.

Pure data (no LF, no transformers). Two sides must agree (issue 12, docs/multimodal.md):

* **LF** puts ``<image>``/``<video>``/``<audio>`` tags in the message text (LF's dataset convention and its
  API: content parts joined in order, a tag at each media part's position, text parts concatenated with no
  separator); ``mm_plugin.process_messages`` replaces each tag with the model's placeholder, expanded to the
  number of vision/audio tokens.
* **An engine** (vLLM, SGLang, transformers) renders the chat template with OpenAI content parts and hands
  the text to the model's HF processor, which expands *its* placeholder in place.

So for one part the compiled template emits :attr:`PartRule.engine`: the unexpanded text that the HF
processor expands into what LF's ``process_messages`` produces. For most plugins that is exactly LF's own
text with ``expand_mm_tokens=False``; where the processor's placeholder differs from LF's unexpanded text
(InternVL, Gemma-4), :attr:`PartRule.collapse` is the pattern that maps LF's unexpanded text onto it, and
the text check (tests/test_media_compile.py) compares through it.

Each rule was read from LF 0.9.5's ``llamafactory/data/mm_plugin.py`` (and the dev line's) and from the
transformers 5.6 processor that expands it; ``tests/test_media_compile.py`` runs LF's ``process_messages``
for every multimodal template and compares.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping, Optional

#: The media kinds, in LF's order (``images``, ``videos``, ``audios`` columns).
KINDS: tuple[str, ...] = ("image", "video", "audio")

#: LF's tags (``llamafactory.extras.constants.IMAGE_PLACEHOLDER`` ...; overridable there by env vars,
#: which lf/compat.py reads into ``MediaSpec.tags``).
LF_TAGS: Mapping[str, str] = {"image": "<image>", "video": "<video>", "audio": "<audio>"}

#: OpenAI / vLLM / transformers content-part type names -> kind. ``text`` is text; vLLM hands a chat
#: template ``{"type": "image"}`` (and ``video``/``audio``), OpenAI clients send ``image_url``,
#: ``input_audio``; LF's own API takes ``image_url``, ``video_url``, ``audio_url``.
PART_TYPES: Mapping[str, str] = {
    "text": "text",
    "image": "image",
    "image_url": "image",
    "image_pil": "image",
    "image_embeds": "image",
    "video": "video",
    "video_url": "video",
    "audio": "audio",
    "audio_url": "audio",
    "input_audio": "audio",
}


def part_types_of(kind: str) -> tuple[str, ...]:
    """The content-part type names of one kind (``image`` -> ``image``, ``image_url``, ...)."""
    return tuple(t for t, k in PART_TYPES.items() if k == kind)


@dataclass(frozen=True)
class MediaSpec:
    """The facts of one template's LF plugin (``TemplateSpec.media``), read from LF by lf/compat.py.

    ``plugin`` is the class name (``Qwen2VLPlugin``), ``key`` its name in LF's ``PLUGINS``. ``tokens`` holds
    the plugin's token attributes that are set: ``image_token``, ``video_token``, ``audio_token`` and, where
    the class has them, ``vision_bos_token``/``vision_eos_token``/``audio_bos_token``/``audio_eos_token``.
    """

    plugin: str
    key: str = ""
    tokens: tuple[tuple[str, str], ...] = ()
    tags: tuple[tuple[str, str], ...] = tuple(LF_TAGS.items())

    def token(self, name: str) -> Optional[str]:
        return dict(self.tokens).get(name)

    def tag(self, kind: str) -> str:
        return dict(self.tags).get(kind, LF_TAGS[kind])

    def takes(self, kind: str) -> bool:
        """Whether LF's plugin accepts media of this kind (its ``<kind>_token`` is set)."""
        return self.token(f"{kind}_token") is not None


@dataclass(frozen=True)
class PartRule:
    """What one LF plugin class makes of one media part.

    ``engine[kind]``: the text the compiled template emits, a ``str.format`` pattern over the plugin's tokens
    (``{image_token}``, ``{vision_bos_token}``...) and ``{n}`` (the 1-based number of that kind in the
    conversation, for plugins that number their media). Literal tokens in a pattern are the processor's
    (Gemma's ``<start_of_image>``, Qwen2-Audio's ``<|audio_bos|>``): LF reads them from the processor.
    ``refused[kind]``: why a part of that kind cannot be expressed. ``collapse[kind]``: a regex pattern (same
    fields) matching LF's unexpanded text of one part where it differs from ``engine``.
    ``status``: ``compiled`` or ``refused`` (the whole plugin); ``exact``: whether the processor's expansion is
    known to equal LF's (left to the expansion check, docs/multimodal.md); ``note``: why.
    """

    plugin: str
    key: str
    engine: Mapping[str, str] = field(default_factory=dict)
    refused: Mapping[str, str] = field(default_factory=dict)
    collapse: Mapping[str, str] = field(default_factory=dict)
    status: str = "compiled"
    reason: str = ""
    note: str = ""


_QWEN_VISION = "{vision_bos_token}{image_token}{vision_eos_token}"
_QWEN_VIDEO = "{vision_bos_token}{video_token}{vision_eos_token}"

_RULES: tuple[PartRule, ...] = (
    PartRule(
        "BasePlugin",
        "base",
        status="refused",
        reason="the template has no multimodal plugin in LF (text-only model)",
    ),
    PartRule(
        "Qwen2VLPlugin",
        "qwen2_vl",
        engine={"image": _QWEN_VISION, "video": _QWEN_VIDEO},
        note="the processor expands the pad token between the vision markers in place",
    ),
    PartRule(
        "Qwen3VLPlugin",
        "qwen3_vl",
        engine={"image": _QWEN_VISION, "video": _QWEN_VIDEO},
        note="a video becomes per-frame `<t seconds>` blocks, in LF and in Qwen3VLProcessor, from the same markers",
    ),
    PartRule(
        "GLM4VPlugin",
        "glm4v",
        engine={
            "image": "<|begin_of_image|>{image_token}<|end_of_image|>",
            "video": "<|begin_of_video|>{video_token}<|end_of_video|>",
        },
        note="the processor turns the video token into per-frame image blocks with timestamps, as LF does",
    ),
    PartRule(
        "Qwen2OmniPlugin",
        "qwen2_omni",
        engine={
            "image": _QWEN_VISION,
            "video": _QWEN_VIDEO,
            "audio": "{audio_bos_token}{audio_token}{audio_eos_token}",
        },
        note="`use_audio_in_video` (LF interleaves a video's audio into its placeholder) is not expressible: "
        "serve with separate audio parts as trained without it",
    ),
    PartRule(
        "YoutuVLPlugin",
        "youtu_vl",
        engine={"image": _QWEN_VISION, "video": _QWEN_VIDEO},
        note="LF 0.9.5 never expands these (one pad token per image in training)",
    ),
    PartRule(
        "ErnieVLPlugin",
        "ernie_vl",
        engine={
            "image": "Picture {n}:<|IMAGE_START|>{image_token}<|IMAGE_END|>",
            "video": "Video {n}:<|VIDEO_START|>{video_token}<|VIDEO_END|>",
        },
        note="LF numbers images and videos across the conversation (`Picture 1:`...); the template counts them",
    ),
    PartRule(
        "Gemma3Plugin",
        "gemma3",
        engine={"image": "<start_of_image>"},
        note="the processor replaces `<start_of_image>` by its full image sequence (`\\n\\n` + soft tokens + "
        "`<end_of_image>\\n\\n`), as LF does; pan-and-scan training (`image_do_pan_and_scan`) is not expressible",
    ),
    PartRule(
        "Gemma3nPlugin",
        "gemma3n",
        engine={"image": "<start_of_image>", "audio": "<start_of_audio>"},
        note="the processor replaces the begin-of-image/audio tokens by its full sequences, as LF does",
    ),
    PartRule(
        "Gemma4Plugin",
        "gemma4",
        engine={"image": "{image_token}", "video": "{video_token}", "audio": "{audio_token}"},
        collapse={
            "image": "<[^<>]*>(?:{image_token})+<[^<>]*>",
            "video": "<[^<>]*>(?:{video_token})+<[^<>]*>",
            "audio": "<[^<>]*>(?:{audio_token})+<[^<>]*>",
        },
        note="Gemma4Processor expands the bare token into begin + soft tokens + end (LF writes begin and end "
        "around it), so the template emits the bare token",
    ),
    PartRule(
        "InternVLPlugin",
        "intern_vl",
        engine={"image": "<IMG_CONTEXT>", "video": "{video_token}"},
        collapse={
            "image": "<img>(?:<IMG_CONTEXT>)+</img>",
            "video": "Frame1: <img>(?:<IMG_CONTEXT>)+</img>(?:\\nFrame\\d+: <img>(?:<IMG_CONTEXT>)+</img>)*",
        },
        note="InternVLProcessor expands `<IMG_CONTEXT>` into `<img>` + patches x context tokens + `</img>` and "
        "`<video>` into `FrameK: <img>...</img>` lines, LF's text",
    ),
    PartRule(
        "KimiVLPlugin",
        "kimi_vl",
        engine={"image": "<|media_start|>image<|media_content|>{image_token}<|media_end|>"},
        note="Kimi-VL's processor is remote code (not in transformers 5.6): checked on text and count only",
    ),
    PartRule("Llama4Plugin", "llama4", engine={"image": "{image_token}"}),
    PartRule("LlavaPlugin", "llava", engine={"image": "{image_token}"}),
    PartRule("LlavaNextPlugin", "llava_next", engine={"image": "{image_token}"}),
    PartRule("LlavaNextVideoPlugin", "llava_next_video", engine={"image": "{image_token}", "video": "{video_token}"}),
    PartRule("VideoLlavaPlugin", "video_llava", engine={"image": "{image_token}", "video": "{video_token}"}),
    PartRule(
        "LFMVLPlugin",
        "lfm2_vl",
        engine={"image": "{image_token}"},
        note="LF repeats `<image>` per soft token; Lfm2VlProcessor adds its own image start/end and tile "
        "markers, so the expansion is checked by the expansion verifier",
    ),
    PartRule(
        "MiniCPMVPlugin",
        "minicpm_v",
        engine={"image": "(<image>./</image>)", "audio": "(<audio>./</audio>)"},
        refused={
            "video": "LF writes one image placeholder per sampled frame of a video (video_fps, video_maxlen), "
            "a number a chat template cannot know"
        },
        note="MiniCPM-V's processor is remote code; LF refuses images and videos in one conversation",
    ),
    PartRule(
        "MiniCPMV4_6Plugin",
        "minicpm_v_4_6",
        engine={"image": "(<image>./</image>)", "audio": "(<audio>./</audio>)"},
        refused={
            "video": "LF writes one image placeholder per sampled frame of a video (video_fps, video_maxlen), "
            "a number a chat template cannot know"
        },
        note="LF refuses images and videos in one conversation",
    ),
    PartRule(
        "MllamaPlugin",
        "mllama",
        engine={"image": "{image_token}"},
        note="one `<|image|>` per image, not expanded; the cross-attention mask follows from its position",
    ),
    PartRule(
        "MossVLPlugin",
        "moss_vl",
        engine={"image": "{image_token}"},
        refused={
            "video": "LF (dev line) writes a video as one block per sampled frame with its timestamp "
            "(`<|time_start|>1.5 seconds<|time_end|>` + image token), computed from the video's metadata, "
            "which a chat template cannot know"
        },
        note="LF's dev line only (0.9.6.dev0); its processor is remote code",
    ),
    PartRule(
        "PaliGemmaPlugin",
        "paligemma",
        status="refused",
        reason="LF removes the image tag from the text and prepends image_seq_length image ids to the whole "
        "sequence in process_token_ids (before the prefix, whatever the part positions, labels ignored); a chat "
        "template emits text, and PaliGemma's processor builds its own prefix",
    ),
    PartRule("PixtralPlugin", "pixtral", engine={"image": "{image_token}"}),
    PartRule(
        "Qwen2AudioPlugin",
        "qwen2_audio",
        engine={"audio": "<|audio_bos|>{audio_token}<|audio_eos|>"},
        note="LF reads the audio bos/eos tokens from Qwen2AudioProcessor (defaults `<|audio_bos|>`/`<|audio_eos|>`)",
    ),
)

#: plugin class name -> rule.
RULES: Mapping[str, PartRule] = {r.plugin: r for r in _RULES}


def rule_for(media: Optional[MediaSpec]) -> Optional[PartRule]:
    """The rule of a template's plugin (``None``: a plugin class this version does not know)."""
    if media is None:
        return RULES["BasePlugin"]
    return RULES.get(media.plugin)


def _fields(media: MediaSpec) -> dict[str, str]:
    return {k: v for k, v in media.tokens}


@dataclass(frozen=True)
class KindPlan:
    """How the compiled template renders one kind: ``text`` (``head`` + n + ``tail`` when numbered) or the
    refusal ``reason``."""

    kind: str
    head: str = ""
    tail: str = ""
    numbered: bool = False
    reason: str = ""

    @property
    def ok(self) -> bool:
        return not self.reason

    def text(self, n: int = 1) -> str:
        return self.head + (str(n) if self.numbered else "") + self.tail


def plan(media: Optional[MediaSpec], kind: str) -> KindPlan:
    """What the compiled template emits for one part of ``kind``, or why it refuses it."""
    r = rule_for(media)
    if r is None:
        return KindPlan(kind, reason=f"LF plugin {media.plugin if media else '?'} is unknown to this version")
    if r.status != "compiled":
        return KindPlan(kind, reason=r.reason)
    if kind in r.refused:
        return KindPlan(kind, reason=r.refused[kind])
    if media is None or not media.takes(kind) or kind not in r.engine:
        return KindPlan(kind, reason=f"LF's {r.key} plugin has no {kind} token in this template")
    pattern = r.engine[kind]
    values = _fields(media)
    if "{n}" in pattern:
        head, tail = pattern.split("{n}", 1)
        return KindPlan(kind, head=head.format(**values), tail=tail.format(**values), numbered=True)
    return KindPlan(kind, head=pattern.format(**values))


def collapse_pattern(media: MediaSpec, kind: str) -> Optional[str]:
    """The regex matching LF's unexpanded text of one part, where it differs from what the template emits."""
    r = rule_for(media)
    if r is None or kind not in r.collapse:
        return None
    values = {k: re.escape(v) for k, v in _fields(media).items()}
    return r.collapse[kind].format(**values)


def status(media: Optional[MediaSpec]) -> tuple[str, str]:
    """(``compiled`` | ``refused`` | ``n/a``, reason) for a template's plugin: the coverage cell's source."""
    r = rule_for(media)
    if media is None or media.plugin == "BasePlugin":
        return "n/a", ""
    if r is None:
        return "refused", f"LF plugin {media.plugin} is unknown to this version"
    if r.status != "compiled":
        return "refused", r.reason
    kinds = [k for k in KINDS if plan(media, k).ok]
    if not kinds:
        return "refused", "no media kind of this plugin is expressible"
    return "compiled", ""


def kinds_compiled(media: Optional[MediaSpec]) -> tuple[str, ...]:
    """The kinds whose parts the compiled template renders."""
    return tuple(k for k in KINDS if plan(media, k).ok)


def kinds_refused(media: Optional[MediaSpec]) -> dict[str, str]:
    """Kinds LF's plugin takes that the template refuses, with the reason."""
    if media is None or status(media)[0] == "refused":
        return {}
    return {k: plan(media, k).reason for k in KINDS if media.takes(k) and not plan(media, k).ok}


def placeholders_text(media: Optional[MediaSpec]) -> str:
    """The compiled placeholders of a plugin, for messages: ``<|vision_start|><|image_pad|><|vision_end|>`` per
    image, ... (``Picture N:...`` where LF numbers them)."""
    out = []
    for k in KINDS:
        p = plan(media, k)
        if p.ok:
            out.append(f"`{p.head + ('N' if p.numbered else '') + p.tail}` per {k}")
    return ", ".join(out)


def engine_media_reason(media: Optional[MediaSpec], engine: str, how: str) -> Optional[str]:
    """Why an engine whose file has no place for media (Ollama, LMDeploy) cannot serve this template's media
    parts as trained; ``None`` for a text-only template. ``how``: what the engine does with media instead."""
    if media is None:
        return None
    state, why = status(media)
    if state == "refused":
        return f"media parts: refused for every engine: {why}"
    return (
        f"media parts: {engine} cannot place LF's placeholders ({placeholders_text(media)}, at the parts' "
        f"positions): {how}; serve media with vLLM/SGLang and the compiled Jinja (docs/multimodal.md)"
    )
