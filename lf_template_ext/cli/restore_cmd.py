"""``lf-template restore``: put a repaired model dir back as it was."""

from __future__ import annotations

import argparse

HELP = "undo a repair: put back the files of a backup in .lf-template-backups/"
DESCRIPTION = """\
Put back the original files saved by `lf-template repair` (or the export hook) in
MODEL_DIR/.lf-template-backups/<UTC timestamp>/. Without --backup, the newest repair is undone; with
--backup TS, that repair and every later one are undone, so the dir ends as it was before TS. Files the
repair created are removed; HF cache symlinks are put back as links. An interrupted repair is rolled back
first. Restoring twice changes nothing.

examples:
  lf-template restore ./merged
  lf-template restore ./merged --backup 20261128T101500.123456Z
  lf-template restore ./merged --list
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_dir", metavar="MODEL_DIR")
    parser.add_argument("--backup", metavar="TS", help="timestamp (folder name) of the backup to restore")
    parser.add_argument("--list", action="store_true", help="list the backups and their status, change nothing")


def run(args: argparse.Namespace) -> int:
    from ..errors import BadInputError
    from ..modeldir.journal import list_backups, restore
    from .common import require_dir

    require_dir(args.model_dir)
    if args.list:
        backups = list_backups(args.model_dir)
        if not backups:
            print(f"no backups in {args.model_dir}")
        for path, manifest in backups:
            files = ", ".join(sorted(manifest.get("files", {})))
            print(f"{path.rsplit('/', 1)[-1]}  {manifest.get('status', '?'):11s}  {manifest.get('tool', '')}: {files}")
        return 0
    stamp, restored = restore(args.model_dir, args.backup)
    if not stamp:
        print(f"nothing to restore: {args.model_dir} is already as it was before lf-template changed it")
        return 0
    if not restored:
        raise BadInputError("the backup lists no files", path=args.model_dir)
    print(f"restored {args.model_dir} to its state before {stamp}:")
    for f in restored:
        print(f"  {f}")
    return 0
