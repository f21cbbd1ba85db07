"""Building blocks for emitting Go ``text/template`` source for Ollama safely (pure).

Only text that comes from the *template* (slot strings, default system, token texts, tool
prompts) is written into the source, and always as a Go string literal (:func:`go_lit`), except
the thought words that ``ollama.go_template`` checks and writes raw for Ollama's
``thinking.InferTags``. Message content never enters the source: it is a template field.

Every action trims the whitespace around it (``{{- ... -}}``), so the source can be indented for
people to read.
"""

from __future__ import annotations

import unicodedata

from ..errors import UnsupportedTemplateError
from ..model.spec import FormatterSpec, TemplateSpec, TokenizerFacts
from .slots import walk_slots
from .writer import BlockWriter

PREFIX = "lf-template-ext"


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
    chars = ['"']
    for ch in text:
        o = ord(ch)
        if ch == "\\":
            chars.append("\\\\")
        elif ch == '"':
            chars.append("\\x22")
        elif ch == "\n":
            chars.append("\\n")
        elif ch == "\r":
            chars.append("\\r")
        elif ch == "\t":
            chars.append("\\t")
        elif 0xD800 <= o <= 0xDFFF:
            raise UnsupportedTemplateError("", f"a lone surrogate (U+{o:04X}) cannot be written in a Go string")
        elif go_printable(ch) and ch not in "\u2028\u2029":
            chars.append(ch)
        elif o < 0x80:
            chars.append(f"\\x{o:02x}")
        elif o < 0x10000:
            chars.append(f"\\u{o:04x}")
        else:
            chars.append(f"\\U{o:08x}")
    chars.append('"')
    return "".join(chars)


def comment_safe(text: str) -> str:
    """Text for a ``{{/* */}}`` comment: ASCII-printable, no ``*/``."""
    safe = "".join(ch if 0x20 <= ord(ch) < 0x7F else "?" for ch in text)
    return safe.replace("*/", "* /")


def out(text: str) -> str:
    """An action that writes the literal ``text`` (nothing for an empty string)."""
    return "{{- " + go_lit(text) + " -}}" if text else ""


def fail(spec: TemplateSpec, rule: str) -> str:
    """An action that stops rendering with ``rule`` in Ollama's error message.

    Executing an undefined template is an error that quotes the name; Go templates have no other way
    to raise (``parse.TemplateNode`` with a pipeline, so Ollama's ``Identifiers`` accepts it).
    """
    return "{{- template " + go_lit(f"{PREFIX} (LF template '{spec.name}'): {rule}") + " . -}}"


class GoWriter(BlockWriter):
    """Indented lines of whitespace-trimming actions (``{{- ... -}}``): layout never reaches the output."""

    indent = "  "
    language = "Go template"

    def _statement(self, body: str) -> str:
        return "{{- " + body + " -}}"

    def _comment(self, text: str) -> str:
        return "{{- /* " + comment_safe(text) + " */ -}}"

    def line(self, text: str) -> None:
        """Write ready-made Go template code (nothing for an empty string)."""
        if text:
            self._add(text)

    def close(self, body: str = "end") -> None:
        super().close(body)


def slot_code(
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
    walk = walk_slots(fmt, facts, spec.name, where, first_slot_only=first_slot_only, skip_leading_bos=skip_leading_bos)
    for kind, value in walk:
        if kind == "token":
            pieces.append(out(value))
        elif "{{idx}}" in value:
            raise UnsupportedTemplateError(
                spec.name, "a {{idx}} slot needs the turn index, and Go templates have no arithmetic", where
            )
        elif "{{content}}" in value:
            before, after = value.split("{{content}}", 1)
            pieces += [out(before), content, out(after)]
        else:
            pieces.append(out(value))
    return "".join(p for p in pieces if p)
