"""``lf-template``: the command-line front of lf-template-ext.

Each subcommand lives in its own module exposing ``HELP``, ``DESCRIPTION``,
``add_arguments(parser)`` and ``run(args) -> int``. Those modules import nothing heavy at
module level, so ``--help`` and every input error that can be found without LF answer at
once; LF and torch (10-20 s) load only when a command needs LF's encoder.

Exit codes (CONTRACTS.md): 0 ok / aligned, 1 misaligned, 2 bad input, 3 unsupported.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from typing import Optional, Sequence

from .._version import __version__

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
  2  bad input (missing dir, malformed JSON, unknown template, ...): nothing was changed
  3  the template uses a feature the target cannot express

typical session:
  lf-template jinja --template qwen --tokenizer ./Qwen2.5-7B-Instruct --output qwen_lf.jinja
  lf-template check ./merged-model --template llama3        # exit 1: serving differs from training
  lf-template repair ./merged-model --template llama3 --dry-run
  lf-template repair ./merged-model --template llama3        # writes, with a backup
  lf-template check ./merged-model --template llama3        # exit 0
  lf-template restore ./merged-model                         # undo the repair

Templates and options default to what training recorded in the model dir
(lf_template_ext.json, written when training ran with LF_TEMPLATE_EXT=1).
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


def main(argv: Optional[Sequence[str]] = None) -> int:
    from ..errors import BadInputError, UnsupportedLFVersionError, UnsupportedTemplateError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except BadInputError as e:
        print(f"lf-template {args.command}: error: {e}", file=sys.stderr)
        return 2
    except UnsupportedLFVersionError as e:
        print(f"lf-template {args.command}: error: {e}", file=sys.stderr)
        return 2
    except UnsupportedTemplateError as e:
        print(f"lf-template {args.command}: unsupported: {e}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print(f"lf-template {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
