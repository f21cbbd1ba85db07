"""Building blocks for emitting Jinja source safely.

Only text that comes from the *template* (slot strings, default system, stop words, token
texts, tool prompts) is ever written into Jinja source, and always through :func:`lit`, so
no value can close a string, open a tag or inject code. Message content never enters the
source: it is a render-time variable.

Every emitted tag strips the whitespace around it (``{%- ... -%}`` / ``{{- ... -}}``), so
the rendering does not depend on ``trim_blocks``/``lstrip_blocks`` (HF and vLLM set both,
torchtune sets neither) and the source can be indented for people to read.
"""

from __future__ import annotations

from collections.abc import Iterable

from .writer import BlockWriter

_ESCAPES = {
    "\\": "\\\\",
    '"': '\\"',
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}


def lit(text: str) -> str:
    """Return a double-quoted Jinja string literal that evaluates to ``text``.

    Jinja decodes string literals with Python's ``unicode-escape`` after normalising raw
    newlines, so backslash, quote and line breaks must be escaped; other control characters
    are written as ``\\xNN``/``\\uNNNN``. Printable non-ASCII characters stay readable (a
    Chinese default system prompt remains legible in the template).
    """
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F or 0x80 <= ord(ch) < 0xA0 or ch in "\u2028\u2029\ufeff":
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
        elif 0xD800 <= ord(ch) <= 0xDFFF:  # lone surrogate: only expressible as an escape
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def concat(parts: Iterable[str]) -> str:
    """Join Jinja expressions with ``~`` (string concatenation); ``""`` when empty."""
    items = [p for p in parts if p]
    if not items:
        return '""'
    return " ~ ".join(items)


def comment_safe(text: str) -> str:
    """Make ``text`` safe inside a ``{# ... #}`` comment."""
    return text.replace("#}", "# }").replace("{#", "{ #")


class JinjaWriter(BlockWriter):
    """Accumulates indented lines of whitespace-controlled Jinja tags."""

    indent = "    "
    language = "Jinja"

    def _statement(self, body: str) -> str:
        return "{%- " + body + " -%}"

    def _comment(self, text: str) -> str:
        return "{#- " + comment_safe(text) + " -#}"

    def out(self, expr: str) -> None:
        """Write the value of Jinja expression ``expr`` (nothing for an empty one)."""
        if expr and expr != '""':
            self._add("{{- " + expr + " -}}")

    def raw(self, text: str) -> None:
        """Insert ready-made Jinja source (macros), each line indented at the current depth."""
        for line in text.splitlines():
            if line:
                self._add(line)
            else:
                self._lines.append(line)
