"""TemplateSpec + TokenizerFacts -> an Ollama ``TEMPLATE`` (Go ``text/template``) and ``Modelfile`` (pure).

The template reproduces LF's *training* encoding (CONTRACTS.md "Reference ids"), like the Jinja
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
  ``num_ctx`` is set to LF's ``cutoff_len`` so that only conversations longer than anything the model
  was trained on are refused.
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

Everything here is pure: no file I/O, no LF import.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from .._version import __version__
from .slots import token_text
from ..model.spec import FormatterSpec, SpecialToken, TemplateSpec, Text, TokenizerFacts, TokenRef
from ..errors import UnsupportedTemplateError

PREFIX = "lf-template-ext"

#: Feature names used in ``OllamaTemplate.supports`` / ``normalised``.
FEATURES = ("plain", "system", "gen_prompt", "full", "tools", "tool_calls", "tool_results", "reasoning")

#: Tool formats whose JSON this module can write (all of LF 0.9.5's).
TOOL_FORMATS = frozenset(
    {
        "default",
        "qwen",
        "ling",
        "glm4_moe",
        "qwen3_5",
        "mistral",
        "llama3",
        "glm4",
        "minimax1",
        "minimax2",
        "seed_oss",
        "lfm2",
        "gemma4",
    }
)

#: Nesting depth up to which ``indent=4`` JSON (Llama-3 and GLM-4 tool lists) is generated.
MAX_INDENT_DEPTH = 8

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


# -- Go text --------------------------------------------------------------------------------------


def go_printable(ch: str) -> bool:
    """Go's ``unicode.IsPrint``: letters, marks, numbers, punctuation, symbols and ASCII space.

    Ollama's Modelfile parser (``parser/parser.go::ParseFile``) silently drops every other rune from
    a value (only space, tab and line breaks survive), so nothing else may appear raw in the TEMPLATE.
    """
    return ch == " " or unicodedata.category(ch)[0] in "LMNPS"


def go_lit(text: str) -> str:
    """A Go interpreted string literal that evaluates to ``text``.

    ``"`` is written as ``\\x22`` so that a ``\"\"\"`` can never appear in the template text (the
    Modelfile's TEMPLATE is triple-quoted); non-printable runes are escaped for the reason in
    :func:`go_printable`.
    """
    out = ['"']
    for ch in text:
        o = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append("\\x22")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif 0xD800 <= o <= 0xDFFF:
            raise UnsupportedTemplateError("", f"a lone surrogate (U+{o:04X}) cannot be written in a Go string")
        elif go_printable(ch) and ch not in "\u2028\u2029":
            out.append(ch)
        elif o < 0x80:
            out.append(f"\\x{o:02x}")
        elif o < 0x10000:
            out.append(f"\\u{o:04x}")
        else:
            out.append(f"\\U{o:08x}")
    out.append('"')
    return "".join(out)


def _comment_safe(text: str) -> str:
    """Text for a ``{{/* */}}`` comment: ASCII-printable, no ``*/``."""
    safe = "".join(ch if 0x20 <= ord(ch) < 0x7F else "?" for ch in text)
    return safe.replace("*/", "* /")


def _out(text: str) -> str:
    """An action that writes the literal ``text`` (nothing for an empty string)."""
    return "{{- " + go_lit(text) + " -}}" if text else ""


def _fail(spec: TemplateSpec, rule: str) -> str:
    """An action that stops rendering with ``rule`` in Ollama's error message.

    Executing an undefined template is an error that quotes the name; Go templates have no other way
    to raise (``parse.TemplateNode`` with a pipeline, so Ollama's ``Identifiers`` accepts it).
    """
    return "{{- template " + go_lit(f"{PREFIX} (LF template '{spec.name}'): {rule}") + " . -}}"


class _GoWriter:
    """Indented lines of whitespace-trimming actions (``{{- ... -}}``): layout never reaches the output."""

    def __init__(self) -> None:
        self._lines: list[str] = []
        self._depth = 0

    def line(self, text: str) -> None:
        if text:
            self._lines.append("  " * self._depth + text)

    def stmt(self, body: str) -> None:
        self.line("{{- " + body + " -}}")

    def open(self, body: str) -> None:
        self.stmt(body)
        self._depth += 1

    def mid(self, body: str) -> None:
        self._depth -= 1
        self.stmt(body)
        self._depth += 1

    def close(self) -> None:
        self._depth -= 1
        self.stmt("end")

    def comment(self, text: str) -> None:
        self.line("{{- /* " + _comment_safe(text) + " */ -}}")

    def text(self) -> str:
        if self._depth:
            raise AssertionError(f"unbalanced Go template blocks (depth {self._depth})")
        return "\n".join(self._lines) + "\n"


# -- slots ----------------------------------------------------------------------------------------


def _slot_code(
    fmt: FormatterSpec,
    facts: TokenizerFacts,
    spec: TemplateSpec,
    where: str,
    content: str = "",
    *,
    first_slot_only: bool = False,
    skip_leading_bos: bool = False,
) -> str:
    """Go code writing ``"".join(fmt.apply(content=...))`` (``StringFormatter.apply`` semantics).

    ``content`` is Go code that writes the content; only the first ``{{content}}`` of a slot is
    replaced, as in LF. ``{"bos_token"}``/``{"eos_token"}`` and ``{"token": x}`` become the token
    text (checked to tokenize back to one id, as the Jinja compiler does).
    """
    pieces: list[str] = []
    slots = fmt.slots[:1] if first_slot_only else fmt.slots
    for n, slot in enumerate(slots):
        if isinstance(slot, Text):
            if "{{idx}}" in slot.text:
                raise UnsupportedTemplateError(
                    spec.name, "a {{idx}} slot needs the turn index, and Go templates have no arithmetic", where
                )
            if "{{content}}" in slot.text:
                before, after = slot.text.split("{{content}}", 1)
                pieces += [_out(before), content, _out(after)]
            else:
                pieces.append(_out(slot.text))
        elif isinstance(slot, SpecialToken):
            if slot.which == "none":
                continue
            tok = facts.bos_token if slot.which == "bos" else facts.eos_token
            if tok is None:
                continue
            if skip_leading_bos and n == 0 and slot.which == "bos":
                continue
            pieces.append(_out(token_text(tok, facts, spec.name, f"{where} {slot.which}_token")))
        elif isinstance(slot, TokenRef):
            pieces.append(_out(token_text(slot.token, facts, spec.name, where)))
        else:  # pragma: no cover - spec construction guarantees the types
            raise TypeError(f"unknown slot {slot!r}")
    return "".join(p for p in pieces if p)


# -- JSON as Python writes it ---------------------------------------------------------------------


class _Json:
    """Go ``define`` blocks that write Ollama's tool structs and decoded values as ``json.dumps``.

    Style ``compact`` is ``json.dumps(v, ensure_ascii=False)`` (``", "``/``": "`` separators); style
    ``indent`` is ``json.dumps(v, indent=4, ensure_ascii=False)``, generated per nesting depth because a
    Go template cannot pass the depth along. Maps range in sorted key order, so objects come out with
    sorted keys (the contract stated in the module docstring). Defines are generated on demand.
    """

    def __init__(self, spec: TemplateSpec) -> None:
        self.spec = spec
        self._wanted: list[tuple[str, str, int]] = []
        self._done: set[str] = set()

    def name(self, kind: str, style: str, depth: int = 0) -> str:
        key = (kind, style, depth if style == "indent" else 0)
        n = f"lf_json_{style}_{kind}" + (str(key[2]) if style == "indent" else "")
        if n not in self._done and key not in self._wanted:
            self._wanted.append(key)
        return n

    def call(self, kind: str, style: str, depth: int, arg: str) -> str:
        return "{{- template " + go_lit(self.name(kind, style, depth)) + " " + arg + " -}}"

    # separators: before the first item, between items, before the closing bracket
    @staticmethod
    def _seps(style: str, depth: int) -> tuple[str, str, str]:
        if style == "compact":
            return "", ", ", ""
        return "\n" + "    " * (depth + 1), ",\n" + "    " * (depth + 1), "\n" + "    " * depth

    def _object(self, style: str, depth: int, fields: Sequence[tuple[str, str | None, str]]) -> str:
        first, sep, close = self._seps(style, depth)
        code = '{{- "{" -}}{{- $sep := ' + go_lit(first) + " -}}"
        for key, cond, value in fields:
            body = "{{- $sep -}}" + _out(json.dumps(key) + ": ") + value + "{{- $sep = " + go_lit(sep) + " -}}"
            code += ("{{- if " + cond + " -}}" + body + "{{- end -}}") if cond else body
        if close:
            code += "{{- if ne $sep " + go_lit(first) + " -}}" + _out(close) + "{{- end -}}"
        return code + '{{- "}" -}}'

    def array(self, style: str, depth: int, items: str, item_code: str, var: str = "$x") -> str:
        """A JSON array at ``depth`` of the Go list ``items``; ``item_code`` writes ``var``."""
        first, sep, close = self._seps(style, depth)
        code = '{{- "[" -}}{{- $ls := ' + go_lit(first) + " -}}"
        code += (
            "{{- range "
            + var
            + " := "
            + items
            + " -}}{{- $ls -}}"
            + item_code
            + "{{- $ls = "
            + go_lit(sep)
            + " -}}{{- end -}}"
        )
        if close:
            code += "{{- if ne $ls " + go_lit(first) + " -}}" + _out(close) + "{{- end -}}"
        return code + '{{- "]" -}}'

    def _map(self, style: str, depth: int, value_kind: str) -> str:
        first, sep, close = self._seps(style, depth)
        code = '{{- "{" -}}{{- $sep := ' + go_lit(first) + " -}}"
        code += (
            "{{- range $k, $v := . -}}{{- $sep -}}{{- json $k -}}"
            + _out(": ")
            + self.call(value_kind, style, depth + 1, "$v")
            + "{{- $sep = "
            + go_lit(sep)
            + " -}}{{- end -}}"
        )
        if close:
            code += "{{- if ne $sep " + go_lit(first) + " -}}" + _out(close) + "{{- end -}}"
        return code + '{{- "}" -}}'

    def _body(self, kind: str, style: str, d: int) -> str:
        present = lambda field: "ne (json " + field + ') "null"'
        if kind == "any":  # a value decoded by encoding/json into `any`
            return (
                '{{- $t := printf "%T" . -}}'
                '{{- if eq $t "map[string]interface {}" -}}'
                + self._map(style, d, "any")
                + '{{- else if eq $t "[]interface {}" -}}'
                + self.array(style, d, ".", self.call("any", style, d + 1, "$x"))
                + "{{- else -}}{{- json . -}}{{- end -}}"
            )
        if kind == "obj":  # a map known to be an object (templateArgs), whatever its Go type name
            return self._map(style, d, "any")
        if kind == "props":  # map[string]api.ToolProperty
            return self._map(style, d, "prop")
        if kind == "prop":  # api.ToolProperty, fields in sorted key order
            strs = lambda field: self.array(style, d + 1, field, "{{- json $x -}}")
            return self._object(
                style,
                d,
                [
                    (
                        "anyOf",
                        present(".AnyOf"),
                        self.array(style, d + 1, ".AnyOf", self.call("prop", style, d + 2, "$x")),
                    ),
                    ("description", ".Description", "{{- json .Description -}}"),
                    ("enum", present(".Enum"), self.call("any", style, d + 1, ".Enum")),
                    ("items", present(".Items"), self.call("any", style, d + 1, ".Items")),
                    ("properties", ".Properties", self.call("props", style, d + 1, ".Properties.ToMap")),
                    ("required", present(".Required"), strs(".Required")),
                    (
                        "type",
                        present(".Type"),
                        "{{- if eq (len .Type) 1 -}}{{- json (index .Type 0) -}}{{- else -}}"
                        + strs(".Type")
                        + "{{- end -}}",
                    ),
                ],
            )
        if kind == "params":  # templateToolFunctionParameters
            return self._object(
                style,
                d,
                [
                    ("$defs", present(".Defs"), self.call("any", style, d + 1, ".Defs")),
                    ("items", present(".Items"), self.call("any", style, d + 1, ".Items")),
                    ("properties", present(".Properties"), self.call("props", style, d + 1, ".Properties")),
                    ("required", present(".Required"), self.array(style, d + 1, ".Required", "{{- json $x -}}")),
                    ("type", ".Type", "{{- json .Type -}}"),
                ],
            )
        if kind == "fn":  # templateToolFunction
            return self._object(
                style,
                d,
                [
                    ("description", ".Description", "{{- json .Description -}}"),
                    ("name", None, "{{- json .Name -}}"),
                    ("parameters", None, self.call("params", style, d + 1, ".Parameters")),
                ],
            )
        if kind == "tool":  # templateTool: the OpenAI-shaped {"type": "function", "function": {...}}
            return self._object(
                style,
                d,
                [
                    ("function", None, self.call("fn", style, d + 1, ".Function")),
                    ("items", present(".Items"), self.call("any", style, d + 1, ".Items")),
                    ("type", ".Type", "{{- json .Type -}}"),
                ],
            )
        raise AssertionError(kind)

    def defines(self) -> list[str]:
        out = []
        while self._wanted:
            kind, style, d = self._wanted.pop(0)
            n = f"lf_json_{style}_{kind}" + (str(d) if style == "indent" else "")
            if n in self._done:
                continue
            self._done.add(n)
            if style == "indent" and d > MAX_INDENT_DEPTH:
                body = _fail(
                    self.spec, f"tool JSON nested deeper than {MAX_INDENT_DEPTH} levels cannot be written with indent=4"
                )
            else:
                body = self._body(kind, style, d)
            out.append("{{- define " + go_lit(n) + " -}}" + body + "{{- end -}}")
        return out


# -- tool formats ---------------------------------------------------------------------------------


def _unwrapped(spec: TemplateSpec) -> str:
    """Refuse a tool that is not OpenAI-shaped: Ollama keeps only ``type`` and ``function``."""
    return (
        "{{- if ne .Type "
        + go_lit("function")
        + " -}}"
        + _fail(spec, 'only tools of type "function" can be written (Ollama keeps no other tool shape)')
        + "{{- end -}}"
    )


def _unwrapped_item(spec: TemplateSpec) -> str:
    """``_unwrapped`` for a tool bound to ``$x`` (inside ``_Json.array``)."""
    return (
        "{{- if ne $x.Type "
        + go_lit("function")
        + " -}}"
        + _fail(spec, 'only tools of type "function" can be written (Ollama keeps no other tool shape)')
        + "{{- end -}}"
    )


def _each_tool(spec: TemplateSpec, body: str, sep: str = "") -> str:
    """Range over the tools (dot: the list), dot inside = one ``templateTool``."""
    head = "{{- range $j, $t := . -}}" + _unwrapped(spec)
    if sep:
        head += "{{- if $j -}}" + _out(sep) + "{{- end -}}"
    return head + body + "{{- end -}}"


def _prompt(spec: TemplateSpec, fields: dict[str, str]) -> str:
    """``PROMPT.format(**fields)`` from the prompt pieces LF's installed version uses."""
    code = ""
    for kind, value in spec.tool_prompt:
        if kind == "text":
            code += _out(value)
        elif value in fields:
            code += fields[value]
        else:
            raise UnsupportedTemplateError(
                spec.name, f"tool prompt field {{{value}}} is not known to {PREFIX}", "tools"
            )
    return code


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _llama3_date() -> str:
    """``datetime.now().strftime("%d %b %Y")`` from Ollama's ``currentDate`` (``2006-01-02`` layout)."""
    code = "{{- $date := currentDate -}}{{- slice $date 8 10 -}}" + _out(" ")
    code += "{{- $mm := slice $date 5 7 -}}"
    for i, month in enumerate(_MONTHS, 1):
        code += ("{{- if" if i == 1 else "{{- else if") + " eq $mm " + go_lit(f"{i:02d}") + " -}}" + _out(month)
    return code + "{{- end -}}" + _out(" ") + "{{- slice $date 0 4 -}}"


def _gemma4_upper(value: str) -> str:
    """``str(t).upper()`` for a JSON-schema type name (Go templates have no upper-casing)."""
    names = ("string", "number", "integer", "boolean", "array", "object", "null")
    code = ""
    for i, n in enumerate(names):
        code += ("{{- if" if i == 0 else "{{- else if") + f" eq {value} " + go_lit(n) + " -}}" + _out(n.upper())
    return (
        code
        + "{{- else -}}{{- template "
        + go_lit(f"{PREFIX}: gemma4 tool types must be JSON-schema type names (no upper-casing in Go templates)")
        + " . -}}{{- end -}}"
    )


def _gemma4_type(field: str) -> str:
    """``str(schema["type"]).upper()`` of an Ollama ``PropertyType`` (one name, or a list)."""
    return (
        "{{- if eq (len "
        + field
        + ") 1 -}}"
        + _gemma4_upper("(index " + field + " 0)")
        + "{{- else -}}"
        + _out("[")
        + "{{- range $i, $y := "
        + field
        + " -}}{{- if $i -}}"
        + _out(", ")
        + "{{- end -}}"
        + _out("'")
        + _gemma4_upper("$y")
        + _out("'")
        + "{{- end -}}"
        + _out("]")
        + "{{- end -}}"
    )


def _tools_define(spec: TemplateSpec, facts: TokenizerFacts, fmt: str, js: _Json) -> str:
    """Go code (dot: ``.Tools``) writing ``format_tools.apply(content=tools)[0]``."""
    if spec.tools.kind == "string":  # phi4_mini: a StringFormatter gets the raw tools JSON
        tools_json = js.array("compact", 0, ".", js.call("tool", "compact", 1, "$x"))
        return _slot_code(spec.tools, facts, spec, "tools", tools_json, first_slot_only=True)
    if fmt == "default":
        prop = (
            _out("  - ")
            + "{{- $name -}}"
            + _out(" (")
            + "{{- if eq (len $p.Type) 1 -}}{{- index $p.Type 0 -}}{{- else if $p.Type -}}"
            + _out("[")
            + "{{- range $i, $y := $p.Type -}}{{- if $i -}}"
            + _out(", ")
            + "{{- end -}}"
            + _out("'")
            + "{{- $y -}}"
            + _out("'")
            + "{{- end -}}"
            + _out("]")
            + "{{- end -}}"
            + "{{- range $r := $f.Parameters.Required -}}{{- if eq $r $name -}}"
            + _out(", required")
            + "{{- break -}}{{- end -}}{{- end -}}"
            + _out("): ")
            + "{{- $p.Description -}}"
            + "{{- if $p.Enum -}}"
            + _out(", should be one of [")
            + "{{- range $i, $e := $p.Enum -}}{{- if $i -}}"
            + _out(", ")
            + "{{- end -}}{{- $e -}}{{- end -}}"
            + _out("]")
            + "{{- end -}}"
            + "{{- if $p.Items -}}"
            + _out(", where each item should be ")
            + '{{- with index $p.Items "type" -}}{{- . -}}{{- end -}}{{- end -}}'
            + _out("\n")
        )
        text = _each_tool(
            spec,
            "{{- $f := .Function -}}"
            + _out("> Tool Name: ")
            + "{{- $f.Name -}}"
            + _out("\nTool Description: ")
            + "{{- $f.Description -}}"
            + _out("\nTool Args:\n")
            + "{{- range $name, $p := $f.Parameters.Properties -}}"
            + prop
            + "{{- end -}}"
            + _out("\n"),
        )
        names = _each_tool(spec, "{{- .Function.Name -}}", sep=", ")
        return _prompt(spec, {"tool_text": text, "tool_names": names})
    if fmt in ("qwen", "ling", "glm4_moe"):
        text = _each_tool(spec, _out("\n") + js.call("tool", "compact", 0, "."))
        return _prompt(spec, {"tool_text": text}) + (_out("\ndetailed thinking off") if fmt == "ling" else "")
    if fmt == "qwen3_5":
        return _prompt(spec, {"tool_text": _each_tool(spec, _out("\n") + js.call("fn", "compact", 0, ".Function"))})
    if fmt == "mistral":
        return (
            _out("[AVAILABLE_TOOLS] ")
            + js.array("compact", 0, ".", js.call("tool", "compact", 1, "$x"))
            + _out("[/AVAILABLE_TOOLS]")
        )
    if fmt == "llama3":
        text = _each_tool(spec, js.call("tool", "indent", 0, ".") + _out("\n\n"))
        return _prompt(spec, {"tool_text": text, "date": _llama3_date()})
    if fmt == "glm4":
        text = _each_tool(
            spec,
            _out("\n\n## ")
            + "{{- .Function.Name -}}"
            + _out("\n\n")
            + js.call("fn", "indent", 0, ".Function")
            + _out("\n在调用上述函数时，请使用 Json 格式表示调用的参数。"),
        )
        return _prompt(spec, {"tool_text": text})
    if fmt == "minimax1":
        return _prompt(spec, {"tool_text": _each_tool(spec, js.call("fn", "compact", 0, ".Function") + _out("\n"))})
    if fmt == "minimax2":
        text = _each_tool(spec, _out("<tool>") + js.call("fn", "compact", 0, ".Function") + _out("</tool>\n"))
        return _prompt(spec, {"tool_text": text})
    if fmt == "seed_oss":
        text = _out("\n") + js.array("compact", 0, ".", _unwrapped_item(spec) + js.call("tool", "compact", 1, "$x"))
        return _prompt(spec, {"tool_text": text})
    if fmt == "lfm2":
        text = js.array("compact", 0, ".", _unwrapped_item(spec) + js.call("fn", "compact", 1, "$x.Function"))
        return _prompt(spec, {"tool_text": text})
    if fmt == "gemma4":
        prop = (
            "{{- $name -}}"
            + _out(":{")
            + '{{- $is := "" -}}'
            + "{{- if $p.Description -}}"
            + _out('description:<|"|>')
            + "{{- $p.Description -}}"
            + _out('<|"|>')
            + '{{- $is = "," -}}{{- end -}}'
            + "{{- if $p.Type -}}{{- $is -}}"
            + _out('type:<|"|>')
            + _gemma4_type("$p.Type")
            + _out('<|"|>')
            + "{{- end -}}"
            + _out("}")
        )
        decl = (
            _out("declaration:")
            + "{{- .Function.Name -}}"
            + _out('{description:<|"|>')
            + "{{- .Function.Description -}}"
            + _out('<|"|>')
            + "{{- $pp := .Function.Parameters -}}"
            + "{{- if or $pp.Properties $pp.Required $pp.Type -}}"
            + _out(",parameters:{")
            + '{{- $ps := "" -}}'
            + "{{- if $pp.Properties -}}"
            + _out("properties:{")
            + '{{- $qs := "" -}}{{- range $name, $p := $pp.Properties -}}{{- $qs -}}'
            + prop
            + '{{- $qs = "," -}}{{- end -}}'
            + _out("}")
            + '{{- $ps = "," -}}{{- end -}}'
            + "{{- if $pp.Required -}}{{- $ps -}}"
            + _out("required:[")
            + "{{- range $i, $r := $pp.Required -}}{{- if $i -}}"
            + _out(",")
            + "{{- end -}}"
            + _out('<|"|>')
            + "{{- $r -}}"
            + _out('<|"|>')
            + "{{- end -}}"
            + _out("]")
            + '{{- $ps = "," -}}{{- end -}}'
            + "{{- if $pp.Type -}}{{- $ps -}}"
            + _out('type:<|"|>')
            + _gemma4_upper("$pp.Type")
            + _out('<|"|>')
            + "{{- end -}}"
            + _out("}")
            + "{{- end -}}"
            + _out("}")
        )
        return _each_tool(spec, decl, sep="\n")
    raise UnsupportedTemplateError(spec.name, f"tool format {fmt!r} is not known to {PREFIX}", "tools")


def _per_argument(js: _Json, head: str, arg: str, tail: str, sep: str = "\n") -> str:
    """Formats that write each argument (``glm4_moe``, ``qwen3_5``, ``seed_oss``, ``minimax2``).

    ``arg`` may use ``$k`` and ``VALUE`` (LF's ``value if str else json.dumps(value)``).
    """
    value = (
        '{{- if eq (printf "%T" $v) "string" -}}{{- $v -}}{{- else -}}'
        + js.call("any", "compact", 0, "$v")
        + "{{- end -}}"
    )
    return (
        "{{- range $j, $c := . -}}{{- if $j -}}"
        + _out(sep)
        + "{{- end -}}"
        + head
        + "{{- range $k, $v := $c.Function.Arguments -}}"
        + arg.replace("VALUE", value)
        + "{{- end -}}"
        + tail
        + "{{- end -}}"
    )


def _name_args(js: _Json, args_key: str = "arguments") -> str:
    """``json.dumps({"name": n, args_key: a})`` for the call ``$c``."""
    return (
        _out('{"name": ')
        + "{{- json $c.Function.Name -}}"
        + _out(f', "{args_key}": ')
        + js.call("obj", "compact", 0, "$c.Function.Arguments")
        + _out("}")
    )


def _calls_define(spec: TemplateSpec, fmt: str, js: _Json) -> str:
    """Go code (dot: ``.ToolCalls``) writing ``tool_utils.function_formatter(calls)``."""
    if fmt == "default":
        return (
            "{{- range $j, $c := . -}}{{- if $j -}}"
            + _out("\n")
            + "{{- end -}}"
            + _out("Action: ")
            + "{{- $c.Function.Name -}}"
            + _out("\nAction Input: ")
            + js.call("obj", "compact", 0, "$c.Function.Arguments")
            + "{{- end -}}"
        )
    if fmt in ("qwen", "ling"):
        return (
            "{{- range $j, $c := . -}}{{- if $j -}}"
            + _out("\n")
            + "{{- end -}}"
            + _out("<tool_call>\n")
            + _name_args(js)
            + _out("\n</tool_call>")
            + "{{- end -}}"
        )
    if fmt == "mistral":
        return (
            _out("[")
            + "{{- range $j, $c := . -}}{{- if $j -}}"
            + _out(", ")
            + "{{- end -}}"
            + _name_args(js)
            + "{{- end -}}"
            + _out("]")
        )
    if fmt == "llama3":
        many = "{{- if gt (len .) 1 -}}" + _out("[") + "{{- end -}}"
        return (
            many
            + "{{- range $j, $c := . -}}{{- if $j -}}"
            + _out(", ")
            + "{{- end -}}"
            + _name_args(js, "parameters")
            + "{{- end -}}"
            + many.replace(go_lit("["), go_lit("]"))
        )
    if fmt == "glm4":
        return (
            "{{- if gt (len .) 1 -}}"
            + _fail(spec, "GLM-4 does not support parallel functions (LF refuses them too)")
            + "{{- end -}}{{- range $c := . -}}{{- $c.Function.Name -}}"
            + _out("\n")
            + js.call("obj", "compact", 0, "$c.Function.Arguments")
            + "{{- end -}}"
        )
    if fmt == "glm4_moe":
        return _per_argument(
            js,
            _out("\n<tool_call>") + "{{- $c.Function.Name -}}",
            _out("\n<arg_key>") + "{{- $k -}}" + _out("</arg_key>\n<arg_value>") + "VALUE" + _out("</arg_value>"),
            "",
        )
    if fmt == "qwen3_5":
        return _per_argument(
            js,
            _out("<tool_call>\n<function=") + "{{- $c.Function.Name -}}" + _out(">"),
            _out("\n<parameter=") + "{{- $k -}}" + _out(">\n") + "VALUE" + _out("\n</parameter>"),
            _out("\n</function>\n</tool_call>"),
        )
    if fmt == "seed_oss":
        return _per_argument(
            js,
            _out("\n<seed:tool_call>\n<function=") + "{{- $c.Function.Name -}}",
            _out("\n<parameter=") + "{{- $k -}}" + _out(">") + "VALUE" + _out("</parameter>"),
            _out("\n</function>\n</seed:tool_call>"),
        )
    if fmt == "minimax1":
        return (
            _out("<tool_calls>\n")
            + "{{- range $j, $c := . -}}{{- if $j -}}"
            + _out("\n")
            + "{{- end -}}"
            + _name_args(js)
            + "{{- end -}}"
            + _out("\n</tool_calls>")
        )
    if fmt == "minimax2":
        return _per_argument(
            js,
            _out('<invoke name="') + "{{- $c.Function.Name -}}" + _out('">'),
            _out('\n<parameter name="') + "{{- $k -}}" + _out('">') + "VALUE" + _out("</parameter>"),
            _out("\n</invoke>"),
        )
    if fmt == "lfm2":
        arg = (
            "{{- if $a -}}"
            + _out(", ")
            + "{{- end -}}{{- $a = true -}}{{- $k -}}"
            + '{{- if eq (printf "%T" $v) "string" -}}'
            + _out('="')
            + "{{- $v -}}"
            + _out('"')
            + "{{- else -}}"
            + _out("=")
            + js.call("any", "compact", 0, "$v")
            + "{{- end -}}"
        )
        return (
            _out("<|tool_call_start|>[")
            + "{{- range $j, $c := . -}}{{- if $j -}}"
            + _out(", ")
            + "{{- end -}}"
            + "{{- $c.Function.Name -}}"
            + _out("(")
            + "{{- $a := false -}}{{- range $k, $v := $c.Function.Arguments -}}"
            + arg
            + "{{- end -}}"
            + _out(")")
            + "{{- end -}}"
            + _out("]<|tool_call_end|>")
        )
    if fmt == "gemma4":
        return _gemma4_calls()
    raise UnsupportedTemplateError(spec.name, f"tool format {fmt!r} is not known to {PREFIX}", "tool calls")


def _gemma4_calls() -> str:
    """``Gemma4ToolUtils.function_formatter``: sorted keys, Python-like scalars, ``<|"|>`` string quotes."""
    return (
        "{{- range $c := . -}}"
        + _out("<|tool_call>call:")
        + "{{- $c.Function.Name -}}"
        + _out("{")
        + '{{- $s := "" -}}{{- range $k, $v := $c.Function.Arguments -}}{{- $s -}}{{- $k -}}'
        + _out(":")
        + '{{- template "lf_gemma4_arg" $v -}}{{- $s = "," -}}{{- end -}}'
        + _out("}<tool_call|>")
        + "{{- end -}}"
    )


_GEMMA4_ARG = (
    '{{- define "lf_gemma4_arg" -}}{{- $t := printf "%T" . -}}'
    '{{- if eq $t "string" -}}'
    + _out('<|"|>')
    + "{{- . -}}"
    + _out('<|"|>')
    + '{{- else if eq $t "bool" -}}{{- if . -}}'
    + _out("true")
    + "{{- else -}}"
    + _out("false")
    + "{{- end -}}"
    + '{{- else if eq $t "map[string]interface {}" -}}'
    + _out("{")
    + '{{- $s := "" -}}{{- range $k, $v := . -}}{{- $s -}}{{- $k -}}'
    + _out(":")
    + '{{- template "lf_gemma4_arg" $v -}}{{- $s = "," -}}{{- end -}}'
    + _out("}")
    + '{{- else if eq $t "[]interface {}" -}}'
    + _out("[")
    + '{{- $s := "" -}}{{- range $v := . -}}{{- $s -}}{{- template "lf_gemma4_arg" $v -}}{{- $s = "," -}}{{- end -}}'
    + _out("]")
    + '{{- else if eq $t "<nil>" -}}'
    + _out("null")
    + "{{- else -}}{{- . -}}{{- end -}}{{- end -}}"
)


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
    if spec.kind not in ("plain", "llama2", "reasoning", "glm47"):
        raise UnsupportedTemplateError(spec.name, f"template class {spec.kind!r} is not reproduced", "template class")
    if facts.split_special_tokens:
        raise UnsupportedTemplateError(
            spec.name,
            "the tokenizer was used with split_special_tokens=True; engines parse special-token text",
            "tokenizer",
        )
    reasoning = spec.kind in ("reasoning", "glm47")
    llama2 = spec.kind == "llama2"
    skip_bos = False
    if engine_adds_bos:
        first = spec.prefix.slots[0] if spec.prefix.slots else None
        if not (isinstance(first, SpecialToken) and first.which == "bos" and facts.bos_token is not None):
            raise UnsupportedTemplateError(
                spec.name,
                "the GGUF adds a BOS token (tokenizer.ggml.add_bos_token=true) but LF's encoding does not start with "
                "one; set add_bos_token to false in the GGUF metadata",
                "bos",
            )
        skip_bos = True

    # Llama2Template._encode passes no idx to format_user, so only the other classes have the quirk
    notes = ([] if llama2 else [IDX_NOTE]) + list(ALWAYS_NOTES)
    supports = {"plain", "system", "gen_prompt", "full"}
    normalised: set[str] = set()
    js = _Json(spec)
    defines: list[str] = []

    # -- tools ------------------------------------------------------------------------------------
    tools_fmt = (
        spec.tools.tool_format if spec.tools.kind == "tool" else ("string" if spec.tools.kind == "string" else None)
    )
    calls_fmt = spec.function.tool_format if spec.function.kind == "function" else None
    tools_code = calls_code = ""
    if tools_fmt is not None and (tools_fmt == "string" or tools_fmt in TOOL_FORMATS):
        tools_code = _tools_define(spec, facts, tools_fmt, js)
        supports.add("tools")
        normalised.add("tools")  # property order and tool keys come from Go maps: sorted
    else:
        notes.append(
            f"the tool list is not written (format_tools of kind {spec.tools.kind}); Ollama refuses requests with tools"
        )
    if calls_fmt in TOOL_FORMATS:
        calls_code = _calls_define(spec, calls_fmt, js)
        supports.add("tool_calls")
        if calls_fmt != "gemma4":  # gemma4 sorts argument keys itself
            normalised.add("tool_calls")
    else:
        notes.append("tool calls are refused: the template has no function formatter")
    supports.add("tool_results")
    if normalised:
        notes.append(JSON_NOTE)

    thinking_mode = None  # reasoning templates: how `think` maps onto LF's enable_thinking
    thinking_tags = None
    tw0, tw1 = spec.thought_words
    if reasoning:
        supports.add("reasoning")
        if spec.enable_thinking is not False:
            for word in (tw0, tw1):
                if "{{" in word or any(not go_printable(c) and c not in "\n\t" for c in word) or '"""' in word:
                    raise UnsupportedTemplateError(
                        spec.name, f"thought word {word!r} cannot be written as Go template text", "reasoning"
                    )
            thinking_tags = (tw0.strip(), tw1.strip())
            thinking_mode = "switch"
        else:
            thinking_mode = "off"
            notes.append("trained with enable_thinking=false: thoughts are never written and Ollama refuses think=true")
        if spec.discard_history_thoughts:
            notes.append("mask_history: thoughts of all but the last answer are dropped, as in training")

    # -- writer -----------------------------------------------------------------------------------
    w = _GoWriter()
    w.comment(_header(spec, frozenset(supports), frozenset(normalised)))
    for note in notes:
        w.comment("Not reproduced: " + note)
    if tools_code:
        defines.append('{{- define "lf_tools" -}}' + tools_code + "{{- end -}}")
    if calls_code:
        defines.append('{{- define "lf_calls" -}}' + calls_code + "{{- end -}}")
    if calls_fmt == "gemma4":
        defines.append(_GEMMA4_ARG)
    defines += js.defines()
    for d in defines:
        w.line(d)

    if spec.default_system:
        w.stmt("$system := or $.System " + go_lit(spec.default_system))
    else:
        w.stmt("$system := $.System")
    w.stmt("$first := true")
    w.stmt("$even := true")
    w.stmt('$last := ""')
    if reasoning:
        if thinking_mode == "off":
            w.stmt("$thinkOff := true")
        else:
            w.comment("think=false (explicitly set) selects LF's enable_thinking=false; otherwise training's value")
            w.stmt("$thinkOff := and $.IsThinkSet (not $.Think)")

    w.open("range $i, $m := .Messages")
    w.open("if .Images")
    w.line(
        _fail(spec, "images are not supported by this template (LF expands media with the processor before encoding)")
    )
    w.close()
    w.open('if eq .Role "system"')
    w.open("if not $first")
    w.line(
        _fail(
            spec,
            "a system message is only allowed as the first message (LF trains with one system prompt per conversation)",
        )
    )
    w.close()
    w.mid("else")
    # alternation
    w.open("if $even")
    w.open('if not (or (eq .Role "user") (eq .Role "tool"))')
    w.line(
        _fail(
            spec,
            "expected a user or tool message (LF alternates user/tool and assistant turns and cannot start with an "
            "assistant turn; if Ollama truncated a long conversation to fit num_ctx, shorten it or raise num_ctx)",
        )
    )
    w.close()
    w.mid('else if ne .Role "assistant"')
    w.line(
        _fail(
            spec,
            "expected an assistant message (LF alternates user/tool and assistant turns; merge the results of "
            "parallel tool calls into one tool message)",
        )
    )
    w.close()

    # prefix + system, in front of the first turn
    tools_text = '{{- if $.Tools -}}{{- template "lf_tools" $.Tools -}}{{- end -}}' if tools_code else ""
    system_content = "{{- $system -}}" + tools_text
    has_tools = "$.Tools" if tools_code else "false"
    w.open("if $first")
    w.line(_slot_code(spec.prefix, facts, spec, "prefix", skip_leading_bos=skip_bos))
    if not llama2:
        w.open(f"if or $system {has_tools}")
        w.line(_slot_code(spec.system, facts, spec, "system", system_content))
        w.close()
    w.close()

    # user
    w.open('if eq .Role "user"')
    if llama2:
        if not spec.system.slots or not isinstance(spec.system.slots[0], Text):
            raise UnsupportedTemplateError(spec.name, "Llama2-style templates need a text first system slot", "system")
        sys_text = (
            f"{{{{- if and $first (or $system {has_tools}) -}}}}"
            + _slot_code(spec.system, facts, spec, "system", system_content, first_slot_only=True)
            + "{{- end -}}"
        )
        w.line(_slot_code(spec.user, facts, spec, "user", sys_text + "{{- .Content -}}"))
    else:
        w.line(_slot_code(spec.user, facts, spec, "user", "{{- .Content -}}"))
    w.mid('else if eq .Role "tool"')
    w.line(_slot_code(spec.observation, facts, spec, "observation", "{{- .Content -}}"))
    w.mid("else")
    # assistant: thought + content (+ calls)
    if reasoning:
        # LF's ReasoningTemplate: a thought is kept unless thinking is off (or, with mask_history, the
        # answer is not the last one); an answer without a kept thought gets the empty thought (with
        # mask_history only the last answer does). `$m.Thinking`, not `.Thinking`: InferTags must see
        # only the one `.Thinking` below.
        if spec.discard_history_thoughts:
            w.stmt("$isLast := eq (len (slice $.Messages $i)) 1")
            w.stmt("$showThought := and (not $thinkOff) $isLast $m.Thinking")
            empty_cond = "and (not $showThought) $isLast"
        else:
            w.stmt("$showThought := and (not $thinkOff) $m.Thinking")
            empty_cond = "not $showThought"
        if thinking_mode == "off":
            thought = ""
        else:
            # literal text around {{ .Thinking }}: what thinking.InferTags reads (no trim markers inside)
            thought = "{{- if $showThought }}" + tw0 + "{{ .Thinking }}" + tw1 + "{{ end -}}"
        empty = "{{- if " + empty_cond + " -}}" + _out(spec.empty_thought) + "{{- end -}}"
    else:
        thought = "{{- if $m.Thinking -}}" + _out(tw0) + "{{- $m.Thinking -}}" + _out(tw1) + "{{- end -}}"
        empty = ""
    w.line(empty)
    w.open("if .ToolCalls")
    if not calls_code:
        w.line(_fail(spec, "this template has no function formatter for tool calls"))
    else:
        if not spec.function_gets_words:
            w.open("if or .Content .Thinking")
            w.line(
                _fail(
                    spec,
                    "an assistant message with tool_calls cannot also carry text or thinking in this template "
                    "(LF parses the whole turn as the call JSON)",
                )
            )
            w.close()
        w.line(
            _slot_code(
                spec.function,
                facts,
                spec,
                "function",
                thought + '{{- .Content -}}{{- template "lf_calls" .ToolCalls -}}',
            )
        )
    w.mid("else")
    w.line(_slot_code(spec.assistant, facts, spec, "assistant", thought + "{{- .Content -}}"))
    w.close()
    w.close()  # role
    w.stmt("$first = false")
    w.stmt("$even = not $even")
    w.stmt("$last = .Role")
    w.close()  # system / else
    w.close()  # range

    # generation prompt: LF's user/observation slot already ends with the assistant header
    if reasoning:
        trained_on = spec.enable_thinking
        cond = "$thinkOff" if trained_on is True else "true"
        w.open(f'if and (or (eq $last "user") (eq $last "tool")) {cond}')
        w.line(_out(spec.empty_thought))
        w.close()
    return OllamaTemplate(
        text=w.text(),
        supports=frozenset(supports),
        normalised=frozenset(normalised),
        notes=tuple(notes),
        thinking_tags=thinking_tags,
    )


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
    if spec.kind in ("reasoning", "glm47") and spec.enable_thinking is not False:
        if tuple(w.strip() for w in spec.thought_words) == ("<think>", "</think>"):
            return "qwen3-thinking"
        return None
    return "qwen3"


def modelfile(
    spec: TemplateSpec,
    facts: TokenizerFacts,
    *,
    from_: str = ".",
    stop_words: list[str],
    cutoff_len: int | None,
    jinja_may_take_over: bool,
    engine_adds_bos: bool = False,
) -> str:
    """A complete Ollama Modelfile for a model fine-tuned with LF template ``spec``.

    ``stop_words``: pass :func:`default_stop_words` (eos first, then LF's stop words); they are
    written one ``PARAMETER stop`` each, deduplicated, in that order. ``cutoff_len``: LF's training
    length, written as ``num_ctx`` (LF's own export hard-codes 4096). ``jinja_may_take_over``: the
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
    lines.append('TEMPLATE """' + tpl.text + '"""')
    lines.append(
        "# No SYSTEM line: the TEMPLATE applies LF's default system itself, also for an empty system message "
        "(Ollama injects SYSTEM only when the first message is not a system message)."
    )
    for word in _dedupe(stop_words):
        lines.append("PARAMETER stop " + _parser_value(spec, f"stop word {word!r}", word))
    if cutoff_len:
        lines.append(f"PARAMETER num_ctx {int(cutoff_len)}")
    else:
        lines.append("# num_ctx not set: LF's training cutoff_len is unknown (LF's own export writes 4096).")
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
