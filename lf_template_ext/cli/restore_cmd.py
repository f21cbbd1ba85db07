"""``lf-template restore``: put a repaired model dir back as it was."""

from __future__ import annotations

import argparse
import os
import sys

HELP = "undo a repair: put back the files of a backup in .lf-template-backups/"
DESCRIPTION = """\
Put back the original files saved by `lf-template repair` (or emit, or the export hook) in
MODEL_DIR/.lf-template-backups/<UTC timestamp>/. Without --backup, the newest run not undone yet is undone;
with --backup TS, that run and every later one are undone, so the dir ends as it was before TS. Files the
run created are removed; HF cache symlinks are put back as links.

  - An interrupted run (killed repair) is rolled back; that counts as the restore (exit 0, says so).
  - A file you changed after the run is KEPT as it is and listed (its original stays in the backup dir);
    --force restores it anyway, first saving your version as NAME.edited-<UTC time>.
  - All or nothing: every backup copy is checked before the first file changes; a missing or corrupt
    copy changes nothing (exit 2, naming it).
  - Each restore undoes one more run: with two stacked repairs, the first restore undoes the second
    repair, the next one the first; then "nothing to restore" (exit 0).
  - One writer at a time: a restore waits for a running repair/emit of the same dir (--no-wait: exit 2).

examples:
  lf-template restore ./merged
  lf-template restore ./merged --backup 20261128T101500.123456Z
  lf-template restore ./merged --list
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_dir", metavar="MODEL_DIR")
    parser.add_argument("--backup", metavar="TS", help="timestamp (folder name) of the backup to restore (or to --list)")
    parser.add_argument("--list", action="store_true", help="list the backups and their status, change nothing")
    parser.add_argument(
        "--force", action="store_true", help="restore files changed since the run too (your version is saved as NAME.edited-<time>)"
    )
    parser.add_argument("--no-wait", action="store_true", help="fail (exit 2) instead of waiting when another run writes the dir")


def _target_dir(path: str) -> str:
    """A GGUF file names its dir (its backups live there)."""
    if path.endswith(".gguf") and not os.path.isdir(path):
        return os.path.dirname(os.path.abspath(path))
    return path


def run(args: argparse.Namespace) -> int:
    from ..errors import BadInputError
    from ..modeldir.journal import BACKUP_DIR, list_backups
    from ..modeldir.lock import set_lock_wait
    from ..modeldir.restore import restore
    from .common import require_dir

    root = _target_dir(args.model_dir)
    require_dir(root)
    set_lock_wait(not args.no_wait)
    if args.list:
        backups = list_backups(root)
        if args.backup:
            backups = [(p, m) for p, m in backups if os.path.basename(p) == args.backup]
            if not backups:
                raise BadInputError(f"no backup named {args.backup!r}", path=os.path.join(root, BACKUP_DIR))
        if not backups:
            print(f"no backups in {root}")
        for path, manifest in backups:
            files = ", ".join(sorted(manifest.get("files", {})))
            print(f"{os.path.basename(path)}  {manifest.get('status', '?'):11s}  {manifest.get('tool', '')}: {files}")
        return 0
    result = restore(root, args.backup, force=args.force)
    for r in result.recovered:
        if r.action == "finished":
            print(f"finished an interrupted restore ({r.stamp}): {', '.join(r.files) or 'no file left to put back'}")
    if result.action == "rolled-back":
        for r in result.recovered:
            if r.action == "rolled-back":
                files = ", ".join(r.files) if r.files else "no file had been replaced yet"
                print(f"rolled back an interrupted run ({BACKUP_DIR}/{r.stamp}): {files}")
        print(f"{root} is as it was before that run")
        return 0
    if result.action == "nothing":
        print(result.message or f"nothing to restore in {root}")
        return 0
    if result.restored:
        print(f"restored {root} to its state before {result.stamp}" + (
            f" (undid {len(result.backups)} runs: {', '.join(result.backups)})" if len(result.backups) > 1 else ""
        ) + ":")
        for f in result.restored:
            print(f"  {f}")
    else:
        print(f"restored no file of {result.stamp}: every file it changed was changed again since")
    for f, aside in result.set_aside:
        print(f"  (--force) your edited {f} was saved as {aside}")
    if result.kept:
        print(
            f"kept {len(result.kept)} file(s) changed since that run (`--force` restores them, saving your version as "
            "NAME.edited-<time>):",
            file=sys.stderr,
        )
        for f, where in result.kept:
            print(f"  {f}  (original: {where})", file=sys.stderr)
    return 0
