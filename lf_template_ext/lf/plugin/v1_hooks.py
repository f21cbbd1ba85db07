"""What the switch does on LF's v1 path (``USE_V1=1 llamafactory-cli sft|merge``; ``lf.v1``).

v1 has its own launcher, trainer and merge, none of which run the v0 functions ``hook.py`` wraps, so without
these patches a v1 run would leave no record and an unrepaired dir. Each patch wraps one v1 function and never
breaks it (a failure here is one warning line):

* ``llamafactory.v1.launcher``: one line at start-up saying what the switch covers on this path;
* ``llamafactory.v1.core.base_trainer.BaseTrainer.save_model``: after v1 saved ``output_dir``, writes the record
  (``lf_path: "v1"``, the renderer, ``cutoff_len``, the base model); a full fine-tune's dir is a servable model,
  so it is repaired too (``workflows.v1``), in the same journaled transaction as the record; a LoRA dir keeps
  the record for ``merge``;
* ``llamafactory.v1.plugins.model_plugins.peft.merge_and_export_model``: after v1 merged into ``export_dir``
  (which then holds the base model's own chat template), repairs it for the renderer the adapter trained with.

A renderer outside ``lf.v1.COVERED`` is recorded and refused in one line naming why; ``lf-template check`` and
``repair`` then exit 3.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Callable, Optional

PREFIX = "lf-template-ext"


def _say(message: str) -> None:
    print(f"[{PREFIX}] {message}", file=sys.stderr)


def startup_line() -> str:
    from .. import v1 as lf_v1

    return (
        f"{PREFIX}: LF's v1 path (USE_V1=1): renderers {', '.join(lf_v1.COVERED)} are covered: `sft` records the "
        "renderer in output_dir/lf_template_ext.json, `merge` (and a full fine-tune's output_dir) gets the renderer's "
        "verified Jinja twin as its chat template; other renderers are recorded and refused (exit 3)"
    )


def refusal_line(template: Optional[str]) -> str:
    from .. import v1 as lf_v1

    return (
        f"{PREFIX}: LF's v1 path (USE_V1=1) is not covered for renderer {template!r} (covered: {', '.join(lf_v1.COVERED)}): "
        "the model dir is not checked or repaired; run without USE_V1 (LF's templates are covered), or use a covered "
        "renderer"
    )


def _main_process() -> bool:
    return int(os.environ.get("RANK", "0") or 0) == 0


def _lf_version() -> str:
    from ..versions import installed_version

    return installed_version() or "unknown"


def _is_adapter(directory: str) -> bool:
    return os.path.isfile(os.path.join(directory, "adapter_config.json"))


def _summary(directory: str, plan: Any, txn: Any) -> None:
    s = plan.report.summary
    changed = ", ".join(c.relpath for c in txn.changes) or "nothing needed changing"
    _say(f"v1 renderer {plan.template!r}: {directory}: {changed}")
    _say(
        f"alignment on the probe corpus: {s['identical']} identical, {s['boundary_only']} boundary-only, "
        f"{s['differs']} differ, {s['unsupported']} unsupported (v1 cannot render them); check: lf-template check {directory}"
    )


def after_save(trainer: Any) -> None:
    """v1's ``save_model`` finished: the record, and the repair of a full fine-tune's dir."""
    from ...modeldir.record import make_v1_record
    from .. import v1 as lf_v1
    from .export import write_record

    if not _main_process():
        return
    args = trainer.args
    directory = args.output_dir
    template = getattr(trainer.renderer, "template", None)
    processor = getattr(trainer.renderer, "processor", None)
    record = make_v1_record(template, _lf_version(), getattr(args, "cutoff_len", None), getattr(processor, "name_or_path", None))
    record["source"] = "train"
    if template not in lf_v1.COVERED:
        write_record(directory, record)
        _say(refusal_line(template))
        return
    if _is_adapter(directory):
        write_record(directory, record)
        _say(f"v1 renderer {template!r} recorded in {directory}; merge with `USE_V1=1 llamafactory-cli merge` to get a "
             "repaired model dir")
        return
    from ...workflows.v1 import repair_v1_dir

    plan, txn = repair_v1_dir(directory, template, record=record)
    _summary(directory, plan, txn)


def after_merge(model_args: Any) -> None:
    """v1's merge wrote ``export_dir`` with the base model's chat template: serve the adapter's renderer instead."""
    from ...modeldir.record import read_record
    from .. import v1 as lf_v1

    if not _main_process():
        return
    peft = model_args.peft_config or {}
    export_dir, adapter = peft.get("export_dir"), peft.get("adapter_name_or_path")
    if not export_dir or not os.path.isdir(export_dir):
        return
    trained = read_record(adapter) if isinstance(adapter, str) and os.path.isdir(adapter) else None
    template = model_args.template
    if trained and trained.get("lf_path") == lf_v1.PATH and trained.get("template"):
        if trained["template"] != template:
            _say(f"warning: the adapter trained with v1 renderer {trained['template']!r} ({adapter}), the merge was given "
                 f"{template!r}: the renderer training used wins")
        template = trained["template"]
    from ...modeldir.record import make_v1_record

    record = make_v1_record(template, _lf_version(), (trained or {}).get("cutoff_len"), model_args.model)
    record["source"] = "merge"
    if template not in lf_v1.COVERED:
        from .export import write_record

        write_record(export_dir, record)
        _say(refusal_line(template))
        return
    from ...workflows.v1 import repair_v1_dir

    plan, txn = repair_v1_dir(export_dir, template, record=record)
    _summary(export_dir, plan, txn)


def _guarded(step: Callable[..., None], *args: Any) -> None:
    try:
        step(*args)
    except Exception as e:  # never break LF because of us
        _say(f"v1 path: {type(e).__name__}: {e}")


def patch_launcher(module: Any) -> None:
    if getattr(module, "_lf_template_ext", False):
        return
    module._lf_template_ext = True
    if _main_process():
        print(startup_line(), file=sys.stderr)


def patch_base_trainer(module: Any) -> None:
    cls = module.BaseTrainer
    original = cls.save_model
    if getattr(original, "_lf_template_ext", False):
        return

    def save_model(self) -> None:
        original(self)
        _guarded(after_save, self)

    save_model._lf_template_ext = True  # type: ignore[attr-defined]
    save_model.__wrapped__ = original  # type: ignore[attr-defined]
    cls.save_model = save_model


def patch_peft(module: Any) -> None:
    original = module.merge_and_export_model
    if getattr(original, "_lf_template_ext", False):
        return

    def merge_and_export_model(args=None):
        model_args = None
        try:
            from llamafactory.v1.config import get_args

            model_args = get_args(args)[0]  # the same parsing v1's merge does next
        except Exception:  # noqa: BLE001 - v1's own parse reports it
            pass
        original(args)
        if model_args is not None:
            _guarded(after_merge, model_args)

    merge_and_export_model._lf_template_ext = True  # type: ignore[attr-defined]
    merge_and_export_model.__wrapped__ = original  # type: ignore[attr-defined]
    module.merge_and_export_model = merge_and_export_model
