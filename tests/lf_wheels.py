"""LF wheels for the tests that run another LF version than the installed one, fetched on demand.

A wheel is looked up in ``<venv>/lf-wheels`` (scripts/env.sh downloads 0.9.4's there) and in
``${LF_TEMPLATE_EXT_CACHE:-~/.cache/lf-template-ext}/lf-wheels``; when absent it is downloaded into the
latter with ``pip download --no-deps`` (the cache is outside the clone and outlives venv rebuilds, so
requirements/ and scripts/env.sh, whose hash keys the venv, stay unchanged). Nothing is installed: the
tests unpack the wheel's ``llamafactory/`` and put it first on ``PYTHONPATH`` of a subprocess.

    python tests/lf_wheels.py llamafactory-kt==0.9.6.dev0     # prints the wheel's path
"""

from __future__ import annotations

import fcntl
import glob
import os
import subprocess
import sys
import zipfile
from pathlib import Path

#: LF's GitHub main, published on PyPI under another name; its wheel ships the ``llamafactory`` package.
DEV_LINE = "llamafactory-kt==0.9.6.dev0"


def cache_dir() -> Path:
    root = os.environ.get("LF_TEMPLATE_EXT_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "lf-template-ext")
    return Path(root) / "lf-wheels"


def _pattern(requirement: str) -> str:
    name, _, version = requirement.partition("==")
    return f"{name.replace('-', '_')}-{version}-*.whl"


def wheel(requirement: str = DEV_LINE) -> Path:
    """The wheel of ``requirement`` (``name==version``), downloaded into the cache when absent."""
    pattern = _pattern(requirement)
    for d in (Path(sys.prefix) / "lf-wheels", cache_dir()):
        found = sorted(glob.glob(str(d / pattern)))
        if found:
            return Path(found[0])
    d = cache_dir()
    d.mkdir(parents=True, exist_ok=True)
    with open(d / ".lock", "w") as lock:  # pytest-xdist workers: one download
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = sorted(glob.glob(str(d / pattern)))
        if not found:
            proc = subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", requirement, "-d", str(d)],
                capture_output=True, text=True, timeout=600,
            )
            found = sorted(glob.glob(str(d / pattern)))
            if proc.returncode != 0 or not found:
                raise RuntimeError(f"could not download {requirement} into {d}: {proc.stderr.strip()[-800:]}")
    return Path(found[0])


def unpack(whl: Path, dest: Path) -> Path:
    """The wheel's ``llamafactory/`` package under ``dest`` (put ``dest`` first on ``PYTHONPATH``)."""
    with zipfile.ZipFile(whl) as z:
        members = [m for m in z.namelist() if m.startswith("llamafactory/")]
        assert members, f"{whl} ships no llamafactory package"
        z.extractall(dest, members)
    return dest


if __name__ == "__main__":
    print(wheel(sys.argv[1] if len(sys.argv) > 1 else DEV_LINE))
