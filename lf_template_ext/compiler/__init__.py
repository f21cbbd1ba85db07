"""LF template -> Jinja compiler (pure core: spec in, text out)."""

from .assemble import compile_spec
from ..model.spec import FormatterSpec, SpecialToken, TemplateSpec, Text, TokenizerFacts, TokenRef

__all__ = ["compile_spec", "FormatterSpec", "SpecialToken", "TemplateSpec", "Text", "TokenizerFacts", "TokenRef"]
