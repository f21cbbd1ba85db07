"""Writer-only subprocess for the kill -9 test: commits a precomputed plan, killing itself at
write operation K (counted by the journal's fault hook). Imports neither LF nor torch.

    python journal_writer.py MODEL_DIR PLAN.json K
"""

import base64
import json
import os
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from lf_template_ext.modeldir import atomic, journal  # noqa: E402


def commit_killed_at(model_dir: str, plan_path: str, kill_at: int) -> None:
    """Commit the plan (``{relpath: base64}``) into ``model_dir``, SIGKILLing this process at write step ``kill_at``
    (0: never); prints ``OPS N``, the number of write steps, when it lives."""
    with open(plan_path) as f:
        files = {k: base64.b64decode(v) for k, v in json.load(f).items()}
    count = 0

    def hook(step: str, path: str) -> None:
        nonlocal count
        count += 1
        if count == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    atomic.set_fault_hook(hook)
    txn = journal.Transaction(model_dir, tool="kill-test")
    for rel, data in files.items():
        txn.stage(rel, data)
    txn.commit()
    print(f"OPS {count}")


def main() -> None:
    commit_killed_at(sys.argv[1], sys.argv[2], int(sys.argv[3]))


if __name__ == "__main__":
    main()
