"""Engine artifacts written by repair, the export hook and ``emit``: thin adapters over ``engines/``.

Each returns the file's text for an LF-prepared template (``lf_compat.Prepared``), its spec and
tokenizer facts; the engine modules stay pure and know nothing of model dirs.
"""

from __future__ import annotations

import json
from typing import Any, Optional


def emit_modelfile(
    prepared: Any, spec: Any, facts: Any, *, cutoff_len: Optional[int], from_: str = ".", engine_adds_bos: bool = False
) -> str:
    """Ollama Modelfile. The template writes LF's prefix (BOS) itself, unless ``engine_adds_bos``: the
    model Ollama builds from the dir adds a BOS to every prompt (see :func:`ollama_adds_bos`), so the
    TEMPLATE leaves it out instead of doubling it. ``lf-template repair model.gguf`` sets a GGUF's
    ``add_bos_token`` to false, which needs no such change."""
    from ..compiler import ollama

    return ollama.modelfile(
        spec,
        facts,
        from_=from_,
        stop_words=ollama.default_stop_words(spec, facts),
        cutoff_len=cutoff_len,
        jinja_may_take_over=True,  # the dir's tokenizer_config.json holds a chat_template the GGUF will carry
        engine_adds_bos=engine_adds_bos,
    )


def ollama_adds_bos(model_dir: str, tokenizer: Any) -> bool:
    """Whether ``ollama create`` from ``model_dir`` (``FROM .``) gives a model that adds a BOS itself."""
    from ..render.ollama import adds_bos

    return adds_bos(model_dir, tokenizer)


def emit_lmdeploy(spec: Any, facts: Any, *, model_name: str, tokenizer: Any = None) -> str:
    """LMDeploy ``--chat-template`` JSON (raises ``UnsupportedTemplateError`` when not expressible)."""
    from ..compiler import lmdeploy

    adds_bos = lmdeploy.tokenizer_adds_bos(tokenizer) if tokenizer is not None else None
    config = lmdeploy.chat_template_config(spec, facts, model_name=model_name, tokenizer_adds_bos=adds_bos)
    return json.dumps(config, indent=2, ensure_ascii=False) + "\n"


def lmdeploy_name_warning(model_dir_name: str) -> Optional[str]:
    from ..compiler import lmdeploy

    return lmdeploy.name_match_warning(model_dir_name)
