"""Atomic, journaled, symlink-safe changes to a model dir.

Single files: :func:`write_bytes_atomic` writes a temporary file in the same directory,
fsyncs it, moves it over the target with ``os.replace`` and fsyncs the directory. A reader
(or a crash) sees the old file or the new one, never a mix. ``os.replace`` on a symlink
replaces the *link*: an HF cache snapshot's link to a shared blob becomes a regular file and
the blob, shared with other snapshots, is left untouched.

A run that changes several files is a :class:`Transaction`:

1. ``stage()`` each new content (or a deletion); unchanged files drop out, and a run that
   changes nothing creates nothing (idempotence);
2. ``commit()`` copies the originals into ``.lf-template-backups/<UTC timestamp>/`` with a
   ``manifest.json`` (sha256 before/after, symlink targets), fsynced, marked ``pending``;
3. replaces the files one by one, atomically;
4. marks the manifest ``complete``.

Killed between 2 and 4, the dir holds a ``pending`` manifest: the next run (or
``lf-template restore``) calls :func:`recover`, which puts every original back. Every file
is therefore old or new at any instant, and the run as a whole is all-or-nothing once
recovered.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import difflib
import errno as _errno
import fcntl
import hashlib
import json
import os
import shutil
import stat
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional

from ..errors import BadInputError

TMP_SUFFIX = ".lfte-tmp"
BACKUP_DIR = ".lf-template-backups"
MANIFEST = "manifest.json"
MANIFEST_VERSION = 1

#: Test hook: called with (step, path) before each write step ("write", "fsync", "replace",
#: "backup", "manifest"); raising from it simulates a crash or a full disk at that point.
FaultHook = Optional[Callable[[str, str], None]]
_fault_hook: FaultHook = None


def set_fault_hook(hook: FaultHook) -> None:
    global _fault_hook
    _fault_hook = hook


def _fault(step: str, path: str) -> None:
    if _fault_hook is not None:
        _fault_hook(step, path)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


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


# -- errors -----------------------------------------------------------------------------------


class WriteError(BadInputError):
    """Writing a file failed (full disk, read-only file system, permissions): exit 2."""


class LockBusy(BadInputError):
    """Another lf-template run holds the dir's lock and the caller asked not to wait."""


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


# -- one writer per dir -------------------------------------------------------------------------
#
# The lock is ``fcntl.flock`` on the model dir itself (an open directory fd), not on a file in
# ``.lf-template-backups/``: a lock file would create the backup dir on every run, so a run that
# changes nothing would no longer leave the dir untouched, and a failed run could not remove the
# backup dir it created. flock locks belong to the open file description: the kernel drops them
# when the process dies (kill -9 included), so a stale lock cannot exist. Within one process the
# lock is re-entrant (Transaction.commit inside a locked repair run).

_held: dict[str, list[int]] = {}  # realpath -> [fd, depth]
_wait_default = True


def set_lock_wait(wait: bool) -> None:
    """Whether a writer that finds the dir locked waits (default) or fails at once (``--no-wait``)."""
    global _wait_default
    _wait_default = wait


@contextlib.contextmanager
def dir_lock(root: str, *, wait: Optional[bool] = None) -> Iterator[None]:
    """Hold the dir's writer lock (see above); waits with a message on stderr, or raises
    :class:`LockBusy` when ``wait`` is false."""
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


def _lock_is_free(root: str) -> bool:
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


# -- single files ---------------------------------------------------------------------------------


def _target_mode(path: str) -> int:
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


def _write_atomic(path: str, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically. An ``OSError`` names ``path`` (never the temp file)."""
    directory = os.path.dirname(os.path.abspath(path))
    mode = _target_mode(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=TMP_SUFFIX, dir=directory)
    except OSError as e:
        raise OSError(e.errno, e.strerror, path) from None
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
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise OSError(e.errno, e.strerror, path) from None
        raise
    fsync_dir(directory)


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
            _write_atomic(path, data)
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


# -- transactions -----------------------------------------------------------------------------


@dataclass
class Change:
    relpath: str
    before: Optional[bytes]
    after: Optional[bytes]  # None: delete
    link_target: Optional[str] = None  # the original was a symlink to this

    @property
    def kind(self) -> str:
        if self.before is None:
            return "create"
        if self.after is None:
            return "delete"
        return "modify"


@dataclass
class BackupInfo:
    path: str
    timestamp: str
    files: list[str] = field(default_factory=list)


def _utc_stamp() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")


def _is_text(data: Optional[bytes]) -> bool:
    if data is None:
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class Transaction:
    """Changes to files under ``root`` that land all together, with a backup (module docstring)."""

    def __init__(self, root: str, *, tool: str = "lf-template", backup_root: Optional[str] = None) -> None:
        self.root = os.path.abspath(root)
        self.tool = tool
        self.backup_root = backup_root or os.path.join(self.root, BACKUP_DIR)
        self._changes: dict[str, Change] = {}

    # staging ------------------------------------------------------------------------------
    def stage(self, relpath: str, after: Optional[bytes]) -> None:
        path = os.path.join(self.root, relpath)
        before = read_bytes(path)
        if before == after:  # unchanged files drop out: a run that changes nothing writes nothing
            self._changes.pop(relpath, None)
            return
        link = os.readlink(path) if os.path.islink(path) else None
        self._changes[relpath] = Change(relpath, before, after, link)

    def stage_text(self, relpath: str, text: Optional[str]) -> None:
        self.stage(relpath, None if text is None else text.encode("utf-8"))

    @property
    def changes(self) -> list[Change]:
        return [self._changes[k] for k in sorted(self._changes)]

    def diff(self) -> str:
        """A unified diff of every staged change (binary files summarised)."""
        out = []
        for c in self.changes:
            if not (_is_text(c.before) and _is_text(c.after)):
                out.append(f"Binary file {c.relpath} changes ({len(c.before or b'')} -> {len(c.after or b'')} bytes)\n")
                continue
            a = (c.before or b"").decode("utf-8").splitlines(keepends=True)
            b = (c.after or b"").decode("utf-8").splitlines(keepends=True)
            fromfile = f"a/{c.relpath}" if c.before is not None else "/dev/null"
            tofile = f"b/{c.relpath}" if c.after is not None else "/dev/null"
            lines = list(difflib.unified_diff(a, b, fromfile=fromfile, tofile=tofile))
            out.append("".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines))
        return "".join(out)

    # commit -------------------------------------------------------------------------------
    def commit(self) -> Optional[BackupInfo]:
        """Apply the staged changes; ``None`` when there is nothing to change.

        Holds the dir's writer lock (:func:`dir_lock`): first rolls back any interrupted run,
        then re-reads every staged file under the lock, so a change another writer made since
        ``stage()`` is what gets backed up (and a file that already holds the new content drops
        out).
        """
        if not self._changes:
            return None
        with dir_lock(self.root):
            _recover_locked(self.root, self.backup_root)
            for relpath in list(self._changes):
                self.stage(relpath, self._changes[relpath].after)
            changes = self.changes
            if not changes:
                return None
            self._check_writable()
            stamp = _utc_stamp()
            bdir = os.path.join(self.backup_root, stamp)
            try:
                os.makedirs(bdir, exist_ok=False)
            except OSError as e:
                raise write_error(e, self.backup_root, "cannot create the backup dir; nothing was changed") from None
            try:
                return self._commit(changes, stamp, bdir)
            except BaseException as e:
                if os.path.isdir(bdir) and _load_manifest_quiet(bdir) is None:
                    self._drop_backup(bdir)  # failed before anything in the dir changed
                if isinstance(e, OSError):
                    raise write_error(
                        e, getattr(e, "filename", None) or self.root, "writing failed; nothing was changed"
                    ) from None
                raise

    def _commit(self, changes: list[Change], stamp: str, bdir: str) -> BackupInfo:
        manifest: dict[str, Any] = {
            "manifest_version": MANIFEST_VERSION,
            "tool": self.tool,
            "created": stamp,
            "root": self.root,
            "status": "pending",
            "files": {},
        }
        for c in changes:
            entry: dict[str, Any] = {
                "kind": c.kind,
                "sha256_before": sha256(c.before) if c.before is not None else None,
                "sha256_after": sha256(c.after) if c.after is not None else None,
                "symlink": c.link_target,
            }
            if c.before is not None:
                backup_path = os.path.join(bdir, "files", c.relpath)
                try:
                    _fault("backup", c.relpath)
                    os.makedirs(os.path.dirname(backup_path), exist_ok=True)
                    _write_atomic(backup_path, c.before)
                except OSError as e:
                    raise write_error(e, backup_path, f"cannot back up {c.relpath}; nothing was changed") from None
                entry["backup"] = os.path.join("files", c.relpath)
            manifest["files"][c.relpath] = entry
        _fault("manifest", MANIFEST)
        _write_atomic(os.path.join(bdir, MANIFEST), json.dumps(manifest, indent=2).encode("utf-8"))
        fsync_dir(self.backup_root)
        try:
            for c in changes:
                path = os.path.join(self.root, c.relpath)
                if c.after is None:
                    _fault("replace", path)
                    os.unlink(path)
                    fsync_dir(os.path.dirname(path))
                else:
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    _write_atomic(path, c.after)
            manifest["status"] = "complete"
            _write_atomic(os.path.join(bdir, MANIFEST), json.dumps(manifest, indent=2).encode("utf-8"))
        except BaseException as e:
            # a failure we can see (disk full, permission, Ctrl-C): undo what was replaced, drop
            # the backup, and leave the dir exactly as it was
            _put_back(self.root, bdir, manifest, only_if_after=True)
            self._drop_backup(bdir)
            if isinstance(e, OSError):
                raise write_error(
                    e,
                    getattr(e, "filename", None) or self.root,
                    "writing failed; every file was put back, nothing was changed",
                ) from None
            raise
        return BackupInfo(bdir, stamp, [c.relpath for c in changes])

    def _drop_backup(self, bdir: str) -> None:
        shutil.rmtree(bdir, ignore_errors=True)
        try:
            os.rmdir(self.backup_root)  # only if empty: earlier runs' backups stay
        except OSError:
            pass

    def _check_writable(self) -> None:
        check_writable(self.root)
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise BadInputError(
                "directory is not writable; nothing was changed",
                path=self.root,
                hint="fix the permissions, or copy the model dir somewhere writable",
            )
        if os.path.exists(self.backup_root) and not os.access(self.backup_root, os.W_OK | os.X_OK):
            raise BadInputError("backup directory is not writable; nothing was changed", path=self.backup_root)


def _sha256_file(path: str) -> Optional[str]:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except FileNotFoundError:
        return None
    return h.hexdigest()


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


def swap_in(root: str, relpath: str, new_path: str, *, tool: str = "lf-template") -> BackupInfo:
    """Replace a large file by renames only: original -> backup dir, ``new_path`` -> original.

    For GGUF weights: nothing is copied, so the backup costs no space on the same file system.
    Journaled like :class:`Transaction` (manifest ``pending`` until both renames are done, the
    temp file named in it), so :func:`recover` can undo an interrupted swap: killed between the
    two renames, the original is in the backup dir and the new file is the temp file; the next
    ``repair``/``restore``/``check`` of that dir moves the original back.
    """
    root = os.path.abspath(root)
    path = os.path.join(root, relpath)
    if not os.path.isfile(new_path):
        raise BadInputError("the rewritten file to swap in does not exist; nothing was changed", path=new_path)
    with dir_lock(root):  # the caller recovered earlier runs under this lock (a recovery here would remove new_path)
        stamp = _utc_stamp()
        bdir = os.path.join(root, BACKUP_DIR, stamp)
        os.makedirs(os.path.join(bdir, "files"), exist_ok=False)
        backup_rel = os.path.join("files", relpath)
        manifest = {
            "manifest_version": MANIFEST_VERSION,
            "tool": tool,
            "created": stamp,
            "root": root,
            "status": "pending",
            "files": {
                relpath: {
                    "kind": "modify",
                    "moved": True,
                    "temp": os.path.relpath(os.path.abspath(new_path), root),
                    "sha256_before": _sha256_file(path),
                    "sha256_after": _sha256_file(new_path),
                    "symlink": os.readlink(path) if os.path.islink(path) else None,
                    "backup": backup_rel,
                }
            },
        }
        try:
            _write_atomic(os.path.join(bdir, MANIFEST), json.dumps(manifest, indent=2).encode("utf-8"))
        except BaseException:
            shutil.rmtree(bdir, ignore_errors=True)
            raise
        try:
            _fault("replace", path)
            os.replace(path, os.path.join(bdir, backup_rel))
            _fault("replace", path)
            os.replace(new_path, path)
            fsync_dir(root)
            manifest["status"] = "complete"
            _write_atomic(os.path.join(bdir, MANIFEST), json.dumps(manifest, indent=2).encode("utf-8"))
        except BaseException:
            _put_back(root, bdir, manifest, only_if_after=False)
            shutil.rmtree(bdir, ignore_errors=True)
            raise
        return BackupInfo(bdir, stamp, [relpath])


# -- recovery and restore ---------------------------------------------------------------------


def _load_manifest(bdir: str) -> Optional[dict[str, Any]]:
    try:
        with open(os.path.join(bdir, MANIFEST), encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BadInputError(f"unreadable backup manifest ({e})", path=os.path.join(bdir, MANIFEST)) from None
    return data if isinstance(data, dict) else None


def _load_manifest_quiet(bdir: str) -> Optional[dict[str, Any]]:
    try:
        return _load_manifest(bdir)
    except BadInputError:
        return None


def list_backups(root: str, backup_root: Optional[str] = None) -> list[tuple[str, dict[str, Any]]]:
    """(path, manifest) of every backup, oldest first; dirs without a manifest are skipped."""
    broot = backup_root or os.path.join(os.path.abspath(root), BACKUP_DIR)
    if not os.path.isdir(broot):
        return []
    out = []
    for name in sorted(os.listdir(broot)):
        bdir = os.path.join(broot, name)
        if os.path.isdir(bdir):
            m = _load_manifest(bdir)
            if m is not None:
                out.append((bdir, m))
    return out


def _file_sha(path: str, entry: dict[str, Any]) -> Optional[str]:
    if entry.get("moved"):
        return _sha256_file(path)
    data = read_bytes(path)
    return sha256(data) if data is not None else None


def _put_back_one(root: str, bdir: str, relpath: str, entry: dict[str, Any]) -> None:
    """Put one file back as it was before the run (delete it if the run created it)."""
    path = os.path.join(root, relpath)
    if entry.get("moved"):  # large file swapped by renames: move the original back
        os.replace(os.path.join(bdir, entry["backup"]), path)
        fsync_dir(os.path.dirname(path))
        return
    if entry.get("sha256_before") is None:
        if os.path.lexists(path):
            os.unlink(path)
            fsync_dir(os.path.dirname(path))
        return
    if entry.get("symlink"):
        # put the link back (an HF cache snapshot points at a shared blob we never touched)
        tmp = path + ".link" + TMP_SUFFIX
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(entry["symlink"], tmp)
        os.replace(tmp, path)
        fsync_dir(os.path.dirname(path))
        linked = read_bytes(path)
        if linked is not None and sha256(linked) == entry["sha256_before"]:
            return
        # the blob is gone or changed: fall back to the backup copy as a regular file
    original = read_bytes(os.path.join(bdir, entry["backup"]))
    if original is None or sha256(original) != entry["sha256_before"]:
        raise BadInputError(
            f"backup copy of {relpath} is missing or corrupt; restore it by hand",
            path=os.path.join(bdir, entry.get("backup", "")),
        )
    _write_atomic(path, original)


def _source_problem(root: str, bdir: str, relpath: str, entry: dict[str, Any]) -> Optional[str]:
    """Why the original of ``relpath`` cannot be put back (``None``: it can)."""
    if entry.get("sha256_before") is None:
        return None  # created by the run: putting back = deleting
    if entry.get("symlink"):
        target = os.path.join(os.path.dirname(os.path.join(root, relpath)), entry["symlink"])
        data = read_bytes(target)
        if data is not None and sha256(data) == entry["sha256_before"]:
            return None
    backup = os.path.join(bdir, entry.get("backup") or os.path.join("files", relpath))
    if entry.get("moved"):
        return None if os.path.isfile(backup) else f"{backup} (backup of {relpath}) is missing"
    data = read_bytes(backup)
    if data is None:
        return f"{backup} (backup of {relpath}) is missing"
    if sha256(data) != entry["sha256_before"]:
        return f"{backup} (backup of {relpath}) does not hash to the recorded sha256 (corrupt)"
    return None


def _put_back(root: str, bdir: str, manifest: dict[str, Any], *, only_if_after: bool) -> list[str]:
    """Roll back one run. With ``only_if_after``, touch only files that hold this run's new
    content (or, for creations, exist), i.e. what the interrupted run changed."""
    restored = []
    for relpath, entry in sorted(manifest.get("files", {}).items()):
        path = os.path.join(root, relpath)
        if entry.get("moved"):
            if os.path.exists(os.path.join(bdir, entry["backup"])):
                _put_back_one(root, bdir, relpath, entry)
                restored.append(relpath)
            continue
        current = read_bytes(path)
        cur_sha = sha256(current) if current is not None else None
        if only_if_after and cur_sha != entry.get("sha256_after"):
            continue  # this file was not replaced yet (or was changed since): leave it
        if cur_sha == entry.get("sha256_before") and not (entry.get("symlink") and not os.path.islink(path)):
            continue  # already as before
        _put_back_one(root, bdir, relpath, entry)
        restored.append(relpath)
    return restored


def _set_status(bdir: str, manifest: dict[str, Any], status: str, **extra: Any) -> None:
    manifest["status"] = status
    manifest.update(extra)
    _write_atomic(os.path.join(bdir, MANIFEST), json.dumps(manifest, indent=2).encode("utf-8"))


def cleanup_temp_files(root: str, extra_dirs: tuple[str, ...] = ()) -> list[str]:
    """Remove temp files a killed writer left behind (``.<name>.<random>.lfte-tmp``) in ``root``
    and ``extra_dirs`` (not recursively: subdirs such as ``checkpoint-N`` are other model dirs,
    possibly being written under their own lock). Call it holding the lock."""
    removed = []
    for d in dict.fromkeys((root, *extra_dirs)):
        try:
            names = os.listdir(d)
        except OSError:
            continue
        for name in names:
            p = os.path.join(d, name)
            if name.endswith(TMP_SUFFIX) and not os.path.isdir(p):
                try:
                    os.unlink(p)
                    removed.append(p)
                except OSError:
                    pass
    return removed


@dataclass
class Recovered:
    """What :func:`recover` did to one interrupted run."""

    stamp: str
    action: str  # "rolled-back" (an interrupted repair/emit/GGUF swap) or "finished" (an interrupted restore)
    files: list[str]


def _recover_locked(root: str, backup_root: Optional[str]) -> list[Recovered]:
    root = os.path.abspath(root)
    broot = backup_root or os.path.join(root, BACKUP_DIR)
    if not os.path.isdir(root):
        return []
    out: list[Recovered] = []
    backups = []
    if os.path.isdir(broot):
        for name in sorted(os.listdir(broot)):
            bdir = os.path.join(broot, name)
            if os.path.isdir(bdir):
                backups.append((bdir, _load_manifest(bdir)))
    dirs = {os.path.dirname(os.path.join(root, rel)) for _b, m in backups if m for rel in m.get("files", {})}
    cleanup_temp_files(root, tuple(sorted(dirs)))
    for bdir, manifest in backups:
        if manifest is None:
            shutil.rmtree(bdir, ignore_errors=True)  # killed before its manifest: nothing changed yet
            continue
        status = manifest.get("status")
        if status == "pending":
            files = _put_back(root, bdir, manifest, only_if_after=True)
            _set_status(bdir, manifest, "rolled-back")
            out.append(Recovered(os.path.basename(bdir), "rolled-back", files))
        elif status == "restoring":
            files = _finish_restore(root, bdir, manifest)
            out.append(Recovered(os.path.basename(bdir), "finished", files))
    return out


def recover_runs(root: str, backup_root: Optional[str] = None) -> list[Recovered]:
    """Roll back every interrupted run in ``root`` (and finish an interrupted restore).

    Takes the dir's lock first, so a run that is still writing is never touched: its lock is
    held until it finishes (or dies, which releases it). A backup dir without a manifest was
    interrupted before anything in ``root`` changed: it is removed. A ``pending`` manifest
    means files may have been replaced: each file holding that run's new content gets its
    original back (a GGUF swapped by renames is moved back; its temp file is removed), then the
    backup is marked ``rolled-back``. A ``restoring`` manifest is an interrupted restore, whose
    backup copies were all verified before it started: it is finished.
    """
    if not os.path.isdir(root):
        return []
    with dir_lock(root):
        return _recover_locked(root, backup_root)


def recover(root: str, backup_root: Optional[str] = None) -> list[str]:
    """:func:`recover_runs`, as the list of files put back."""
    return [f for r in recover_runs(root, backup_root) for f in r.files]


def interrupted_run(root: str) -> Optional[str]:
    """A one-line description of an interrupted (or still running) lf-template run in ``root``,
    or ``None``. Reads only: for ``check``, which must not call a half-written dir aligned."""
    root = os.path.abspath(root)
    broot = os.path.join(root, BACKUP_DIR)
    if not os.path.isdir(broot):
        return None
    pending = []
    for bdir, manifest in list_backups(root):
        if manifest.get("status") in ("pending", "restoring"):
            pending.append((os.path.basename(bdir), manifest))
    if not pending:
        return None
    if not _lock_is_free(root):
        return f"another lf-template run is writing {root} right now: its files may be half old, half new; check again when it is done"
    stamp, manifest = pending[-1]
    what = "restore" if manifest.get("status") == "restoring" else "run"
    files = ", ".join(sorted(manifest.get("files", {})))
    fix = f"lf-template restore {root}"
    return (
        f"an interrupted lf-template {what} ({BACKUP_DIR}/{stamp}, {manifest.get('tool', 'lf-template')}) left "
        f"files half-changed ({files}): run `{fix}` to roll it back"
        if what == "run"
        else f"an interrupted lf-template restore ({BACKUP_DIR}/{stamp}) left files half-restored ({files}): run `{fix}` to finish it"
    )


def _finish_restore(root: str, bdir: str, manifest: dict[str, Any]) -> list[str]:
    """Roll an interrupted restore forward (its sources were verified before it started)."""
    plan = manifest.get("restore_plan", {})
    done = []
    files = manifest.get("files", {})
    for relpath in plan.get("put", []):
        entry = files[relpath]
        cur = _file_sha(os.path.join(root, relpath), entry)
        forced = relpath in plan.get("force", [])
        if cur == entry.get("sha256_before") and not (entry.get("symlink") and not os.path.islink(os.path.join(root, relpath))):
            continue
        if entry.get("moved") and not os.path.exists(os.path.join(bdir, entry["backup"])):
            continue
        if cur == entry.get("sha256_after") or forced:
            _put_back_one(root, bdir, relpath, entry)
            done.append(relpath)
    _set_status(bdir, manifest, "restored")
    return done


def _stage_bytes(path: str, data: bytes, mode: Optional[int] = None) -> str:
    """A fsynced temp file beside ``path`` holding ``data`` (renamed over ``path`` later)."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=TMP_SUFFIX, dir=directory)
    except OSError as e:
        raise OSError(e.errno, e.strerror, path) from None
    try:
        with os.fdopen(fd, "wb") as f:
            _fault("write", path)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _target_mode(path) if mode is None else mode)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise OSError(e.errno, e.strerror, path) from None
        raise
    return tmp


def _stage_original(root: str, bdir: str, relpath: str, entry: dict[str, Any]) -> str:
    """A temp file (or symlink) beside the file holding its original, to be renamed into place."""
    path = os.path.join(root, relpath)
    if entry.get("symlink"):
        target = os.path.join(os.path.dirname(path), entry["symlink"])
        data = read_bytes(target)
        if data is not None and sha256(data) == entry["sha256_before"]:
            tmp = path + ".link." + _utc_stamp() + TMP_SUFFIX
            try:
                os.symlink(entry["symlink"], tmp)
            except OSError as e:
                raise OSError(e.errno, e.strerror, path) from None
            return tmp
    original = read_bytes(os.path.join(bdir, entry["backup"]))
    assert original is not None  # checked by _source_problem
    return _stage_bytes(path, original)


@dataclass
class RestoreResult:
    """What :func:`restore` did, for an exact report."""

    action: str  # "restored", "rolled-back" (an interrupted run was undone), "nothing"
    stamp: str = ""  # the oldest backup restored: the dir is as it was before this run
    backups: list[str] = field(default_factory=list)  # every backup restored, newest first
    restored: list[str] = field(default_factory=list)  # files put back (or removed: the run had created them)
    kept: list[tuple[str, str]] = field(default_factory=list)  # (file, where its original stays) changed since the run
    set_aside: list[tuple[str, str]] = field(default_factory=list)  # with force: (file, copy of the edited version)
    recovered: list[Recovered] = field(default_factory=list)
    message: str = ""


def _edited_name(path: str, when: str) -> str:
    candidate = f"{path}.edited-{when}"
    n = 1
    while os.path.lexists(candidate):
        n += 1
        candidate = f"{path}.edited-{when}-{n}"
    return candidate


def restore(
    root: str, stamp: Optional[str] = None, backup_root: Optional[str] = None, *, force: bool = False
) -> RestoreResult:
    """Undo the newest run that is not undone yet (or, with ``stamp``, that run and every later
    one, newest first), holding the dir's lock.

    * An interrupted run is rolled back first; without ``stamp`` that *is* the restore (the
      newest run is the interrupted one), reported as such.
    * A file changed since the run (its bytes no longer hash to ``sha256_after``) is kept as it
      is and reported; its original stays in the backup dir. With ``force`` it is restored
      anyway, the edited version first copied aside as ``NAME.edited-<UTC time>``.
    * All or nothing: every put-back is planned and every backup copy checked (present, right
      sha256) before the first file changes; a missing copy changes nothing (BadInputError
      naming it). The backup is marked ``restoring`` (with the plan) while files are put back,
      so a restore killed midway is finished by the next run.
    * Each call undoes one more run: with two stacked repairs, the first restore undoes the
      second repair, the next one the first; then "nothing to restore".
    """
    root = os.path.abspath(root)
    broot = backup_root or os.path.join(root, BACKUP_DIR)
    if backup_root is not None and not os.path.isdir(backup_root):
        raise BadInputError("no such backup dir", path=backup_root)
    with dir_lock(root):
        recovered = _recover_locked(root, backup_root)
        everything = list_backups(root, backup_root)
        if stamp is not None:
            named = [(b, m) for b, m in everything if os.path.basename(b) == stamp]
            if not named:
                names = ", ".join(os.path.basename(b) for b, _ in everything) or "none"
                raise BadInputError(
                    f"no backup named {stamp!r}", path=broot, hint=f"backups here: {names} (see `lf-template restore --list`)"
                )
            status = named[0][1].get("status")
            if status != "complete":
                return RestoreResult(
                    "nothing",
                    recovered=recovered,
                    message=f"nothing to restore: backup {stamp} is {status} (that run is already undone)",
                )
            idx = [i for i, (b, _m) in enumerate(everything) if os.path.basename(b) == stamp][0]
            chain = [(b, m) for b, m in everything[idx:] if m.get("status") == "complete"][::-1]
        else:
            if any(r.action == "rolled-back" for r in recovered):
                return RestoreResult("rolled-back", recovered=recovered)
            complete = [(b, m) for b, m in everything if m.get("status") == "complete"]
            if not complete:
                if everything or recovered:
                    return RestoreResult(
                        "nothing",
                        recovered=recovered,
                        message="nothing to restore: every lf-template run here is already undone",
                    )
                raise BadInputError(
                    "no backup to restore (lf-template never changed anything here)",
                    path=root,
                    hint=f"backups live in {BACKUP_DIR}/ inside the model dir; pass the dir that was repaired",
                )
            chain = [complete[-1]]

        # plan: simulate the put-backs newest first, check every source before changing anything
        state: dict[str, Optional[str]] = {}
        plans: list[tuple[str, dict[str, Any], list[str], list[str], list[str]]] = []  # bdir, manifest, put, force, kept
        problems: list[str] = []
        for bdir, manifest in chain:
            put: list[str] = []
            forced: list[str] = []
            kept: list[str] = []
            for relpath, entry in sorted(manifest.get("files", {}).items()):
                path = os.path.join(root, relpath)
                if relpath not in state:
                    state[relpath] = _file_sha(path, entry)
                cur = state[relpath]
                if cur == entry.get("sha256_before"):
                    continue  # already as before this run
                if cur != entry.get("sha256_after"):
                    if not force:
                        kept.append(relpath)
                        continue
                    forced.append(relpath)
                problem = _source_problem(root, bdir, relpath, entry)
                if problem:
                    problems.append(problem)
                put.append(relpath)
                state[relpath] = entry.get("sha256_before")
            plans.append((bdir, manifest, put, forced, kept))
        if problems:
            raise BadInputError(
                "cannot restore: " + "; ".join(problems) + ". Nothing was changed",
                path=chain[-1][0],
                hint="put the missing backup copy back (or restore that file by hand from the original model)",
            )

        # apply, newest first. Phase 1 stages every new byte (temp files, edited copies, the
        # manifests): a full or read-only disk fails here and nothing changed. Phases 2-4 are
        # renames and unlinks only; the "restoring" manifests make a kill among them roll forward.
        result = RestoreResult("restored", stamp=os.path.basename(chain[-1][0]), recovered=recovered)
        when = _utc_stamp()
        temps: list[str] = []
        asides: list[str] = []
        moves: list[tuple[str, str]] = []  # (src, dst) renames of phase 3, in order
        deletes: dict[int, str] = {}  # index in moves -> path to unlink instead
        manifests_restoring: list[tuple[str, str]] = []
        manifests_restored: list[tuple[str, str]] = []
        try:
            for bdir, manifest, put, forced, kept in plans:
                for relpath in forced:
                    path = os.path.join(root, relpath)
                    if os.path.lexists(path):
                        aside = _edited_name(path, when)
                        if manifest["files"][relpath].get("moved"):
                            try:  # a GGUF: a second name for the same data, no copy
                                os.link(path, aside)
                            except OSError:
                                shutil.copy2(path, aside)
                        else:
                            data = read_bytes(path)
                            _write_atomic(aside, data if data is not None else b"")
                        asides.append(aside)
                        result.set_aside.append((relpath, aside))
                for relpath in put:
                    entry = manifest["files"][relpath]
                    path = os.path.join(root, relpath)
                    if entry.get("moved"):
                        moves.append((os.path.join(bdir, entry["backup"]), path))
                    elif entry.get("sha256_before") is None:
                        deletes[len(moves)] = path
                        moves.append(("", path))
                    else:
                        tmp = _stage_original(root, bdir, relpath, entry)
                        temps.append(tmp)
                        moves.append((tmp, path))
                m_restoring = dict(manifest, status="restoring", restore_plan={"put": put, "force": forced})
                extra: dict[str, Any] = {"restored_at": when}
                if kept:
                    extra["kept"] = kept
                m_restored = dict(manifest, status="restored", **extra)
                for m, out in ((m_restoring, manifests_restoring), (m_restored, manifests_restored)):
                    tmp = _stage_bytes(os.path.join(bdir, MANIFEST), json.dumps(m, indent=2).encode("utf-8"))
                    temps.append(tmp)
                    out.append((tmp, os.path.join(bdir, MANIFEST)))
        except BaseException as e:
            for t in temps + asides:
                with contextlib.suppress(OSError):
                    os.unlink(t)
            if isinstance(e, OSError):
                raise write_error(e, getattr(e, "filename", None) or root, "restoring failed; nothing was changed") from None
            raise
        for src, dst in manifests_restoring:  # phase 2: from here on, recovery finishes the restore
            os.replace(src, dst)
        fsync_dir(broot)
        for i, (src, dst) in enumerate(moves):  # phase 3
            if i in deletes:
                if os.path.lexists(dst):
                    os.unlink(dst)
            else:
                os.replace(src, dst)
            fsync_dir(os.path.dirname(dst))
        for src, dst in manifests_restored:  # phase 4
            os.replace(src, dst)
        fsync_dir(broot)
        for bdir, manifest, put, forced, kept in plans:
            for relpath in put:
                if relpath not in result.restored:
                    result.restored.append(relpath)
            for relpath in kept:
                entry = manifest["files"][relpath]
                where = os.path.join(bdir, entry["backup"]) if entry.get("backup") else "(the run created it)"
                result.kept.append((relpath, where))
            result.backups.append(os.path.basename(bdir))
        return result


# -- files the user names (--output) ------------------------------------------------------------

#: What a dir holds to be a model dir (``files.inspect_dir``'s markers).
MODEL_DIR_MARKERS = (
    "config.json", "tokenizer_config.json", "adapter_config.json",
    "tokenizer.json", "tokenizer.model", "vocab.json", "tiktoken.model", "tokenizer.tiktoken",
)
#: Files of a model dir that engines or transformers parse: an emitted template never replaces them.
MODEL_OWN_FILES = frozenset(
    {
        "config.json", "tokenizer_config.json", "generation_config.json", "adapter_config.json", "tokenizer.json",
        "special_tokens_map.json", "added_tokens.json", "processor_config.json", "preprocessor_config.json",
        "chat_template.json", "vocab.json", "merges.txt", "tokenizer.model", "lf_template_ext.json",
        "alignment_report.json",
    }
)
MODEL_OWN_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth", ".index.json")
#: Every text file lf-template-ext emits with a header says so within its first lines.
OURS_MARKER = b"lf-template-ext"


def is_model_dir(directory: str) -> bool:
    try:
        names = set(os.listdir(directory))
    except OSError:
        return False
    return bool(names & set(MODEL_DIR_MARKERS))


def is_ours(path: str, data: bytes) -> bool:
    """An existing file we may overwrite without ``--force``: it carries our header marker (the
    Jinja template, the Modelfile) or already holds exactly ``data``."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    return OURS_MARKER in head or read_bytes(path) == data


@dataclass
class Written:
    path: str
    backup: Optional[BackupInfo] = None  # inside a model dir: the journal's backup (None: unchanged or outside)
    unchanged: bool = False
    journaled: bool = False


def write_output(
    path: str,
    data: bytes,
    *,
    force: bool = False,
    tool: str = "lf-template",
    in_model_dir: Optional[bool] = None,
    extra: Optional[dict[str, bytes]] = None,
) -> Written:
    """Write a file the user named (``emit --output``, ``jinja --output``).

    * Inside a model dir (its dir holds config.json / tokenizer_config.json / adapter_config.json):
      through the journal (a :class:`Transaction` of that dir: lock, backup, ``restore`` undoes it).
      The model's own files (tokenizer_config.json, config.json, weights, ...) are refused: a
      template written over them breaks the model.
    * Elsewhere: atomically; an existing file that is not ours (no ``lf-template-ext`` header and
      other content) is refused unless ``force``.

    Every refusal or OS failure is a :class:`BadInputError` (exit 2) naming the file; nothing is
    written then. ``extra``: other files of the same model dir written in the same transaction
    (``emit`` regenerates SERVING.md and the report beside its file).
    """
    path = os.path.abspath(path)
    directory = os.path.dirname(path)
    name = os.path.basename(path)
    if os.path.isdir(path):
        raise WriteError("is a directory, not a file", path=path, hint="give a file name, e.g. " + os.path.join(path, "out.txt"))
    if not os.path.isdir(directory):
        raise WriteError("the directory does not exist; nothing was written", path=directory, hint="create it first, or choose an existing one")
    if in_model_dir if in_model_dir is not None else is_model_dir(directory):
        if name in MODEL_OWN_FILES or name.endswith(MODEL_OWN_SUFFIXES):
            raise BadInputError(
                f"refusing to write over the model's own {name} (engines and transformers read it); nothing was written",
                path=path,
                hint="choose another --output, e.g. " + os.path.join(directory, "chat_template.jinja"),
            )
        txn = Transaction(directory, tool=tool)
        txn.stage(name, data)
        for relpath, content in (extra or {}).items():
            txn.stage(relpath, content)
        backup = txn.commit()
        return Written(path, backup=backup, unchanged=backup is None, journaled=True)
    if os.path.lexists(path) and not force and not is_ours(path, data):
        raise BadInputError(
            "exists and was not written by lf-template-ext; nothing was written",
            path=path,
            hint="pass --force to overwrite it, or choose another --output",
        )
    if read_bytes(path) == data:
        return Written(path, unchanged=True)
    write_bytes_atomic(path, data)
    return Written(path)
