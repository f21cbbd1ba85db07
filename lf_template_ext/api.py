"""The public Python API (docs/contracts.md): ``compile_jinja`` and ``verify``.

Both take an LF template (a registered name or a ``Template`` object) and the tokenizer the
model was trained with, and never mutate either (LF's own ``get_template_and_fix_tokenizer``
mutates both; we run it on copies, see ``lf.compat.prepare``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from .model.options import TemplateOptions

if TYPE_CHECKING:  # pragma: no cover
    from .verifier.report import AlignmentReport


def _options(
    default_system: Optional[str],
    tool_format: Optional[str],
    enable_thinking: Optional[bool],
    preserve_thinking: bool,
    mask_history: bool,
) -> TemplateOptions:
    return TemplateOptions(
        default_system=default_system,
        tool_format=tool_format,
        enable_thinking=enable_thinking,
        preserve_thinking=preserve_thinking,
        mask_history=mask_history,
    )


def compile_jinja(
    template: Any,
    tokenizer: Any,
    *,
    default_system: Optional[str] = None,
    tool_format: Optional[str] = None,
    enable_thinking: Optional[bool] = True,
    preserve_thinking: bool = False,
    mask_history: bool = False,
    tool_order: str = "client",
) -> str:
    """Compile an LF template into a Jinja chat template that renders LF's training ids.

    ``template`` is a registered LF template name (``"qwen"``) or an LF ``Template``;
    ``tokenizer`` the (base) tokenizer training used. The options are LF's data arguments of
    the same names and must match the training run. Raises ``UnsupportedTemplateError`` when
    the template uses something Jinja + whole-string tokenization cannot reproduce.
    ``tool_order="canonical"`` writes tool definitions in the one key order vLLM, LMDeploy and
    Ollama all reproduce (``model/tool_order.py``); training must then render with this template.
    """
    from .compiler import compile_spec
    from .verifier import gate

    options = _options(default_system, tool_format, enable_thinking, preserve_thinking, mask_history)
    snap = gate.snapshot(template, tokenizer, options)
    return compile_spec(snap.spec, snap.facts, tool_order=tool_order)


def verify(
    template: Any,
    tokenizer: Any,
    conversations: Optional[list[dict[str, Any]]] = None,
    *,
    jinja: Optional[str] = None,
    default_system: Optional[str] = None,
    tool_format: Optional[str] = None,
    enable_thinking: Optional[bool] = True,
    preserve_thinking: bool = False,
    mask_history: bool = False,
) -> "AlignmentReport":
    """Compare LF's training ids with the ids of a Jinja template rendered whole.

    ``jinja`` defaults to the compiled template; pass a model's own template to see how far
    it is from what training saw. ``conversations`` default to the built-in probe corpus
    (``lf_template_ext.model.corpus``); each is ``{"id", "messages", "tools"?}`` in OpenAI shape.
    """
    from .verifier.probe import verify_template

    options = _options(default_system, tool_format, enable_thinking, preserve_thinking, mask_history)
    return verify_template(template, tokenizer, conversations, jinja=jinja, options=options)
