"""Exceptions with messages that name the file, the template and the fix.

The CLI maps them to exit codes (CONTRACTS.md): ``BadInputError`` -> 2,
``UnsupportedTemplateError`` -> 3.
"""

from __future__ import annotations

from typing import Optional


class LFTemplateExtError(Exception):
    """Base class of every error this package raises on purpose."""


class BadInputError(LFTemplateExtError):
    """The user gave us something we cannot work with (missing dir, malformed JSON, ...).

    ``path`` names the offending file when there is one; ``hint`` says how to fix it.
    """

    def __init__(self, message: str, *, path: Optional[str] = None, hint: Optional[str] = None) -> None:
        self.path = path
        self.hint = hint
        text = message
        if path:
            text = f"{path}: {text}"
        if hint:
            text = f"{text}\n  fix: {hint}"
        super().__init__(text)


class UnsupportedTemplateError(LFTemplateExtError):
    """An LF template uses a feature the target (Jinja, Ollama, LMDeploy, ...) cannot express.

    Raised instead of silently dropping the feature.
    """

    def __init__(self, template: str, reason: str, feature: str = "") -> None:
        self.template = template
        self.reason = reason
        self.feature = feature
        where = f"LF template '{template}'" if template else "LF template"
        what = f" ({feature})" if feature else ""
        super().__init__(f"{where}{what}: {reason}")


class UnsupportedLFVersionError(LFTemplateExtError):
    """The installed LLaMA-Factory is not one this release knows how to reproduce."""
