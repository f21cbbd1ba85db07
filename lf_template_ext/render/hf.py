"""The engine side of a check: what a serving engine feeds the model for a chat request.

Each engine turns a batch of :class:`RenderRequest` into token ids (or the exception the engine
would answer with, e.g. the template's ``raise_exception``), one entry per request:

* :class:`HFEngine`: the model dir's chat template rendered by transformers' ``apply_chat_template``
  and tokenized whole with ``add_special_tokens=False``: what vLLM and SGLang do. The texts of a
  batch are tokenized in one call of the fast tokenizer (Rust, ``encode_batch``), which gives the
  same ids as one ``encode`` per text (``verifier.Renderer.ids``) at a fraction of the cost;
* the live servers of ``lf_template_ext.render.endpoint`` (vLLM ``/tokenize``, llama-server).

Import-light: transformers is reached through the tokenizer object only.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any, Optional, Protocol, Sequence, Union

IdsOrError = Union[list[int], Exception]


@dataclass(frozen=True)
class RenderRequest:
    """One chat request: OpenAI-shaped messages and tools, and the generation-prompt switch."""

    messages: list[dict[str, Any]]
    tools: Optional[list[dict[str, Any]]]
    add_generation_prompt: bool
    kwargs: dict[str, Any] = field(default_factory=dict)


class EngineSide(Protocol):
    name: str

    def ids_batch(self, requests: Sequence[RenderRequest]) -> list[IdsOrError]: ...


def batch_encode(tokenizer: Any, texts: Sequence[str]) -> list[list[int]]:
    """``tokenizer.encode(t, add_special_tokens=False)`` for every text, batched when the tokenizer is fast."""
    if not texts:
        return []
    if getattr(tokenizer, "is_fast", False):
        enc = tokenizer(
            list(texts), add_special_tokens=False, return_attention_mask=False, return_token_type_ids=False
        )
        return [list(x) for x in enc["input_ids"]]
    return [tokenizer.encode(t, add_special_tokens=False) for t in texts]


class Renderer:
    """Renders conversations with a Jinja template as vLLM/SGLang do (HF renderer, no BOS added)."""

    engine = "hf"

    def __init__(self, tokenizer: Any, jinja: str, frozen: Optional[_dt.datetime] = None) -> None:
        self.tokenizer = tokenizer
        self.jinja = jinja
        self.frozen = frozen

    def text(self, messages: list[dict[str, Any]], tools: Any, add_generation_prompt: bool, **kwargs: Any) -> str:
        if self.frozen is not None:
            frozen = self.frozen
            kwargs.setdefault("strftime_now", lambda fmt: frozen.strftime(fmt))
        return self.tokenizer.apply_chat_template(
            messages,
            tools=tools,
            chat_template=self.jinja,
            add_generation_prompt=add_generation_prompt,
            tokenize=False,
            **kwargs,
        )

    def ids(self, messages: list[dict[str, Any]], tools: Any, add_generation_prompt: bool, **kwargs: Any) -> list[int]:
        text = self.text(messages, tools, add_generation_prompt, **kwargs)
        return self.tokenizer.encode(text, add_special_tokens=False)



class PrefixTokenizer:
    """Token ids of a text that is a prefix of an already tokenized text, without tokenizing it again.

    A generation prompt is the rendered conversation minus its last answer: the same text up to
    a point. A fast tokenizer splits its input at added tokens (``<|im_start|>``, ...) first and
    tokenizes the pieces between them independently, so the prefix's ids are the full text's ids
    up to the last added token that lies safely inside the prefix, followed by the ids of the short
    rest. The rest is tokenized after a copy of that added token (and the copy's id dropped), so it
    is not the first piece of its input (Metaspace's ``prepend_scheme: first``) and the token's
    ``rstrip`` acts on it as it does in the full text. "Safely" means the token starts at least
    the longest added token's length before the prefix ends: the leftmost-longest match that
    found it saw the same characters in both texts. Anything else (slow tokenizers,
    ``split_special_tokens``, no such token, the copy not re-tokenizing to its id) falls back to
    tokenizing the prefix whole. ``tests/test_dataset_check.py`` checks the shortcut against whole
    tokenization on every fixture tokenizer.
    """

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        added = dict(tokenizer.get_added_vocab()) if getattr(tokenizer, "is_fast", False) else {}
        self.enabled = bool(added) and not getattr(tokenizer, "split_special_tokens", False)
        self.content = {i: t for t, i in added.items()}
        self.max_len = max((len(t) for t in added), default=0)

    def encode_with_offsets(self, texts: Sequence[str]) -> tuple[list[list[int]], list[list[tuple[int, int]]]]:
        enc = self.tokenizer(
            list(texts),
            add_special_tokens=False,
            return_attention_mask=False,
            return_token_type_ids=False,
            return_offsets_mapping=True,
        )
        return [list(x) for x in enc["input_ids"]], [list(o) for o in enc["offset_mapping"]]

    def split(self, ids: list[int], offsets: list[tuple[int, int]], prefix: str) -> Optional[tuple[list[int], str, str]]:
        """``(head ids, anchor token text, rest of the prefix)`` or ``None`` when no safe anchor exists."""
        limit = len(prefix) - self.max_len
        for j in range(len(ids) - 1, -1, -1):
            start, end = offsets[j]
            if start > limit or end > len(prefix):
                continue
            anchor = self.content.get(ids[j])
            if anchor is not None:
                return ids[: j + 1], anchor, prefix[end:]
        return None

    def prefix_ids(self, jobs: Sequence[tuple[list[int], list[tuple[int, int]], str]]) -> list[list[int]]:
        """For each ``(full ids, full offsets, prefix text)``, the ids of the prefix tokenized whole."""
        plans = [self.split(ids, offs, prefix) if self.enabled else None for ids, offs, prefix in jobs]
        tails = [p[1] + p[2] for p in plans if p is not None]
        tail_ids = iter(batch_encode(self.tokenizer, tails))
        out: list[Optional[list[int]]] = []
        redo: list[int] = []
        for k, plan in enumerate(plans):
            if plan is None:
                out.append(None)
                redo.append(k)
                continue
            head, _, _ = plan
            tail = next(tail_ids)
            if not tail or tail[0] != head[-1]:  # the anchor did not come back as itself: do it the long way
                out.append(None)
                redo.append(k)
            else:
                out.append(head + tail[1:])
        for k, ids in zip(redo, batch_encode(self.tokenizer, [jobs[k][2] for k in redo])):
            out[k] = ids
        return [x if x is not None else [] for x in out]


class HFEngine:
    """A chat template rendered and tokenized as vLLM/SGLang do (no BOS added by the tokenizer)."""

    name = "hf"

    def __init__(
        self,
        tokenizer: Any,
        jinja: str,
        frozen: Optional[_dt.datetime] = None,
        kwargs: Optional[dict[str, Any]] = None,
        name: str = "hf",
    ) -> None:
        self.renderer = Renderer(tokenizer, jinja, frozen)
        self.tokenizer = tokenizer
        self.kwargs = dict(kwargs or {})
        self.name = name
        self.prefixes = PrefixTokenizer(tokenizer)

    def texts(self, requests: Sequence[RenderRequest]) -> list[Union[str, Exception]]:
        out: list[Union[str, Exception]] = []
        for r in requests:
            try:
                out.append(
                    self.renderer.text(r.messages, r.tools, r.add_generation_prompt, **{**self.kwargs, **r.kwargs})
                )
            except Exception as e:  # the template's raise_exception, TypeError, UndefinedError: the engine's 400
                out.append(e)
        return out

    def ids_batch(self, requests: Sequence[RenderRequest]) -> list[IdsOrError]:
        """Render every request, tokenize the texts in one call; a generation prompt that is a prefix
        of the preceding whole conversation reuses its ids (:class:`PrefixTokenizer`)."""
        texts = self.texts(requests)
        out: list[Optional[IdsOrError]] = [t if isinstance(t, Exception) else None for t in texts]
        parent: dict[int, int] = {}
        last_full: Optional[int] = None
        for i, (r, t) in enumerate(zip(requests, texts)):
            if not isinstance(t, str):
                continue
            if not r.add_generation_prompt:
                last_full = i
            elif last_full is not None and self.prefixes.enabled and texts[last_full].startswith(t):  # type: ignore[union-attr]
                parent[i] = last_full
        full = [i for i, t in enumerate(texts) if isinstance(t, str) and i not in parent]
        if parent:
            ids, offsets = self.prefixes.encode_with_offsets([texts[i] for i in full])  # type: ignore[misc]
            for i, x in zip(full, ids):
                out[i] = x
            where = dict(zip(full, range(len(full))))
            kids = list(parent)
            jobs = [(ids[where[parent[i]]], offsets[where[parent[i]]], texts[i]) for i in kids]
            for i, x in zip(kids, self.prefixes.prefix_ids(jobs)):  # type: ignore[arg-type]
                out[i] = x
        else:
            for i, x in zip(full, batch_encode(self.tokenizer, [texts[i] for i in full])):  # type: ignore[misc]
                out[i] = x
        return out  # type: ignore[return-value]
