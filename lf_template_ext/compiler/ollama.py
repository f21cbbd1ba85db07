"""TemplateSpec + TokenizerFacts -> an Ollama ``TEMPLATE`` (Go ``text/template``) and ``Modelfile`` (pure).

The template reproduces LF's *training* encoding (docs/contracts.md "Reference ids"), like the Jinja
compiler (``compiler/assemble.py``), but for what Ollama hands a Go template in "messages mode"
(``template/template.go::Template.Execute`` of Ollama v0.33): ``.System`` (every system message,
joined by ``"\\n\\n"``), ``.Messages`` (after ``collate``: consecutive same-role messages merged with
``"\\n\\n"``; each with ``.Role``, ``.Content``, ``.Thinking``, ``.ToolCalls``, ``.Images``),
``.Tools``, ``.Think`` and ``.IsThinkSet``. Ollama always renders *for generation*: there is no
``add_generation_prompt`` switch, so what the Jinja adds for ``add_generation_prompt=True`` is added
here whenever the last message is a user or tool message.

What the template does, and why:

* **System.** ``or .System <default>``: LF's ``system or default_system``, so an *empty* system
  message also falls back to the default system (an LF quirk kept on purpose). The Modelfile gets
  no ``SYSTEM`` line: Ollama injects it only when the request's first message is not a system
  message (``server/routes.go`` ChatHandler), so the template must apply the default itself anyway.
* **Turns.** LF's strict alternation (user/tool at even positions, assistant at odd ones, one
  leading system message) is checked; a violation makes the template fail with a message naming
  the rule (``{{ template "<message>" . }}`` of an undefined template is an execution error whose
  text Ollama returns). That includes Ollama's own context truncation (``server/prompt.go``
  ``chatPrompt`` drops whole messages from the front and may then start at an assistant turn):
  ``num_ctx`` is written only when asked for (``--max-model-len`` / ``template_ext_serve_max_len``);
  Ollama's own default context applies otherwise.
* **Final assistant message.** Rendered closed, exactly as LF trained it (the same as the compiled
  Jinja with ``add_generation_prompt=False``); Ollama's "prefill" (continuing a final assistant
  message) is therefore not offered.
* **Reasoning templates.** Thoughts come from ``.Thinking`` (Ollama's ``thinking`` field; its OpenAI
  endpoint maps ``reasoning`` onto it). LF's empty-thought rules are reproduced with Ollama's switch:
  ``think: false`` selects LF's ``enable_thinking: false``; otherwise the value training used (Ollama
  sets ``think`` to true by default for a thinking-capable model). A template trained with
  ``enable_thinking: false`` does not mention ``.Thinking`` at all, so Ollama reports no thinking
  capability and refuses ``think: true``. The thought is written with literal text around
  ``{{ .Thinking }}`` so that Ollama's ``thinking.InferTags`` finds LF's thought words (that is what
  makes Ollama treat the model as thinking-capable and split thoughts from answers).
  For plain templates a ``.Thinking`` is written inline as LF's dataset convention does
  (``thought_words[0] + thinking + thought_words[1] + content``), without advertising thinking.
* **Tools.** Ollama decodes ``tools`` and tool-call ``arguments`` into Go structs and maps: key order
  is lost (maps range in sorted key order), fields Ollama does not model are dropped, and its ``json``
  function is ``json.Marshal`` (compact, escapes ``<``, ``>``, ``&``). The template therefore writes
  JSON itself in Python's ``json.dumps(..., ensure_ascii=False)`` spacing with sorted keys: the text
  equals LF's when the client's JSON objects have their keys in sorted order, use only fields Ollama
  models (``type``, ``function.{name, description, parameters.{type, properties, required, items,
  $defs}}``, properties' ``{type, description, enum, items, properties, required, anyOf}``), and their
  strings hold no ``<``, ``>``, ``&``, U+2028/U+2029 and their numbers no ``1.0``-style floats. Those
  features are declared *normalised* (token-identical after sorting JSON keys), not exact.
  The Llama-3 prompt's date (``%d %b %Y``) is rebuilt from Ollama's ``currentDate`` (``YYYY-MM-DD``).

What cannot be reproduced is declared (``OllamaTemplate.notes``), never silently changed:

* a literal ``{{idx}}`` in user content (LF replaces it with the turn index, except for Llama2-style
  templates; Go templates have no string replacement);
* thoughts written *inline* in an assistant's content (``<think>...</think>answer``): Go templates
  cannot search text, so only ``.Thinking`` counts as a thought;
* consecutive messages of the same role are merged by Ollama before the template sees them (LF would
  refuse them);
* images (Ollama inserts ``[img-N]`` tags into the content) are refused.

BOS: like the compiled Jinja, the template writes LF's prefix (for example ``<|begin_of_text|>``)
itself. Ollama's runner (llama.cpp) tokenizes the prompt with special-token parsing and *adds a BOS
when the GGUF says* ``tokenizer.ggml.add_bos_token = true``; it does not remove a duplicate. For such a
GGUF build the template with ``engine_adds_bos=True``: the leading BOS of LF's prefix is then left to
the engine (and a template whose LF encoding does not start with BOS is refused, because the engine
would add a token training never saw).

Everything here is pure: no file I/O, no LF import. Go literals, the block writer and LF's slots
are in ``go_text``; the ``json.dumps`` writers in ``go_json``; the tool prompts and calls of every
tool format in ``ollama_tools``. This module decides what the template does and writes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional

from .._version import __version__
from ..errors import UnsupportedTemplateError
from ..model.spec import SpecialToken, TemplateSpec, TokenizerFacts
from ..model.tool_formats import TOOL_FORMATS as LF_TOOL_FORMATS
from .go_json import MAX_INDENT_DEPTH, GoJson
from .go_text import PREFIX, GoWriter, go_lit, go_printable
from .ollama_tools import GEMMA4_ARG_DEFINE, calls_define, tools_define
from .ollama_turns import TemplatePlan, write_body

__all__ = [
    "ALWAYS_NOTES",
    "FEATURES",
    "IDX_NOTE",
    "JSON_NOTE",
    "MAX_INDENT_DEPTH",
    "PREFIX",
    "TOOL_FORMATS",
    "OllamaTemplate",
    "default_stop_words",
    "go_lit",
    "go_printable",
    "go_template",
    "modelfile",
    "ollama_parser",
]

#: Feature names used in ``OllamaTemplate.supports`` / ``normalised``.
FEATURES = ("plain", "system", "gen_prompt", "full", "tools", "tool_calls", "tool_results", "reasoning")

#: Tool formats whose JSON this module can write (all of LF 0.9.5's).
TOOL_FORMATS = frozenset(LF_TOOL_FORMATS)

IDX_NOTE = (
    "a literal {{idx}} in user content is written as-is (LF replaces it with the turn index; Go templates "
    "cannot replace text)"
)

ALWAYS_NOTES = (
    (
        "thoughts must come in the message's thinking field (OpenAI endpoint: reasoning); a thought written "
        "inline in the content is not recognised as one"
    ),
    "Ollama merges consecutive messages of the same role with a blank line before rendering (LF would refuse them)",
    "images are refused",
)

JSON_NOTE = (
    "tools/tool-call JSON is written with sorted keys in json.dumps spacing: token-identical to LF when the "
    "client's JSON keys are sorted and use only fields Ollama models, with no <, >, & in strings"
)


@dataclass(frozen=True)
class OllamaTemplate:
    """An emitted Ollama TEMPLATE and what it reproduces.

    ``supports``: features rendered as LF trained them (``FEATURES``). ``normalised``: the subset that
    is token-identical only for JSON with sorted keys (Ollama loses the client's key order).
    ``notes``: what is not reproduced, in words. ``thinking_tags``: the opening and closing tag
    Ollama's ``thinking.InferTags`` will find (``None``: Ollama sees no thinking capability).
    """

    text: str
    supports: frozenset[str]
    normalised: frozenset[str]
    notes: tuple[str, ...]
    thinking_tags: tuple[str, str] | None = None

    @property
    def mentions_tools(self) -> bool:
        """Whether the template references ``.Tools`` (Ollama's tool capability)."""
        return "tools" in self.supports


# -- the template ---------------------------------------------------------------------------------


def _header(spec: TemplateSpec, supports: frozenset[str], normalised: frozenset[str]) -> str:
    exact = ", ".join(sorted(supports - normalised))
    text = (
        f"Generated by {PREFIX} {__version__} from LLaMA-Factory {spec.lf_version or '?'} template '{spec.name}' "
        f"({spec.kind}). It renders the token ids LF trained on; regenerate it instead of editing it. Exact: {exact}."
    )
    if normalised:
        text += " Same after sorting JSON keys: " + ", ".join(sorted(normalised)) + "."
    return text


def go_template(spec: TemplateSpec, facts: TokenizerFacts, *, engine_adds_bos: bool = False) -> OllamaTemplate:
    """The Ollama TEMPLATE for ``spec`` (see the module docstring for what it reproduces).

    Raises ``UnsupportedTemplateError`` (naming template and feature) for what no Go template can
    express: ``{{idx}}`` slots, dict slots whose token the tokenizer cannot parse back, a tokenizer
    used with ``split_special_tokens``, unknown template classes, or ``engine_adds_bos`` for a template
    whose LF encoding does not start with a BOS. Features that are merely not reproducible are left out
    and declared in the result instead.
    """
    plan = TemplatePlan(spec, facts, skip_bos=_check_expressible(spec, facts, engine_adds_bos))
    # Llama2Template._encode passes no idx to format_user, so only the other classes have the quirk
    plan.notes = ([] if plan.llama2 else [IDX_NOTE]) + list(ALWAYS_NOTES)
    js = GoJson(spec)
    _plan_tools(plan, js)
    _plan_thinking(plan)

    w = GoWriter()
    _write_preamble(w, plan, js)
    write_body(w, plan)
    return OllamaTemplate(
        text=w.text(),
        supports=frozenset(plan.supports),
        normalised=frozenset(plan.normalised),
        notes=tuple(plan.notes),
        thinking_tags=plan.thinking_tags,
    )


def _check_expressible(spec: TemplateSpec, facts: TokenizerFacts, engine_adds_bos: bool) -> bool:
    """Refuse templates no Go template can reproduce; return whether LF's leading BOS is left to the engine.

    With ``engine_adds_bos`` the GGUF makes llama.cpp prepend a BOS, which is only right when LF's
    encoding starts with exactly that token (the template then leaves it out).
    """
    if spec.kind not in ("plain", "llama2", "reasoning", "glm47"):
        raise UnsupportedTemplateError(spec.name, f"template class {spec.kind!r} is not reproduced", "template class")
    if facts.split_special_tokens:
        raise UnsupportedTemplateError(
            spec.name,
            "the tokenizer was used with split_special_tokens=True; engines parse special-token text",
            "tokenizer",
        )
    if not engine_adds_bos:
        return False
    first = spec.prefix.slots[0] if spec.prefix.slots else None
    if not (isinstance(first, SpecialToken) and first.which == "bos" and facts.bos_token is not None):
        raise UnsupportedTemplateError(
            spec.name,
            "the GGUF adds a BOS token (tokenizer.ggml.add_bos_token=true) but LF's encoding does not start with "
            "one; set add_bos_token to false in the GGUF metadata",
            "bos",
        )
    return True


def _plan_tools(plan: TemplatePlan, js: GoJson) -> None:
    """Generate the tool-list and tool-call code when LF's format is one this module writes.

    A format it cannot write is declared in ``notes`` rather than refused: the template still
    reproduces plain chats. Tool JSON comes from Go maps (sorted keys), hence ``normalised``.
    """
    spec = plan.spec
    tools_fmt = (
        spec.tools.tool_format if spec.tools.kind == "tool" else ("string" if spec.tools.kind == "string" else None)
    )
    plan.calls_fmt = spec.calls_format
    bare = _bare_tools_code(spec, plan.facts, tools_fmt, js) if spec.tools_lstrip_without_system else None
    if tools_fmt is not None and spec.tools_lstrip_without_system and bare is None:
        plan.notes.append(
            "the tool list is not written: this LF strips the tool text's leading newlines when there is no "
            "system message (LF 0.9.6.dev0), which the Ollama writer reproduces only for a tool prompt that starts "
            "with literal text; Ollama refuses requests with tools"
        )
    elif tools_fmt is not None and (tools_fmt == "string" or tools_fmt in TOOL_FORMATS):
        plan.tools_code = tools_define(spec, plan.facts, tools_fmt, js)
        plan.tools_bare_code = bare or ""
        plan.supports.add("tools")
        plan.normalised.add("tools")  # property order and tool keys come from Go maps: sorted
    else:
        plan.notes.append(
            f"the tool list is not written (format_tools of kind {spec.tools.kind}); Ollama refuses requests with tools"
        )
    if plan.calls_fmt in TOOL_FORMATS:
        plan.calls_code = calls_define(spec, plan.calls_fmt, js)
        plan.supports.add("tool_calls")
        if plan.calls_fmt != "gemma4":  # gemma4 sorts argument keys itself
            plan.normalised.add("tool_calls")
    else:
        plan.notes.append("tool calls are refused: the template has no function formatter")
    plan.supports.add("tool_results")
    if plan.normalised:
        plan.notes.append(JSON_NOTE)


def _plan_thinking(plan: TemplatePlan) -> None:
    """How Ollama's ``think`` maps onto LF's ``enable_thinking`` for a reasoning template.

    The thought words are written as raw text (what ``thinking.InferTags`` reads), so they must be
    plain Go template text.
    """
    spec = plan.spec
    if not plan.reasoning:
        return
    plan.supports.add("reasoning")
    if spec.enable_thinking is not False:
        for word in spec.thought_words:
            if "{{" in word or any(not go_printable(c) and c not in "\n\t" for c in word) or '"""' in word:
                raise UnsupportedTemplateError(
                    spec.name, f"thought word {word!r} cannot be written as Go template text", "reasoning"
                )
        tw0, tw1 = spec.thought_words
        plan.thinking_tags = (tw0.strip(), tw1.strip())
        plan.thinking_mode = "switch"
    else:
        plan.thinking_mode = "off"
        plan.notes.append(
            "trained with enable_thinking=false: thoughts are never written and Ollama refuses think=true"
        )
    if spec.discard_history_thoughts:
        plan.notes.append("mask_history: thoughts of all but the last answer are dropped, as in training")


def _write_preamble(w: GoWriter, plan: TemplatePlan, js: GoJson) -> None:
    """Header and not-reproduced comments, then the defines (tools, calls, JSON writers)."""
    w.comment(_header(plan.spec, frozenset(plan.supports), frozenset(plan.normalised)))
    for note in plan.notes:
        w.comment("Not reproduced: " + note)
    defines: list[str] = []
    if plan.tools_code:
        defines.append('{{- define "lf_tools" -}}' + plan.tools_code + "{{- end -}}")
    if plan.tools_bare_code:
        defines.append('{{- define "lf_tools_bare" -}}' + plan.tools_bare_code + "{{- end -}}")
    if plan.calls_code:
        defines.append('{{- define "lf_calls" -}}' + plan.calls_code + "{{- end -}}")
    if plan.calls_fmt == "gemma4":
        defines.append(GEMMA4_ARG_DEFINE)
    defines += js.defines()
    for d in defines:
        w.line(d)


# -- Modelfile ------------------------------------------------------------------------------------


def default_stop_words(spec: TemplateSpec, facts: TokenizerFacts) -> list[str]:
    """LF's stop words in template order: the (LF-fixed) eos token first, then ``stop_words``, deduplicated."""
    return _dedupe(([facts.eos_token] if facts.eos_token else []) + list(spec.stop_words))


def _dedupe(words: Sequence[str]) -> list[str]:
    out: list[str] = []
    for word in words:
        if word and word not in out:
            out.append(word)
    return out


def _closes_triple_quote(value: str) -> bool:
    """Whether ``value`` written as ``\"\"\"value\"\"\"`` would end early in Ollama's Modelfile parser.

    ``parser/parser.go::ParseFile`` re-checks the value at every line break (spaces never end it):
    the value ends as soon as the text so far, trimmed, is at least six characters long and starts
    and ends with ``\"\"\"``. So a ``\"\"\"`` followed only by whitespace up to a line break inside
    ``value`` would end it there. There are no escapes to avoid that.
    """
    for i, ch in enumerate(value):
        if ch in "\r\n":
            so_far = ('"""' + value[:i]).rstrip()
            if len(so_far) >= 6 and so_far.endswith('"""'):
                return True
    return False


def _parser_value(spec: TemplateSpec, what: str, value: str) -> str:
    """A Modelfile value that ``ParseFile`` reads back as ``value`` (``unquote`` does no escaping)."""
    bad = sorted({c for c in value if not go_printable(c) and c not in "\n\r\t"})
    if bad:
        raise UnsupportedTemplateError(
            spec.name,
            f"{what} contains characters the Modelfile parser drops ({', '.join(repr(c) for c in bad)})",
            "modelfile",
        )
    if value and '"' not in value and "\n" not in value and "\r" not in value:
        return '"' + value + '"'
    if _closes_triple_quote(value):
        raise UnsupportedTemplateError(
            spec.name,
            f"{what} cannot be quoted in a Modelfile: it holds a triple quote that would end the value",
            "modelfile",
        )
    return '"""' + value + '"""'


def ollama_parser(spec: TemplateSpec) -> str | None:
    """The built-in Ollama parser whose format is LF's trained one, if any.

    Only ``model/parsers/qwen3.go`` was checked against LF's output format: ``<think>``/``</think>``
    thoughts (a leading ``<think>`` is stripped when the prompt did not open it) and
    ``<tool_call>`` + ``{"name", "arguments"}`` JSON + ``</tool_call>``, which is LF's ``qwen`` tool
    format. Every other template gets no PARSER line (Ollama then derives thinking tags and tool-call
    parsing from the TEMPLATE itself).
    """
    if spec.function.tool_format != "qwen":
        return None
    if spec.is_reasoning and spec.enable_thinking is not False:
        if tuple(w.strip() for w in spec.thought_words) == ("<think>", "</think>"):
            return "qwen3-thinking"
        return None
    return "qwen3"


#: What Ollama does with media instead of the TEMPLATE (server/prompt.go, ``api.Message.Images``).
OLLAMA_MEDIA = (
    "Ollama takes images beside the message text and puts them into the prompt itself (image tags or its own "
    "model code, in front of the message text), never through the TEMPLATE, which sees only the text"
)


def media_reason(spec: TemplateSpec) -> str | None:
    """Why this Modelfile does not serve the template's media parts as trained (``None``: text-only template)."""
    from ..model.media import engine_media_reason

    return engine_media_reason(spec.media, "Ollama's Modelfile", OLLAMA_MEDIA)


def modelfile(
    spec: TemplateSpec,
    facts: TokenizerFacts,
    *,
    from_: str = ".",
    stop_words: list[str],
    cutoff_len: int | None,
    jinja_may_take_over: bool,
    engine_adds_bos: bool = False,
    adapter: str | None = None,
    parameters: tuple[tuple[str, str], ...] = (),
) -> str:
    """A complete Ollama Modelfile for a model fine-tuned with LF template ``spec``.

    ``parameters``: extra ``PARAMETER name value`` lines (the sampling LF's chat uses,
    ``model.generation.modelfile_parameters``).

    ``stop_words``: pass :func:`default_stop_words` (eos first, then LF's stop words); they are
    written one ``PARAMETER stop`` each, deduplicated, in that order. ``cutoff_len``: the serving context
    asked for, written as ``num_ctx`` (``None``: no ``num_ctx`` line; training's cutoff_len is not a
    serving limit). ``adapter``: a LoRA adapter dir for an ``ADAPTER`` line (``from_`` is then the base). ``jinja_may_take_over``: the
    GGUF carries a ``tokenizer.chat_template``; Ollama >= 0.30 may then prefer it over this TEMPLATE
    (``server/images.go::shouldPreferChatTemplate``), which a comment explains.
    """
    tpl = go_template(spec, facts, engine_adds_bos=engine_adds_bos)
    if _closes_triple_quote(tpl.text):  # go_lit never writes '"'; only thought words are raw text
        raise UnsupportedTemplateError(spec.name, 'the TEMPLATE would contain a closing """', "modelfile")
    lines = [
        f"# Generated by {PREFIX} {__version__} from LLaMA-Factory {spec.lf_version or '?'} template '{spec.name}'.",
        "# The TEMPLATE renders the token ids LF trained on; see the comments at its top for what it does not reproduce.",
    ]
    if from_.strip() != from_ or '"' in from_ or "\n" in from_:
        raise UnsupportedTemplateError(spec.name, f"FROM path {from_!r} cannot be written in a Modelfile", "modelfile")
    lines.append(f"FROM {from_}")
    if adapter is not None:
        if adapter.strip() != adapter or '"' in adapter or "\n" in adapter:
            raise UnsupportedTemplateError(spec.name, f"ADAPTER path {adapter!r} cannot be written in a Modelfile", "modelfile")
        lines.append(f"ADAPTER {adapter}")
    lines.append('TEMPLATE """' + tpl.text + '"""')
    media = media_reason(spec)
    if media:
        lines.append("# Text only: " + media.replace("\n", " ") + ".")
    lines.append(
        "# No SYSTEM line: the TEMPLATE applies LF's default system itself, also for an empty system message "
        "(Ollama injects SYSTEM only when the first message is not a system message)."
    )
    for word in _dedupe(stop_words):
        lines.append("PARAMETER stop " + _parser_value(spec, f"stop word {word!r}", word))
    for name, value in parameters:
        lines.append(f"PARAMETER {name} {value}")
    if cutoff_len:
        lines.append(f"PARAMETER num_ctx {int(cutoff_len)}")
    else:
        lines.append(
            "# num_ctx not set: Ollama's default context applies (set one with `lf-template emit --max-model-len N`; "
            "training's cutoff_len only truncated training samples)."
        )
    parser = ollama_parser(spec)
    if parser:
        lines.append(f"# Ollama's built-in '{parser}' parser reads LF's trained thought and tool-call format.")
        lines.append(f"PARSER {parser}")
    else:
        lines.append(
            "# No PARSER line: no built-in Ollama parser is known to match this template's trained tool-call/thinking "
            "format; Ollama derives both from the TEMPLATE."
        )
    if jinja_may_take_over and not parser:
        caps = [c for c, on in (("tools", tpl.mentions_tools), ("thinking", tpl.thinking_tags is not None)) if on]
        lines.append(
            "# The GGUF also carries a Jinja chat template. Ollama >= 0.30 renders with it instead of this TEMPLATE when "
            "it mentions tools or thinking and this TEMPLATE does not (this one has: "
            + (", ".join(caps) or "neither")
            + "). Start the server with OLLAMA_GO_TEMPLATE=1 to always use this TEMPLATE."
        )
    return "\n".join(lines) + "\n"


def _bare_tools_code(spec: TemplateSpec, facts: TokenizerFacts, tools_fmt: Optional[str], js: Any) -> Optional[str]:
    """The "lf_tools" code with LF's ``tool_text.lstrip("\\n")`` applied (no system message), or ``None``.

    Only for a tool prompt (``tool_prompt``) that the format's writer uses and that starts with literal
    text: the leading newlines are dropped from that text at compile time. A prompt that is all newlines up
    to a field would need the field's value stripped at render time, which Go templates cannot do.
    """
    import dataclasses

    if tools_fmt is None or tools_fmt == "string" or tools_fmt not in TOOL_FORMATS or not spec.tool_prompt:
        return None
    pieces = list(spec.tool_prompt)
    while pieces and pieces[0][0] == "text" and pieces[0][1].startswith("\n"):
        stripped = pieces[0][1].lstrip("\n")
        if stripped:
            pieces[0] = ("text", stripped)
            break
        pieces.pop(0)
    if not pieces or pieces[0][0] != "text":
        return None
    sentinel = "lf-template-ext-probe-7f3a9c"
    probe = dataclasses.replace(spec, tool_prompt=(("text", sentinel),) + spec.tool_prompt)
    if sentinel not in tools_define(probe, facts, tools_fmt, GoJson(spec)):  # the writer ignores tool_prompt
        return None
    return tools_define(dataclasses.replace(spec, tool_prompt=tuple(pieces)), facts, tools_fmt, js)
