"""``lf-template check``: does a model dir render what training saw?"""

from __future__ import annotations

import argparse
import sys

from .common import add_template_options, require_dir, resolve_template

HELP = "compare LF's training ids with what engines will render from a model dir"
DESCRIPTION = """\
Render the probe corpus with the chat template engines will load from MODEL_DIR (chat_template.jinja
first, then tokenizer_config.json, as transformers/vLLM/SGLang do), tokenize it as vLLM does, and compare
token by token with LLaMA-Factory's training encoding for the template you trained with. Also checks that
engines stop on every stop token of the template (tokenizer eos + generation_config.json eos_token_id).

examples:
  lf-template check ./merged --template llama3                 # exit 1: the native template differs
  lf-template check ./merged --config train.yaml --json        # machine-readable, same exit codes
  lf-template check ./merged --template qwen --strict          # boundary-only cases fail too

exit codes: 0 aligned (boundary-only cases are warned about), 1 misaligned, 2 bad input.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_dir", metavar="MODEL_DIR", help="merged/exported model dir, checkpoint or HF snapshot")
    parser.add_argument("--json", action="store_true", help="print the report as JSON (schema: docs/cli.md)")
    parser.add_argument("--report", metavar="FILE", help="also write the JSON report to FILE")
    parser.add_argument("--strict", action="store_true", help="treat boundary-only cases as misaligned (exit 1)")
    parser.add_argument("--trust-remote-code", action="store_true", help="allow tokenizers that ship code")
    add_template_options(parser)


def run(args: argparse.Namespace) -> int:
    require_dir(args.model_dir)
    from ..modeldir import inspect_dir

    inspect_dir(args.model_dir)  # bad input found before LF loads
    resolved = resolve_template(args, model_dir=args.model_dir)
    from ..check import check_model_dir
    from ..journal import write_text_atomic
    from .output import dump, print_report, verdict

    result = check_model_dir(
        args.model_dir, resolved.template, resolved.options, trust_remote_code=args.trust_remote_code
    )
    data = result.report.to_dict()
    data["stop_ids"] = {
        "template": result.stop_ids,
        "engine": result.engine_stop_ids,
        "missing": result.missing_stop_ids,
    }
    data["template_file"] = result.template_file
    code = result.exit_code(strict=args.strict)
    if args.report:
        write_text_atomic(args.report, dump(data) + "\n")
    if args.json:
        print(dump(data))
        return code
    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"LF template {resolved.template!r} vs {result.template_file or 'no chat template'}:")
    print_report(result.report)
    if result.missing_stop_ids:
        print(
            f"stop ids: the template stops on {result.stop_ids}, engines stop on {result.engine_stop_ids}: "
            f"missing {result.missing_stop_ids} (generation would run past the end of the turn)"
        )
    else:
        print(f"stop ids: engines stop on every template stop id {result.stop_ids}")
    if code == 0:
        verdict(True, "engines render what training saw")
    else:
        verdict(False, f"fix it with: lf-template repair {args.model_dir} --template {resolved.template}")
    return code
