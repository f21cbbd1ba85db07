"""``lf-template restore``: undo completed runs from their backups, all or nothing.

:func:`restore` runs in four steps, each its own function: choose the runs to undo
(:func:`_runs_to_undo`), plan every put-back and verify every backup copy before anything changes
(:func:`_plan_put_backs`), write every new byte to temp files (:func:`_stage`), then only renames
and unlinks (:func:`_commit_renames`), and finally the report (:func:`_report`). The backups'
manifests say ``restoring`` during the renames, so a restore killed among them is finished by the
next run (``journal.recover``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Optional, Union

from ..errors import BadInputError
from .atomic import (
    TMP_SUFFIX,
    fsync_dir,
    read_bytes,
    sha256,
    stage_temp,
    write_atomic_unlocked,
)
from .journal import BACKUP_DIR, MANIFEST, Recovered, file_sha, list_backups, recover_locked, utc_stamp
from .lock import dir_lock
from .write_errors import write_error

#: (backup dir, its manifest), as :func:`journal.list_backups` returns them.
Backup = tuple[str, dict[str, Any]]


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


class _Plan(NamedTuple):
    """The put-backs of one run's backup."""

    bdir: str
    manifest: dict[str, Any]
    put: list[str]  # files to put back (or remove: the run created them)
    forced: list[str]  # changed since the run, put back anyway (``force``): the edited version is set aside
    kept: list[str]  # changed since the run, left as they are (no ``force``)


@dataclass
class _Staged:
    """Everything :func:`_stage` wrote, and the renames that finish the restore."""

    temps: list[str] = field(default_factory=list)
    asides: list[str] = field(default_factory=list)
    moves: list[tuple[str, str]] = field(default_factory=list)  # (src, dst) renames of phase 3, in order
    deletes: dict[int, str] = field(default_factory=dict)  # index in moves -> path to unlink instead
    manifests_restoring: list[tuple[str, str]] = field(default_factory=list)
    manifests_restored: list[tuple[str, str]] = field(default_factory=list)


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
        recovered = recover_locked(root, backup_root)
        chain = _runs_to_undo(root, broot, backup_root, stamp, recovered)
        if isinstance(chain, RestoreResult):
            return chain
        plans = _plan_put_backs(root, chain, force)
        result = RestoreResult("restored", stamp=os.path.basename(chain[-1][0]), recovered=recovered)
        staged = _stage(root, plans, result, utc_stamp())
        _commit_renames(staged, broot)
        _report(result, plans)
        return result


def _runs_to_undo(
    root: str, broot: str, backup_root: Optional[str], stamp: Optional[str], recovered: list[Recovered]
) -> Union[list[Backup], RestoreResult]:
    """The completed runs to undo, newest first, or the result when there is nothing to undo.

    With ``stamp``: that run and every later completed one (a later run was made on top of it, so
    it must go first). Without: the newest completed run, unless the recovery that just ran rolled
    an interrupted run back: that was the newest run, so it *is* the restore.
    """
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
        return [(b, m) for b, m in everything[idx:] if m.get("status") == "complete"][::-1]
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
    return [complete[-1]]


def _plan_put_backs(root: str, chain: list[Backup], force: bool) -> list[_Plan]:
    """Simulate the put-backs newest first and check every backup copy they need.

    This is what makes a restore all or nothing: a missing or corrupt copy is found here, before
    any file changes, and raised as one BadInputError naming every such copy. The simulation
    carries each file's hash from one run to the next, so a file that an older run in the chain
    restores is judged against what the newer run puts back, not against the dir as it is.
    """
    state: dict[str, Optional[str]] = {}
    plans: list[_Plan] = []
    problems: list[str] = []
    for bdir, manifest in chain:
        put: list[str] = []
        forced: list[str] = []
        kept: list[str] = []
        for relpath, entry in sorted(manifest.get("files", {}).items()):
            path = os.path.join(root, relpath)
            if relpath not in state:
                state[relpath] = file_sha(path, entry)
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
        plans.append(_Plan(bdir, manifest, put, forced, kept))
    if problems:
        raise BadInputError(
            "cannot restore: " + "; ".join(problems) + ". Nothing was changed",
            path=chain[-1][0],
            hint="put the missing backup copy back (or restore that file by hand from the original model)",
        )
    return plans


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


def _stage(root: str, plans: list[_Plan], result: RestoreResult, when: str) -> _Staged:
    """Phase 1, newest run first: write every new byte (temp files beside each file, the edited
    copies set aside, both manifests of each backup), renaming nothing.

    A full or read-only disk fails here, while nothing has changed: every temp file and copy
    written so far is removed (an OSError becomes a WriteError saying nothing was changed). What
    is left after this step is renames and unlinks only (:func:`_commit_renames`).
    """
    staged = _Staged()
    try:
        for plan in plans:
            _stage_run(root, plan, when, staged, result)
    except BaseException as e:
        for t in staged.temps + staged.asides:
            with contextlib.suppress(OSError):
                os.unlink(t)
        if isinstance(e, OSError):
            raise write_error(e, getattr(e, "filename", None) or root, "restoring failed; nothing was changed") from None
        raise
    return staged


def _stage_run(root: str, plan: _Plan, when: str, staged: _Staged, result: RestoreResult) -> None:
    """Stage one run's put-backs (see :func:`_stage`), in the order they will be renamed."""
    bdir, manifest, put, forced, kept = plan
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
                write_atomic_unlocked(aside, data if data is not None else b"")
            staged.asides.append(aside)
            result.set_aside.append((relpath, aside))
    for relpath in put:
        entry = manifest["files"][relpath]
        path = os.path.join(root, relpath)
        if entry.get("moved"):
            staged.moves.append((os.path.join(bdir, entry["backup"]), path))
        elif entry.get("sha256_before") is None:
            staged.deletes[len(staged.moves)] = path
            staged.moves.append(("", path))
        else:
            tmp = _stage_original(root, bdir, relpath, entry)
            staged.temps.append(tmp)
            staged.moves.append((tmp, path))
    m_restoring = dict(manifest, status="restoring", restore_plan={"put": put, "force": forced})
    extra: dict[str, Any] = {"restored_at": when}
    if kept:
        extra["kept"] = kept
    m_restored = dict(manifest, status="restored", **extra)
    for m, out in ((m_restoring, staged.manifests_restoring), (m_restored, staged.manifests_restored)):
        tmp = _stage_bytes(os.path.join(bdir, MANIFEST), json.dumps(m, indent=2).encode("utf-8"))
        staged.temps.append(tmp)
        out.append((tmp, os.path.join(bdir, MANIFEST)))


def _commit_renames(staged: _Staged, broot: str) -> None:
    """Phases 2-4: renames and unlinks only, in an order a kill cannot break.

    Phase 2 marks every backup ``restoring`` (with its plan): from here on, a kill is finished by
    the next run's recovery, which rolls the restore forward. Phase 3 puts each file back (or
    removes a file the run created). Phase 4 marks every backup ``restored``.
    """
    for src, dst in staged.manifests_restoring:  # phase 2: from here on, recovery finishes the restore
        os.replace(src, dst)
    fsync_dir(broot)
    for i, (src, dst) in enumerate(staged.moves):  # phase 3
        if i in staged.deletes:
            if os.path.lexists(dst):
                os.unlink(dst)
        else:
            os.replace(src, dst)
        fsync_dir(os.path.dirname(dst))
    for src, dst in staged.manifests_restored:  # phase 4
        os.replace(src, dst)
    fsync_dir(broot)


def _report(result: RestoreResult, plans: list[_Plan]) -> None:
    """Fill in what was put back, what was kept (and where its original stays), and which
    backups were restored, newest first: the exact report ``lf-template restore`` prints."""
    for bdir, manifest, put, _forced, kept in plans:
        for relpath in put:
            if relpath not in result.restored:
                result.restored.append(relpath)
        for relpath in kept:
            entry = manifest["files"][relpath]
            where = os.path.join(bdir, entry["backup"]) if entry.get("backup") else "(the run created it)"
            result.kept.append((relpath, where))
        result.backups.append(os.path.basename(bdir))


# -- staging helpers ------------------------------------------------------------------------------


def _stage_bytes(path: str, data: bytes, mode: Optional[int] = None) -> str:
    """A fsynced temp file beside ``path`` holding ``data`` (renamed over ``path`` later)."""
    return stage_temp(path, data, mode, fsync_step=False)


def _stage_original(root: str, bdir: str, relpath: str, entry: dict[str, Any]) -> str:
    """A temp file (or symlink) beside the file holding its original, to be renamed into place."""
    path = os.path.join(root, relpath)
    if entry.get("symlink"):
        target = os.path.join(os.path.dirname(path), entry["symlink"])
        data = read_bytes(target)
        if data is not None and sha256(data) == entry["sha256_before"]:
            tmp = path + ".link." + utc_stamp() + TMP_SUFFIX
            try:
                os.symlink(entry["symlink"], tmp)
            except OSError as e:
                raise OSError(e.errno, e.strerror, path) from None
            return tmp
    original = read_bytes(os.path.join(bdir, entry["backup"]))
    assert original is not None  # checked by _source_problem
    return _stage_bytes(path, original)


def _edited_name(path: str, when: str) -> str:
    candidate = f"{path}.edited-{when}"
    n = 1
    while os.path.lexists(candidate):
        n += 1
        candidate = f"{path}.edited-{when}-{n}"
    return candidate
