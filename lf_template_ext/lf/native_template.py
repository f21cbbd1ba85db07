"""The ``Template`` class of ``template: native`` (imports LF: load it only from an LF process).

A module-level class, so that ``datasets`` fingerprints it by reference (as LF's own classes),
not by value with everything it can reach. It derives from LF's ``ReasoningTemplate`` so that
``get_template_and_fix_tokenizer`` hands it ``enable_thinking`` and ``preserve_thinking`` from
the data arguments (LF's only route to a template; it also logs its "add `_nothink`"
warning, which does not apply here). Every method delegates to ``lf_template_ext.native.mode``.
"""

from __future__ import annotations

from llamafactory.data.template import ReasoningTemplate

from ..native import mode as native


class NativeTemplate(ReasoningTemplate):
    """Renders with the tokenizer's own chat template (``lf_template_ext.native.mode``)."""

    def encode_oneturn(self, tokenizer, messages, system=None, tools=None):
        return native.encode_oneturn(self, tokenizer, messages, system, tools)

    def encode_multiturn(self, tokenizer, messages, system=None, tools=None, discarding_history_cot=False):
        """One example, as LF's stock supervised processor needs (policy ``expand`` acts as ``mask``)."""
        return native.encode_multiturn(self, tokenizer, messages, system, tools)

    def get_stop_token_ids(self, tokenizer):
        return native.stop_token_ids(tokenizer)

    def fix_special_tokens(self, tokenizer):
        native.require_chat_template(tokenizer)
        super().fix_special_tokens(tokenizer)

    def fix_jinja_template(self, tokenizer):
        """Keep the model's own chat template: it is what native mode trains with."""

    def _get_jinja_template(self, tokenizer):
        return native.require_chat_template(tokenizer)

    def get_ollama_modelfile(self, tokenizer):
        return native.ollama_modelfile(tokenizer)
