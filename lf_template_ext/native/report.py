"""Prefix-stability report: which native-mode policy a chat template needs, probe by probe.

Each probe is a small OpenAI-shaped conversation (two turns, with a system prompt, with
thoughts, with a tool call). For each, the template's renderings are laid out as native mode
lays out a training conversation (``native_layout.analyze``) and the result is one of:

* ``stable``: every turn is trained inside the one full rendering;
* ``expand (answer)`` / ``expand (prompt)``: some turn renders differently once later turns
  follow (its answer, or its prompt), so it needs the policy (``expand``: its own example;
  ``mask``: untrained; ``strict``: refused);
* ``error: ...``: the template cannot render the probe, or its generation prompt cannot be
  continued into the answer it renders (no policy helps: the sample is refused).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Optional

from .layout import NativeLayoutError, analyze
from .render import ChatRenderer, Conversation, NativeRenderError, anchors

_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather of a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]

PROBES: dict[str, Conversation] = {
    "plain": Conversation(
        [
            {"role": "user", "content": "Name a prime number."},
            {"role": "assistant", "content": "Seven."},
            {"role": "user", "content": "And another one?"},
            {"role": "assistant", "content": "Eleven."},
        ]
    ),
    "system": Conversation(
        [
            {"role": "system", "content": "You answer briefly."},
            {"role": "user", "content": "Name a prime number."},
            {"role": "assistant", "content": "Seven."},
            {"role": "user", "content": "And another one?"},
            {"role": "assistant", "content": "Eleven."},
        ]
    ),
    "reasoning": Conversation(
        [
            {"role": "user", "content": "Name a prime number."},
            {"role": "assistant", "content": "<think>\nSmall primes: 2, 3, 5, 7.\n</think>\n\nSeven."},
            {"role": "user", "content": "And another one?"},
            {"role": "assistant", "content": "<think>\nThe next one is 11.\n</think>\n\nEleven."},
        ]
    ),
    "tools": Conversation(
        [
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}],
            },
            {"role": "tool", "content": '{"temp_c": 21}'},
            {"role": "assistant", "content": "It is 21 degrees in Paris."},
        ],
        tools=_TOOLS,
    ),
}


def verdict(renderer: ChatRenderer, conv: Conversation) -> str:
    from .encode import special_text

    try:
        prompts, finals = renderer.turn_renders(conv)
        layout = analyze(prompts, finals, special_text(renderer.tokenizer), anchors(conv))
    except NativeRenderError as e:
        return "error: " + _short(e.reason)
    except NativeLayoutError as e:
        return "error: generation prompt not continued by the answer" if "generation prompt" in str(e) else "error: " + _short(str(e))
    reasons = sorted({v.reason for v in layout.verdicts if not v.in_full and v.reason})
    return "stable" if not reasons else f"expand ({', '.join(reasons)})"


def _short(text: str) -> str:
    text = text.split("\n")[0]
    return text if len(text) <= 60 else text[:57] + "..."


def stability_row(
    tokenizer: Any,
    *,
    template_kwargs: Optional[Mapping[str, Any]] = None,
    enable_thinking: Optional[bool] = True,
    probes: Optional[Mapping[str, Conversation]] = None,
) -> dict[str, str]:
    """Verdict per probe for the tokenizer's chat template (renders without the cache)."""
    renderer = ChatRenderer(tokenizer, template_kwargs=template_kwargs, enable_thinking=enable_thinking, cache=False)
    return {name: verdict(renderer, conv) for name, conv in (probes or PROBES).items()}


def policy_needed(row: Mapping[str, str]) -> str:
    rendered = [v for v in row.values() if not v.startswith("error")]
    if not rendered:
        return "n/a (no probe trainable)"
    if all(v == "stable" for v in rendered):
        return "none (prefix-stable)"
    return "expand or mask"


def markdown(rows: Sequence[tuple[str, str, Mapping[str, str]]]) -> str:
    """``rows`` of (template, tokenizer, verdicts) as a Markdown table."""
    names = list(PROBES)
    lines = [
        "| chat template | rendered with | " + " | ".join(names) + " | policy needed |",
        "|" + "---|" * (len(names) + 3),
    ]
    for template, tokenizer, row in rows:
        cells = " | ".join(row.get(n, "") for n in names)
        lines.append(f"| {template} | {tokenizer} | {cells} | {policy_needed(row)} |")
    return "\n".join(lines) + "\n"
