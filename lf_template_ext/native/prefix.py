"""Token-prefix reuse for policy ``expand``: tokenize only what an extra example adds.

An extra example (a turn trained alone, ``native_layout.turn_example``) repeats the start of
its conversation's full rendering ``T``: the engine's prompt for the turn is usually a prefix of
``T``. Tokenizing it whole again is most of what ``expand`` costs (every prefix of a four-turn
conversation: about 2.5 times the text of the conversation).

A fast tokenizer first cuts the text at added tokens (``<|im_start|>``, ``<think>``) and then
tokenizes each piece between them on its own. When the rest of the pipeline does not care
where a piece stands in the text (:func:`pieces_are_independent`: no normalizer or
pre-tokenizer step that treats the first piece or a piece's edges specially, added tokens
that do not swallow neighbouring whitespace), an example ``E`` that shares ``T[:a]`` and has
an added token starting at ``a`` tokenizes as ``ids(T)[:u] + ids(E[a:])``, ``u`` being ``T``'s
token at ``a``. :func:`split_point` finds the last such ``a`` in the shared prefix, with the
:func:`splitting_tokens` in a ``native_layout.SpecialText``.

The encoder checks the claim on real data (the first reused example of each batch is also
tokenized whole and compared) and stops reusing for the run if it ever fails, so the ids
stay those of tokenizing the whole text, as vLLM does.
"""

from __future__ import annotations

import json
from typing import Any, Optional

from .layout import SpecialText, common_prefix

_NORMALIZERS = {"NFC", "NFD", "NFKC", "NFKD", "Lowercase", "Replace", "Sequence"}
_PRE_TOKENIZERS = {"Split", "ByteLevel", "Digits", "Punctuation", "Whitespace", "WhitespaceSplit", "Metaspace", "Sequence"}


def _component_ok(state: Optional[dict], allowed: set[str]) -> bool:
    if state is None:
        return True
    kind = state.get("type")
    if kind not in allowed:
        return False
    if kind == "Sequence":
        children = state.get("normalizers") or state.get("pretokenizers") or []
        return all(_component_ok(c, allowed) for c in children)
    if kind == "ByteLevel" and state.get("add_prefix_space"):
        return False  # a space before the first piece only
    if kind == "Metaspace" and state.get("prepend_scheme", "always") != "never":
        return False  # "first" and "always" prepend the replacement to (the first) piece
    return True


def _state(component: Any) -> Optional[dict]:
    if component is None:
        return None
    return json.loads(component.__getstate__())


def pieces_are_independent(tokenizer: Any) -> bool:
    """Does the fast tokenizer tokenize each piece between added tokens the same wherever it stands?"""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or not getattr(tokenizer, "is_fast", False) or getattr(tokenizer, "split_special_tokens", False):
        return False
    try:
        return _component_ok(_state(backend.normalizer), _NORMALIZERS) and _component_ok(
            _state(backend.pre_tokenizer), _PRE_TOKENIZERS
        )
    except Exception:  # a component without a JSON state: do not guess
        return False


def splitting_tokens(tokenizer: Any) -> list[str]:
    """Added tokens a text is cut at, untouched by normalization and not eating whitespace."""
    out = []
    for token in getattr(tokenizer, "added_tokens_decoder", {}).values():
        content = getattr(token, "content", None)
        if content and not token.lstrip and not token.rstrip and not token.normalized:
            out.append(content)
    return out


def split_point(splitting: SpecialText, example: str, full: str) -> Optional[int]:
    """The last ``a`` > 0 where a splitting token starts inside the prefix ``example`` shares with ``full``."""
    return splitting.last_start(example, common_prefix(example, full)) or None  # 0: nothing to reuse
