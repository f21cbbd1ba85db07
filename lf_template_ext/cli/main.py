"""``lf-template``: the command-line front of lf-template-ext.

Each subcommand lives in its own module exposing ``HELP``, ``DESCRIPTION``,
``add_arguments(parser)`` and ``run(args) -> int``. Those modules import nothing heavy at
module level, so ``--help`` and every input error that can be found without LF answer at
once; LF and torch (10-20 s) load only when a command needs LF's encoder.

Exit codes (docs/contracts.md): 0 ok / aligned, 1 misaligned, 2 bad input (and any error: nothing was
changed), 3 unsupported. :func:`main` is the one place that maps exceptions to them.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import importlib.util
import os
import sys
import traceback
from typing import Any, Optional, Sequence

from .._version import __version__

DEBUG_ENV = "LF_TEMPLATE_EXT_DEBUG"

COMMANDS = {
    "jinja": "lf_template_ext.cli.jinja_cmd",
    "check": "lf_template_ext.cli.check_cmd",
    "repair": "lf_template_ext.cli.repair_cmd",
    "restore": "lf_template_ext.cli.restore_cmd",
    "emit": "lf_template_ext.cli.emit_cmd",
}

EPILOG = """\
exit codes:
  0  success; for check: every case identical or boundary-only (boundary-only is printed as a warning)
  1  check found a text or special-token difference, or a stop id engines will not stop on
  2  bad input (missing dir, malformed JSON, unknown template, read-only or full disk, no LLaMA-Factory
     or one older than 0.9.4 or lacking what the adapter calls, ...), or an internal error (reported with
     "please report"; --debug shows the traceback): nothing was changed
  3  the template uses a feature the target cannot express; or, on an untested LF version or a template
     class the compiler does not know, the compiled template differs from that LF's own encoding of the
     probe corpus (the first divergence is printed; docs/lf-versions.md)

typical session:
  lf-template jinja --template qwen --tokenizer ./Qwen2.5-7B-Instruct --output qwen_lf.jinja
  lf-template check ./merged-model --template llama3        # exit 1: serving differs from training
  lf-template repair ./merged-model --template llama3 --dry-run
  lf-template repair ./merged-model --template llama3        # writes, with a backup
  lf-template check ./merged-model --template llama3        # exit 0
  lf-template restore ./merged-model                         # undo the repair

Templates and options default to what training recorded in the model dir
(lf_template_ext.json, written when training ran with LF_TEMPLATE_EXT=1; else LLaMA Board's
training_args.yaml / llamaboard_config.yaml); a flag that contradicts training is a warning.
"""


def _available() -> dict[str, str]:
    out = {}
    for name, module in COMMANDS.items():
        if importlib.util.find_spec(module) is not None:
            out[name] = module
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lf-template",
        description=(
            "Make a model fine-tuned with LLaMA-Factory render, under vLLM, SGLang, Ollama, LMDeploy and "
            "llama.cpp, the exact token ids it was trained on."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"lf-template-ext {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help=f"print the traceback of an unexpected error (or set {DEBUG_ENV}=1)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in _available().items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(
            name,
            help=module.HELP,
            description=module.DESCRIPTION,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


_OS_FIXES = {
    errno.ENOSPC: "free some space on that filesystem and run the command again",
    errno.EDQUOT: "free some space (disk quota exceeded) and run the command again",
    errno.EROFS: "the filesystem is read-only: copy the model dir somewhere writable, or mount it read-write",
    errno.EACCES: "check the permissions of that path (or run as its owner)",
    errno.EPERM: "the file is protected (permissions or an immutable flag, see `lsattr`); lift it or work on a copy",
    errno.ENOENT: "check the path",
    errno.ENOTDIR: "check the path: a part of it is not a directory",
    errno.EISDIR: "that path is a directory: name a file",
}


def _debug(args: Any) -> bool:
    return bool(getattr(args, "debug", False)) or os.environ.get(DEBUG_ENV, "").lower() in ("1", "true", "y")


def os_error_message(e: OSError) -> str:
    """One line for an OS error: the path, what happened, and the fix."""
    where = e.filename if e.filename is not None else ""
    what = e.strerror or str(e)
    fix = _OS_FIXES.get(e.errno or -1, "")
    text = f"{where}: {what}" if where else what
    return f"{text}\n  fix: {fix}" if fix else text


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run one command; every failure becomes an exit code a script can trust (docs/contracts.md):
    2 for any error of ours or of the OS (nothing was changed), 3 for what a target cannot express."""
    from ..errors import LFTemplateExtError, UnsupportedTemplateError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    name = f"lf-template {args.command}"
    try:
        return int(args._run(args) or 0)
    except UnsupportedTemplateError as e:
        print(f"{name}: unsupported: {e}", file=sys.stderr)
        return 3
    except LFTemplateExtError as e:
        print(f"{name}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"{name}: error: {os_error_message(e)}", file=sys.stderr)
        if _debug(args):
            traceback.print_exc()
        return 2
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - a bug of ours: exit 2 (never 1, which means "misaligned")
        print(
            f"{name}: internal error: {type(e).__name__}: {e}\n  please report it with the command you ran"
            + ("" if _debug(args) else f" and its traceback (rerun with --debug or {DEBUG_ENV}=1)"),
            file=sys.stderr,
        )
        if _debug(args):
            traceback.print_exc()
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
