"""LF formatter slots -> Jinja expressions.

Mirrors ``StringFormatter.apply``: for each string slot, each keyword argument replaces the
*first* ``{{name}}`` occurrence, in the order LF passes them (``content`` then ``idx`` for
user turns). Because ``content`` goes in first, a literal ``{{idx}}`` typed by a user is
replaced by the turn index when the slot itself has none before it: an LF quirk we keep.

``{"bos_token"}``/``{"eos_token"}`` become the literal token text (as LF's own Jinja export
does: the template must not depend on a ``bos_token`` variable an engine may set
differently), ``{"token": x}`` becomes ``x`` when whole-string tokenization parses ``x``
back into the same single id.
"""

from __future__ import annotations

from typing import Optional

from ..errors import UnsupportedTemplateError
from .jinja_text import concat, lit
from ..model.spec import FormatterSpec, SpecialToken, Text, TokenizerFacts, TokenRef


def _text_slot(text: str, content: Optional[str], idx: Optional[str]) -> str:
    if content is not None and "{{content}}" in text:
        before, after = text.split("{{content}}", 1)
        if idx is None:
            return concat([lit(before) if before else "", f"({content})", lit(after) if after else ""])
        if "{{idx}}" in before:
            b1, b2 = before.split("{{idx}}", 1)
            return concat([lit(b1) if b1 else "", f"({idx})", lit(b2) if b2 else "", f"({content})", lit(after) if after else ""])
        if "{{idx}}" in after:
            return concat([lit(before) if before else "", f'(({content}) ~ {lit(after)})|replace("{{{{idx}}}}", {idx}, 1)'])
        return concat(
            [lit(before) if before else "", f'(({content})|replace("{{{{idx}}}}", {idx}, 1))', lit(after) if after else ""]
        )
    if idx is not None and "{{idx}}" in text:
        b1, b2 = text.split("{{idx}}", 1)
        return concat([lit(b1) if b1 else "", f"({idx})", lit(b2) if b2 else ""])
    return lit(text) if text else ""


def token_text(token: str, facts: TokenizerFacts, template: str, where: str) -> str:
    """Check that ``token`` survives whole-string tokenization as one id; return it."""
    if facts.split_special_tokens:
        raise UnsupportedTemplateError(
            template,
            "the tokenizer was used with split_special_tokens=True, so LF encoded special-token text "
            "as plain text while engines parse it as special tokens",
            where,
        )
    if token not in facts.atomic_tokens:
        raise UnsupportedTemplateError(
            template,
            f"slot token {token!r} is not an added/special token of the tokenizer, so no rendered text "
            "tokenizes to the id LF inserts; add it to the tokenizer (and resize the embeddings) or pick "
            "another template",
            where,
        )
    return token


def formatter_expr(
    fmt: FormatterSpec,
    facts: TokenizerFacts,
    template: str,
    where: str,
    *,
    content: Optional[str] = None,
    idx: Optional[str] = None,
    first_slot_only: bool = False,
) -> str:
    """A Jinja expression producing ``"".join(fmt.apply(content=..., idx=...))`` as text."""
    pieces = []
    slots = fmt.slots[:1] if first_slot_only else fmt.slots
    for slot in slots:
        if isinstance(slot, Text):
            pieces.append(_text_slot(slot.text, content, idx))
        elif isinstance(slot, SpecialToken):
            if slot.which == "none":
                continue
            tok = facts.bos_token if slot.which == "bos" else facts.eos_token
            if tok is not None:
                pieces.append(lit(token_text(tok, facts, template, f"{where} {slot.which}_token")))
        elif isinstance(slot, TokenRef):
            pieces.append(lit(token_text(slot.token, facts, template, where)))
        else:  # pragma: no cover - spec construction guarantees the types
            raise TypeError(f"unknown slot {slot!r}")
    return concat(pieces)
