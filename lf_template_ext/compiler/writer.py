"""The block writer shared by the Jinja and the Go template emitters.

Both emitters write one tag per line, indented by block depth so that people can read the
source, and every tag trims the whitespace around it, so the indentation and line breaks never
reach the rendered text. What differs is only the syntax of a statement and of a comment (and
the indent width); subclasses supply those (``jinja_text.JinjaWriter``, ``go_text.GoWriter``).
"""

from __future__ import annotations


class BlockWriter:
    """Indented lines of whitespace-trimming tags, with block nesting checked at the end."""

    #: One level of indentation.
    indent = "    "
    #: The template language, for the unbalanced-blocks error.
    language = "template"

    def __init__(self) -> None:
        self._lines: list[str] = []
        self._depth = 0

    # -- syntax (subclasses) ----------------------------------------------------------------------

    def _statement(self, body: str) -> str:
        """The tag that runs statement ``body`` (``if ...``, ``set ...``, ``end``...)."""
        raise NotImplementedError

    def _comment(self, text: str) -> str:
        """The tag that holds ``text`` as a comment (which must not be able to end it early)."""
        raise NotImplementedError

    # -- layout -----------------------------------------------------------------------------------

    def _add(self, line: str) -> None:
        self._lines.append(self.indent * self._depth + line)

    def stmt(self, body: str) -> None:
        self._add(self._statement(body))

    def comment(self, text: str) -> None:
        self._add(self._comment(text))

    def open(self, body: str) -> None:
        """A statement that opens a block (``if``, ``for``/``range``): what follows is nested."""
        self.stmt(body)
        self._depth += 1

    def mid(self, body: str) -> None:
        """A statement between two parts of a block (``else``, ``elif``/``else if``)."""
        self._depth -= 1
        self.stmt(body)
        self._depth += 1

    def close(self, body: str) -> None:
        """The statement that ends the innermost block."""
        self._depth -= 1
        self.stmt(body)

    def text(self) -> str:
        if self._depth != 0:
            raise AssertionError(f"unbalanced {self.language} blocks (depth {self._depth})")
        return "\n".join(self._lines) + "\n"
