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
  lf-template jinja --config train_qwen3.yaml --tokenizer ./Qwen3-8B --output qwen3_lf.jinja
  vllm serve ./merged --chat-template qwen3_lf.jinja --generation-config ./merged

The tokenizer matters: LF's {"bos_token"}/{"eos_token"} slots become that tokenizer's token texts
(after LF's replace_eos), and dict slots must be tokens it knows.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tokenizer",
        metavar="DIR",
        required=True,
        help="dir of the tokenizer training used (the base model or the merged export)",
    )
    parser.add_argument("--output", "-o", metavar="FILE", help="write the template here instead of stdout")
    parser.add_argument("--trust-remote-code", action="store_true", help="allow tokenizers that ship code (GLM-4, InternLM2)")
    add_template_options(parser)


def run(args: argparse.Namespace) -> int:
    from ..api import compile_jinja
    from ..modeldir.journal import write_text_atomic

    resolved = resolve_template(args, model_dir=args.tokenizer)
    tokenizer = load_tokenizer(args.tokenizer, trust_remote_code=args.trust_remote_code)
    o = resolved.options
    text = compile_jinja(
        resolved.template,
        tokenizer,
        default_system=o.default_system,
        tool_format=o.tool_format,
        enable_thinking=o.enable_thinking,
        preserve_thinking=o.preserve_thinking,
        mask_history=o.mask_history,
    )
    if args.output:
        write_text_atomic(args.output, text)
        print(f"wrote {args.output} ({len(text)} chars, LF template {resolved.template!r})", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
