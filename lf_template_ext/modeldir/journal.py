"""Journaled, backed-up changes to a model dir, and the recovery of interrupted ones.

Single files are written atomically by :mod:`.atomic`; one writer per dir is :mod:`.lock`.
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
recovered. Undoing a *completed* run is :mod:`.restore`.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import json
import os
import shutil
from dataclasses import dataclass, field
from typing import Any, Optional

from ..errors import BadInputError
from .atomic import (
    TMP_SUFFIX,
    fault,
    fsync_dir,
    read_bytes,
    sha256,
    sha256_file,
    write_atomic_unlocked,
)
from .lock import dir_lock, lock_is_free
from .write_errors import check_writable, write_error

BACKUP_DIR = ".lf-template-backups"
MANIFEST = "manifest.json"
MANIFEST_VERSION = 1


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


def utc_stamp() -> str:
    """A backup dir's name: the UTC time to the microsecond (sorts oldest first)."""
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
            recover_locked(self.root, self.backup_root)
            for relpath in list(self._changes):
                self.stage(relpath, self._changes[relpath].after)
            changes = self.changes
            if not changes:
                return None
            self._check_writable()
            stamp = utc_stamp()
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
                    fault("backup", c.relpath)
                    os.makedirs(os.path.dirname(backup_path), exist_ok=True)
                    write_atomic_unlocked(backup_path, c.before)
                except OSError as e:
                    raise write_error(e, backup_path, f"cannot back up {c.relpath}; nothing was changed") from None
                entry["backup"] = os.path.join("files", c.relpath)
            manifest["files"][c.relpath] = entry
        fault("manifest", MANIFEST)
        write_atomic_unlocked(os.path.join(bdir, MANIFEST), json.dumps(manifest, indent=2).encode("utf-8"))
        fsync_dir(self.backup_root)
        try:
            for c in changes:
                path = os.path.join(self.root, c.relpath)
                if c.after is None:
                    fault("replace", path)
                    os.unlink(path)
                    fsync_dir(os.path.dirname(path))
                else:
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    write_atomic_unlocked(path, c.after)
            manifest["status"] = "complete"
            write_atomic_unlocked(os.path.join(bdir, MANIFEST), json.dumps(manifest, indent=2).encode("utf-8"))
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
        stamp = utc_stamp()
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
                    "sha256_before": sha256_file(path),
                    "sha256_after": sha256_file(new_path),
                    "symlink": os.readlink(path) if os.path.islink(path) else None,
                    "backup": backup_rel,
                }
            },
        }
        try:
            write_atomic_unlocked(os.path.join(bdir, MANIFEST), json.dumps(manifest, indent=2).encode("utf-8"))
        except BaseException:
            shutil.rmtree(bdir, ignore_errors=True)
            raise
        try:
            fault("replace", path)
            os.replace(path, os.path.join(bdir, backup_rel))
            fault("replace", path)
            os.replace(new_path, path)
            fsync_dir(root)
            manifest["status"] = "complete"
            write_atomic_unlocked(os.path.join(bdir, MANIFEST), json.dumps(manifest, indent=2).encode("utf-8"))
        except BaseException:
            _put_back(root, bdir, manifest, only_if_after=False)
            shutil.rmtree(bdir, ignore_errors=True)
            raise
        return BackupInfo(bdir, stamp, [relpath])


# -- manifests, put-backs and recovery -------------------------------------------------------


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


def file_sha(path: str, entry: dict[str, Any]) -> Optional[str]:
    """sha256 of ``path`` as its manifest ``entry`` records it (chunked for a moved large file)."""
    if entry.get("moved"):
        return sha256_file(path)
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
    write_atomic_unlocked(path, original)


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
    write_atomic_unlocked(os.path.join(bdir, MANIFEST), json.dumps(manifest, indent=2).encode("utf-8"))


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


def recover_locked(root: str, backup_root: Optional[str]) -> list[Recovered]:
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
        return recover_locked(root, backup_root)


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
    if not lock_is_free(root):
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
        cur = file_sha(os.path.join(root, relpath), entry)
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
