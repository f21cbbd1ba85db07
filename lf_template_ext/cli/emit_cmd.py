"""``lf-template emit``: one engine's file for a model dir."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Optional

from ..workflows.engines import ENGINES
from .common import add_generation_option, add_serve_options, add_template_options, resolve_template, sampling_from_args

HELP = "write one engine's file: vLLM --chat-template, Ollama Modelfile, LMDeploy JSON, GGUF metadata, Open WebUI preset"
DESCRIPTION = """\
Write the file one engine needs to render the training format, without touching anything else:

  vllm      the compiled Jinja template, for `vllm serve --chat-template FILE` (also SGLang, llama-server
            --chat-template-file)                                          default: MODEL_DIR/chat_template.jinja
  ollama    a Modelfile whose TEMPLATE (Go text/template) renders LF's format, with stop parameters
            (num_ctx only with --max-model-len); FROM is MODEL_DIR (`.` when the Modelfile is in it; a LoRA
            adapter dir: FROM its base model + ADAPTER)                    default: MODEL_DIR/Modelfile
  lmdeploy  a ChatTemplateConfig JSON for `lmdeploy serve api_server --chat-template FILE`, when LMDeploy's
            format can express the template, system prompts included (exit 3 with the reason otherwise,
            e.g. llama3: serve with `--chat-template hf`); what it still drops is printed as caveats
                                                                           default: MODEL_DIR/lmdeploy_chat_template.json
  gguf      the GGUF metadata a repaired GGUF gets (JSON: tokenizer.chat_template, eos, add_bos_token);
            apply it with `lf-template repair model.gguf`                  default: stdout
  openwebui an Open WebUI model preset to import (Workspace > Models > Import): on top of the served model
            (the dir's name; a LoRA adapter: `lf`), empty system prompt (the template adds training's default),
            the template's stop strings, built-in tools off, the sampling written   default: MODEL_DIR/open-webui-model.json

Files in MODEL_DIR (or, with --output, in any model dir) are written through the journal, with a backup
(undo with `lf-template restore`); the model's own files (tokenizer_config.json, config.json, weights) are
refused as --output. A dir that has a SERVING.md (a repaired one) gets SERVING.md and alignment_report.json
regenerated in the same transaction, so they name the file just written. Elsewhere --output is written atomically and an existing file without the
lf-template-ext header (the Jinja template and the Modelfile carry one; the JSON outputs cannot) is refused
unless --force. `--output -` prints.

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
    parser.add_argument(
        "--force", action="store_true", help="overwrite an --output file outside a model dir that lf-template-ext did not write"
    )
    parser.add_argument(
        "--no-wait", action="store_true", help="fail (exit 2) instead of waiting when another lf-template run writes the dir"
    )
    add_serve_options(parser)
    add_generation_option(parser)
    add_template_options(parser)


def run(args: argparse.Namespace) -> int:
    from ..modeldir.files import inspect_dir
    from ..modeldir.lock import set_lock_wait

    set_lock_wait(not args.no_wait)
    info = inspect_dir(args.model_dir)
    if args.output and args.output != "-":
        _check_output(args.output, args.force)
    elif args.output is None and DEFAULT_FILES[args.engine] != "-":
        from ..modeldir.write_errors import check_writable

        check_writable(args.model_dir)
    resolved = resolve_template(args, model_dir=args.model_dir)
    from ..workflows import engines
    from .common import load_tokenizer, warn

    engine = engines.get(args.engine)
    tokenizer = load_tokenizer(args.model_dir, trust_remote_code=args.trust_remote_code)
    from ..verifier import gate
    snap = gate.snapshot(resolved.template, tokenizer, resolved.options, trained_with=args.model_dir)
    output = args.output or DEFAULT_FILES[args.engine]
    into_dir = args.output is None and os.path.dirname(output) == ""
    out_dir = args.model_dir if into_dir or output == "-" else os.path.dirname(os.path.abspath(output))
    ctx = _context(args, info, snap, tokenizer, resolved, out_dir)
    text, verdict = engine.emit_checked(ctx)  # not expressible: UnsupportedTemplateError, exit 3
    for caveat in verdict.caveats:
        print(f"caveat: {caveat}", file=sys.stderr)
    if args.engine == "lmdeploy":
        name_warning = engines.lmdeploy_name_warning(info.name)
        if name_warning:
            warn(name_warning)
    if output == "-":
        sys.stdout.write(text)
        return 0
    written = os.path.abspath(os.path.join(args.model_dir, output) if into_dir else output)
    docs = _docs(ctx, resolved, args.engine, written)
    code = _write(args, output, text, docs)
    hint = _serve_hint(args.engine, os.path.abspath(args.model_dir), written)
    if hint:
        print(hint)
    return code


def _context(args: argparse.Namespace, info: Any, snap: Any, tokenizer: Any, resolved: Any, out_dir: str) -> Any:
    from ..modeldir.adapter import adapter_base_model
    from ..workflows import engines

    base = None
    if info.is_adapter:
        base = resolved.provenance.base_model or adapter_base_model(args.model_dir)
    return engines.EmitContext(
        snap, args.model_dir, info.name, tokenizer, resolved.cutoff_len, serve_max_len=resolved.serve_max_len,
        is_adapter=info.is_adapter, base_model=base, output_dir=out_dir, provenance=resolved.described,
        sampling=sampling_from_args(args),
    )  # fmt: skip


def _docs(ctx: Any, resolved: Any, engine: str, written: str) -> dict[str, bytes]:
    """SERVING.md and alignment_report.json of a repaired dir (it has a SERVING.md), regenerated for the dir
    with the file just emitted; nothing for a file written elsewhere or a dir never repaired."""
    from ..modeldir.files import read_chat_template
    from ..workflows import engines
    from ..workflows.repair import SERVING_FILE, dir_docs

    model_dir = os.path.abspath(ctx.model_dir)
    if os.path.dirname(written) != model_dir or not os.path.isfile(os.path.join(model_dir, SERVING_FILE)):
        return {}
    jinja, _ = read_chat_template(ctx.model_dir)
    mode = "fix" if jinja == engines.ENGINES["vllm"].emit(ctx) else "keep-native"  # the template repair writes
    this = {engine} if os.path.basename(written) == engines.ENGINES[engine].filename else set()
    files, _report = dir_docs(
        ctx, resolved.template, resolved.options, jinja, engines.verdicts(ctx), this, [], mode=mode
    )
    return files


def _serve_hint(engine: str, model_dir: str, path: str) -> str:
    """How the engine picks the file up (SERVING.md, written by `repair --engines`, has the full commands)."""
    import shlex

    model_dir, raw_path = shlex.quote(model_dir), path
    path = shlex.quote(path)
    if engine == "vllm":
        return (
            f"serve: vllm serve {model_dir} --chat-template {path} --generation-config {model_dir}\n"
            "  (--generation-config makes vLLM stop on every eos id of generation_config.json; "
            "`lf-template repair` aligns them)"
        )
    if engine == "ollama":
        return (
            f"serve: cd {shlex.quote(os.path.dirname(raw_path))} && ollama create my-model -f "
            f"{shlex.quote(os.path.basename(raw_path))}"
        )
    if engine == "lmdeploy":
        return f"serve: lmdeploy serve api_server {model_dir} --chat-template {path}"
    if engine == "openwebui":
        return f"import: Open WebUI > Workspace > Models > Import {path} (SERVING.md: what to leave empty)"
    return ""


def _check_output(output: str, force: bool = False) -> None:
    """Refuse an --output that cannot be written before LF loads (it takes seconds)."""
    from ..errors import BadInputError

    path = os.path.abspath(output)
    if os.path.isdir(path):
        raise BadInputError("is a directory, not a file", path=path, hint="give a file name inside it")
    if not os.path.isdir(os.path.dirname(path)):
        raise BadInputError(
            "the directory does not exist; nothing was written", path=os.path.dirname(path), hint="create it first"
        )
    from ..modeldir.output import MODEL_OWN_FILES, MODEL_OWN_SUFFIXES, is_model_dir, is_ours
    from ..modeldir.write_errors import check_writable

    check_writable(os.path.dirname(path))
    name = os.path.basename(path)
    in_model_dir = is_model_dir(os.path.dirname(path))
    if in_model_dir and (name in MODEL_OWN_FILES or name.endswith(MODEL_OWN_SUFFIXES)):
        raise BadInputError(
            f"refusing to write over the model's own {name} (engines and transformers read it); nothing was written",
            path=path,
            hint="choose another --output, e.g. " + os.path.join(os.path.dirname(path), "chat_template.jinja"),
        )
    if not in_model_dir and not force and os.path.lexists(path) and not is_ours(path, b""):
        raise BadInputError(
            "exists and was not written by lf-template-ext; nothing was written",
            path=path,
            hint="pass --force to overwrite it, or choose another --output",
        )


def _write(args: argparse.Namespace, output: str, text: str, docs: Optional[dict[str, bytes]] = None) -> int:
    from ..modeldir.output import write_output

    tool = f"lf-template emit --engine {args.engine}"
    if os.path.dirname(output) == "" and args.output is None:  # default: a file inside MODEL_DIR
        path = os.path.join(args.model_dir, output)
        written = write_output(path, text.encode("utf-8"), force=args.force, tool=tool, in_model_dir=True, extra=docs)
    else:
        path = output
        written = write_output(path, text.encode("utf-8"), force=args.force, tool=tool, extra=docs)
    if written.unchanged:
        print(f"{path} is already up to date")
    elif written.backup is not None:
        print(f"wrote {path} (backup: {written.backup.path}; undo with: lf-template restore {os.path.dirname(written.path)})")
    else:
        print(f"wrote {path}")
    return 0
