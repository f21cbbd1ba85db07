"""Exceptions with messages that name the file, the template and the fix.

Every exception this package raises on purpose derives from :class:`LFTemplateExtError`, through
one of the categories below; a subclass may live in the module that raises it. The CLI maps them
in one place (``cli.main``, docs/contracts.md exit codes): ``UnsupportedTemplateError`` -> 3, every
other ``LFTemplateExtError`` -> 2 (bad input: nothing was changed).

* :class:`BadInputError`: something the user gave us (a dir, a file, a flag, a sample) we cannot
  work with; ``path`` and ``hint`` name the file and the fix.
* :class:`UnsupportedTemplateError`: a template feature the target cannot express.
* :class:`UnsupportedLFVersionError`: an LLaMA-Factory this release cannot reproduce.
* :class:`ConversationError`: one conversation that LF, a template or an engine refuses. Checks
  catch it and report that conversation (a case or sample status); it ends a command only when a
  command has a single conversation to work on.
* :class:`InternalSignal`: control flow inside an algorithm (e.g. "cannot trace this render");
  never escapes the module that raises it.
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


class UnsupportedLFVersionError(BadInputError):
    """The installed LLaMA-Factory is not one this release knows how to reproduce."""


class ConversationError(LFTemplateExtError, ValueError):
    """One conversation cannot be encoded, rendered or sent (the message says which rule it breaks)."""


class InternalSignal(LFTemplateExtError):
    """Raised and caught inside one algorithm to change its path; never reaches a caller."""
