"""``check`` and ``repair`` of a dir trained on LF's v1 path (its record says ``"lf_path": "v1"``; ``workflows.v1``).

The record's ``template`` names a v1 renderer, not an LF template (``qwen3_nothink`` exists in both with
different formats), so these dirs never reach the v0 resolution: the reference is v1's renderer. What this path
does not do (datasets, live servers, artifact engines, LF option flags) is refused with exit 3 rather than run
against the wrong reference.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import UnsupportedTemplateError

#: the flags whose meaning is LF-template based; on the v1 path they are refused
_V0_ONLY = ("config", "default_system", "tool_format", "enable_thinking", "preserve_thinking", "mask_history",
            "dataset", "endpoint", "artifact", "chat_template_kwargs", "mode")  # fmt: skip


def template_for(args: argparse.Namespace, recorded: str) -> str:
    """The renderer to check against: ``--template`` if given, else the recorded one; LF-template flags refused."""
    given = [name for name in _V0_ONLY if getattr(args, name, None) is not None]
    if given:
        flags = ", ".join("--" + n.replace("_", "-") for n in given)
        raise UnsupportedTemplateError(
            recorded or "?",
            f"{flags}: not available for a dir trained on LF's v1 path (USE_V1=1), whose reference is v1's own "
            "renderer (the probe corpus, hf/vllm side); run without them",
            feature="v1 path",
        )
    template = getattr(args, "template", None) or recorded
    if getattr(args, "template", None) and recorded and args.template != recorded:
        print(f"warning: the dir records v1 renderer {recorded!r}; checking against --template {args.template!r}", file=sys.stderr)
    return template


def run_check(args: argparse.Namespace, recorded: str) -> int:
    from ..modeldir.atomic import write_text_atomic
    from ..workflows.v1 import ENGINES, check_v1_dir
    from .output import dump, print_report, verdict

    template = template_for(args, recorded)
    engine = str(getattr(args, "engine", None) or "hf").split(",")[0]
    if engine not in ENGINES:
        raise UnsupportedTemplateError(
            template, f"--engine {engine}: a dir trained on LF's v1 path is checked as vLLM/transformers render its Jinja "
            "chat template (--engine hf)", feature="v1 path",
        )  # fmt: skip
    result = check_v1_dir(args.model_dir, template, trust_remote_code=args.trust_remote_code)
    data = result.report.to_dict()
    data["lf_path"] = "v1"
    data["stop_ids"] = {"template": result.stop_ids, "engine": result.engine_stop_ids, "missing": result.missing_stop_ids}
    data["template_file"] = result.template_file
    code = result.exit_code(strict=args.strict)
    if args.report:
        write_text_atomic(args.report, dump(data) + "\n")
    if args.json:
        print(dump(data))
        return code
    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"LF v1 renderer {template!r} (USE_V1=1 training) vs {result.template_file or 'no chat template'}:")
    print_report(result.report)
    if result.missing_stop_ids:
        print(f"stop ids: v1 ends turns with {result.stop_ids}, engines stop on {result.engine_stop_ids}: missing {result.missing_stop_ids}")
    else:
        print(f"stop ids: engines stop on v1's end of turn {result.stop_ids}")
    if code == 0:
        verdict(True, "engines render what v1 training saw")
    else:
        verdict(False, f"fix it with: lf-template repair {args.model_dir}")
    return code


def run_repair(args: argparse.Namespace, recorded: str) -> int:
    from ..modeldir.journal import recover_runs
    from ..modeldir.lock import dir_lock
    from ..modeldir.write_errors import check_writable
    from ..workflows.v1 import plan_v1_repair
    from .output import apply_and_tell

    template = template_for(args, recorded)
    engines = tuple(args.engines or ("vllm",))
    target = args.target
    if not args.dry_run:
        check_writable(target)
    with dir_lock(target):
        if not args.dry_run:
            for r in recover_runs(target):
                print(f"rolled back an interrupted earlier run ({r.stamp})", file=sys.stderr)
        plan = plan_v1_repair(target, template, engines=engines, trust_remote_code=args.trust_remote_code)
        return apply_and_tell(args, plan, target, f"LF v1 renderer {template!r}")
