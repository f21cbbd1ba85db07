"""Plain, typed data that describes an LF template: what the compiler consumes.

LF's ``Template`` objects carry formatter instances, a multimodal plugin and methods whose
behaviour changes between LF releases. The compiler must not depend on any of that, so
``lf.compat.template_spec`` snapshots a template (after LF's own option handling) into the
frozen dataclasses below. Everything here is pure data: hashable, comparable, printable,
and importable without LF, torch or transformers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional, Union

from .media import MediaSpec

TemplateKind = Literal["plain", "llama2", "reasoning", "glm47"]

#: The template classes that handle thoughts (LF's ``ReasoningTemplate`` and its GLM-4.7 subclass).
REASONING_KINDS: frozenset[str] = frozenset({"reasoning", "glm47"})


def kind_is_reasoning(kind: str) -> bool:
    """Whether a template of this kind handles thoughts (empty thought, ``enable_thinking``)."""
    return kind in REASONING_KINDS


def kind_passes_call_words(kind: str) -> bool:
    """Whether LF hands its FunctionFormatter the thought/tool-call words (every class but Llama-2's)."""
    return kind != "llama2"


@dataclass(frozen=True)
class Text:
    """A literal string slot; may contain ``{{content}}`` / ``{{idx}}`` placeholders."""

    text: str


@dataclass(frozen=True)
class SpecialToken:
    """LF's ``{"bos_token"}`` / ``{"eos_token"}`` set slots.

    ``which="none"`` is any other set (phi_small's prefix ``{"<|endoftext|>"}``): LF's
    ``_convert_elements_to_ids`` emits nothing for it, and neither do we.
    """

    which: Literal["bos", "eos", "none"]


@dataclass(frozen=True)
class TokenRef:
    """LF's ``{"token": "<x>"}`` dict slot: ``convert_tokens_to_ids("<x>")``."""

    token: str


Slot = Union[Text, SpecialToken, TokenRef]


@dataclass(frozen=True)
class FormatterSpec:
    """One LF formatter.

    ``kind`` is the formatter class: ``empty`` (no placeholder), ``string``, ``function``
    (a ``FunctionFormatter``: tool calls rendered by ``tool_format`` and then put in the
    slots), ``tool`` (a ``ToolFormatter``: the tools list rendered by ``tool_format``).
    A ``string`` formatter used as ``format_tools`` (phi4_mini) gets the raw tools JSON.
    """

    kind: Literal["empty", "string", "function", "tool"]
    slots: tuple[Slot, ...] = ()
    tool_format: Optional[str] = None


@dataclass(frozen=True)
class TemplateSpec:
    """Everything about an LF template (with options applied) that affects token ids."""

    name: str
    kind: TemplateKind
    prefix: FormatterSpec
    system: FormatterSpec
    user: FormatterSpec
    assistant: FormatterSpec
    function: FormatterSpec
    observation: FormatterSpec
    tools: FormatterSpec
    default_system: str
    stop_words: tuple[str, ...]
    thought_words: tuple[str, str]
    tool_call_words: Optional[tuple[str, str]]
    efficient_eos: bool
    replace_eos: bool
    enable_thinking: Optional[bool]
    preserve_thinking: bool
    mm_plugin: str = "base"
    # Options that change how the training ids were built (see docs/contracts.md "Reference ids").
    discard_history_thoughts: bool = False
    # The empty thought LF inserts (``Template.add_thought()``), taken from LF itself.
    empty_thought: str = ""
    # Whether the FunctionFormatter receives thought/tool-call words (0.9.4+: yes, except
    # ``Llama2Template`` whose ``_encode`` calls ``format_function.apply(content=...)``).
    function_gets_words: bool = True
    # The tools prompt of ``tools.tool_format`` as LF's installed version words it, split into
    # ("text", literal) and ("field", name) pieces (``PROMPT.format(**fields)``).
    tool_prompt: tuple[tuple[str, str], ...] = ()
    # LF's dev line (0.9.6.dev0): ``Template._encode`` strips the tool text's leading newlines when
    # there is no system message (``Llama2Template`` does not).
    tools_lstrip_without_system: bool = False
    lf_version: str = ""
    # The LF plugin's facts (class, tokens): what a media part compiles to (model/media.py); None: no plugin.
    media: Optional[MediaSpec] = None

    @property
    def is_reasoning(self) -> bool:
        """A ``ReasoningTemplate`` (or subclass): thoughts, the empty thought, ``enable_thinking``."""
        return kind_is_reasoning(self.kind)

    @property
    def is_llama2(self) -> bool:
        """LF's ``Llama2Template``: the system text is merged into the first user turn."""
        return self.kind == "llama2"

    @property
    def tools_format(self) -> Optional[str]:
        """The tool format of the tools prompt (``None`` when the tools formatter is no ToolFormatter)."""
        return self.tools.tool_format if self.tools.kind == "tool" else None

    @property
    def calls_format(self) -> Optional[str]:
        """The tool format of assistant tool calls (``None`` when the function formatter is a plain one)."""
        return self.function.tool_format if self.function.kind == "function" else None


@dataclass(frozen=True)
class TokenizerFacts:
    """What the compiler needs to know about the tokenizer LF trained with.

    ``bos_token``/``eos_token`` are the texts LF's ``{"bos_token"}``/``{"eos_token"}`` slots
    stand for (after LF's ``fix_special_tokens``: eos may have been replaced by a stop word);
    ``None`` when the tokenizer has no such token (LF then emits nothing).
    ``atomic_tokens`` are the token strings that whole-string tokenization parses back into
    a single id (added/special tokens, unless ``split_special_tokens``); a dict slot compiles
    only if its token is among them.
    """

    bos_token: Optional[str]
    eos_token: Optional[str]
    atomic_tokens: frozenset[str] = field(default_factory=frozenset)
    split_special_tokens: bool = False
