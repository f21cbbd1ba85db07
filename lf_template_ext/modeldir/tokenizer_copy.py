"""Private tokenizer copies, and copy-on-write sharing for tokenizers declared frozen.

Every LF template is prepared on a private copy of the tokenizer (LF's fixing adds tokens and
changes special tokens in place). A deep copy of a fast tokenizer costs about 1.4 s for a 150k
vocabulary, almost all of it re-parsing the Rust backend (``tokenizers.Tokenizer``). A tool that
prepares one template per run does not notice; a sweep over LF's 121 templates does, several
times over.

:func:`freeze` declares a tokenizer immutable (a test fixture, a cache's master copy): writing to
it afterwards raises. Copies of a frozen tokenizer share its backend until their first write
to it (``_add_tokens``, ``update_post_processor``: the only methods of transformers'
``TokenizersBackend`` that change the backend after construction), which first gives the copy
a backend of its own; a copy then costs ~0.05 s. Tokenizers nobody froze (every user's
tokenizer) are deep-copied as before: nothing can change them behind a copy's back.

Classes are swapped, not wrapped: the copy stays an instance of a subclass of the tokenizer's own
class (``isinstance`` and every method unchanged). Both subclasses pickle as their base class
(``datasets`` fingerprints tokenizers), and are built once per base class.
"""

from __future__ import annotations

import copy
from typing import Any

from ..errors import LFTemplateExtError

#: transformers' ``TokenizersBackend`` methods that change the backend once it is built
_BACKEND_WRITERS = ("_add_tokens", "update_post_processor")
_SHARED_ATTRS = ("_vocab", "_merges")  # construction-time lists, never mutated afterwards

_FROZEN: dict[type, type] = {}
_COW: dict[type, type] = {}


class FrozenTokenizerError(LFTemplateExtError, RuntimeError):
    """A frozen tokenizer was asked to change its backend: copy it first (:func:`copy_tokenizer`).

    A programming error (only code that froze a tokenizer can meet it), hence no exit-code mapping."""


def _backend(tokenizer: Any) -> Any:
    backend = tokenizer.__dict__.get("_tokenizer")
    return backend if type(backend).__module__.startswith("tokenizers") else None


def _base(cls: type) -> type:
    return getattr(cls, "_lf_template_ext_base", cls)


def _rebuild(cls: type, state: dict) -> Any:
    obj = object.__new__(cls)
    obj.__dict__.update(state)
    return obj


def _reduce_as_base(self: Any, protocol: int) -> Any:
    """Pickle and deep-copy as the tokenizer's own class (the state is the plain ``__dict__``)."""
    return _rebuild, (_base(type(self)), dict(self.__dict__))


def _frozen_class(base: type) -> type:
    cls = _FROZEN.get(base)
    if cls is None:

        def refuse(self: Any, *args: Any, **kwargs: Any) -> Any:
            raise FrozenTokenizerError(
                "this tokenizer is frozen (shared by copies); change a copy: lf_template_ext.lf.compat.copy_tokenizer"
            )

        attrs = {name: refuse for name in _BACKEND_WRITERS if hasattr(base, name)}
        attrs.update(_lf_template_ext_base=base, __reduce_ex__=_reduce_as_base)
        cls = _FROZEN[base] = type(base.__name__, (base,), attrs)
    return cls


def _cow_class(base: type) -> type:
    cls = _COW.get(base)
    if cls is None:

        def own_then(name: str) -> Any:
            def method(self: Any, *args: Any, **kwargs: Any) -> Any:
                if name == "_add_tokens" and _already_there(self._tokenizer, *args, **kwargs):
                    return 0  # what the backend answers for tokens it has, without writing to it
                # First write: a backend of our own, then the plain class again (no further checks).
                self._tokenizer = copy.deepcopy(self._tokenizer)
                self.__class__ = base
                return getattr(base, name)(self, *args, **kwargs)

            method.__name__ = name
            return method

        attrs = {name: own_then(name) for name in _BACKEND_WRITERS if hasattr(base, name)}
        attrs.update(_lf_template_ext_base=base, __reduce_ex__=_reduce_as_base)
        cls = _COW[base] = type(base.__name__, (base,), attrs)
    return cls


def _already_there(backend: Any, new_tokens: Any, special_tokens: bool = False) -> bool:
    """Every token is in the backend already, with the flags adding it would give it.

    LF adds its stop words as special tokens on every preparation; for most templates the
    tokenizer has them, so the copy need not own a backend (a string token gets the backend's
    defaults: special ones unnormalized, others normalized, no stripping, not single-word).
    """
    have = {t.content: t for t in backend.get_added_tokens_decoder().values()}
    for token in new_tokens:
        if isinstance(token, str):
            want = (token, False, False, False, not special_tokens, bool(special_tokens))
        else:
            want = (token.content, token.single_word, token.lstrip, token.rstrip, token.normalized, token.special)
        old = have.get(want[0])
        if old is None or (old.content, old.single_word, old.lstrip, old.rstrip, old.normalized, old.special) != want:
            return False
    return True


def freeze(tokenizer: Any) -> Any:
    """Declare ``tokenizer`` immutable, so that copies may share its backend; returns it.

    For a tokenizer without a Rust backend (slow, remote-code) this is a no-op.
    """
    if _backend(tokenizer) is not None and type(tokenizer) not in _FROZEN.values():
        tokenizer.__class__ = _frozen_class(_base(type(tokenizer)))
    return tokenizer


def is_frozen(tokenizer: Any) -> bool:
    return type(tokenizer) in _FROZEN.values()


def copy_tokenizer(tokenizer: Any) -> Any:
    """A private copy of ``tokenizer`` that LF may mutate (see the module docstring)."""
    memo: dict[int, Any] = {}
    for attr in _SHARED_ATTRS:
        value = tokenizer.__dict__.get(attr)
        if value is not None:
            memo[id(value)] = value
    backend = _backend(tokenizer)
    if backend is None or not is_frozen(tokenizer):
        out = copy.deepcopy(tokenizer, memo)
        if is_frozen(out) or type(out) in _COW.values():  # a copy of a copy: plain again
            out.__class__ = _base(type(out))
        return out
    memo[id(backend)] = backend
    out = copy.deepcopy(tokenizer, memo)
    out.__class__ = _cow_class(_base(type(tokenizer)))
    return out
