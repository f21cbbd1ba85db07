"""OpenAI-shaped conversations <-> LF's (messages, system, tools) triple (docs/contracts.md).

Pure functions, no LF import: LF's role names are plain strings (``Role`` is a ``str``
enum in every supported LF version).

* ``system`` (first message only) -> LF system string;
* ``user`` -> ``user``; ``tool`` -> ``observation``;
* ``assistant`` -> ``assistant``, or ``function`` when it has ``tool_calls``: LF's content is
  then ``text + tool_call_words[0] + json([{name, arguments}]) + tool_call_words[1]``, which
  LF's ``FunctionFormatter`` renders as ``text + <formatted calls>``;
* ``reasoning_content`` (or ``reasoning``) -> inline ``thought_words[0] + r + thought_words[1]``
  before the content, LF's dataset convention;
* ``tools`` (the request's list) -> ``json.dumps(tools, ensure_ascii=False)``.

* list content (OpenAI content parts) -> LF's text with a tag at each media part's position
  (``<image>``/``<video>``/``<audio>``, model/media.py), text parts joined with nothing between them
  (LF's API does the same); the media parts are kept in order in ``LFConversation.images`` / ``videos`` /
  ``audios`` (LF's dataset columns). :func:`lf_text_to_parts` is the inverse.

What LF cannot represent raises ``UnrepresentableConversation``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Optional

from ..errors import ConversationError
from .media import KINDS, LF_TAGS, PART_TYPES

DEFAULT_THOUGHT_WORDS = ("<think>\n", "\n</think>\n\n")
DEFAULT_TOOL_CALL_WORDS = ("<tool_call>", "</tool_call>")


class UnrepresentableConversation(ConversationError):
    """The conversation has a shape LF's encoder cannot take (the reason says which rule)."""


@dataclass(frozen=True)
class LFConversation:
    messages: list[dict[str, str]]
    system: str
    tools: str
    # The media parts, in order of appearance (LF's ``images``/``videos``/``audios`` columns).
    images: list[Any] = field(default_factory=list)
    videos: list[Any] = field(default_factory=list)
    audios: list[Any] = field(default_factory=list)


def parts_to_lf_text(
    parts: list[Any], position: int = 0, tags: Optional[dict[str, str]] = None
) -> tuple[str, list[tuple[str, Any]]]:
    """OpenAI content parts -> (LF text with a tag at each media part, [(kind, part)] in order).

    Text parts are joined with nothing between them, as LF's API joins them (``api/chat.py``).
    """
    tags = {**LF_TAGS, **(tags or {})}
    text, media = "", []
    for j, part in enumerate(parts):
        if isinstance(part, str):
            text += part
            continue
        kind = PART_TYPES.get(part.get("type", "")) if isinstance(part, dict) else None
        if kind is None:
            raise UnrepresentableConversation(
                f"message {position}: content part {j} has an unknown type {part.get('type') if isinstance(part, dict) else part!r}"
            )
        if kind == "text":
            text += part.get("text") or ""
        else:
            text += tags[kind]
            media.append((kind, part))
    return text, media


def lf_text_to_parts(text: str, tags: Optional[dict[str, str]] = None) -> list[dict[str, Any]]:
    """LF text with tags -> content parts: text parts between ``{"type": kind}`` parts, at the tags' positions.

    The inverse of :func:`parts_to_lf_text` (empty text parts are dropped); what an engine is sent for a
    sample of an LF multimodal dataset.
    """
    tags = {**LF_TAGS, **(tags or {})}
    by_tag = {tags[k]: k for k in KINDS}
    pattern = "(" + "|".join(re.escape(t) for t in sorted(by_tag, key=len, reverse=True)) + ")"
    out: list[dict[str, Any]] = []
    for piece in re.split(pattern, text):
        if piece in by_tag:
            out.append({"type": by_tag[piece]})
        elif piece:
            out.append({"type": "text", "text": piece})
    return out


def has_media_tags(text: str, tags: Optional[dict[str, str]] = None) -> bool:
    """Whether LF text holds a media tag (LF's plugin would replace it)."""
    tags = {**LF_TAGS, **(tags or {})}
    return any(t in text for t in tags.values())


def _arguments_object(arguments: Any) -> Any:
    if isinstance(arguments, str):
        try:
            return json.loads(arguments)
        except json.JSONDecodeError as e:
            raise UnrepresentableConversation(f"tool call arguments are not valid JSON: {e}") from None
    return arguments


def _text(message: dict[str, Any], position: int, media: Optional[list] = None) -> str:
    content = message.get("content")
    if content is None:
        return ""
    if isinstance(content, list) and media is not None:
        text, found = parts_to_lf_text(content, position)
        media.extend(found)
        return text
    if not isinstance(content, str):
        raise UnrepresentableConversation(f"message {position}: content must be a string (got {type(content).__name__})")
    return content


def to_lf(
    messages: list[dict[str, Any]],
    tools: Optional[list[dict[str, Any]]] = None,
    *,
    thought_words: tuple[str, str] = DEFAULT_THOUGHT_WORDS,
    tool_call_words: Optional[tuple[str, str]] = DEFAULT_TOOL_CALL_WORDS,
) -> LFConversation:
    """Map an OpenAI-shaped conversation to what LF's ``encode_multiturn`` takes."""
    system = ""
    rest = messages
    if messages and messages[0].get("role") == "system":
        system = _text(messages[0], 0)
        rest = messages[1:]
    out: list[dict[str, str]] = []
    media: list[tuple[str, Any]] = []
    for i, message in enumerate(rest):
        role = message.get("role")
        even = i % 2 == 0
        if role == "system":
            raise UnrepresentableConversation("a system message is only allowed as the first message")
        if even and role not in ("user", "tool"):
            raise UnrepresentableConversation(f"expected a user or tool message at position {i}, got {role}")
        if not even and role != "assistant":
            raise UnrepresentableConversation(f"expected an assistant message at position {i}, got {role}")
        text = _text(message, i, media)
        if role == "user":
            out.append({"role": "user", "content": text})
        elif role == "tool":
            out.append({"role": "observation", "content": text})
        else:
            reasoning = message.get("reasoning_content")
            if not isinstance(reasoning, str) or not reasoning:
                reasoning = message.get("reasoning") if isinstance(message.get("reasoning"), str) else ""
            if reasoning:
                text = thought_words[0] + reasoning + thought_words[1] + text
            calls = message.get("tool_calls") or []
            if calls:
                items = []
                for call in calls:
                    fn = call.get("function", call)
                    items.append({"name": fn["name"], "arguments": _arguments_object(fn.get("arguments", {}))})
                payload = json.dumps(items, ensure_ascii=False)
                if tool_call_words and len(tool_call_words) == 2:
                    content = text + tool_call_words[0] + payload + tool_call_words[1]
                elif text:
                    raise UnrepresentableConversation(
                        "an assistant message with tool_calls cannot also carry text in this template"
                    )
                else:
                    content = payload
                out.append({"role": "function", "content": content})
            else:
                out.append({"role": "assistant", "content": text})
    tools_json = json.dumps(tools, ensure_ascii=False) if tools else ""
    by_kind = {k: [p for kind, p in media if kind == k] for k in KINDS}
    return LFConversation(
        messages=out,
        system=system,
        tools=tools_json,
        images=by_kind["image"],
        videos=by_kind["video"],
        audios=by_kind["audio"],
    )


def _parse_calls(payload: str) -> list[dict[str, Any]]:
    calls = json.loads(payload)
    if not isinstance(calls, list):
        calls = [calls]
    return [
        {"type": "function", "function": {"name": c["name"], "arguments": c.get("arguments", {})}} for c in calls
    ]


def from_lf(
    messages: list[dict[str, str]],
    system: Optional[str] = None,
    tools: Optional[str] = None,
    *,
    thought_words: tuple[str, str] = DEFAULT_THOUGHT_WORDS,
    tool_call_words: Optional[tuple[str, str]] = DEFAULT_TOOL_CALL_WORDS,
    media_parts: bool = False,
) -> tuple[list[dict[str, Any]], Optional[list[dict[str, Any]]]]:
    """Map LF's (messages, system, tools) to the OpenAI shape an engine is sent.

    ``media_parts``: user/tool/assistant texts holding LF's media tags become content parts
    (:func:`lf_text_to_parts`); without it the text is passed as it is.

    The inverse of :func:`to_lf`, following ``FunctionFormatter``'s reading of a function
    turn: text around ``tool_call_words`` (or a thought before plain JSON) stays content,
    the JSON becomes ``tool_calls``. Thoughts stay inline in the content: an engine passes
    what the client sent, and clients send the text the model produced.
    """
    out: list[dict[str, Any]] = []
    if system:
        out.append({"role": "system", "content": system})
    for m in messages:
        role, content = str(m["role"]), m["content"]
        if media_parts and role in ("user", "observation", "assistant") and has_media_tags(content):
            parts: Any = lf_text_to_parts(content)
            out.append({"role": {"observation": "tool"}.get(role, role), "content": parts})
        elif role == "user":
            out.append({"role": "user", "content": content})
        elif role == "observation":
            out.append({"role": "tool", "content": content})
        elif role == "assistant":
            out.append({"role": "assistant", "content": content})
        elif role == "function":
            text, payload = "", content
            match = None
            if tool_call_words and len(tool_call_words) == 2:
                match = re.search(
                    re.escape(tool_call_words[0]) + "(.*?)" + re.escape(tool_call_words[1]), content, re.DOTALL
                )
            if match is not None:
                text = content.replace(match.group(0), "")
                payload = match.group(1)
            else:
                tmatch = re.search(
                    re.escape(thought_words[0]) + "(.*?)" + re.escape(thought_words[1]), content, re.DOTALL
                )
                if tmatch is not None:
                    text = tmatch.group(0)
                    payload = content.replace(tmatch.group(0), "")
            try:
                calls = _parse_calls(payload)
            except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
                raise UnrepresentableConversation(f"function message is not a JSON tool call: {e}") from None
            msg: dict[str, Any] = {"role": "assistant", "content": text, "tool_calls": calls}
            out.append(msg)
        else:
            raise UnrepresentableConversation(f"unknown LF role {role!r}")
    tool_list = None
    if tools:
        try:
            tool_list = json.loads(tools)
        except json.JSONDecodeError as e:
            raise UnrepresentableConversation(f"tools is not valid JSON: {e}") from None
        if not isinstance(tool_list, list):
            tool_list = [tool_list]
        tool_list = tool_list or None
    return out, tool_list
