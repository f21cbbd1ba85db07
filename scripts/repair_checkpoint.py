"""Repair an existing checkpoint so engines render and stop as LLaMA-Factory trained it.

    python scripts/repair_checkpoint.py MODEL_DIR --template NAME [--dry-run] [--engines vllm,ollama]

The same as `lf-template repair` (it calls the same code, with the same options, backups and exit
codes), for users who prefer a script next to their training files. Run with `--help` for everything.
"""

import sys

from lf_template_ext.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["repair", *sys.argv[1:]]))
