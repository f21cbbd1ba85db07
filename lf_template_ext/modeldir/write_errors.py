"""Write failures as the user sees them: :class:`WriteError` (exit 2) naming the file and the fix.

The lowest layer of the write path (``lock``, ``atomic``, ``journal``, ``restore`` and ``output``
all use it), so it imports nothing of theirs.
"""

from __future__ import annotations

import errno as _errno
import os

from ..errors import BadInputError


class WriteError(BadInputError):
    """Writing a file failed (full disk, read-only file system, permissions): exit 2."""


def os_hint(e: OSError) -> str:
    """The fix for an OS-level write failure, by errno."""
    if e.errno in (_errno.ENOSPC, getattr(_errno, "EDQUOT", -1)):
        return "free some space on that file system and run again"
    if e.errno == _errno.EROFS:
        return "the file system is read-only: remount it read-write, or copy the model dir somewhere writable"
    if e.errno in (_errno.EACCES, _errno.EPERM):
        return (
            "fix the permissions of that file and its dir (an immutable file shows 'i' in `lsattr`; "
            "`chattr -i FILE` clears it), or copy the model dir somewhere writable"
        )
    if e.errno == _errno.EISDIR:
        return "give a file name, not a directory"
    if e.errno == _errno.ENOENT:
        return "create the directory first, or choose an existing one"
    return "fix the problem named above and run again"


def write_error(e: OSError, path: str, what: str) -> WriteError:
    return WriteError(f"{what} ({e.strerror or e})", path=path, hint=os_hint(e))


def check_writable(directory: str) -> None:
    """Refuse at once (before any slow work) a dir on a read-only or completely full file system."""
    try:
        st = os.statvfs(directory)
    except OSError:
        return
    if st.f_flag & os.ST_RDONLY:
        raise WriteError(
            "the file system is read-only; nothing was changed",
            path=directory,
            hint="remount it read-write, or copy the model dir somewhere writable",
        )
    if st.f_bavail == 0 or (st.f_favail == 0 and st.f_files > 0):
        raise WriteError("the file system is full; nothing was changed", path=directory, hint="free some space on it and run again")
