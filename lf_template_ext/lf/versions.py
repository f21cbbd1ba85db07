"""Which LLaMA-Factory this is, and whether the adapter (``lf.compat``) can run on it.

The version policy of docs/lf-versions.md, in one place: the releases in ``TESTED`` (0.9.4, 0.9.5 and the
dev line 0.9.6.dev0, recognised by its template code's fingerprint since LF's main keeps that version
string across commits) are known; older ones are refused; any other version is used by proof:
:func:`require_features` refuses (``UnsupportedLFVersionError``, exit 2) when something the adapter calls
is gone, and ``verifier.gate`` proves each template before anything is written (``compat.proof_reasons``).

Cheap to import: reading the version imports only ``llamafactory/__init__`` (``extras/env.py``).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Optional

from ..errors import UnsupportedLFVersionError

#: LF versions whose template code this package was tested against (docs/lf-versions.md). A
#: release (``0.9.5``) also covers its post releases; a dev version only itself.
TESTED = ("0.9.4", "0.9.5", "0.9.6.dev0")


def installed_version() -> Optional[str]:
    """The version of the ``llamafactory`` that imports here, or ``None`` if there is none.

    ``import llamafactory`` only reads ``extras/env.py`` (milliseconds); asking the module
    rather than the dist metadata also covers source checkouts on ``PYTHONPATH``.
    """
    import importlib.util

    if importlib.util.find_spec("llamafactory") is None:
        return None
    import llamafactory

    return str(getattr(llamafactory, "__version__", "") or "") or None


def _release(version: str) -> str:
    from packaging.version import Version

    v = Version(version)
    return ".".join(str(p) for p in v.release[:3])


def tested_version(version: str) -> Optional[str]:
    """The entry of ``TESTED`` that ``version`` is (``0.9.5.post1`` -> ``0.9.5``), or ``None``."""
    from packaging.version import InvalidVersion, Version

    if version in TESTED:
        return version
    try:
        v = Version(version)
    except InvalidVersion:
        return None
    if v.is_prerelease or v.is_devrelease:
        return None
    release = _release(version)
    return release if release in TESTED else None


def check_version(version: Optional[str] = None) -> str:
    """The installed LF's version: the ``TESTED`` entry it is, or the version string of an untested one.

    Raises ``UnsupportedLFVersionError`` when LF is missing or older than the oldest tested release.
    A newer untested version passes here; what it lacks is refused by :func:`require_features`, and
    its encodings are proven template by template (``Snapshot.needs_proof``).
    """
    from packaging.version import InvalidVersion, Version

    version = version or installed_version()
    if version is None:
        raise UnsupportedLFVersionError(
            "LLaMA-Factory is not installed in this environment; install a tested release, "
            f"e.g. `pip install llamafactory=={TESTED[1]}`"
        )
    tested = tested_version(version)
    if tested is not None:
        return tested
    try:
        too_old = Version(version) < Version(TESTED[0])
    except InvalidVersion:
        too_old = False
    if too_old:
        raise UnsupportedLFVersionError(
            f"LLaMA-Factory {version} is not supported by lf-template-ext: it is older than {TESTED[0]} "
            f"(tested: {', '.join(TESTED)}; see docs/lf-versions.md). "
            f"Install one of them, e.g. `pip install llamafactory=={TESTED[1]}`"
        )
    return version


#: A dev version's string does not change with every commit of LF's main (``extras/env.py`` keeps
#: ``0.9.6.dev0``): it counts as tested only with the template code that was tested, recognised by the sha256
#: (first 16 hex digits) of its ``data/template.py``, ``data/formatter.py`` and ``data/tool_utils.py``.
DEV_FINGERPRINTS = {"0.9.6.dev0": "a62217b58df8a8d9"}  # the llamafactory-kt==0.9.6.dev0 wheel
_FINGERPRINT_FILES = ("data/template.py", "data/formatter.py", "data/tool_utils.py")


@functools.lru_cache(maxsize=None)
def installed_fingerprint() -> Optional[str]:
    """The fingerprint of the installed LF's template code (see ``DEV_FINGERPRINTS``), without importing it."""
    import hashlib
    import importlib.util
    import os

    spec = importlib.util.find_spec("llamafactory")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = list(spec.submodule_search_locations)[0]
    h = hashlib.sha256()
    try:
        for rel in _FINGERPRINT_FILES:
            with open(os.path.join(root, rel), "rb") as f:
                h.update(f.read())
    except OSError:
        return None
    return h.hexdigest()[:16]


def is_tested(version: str) -> bool:
    """``version`` is in ``TESTED`` (a dev version: with the tested template code, ``DEV_FINGERPRINTS``)."""
    tested = tested_version(version)
    if tested is None:
        return False
    if tested in DEV_FINGERPRINTS and version == installed_version():
        return installed_fingerprint() == DEV_FINGERPRINTS[tested]
    return True


#: What the adapter calls in LF's template code: module attributes, ``Template`` methods and fields,
#: and ``encode_multiturn``'s leading parameters. Every version is checked against it.
_NEEDED_MODULE = ("Template", "ReasoningTemplate", "Llama2Template", "TEMPLATES", "get_template_and_fix_tokenizer")
_NEEDED_METHODS = ("_encode", "encode_multiturn", "encode_oneturn", "add_thought", "remove_thought", "_convert_elements_to_ids")
_NEEDED_FIELDS = (
    "format_user", "format_assistant", "format_system", "format_function", "format_observation", "format_tools",
    "format_prefix", "default_system", "stop_words", "thought_words", "efficient_eos", "replace_eos",
    "enable_thinking", "mm_plugin",
)
_NEEDED_PARAMS = ("tokenizer", "messages", "system", "tools")
_NEEDED_FORMATTERS = ("StringFormatter", "EmptyFormatter", "FunctionFormatter", "ToolFormatter")


def missing_features(tmod: Any) -> list[str]:
    """What of ``_NEEDED_*`` the given ``llamafactory.data.template`` module lacks (as dotted names)."""
    import importlib
    import inspect

    missing = [f"llamafactory.data.template.{n}" for n in _NEEDED_MODULE if not hasattr(tmod, n)]
    cls = getattr(tmod, "Template", None)
    if cls is not None:
        missing += [f"Template.{m}" for m in _NEEDED_METHODS if not callable(getattr(cls, m, None))]
        fields = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
        missing += [f"Template.{f} (field)" for f in _NEEDED_FIELDS if f not in fields]
        if callable(getattr(cls, "encode_multiturn", None)):
            params = list(inspect.signature(cls.encode_multiturn).parameters)[1:5]
            if params != list(_NEEDED_PARAMS):
                missing.append(f"Template.encode_multiturn({', '.join(_NEEDED_PARAMS)}, ...) (found: {', '.join(params)})")
    fmod = importlib.import_module("llamafactory.data.formatter")
    missing += [f"llamafactory.data.formatter.{n}" for n in _NEEDED_FORMATTERS if not hasattr(fmod, n)]
    tool_utils = importlib.import_module("llamafactory.data.tool_utils")
    if not hasattr(tool_utils, "TOOLS"):
        missing.append("llamafactory.data.tool_utils.TOOLS")
    return missing


def require_features(tmod: Any) -> None:
    """Refuse (exit 2) an LF whose template code lacks what the adapter calls, naming what is missing."""
    missing = missing_features(tmod)
    if missing:
        version = installed_version() or "?"
        raise UnsupportedLFVersionError(
            f"LLaMA-Factory {version} lacks what lf-template-ext calls: {'; '.join(missing)} "
            f"(tested: {', '.join(TESTED)}; see docs/lf-versions.md)"
        )
