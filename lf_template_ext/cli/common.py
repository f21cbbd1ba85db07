"""Options and helpers shared by the subcommands (kept import-light)."""

from __future__ import annotations

import argparse
import sys
from typing import Any, Optional

from ..errors import BadInputError
from ..model.options import ALL_KEYS, OPTION_KEYS, TEMPLATE_OPTIONS, parse_bool_or_none
from ..modeldir.provenance import Resolved, resolve
from ..modeldir.tokenizer import load_tokenizer, require_dir  # noqa: F401 - the commands' shared helpers

TEMPLATE_HELP = (
    "LF template name, as in your training YAML's `template:` (e.g. qwen, llama3, qwen3_nothink). "
    "Defaults to what the model dir records about its training: lf_template_ext.json, then LF's "
    "training_args.yaml / llamaboard_config.yaml (LLaMA Board runs)."
)
OVERRIDE_HELP = (
    "the template flags given contradict what the dir records about training on purpose: use them without a "
    "warning (without it, each contradiction is a warning naming both values)"
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
        help=f"read {', '.join(ALL_KEYS)} from an LF training or export YAML",
    )
    for option in TEMPLATE_OPTIONS:
        kwargs: dict[str, Any] = {"metavar": option.metavar, "default": s, "help": option.help}
        if option.kind in ("bool", "bool_or_none"):
            kwargs["type"] = _bool_or_none
        g.add_argument(option.flag, **kwargs)
    g.add_argument("--override-training", action="store_true", help=OVERRIDE_HELP)


TEMPLATE_KEYS = ("template", *OPTION_KEYS)


def add_serve_options(parser: argparse.ArgumentParser) -> None:
    """``--max-model-len N``: the serving context written into SERVING.md and the Modelfile (none by default)."""
    parser.add_argument(
        "--max-model-len",
        type=int,
        metavar="N",
        default=argparse.SUPPRESS,
        help="serve with this context length (vLLM --max-model-len, SGLang --context-length, LMDeploy --session-len, "
        "llama.cpp -c, Ollama num_ctx); default: none, the model's own. Training's cutoff_len is not used: it "
        "only truncated training samples (YAML: template_ext_serve_max_len)",
    )


def add_generation_option(parser: argparse.ArgumentParser) -> None:
    """``--generation model|lf``: which sampling values go into generation_config.json and the Modelfile."""
    parser.add_argument(
        "--generation",
        choices=("model", "lf"),
        default="model",
        help="model (default): write only the sampling values --config sets (LF's generating arguments: "
        "temperature, top_p, top_k, do_sample, repetition_penalty, max_new_tokens), keep the model's others; "
        "lf: also write LF chat's defaults, so engines sample as `llamafactory-cli chat` does "
        "(YAML: template_ext_generation)",
    )


def sampling_from_args(args: argparse.Namespace) -> Any:
    """The run's ``model.generation.Sampling``: ``--config``'s generating arguments and ``--generation``."""
    from ..modeldir.record import read_sampling
    from ..workflows.repair import default_sampling

    config = getattr(args, "config", None)
    given = read_sampling(config) if config else {}
    return default_sampling(given, getattr(args, "generation", "model"))


def given_template_flags(args: argparse.Namespace) -> dict[str, Any]:
    given = {key: getattr(args, key) for key in TEMPLATE_KEYS if hasattr(args, key)}
    if hasattr(args, "max_model_len"):
        given["template_ext_serve_max_len"] = args.max_model_len
    return given


def resolve_template(args: argparse.Namespace, model_dir: Optional[str]) -> Resolved:
    """Flags > ``--config`` > what the dir records about training > LF's defaults
    (``model.options.resolve_with_provenance``); a flag contradicting training is a warning unless
    ``--override-training``; no template anywhere is exit 2 naming the template LF would pick. A dir trained on
    LF's v1 path names a v1 renderer, not an LF template: only ``check`` and ``repair`` handle it (``cli.v1_cmd``),
    every other command refuses it (exit 3)."""
    from ..modeldir.record import v1_template

    recorded_v1 = v1_template(model_dir) if model_dir else None
    if recorded_v1 is not None:
        from ..errors import UnsupportedTemplateError

        raise UnsupportedTemplateError(
            recorded_v1,
            f"{model_dir} was trained on LF's v1 path (USE_V1=1, lf_template_ext.json lf_path: v1): its template is v1's "
            "own renderer, which this command does not cover; use `lf-template check` / `lf-template repair` on it",
            feature="v1 path",
        )
    resolved = resolve(cli=given_template_flags(args), config_path=getattr(args, "config", None), model_dir=model_dir)
    if not getattr(args, "override_training", False):
        for w in resolved.warnings:
            warn(w + " (--override-training: no warning)")
    if not resolved.template:
        raise BadInputError(
            "no LF template given, and the model dir records none (no lf_template_ext.json, training_args.yaml or "
            "llamaboard_config.yaml)" + _suggestion(resolved.provenance.base_model or model_dir),
            hint="pass --template NAME (the `template:` of your training YAML) or --config TRAIN.yaml",
        )
    return resolved


def _suggestion(model: Optional[str]) -> str:
    """``; LF itself would pick ...`` for this model (LF's DEFAULT_TEMPLATE / SUPPORTED_MODELS), or nothing."""
    if not model:
        return ""
    try:
        from ..lf.compat import suggest_template_for_model

        name = suggest_template_for_model(model)
    except Exception:  # noqa: BLE001 - a suggestion only; the error stands without it
        return ""
    if not name:
        return f"; LF associates no template with {model!r}"
    return f"; LF itself would pick template {name!r} for {model!r} (is it the one you trained with?)"


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)
