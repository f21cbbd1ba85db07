"""Rendering LF conversations with the tokenizer's own chat template, as vLLM renders them.

* LF's ``(messages, system, tools)`` become the OpenAI-shaped request an engine receives
  (``messages.from_lf``, docs/contracts.md): ``function`` turns become ``assistant`` messages with
  ``tool_calls`` (``content`` ``""`` when they carry no text: vLLM turns a client's ``null``
  into ``""`` for string-content templates), ``observation`` turns ``tool`` messages, and LF's tool list the request's ``tools``, each
  wrapped as ``{"type": "function", "function": ...}`` unless it already is (LF's own rule in
  ``tool_utils``). Thoughts stay inline in the content, as LF's datasets write them.
* Every rendering goes through ``tokenizer.apply_chat_template(..., tokenize=False)`` with
  the template variables native mode passes (``enable_thinking`` from LF's data argument,
  omitted when it is ``null``; ``template_ext_native_kwargs``): the call vLLM makes.
* The renderings a conversation needs (``native_layout``) come from a structure cache
  (``native_skeleton``; off for templates that read contents with a regex filter such as
  ``wordcount``); the full rendering is always made for real and compared, so the token ids
  never depend on the cache.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Optional, cast

from ..errors import ConversationError
from .skeleton import Skeleton, SkeletonCache, reads_text_untraceably, structure_key, traceable_contents

logger = logging.getLogger(__name__)


class NativeRenderError(ConversationError):
    """The chat template raised (or returned nothing usable) for a conversation."""

    def __init__(self, reason: str, add_generation_prompt: bool, n_messages: int) -> None:
        self.reason = reason
        what = "generation prompt" if add_generation_prompt else "conversation"
        super().__init__(f"rendering the {what} of the first {n_messages} message(s) failed: {reason}")


@dataclass(frozen=True)
class Conversation:
    """An OpenAI-shaped request: messages and the request's tools (or ``None``)."""

    messages: list[dict[str, Any]]
    tools: Optional[list[dict[str, Any]]] = None

    @property
    def assistant_indices(self) -> list[int]:
        return [i for i, m in enumerate(self.messages) if m.get("role") == "assistant"]


def openai_tools(tools: Optional[list[Any]]) -> Optional[list[dict[str, Any]]]:
    if not tools:
        return None
    return [t if isinstance(t, dict) and t.get("type") == "function" else {"type": "function", "function": t} for t in tools]


def from_lf(
    messages: Sequence[Mapping[str, str]], system: Optional[str], tools: Optional[str], media_parts: bool = False
) -> Conversation:
    """LF's encoder arguments -> the request an engine gets for the same conversation.

    ``media_parts``: texts holding LF's ``<image>``/``<video>``/``<audio>`` tags become content parts."""
    from ..model.messages import from_lf as _from_lf

    msgs, tool_list = _from_lf(
        [{"role": str(m["role"]), "content": m["content"]} for m in messages], system, tools, media_parts=media_parts
    )
    return Conversation(messages=msgs, tools=openai_tools(tool_list))


def anchors(conv: Conversation) -> list[str]:
    """The content of the message before each assistant turn (``native_layout.answer_start``)."""
    return [str(conv.messages[a - 1].get("content") or "") if a > 0 else "" for a in conv.assistant_indices]


class ChatRenderer:
    """The tokenizer's chat template with native mode's variables, plus the structure cache."""

    def __init__(
        self,
        tokenizer: Any,
        *,
        template_kwargs: Optional[Mapping[str, Any]] = None,
        enable_thinking: Optional[bool] = True,
        cache: bool = True,
        chat_template: Optional[str] = None,
    ) -> None:
        self.tokenizer = tokenizer
        #: the template rendered instead of the tokenizer's own (``template_ext_chat_template``, whole mode's
        #: compiled LF template); ``None``: the tokenizer's, as ``apply_chat_template`` picks it
        self.chat_template = chat_template
        self.kwargs: dict[str, Any] = dict(template_kwargs or {})
        if enable_thinking is not None:
            self.kwargs["enable_thinking"] = enable_thinking
        if chat_template is not None:
            self.kwargs["chat_template"] = chat_template
        reads_text = self._reads_text(chat_template if chat_template is not None else tokenizer)
        self._cache = SkeletonCache(self._render) if cache and not reads_text else None
        self._stable: dict[tuple, bool] = {}  # skeletons of a conversation -> is its layout stable
        # the skeletons stable_spans found for a conversation it could not settle, for turn_renders
        self._found: Optional[tuple[Conversation, list[str], list[Skeleton]]] = None

    @staticmethod
    def _reads_text(tokenizer: Any) -> bool:
        """Does one of the tokenizer's chat templates (or the given template text) read contents in a way
        the tracer cannot see?"""
        templates = tokenizer if isinstance(tokenizer, str) else getattr(tokenizer, "chat_template", None)
        for text in (templates.values() if isinstance(templates, dict) else [templates]):
            name = reads_text_untraceably(text) if isinstance(text, str) else None
            if name:
                logger.info("native mode: the chat template uses the %r filter on text; render cache off", name)
                return True
        return False

    @property
    def cache_stats(self) -> dict[str, Any]:
        c = self._cache
        return {"enabled": bool(c and c.enabled), "hits": c.hits if c else 0, "misses": c.misses if c else 0}

    def _render(self, messages: list[dict[str, Any]], tools: Any, add_generation_prompt: bool) -> str:
        try:
            text = self.tokenizer.apply_chat_template(
                messages, tools=tools, add_generation_prompt=add_generation_prompt, tokenize=False, **self.kwargs
            )
        except Exception as e:  # jinja TemplateError (raise_exception), TypeError, UndefinedError, ...
            raise NativeRenderError(f"{type(e).__name__}: {e}", add_generation_prompt, len(messages)) from e
        if not isinstance(text, str):
            raise NativeRenderError(f"apply_chat_template returned {type(text).__name__}", add_generation_prompt, len(messages))
        return text

    def render(self, conv: Conversation, n_messages: int, add_generation_prompt: bool) -> str:
        """The rendering of ``conv.messages[:n_messages]`` (uncached)."""
        return self._render(conv.messages[:n_messages], conv.tools, add_generation_prompt)

    def _keys(self, conv: Conversation) -> Callable[[int, bool], Any]:
        """Cache key of the rendering of ``conv.messages[:n]`` (with or without generation prompt)."""
        tools_key = json.dumps(conv.tools, sort_keys=True, ensure_ascii=False, default=str) if conv.tools else None
        keys = [structure_key(m) for m in conv.messages]
        return lambda n, agp: (tools_key, agp, tuple(keys[:n]))

    def _distrust(self) -> None:
        assert self._cache is not None
        self._cache.enabled = False
        logger.warning("native mode: this chat template inspects message contents untraceably; render cache off")

    def stable_spans(self, conv: Conversation) -> Optional[tuple[str, list[tuple[int, int]]]]:
        """The full rendering and every turn's span, when cached skeletons prove the layout stable.

        The common case costs one real rendering (the full one, compared with the cache) and
        length sums: when every prompt skeleton ``P_k`` is a prefix of its ``S_k`` skeleton and
        both of the full one (``Skeleton.prefix_of``: true for any contents), the layout is
        ``native_layout.analyze``'s for a prefix-stable conversation, ``(len(P_k), len(S_k))``.
        ``None`` when the skeletons are not all cached or the layout needs the full analysis.
        """
        cache = self._cache
        contents = traceable_contents(conv.messages) if cache is not None and cache.enabled else None
        turns = conv.assistant_indices
        if contents is None or not turns:
            return None
        key = self._keys(conv)
        found = [cache.lookup(key(a, True), contents) for a in turns] + [
            cache.lookup(key(a + 1, False), contents) for a in turns
        ]
        if any(sk is None for sk in found):
            return None
        skeletons = cast("list[Skeleton]", found)
        prompts, finals = skeletons[: len(turns)], skeletons[len(turns) :]
        whole = finals[-1]
        proof = (tuple(prompts), tuple(finals))
        stable = self._stable.get(proof)
        if stable is None:
            if len(self._stable) >= SkeletonCache.MAX_KEYS:
                self._stable.clear()
            stable = self._stable[proof] = all(
                p.prefix_of(f) and p.prefix_of(whole) and f.prefix_of(whole)
                for p, f in zip(prompts, finals, strict=True)
            )
        if not stable:
            self._found = (conv, contents, skeletons)
            return None
        full = self._render(conv.messages, conv.tools, False)
        if whole.fill(contents) != full:
            self._distrust()
            return None
        ends = [f.length(contents) for f in finals[:-1]] + [len(full)]
        return full, [(p.length(contents), e) for p, e in zip(prompts, ends, strict=True)]

    def turn_renders(self, conv: Conversation) -> tuple[list[str], list[str]]:
        """``(prompts, finals)`` of ``native_layout``: ``P_k`` and ``S_k`` for every assistant turn."""
        msgs, tools = conv.messages, conv.tools
        turns = conv.assistant_indices
        if not turns:
            raise NativeRenderError("the conversation has no assistant turn", False, len(msgs))
        full = self._render(msgs, tools, False)
        found, self._found = self._found, None
        if found is not None and found[0] is conv and self._cache is not None and self._cache.enabled:
            _, contents, skeletons = found  # stable_spans just looked every skeleton up
            if skeletons[-1].fill(contents) == full:
                n = len(turns)
                return [sk.fill(contents) for sk in skeletons[:n]], [sk.fill(contents) for sk in skeletons[n:-1]] + [full]
            self._distrust()
            return self.turn_renders(conv)
        cache = self._cache
        contents = traceable_contents(msgs) if cache is not None and cache.enabled else None
        if contents is None:
            return (
                [self._render(msgs[:a], tools, True) for a in turns],
                [self._render(msgs[: a + 1], tools, False) for a in turns[:-1]] + [full],
            )
        key = self._keys(conv)

        def cached(n: int, agp: bool) -> str:
            return cache.render(key(n, agp), msgs[:n], tools, contents, agp)

        if cached(len(msgs), False) != full:  # the tracer missed how the template reads contents
            self._distrust()
            return self.turn_renders(conv)
        return [cached(a, True) for a in turns], [cached(a + 1, False) for a in turns[:-1]] + [full]
