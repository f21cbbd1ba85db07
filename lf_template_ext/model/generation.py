"""Sampling: what LF's chat decodes with vs what each engine takes as its defaults.

``llamafactory-cli chat`` (and ``api``/``webchat``) sample with LF's ``GeneratingArguments`` (0.9.5:
``do_sample`` true, ``temperature`` 0.95, ``top_p`` 0.7, ``top_k`` 50, ``repetition_penalty`` 1.0,
``max_new_tokens`` 1024), set in the YAML or LLaMA Board; engines take their defaults from the model:
vLLM and SGLang from ``generation_config.json`` (``temperature``, ``top_p``, ``top_k``,
``repetition_penalty``, ``max_new_tokens``; vLLM's ``--generation-config auto``), LMDeploy 0.18 from it too
(``lmdeploy/serve/core/generation_config.py``, ``--generation-config auto``), Ollama from the Modelfile's
``PARAMETER`` lines. "Answers differ from LF's chat" is as often this as the template.

One table (:data:`SAMPLING`) maps each LF key to its ``generation_config.json`` key and Ollama
``PARAMETER``. Greedy decoding (``do_sample: false``) is written as ``do_sample: false`` alone in
``generation_config.json`` (transformers refuses to save a greedy config with sampling keys, and an
engine that ignores ``do_sample`` needs ``temperature: 0`` per request: SERVING.md says so) and as
``PARAMETER temperature 0`` in a Modelfile.

Pure data: no LF, no transformers, no file I/O (LF's own defaults are handed in by ``lf.compat``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable, Optional

#: ``template_ext_generation`` / ``--generation``: ``model`` (default) writes only the sampling values
#: the user set for LF's chat; ``lf`` also writes LF chat's own defaults for the rest.
GENERATION_MODES = ("model", "lf")


@dataclass(frozen=True)
class SamplingKey:
    lf: str  # LF GeneratingArguments field (and YAML key)
    hf: str  # generation_config.json key
    ollama: Optional[str]  # Modelfile PARAMETER (None: Ollama has no such parameter)
    parse: Callable[[Any], Any]
    #: what vLLM uses when generation_config.json does not set it (vllm SamplingParams defaults)
    engine_default: Any


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "y")
    return bool(value)


SAMPLING: tuple[SamplingKey, ...] = (
    SamplingKey("do_sample", "do_sample", None, _bool, True),
    SamplingKey("temperature", "temperature", "temperature", float, 1.0),
    SamplingKey("top_p", "top_p", "top_p", float, 1.0),
    SamplingKey("top_k", "top_k", "top_k", int, "off"),
    SamplingKey("repetition_penalty", "repetition_penalty", "repeat_penalty", float, 1.0),
    SamplingKey("max_new_tokens", "max_new_tokens", "num_predict", int, "up to the context"),
)
SAMPLING_KEYS: tuple[str, ...] = tuple(k.lf for k in SAMPLING)
_BY_LF = {k.lf: k for k in SAMPLING}
#: keys only sampling reads: dropped from generation_config.json for greedy decoding
_SAMPLING_ONLY = ("temperature", "top_p", "top_k")


@dataclass(frozen=True)
class Sampling:
    """The sampling of one run: ``written`` (the values to write into the engines' files), ``lf_chat`` (what
    LF's chat samples with: its defaults overlaid with what the user set) and the ``mode``."""

    written: dict[str, Any]
    lf_chat: dict[str, Any]
    mode: str = "model"

    @classmethod
    def of(cls, given: Mapping[str, Any], mode: str, lf_defaults: Mapping[str, Any]) -> "Sampling":
        lf_chat = parse_sampling(lf_defaults)
        lf_chat.update(parse_sampling(given))
        return cls(written=chosen(given, mode, lf_defaults), lf_chat=lf_chat, mode=mode)


def parse_sampling(values: Mapping[str, Any]) -> dict[str, Any]:
    """The sampling keys of ``values`` (a YAML, LF's generating arguments), typed; others ignored."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        spec = _BY_LF.get(key)
        if spec is not None and value is not None:
            try:
                out[key] = spec.parse(value)
            except (TypeError, ValueError):
                raise ValueError(f"invalid value {value!r} for {key}") from None
    return out


def chosen(given: Mapping[str, Any], mode: str, lf_defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The sampling values to write: the ones the user set, plus LF chat's defaults in mode ``lf``."""
    if mode not in GENERATION_MODES:
        raise ValueError(f"unknown generation mode {mode!r} (choose {', '.join(GENERATION_MODES)})")
    out = parse_sampling(lf_defaults) if mode == "lf" else {}
    out.update(parse_sampling(given))
    return out


def greedy(values: Mapping[str, Any]) -> bool:
    return values.get("do_sample") is False


def generation_config_update(values: Mapping[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """``(set, remove)``: the ``generation_config.json`` keys to set, and the ones to drop (greedy)."""
    if greedy(values):
        kept = {_BY_LF[k].hf: v for k, v in values.items() if k not in _SAMPLING_ONLY}
        return kept, _SAMPLING_ONLY
    return {_BY_LF[k].hf: v for k, v in values.items()}, ()


def modelfile_parameters(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``PARAMETER`` lines (name, value) for a Modelfile; greedy decoding is ``temperature 0``."""
    out: list[tuple[str, str]] = []
    for spec in SAMPLING:
        if spec.ollama is None or spec.lf not in values:
            continue
        if greedy(values) and spec.lf in _SAMPLING_ONLY:
            continue
        out.append((spec.ollama, _number(values[spec.lf])))
    if greedy(values):
        out.insert(0, ("temperature", "0"))
    return out


def _number(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def side_by_side(lf_chat: Mapping[str, Any], served: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per key: LF chat's value, what an engine reading ``served`` (a ``generation_config.json``) uses
    (a key it lacks: vLLM's own default), and whether they agree. Both greedy: the sampling keys do not apply."""
    both_greedy = lf_chat.get("do_sample") is False and served.get("do_sample") is False
    rows = []
    for spec in SAMPLING:
        lf_value = lf_chat.get(spec.lf)
        from_file = spec.hf in served
        value = served[spec.hf] if from_file else spec.engine_default
        if both_greedy and spec.lf in _SAMPLING_ONLY:
            same = True
        elif spec.lf == "do_sample":
            same = (lf_value is False) == (served.get("do_sample") is False)
        else:
            same = lf_value == value
        rows.append(
            {
                "key": spec.lf,
                "lf_chat": lf_value,
                "served": value,
                "served_from": "generation_config.json" if from_file else "engine default",
                "same": same,
            }
        )
    return rows


def table_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The side-by-side rows as a Markdown table (SERVING.md)."""
    lines = ["| key | LF chat | served | same |", "|---|---|---|---|"]
    for r in rows:
        served = f"{r['served']} ({r['served_from']})"
        lines.append(f"| `{r['key']}` | {r['lf_chat']} | {served} | {'yes' if r['same'] else '**no**'} |")
    return lines
