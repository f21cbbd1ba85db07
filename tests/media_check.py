"""The text+count check of compiled media parts against LF's own ``process_messages`` (issue 12, item 5).

For one multimodal LF template and one conversation with image/video/audio content parts:

* **engine side**: the compiled Jinja rendered with the parts (``apply_chat_template``, as vLLM/SGLang/
  transformers render it) -> text ``A``;
* **LF side**: the same conversation as LF's data (tags at the parts' positions, ``model/messages.py``) through
  LF's plugin ``process_messages`` with ``expand_mm_tokens=False`` and a processor, then LF's
  ``encode_multiturn`` -> ids (decoded: LF's text); where the processor's placeholder differs from LF's unexpanded text
  (``model/media.py: collapse``), LF's text of each part is mapped onto it first.

Compared: ``A`` tokenized whole vs LF's ids (exact, or the same text split differently at a piece boundary),
and the placeholder count of every kind. Processors: transformers' own classes where one builds from the
fixture tokenizer cheaply (Qwen2-VL's), else the plugin's attributes that LF reads with
``expand_mm_tokens=False`` on a namespace around transformers' real image processor / feature extractor
(:func:`processor_for`; the expansion itself is the VERIFY side's check with real processor fixtures).
"""

from __future__ import annotations

import copy
import functools
import re
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from harness import harness_tokenizer

from lf_template_ext.model import media as mm
from lf_template_ext.model.messages import to_lf


@dataclass
class MediaResult:
    template: str
    plugin: str
    kinds: tuple[str, ...]
    engine_text: str
    lf_text: str
    same_text: bool
    same_ids: bool
    counts_engine: dict[str, int]
    counts_lf: dict[str, int]

    @property
    def ok(self) -> bool:
        return self.same_text and self.counts_engine == self.counts_lf


def _tiny_image():
    from PIL import Image

    return Image.new("RGB", (56, 56), (120, 30, 200))


def _tiny_video():
    return [_tiny_image(), _tiny_image()]


def _tiny_audio():
    import numpy as np

    return np.zeros(1600, dtype="float32")


class _RemoteCodeImageProcessor:
    """MiniCPM-V's image processor is remote code (no transformers class): LF's plugin calls it with
    ``max_slice_nums`` even when it does not expand, and only its attributes matter then. transformers'
    Qwen2-VL image processor does the work; the MiniCPM keyword arguments are dropped."""

    max_slice_nums, use_image_id = 9, True

    def __init__(self) -> None:
        from transformers import Qwen2VLImageProcessor

        self._inner = Qwen2VLImageProcessor()
        self.merge_size = self._inner.merge_size

    def __call__(self, images, **kwargs):
        kwargs = {k: v for k, v in kwargs.items() if k in ("return_tensors",)}
        return self._inner(images, **kwargs)


def _minicpm_audio_features(audios_ls, **kwargs):
    """MiniCPM-o's ``audio_feature_extract`` (remote code): its output is unused when LF does not expand."""
    return [], [], [[] for _ in audios_ls]


def processor_for(plugin: Any, tok: Any) -> Any:
    """A processor that LF's plugin accepts with ``expand_mm_tokens=False`` (see the module docstring)."""
    name = type(plugin).__name__
    if name in ("Qwen2VLPlugin",):
        from transformers import Qwen2VLImageProcessor, Qwen2VLProcessor
        from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

        return Qwen2VLProcessor(
            image_processor=Qwen2VLImageProcessor(), tokenizer=tok, video_processor=Qwen2VLVideoProcessor()
        )
    from transformers import GotOcr2ImageProcessor, Qwen2VLImageProcessor, WhisperFeatureExtractor

    if name == "InternVLPlugin":  # InternVL's processor uses GOT-OCR2's image processor (num_patches)
        image: Any = GotOcr2ImageProcessor()
    elif name.startswith("MiniCPMV"):
        image = _RemoteCodeImageProcessor()
    else:
        image = Qwen2VLImageProcessor()  # LF reads merge_size from it (Qwen/GLM/Ernie families)
    image.merge_kernel_size = (2, 2)  # Kimi-VL's attribute
    return SimpleNamespace(
        audio_feature_extract=_minicpm_audio_features,
        image_processor=image,
        video_processor=image,
        feature_extractor=WhisperFeatureExtractor(),
        tokenizer=tok,
        # the processor-side tokens LF reads (transformers' Gemma3/Gemma3n/Gemma4/Qwen2-Audio processors)
        boi_token="<start_of_image>",
        eoi_token="<end_of_image>",
        boa_token="<start_of_audio>",
        eoa_token="<end_of_audio>",
        full_image_sequence="\n\n<start_of_image>[expanded]<end_of_image>\n\n",
        full_audio_sequence="<start_of_audio>[expanded]<end_of_audio>",
        image_token=getattr(plugin, "image_token", None),
        video_token=getattr(plugin, "video_token", None),
        audio_token=getattr(plugin, "audio_token", None),
        audio_bos_token="<|audio_bos|>",
        audio_eos_token="<|audio_eos|>",
        image_seq_length=1,
        use_audio_in_video=False,
    )


_MARKER = re.compile(r"<[^<>\s]+>|\[[A-Z_]+\]")


def _markers(media: Any) -> list[str]:
    """The placeholder tokens one plugin's parts compile to."""
    wanted = [v for _, v in media.tokens]
    for k in mm.KINDS:
        p = mm.plan(media, k)
        if p.ok:
            wanted += _MARKER.findall(p.head + p.tail)
    return wanted


@functools.lru_cache(maxsize=None)
def _all_media_markers() -> tuple[str, ...]:
    """Every placeholder token any LF plugin's parts compile to (added once per check tokenizer)."""
    from lf_template_ext.lf import compat

    wanted: list[str] = []
    for template in compat._template_module().TEMPLATES.values():
        media = compat.media_spec(template.mm_plugin)
        if media is not None:
            wanted += _markers(media)
    return tuple(dict.fromkeys(wanted))


@functools.lru_cache(maxsize=None)
def _with_media_markers(label: str) -> Any:
    from lf_template_ext.modeldir.tokenizer_copy import copy_tokenizer, freeze

    tok = _BY_LABEL[label]
    new = [t for t in _all_media_markers() if t not in tok.get_added_vocab()]
    if not new:
        return tok
    tok = copy_tokenizer(tok)
    tok.add_special_tokens({"additional_special_tokens": new}, replace_extra_special_tokens=False)
    return freeze(tok)


_BY_LABEL: dict[str, Any] = {}


def media_tokenizer(name: str) -> Any:
    """The template's check tokenizer with the plugins' placeholder tokens atomic, as every VLM family
    registers them (``<image>`` is one added token in LLaVA's vocabulary, not seven pieces). One copy per
    check tokenizer, shared by its templates (a placeholder of another plugin is harmless)."""
    from lf_template_ext.lf import compat

    tok, label = harness_tokenizer(name)
    media = compat.media_spec(compat._template_module().TEMPLATES[name].mm_plugin)
    added = tok.get_added_vocab()
    if media is None or all(t in added for t in _markers(media)):
        return tok  # the family's own tokenizer already has them (Gemma-3's, Qwen2.5's)
    _BY_LABEL.setdefault(label, tok)
    return _with_media_markers(label)


def conversation(kinds: tuple[str, ...]) -> list[dict[str, Any]]:
    """Two user turns with media parts at the start, middle and end (each kind once or twice)."""
    first: list[dict[str, Any]] = [{"type": "text", "text": "Look at "}]
    for k in kinds:
        first += [{"type": k}, {"type": "text", "text": f" ({k}) and "}]
    first.append({"type": "text", "text": "tell me."})
    second: list[dict[str, Any]] = [{"type": kinds[0]}, {"type": "text", "text": "Again?"}]
    return [
        {"role": "user", "content": first},
        {"role": "assistant", "content": "Sure."},
        {"role": "user", "content": second},
        {"role": "assistant", "content": "Done."},
    ]


def check_template(name: str, kinds: tuple[str, ...] | None = None, jinja: str | None = None) -> MediaResult:
    """Render ``conversation(kinds)`` through the compiled Jinja (or ``jinja``) and through LF's plugin; compare."""
    import lf_template_ext as lte
    from lf_template_ext.lf import compat
    from lf_template_ext.model.options import TemplateOptions

    template = compat._template_module().TEMPLATES[name]
    tok = media_tokenizer(name)
    prepared = compat.prepare(template, tok, TemplateOptions())
    spec = compat.template_spec(prepared)
    media = spec.media
    assert media is not None, name
    kinds = kinds or mm.kinds_compiled(media)
    messages = conversation(kinds)
    jinja = jinja or lte.compile_jinja(name, tok)
    engine_text = tok.apply_chat_template(messages, chat_template=jinja, tokenize=False)

    lf = to_lf(messages)
    items = {"image": [], "video": [], "audio": []}
    for k in ("image", "video", "audio"):
        n = len(getattr(lf, k + "s"))
        items[k] = [{"image": _tiny_image, "video": _tiny_video, "audio": _tiny_audio}[k]() for _ in range(n)]
    plugin = copy.copy(prepared.template.mm_plugin)
    plugin.expand_mm_tokens = False
    ptok = prepared.tokenizer
    msgs = plugin.process_messages(
        [dict(m) for m in lf.messages], items["image"], items["video"], items["audio"], processor_for(plugin, ptok)
    )
    for k in sorted(kinds, key=("video", "audio", "image").index):  # LF's unexpanded text -> the processor's placeholder (a video holds image blocks: first)
        pat = mm.collapse_pattern(media, k)
        if pat:
            for m in msgs:
                m["content"] = re.sub(pat, mm.plan(media, k).text(), m["content"])
    pairs = prepared.template.encode_multiturn(ptok, msgs, lf.system or None, None)
    lf_ids = [i for p, r in pairs for i in p + r]
    engine_ids = tok(engine_text, add_special_tokens=False)["input_ids"]

    def counts(text: str) -> dict[str, int]:
        out = {}
        for k in kinds:
            p = mm.plan(media, k)
            out[k] = len(re.findall(re.escape(p.head) + (r"\d+" if p.numbered else "") + re.escape(p.tail), text))
        return out

    return MediaResult(
        template=name,
        plugin=media.plugin,
        kinds=kinds,
        engine_text=engine_text,
        lf_text=tok.decode(lf_ids),
        same_text=tok.decode(engine_ids) == tok.decode(lf_ids),
        same_ids=engine_ids == lf_ids,
        counts_engine=counts(engine_text),
        counts_lf=counts(tok.decode(lf_ids)),
    )
