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
        super().fix_special_tokens(tokenizer)

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
