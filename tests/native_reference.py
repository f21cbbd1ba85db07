"""The expected native-mode examples, built independently of ``lf_template_ext``'s code.

Only ``tokenizer.apply_chat_template(..., tokenize=False)`` (what vLLM calls) and
``tokenizer.encode(text, add_special_tokens=False)`` (what vLLM then does) are used, plus two
facts the test states by hand for each template: the text of assistant turn ``k`` as the
template renders it (``TURN_TEXT``) and which turns the full rendering cannot show as the
engine generated them (the test's expectation, not computed here).

docs/contracts.md: labels of turn ``k`` are the tokens from ``len(encode(P_k))``, where ``P_k`` is
the rendering of the messages before it with ``add_generation_prompt=True``, up to the start
of the next turn; a turn trained alone is the engine's prompt ``P_k`` followed by its text.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, Optional

IGNORE = -100
WEATHER_CALL = {"name": "get_weather", "arguments": {"city": "Paris"}}


def split_thought(content: str) -> tuple[Optional[str], str]:
    if "</think>" in content:
        head, answer = content.split("</think>", 1)
        return head.split("<think>")[-1].strip("\n"), answer.lstrip("\n")
    return None, content


def _qwen_call() -> str:
    return "<tool_call>\n" + json.dumps(WEATHER_CALL, ensure_ascii=False) + "\n</tool_call>"


def _qwen3(content: str, last: bool, call: bool) -> str:
    thought, answer = split_thought(content)
    body = _qwen_call() if call else answer
    return "<think>\n" + (thought or "") + "\n</think>\n\n" + body + "<|im_end|>\n"


def _llama_call() -> str:
    return json.dumps({"name": WEATHER_CALL["name"], "parameters": WEATHER_CALL["arguments"]}, ensure_ascii=False)


#: label -> text of an assistant turn as the template renders it: f(content, is_last, is_tool_call).
#: Qwen3's is the rendering of a turn that is the last one of its (own) example.
TURN_TEXT: dict[str, Callable[[str, bool, bool], str]] = {
    "Qwen2.5": lambda c, last, call: (_qwen_call() if call else c) + "<|im_end|>\n",
    "Qwen3": _qwen3,
    "Llama-3.1": lambda c, last, call: (_llama_call() if call else c.strip()) + "<|eot_id|>",
    "Llama-3.2": lambda c, last, call: (_llama_call() if call else c.strip()) + "<|eot_id|>",
    "Gemma-3": lambda c, last, call: c.strip() + "<end_of_turn>\n",
    "Mistral-v0.3": lambda c, last, call: " " + c + "</s>",
    "Phi-3": lambda c, last, call: c + "<|end|>\n" + ("<|endoftext|>" if last else ""),
    "R1-Distill-32B": lambda c, last, call: c.split("</think>")[-1] + "<｜end▁of▁sentence｜>",
    "Yi-1.5": lambda c, last, call: c + "<|im_end|>\n",
}


def render(tokenizer: Any, messages: list[dict], tools: Any, agp: bool, **kwargs: Any) -> str:
    return tokenizer.apply_chat_template(messages, tools=tools, add_generation_prompt=agp, tokenize=False, **kwargs)


def encode(tokenizer: Any, text: str) -> list[int]:
    return tokenizer.encode(text, add_special_tokens=False)


def _prefix_len(tokenizer: Any, ids: Sequence[int], text: str) -> int:
    """Tokens of ``text``; they must be the first tokens of ``ids`` (a clean boundary)."""
    head = encode(tokenizer, text)
    assert list(ids[: len(head)]) == head, f"tokens of {text[-40:]!r} are not a prefix of the whole"
    return len(head)


def expected_examples(
    tokenizer: Any,
    messages: list[dict],
    tools: Any,
    label: str,
    expanded: set[int],
    *,
    mask_history: bool = False,
    **kwargs: Any,
) -> list[tuple[list[int], list[int]]]:
    """The examples native mode must produce for one conversation: the full one, then the extra ones."""
    turn_text = TURN_TEXT[label]
    turns = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
    last = len(turns) - 1

    def text_of(k: int) -> str:
        m = messages[turns[k]]
        return turn_text(m.get("content") or "", k == last, bool(m.get("tool_calls")))

    out = []
    full_text = render(tokenizer, messages, tools, False, **kwargs)
    full_ids = encode(tokenizer, full_text)
    labels = [IGNORE] * len(full_ids)
    trained = [k for k in range(len(turns)) if k not in expanded]
    if mask_history:
        trained = [last] if last not in expanded else []
    for k in trained:
        prompt = render(tokenizer, messages[: turns[k]], tools, True, **kwargs)
        assert full_text.startswith(prompt), f"turn {k}: the prompt is not a prefix of the full rendering"
        piece = text_of(k)
        assert full_text[len(prompt) :].startswith(piece), f"turn {k}: {full_text[len(prompt):][:80]!r}"
        i = _prefix_len(tokenizer, full_ids, prompt)
        j = _prefix_len(tokenizer, full_ids, full_text[: len(prompt) + len(piece)])
        labels[i:j] = full_ids[i:j]
    if trained:
        out.append((full_ids, labels))
    extra = [last] if mask_history and last in expanded else ([] if mask_history else sorted(expanded))
    for k in extra:
        prompt = render(tokenizer, messages[: turns[k]], tools, True, **kwargs)
        ids = encode(tokenizer, prompt + text_of(k))
        i = _prefix_len(tokenizer, ids, prompt)
        out.append((ids, [IGNORE] * i + ids[i:]))
    return out
