"""Can an engine serve this LoRA adapter as an adapter? One rule, from the adapter's facts
(``modeldir.adapter``) and the base model's vocabulary, read by SERVING.md, the report and ``check``.

Sources for each rule (checked for this file, not from memory):

* vLLM ``vllm/lora/peft_helper.py`` ``PEFTHelper._validate_features``/``validate_legal``: an adapter with
  ``modules_to_save`` ("vLLM only supports modules_to_save being None") or DoRA is refused, and a rank
  above ``--max-lora-rank`` (``vllm/config/lora.py``: default 16, one of ``MaxLoRARanks``) too; the
  refusal comes at the first request that uses the adapter, not at start-up (LF issue #9545);
* vLLM ``--trust-request-chat-template``: a request's own ``chat_template`` is refused without it (how
  several adapters with different templates share one server);
* a saved embedding / lm_head with another number of rows than the base model's vocabulary (LF's
  ``resize_vocab``, or tokens added by a template) cannot be applied to the base model by any engine:
  only the merged model has the new rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

#: vLLM ``MaxLoRARanks`` and its default ``max_lora_rank``
VLLM_MAX_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
VLLM_DEFAULT_MAX_LORA_RANK = 16


@dataclass(frozen=True)
class AdapterFinding:
    """``engine`` (an engine name, or ``"all"``); ``action``: ``merge`` (cannot be served as an adapter: serve
    the merged model), ``flag`` (needs ``flag`` on the command line) or ``note`` (true, not blocking)."""

    engine: str
    action: str
    text: str
    flag: Optional[str] = None

    def to_dict(self) -> dict[str, Any]:
        return {"engine": self.engine, "action": self.action, "text": self.text, "flag": self.flag}


def vllm_rank_flag(rank: int) -> Optional[int]:
    """The ``--max-lora-rank`` vLLM needs for ``rank`` (None: the default does; 0: no value is enough)."""
    if rank <= VLLM_DEFAULT_MAX_LORA_RANK:
        return None
    return next((r for r in VLLM_MAX_LORA_RANKS if r >= rank), 0)


def adapter_findings(facts: Any, base_vocab: Optional[int], tokenizer_differs: Optional[bool] = None) -> list[AdapterFinding]:
    """What each engine does with the adapter (``modeldir.adapter.AdapterFacts``); ``base_vocab``: the base
    model's vocabulary size (None: unknown); ``tokenizer_differs``: the adapter dir's tokenizer vs the base's."""
    out: list[AdapterFinding] = []
    if facts.saved_vocab is not None and base_vocab is not None and facts.saved_vocab != base_vocab:
        out.append(
            AdapterFinding(
                "all", "merge",
                f"resized vocabulary: the adapter's embedding has {facts.saved_vocab} rows, the base model's "
                f"{base_vocab}; no engine can apply it to the base model: serve the merged model",
            )  # fmt: skip
        )
    elif tokenizer_differs:
        out.append(
            AdapterFinding(
                "all", "merge",
                "the adapter's tokenizer is not the base model's (tokens were added in training): engines load the "
                "base model's tokenizer with the adapter; serve the merged model",
            )  # fmt: skip
        )
    if facts.modules_to_save:
        saved = ", ".join(facts.modules_to_save)
        out.append(
            AdapterFinding(
                "vllm", "merge",
                f"modules_to_save ({saved}) are full copies of trained modules, not LoRA weights: vLLM refuses the "
                "adapter at its first request (\"vLLM only supports modules_to_save being None\"); serve the merged model",
            )  # fmt: skip
        )
    if facts.use_dora:
        out.append(AdapterFinding("vllm", "merge", "DoRA: vLLM refuses it (\"vLLM does not yet support DoRA\"); serve the merged model"))
    flag = vllm_rank_flag(facts.rank)
    if flag == 0:
        out.append(
            AdapterFinding("vllm", "merge", f"LoRA rank {facts.rank} is above vLLM's largest --max-lora-rank (512): serve the merged model")
        )
    elif flag is not None:
        out.append(
            AdapterFinding(
                "vllm", "flag",
                f"LoRA rank {facts.rank} is above vLLM's default --max-lora-rank {VLLM_DEFAULT_MAX_LORA_RANK}, which "
                "refuses the adapter",
                flag=f"--max-lora-rank {flag}",
            )  # fmt: skip
        )
    if facts.vision_modules:
        parts = ", ".join(facts.vision_modules)
        out.append(
            AdapterFinding(
                "all", "note",
                f"LoRA weights on the vision side ({parts}): an engine that applies LoRA to the language model only "
                "skips them without a word; check that yours applies them, or serve the merged model",
            )  # fmt: skip
        )
    return out


def blocks(findings: list[AdapterFinding], engine: str) -> list[AdapterFinding]:
    """The findings that keep ``engine`` from serving the adapter (merge first)."""
    return [f for f in findings if f.action == "merge" and f.engine in (engine, "all")]


def flags(findings: list[AdapterFinding], engine: str) -> str:
    """The extra flags ``engine``'s adapter command needs (leading space), or ``""``."""
    return "".join(f" {f.flag}" for f in findings if f.action == "flag" and f.engine == engine and f.flag)


def check_adapter(model_dir: str, base_model: Optional[str], tokenizer: Any = None) -> Optional[dict[str, Any]]:
    """The adapter in ``model_dir`` and what each engine does with it, as the report's ``adapter`` entry
    (``None``: not an adapter dir). Reads the base model's ``config.json`` and tokenizer when ``base_model``
    is a local dir; otherwise the vocabulary comparison is left out (and said so)."""
    import os

    from ..modeldir.adapter import read_adapter
    from ..modeldir.files import CONFIG, inspect_dir, load_json_object

    facts = read_adapter(model_dir)
    if facts is None:
        return None
    base_vocab: Optional[int] = None
    differs: Optional[bool] = None
    local = bool(base_model) and os.path.isdir(str(base_model))
    if local:
        cfg_path = os.path.join(str(base_model), CONFIG)
        if os.path.isfile(cfg_path):
            cfg = load_json_object(cfg_path)
            value = cfg.get("vocab_size") or (cfg.get("text_config") or {}).get("vocab_size")
            base_vocab = int(value) if isinstance(value, int) else None
        if tokenizer is not None and inspect_dir(str(base_model)).has_tokenizer:
            from ..modeldir.tokenizer import load_tokenizer

            differs = len(load_tokenizer(str(base_model))) != len(tokenizer)
    findings = adapter_findings(facts, base_vocab, differs)
    return {
        "rank": facts.rank,
        "target_modules": list(facts.target_modules),
        "modules_to_save": list(facts.modules_to_save),
        "use_dora": facts.use_dora,
        "saved_vocab": facts.saved_vocab,
        "base_model": base_model,
        "base_vocab": base_vocab,
        "base_checked": local,
        "findings": [f.to_dict() for f in findings],
    }


def findings_of(entry: Optional[dict[str, Any]]) -> list[AdapterFinding]:
    """The findings of a report's ``adapter`` entry (:func:`check_adapter`)."""
    return [AdapterFinding(**f) for f in (entry or {}).get("findings", [])]
