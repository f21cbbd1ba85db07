"""What the hook does after LF's export and around LF's training.

* :func:`post_export`: after ``llamafactory-cli export`` saved ``export_dir``, repair it
  (``repair.plan_repair`` + ``apply_plan``) for the template and options of the export: a key the
  user wrote in the export arguments wins (a warning when it contradicts training), every other
  key comes from what training recorded (our record, LF's ``training_args.yaml``...), never from
  LF's defaults (``model.options.resolve_with_provenance``); write
  the record into ``export_dir``; push the rewritten files when ``export_hub_model_id``
  is set (LF pushes before any post-export code can run).
* :func:`train_callback`: a ``TrainerCallback`` that writes ``lf_template_ext.json`` into
  ``output_dir`` when training starts and ends, and into every ``checkpoint-N`` when it is
  saved, repairing that checkpoint's template files (full fine-tune users serve checkpoints).

A failure after export is raised (LF's own files are saved by then; the command exits non-zero
so scripts notice); a failure in a training callback is reported on stderr and training goes on.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from typing import Any, Optional

from ...model.options import ENGINES_KEY, GENERATION_KEY, MODE_KEY, SERVE_MAX_LEN, TemplateOptions
from ...modeldir.record import RECORD_NAME, make_record


def _log(message: str) -> None:
    print(f"[lf-template-ext] {message}", file=sys.stderr)


def options_from_data_args(data_args: Any) -> TemplateOptions:
    return TemplateOptions.from_data_args(data_args)


def parse_engines(value: Any) -> tuple[str, ...]:
    from ...workflows.engines import parse_names

    return parse_names(value)


def _serve_max_len(options: dict[str, Any]) -> Optional[int]:
    """``template_ext_serve_max_len`` of the YAML (None: the serve commands set no context length)."""
    value = options.get(SERVE_MAX_LEN.name)
    return None if value is None else SERVE_MAX_LEN.parse(value)


EXPORT_SOURCE = "export arguments"


def _training_provenance(dirs: list[Optional[str]]) -> tuple[Any, Optional[str]]:
    """What the first of ``dirs`` with any training trace records (``modeldir.provenance``), and that dir."""
    from ...modeldir.provenance import Provenance, read_provenance

    for d in dirs:
        if d and os.path.isdir(d):
            prov = read_provenance(d)
            if prov.layers:
                return prov, d
    return Provenance(), None


def export_options(data_args: Any, given: Optional[frozenset[str]], trained: list) -> Any:
    """The template and options of an export: the keys the user wrote at export win, the rest come from
    ``trained`` (the provenance layers), never from LF's defaults (``model.options.resolve_with_provenance``).
    ``given`` None (LF's arguments were not seen raw): every data argument counts as written."""
    from ...model.options import RESOLVED_KEYS, resolve_with_provenance

    keys = RESOLVED_KEYS if given is None else [k for k in RESOLVED_KEYS if k in given]
    written = {k: getattr(data_args, k) for k in keys if getattr(data_args, k, None) is not None or k != "template"}
    return resolve_with_provenance(trained, [(EXPORT_SOURCE, written)])


def post_export(state: Any, options: dict[str, Any]) -> None:
    """Repair ``export_dir`` after LF's own export (see module docstring)."""
    try:
        _post_export(state, options)
    except Exception as e:
        _log(f"export post-processing failed: {type(e).__name__}: {e}")
        traceback.print_exc()
        raise


def _with_lf_modelfile(export_dir: str, engines: tuple[str, ...]) -> tuple[str, ...]:
    """``engines`` plus ``ollama`` when LF's export has just written its own ``Modelfile``.

    ``llamafactory-cli export`` always writes a Modelfile from LF's ``get_ollama_modelfile``: LF's stock
    rendering of the template (no tools, so Ollama refuses tool requests; LF's own SYSTEM line). Left beside
    our files it is a second, lossy Ollama file in the dir that users will ``ollama create`` from. Repairing
    it like any Ollama file puts the one that renders training's format in its place, or removes it through
    the journal with the reason when Ollama's template language cannot express the template (LF's original
    is in the backup either way).
    """
    if "ollama" in engines or not os.path.isfile(os.path.join(export_dir, "Modelfile")):
        return engines
    _log("LF's export wrote its own Modelfile: repaired like an Ollama file (template_ext_engines gains ollama)")
    return engines + ("ollama",)


def _post_export(state: Any, options: dict[str, Any]) -> None:
    from ...workflows.repair import apply_plan, plan_repair
    from .. import compat as lf_compat

    model_args, data_args = state.model_args, state.data_args
    if model_args is None or data_args is None or not getattr(model_args, "export_dir", None):
        _log("export finished without the arguments lf-template-ext needs; nothing done")
        return
    export_dir = model_args.export_dir
    adapters = list(getattr(model_args, "adapter_name_or_path", None) or [])
    prov, where = _training_provenance(adapters[::-1] + [getattr(model_args, "model_name_or_path", None)])
    resolved = export_options(data_args, getattr(state, "given_keys", None), prov.layers)
    template = resolved.template
    if not template:
        _log("no `template` in the export arguments and none recorded at training time: nothing done")
        return
    opts = resolved.options
    for conflict in resolved.conflicts:
        _log(f"warning: {conflict.message()} ({where})")
    for key, described in resolved.describe().items():
        _log(f"{key}: {described}")
    mode = str(options.get(MODE_KEY, "fix"))
    if template == "native":
        mode = "keep-native"  # trained on the model's own template: keep it, align the stop ids
    engines = _with_lf_modelfile(export_dir, parse_engines(options.get(ENGINES_KEY)))
    cutoff = resolved.values.get("cutoff_len")
    # template_ext_tokenize: whole at training (the record) -> the export's reference is whole mode's ids too
    tokenize = "whole" if (prov.record or {}).get("tokenize") == "whole" and template != "native" else None
    plan = plan_repair(
        export_dir,
        template,
        opts,
        mode=mode,
        engines=engines,
        cutoff_len=cutoff,
        original_extra_tokens=state.extra_tokens_before_fix,
        base_model=None,
        serve_max_len=_serve_max_len(options),
        provenance=resolved.describe(),
        sampling=export_sampling(state, options),
        tokenize=tokenize,
        **_media_kwargs(prov.record),
    )
    rec = make_record(template, opts, lf_compat.check_version(), cutoff)
    if tokenize:
        rec["tokenize"] = tokenize
    for key in ("media", "mm_plugin"):  # training's media arguments travel with the exported model
        if prov.record and key in prov.record:
            rec[key] = prov.record[key]
    rec["option_sources"] = dict(resolved.sources)
    rec["extra_special_tokens"] = state.extra_tokens_before_fix
    rec["source"] = "export"
    plan.files[RECORD_NAME] = (json.dumps(rec, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    backup, txn = apply_plan(plan)
    for note in plan.notes:
        _log(f"note: {note}")
    hub_id = getattr(model_args, "export_hub_model_id", None)
    if hub_id and txn.changes:
        _push(export_dir, hub_id, [c.relpath for c in txn.changes], getattr(model_args, "hf_hub_token", None))
    for line in summary_lines(export_dir, plan, txn):
        _log(line)


def export_sampling(state: Any, options: dict[str, Any]) -> Any:
    """The sampling LF's chat uses for this export: the generating arguments the user wrote (export YAML/CLI)
    are written into generation_config.json (and a Modelfile); ``template_ext_generation: lf`` adds LF chat's
    defaults for the rest (``model.generation``)."""
    from ...workflows.repair import default_sampling

    gen_args = getattr(state, "generating_args", None)
    given = {k: getattr(gen_args, k) for k in sorted(getattr(state, "given_sampling", ())) if hasattr(gen_args, k)}
    return default_sampling(given, str(options.get(GENERATION_KEY, "model")))


def _push(export_dir: str, repo_id: str, files: list[str], token: Optional[str]) -> None:
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    for rel in files:
        path = os.path.join(export_dir, rel)
        if os.path.exists(path):
            api.upload_file(path_or_fileobj=path, path_in_repo=rel, repo_id=repo_id)
        else:
            api.delete_file(path_in_repo=rel, repo_id=repo_id)
    _log(f"pushed {len(files)} rewritten file(s) to {repo_id}")


# -- training --------------------------------------------------------------------------------


def _record_for_training(state: Any) -> Optional[dict[str, Any]]:
    from .. import compat as lf_compat
    from ..whole_template import is_whole

    data_args = state.data_args
    if data_args is None:
        return None
    rec = make_record(data_args.template, options_from_data_args(data_args), lf_compat.check_version(), getattr(data_args, "cutoff_len", None))
    rec["extra_special_tokens"] = state.extra_tokens_before_fix
    rec["model_name_or_path"] = state.base_tokenizer_path
    rec["source"] = "train"
    add_media(rec, state)
    if is_whole(state.template):  # template_ext_tokenize: whole: check/repair take whole mode's ids as the reference
        rec["tokenize"] = "whole"
    if data_args.template == "native":
        from ...native.options import current

        chosen = current().chat_template
        if chosen is not None:  # template_ext_chat_template: what native mode rendered instead of the model's own
            rec["chat_template"] = chosen[0]
    return rec


def add_media(rec: dict[str, Any], state: Any) -> None:
    """A template with an mm plugin: the record keeps LF's media arguments of the run and the plugin's name
    (``model.media_args``): repair writes the processor configs from them, ``resize_like_training`` reads them."""
    from ...model.media_args import PLUGIN_KEY, RECORD_KEY, MediaArgs
    from ..media_args import plugin_name

    plugin = plugin_name(getattr(state.template, "mm_plugin", None))
    if plugin is not None:
        rec[RECORD_KEY] = (getattr(state, "train_media", None) or MediaArgs()).to_record()
        rec[PLUGIN_KEY] = plugin


def _media_kwargs(record: Optional[dict[str, Any]]) -> dict[str, Any]:
    """``plan_repair``'s ``media``/``mm_plugin`` from a training record (empty: the record keeps none)."""
    from ...model.media_args import PLUGIN_KEY, RECORD_KEY, MediaArgs

    if not record or RECORD_KEY not in record:
        return {}
    return {"media": MediaArgs.from_record(record[RECORD_KEY]), "mm_plugin": record.get(PLUGIN_KEY)}


def write_record(directory: str, record: dict[str, Any]) -> None:
    from ...modeldir.atomic import write_text_atomic

    os.makedirs(directory, exist_ok=True)
    write_text_atomic(os.path.join(directory, RECORD_NAME), json.dumps(record, indent=2, ensure_ascii=False) + "\n")


def repair_checkpoint(directory: str, record: dict[str, Any], options: dict[str, Any]) -> Any:
    """Fix a saved checkpoint's (or the final output_dir's) template files, same plan as `lf-template repair`.

    Returns ``(plan, transaction)`` (``None`` when the record names no template or the dir is gone)."""
    from ...workflows.repair import apply_plan, plan_repair

    template = record.get("template")
    if not template or not os.path.isdir(directory):
        return None
    mode = "keep-native" if template == "native" else str(options.get(MODE_KEY, "fix"))
    plan = plan_repair(
        directory,
        template,
        TemplateOptions.from_mapping(record.get("options") or {}),
        mode=mode,
        engines=parse_engines(options.get(ENGINES_KEY)),
        cutoff_len=record.get("cutoff_len"),
        original_extra_tokens=record.get("extra_special_tokens"),
        base_model=record.get("model_name_or_path"),
        serve_max_len=_serve_max_len(options),
        tokenize=record.get("tokenize"),
        **_media_kwargs(record),
    )
    plan.files[RECORD_NAME] = (json.dumps(record, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    _backup, txn = apply_plan(plan)
    return plan, txn


def summary_lines(directory: str, plan: Any, txn: Any, *, checkpoints: str = "") -> list[str]:
    """The three lines the hook prints when ``train``/``export`` ends: what was written, the alignment, what next."""
    changed = ", ".join(c.relpath for c in txn.changes) or "nothing needed changing"
    from ...verifier.report import exit_code

    s = plan.report.summary
    aligned = exit_code(s) == 0  # the checks' one rule (what `lf-template check` would exit with)
    off = [c.id for c in plan.report.cases if c.status == "differs"]
    shown = ", ".join(off[:3]) + (f" and {len(off) - 3} more" if len(off) > 3 else "")
    verdict = "engines render what training saw" if aligned else f"NOT aligned on {shown}: see alignment_report.json"
    return [
        f"{directory}: served as LF template {plan.template!r} ({plan.mode}): {changed}{checkpoints}",
        f"alignment on the probe corpus: {s['identical']} identical, {s['boundary_only']} boundary-only, "
        f"{s['differs']} differ: {verdict}",
        f"next: serve with the commands in {os.path.join(directory, 'SERVING.md')}; verify any time with "
        f"`lf-template check {directory}`",
    ]


def finish_training(state: Any, options: dict[str, Any]) -> None:
    """After LF saved the final model into ``output_dir`` (after ``run_exp``'s training, main process only):
    repair it like a checkpoint (a full fine-tune is served from it; an adapter gets its record, SERVING.md and
    generation config) and print the summary. Never raises: training has succeeded by now."""
    directory = state.trained_output_dir
    state.trained_output_dir = None
    if directory is None:
        return
    rec = _record_for_training(state)
    if rec is None:
        return
    done, failed = state.checkpoints_fixed, state.checkpoints_failed
    note = f"; {done} checkpoint(s) fixed" + (f", {failed} failed (above)" if failed else "") if done or failed else ""
    try:
        result = repair_checkpoint(directory, rec, options)
    except Exception as e:  # noqa: BLE001 - the model is trained and saved; say what is left to do
        _log(f"fixing {directory} failed: {type(e).__name__}: {e}")
        _log(f"next: `lf-template repair {directory}` (its lf_template_ext.json names template {rec.get('template')!r})")
        return
    if result is not None:
        lines = summary_lines(directory, *result, checkpoints=note)
        for line in lines:
            _log(line)
        _to_llamaboard(lines)


def _to_llamaboard(lines: list[str]) -> None:
    """Under LLaMA Board (its Runner sets ``LLAMABOARD_ENABLED``) the summary also goes to LF's own logger:
    the Runner discards a successful run's stderr, while LF's logger writes to the web UI's console and, through
    the handler LF's ``LogCallback`` attaches, to the run's ``running_log.txt`` (the Train tab shows that file)."""
    if os.environ.get("LLAMABOARD_ENABLED", "0").lower() not in ("true", "y", "1"):
        return
    try:
        from llamafactory.extras import logging as lf_logging

        logger = lf_logging.get_logger("llamafactory.lf_template_ext")
        for line in lines:
            logger.info(f"[lf-template-ext] {line}")
    except Exception as e:  # noqa: BLE001 - the summary is on stderr already
        _log(f"could not write the summary to LLaMA Board's log: {type(e).__name__}: {e}")


def train_callback(state: Any, options: dict[str, Any]) -> Any:
    from transformers import TrainerCallback

    state.checkpoints_fixed = state.checkpoints_failed = 0
    state.trained_output_dir = None

    class LFTemplateExtCallback(TrainerCallback):
        """Writes lf_template_ext.json and fixes template files of every checkpoint (main process)."""

        def _safely(self, what: str, fn, *a) -> bool:
            try:
                fn(*a)
            except Exception as e:  # noqa: BLE001 - never break training
                _log(f"{what} failed: {type(e).__name__}: {e}")
                return False
            return True

        def on_train_begin(self, args, st, control, **kwargs):
            rec = _record_for_training(state)
            if rec is not None and st.is_world_process_zero:
                self._safely("writing the training record", write_record, args.output_dir, rec)

        def on_save(self, args, st, control, **kwargs):
            rec = _record_for_training(state)
            if rec is None or not st.is_world_process_zero:
                return
            ckpt = os.path.join(args.output_dir, f"checkpoint-{st.global_step}")
            if self._safely(f"fixing {ckpt}", repair_checkpoint, ckpt, rec, options):
                state.checkpoints_fixed += 1
            else:
                state.checkpoints_failed += 1

        def on_train_end(self, args, st, control, **kwargs):
            # LF saves the final model after this event: the record now, the repair once run_exp returns
            # (hook.run_exp -> finish_training).
            rec = _record_for_training(state)
            if rec is not None and st.is_world_process_zero:
                self._safely("writing the training record", write_record, args.output_dir, rec)
                state.trained_output_dir = args.output_dir

    return LFTemplateExtCallback()
