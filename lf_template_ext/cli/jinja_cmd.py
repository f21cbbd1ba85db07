"""``lf-template jinja``: print or write the compiled template."""

from __future__ import annotations

import argparse
import sys

from .common import add_template_options, load_tokenizer, resolve_template

HELP = "compile an LF template into a Jinja chat template that renders LF's training ids"
DESCRIPTION = """\
Compile the LLaMA-Factory template you trained with into a Jinja chat template that, rendered by
transformers/vLLM/SGLang and tokenized whole, gives exactly the token ids LF trained on: system and
default system, multi-turn, add_generation_prompt, tools and tool calls in LF's tool_format, reasoning
(enable_thinking as a chat_template_kwargs switch).

examples:
  lf-template jinja --template qwen --tokenizer ./Qwen2.5-7B-Instruct
  lf-template jinja --config train_qwen3.yaml --output qwen3_lf.jinja   # tokenizer: the YAML's model_name_or_path
  vllm serve ./merged --chat-template qwen3_lf.jinja --generation-config ./merged

The tokenizer matters: LF's {"bos_token"}/{"eos_token"} slots become that tokenizer's token texts
(after LF's replace_eos), and dict slots must be tokens it knows.

--output into a model dir is written through the journal (backup; `lf-template restore` undoes it) and never
over the model's own files (tokenizer_config.json, config.json, ...); elsewhere an existing file
lf-template-ext did not write is refused unless --force.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tokenizer",
        metavar="DIR",
        help="dir of the tokenizer training used (the base model or the merged export); default: the "
        "`model_name_or_path` of --config",
    )
    parser.add_argument("--output", "-o", metavar="FILE", help="write the template here instead of stdout")
    parser.add_argument("--trust-remote-code", action="store_true", help="allow tokenizers that ship code (GLM-4, InternLM2)")
    parser.add_argument(
        "--force", action="store_true", help="overwrite an --output file outside a model dir that lf-template-ext did not write"
    )
    add_template_options(parser)


def run(args: argparse.Namespace) -> int:
    from ..compiler import compile_spec
    from ..modeldir.output import write_output

    if args.output and args.output != "-":
        from .emit_cmd import _check_output

        _check_output(args.output, args.force)
    args.tokenizer = _tokenizer_dir(args)
    resolved = resolve_template(args, model_dir=args.tokenizer)
    tokenizer = load_tokenizer(args.tokenizer, trust_remote_code=args.trust_remote_code)
    # the same compile as lf_template_ext.compile_jinja, refusing a template this tokenizer was not trained with
    from ..verifier import gate

    snap = gate.snapshot(resolved.template, tokenizer, resolved.options, trained_with=args.tokenizer)
    text = compile_spec(snap.spec, snap.facts)
    if args.output and args.output != "-":
        written = write_output(args.output, text.encode("utf-8"), force=args.force, tool="lf-template jinja --output")
        where = f"; backup: {written.backup.path}" if written.backup else ""
        state = "already up to date" if written.unchanged else "wrote"
        print(f"{state} {args.output} ({len(text)} chars, LF template {resolved.template!r}{where})", file=sys.stderr)
        _stop_note(args.tokenizer, tokenizer, resolved)
    else:
        sys.stdout.write(text)
    return 0


def _tokenizer_dir(args: argparse.Namespace) -> str:
    """``--tokenizer``, else the training YAML's ``model_name_or_path`` (what LF loaded the tokenizer from)."""
    from ..errors import BadInputError
    from ..modeldir.record import read_model_path

    if args.tokenizer:
        return args.tokenizer
    path = read_model_path(args.config) if getattr(args, "config", None) else None
    if path is None:
        raise BadInputError(
            "no tokenizer: the template's tokens are that tokenizer's",
            path=getattr(args, "config", None),
            hint="pass --tokenizer DIR (the base model or the merged export), or --config TRAIN.yaml with its "
            "model_name_or_path",
        )
    return path


def _stop_note(directory: str, tokenizer: object, resolved: object) -> None:
    """The template's stop ids that `vllm serve --chat-template FILE` alone does not stop on (it stops on the
    dir's tokenizer eos and generation_config.json eos): Llama-3.1's <|eom_id|> 128008, for example."""
    from ..model.stops import missing_ids
    from ..modeldir.files import engine_stop_ids
    from ..verifier import gate

    snap = gate.snapshot(resolved.template, tokenizer, resolved.options)  # type: ignore[attr-defined]
    engine = engine_stop_ids(directory, tokenizer, strict=False)
    missing = missing_ids(snap.stop_ids, engine)
    if missing:
        print(
            f"note: the template stops on {list(snap.stop_ids)}; `vllm serve --chat-template` with {directory} stops on "
            f"{engine} only and misses {missing}: run `lf-template repair {directory}` and add `--generation-config "
            f"{directory}`, or send \"stop_token_ids\": {missing} with each request",
            file=sys.stderr,
        )
