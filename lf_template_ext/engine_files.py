"""Engine artifacts written by repair, the export hook and ``emit``: thin adapters over ``engines/``.

Each returns the file's text for an LF-prepared template (``lf_compat.Prepared``), its spec and
tokenizer facts; the engine modules stay pure and know nothing of model dirs.
"""

from __future__ import annotations

import json
from typing import Any, Optional


def emit_modelfile(prepared: Any, spec: Any, facts: Any, *, cutoff_len: Optional[int], from_: str = ".") -> str:
    """Ollama Modelfile. The template writes LF's prefix (BOS) itself: the GGUF Ollama builds should say
    ``add_bos_token=false`` (``lf-template repair model.gguf`` sets it)."""
    from .engines import ollama

    return ollama.modelfile(
        spec,
        facts,
        from_=from_,
        stop_words=ollama.default_stop_words(spec, facts),
        cutoff_len=cutoff_len,
        jinja_may_take_over=True,  # the dir's tokenizer_config.json holds a chat_template the GGUF will carry
    )


def emit_lmdeploy(spec: Any, facts: Any, *, model_name: str, tokenizer: Any = None) -> str:
    """LMDeploy ``--chat-template`` JSON (raises ``UnsupportedTemplateError`` when not expressible)."""
    from .engines import lmdeploy

    adds_bos = lmdeploy.tokenizer_adds_bos(tokenizer) if tokenizer is not None else None
    config = lmdeploy.chat_template_config(spec, facts, model_name=model_name, tokenizer_adds_bos=adds_bos)
    return json.dumps(config, indent=2, ensure_ascii=False) + "\n"


def lmdeploy_name_warning(model_dir_name: str) -> Optional[str]:
    from .engines import lmdeploy

    return lmdeploy.name_match_warning(model_dir_name)
