"""LF's v1 path (``USE_V1=1 llamafactory-cli sft|merge``, LF 0.9.5): its renderers as the reference.

v1 does not use LF's ``Template`` classes at all. ``llamafactory.v1.core.utils.rendering.Renderer`` renders a
conversation with one of its own renderers (``chatml`` built in; ``qwen3`` and ``qwen3_nothink`` from
``v1/plugins/model_plugins/templates``), tokenizing each message's text on its own
(``add_special_tokens=False``) and concatenating; ``merge`` saves the base model's tokenizer unchanged, so the
merged dir serves the *base model's* chat template, whatever v1 trained with (Qwen3's own template adds an empty
``<think>`` block to the last answer; ``qwen3_nothink`` does not).

So for a dir trained on the v1 path the reference is v1's renderer itself, called live on the probe corpus
(:func:`reference_ids`: training ids and v1's generation prompt, ``enable_thinking=False`` as v1's own
``chat`` uses it), and the repair writes :data:`JINJA`: a Jinja template per covered renderer written to render
the same text, which ``workflows.v1`` verifies against the live renderer before anything is written (a newer
LF whose renderer changed is refused, not mis-served).

Covered: :data:`COVERED` (every renderer 0.9.5 ships). Anything else (a renderer registered by a user plugin)
is refused with exit 3 naming it.
"""

from __future__ import annotations

import json
import os
from typing import Any, Optional

from ..errors import UnsupportedTemplateError

#: LF's switch for the v1 path (``llamafactory/cli.py``: ``is_env_enabled("USE_V1")``)
ENV = "USE_V1"
#: the ``lf_path`` value of a record written on the v1 path (``modeldir.record``)
PATH = "v1"
#: v1 renderers with a Jinja twin here (LF 0.9.5 ships exactly these)
COVERED = ("chatml", "qwen3", "qwen3_nothink")
#: v1's default ``template`` (``v1/config/model_args.py``)
DEFAULT_TEMPLATE = "qwen3_nothink"
#: v1's renderers end every turn with this token (the stop id engines need)
END_OF_TURN = "<|im_end|>"


def enabled(environ: Optional[dict[str, str]] = None) -> bool:
    """LF's ``is_env_enabled("USE_V1")`` rule: ``1``, ``true`` or ``y``."""
    env = os.environ if environ is None else environ
    return env.get(ENV, "0").lower() in ("true", "y", "1")


def require_covered(template: Optional[str]) -> str:
    """``template`` when it is a covered v1 renderer, else :class:`UnsupportedTemplateError` (exit 3) naming why."""
    if template in COVERED:
        return template  # type: ignore[return-value]
    raise UnsupportedTemplateError(
        str(template),
        f"LF's v1 path (USE_V1=1) renderer {template!r} is not covered (covered: {', '.join(COVERED)}): the model dir "
        "is not checked or repaired; train without USE_V1 (LF's template is then checked and repaired), or compare "
        "the served template with v1's renderer yourself",
        feature="v1 renderer",
    )


def installed() -> bool:
    """The installed LF has the v1 renderer (``llamafactory.v1.core.utils.rendering``)."""
    import importlib.util

    try:
        return importlib.util.find_spec("llamafactory.v1.core.utils.rendering") is not None
    except ImportError:
        return False


# -- OpenAI-shaped conversation -> v1 messages ---------------------------------------------------------------


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def to_v1(conversation: dict[str, Any]) -> tuple[list[dict[str, Any]], Optional[str]]:
    """v1's ``Message`` list and tools string for an OpenAI-shaped conversation, as v1's converters build them
    (``v1/plugins/data_plugins/converter.py``): text parts, a ``reasoning`` part from ``reasoning_content``, one
    ``tool_call`` part per call (``{"name", "arguments"}`` as JSON), ``tool`` messages as text; tools as a JSON
    string. Empty text and reasoning are left out (v1's data has no empty parts)."""
    out: list[dict[str, Any]] = []
    for m in conversation["messages"]:
        role = m["role"]
        content: list[dict[str, str]] = []
        if role == "assistant":
            if _text(m.get("reasoning_content")):
                content.append({"type": "reasoning", "value": m["reasoning_content"]})
            if _text(m.get("content")):
                content.append({"type": "text", "value": m["content"]})
            for call in m.get("tool_calls") or []:
                fn = call.get("function", call)
                content.append({"type": "tool_call", "value": json.dumps({"name": fn["name"], "arguments": fn.get("arguments")})})
        else:
            content.append({"type": "text", "value": _text(m.get("content"))})
        out.append({"role": role, "content": content})
    tools = conversation.get("tools")
    return out, (json.dumps(tools) if tools else None)


def reference_ids(template: str, tokenizer: Any, conversation: dict[str, Any]) -> tuple[list[int], list[int]]:
    """v1's own ids for ``conversation``: the training sequence (``render_messages``) and the generation prompt of
    its last turn (all but the last message, ``is_generate=True``, ``enable_thinking`` as the conversation asks,
    else ``False``: v1's default, the one its own chat uses). Raises what v1 raises (a content type a renderer
    does not render)."""
    from llamafactory.v1.core.utils.rendering import Renderer

    messages, tools = to_v1(conversation)
    renderer = Renderer(template, tokenizer)
    full = renderer.render_messages(messages, tools)
    thinking = bool(conversation.get("enable_thinking", False))
    prompt = renderer.render_messages(messages[:-1], tools, is_generate=True, enable_thinking=thinking)
    return list(full["input_ids"]), list(prompt["input_ids"])


# -- the Jinja twins of v1's renderers -----------------------------------------------------------------------

_TOOLS_HEADER = (
    "{%- if tools %}\n"
    "{{- '<|im_start|>system\\n' }}\n"
    "{%- if messages[0].role == 'system' %}{{- (messages[0].content if messages[0].content is string else '') + '\\n\\n' }}{%- endif %}\n"
    "{{- '# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with "
    "function signatures within <tools></tools> XML tags:\\n<tools>' }}\n"
    "{%- for tool in tools %}{{- '\\n' }}{{- tool | tojson }}{%- endfor %}\n"
    "{{- '\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within "
    "<tool_call></tool_call> XML tags:\\n<tool_call>\\n{\"name\": <function-name>, \"arguments\": <args-json-object>}"
    "\\n</tool_call><|im_end|>\\n' }}\n"
    "{%- elif messages[0].role == 'system' %}\n"
    "{{- '<|im_start|>system\\n' + (messages[0].content if messages[0].content is string else '') + '<|im_end|>\\n' }}\n"
    "{%- endif %}\n"
)

_USER_AND_TOOL = (
    "{%- if message.role == 'user' or (message.role == 'system' and not loop.first) %}\n"
    "{{- '<|im_start|>' + message.role + '\\n' + content + '<|im_end|>\\n' }}\n"
    "{%- elif message.role == 'tool' %}\n"
    "{%- if loop.first or messages[loop.index0 - 1].role != 'tool' %}{{- '<|im_start|>user' }}{%- endif %}\n"
    "{{- '\\n<tool_response>\\n' + content + '\\n</tool_response>' }}\n"
    "{%- if loop.last or messages[loop.index0 + 1].role != 'tool' %}{{- '<|im_end|>\\n' }}{%- endif %}\n"
)

_TOOL_CALLS = (
    "{%- for tc in (message.tool_calls or []) %}\n"
    "{%- set call = tc.function if tc.function is defined else tc %}\n"
    "{%- if (loop.first and content) or not loop.first %}{{- '\\n' }}{%- endif %}\n"
    "{{- '<tool_call>\\n{\"name\": \"' + call.name + '\", \"arguments\": ' }}\n"
    "{ARGS}\n"
    "{{- '}\\n</tool_call>' }}\n"
    "{%- endfor %}\n"
)

_QWEN3 = (
    _TOOLS_HEADER
    + "{%- set ns = namespace(last_query_index=messages|length - 1, found=false) %}\n"
    "{%- for message in messages[::-1] %}\n"
    "{%- if not ns.found and message.role == 'user' and message.content is string and not "
    "(message.content.startswith('<tool_response>') and message.content.endswith('</tool_response>')) %}\n"
    "{%- set ns.found = true %}{%- set ns.last_query_index = (messages|length - 1) - loop.index0 %}\n"
    "{%- endif %}\n"
    "{%- endfor %}\n"
    "{%- for message in messages %}\n"
    "{%- set content = message.content if message.content is string else '' %}\n"
    + _USER_AND_TOOL
    + "{%- elif message.role == 'assistant' %}\n"
    "{%- set reasoning = message.reasoning_content if message.reasoning_content is string else '' %}\n"
    "{{- '<|im_start|>assistant\\n' }}\n"
    "{%- if loop.index0 > ns.last_query_index and (loop.last or reasoning) %}\n"
    "{{- '<think>\\n' + reasoning.strip('\\n') + '\\n</think>\\n\\n' + content.lstrip('\\n') }}\n"
    "{%- else %}{{- content }}{%- endif %}\n"
    + _TOOL_CALLS.replace(
        "{ARGS}", "{%- if call.arguments is string %}{{- call.arguments }}{%- else %}{{- call.arguments | tojson }}{%- endif %}"
    )
    + "{{- '<|im_end|>\\n' }}\n"
    "{%- endif %}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n"
    "{{- '<|im_start|>assistant\\n' }}\n"
    "{%- if enable_thinking is not defined or enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}\n"
    "{%- endif %}\n"
)

_QWEN3_NOTHINK = (
    _TOOLS_HEADER
    + "{%- for message in messages %}\n"
    "{%- set content = message.content if message.content is string else '' %}\n"
    + _USER_AND_TOOL
    + "{%- elif message.role == 'assistant' %}\n"
    "{{- '<|im_start|>assistant\\n' }}\n"
    "{%- if message.reasoning_content is string and message.reasoning_content %}"
    "{{- '<thinking>\\n' + message.reasoning_content + '\\n</thinking>\\n\\n' }}{%- endif %}\n"
    "{{- content }}\n"
    + _TOOL_CALLS.replace("{ARGS}", "{{- call.arguments | tojson }}")
    + "{{- '<|im_end|>\\n' }}\n"
    "{%- endif %}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n"
    "{%- if enable_thinking is defined and enable_thinking %}"
    "{{- raise_exception('LF v1 template qwen3_nothink does not support thinking mode (enable_thinking)') }}{%- endif %}\n"
    "{{- '<|im_start|>assistant\\n' }}\n"
    "{%- endif %}\n"
)

_CHATML = (
    "{%- for message in messages %}\n"
    "{%- if (message.reasoning_content is string and message.reasoning_content) or message.tool_calls %}"
    "{{- raise_exception('LF v1 template chatml renders text only: no reasoning_content, no tool_calls') }}{%- endif %}\n"
    "{{- '<|im_start|>' + message.role + '\\n' + (message.content if message.content is string else '') + '<|im_end|>\\n' }}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}\n"
)

#: the Jinja twin of each covered v1 renderer (verified against the live renderer before it is written)
JINJA: dict[str, str] = {"chatml": _CHATML, "qwen3": _QWEN3, "qwen3_nothink": _QWEN3_NOTHINK}
