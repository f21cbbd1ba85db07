"""LF formatter slots -> Jinja expressions (and the slot walk every emitter shares).

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

from collections.abc import Iterator
from typing import Optional

from ..errors import UnsupportedTemplateError
from ..model.spec import FormatterSpec, SpecialToken, Text, TokenizerFacts, TokenRef
from .jinja_text import concat, lit


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


def walk_slots(
    fmt: FormatterSpec,
    facts: TokenizerFacts,
    template: str,
    where: str,
    *,
    first_slot_only: bool = False,
    skip_leading_bos: bool = False,
) -> Iterator[tuple[str, str]]:
    """The pieces ``StringFormatter.apply`` joins, in order: ``("text", slot text)`` or ``("token", text)``.

    Every emitter (Jinja, Go, LMDeploy) reads LF's slots the same way: a string slot is text with
    ``{{content}}``/``{{idx}}`` placeholders left for the emitter to fill; ``{"bos_token"}`` /
    ``{"eos_token"}`` and ``{"token": x}`` are a token's text, checked by :func:`token_text` (a
    BOS/EOS the tokenizer does not have is nothing, as in LF). ``skip_leading_bos``: leave out a BOS
    that is the formatter's first slot (an engine adds it). It is a generator, so a refusal is raised
    at the slot that causes it, after whatever the caller raised for the slots before it.
    """
    slots = fmt.slots[:1] if first_slot_only else fmt.slots
    for n, slot in enumerate(slots):
        if isinstance(slot, Text):
            yield "text", slot.text
        elif isinstance(slot, SpecialToken):
            if slot.which == "none":
                continue
            tok = facts.bos_token if slot.which == "bos" else facts.eos_token
            if tok is None:
                continue
            if skip_leading_bos and n == 0 and slot.which == "bos":
                continue
            yield "token", token_text(tok, facts, template, f"{where} {slot.which}_token")
        elif isinstance(slot, TokenRef):
            yield "token", token_text(slot.token, facts, template, where)
        else:  # pragma: no cover - spec construction guarantees the types
            raise TypeError(f"unknown slot {slot!r}")


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
    for kind, value in walk_slots(fmt, facts, template, where, first_slot_only=first_slot_only):
        pieces.append(_text_slot(value, content, idx) if kind == "text" else lit(value))
    return concat(pieces)
