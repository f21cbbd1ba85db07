"""Engine artifacts written by repair/export/emit: thin adapters over ``engines/``."""

from __future__ import annotations

from typing import Any, Optional

from .errors import UnsupportedTemplateError


def emit_modelfile(prepared: Any, spec: Any, facts: Any, *, cutoff_len: Optional[int]) -> str:
    try:
        from .engines import ollama  # noqa: F401
    except ImportError:
        raise UnsupportedTemplateError(spec.name, "the Ollama emitter is not part of this build", "ollama") from None
    raise UnsupportedTemplateError(spec.name, "the Ollama emitter is not wired yet", "ollama")


def emit_lmdeploy(spec: Any, facts: Any, *, model_name: str) -> str:
    try:
        from .engines import lmdeploy  # noqa: F401
    except ImportError:
        raise UnsupportedTemplateError(spec.name, "the LMDeploy emitter is not part of this build", "lmdeploy") from None
    raise UnsupportedTemplateError(spec.name, "the LMDeploy emitter is not wired yet", "lmdeploy")
