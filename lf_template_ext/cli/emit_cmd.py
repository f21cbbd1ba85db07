"""``lf-template emit``: one engine's file for a model dir."""

from __future__ import annotations

import argparse
import os
import sys

from ..workflows.engines import ENGINES
from .common import add_template_options, resolve_template

HELP = "write one engine's file: vLLM --chat-template, Ollama Modelfile, LMDeploy JSON, GGUF metadata"
DESCRIPTION = """\
Write the file one engine needs to render the training format, without touching anything else:

  vllm      the compiled Jinja template, for `vllm serve --chat-template FILE` (also SGLang, llama-server
            --chat-template-file)                                          default: MODEL_DIR/chat_template.jinja
  ollama    a Modelfile whose TEMPLATE (Go text/template) renders LF's format, with stop parameters and
            num_ctx from the training cutoff_len                           default: MODEL_DIR/Modelfile
  lmdeploy  a ChatTemplateConfig JSON for `lmdeploy serve api_server --chat-template FILE`, when LMDeploy's
            format can express the template (exit 3 with the reason otherwise)
                                                                           default: MODEL_DIR/lmdeploy_chat_template.json
  gguf      the GGUF metadata a repaired GGUF gets (JSON: tokenizer.chat_template, eos, add_bos_token);
            apply it with `lf-template repair model.gguf`                  default: stdout

Files in MODEL_DIR are written with a backup (restore with `lf-template restore`); `--output -` prints.

examples:
  lf-template emit ./merged --engine ollama --template qwen3
  lf-template emit ./merged --engine vllm --output /srv/templates/qwen3_lf.jinja
  lf-template emit ./merged --engine lmdeploy --config train.yaml
"""

DEFAULT_FILES = {name: e.filename for name, e in ENGINES.items()}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_dir", metavar="MODEL_DIR")
    parser.add_argument("--engine", required=True, choices=tuple(ENGINES))
    parser.add_argument("--output", "-o", metavar="PATH", help="where to write ('-' for stdout); default: see above")
    parser.add_argument("--trust-remote-code", action="store_true", help="allow tokenizers that ship code")
    add_template_options(parser)


def run(args: argparse.Namespace) -> int:
    from ..modeldir.files import inspect_dir

    info = inspect_dir(args.model_dir)
    resolved = resolve_template(args, model_dir=args.model_dir)
    from ..lf import compat as lf_compat
    from ..workflows import engines
    from .common import load_tokenizer, warn

    engine = engines.get(args.engine)
    tokenizer = load_tokenizer(args.model_dir, trust_remote_code=args.trust_remote_code)
    snap = lf_compat.snapshot(resolved.template, tokenizer, resolved.options, trained_with=args.model_dir)
    text = engine.emit(engines.EmitContext(snap, args.model_dir, info.name, tokenizer, resolved.cutoff_len))
    if args.engine == "lmdeploy":
        name_warning = engines.lmdeploy_name_warning(info.name)
        if name_warning:
            warn(name_warning)
    output = args.output or DEFAULT_FILES[args.engine]
    if output == "-":
        sys.stdout.write(text)
        return 0
    written = os.path.abspath(os.path.join(args.model_dir, output) if os.path.dirname(output) == "" and args.output is None else output)
    code = _write(args, output, text)
    hint = _serve_hint(args.engine, os.path.abspath(args.model_dir), written)
    if hint:
        print(hint)
    return code


def _serve_hint(engine: str, model_dir: str, path: str) -> str:
    """How the engine picks the file up (SERVING.md, written by `repair --engines`, has the full commands)."""
    if engine == "vllm":
        return (
            f"serve: vllm serve {model_dir} --chat-template {path} --generation-config {model_dir}\n"
            "  (--generation-config makes vLLM stop on every eos id of generation_config.json; "
            "`lf-template repair` aligns them)"
        )
    if engine == "ollama":
        return f"serve: cd {os.path.dirname(path)} && ollama create my-model -f {os.path.basename(path)}"
    if engine == "lmdeploy":
        return f"serve: lmdeploy serve api_server {model_dir} --chat-template {path}"
    return ""


def _write(args: argparse.Namespace, output: str, text: str) -> int:
    from ..modeldir.journal import Transaction, write_text_atomic

    if os.path.dirname(output) == "" and args.output is None:  # default: a file inside MODEL_DIR, journaled
        txn = Transaction(args.model_dir, tool=f"lf-template emit --engine {args.engine}")
        txn.stage_text(output, text)
        backup = txn.commit()
        path = os.path.join(args.model_dir, output)
        if backup is None:
            print(f"{path} is already up to date")
        else:
            print(f"wrote {path} (backup: {backup.path})")
        return 0
    write_text_atomic(output, text)
    print(f"wrote {output}")
    return 0
