"""Atomic, symlink-safe file replacement.

Every file this package writes goes through :func:`write_bytes_atomic`: the new content is
written to a temporary file in the same directory, flushed and fsynced, then moved over the
target with ``os.replace`` and the directory entry fsynced. A reader (or a crash) sees the
old file or the new one, never a mix.

``os.replace`` on a symlink replaces the *link*: an HF cache snapshot's link to a shared blob
becomes a regular file and the blob (shared with other snapshots) is left untouched.
"""

from __future__ import annotations

import os
import stat
import tempfile
from typing import Callable, Optional

TMP_SUFFIX = ".lfte-tmp"

#: Test hook: called with the operation name before each write step ("write", "fsync",
#: "replace"); raising from it simulates a crash or a full disk at that point.
FaultHook = Optional[Callable[[str, str], None]]
_fault_hook: FaultHook = None


def set_fault_hook(hook: FaultHook) -> None:
    global _fault_hook
    _fault_hook = hook


def _fault(step: str, path: str) -> None:
    if _fault_hook is not None:
        _fault_hook(step, path)


def fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _target_mode(path: str) -> int:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return 0o644
    if stat.S_ISLNK(st.st_mode):
        try:
            return stat.S_IMODE(os.stat(path).st_mode) | stat.S_IWUSR
        except OSError:
            return 0o644
    return stat.S_IMODE(st.st_mode)


def write_bytes_atomic(path: str, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically (see module docstring)."""
    directory = os.path.dirname(os.path.abspath(path))
    mode = _target_mode(path)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=TMP_SUFFIX, dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            _fault("write", path)
            f.write(data)
            f.flush()
            _fault("fsync", path)
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        _fault("replace", path)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(directory)


def write_text_atomic(path: str, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))
