"""``lf-template repair``: make a model dir (or a GGUF) serve its training format."""

from __future__ import annotations

import argparse
import os
import sys

from .common import add_generation_option, add_serve_options, add_template_options, resolve_template, sampling_from_args

HELP = "write the training-format template, stop ids and engine files into a model dir or GGUF (with a backup)"
DESCRIPTION = """\
Repair an existing checkpoint, merged model, LF saves/ dir or HF cache snapshot without re-running
`llamafactory-cli export`: writes the compiled template into tokenizer_config.json and
chat_template.jinja (identical text), generation_config.json eos_token_id = tokenizer eos + the template's
stop ids, the tokenizer's extra special tokens, SERVING.md (exact serve commands per engine),
alignment_report.json, and the engine files you ask for.

Template and options: flags > --config > what the dir records about training (lf_template_ext.json, then
LF's training_args.yaml / llamaboard_config.yaml, which LLaMA Board writes into a run's output dir) > LF's
defaults; a flag contradicting training is a warning naming both values (--override-training: none). With
nothing recorded, the error names the template LF itself would pick for the model.

Every file is backed up first into MODEL_DIR/.lf-template-backups/<UTC timestamp>/ (with a manifest),
replaced atomically, never written through a symlink (an HF cache snapshot's links are replaced by files,
the shared blobs stay untouched). Running it again changes nothing and says so. An interrupted run is
rolled back by the next run or by `lf-template restore`.

examples:
  lf-template repair ./saves/qwen3/lora/sft                    # template and options from what training recorded
  lf-template repair ./merged --template llama3 --dry-run      # what would change, nothing written
  lf-template repair ./merged --template llama3 --dry-run --diff   # the same as a unified diff
  lf-template repair ./merged --template llama3
  lf-template repair ./merged --config train.yaml --engines vllm,ollama,lmdeploy
  lf-template repair ./merged --template qwen3 --mode keep-native   # leave the template, report the mismatch
  lf-template repair ./model-Q4_K_M.gguf --template qwen           # GGUF metadata (chat template, eos, add_bos)
  lf-template restore ./merged                                 # undo
"""


def _engines(value: str) -> tuple[str, ...]:
    from ..workflows.engines import ENGINES

    items = tuple(v.strip() for v in value.split(",") if v.strip())
    bad = [v for v in items if v not in ENGINES]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown engine(s) {', '.join(bad)}; choose from {', '.join(ENGINES)}")
    return items


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="MODEL_DIR|FILE.gguf", help="model dir to repair, or a .gguf file")
    parser.add_argument(
        "--engines",
        type=_engines,
        default=None,
        metavar="LIST",
        help="engine files to write besides the template: comma list of vllm,ollama,lmdeploy,gguf,openwebui (default: vllm)",
    )
    parser.add_argument(
        "--mode",
        choices=("fix", "keep-native"),
        default=None,
        help="fix (default): write the compiled template; keep-native: keep the model's template, still align "
        "stop ids and write the report",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print which files would change and how much; write nothing"
    )
    parser.add_argument("--diff", action="store_true", help="with --dry-run: print the unified diff of every change")
    parser.add_argument(
        "--tokenizer",
        metavar="DIR",
        help="for a .gguf: the HF tokenizer dir it was converted from (default: the GGUF's own vocabulary, "
        "read by transformers)",
    )
    parser.add_argument("--trust-remote-code", action="store_true", help="allow tokenizers that ship code")
    parser.add_argument(
        "--no-wait", action="store_true", help="fail (exit 2) instead of waiting when another lf-template run writes the dir"
    )
    add_serve_options(parser)
    add_generation_option(parser)
    add_template_options(parser)


def run(args: argparse.Namespace) -> int:
    target = args.target
    if target.endswith(".gguf"):
        return _run_gguf(args)
    from ..modeldir.files import inspect_dir

    inspect_dir(target)  # bad input found before LF loads
    from ..modeldir.lock import dir_lock, set_lock_wait
    from ..modeldir.record import v1_template

    recorded_v1 = v1_template(target)
    if recorded_v1 is not None:  # trained on LF's v1 path: v1's renderer is the reference (cli.v1_cmd)
        from .v1_cmd import run_repair

        set_lock_wait(not getattr(args, "no_wait", False))
        return run_repair(args, recorded_v1)
    resolved = resolve_template(args, model_dir=target)
    from ..modeldir.write_errors import check_writable

    set_lock_wait(not getattr(args, "no_wait", False))
    if args.dry_run:
        return _run_dir(args, target, resolved)
    check_writable(target)  # read-only or full file system: exit 2 before LF loads
    with dir_lock(target):  # one writer per dir, from recovery through planning to the commit
        return _run_dir(args, target, resolved)


def _report_recovered(recovered: list) -> None:
    for r in recovered:
        files = ", ".join(r.files) if r.files else "no file had been replaced yet"
        what = "rolled back an interrupted earlier run" if r.action == "rolled-back" else "finished an interrupted restore"
        print(f"{what} ({r.stamp}): {files}", file=sys.stderr)


def _run_dir(args: argparse.Namespace, target: str, resolved) -> int:
    from ..modeldir.journal import recover_runs
    from ..workflows.repair import plan_repair

    record = resolved.provenance.record or {}
    mode = args.mode or "fix"
    engines = args.engines or ("vllm",)
    if not args.dry_run:
        _report_recovered(recover_runs(target))
    plan = plan_repair(
        target,
        resolved.template,
        resolved.options,
        mode=mode,
        engines=engines,
        cutoff_len=resolved.cutoff_len,
        original_extra_tokens=record.get("extra_special_tokens"),
        trust_remote_code=args.trust_remote_code,
        base_model=resolved.provenance.base_model,
        serve_max_len=resolved.serve_max_len,
        provenance=resolved.described,
        sampling=sampling_from_args(args),
    )
    from .output import apply_and_tell

    return apply_and_tell(args, plan, target, f"LF template {resolved.template!r}", f"({plan.mode})")


def _run_gguf(args: argparse.Namespace) -> int:
    from ..errors import BadInputError
    from ..modeldir.journal import recover_runs
    from ..modeldir.lock import set_lock_wait

    set_lock_wait(not getattr(args, "no_wait", False))
    directory = os.path.dirname(os.path.abspath(args.target))
    if not args.dry_run and os.path.isdir(directory):
        # a swap killed between its two renames leaves only the temp file and the backup: put the original back
        _report_recovered(recover_runs(directory))
    if not os.path.isfile(args.target):
        raise BadInputError("no such GGUF file", path=args.target)
    if not args.dry_run:
        from ..modeldir.write_errors import check_writable

        check_writable(directory)
    try:
        from .gguf_cmd import repair_gguf_cli
    except ImportError:
        raise BadInputError("GGUF repair is not available in this build", path=args.target) from None
    return repair_gguf_cli(args)
