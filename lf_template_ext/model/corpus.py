"""The built-in probe corpus: small OpenAI-shaped conversations that exercise every rule.

Each probe is ``{"id", "features", "messages", "tools"?}``; ``features`` name what it
exercises (the coverage table's columns: ``plain``, ``system``, ``tools``, ``reasoning``,
plus ``adversarial`` and ``whitespace``). Every conversation ends with an assistant turn, so
the verifier checks it twice: the full sequence (``add_generation_prompt=False``) and the
prompt of the last turn (``add_generation_prompt=True`` on all but the last message).

The adversarial strings are the ones that break naive template generators: quotes,
backslashes, Jinja delimiters, LF's own placeholders, special-token look-alikes, unicode.
"""

from __future__ import annotations

import copy
from typing import Any

ADVERSARIAL = [
    'She said "hi" and \'bye\'',
    "C:\\path\\to\\file \\n is not a newline",
    "{{ raise_exception('x') }} {% for x in y %} {# c #} }} %}",
    "{{content}} and {{idx}} stay literal? {{ messages }}",
    "line1\nline2\r\nline3\ttab",
    "unicode: 你好，世界 — café — 🙂 — ℕ",
    "looks special: <|im_end|> <|eot_id|> </s> <s> [INST] <think> </think>",
]

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name, e.g. Paris"},
                "unit": {"type": "string", "description": "Temperature unit", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "array", "description": "Days ahead", "items": {"type": "integer"}},
            },
            "required": ["city"],
        },
    },
}

SEARCH_TOOL = {
    "type": "function",
    "function": {
        "name": "web_search",
        "description": "Search the web. Quotes \"work\" and so does 中文.",
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string", "description": "What to search for"}},
            "required": ["query"],
        },
    },
}


def _call(name: str, arguments: dict[str, Any], call_id: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


PROBES: list[dict[str, Any]] = [
    {
        "id": "plain",
        "features": ["plain"],
        "messages": [
            {"role": "user", "content": "Hi there!"},
            {"role": "assistant", "content": "Hello! How can I help you today?"},
        ],
    },
    {
        "id": "system",
        "features": ["plain", "system"],
        "messages": [
            {"role": "system", "content": "You are a terse assistant."},
            {"role": "user", "content": "What is 2+2?"},
            {"role": "assistant", "content": "4."},
        ],
    },
    {
        "id": "multi_turn",
        "features": ["plain", "system"],
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Name a fruit."},
            {"role": "assistant", "content": "Apple."},
            {"role": "user", "content": "Another one?"},
            {"role": "assistant", "content": "Banana."},
            {"role": "user", "content": "And a vegetable."},
            {"role": "assistant", "content": "Carrot."},
        ],
    },
    {
        "id": "multi_turn_no_system",
        "features": ["plain"],
        "messages": [
            {"role": "user", "content": "Translate 'cat' to French."},
            {"role": "assistant", "content": "Chat."},
            {"role": "user", "content": "And to German?"},
            {"role": "assistant", "content": "Katze."},
        ],
    },
    {
        "id": "empty_system",
        "features": ["plain", "system"],
        "messages": [
            {"role": "system", "content": ""},
            {"role": "user", "content": "An empty system prompt falls back to the default one."},
            {"role": "assistant", "content": "Understood."},
        ],
    },
    {
        "id": "adversarial",
        "features": ["adversarial"],
        "messages": [
            {"role": "system", "content": ADVERSARIAL[0] + " " + ADVERSARIAL[2]},
            {"role": "user", "content": ADVERSARIAL[1]},
            {"role": "assistant", "content": ADVERSARIAL[5]},
            {"role": "user", "content": ADVERSARIAL[3]},
            {"role": "assistant", "content": ADVERSARIAL[4]},
            {"role": "user", "content": ADVERSARIAL[6]},
            {"role": "assistant", "content": "ok: " + ADVERSARIAL[2]},
        ],
    },
    {
        "id": "whitespace",
        "features": ["whitespace"],
        "messages": [
            {"role": "user", "content": "  padded question  "},
            {"role": "assistant", "content": "\n\nAnswer after blank lines.\n"},
        ],
    },
    {
        "id": "tools",
        "features": ["tools"],
        "tools": [WEATHER_TOOL, SEARCH_TOOL],
        "messages": [
            {"role": "system", "content": "You can call tools."},
            {"role": "user", "content": "What's the weather in Paris?"},
            {"role": "assistant", "content": "", "tool_calls": [_call("get_weather", {"city": "Paris", "unit": "celsius"}, "call_1")]},
            {"role": "tool", "content": '{"temperature": 21, "condition": "sunny"}'},
            {"role": "assistant", "content": "It is 21 °C and sunny in Paris."},
        ],
    },
    {
        "id": "tools_no_system",
        "features": ["tools"],
        "tools": [WEATHER_TOOL],
        "messages": [
            {"role": "user", "content": "Weather in Tokyo, next 2 days?"},
            {"role": "assistant", "content": None, "tool_calls": [_call("get_weather", {"city": "Tokyo", "days": [1, 2]}, "call_2")]},
            {"role": "tool", "content": "rain, then clouds"},
            {"role": "assistant", "content": "Rain tomorrow, clouds the day after."},
        ],
    },
    {
        "id": "tools_parallel",
        "features": ["tools", "parallel_calls"],
        "tools": [WEATHER_TOOL, SEARCH_TOOL],
        "messages": [
            {"role": "user", "content": "Weather in Oslo and news about it?"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    _call("get_weather", {"city": "Oslo"}, "call_3"),
                    _call("web_search", {"query": "Oslo news \"today\""}, "call_4"),
                ],
            },
            {"role": "tool", "content": "cold; nothing new"},
            {"role": "assistant", "content": "Cold, and no news."},
        ],
    },
    {
        "id": "tools_with_text",
        "features": ["tools", "call_text"],
        "tools": [SEARCH_TOOL],
        "messages": [
            {"role": "user", "content": "Look up LLaMA-Factory."},
            {
                "role": "assistant",
                "content": "Let me search.",
                "tool_calls": [_call("web_search", {"query": "LLaMA-Factory"}, "call_5")],
            },
            {"role": "tool", "content": "A fine-tuning framework."},
            {"role": "assistant", "content": "It is a fine-tuning framework."},
        ],
    },
    {
        "id": "reasoning",
        "features": ["reasoning"],
        "messages": [
            {"role": "system", "content": "Think before answering."},
            {"role": "user", "content": "Is 17 prime?"},
            {"role": "assistant", "reasoning_content": "17 has no divisors but 1 and 17.", "content": "Yes."},
            {"role": "user", "content": "And 21?"},
            {"role": "assistant", "reasoning_content": "21 = 3 * 7.", "content": "No, 21 = 3 × 7."},
        ],
    },
    {
        "id": "reasoning_history_only",
        "features": ["reasoning"],
        "messages": [
            {"role": "user", "content": "Is 9 odd?"},
            {"role": "assistant", "reasoning_content": "9 = 2*4 + 1.", "content": "Yes."},
            {"role": "user", "content": "Thanks!"},
            {"role": "assistant", "content": "You're welcome."},
        ],
    },
    {
        "id": "reasoning_tools",
        "features": ["reasoning", "tools"],
        "tools": [WEATHER_TOOL],
        "messages": [
            {"role": "user", "content": "Should I take an umbrella in Rome?"},
            {
                "role": "assistant",
                "reasoning_content": "I need the weather.",
                "content": "",
                "tool_calls": [_call("get_weather", {"city": "Rome"}, "call_6")],
            },
            {"role": "tool", "content": "rain"},
            {"role": "assistant", "content": "Yes, take one."},
        ],
    },
]


def probe_corpus(features: set[str] | None = None) -> list[dict[str, Any]]:
    """A deep copy of the probes, optionally only those with one of ``features``."""
    probes = PROBES if features is None else [p for p in PROBES if features & set(p["features"])]
    return copy.deepcopy(probes)


PLAIN_PROBES = ("plain", "system", "multi_turn", "multi_turn_no_system")
"""The four plain conversations used to compare with LF's own Jinja export."""
