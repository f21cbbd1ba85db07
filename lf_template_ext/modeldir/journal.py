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

import datetime as _dt
import difflib
import hashlib
import json
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

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


def write_bytes_atomic(path: str, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically (see the module docstring)."""
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
        """Apply the staged changes; ``None`` when there is nothing to change."""
        changes = self.changes
        if not changes:
            return None
        self._check_writable()
        stamp = _utc_stamp()
        bdir = os.path.join(self.backup_root, stamp)
        os.makedirs(bdir, exist_ok=False)
        try:
            return self._commit(changes, stamp, bdir)
        except BaseException as e:
            if os.path.isdir(bdir) and _load_manifest_quiet(bdir) is None:
                self._drop_backup(bdir)  # failed before anything in the dir changed
            if isinstance(e, OSError):
                raise BadInputError(
                    f"writing failed ({e.strerror or e}); nothing was changed",
                    path=getattr(e, "filename", None) or self.root,
                    hint="free some space / fix permissions and run again",
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
                    write_bytes_atomic(backup_path, c.before)
                except OSError as e:
                    raise BadInputError(
                        f"cannot back up {c.relpath} ({e.strerror or e}); nothing was changed",
                        path=backup_path,
                        hint="free some space and run again",
                    ) from None
                entry["backup"] = os.path.join("files", c.relpath)
            manifest["files"][c.relpath] = entry
        _fault("manifest", MANIFEST)
        write_text_atomic(os.path.join(bdir, MANIFEST), json.dumps(manifest, indent=2))
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
                    write_bytes_atomic(path, c.after)
            manifest["status"] = "complete"
            write_text_atomic(os.path.join(bdir, MANIFEST), json.dumps(manifest, indent=2))
        except BaseException as e:
            # a failure we can see (disk full, permission, Ctrl-C): undo what was replaced, drop
            # the backup, and leave the dir exactly as it was
            _put_back(self.root, bdir, manifest, only_if_after=True)
            self._drop_backup(bdir)
            if isinstance(e, OSError):
                raise BadInputError(
                    f"writing failed ({e.strerror or e}); every file was put back, nothing was changed",
                    path=getattr(e, "filename", None) or self.root,
                    hint="free some space / fix permissions and run again",
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
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise BadInputError(
                "directory is not writable; nothing was changed",
                path=self.root,
                hint="fix the permissions, or copy the model dir somewhere writable",
            )
        if os.path.exists(self.backup_root) and not os.access(self.backup_root, os.W_OK | os.X_OK):
            raise BadInputError("backup directory is not writable; nothing was changed", path=self.backup_root)


def _sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def swap_in(root: str, relpath: str, new_path: str, *, tool: str = "lf-template") -> BackupInfo:
    """Replace a large file by renames only: original -> backup dir, ``new_path`` -> original.

    For GGUF weights: nothing is copied, so the backup costs no space on the same file system.
    Journaled like :class:`Transaction` (manifest ``pending`` until both renames are done), so
    :func:`recover` can undo an interrupted swap.
    """
    root = os.path.abspath(root)
    path = os.path.join(root, relpath)
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
                "sha256_before": _sha256_file(path),
                "sha256_after": _sha256_file(new_path),
                "symlink": os.readlink(path) if os.path.islink(path) else None,
                "backup": backup_rel,
            }
        },
    }
    write_text_atomic(os.path.join(bdir, MANIFEST), json.dumps(manifest, indent=2))
    try:
        _fault("replace", path)
        os.replace(path, os.path.join(bdir, backup_rel))
        _fault("replace", path)
        os.replace(new_path, path)
        fsync_dir(root)
        manifest["status"] = "complete"
        write_text_atomic(os.path.join(bdir, MANIFEST), json.dumps(manifest, indent=2))
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
    except (OSError, json.JSONDecodeError) as e:
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


def _put_back(root: str, bdir: str, manifest: dict[str, Any], *, only_if_after: bool) -> list[str]:
    """Restore the originals of one backup. With ``only_if_after``, touch only files that hold
    this run's new content (or, for creations, exist), i.e. what the interrupted run changed."""
    restored = []
    for relpath, entry in sorted(manifest.get("files", {}).items()):
        path = os.path.join(root, relpath)
        if entry.get("moved"):  # large file swapped by renames: move the original back
            backup = os.path.join(bdir, entry["backup"])
            if os.path.exists(backup):
                os.replace(backup, path)
                fsync_dir(os.path.dirname(path))
                restored.append(relpath)
            continue
        current = read_bytes(path)
        cur_sha = sha256(current) if current is not None else None
        if only_if_after and cur_sha != entry.get("sha256_after"):
            continue  # this file was not replaced yet (or was changed since): leave it
        if entry.get("sha256_before") is None:
            if current is not None:
                os.unlink(path)
                restored.append(relpath)
            continue
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
                restored.append(relpath)
                continue
            # the blob is gone or changed: fall back to the backup copy as a regular file
        original = read_bytes(os.path.join(bdir, entry["backup"]))
        if original is None or sha256(original) != entry["sha256_before"]:
            raise BadInputError(
                f"backup copy of {relpath} is missing or corrupt; restore it by hand", path=os.path.join(bdir, entry.get("backup", ""))
            )
        write_bytes_atomic(path, original)
        restored.append(relpath)
    return restored


def _set_status(bdir: str, manifest: dict[str, Any], status: str) -> None:
    manifest["status"] = status
    write_text_atomic(os.path.join(bdir, MANIFEST), json.dumps(manifest, indent=2))


def cleanup_temp_files(root: str) -> list[str]:
    """Remove temp files a killed writer left behind (``.<name>.<random>.lfte-tmp``)."""
    removed = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            if name.endswith(TMP_SUFFIX):
                os.unlink(os.path.join(dirpath, name))
                removed.append(os.path.join(dirpath, name))
    return removed


def recover(root: str, backup_root: Optional[str] = None) -> list[str]:
    """Roll back any interrupted run in ``root``; return the files put back.

    A backup dir without a manifest was interrupted before anything in ``root`` changed:
    it is removed. A ``pending`` manifest means files may have been replaced: each file
    holding that run's new content gets its original back, then the backup is marked
    ``rolled-back``.
    """
    root = os.path.abspath(root)
    broot = backup_root or os.path.join(root, BACKUP_DIR)
    restored: list[str] = []
    if os.path.isdir(root):
        cleanup_temp_files(root)
    if not os.path.isdir(broot):
        return restored
    for name in sorted(os.listdir(broot)):
        bdir = os.path.join(broot, name)
        if not os.path.isdir(bdir):
            continue
        manifest = _load_manifest(bdir)
        if manifest is None:
            shutil.rmtree(bdir, ignore_errors=True)
            continue
        if manifest.get("status") == "pending":
            restored += _put_back(root, bdir, manifest, only_if_after=True)
            _set_status(bdir, manifest, "rolled-back")
    return restored


def restore(root: str, stamp: Optional[str] = None, backup_root: Optional[str] = None) -> tuple[str, list[str]]:
    """Put back the originals of the newest complete backup (or of ``stamp``).

    Files changed by later runs are restored too: restoring an older backup first restores
    every newer one, newest first, so the dir ends exactly as it was before that run.
    """
    root = os.path.abspath(root)
    recover(root, backup_root)
    everything = list_backups(root, backup_root)
    backups = [(b, m) for b, m in everything if m.get("status") == "complete"]
    if not backups:
        if any(m.get("status") == "restored" for _b, m in everything):
            return "", []  # already restored: restoring again changes nothing
        raise BadInputError("no backup to restore (lf-template never changed anything here)", path=root)
    if stamp is None:
        chosen = [backups[-1]]
    else:
        idx = [i for i, (b, _m) in enumerate(backups) if os.path.basename(b) == stamp]
        if not idx:
            names = ", ".join(os.path.basename(b) for b, _ in backups)
            raise BadInputError(f"no complete backup named {stamp!r}", path=root, hint=f"available: {names}")
        chosen = backups[idx[0]:][::-1]
    restored: list[str] = []
    for bdir, manifest in chosen:
        restored += _put_back(root, bdir, manifest, only_if_after=False)
        _set_status(bdir, manifest, "restored")
    return os.path.basename(chosen[-1][0]), restored
