"""What a LoRA adapter dir holds, read without torch: ``adapter_config.json`` and the tensors' names and
shapes from the safetensors header.

Engines that apply an adapter at serve time (vLLM, SGLang, LMDeploy's PyTorch engine, llama.cpp's
``--lora``, Ollama's ``ADAPTER``) load LoRA A/B pairs onto the base model. What else an adapter can
carry decides whether that works: full copies of trained modules (PEFT ``modules_to_save``, e.g.
``embed_tokens``/``lm_head`` after LF added tokens with ``resize_vocab``), a rank above the engine's
limit, DoRA, LoRA on the vision tower of a multimodal model. :func:`read_adapter` collects these facts;
``workflows.adapters`` turns them into what each engine does with them.

The safetensors header is the file's first 8 bytes (little-endian header length) and a JSON object
of ``name -> {dtype, shape, data_offsets}``: read directly, so no weight is loaded.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass, field
from typing import Any, Optional

from ..errors import BadInputError
from .files import ADAPTER_CONFIG, load_json_object

ADAPTER_WEIGHTS = ("adapter_model.safetensors",)
#: a safetensors header larger than this is not an adapter's (the weights follow the header)
MAX_HEADER_BYTES = 100 * 1024 * 1024
#: module-name parts of the vision side of multimodal models (HF/LF naming: Qwen2-VL ``visual``, LLaVA
#: ``vision_tower``/``multi_modal_projector``, InternVL ``vision_model``/``mlp1``, MiniCPM-V ``vpm``/``resampler``)
VISION_PARTS = ("visual", "vision_tower", "vision_model", "multi_modal_projector", "mm_projector", "vpm", "resampler", "image_newline")


@dataclass(frozen=True)
class AdapterFacts:
    path: str
    #: the largest rank of any module (``r`` and ``rank_pattern``)
    rank: int
    target_modules: tuple[str, ...]
    modules_to_save: tuple[str, ...]
    use_dora: bool
    base_model: Optional[str]
    #: tensors that are not LoRA A/B pairs (name -> shape): full copies of trained modules
    full_tensors: dict[str, tuple[int, ...]] = field(default_factory=dict)
    #: LoRA targets (or saved modules) on the vision side of a multimodal model
    vision_modules: tuple[str, ...] = ()
    #: rows of a saved embedding / lm_head (the vocabulary it was trained with), when the adapter carries one
    saved_vocab: Optional[int] = None


def adapter_base_model(model_dir: str) -> Optional[str]:
    """``base_model_name_or_path`` of a LoRA adapter dir's ``adapter_config.json`` (PEFT writes it)."""
    path = os.path.join(model_dir, ADAPTER_CONFIG)
    if not os.path.isfile(path):
        return None
    value = load_json_object(path).get("base_model_name_or_path")
    return value if isinstance(value, str) and value.strip() else None


def safetensors_shapes(path: str) -> dict[str, tuple[int, ...]]:
    """``name -> shape`` of every tensor in a safetensors file, from its header alone."""
    try:
        with open(path, "rb") as f:
            raw = f.read(8)
            if len(raw) != 8:
                raise ValueError("shorter than a safetensors header")
            (size,) = struct.unpack("<Q", raw)
            if size > MAX_HEADER_BYTES:
                raise ValueError(f"header of {size} bytes")
            header = json.loads(f.read(size))
    except (ValueError, UnicodeDecodeError) as e:
        raise BadInputError(f"not a safetensors file: {e}", path=path) from None
    return {name: tuple(int(n) for n in meta["shape"]) for name, meta in header.items() if name != "__metadata__"}


def _names(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value or ())


def _vision_part(name: str) -> Optional[str]:
    """The vision-side module a tensor belongs to (``visual``, ``vision_tower``, ...), or ``None``."""
    return next((p for p in name.split(".") if p in VISION_PARTS), None)


def read_adapter(model_dir: str) -> Optional[AdapterFacts]:
    """The facts of the LoRA adapter in ``model_dir`` (``None``: not an adapter dir)."""
    cfg_path = os.path.join(model_dir, ADAPTER_CONFIG)
    if not os.path.isfile(cfg_path):
        return None
    cfg = load_json_object(cfg_path)
    ranks = [int(cfg.get("r") or 0)] + [int(v) for v in (cfg.get("rank_pattern") or {}).values()]
    shapes: dict[str, tuple[int, ...]] = {}
    for name in ADAPTER_WEIGHTS:
        path = os.path.join(model_dir, name)
        if os.path.isfile(path):
            shapes = safetensors_shapes(path)
            break
    full = {n: s for n, s in shapes.items() if ".lora_" not in n and "lora_magnitude_vector" not in n}
    targets = _names(cfg.get("target_modules"))
    saved = _names(cfg.get("modules_to_save"))
    # from the tensors, not target_modules (a regex there may name the vision tower only to exclude it)
    vision = sorted({p for p in map(_vision_part, shapes) if p})
    vocab = next(
        (s[0] for n, s in full.items() if n.endswith(("embed_tokens.weight", "lm_head.weight", "wte.weight")) and s),
        None,
    )
    base = cfg.get("base_model_name_or_path")
    return AdapterFacts(
        path=model_dir,
        rank=max(ranks),
        target_modules=targets,
        modules_to_save=saved,
        use_dora=bool(cfg.get("use_dora")),
        base_model=base if isinstance(base, str) and base.strip() else None,
        full_tensors=full,
        vision_modules=tuple(vision),
        saved_vocab=vocab,
    )
