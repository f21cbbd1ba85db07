"""The stop-id rule, written once.

Engines stop on a set of ids; LF's chat stops on ``Template.get_stop_token_ids``. Both are built
the same way: the tokenizer's eos first, then more ids in the order their source lists them,
each id once, missing ones (``None``) dropped. vLLM, SGLang and LMDeploy stop on every id of
``generation_config.json``'s ``eos_token_id`` list plus the tokenizer's eos, so a template stop id
missing from that set means the served model runs on past its end-of-turn token.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Optional


def ordered_ids(*groups: Iterable[Optional[int]]) -> list[int]:
    """Every id of ``groups`` in order, first occurrence kept, ``None`` dropped."""
    out: list[int] = []
    for group in groups:
        for i in group:
            if i is not None and i not in out:
                out.append(i)
    return out


def missing_ids(required: Iterable[int], available: Iterable[int]) -> list[int]:
    """The ids of ``required`` (in order) an engine stopping on ``available`` would not stop on."""
    have = set(available)
    return [i for i in required if i not in have]
