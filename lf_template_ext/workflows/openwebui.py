"""The Open WebUI model preset (``open-webui-model.json``): pure, no I/O.

Open WebUI 0.12.4's own format, read in its source: Workspace > Models > Import reads a JSON *list* of
models and posts it as ``{"models": [...]}`` to ``POST /api/v1/models/import`` (``routers/models.py:
import_models``; each entry a ``ModelForm``: ``id`` without whitespace, ``base_model_id``, ``name``,
``meta``, ``params``, ``is_active``). On a chat with the preset, ``routers/openai.py:
generate_chat_completion`` replaces ``model`` by ``base_model_id``, pops ``params.system`` (an empty one adds
nothing: ``utils/payload.py: apply_system_prompt_to_body``) and copies every other param into the request
under its own name unless the request already has it (``apply_model_params_to_body_openai``); ``stop``
strings go through ``bytes(s, 'utf-8').decode('unicode_escape')`` on the way, so they are written
escaped (:func:`stop_strings`). ``meta.capabilities.builtin_tools: false`` keeps Open WebUI from adding its
built-in tools to chats from its web UI (``utils/middleware.py``: ``use_builtin_tools``), which the template
would render as a tool prompt training never saw.

The system prompt is left empty: the compiled template writes LF's default system itself when a request
has no system message, and a preset system prompt would be sent as a system message that replaces it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

FILENAME = "open-webui-model.json"

#: LF generating argument -> the request key Open WebUI forwards verbatim to an OpenAI-compatible server
#: (vLLM's and SGLang's names; ``do_sample: false`` is ``temperature: 0``)
OPENAI_KEYS: dict[str, str] = {
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "repetition_penalty": "repetition_penalty",
    "max_new_tokens": "max_tokens",
}


def stop_strings(stop_tokens: list[str]) -> list[str]:
    """``stop`` as written in the preset: Open WebUI decodes each with ``unicode_escape`` before sending, so
    non-ASCII text and backslashes are escaped here to arrive unchanged."""
    return [s.encode("unicode_escape").decode("ascii") for s in stop_tokens]


def sampling_params(written: Mapping[str, Any]) -> dict[str, Any]:
    """The request params of ``model.generation.Sampling.written`` (greedy: ``temperature: 0`` alone)."""
    out: dict[str, Any] = {}
    greedy = written.get("do_sample") is False
    for lf_key, key in OPENAI_KEYS.items():
        if lf_key in written and not (greedy and lf_key in ("temperature", "top_p", "top_k")):
            out[key] = written[lf_key]
    if greedy:
        out = {"temperature": 0, **out}
    return out


def preset_id(served_name: str) -> str:
    """The preset's own id (Open WebUI refuses ids with whitespace)."""
    return "-".join(served_name.split()) + "-lf"


def model_preset(*, served_name: str, template: str, stop_tokens: list[str], sampling: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One Open WebUI model entry on top of the served model ``served_name``, as the import list."""
    params: dict[str, Any] = {"system": "", "stop": stop_strings(stop_tokens), **sampling_params(sampling)}
    return [
        {
            "id": preset_id(served_name),
            "base_model_id": served_name,
            "name": f"{served_name} (LF training format)",
            "meta": {
                "description": (
                    f"LLaMA-Factory template `{template}`: empty system prompt (the chat template adds training's "
                    "default), the template's stop strings, the sampling written beside the model. Written by lf-template-ext."
                ),
                "capabilities": {"builtin_tools": False},
            },
            "params": params,
            "is_active": True,
        }
    ]


def preset_json(**kwargs: Any) -> str:
    return json.dumps(model_preset(**kwargs), indent=2, ensure_ascii=False) + "\n"
