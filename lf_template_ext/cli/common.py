"""Options and helpers shared by the subcommands (kept import-light)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Optional

from ..errors import BadInputError
from ..model.options import parse_bool_or_none
from ..modeldir.record import Resolved, resolve

TEMPLATE_HELP = (
    "LF template name, as in your training YAML's `template:` (e.g. qwen, llama3, qwen3_nothink). "
    "Defaults to the one recorded at training time in the model dir (lf_template_ext.json)."
)


def _bool_or_none(value: str) -> Optional[bool]:
    try:
        return parse_bool_or_none(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_template_options(parser: argparse.ArgumentParser) -> None:
    """The template flags; each defaults to SUPPRESS so only flags the user gave are set."""
    g = parser.add_argument_group(
        "template options (must match the training run; see `template`, `default_system`, ... in your LF YAML)"
    )
    s = argparse.SUPPRESS
    g.add_argument("--template", metavar="NAME", default=s, help=TEMPLATE_HELP)
    g.add_argument(
        "--config",
        metavar="TRAIN.yaml",
        help="read template, default_system, tool_format, enable_thinking, preserve_thinking, mask_history and "
        "cutoff_len from an LF training or export YAML",
    )
    g.add_argument("--default-system", metavar="TEXT", default=s, help="LF's default_system override used in training")
    g.add_argument(
        "--tool-format", metavar="FORMAT", default=s, help="LF's tool_format override used in training (e.g. qwen)"
    )
    g.add_argument(
        "--enable-thinking",
        type=_bool_or_none,
        metavar="{true,false,none}",
        default=s,
        help="LF's enable_thinking (reasoning templates); LF's default is true",
    )
    g.add_argument("--preserve-thinking", type=_bool_or_none, metavar="{true,false}", default=s, help="LF's preserve_thinking")
    g.add_argument("--mask-history", type=_bool_or_none, metavar="{true,false}", default=s, help="LF's mask_history")


TEMPLATE_KEYS = ("template", "default_system", "tool_format", "enable_thinking", "preserve_thinking", "mask_history")


def given_template_flags(args: argparse.Namespace) -> dict[str, Any]:
    return {key: getattr(args, key) for key in TEMPLATE_KEYS if hasattr(args, key)}


def resolve_template(args: argparse.Namespace, model_dir: Optional[str]) -> Resolved:
    resolved = resolve(cli=given_template_flags(args), config_path=getattr(args, "config", None), model_dir=model_dir)
    for w in resolved.warnings:
        warn(w)
    if not resolved.template:
        raise BadInputError(
            "no LF template given",
            hint="pass --template NAME (the `template:` of your training YAML) or --config TRAIN.yaml",
        )
    return resolved


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def require_dir(path: str, what: str = "model dir") -> str:
    if not os.path.exists(path):
        raise BadInputError(f"no such {what}", path=path)
    if not os.path.isdir(path):
        raise BadInputError(f"not a directory (expected a {what})", path=path)
    return path


def load_tokenizer(path: str, trust_remote_code: bool = False) -> Any:
    """Load the tokenizer of ``path`` with a clear error when it is not one."""
    require_dir(path, "tokenizer dir")
    names = set(os.listdir(path))
    if not names & {"tokenizer.json", "tokenizer.model", "tokenizer_config.json", "vocab.json", "tiktoken.model"}:
        raise BadInputError(
            "no tokenizer files here (tokenizer.json / tokenizer.model / tokenizer_config.json)",
            path=path,
            hint="point at the model dir that holds the tokenizer training used",
        )
    from ..modeldir.files import load_json_file

    if "tokenizer_config.json" in names:
        load_json_file(os.path.join(path, "tokenizer_config.json"))  # malformed JSON -> BadInputError naming it
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except Exception as e:  # transformers raises many types here
        hint = "pass --trust-remote-code if the model ships its own tokenizer code" if "trust_remote_code" in str(e) else None
        raise BadInputError(f"cannot load the tokenizer: {type(e).__name__}: {e}", path=path, hint=hint) from None
