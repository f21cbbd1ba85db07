"""Options of ``template: native`` (YAML ``template_ext_native_*`` keys or environment variables).

The enable hook strips every ``template_ext_*`` key from LF's arguments before LF's parser
sees it and keeps it in ``model.options.EXTENSION_OPTIONS``; this module reads them from there,
falling back to environment variables so tests and scripts can set them without a YAML:

========================================  =====================================  ===========
YAML key                                  environment variable                   default
========================================  =====================================  ===========
``template_ext_native_policy``            ``LF_TEMPLATE_EXT_NATIVE_POLICY``      ``expand``
``template_ext_native_kwargs`` (mapping)  ``LF_TEMPLATE_EXT_NATIVE_KWARGS``      ``{}``
                                          (JSON object)
``template_ext_chat_template``            ``LF_TEMPLATE_EXT_CHAT_TEMPLATE``      the model's
(``FILE`` or ``lf:NAME``)                                                        own
========================================  =====================================  ===========

Policies, for assistant turns whose rendering inside the whole conversation differs from
what the engine renders when that turn is the one being generated (templates that are not
prefix-stable, see ``native_layout``):

* ``expand``: such a turn is trained in an extra example, rendered exactly as the engine
  renders the conversation up to and including that turn;
* ``mask``: such a turn is left untrained (its tokens stay in the input, labelled
  ``IGNORE_INDEX``); one example per conversation, as LF makes;
* ``strict``: refuse the sample (LF main's v1 behaviour for non-prefix-stable templates).

``template_ext_native_kwargs`` are extra chat-template variables (e.g. ``date_string`` for
Llama-3.x) passed to every render; serve with the same ones
(``--default-chat-template-kwargs`` in vLLM).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

from ..errors import BadInputError
from ..model.options import CHAT_TEMPLATE_KEY, EXTENSION_KEYS, EXTENSION_OPTIONS, NATIVE_KWARGS_KEY, NATIVE_POLICY_KEY

POLICIES = ("expand", "mask", "strict")
POLICY_KEY = NATIVE_POLICY_KEY
KWARGS_KEY = NATIVE_KWARGS_KEY
POLICY_ENV = EXTENSION_KEYS[POLICY_KEY]
KWARGS_ENV = EXTENSION_KEYS[KWARGS_KEY]
CHAT_TEMPLATE_ENV = EXTENSION_KEYS[CHAT_TEMPLATE_KEY]


class NativeOptionError(BadInputError, ValueError):
    """A ``template_ext_native_*`` option has a value we cannot use (the message says the fix)."""


@dataclass(frozen=True)
class NativeOptions:
    policy: str = "expand"
    template_kwargs: Mapping[str, Any] = field(default_factory=dict)
    #: ``template_ext_chat_template``: a Jinja file or ``lf:NAME``, with where it was given; ``None``: the model's own
    chat_template: Optional[tuple[str, str]] = None


def parse_policy(value: Any, source: str) -> str:
    policy = str(value).strip().lower().replace("-", "_")
    if policy not in POLICIES:
        raise NativeOptionError(
            f"{source}: unknown native-mode policy {value!r}; use one of {', '.join(POLICIES)} "
            "(see docs/native-mode.md)"
        )
    return policy


def parse_kwargs(value: Any, source: str) -> dict[str, Any]:
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            raise NativeOptionError(f"{source}: expected a JSON object of chat-template variables: {e}") from None
    if not isinstance(value, Mapping):
        raise NativeOptionError(f"{source}: expected a mapping of chat-template variables, got {type(value).__name__}")
    reserved = {"messages", "tools", "add_generation_prompt", "enable_thinking", "chat_template"} & set(value)
    if reserved:
        raise NativeOptionError(
            f"{source}: {', '.join(sorted(reserved))} cannot be set here; native mode sets them from the sample "
            "and LF's own options (`enable_thinking` is LF's data argument of the same name)"
        )
    return dict(value)


def current(overrides: Optional[Mapping[str, Any]] = None) -> NativeOptions:
    """The options in effect: ``overrides`` > hook options (YAML) > environment > defaults."""
    sources: list[tuple[Mapping[str, Any], str]] = []
    if overrides:
        sources.append((overrides, "native options"))
    sources.append((EXTENSION_OPTIONS, "YAML"))
    env = {
        POLICY_KEY: os.environ.get(POLICY_ENV),
        KWARGS_KEY: os.environ.get(KWARGS_ENV),
        CHAT_TEMPLATE_KEY: os.environ.get(CHAT_TEMPLATE_ENV or ""),
    }
    sources.append(({k: v for k, v in env.items() if v not in (None, "")}, "environment"))

    def pick(key: str, env_name: str) -> tuple[Any, str]:
        for mapping, label in sources:
            if key in mapping:
                return mapping[key], (env_name if label == "environment" else f"{label} key {key}")
        return None, key

    policy_value, policy_src = pick(POLICY_KEY, POLICY_ENV)
    kwargs_value, kwargs_src = pick(KWARGS_KEY, KWARGS_ENV)
    chosen, chosen_src = pick(CHAT_TEMPLATE_KEY, CHAT_TEMPLATE_ENV or "")
    return NativeOptions(
        policy=parse_policy(policy_value, policy_src) if policy_value is not None else "expand",
        template_kwargs=parse_kwargs(kwargs_value, kwargs_src),
        chat_template=(str(chosen).strip(), chosen_src) if chosen not in (None, "") else None,
    )
