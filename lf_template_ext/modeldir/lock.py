"""One writer per model dir: :func:`dir_lock`.

The lock is ``fcntl.flock`` on the model dir itself (an open directory fd), not on a file in
``.lf-template-backups/``: a lock file would create the backup dir on every run, so a run that
changes nothing would no longer leave the dir untouched, and a failed run could not remove the
backup dir it created. flock locks belong to the open file description: the kernel drops them
when the process dies (kill -9 included), so a stale lock cannot exist. Within one process the
lock is re-entrant (Transaction.commit inside a locked repair run).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
from typing import Iterator, Optional

from ..errors import BadInputError
from .write_errors import os_hint


class LockBusy(BadInputError):
    """Another lf-template run holds the dir's lock and the caller asked not to wait."""


_held: dict[str, list[int]] = {}  # realpath -> [fd, depth]
_wait_default = True


def set_lock_wait(wait: bool) -> None:
    """Whether a writer that finds the dir locked waits (default) or fails at once (``--no-wait``)."""
    global _wait_default
    _wait_default = wait


@contextlib.contextmanager
def dir_lock(root: str, *, wait: Optional[bool] = None) -> Iterator[None]:
    """Hold the dir's writer lock (see the module docstring); waits with a message on stderr, or
    raises :class:`LockBusy` when ``wait`` is false."""
    key = os.path.realpath(root)
    if key in _held:
        _held[key][1] += 1
        try:
            yield
        finally:
            _held[key][1] -= 1
        return
    try:
        fd = os.open(key, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as e:
        raise BadInputError(f"cannot open the directory ({e.strerror or e})", path=root, hint=os_hint(e)) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not (_wait_default if wait is None else wait):
                raise LockBusy(
                    "another lf-template run (repair, restore, emit, export) is writing this dir; nothing was changed",
                    path=root,
                    hint="wait for it to finish, or run again without --no-wait to wait for it",
                ) from None
            print(f"lf-template: waiting for another lf-template run writing {root} to finish ...", file=sys.stderr, flush=True)
            fcntl.flock(fd, fcntl.LOCK_EX)
        _held[key] = [fd, 1]
        try:
            yield
        finally:
            del _held[key]
    finally:
        os.close(fd)  # releases the lock


def lock_is_free(root: str) -> bool:
    """True when no other process holds the dir's lock (this process may)."""
    key = os.path.realpath(root)
    if key in _held:
        return True
    try:
        fd = os.open(key, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
