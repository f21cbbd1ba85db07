"""Drives LLaMA Board's own code in one process (run by tests/test_llamaboard.py with LF_TEMPLATE_EXT=1).

``python tests/llamaboard_driver.py SPEC.json`` builds the real web UI (``create_ui``: every tab, the Engine,
its Manager and Runner), then does what two clicks do: Train tab "Start" (``Runner.run_train`` with the
values of the button's real input components: LLaMA Board builds the arguments, writes
``training_args.yaml`` / ``llamaboard_config.yaml`` and launches ``llamafactory-cli train`` in a
subprocess with its own environment) and Export tab "Export" (``save_model`` with the button's inputs,
in order, in this process). Component values are the UI's defaults overridden by ``SPEC["train"]`` /
``SPEC["exports"]`` (one Export click each) (keyed by LLaMA Board's element ids). Prints one JSON line: what the UI showed.
Run with the working directory LLaMA Board should use (its ``saves/`` and ``llamaboard_cache/``).
"""

from __future__ import annotations

import json
import sys
import time


def _click(demo, name: str):
    """The event a button runs: LLaMA Board's function and its input components (as gradio calls them)."""
    for block_fn in demo.fns.values():
        if getattr(block_fn.fn, "__name__", None) == name:
            return block_fn
    raise LookupError(f"no event runs {name!r} in this LLaMA Board")


def _values(manager, components, overrides: dict) -> dict:
    """The UI's current values: each component's default, then the overrides by element id."""
    values = {c: getattr(c, "value", None) for c in components}
    by_id = {manager.get_id_by_elem(c): c for c in components}
    for elem_id, value in overrides.items():
        values[by_id[elem_id]] = value
    return values


def main(spec_path: str) -> None:
    spec = json.loads(open(spec_path, encoding="utf-8").read())
    t0 = time.time()
    from llamafactory.webui.control import list_checkpoints
    from llamafactory.webui.interface import create_ui

    demo = create_ui()
    result: dict = {"ui_seconds": round(time.time() - t0, 1)}
    if "train" in spec:
        start = _click(demo, "run_train")
        runner = start.fn.__self__
        manager = runner.manager
        data = _values(manager, start.inputs, spec["train"])
        output_box = manager.get_elem_by_id("train.output_box")
        shown = None
        t1 = time.time()
        for update in start.fn(data):  # Runner.run_train: the generator gradio streams into the page
            shown = update.get(output_box, shown)
        result["train_output_box"] = shown
        result["train_seconds"] = round(time.time() - t1, 1)
        top = spec["train"]
        dropdown = list_checkpoints(top["top.model_name"], top.get("top.finetuning_type", "lora"))
        result["checkpoint_choices"] = [c[0] if isinstance(c, (list, tuple)) else c for c in dropdown.choices]
    if "exports" in spec:  # one Export click each, in order, in this one web UI process
        export = _click(demo, "save_model")
        manager = _click(demo, "run_train").fn.__self__.manager
        result["exports"] = []
        for overrides in spec["exports"]:
            values = _values(manager, export.inputs, overrides)
            t2 = time.time()
            shown = list(export.fn(*[values[c] for c in export.inputs]))  # save_model: the info box's messages
            result["exports"].append({"info_box": shown, "seconds": round(time.time() - t2, 1)})
    print("LLAMABOARD " + json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1])
