"""Ollama's template execution, re-created in Go (``ollama_render/main.go``), built and run on demand.

Ollama renders a chat request with the Modelfile's ``TEMPLATE`` through Go's ``text/template`` after
its own request handling (``collate``, messages-mode values, its template functions, Modelfile
``SYSTEM``; docs/engines-ollama.md). ``ollama_render/main.go`` re-creates that path with the Go
standard library only, so an emitted TEMPLATE can be checked without Ollama, and it also reads a
Modelfile back with a re-creation of Ollama's Modelfile parser. It ships inside this package and is
built with the local Go toolchain (Debian/Ubuntu: ``apt install golang-go``; Go >= 1.19) into
``$XDG_CACHE_HOME/lf-template-ext/ollama_render-<source hash>/`` (``~/.cache/...`` by default), once
per version of the source. Offline: no module downloads (``GOPROXY=off``, standard library only).

Protocol (stdin/stdout JSON, see main.go's header): ``{"template", "system", "now", "cases": [{"id",
"messages", "tools"?, "think"?}]}`` -> ``{"capabilities", "thinking_tags", "results": [{"id",
"prompt", "error"?}]}``; ``{"modelfile": text}`` -> ``{"commands": [{"name", "args"}], "error"?}``.

Used by ``lf-template check --engine ollama`` (``render/ollama.py``), ``tests/test_engine_ollama.py``
and ``scripts/ollama_table.py`` (through ``tests/ollama_render/ollama_check.py``).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Optional

from ..errors import BadInputError

SOURCE_DIR = Path(__file__).resolve().parent / "ollama_render"
SOURCE_FILES = ("go.mod", "main.go")
BINARY_NAME = "ollama_render"
INSTALL_HINT = (
    "install the Go toolchain (Debian/Ubuntu: apt install golang-go; Go >= 1.19): the check renders with "
    "lf_template_ext/render/ollama_render, a re-creation of Ollama's template execution in Go "
    "(docs/engines-ollama.md), built once into the user cache"
)


def source_hash() -> str:
    """A short hash of the Go sources: the cache key of the built binary."""
    h = hashlib.sha256()
    for name in SOURCE_FILES:
        h.update(name.encode() + b"\0" + (SOURCE_DIR / name).read_bytes() + b"\0")
    return h.hexdigest()[:16]


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/lf-template-ext/ollama_render-<hash>`` (``~/.cache`` when XDG_CACHE_HOME is unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "lf-template-ext" / f"ollama_render-{source_hash()}"


def go_env(home: str) -> dict[str, str]:
    """Offline, local-toolchain Go: the standard library only, caches in ``home``."""
    env = dict(os.environ)
    env.update(
        HOME=home,
        GOCACHE=os.path.join(home, "gocache"),
        GOPATH=os.path.join(home, "gopath"),
        GOFLAGS="-mod=mod",
        GOPROXY="off",
        GOTOOLCHAIN="local",
        CGO_ENABLED="0",
    )
    return env


def build(out_dir: str) -> Path:
    """``go build`` the renderer into ``out_dir`` (its Go caches go there too); the binary's path."""
    go = shutil.which("go")
    if go is None:
        raise BadInputError("the Go toolchain (`go`) is not on PATH", hint=INSTALL_HINT)
    binary = Path(out_dir) / BINARY_NAME
    proc = subprocess.run(
        [go, "build", "-o", str(binary), "."],
        cwd=SOURCE_DIR,
        env=go_env(out_dir),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise BadInputError(
            f"`go build` of {SOURCE_DIR} failed: {proc.stderr.strip() or proc.stdout.strip()}",
            hint="Go >= 1.19 is needed (`go version`); " + INSTALL_HINT,
        )
    return binary


def binary() -> Path:
    """The renderer for this package's sources, built into the user cache on first use.

    A concurrent first use by another process is safe: each builds in its own temporary dir and
    the binary is moved into place atomically. Raises ``BadInputError`` (exit 2) when it is not
    built yet and ``go`` is missing.
    """
    target = cache_dir() / BINARY_NAME
    if target.is_file() and os.access(target, os.X_OK):
        return target
    if shutil.which("go") is None:
        raise BadInputError("the Go toolchain (`go`) is not on PATH", hint=INSTALL_HINT)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = tempfile.mkdtemp(prefix="build-", dir=target.parent)
    try:
        built = build(work)
        os.replace(built, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def go_time(when: Optional[_dt.datetime]) -> str:
    """``when`` (naive: its wall-clock fields) as the RFC 3339 ``now`` the renderer reads."""
    return (when or _dt.datetime.now()).strftime("%Y-%m-%dT%H:%M:%SZ")


def run(binary_path: Path, payload: dict[str, Any]) -> dict[str, Any]:
    """One renderer process: ``payload`` in, its JSON answer out (``RuntimeError`` when it fails)."""
    proc = subprocess.run(
        [str(binary_path)],
        input=json.dumps(payload, ensure_ascii=False),
        capture_output=True,
        text=True,
        encoding="utf-8",
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"ollama_render failed ({proc.returncode}): {proc.stderr.strip()}")
    return json.loads(proc.stdout)


def render(
    binary_path: Path, template: str, cases: list[dict[str, Any]], *, system: str = "", now: Optional[str] = None
) -> dict[str, Any]:
    """Render ``cases`` (``{"id", "messages", "tools"?, "think"?}``) with one Go process."""
    payload: dict[str, Any] = {"template": template, "system": system, "cases": cases}
    if now is not None:
        payload["now"] = now
    return run(binary_path, payload)


def parse_modelfile(binary_path: Path, text: str) -> dict[str, Any]:
    """What ``ollama create`` reads from a Modelfile: ``{"commands": [{"name", "args"}], "error"?}``."""
    return run(binary_path, {"modelfile": text})


def to_ollama(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI-shaped messages as a client sends them to Ollama's ``/api/chat``.

    ``content`` (``""`` for none), ``reasoning_content``/``reasoning`` as ``thinking``, tool calls as
    ``{"function": {"name", "arguments"}}`` with the arguments as a JSON object (a JSON string is
    decoded, as Ollama's OpenAI endpoint does). Call ids are dropped (Ollama's native API has none).
    """
    out = []
    for m in messages:
        o: dict[str, Any] = {"role": m["role"], "content": m.get("content") or ""}
        thought = m.get("reasoning_content") or m.get("reasoning")
        if thought:
            o["thinking"] = thought
        if m.get("tool_calls"):
            calls = []
            for c in m["tool_calls"]:
                args = c["function"].get("arguments", {})
                if isinstance(args, str):
                    args = json.loads(args) if args.strip() else {}
                calls.append({"function": {"name": c["function"]["name"], "arguments": args}})
            o["tool_calls"] = calls
        out.append(o)
    return out
