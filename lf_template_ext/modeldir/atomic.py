"""Atomic, symlink-safe single-file writes, and the fault hook every write step calls.

:func:`write_bytes_atomic` writes a temporary file in the same directory, fsyncs it, moves it
over the target with ``os.replace`` and fsyncs the directory. A reader (or a crash) sees the old
file or the new one, never a mix. ``os.replace`` on a symlink replaces the *link*: an HF cache
snapshot's link to a shared blob becomes a regular file and the blob, shared with other
snapshots, is left untouched.

The fault hook (:func:`set_fault_hook`) is one global for the whole write path: ``journal``,
``restore`` and this module all call :func:`fault` here.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from typing import Callable, Optional

from .lock import dir_lock
from .write_errors import WriteError, write_error

#: Suffix of every temp file a writer creates (a killed writer's leftovers are found by it).
TMP_SUFFIX = ".lfte-tmp"

#: Test hook: called with (step, path) before each write step ("write", "fsync", "replace",
#: "backup", "manifest"); raising from it simulates a crash or a full disk at that point.
FaultHook = Optional[Callable[[str, str], None]]
_fault_hook: FaultHook = None


def set_fault_hook(hook: FaultHook) -> None:
    global _fault_hook
    _fault_hook = hook


def fault(step: str, path: str) -> None:
    """Call the fault hook, if one is set, before write step ``step`` on ``path``."""
    if _fault_hook is not None:
        _fault_hook(step, path)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str) -> Optional[str]:
    """sha256 of a (possibly large) file, read in chunks; ``None`` if it does not exist."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except FileNotFoundError:
        return None
    return h.hexdigest()


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


def target_mode(path: str) -> int:
    """The mode a new file replacing ``path`` gets (the blob's, writable, for a symlink)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return 0o644
    if stat.S_ISLNK(st.st_mode):
        try:  # the blob may be read-only (HF cache); the new file must stay writable for us
            return stat.S_IMODE(os.stat(path).st_mode) | stat.S_IWUSR
        except OSError:
            return 0o644
    return stat.S_IMODE(st.st_mode)


def stage_temp(path: str, data: bytes, mode: Optional[int] = None, *, fsync_step: bool = True) -> str:
    """A fsynced temp file beside ``path`` holding ``data`` with ``path``'s mode (or ``mode``), to be
    renamed over ``path``. An ``OSError`` names ``path`` (never the temp file); nothing is left behind
    on failure. ``fsync_step``: report the fsync to the fault hook (the crash tests count steps)."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=TMP_SUFFIX, dir=directory)
    except OSError as e:
        raise OSError(e.errno, e.strerror, path) from None
    try:
        with os.fdopen(fd, "wb") as f:
            fault("write", path)
            f.write(data)
            f.flush()
            if fsync_step:
                fault("fsync", path)
            os.fsync(f.fileno())
        os.chmod(tmp, target_mode(path) if mode is None else mode)
    except BaseException as e:
        _unlink_quietly(tmp)
        if isinstance(e, OSError):
            raise OSError(e.errno, e.strerror, path) from None
        raise
    return tmp


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def write_atomic_unlocked(path: str, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically, without taking the lock (the caller holds it).
    An ``OSError`` names ``path`` (never the temp file)."""
    tmp = stage_temp(path, data)
    try:
        fault("replace", path)
        os.replace(tmp, path)
    except BaseException as e:
        _unlink_quietly(tmp)
        if isinstance(e, OSError):
            raise OSError(e.errno, e.strerror, path) from None
        raise
    fsync_dir(os.path.dirname(os.path.abspath(path)))


def write_bytes_atomic(path: str, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically (see the module docstring), holding the lock of
    its dir. A failure is a :class:`WriteError` (exit 2) naming ``path`` and the fix."""
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise WriteError("is a directory, not a file", path=path, hint="give a file name, e.g. " + os.path.join(path, "out.txt"))
    if not os.path.isdir(directory):
        raise WriteError("the directory does not exist", path=directory, hint="create it first, or choose an existing one")
    with dir_lock(directory):
        try:
            write_atomic_unlocked(path, data)
        except OSError as e:
            raise write_error(e, path, "writing failed; the file was left as it was") from None


def write_text_atomic(path: str, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def read_bytes(path: str) -> Optional[bytes]:
    """Content of ``path`` (through a symlink), ``None`` if it does not exist."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def copy_file_attributes(src: str, dst: str) -> None:
    """Give ``dst`` the mode, owner and access/modification times of ``src`` (a GGUF a server
    running as another user reads must stay readable). Owner changes need privileges: skipped
    quietly when not allowed."""
    st = os.stat(src)
    os.chmod(dst, stat.S_IMODE(st.st_mode))
    try:
        os.chown(dst, st.st_uid, st.st_gid)
    except (PermissionError, AttributeError):
        pass
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))
