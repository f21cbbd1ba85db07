"""The ``Template`` class of ``template: native`` (imports LF: load it only where LF is installed).

A module-level class, so that ``datasets`` fingerprints it by reference (as LF's own classes),
not by value with everything it can reach. It derives from LF's ``ReasoningTemplate`` so that
``get_template_and_fix_tokenizer`` hands it ``enable_thinking`` and ``preserve_thinking`` from
the data arguments (LF's only route to a template; it also logs its "add `_nothink`"
warning, which does not apply here). Every method delegates to ``lf_template_ext.native.mode``,
handing it what it needs from LF (``compat.native_helpers``).

Moving this class changes the fingerprint LF's dataset cache computes for ``template: native``
runs (the class is pickled by reference): a cache written by an older layout is recomputed once.
"""

from __future__ import annotations

from typing import Any, Optional

from llamafactory.data.template import ReasoningTemplate

from ..native import mode as native
from . import compat

NAME = "native"


class NativeTemplate(ReasoningTemplate):
    """Renders with the tokenizer's own chat template (``lf_template_ext.native.mode``)."""

    _lf_template_ext_native = True  # native.mode.MARKER: lets is_native() answer without importing LF

    def encode_oneturn(self, tokenizer, messages, system=None, tools=None):
        return native.encode_oneturn(self, tokenizer, compat.native_helpers(), messages, system, tools)

    def encode_multiturn(self, tokenizer, messages, system=None, tools=None, discarding_history_cot=False):
        """One example, as LF's stock supervised processor needs (policy ``expand`` acts as ``mask``)."""
        return native.encode_multiturn(self, tokenizer, compat.native_helpers(), messages, system, tools)

    def get_stop_token_ids(self, tokenizer):
        return native.stop_token_ids(tokenizer)

    def fix_special_tokens(self, tokenizer):
        """``template_ext_chat_template`` first: the chosen template becomes the tokenizer's (so native mode
        renders it, and LF saves it with the tokenizer into every checkpoint and the output dir)."""
        chosen = native.chosen_chat_template(tokenizer, helpers(), getattr(self, "enable_thinking", True))
        if chosen is not None:
            tokenizer.chat_template = chosen
        native.require_chat_template(tokenizer, compat.native_helpers())
        self._set_media_plugin(getattr(tokenizer, "name_or_path", None))
        super().fix_special_tokens(tokenizer)

    def _set_media_plugin(self, model_dir: Optional[str]) -> None:
        """The model's LF plugin when its processor is one native mode trains media for (``MEDIA_PLUGINS``), else
        LF's base plugin: LF's collator computes pixel values through ``template.mm_plugin``, also for a dataset
        LF loads already tokenized (``tokenized_path``), where no preprocessing runs."""
        base = self.__dict__.setdefault("_lfx_base_plugin", self.mm_plugin)
        name = MEDIA_PLUGINS.get(processor_class_of(model_dir) or "")
        self.mm_plugin = compat.template_module().TEMPLATES[name].mm_plugin if name else base

    def fix_jinja_template(self, tokenizer):
        """Keep the model's own chat template (or the chosen one): it is what native mode trains with."""

    def _get_jinja_template(self, tokenizer):
        return native.require_chat_template(tokenizer, compat.native_helpers())

    def get_ollama_modelfile(self, tokenizer):
        return native.ollama_modelfile(tokenizer)


def _compile_lf(name: str, tokenizer: Any, enable_thinking: Optional[bool]) -> str:
    """``template_ext_chat_template: lf:NAME``: LF's template NAME compiled (``whole_template.compiled_template``)."""
    from ..errors import BadInputError
    from ..model.options import TemplateOptions
    from .whole_template import compiled_template

    if name not in compat.template_names() or name == NAME:
        close = compat.closest_names(name)
        raise BadInputError(
            f"template_ext_chat_template: lf:{name}: no such LF template",
            hint=f"did you mean {', '.join('lf:' + c for c in close)}?" if close else "use lf:NAME with an LF template name",
        )
    return compiled_template(name, tokenizer, TemplateOptions(enable_thinking=enable_thinking))


def helpers() -> Any:
    """``compat.native_helpers`` plus the compiler for ``lf:NAME`` chat templates."""
    import dataclasses

    return dataclasses.replace(compat.native_helpers(), compile_template=_compile_lf)


def install(template_module: Any) -> None:
    """Register ``template: native`` in LF's ``TEMPLATES`` (idempotent).

    Every other field keeps LF's default: no efficient eos, no eos replacement (native mode
    leaves the tokenizer's special tokens alone), ``enable_thinking`` True, which LF then
    overwrites from the data arguments because the class derives from ``ReasoningTemplate``.
    """
    if NAME not in template_module.TEMPLATES:
        template_module.register_template(name=NAME, template_class=NativeTemplate)


def register() -> None:
    """Register ``template: native`` in the installed LF, as the enable hook does when LF loads
    (``check --template native`` runs without the switch)."""
    install(compat.template_module())


#: the model's processor class -> the LF template whose ``mm_plugin`` computes its pixel values in LF's
#: collator (native mode with media, ``native.media``). Only families verified end to end are listed
#: (tests/test_native_media.py, one processor fixture each; Qwen2-VL shares Qwen2.5-VL's LF plugin).
MEDIA_PLUGINS = {
    "Qwen2VLProcessor": "qwen2_vl",
    "Qwen2_5_VLProcessor": "qwen2_vl",
    "Qwen3VLProcessor": "qwen3_vl",  # qwen3_vl and qwen3_vl_nothink share the plugin (Qwen3VLPlugin)
    "InternVLProcessor": "intern_vl",
    "LlavaNextProcessor": "llava_next",
    "LlavaProcessor": "llava",
    "Gemma3Processor": "gemma3",
    "Qwen2AudioProcessor": "qwen2_audio",
}

#: processor class -> how many text tokens next to a placeholder its expansion may retokenize (``native.media.align``):
#: Gemma-3's processor writes ``\n\n`` around every image's tokens, which merges with the rendering's newline
ALIGN_SLACK = {"Gemma3Processor": 1}


def processor_kwargs(processor: Any) -> dict:
    """What the processor call needs besides text and media to make the ids of the pixel values LF's plugin makes.

    InternVL: transformers' ``InternVLProcessor`` tiles an image per call (``crop_to_patches`` of its image
    processor), LF's ``InternVLPlugin`` only when the model arguments set ``crop_to_patches`` (then up to 12
    tiles, at least 1): the call gets the same setting, so the number of ``<IMG_CONTEXT>`` tokens is that of LF's
    tiles.
    """
    if type(processor).__name__ == "InternVLProcessor":
        if getattr(processor, "crop_to_patches", False):
            return {"crop_to_patches": True, "max_patches": 12, "min_patches": 1}
        return {"crop_to_patches": False}
    return {}


def processor_class_of(model_dir: Optional[str]) -> Optional[str]:
    """``processor_class`` of the dir's ``processor_config.json`` or ``preprocessor_config.json`` (no loading)."""
    import json
    import os

    if not model_dir or not os.path.isdir(model_dir):
        return None
    for name in ("processor_config.json", "preprocessor_config.json"):
        try:
            with open(os.path.join(model_dir, name), encoding="utf-8") as f:
                value = json.load(f).get("processor_class")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(value, str) and value:
            return value
    return None


def _media_error(where: str, reason: str, fix: str) -> Exception:
    return native.NativeModeError(f"{where}: {reason}, so `template: native` cannot train samples with media.\n  fix: {fix}")


def media_plugin(processor: Any, where: str) -> Any:
    """LF's ``mm_plugin`` for this processor (the one LF's own template for the model uses)."""
    name = MEDIA_PLUGINS.get(type(processor).__name__)
    if name is None:
        raise _media_error(
            where,
            f"native mode with media supports the processors {', '.join(sorted(MEDIA_PLUGINS))}, "
            f"not {type(processor).__name__}",
            "train this model with LF's own template for it (`template: <name>`, e.g. qwen2_vl), or drop the media",
        )
    return compat.template_module().TEMPLATES[name].mm_plugin


def encode_media_conversation(dataset_processor: Any, messages: Any, system: Any, tools: Any, media: dict, sample: Any):
    """One sample with media: rendered with the processor's chat template, expanded by the processor with the
    media LF's plugin regularized (``lf.media.regularized``: LF's resize with its media arguments), labelled
    as native mode labels text (``native.media.encode_with_media``).

    Sets the template's ``mm_plugin`` to the model's LF plugin, so that LF's collator computes the pixel values
    from the same media the same way (``get_mm_inputs``).
    """
    from types import SimpleNamespace

    from ..native.media import encode_with_media, processor_chat_template
    from .media import MediaInputs, regularized

    template, tokenizer = dataset_processor.template, dataset_processor.tokenizer
    hf = getattr(dataset_processor, "processor", None)
    where = getattr(tokenizer, "name_or_path", "") or "this model"
    if hf is None:
        raise _media_error(
            where, "LF loaded no processor for this model (no preprocessor_config.json / processor_config.json)",
            "add the model's processor files to the model dir, or train with LF's own template for the model",
        )
    jinja = processor_chat_template(hf)
    if jinja is None:
        raise _media_error(
            where, "the processor has no chat template (no chat_template.jinja or chat_template.json)",
            f"add the model's chat template to {where}, or train with LF's own template for the model",
        )
    plugin = media_plugin(hf, where)
    if type(template.mm_plugin) is not type(plugin):
        template.mm_plugin = plugin  # LF's collator: template.mm_plugin.get_mm_inputs(...)
    given = MediaInputs(images=list(media.get("images") or []), videos=list(media.get("videos") or []),
                        audios=list(media.get("audios") or []))
    reg = regularized(SimpleNamespace(template=template), hf, given)
    encoder = native.encoder_for(tokenizer, template, compat.native_helpers(), dataset_processor.data_args,
                                 chat_template=jinja)
    conv = native.conversation(template, messages, system, tools, media_parts=True)
    for m in conv.messages:  # every content as parts, as engines send a request with media (LLaVA's templates
        if isinstance(m.get("content"), str):  # read ``content[i].text``: a string renders nothing or fails)
            m["content"] = [{"type": "text", "text": m["content"]}]
    return encoder, encode_with_media(
        encoder, hf, conv, sample, {"images": reg.images, "videos": reg.videos, "audios": reg.audios},
        processor_kwargs(hf), ALIGN_SLACK.get(type(hf).__name__, 0),
    )
