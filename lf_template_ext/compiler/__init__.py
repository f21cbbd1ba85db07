"""LF template -> Jinja compiler (pure core: spec in, text out)."""

from ..model.spec import FormatterSpec, SpecialToken, TemplateSpec, Text, TokenizerFacts, TokenRef
from .assemble import compile_spec

__all__ = ["compile_spec", "FormatterSpec", "SpecialToken", "TemplateSpec", "Text", "TokenizerFacts", "TokenRef"]
