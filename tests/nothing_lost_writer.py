"""Writer-only subprocess for tests/test_nothing_lost.py (imports neither LF nor torch).

    python nothing_lost_writer.py repair MODEL_DIR PLAN.json     # commit a precomputed repair plan, as
                                                                 # `lf-template repair` does after planning
    python nothing_lost_writer.py gguf-kill FILE.gguf            # swap a rewritten GGUF in, kill -9 between
                                                                 # the two renames
    python nothing_lost_writer.py kill-at MODEL_DIR PLAN.json K  # commit, kill -9 at write step K

Written against the journal's public functions (``modeldir.journal``, ``atomic``, ``lock``).
"""

import base64
import contextlib
import json
import os
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from lf_template_ext.errors import BadInputError  # noqa: E402
from lf_template_ext.modeldir import atomic, journal  # noqa: E402
from lf_template_ext.modeldir import lock as journal_lock  # noqa: E402


def _plan(path: str) -> dict:
    with open(path) as f:
        return {k: base64.b64decode(v) for k, v in json.load(f).items()}


def repair(model_dir: str, plan_path: str) -> int:
    files = _plan(plan_path)
    lock = getattr(journal_lock, "dir_lock", None)
    with (lock(model_dir) if lock else contextlib.nullcontext()):
        journal.recover(model_dir)
        txn = journal.Transaction(model_dir, tool="nothing-lost writer")
        for rel, data in files.items():
            txn.stage(rel, data)
        backup = txn.commit()
    print(f"BACKUP {backup.timestamp}" if backup else "NOTHING")
    return 0


def kill_at(model_dir: str, plan_path: str, k: int) -> None:
    from journal_writer import commit_killed_at  # the kill -9 writer of tests/test_repair.py, same steps

    commit_killed_at(model_dir, plan_path, k)


def gguf_kill(path: str) -> None:
    from lf_template_ext.modeldir.gguf import apply_gguf, plan_gguf, read_metadata

    eos = read_metadata(path)["tokenizer.ggml.eos_token_id"]
    plan = plan_gguf(path, "{{ bos_token }}{% for m in messages %}{{ m['content'] }}{% endfor %}", eos, [eos])
    replaces = 0

    def hook(step: str, p: str) -> None:
        nonlocal replaces
        if step == "replace" and os.path.basename(p) == os.path.basename(path):
            replaces += 1
            if replaces == 2:  # the original is in the backup dir, the new file not yet in place
                os.kill(os.getpid(), signal.SIGKILL)

    atomic.set_fault_hook(hook)
    apply_gguf(plan)
    print("NOT KILLED")


def main() -> int:
    cmd = sys.argv[1]
    try:
        if cmd == "repair":
            return repair(sys.argv[2], sys.argv[3])
        if cmd == "kill-at":
            kill_at(sys.argv[2], sys.argv[3], int(sys.argv[4]))
            return 0
        if cmd == "gguf-kill":
            gguf_kill(sys.argv[2])
            return 1
    except BadInputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    sys.exit(main())
