"""What a model dir says about its training run: the one reader of every trace training leaves.

In order (the first that names a key wins, see ``model.options.resolve_with_provenance``):

1. our record ``lf_template_ext.json`` (written with ``LF_TEMPLATE_EXT=1``);
2. LF's ``training_args.yaml``: the arguments LLaMA Board (``llamafactory-cli webui``) saves into the run's
   ``output_dir`` (LF 0.9.5 ``webui/common.py: save_cmd``; keys are LF's own: ``template``,
   ``enable_thinking``, ``mask_history``, ``cutoff_len``, ``model_name_or_path``, ... and ``default_system`` /
   ``tool_format`` when the user put them there). LLaMA Board drops ``False``/``None`` values except
   ``enable_thinking``, so a missing ``mask_history`` is LF's default, which it was;
3. LF's ``llamaboard_config.yaml`` (``webui/runner.py: _build_config_dict``): the web form by element id
   (``top.template``, ``train.enable_thinking``, ``train.mask_history``, ``train.cutoff_len``).

A ``checkpoint-N`` dir is also read through its parent (LLaMA Board writes its files into ``output_dir``
only). The base model of an adapter: the record's ``model_name_or_path``, then ``training_args.yaml``'s,
then ``adapter_config.json``'s ``base_model_name_or_path`` (HF's ``trainer_state.json`` names no model).

File I/O only: no LF, no transformers.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Optional

from ..errors import BadInputError
from ..model.options import (
    ALL_KEYS,
    CUTOFF_KEY,
    OPTION_KEYS,
    SERVE_MAX_LEN,
    Conflict,
    Layer,
    OptionValueError,
    TemplateOptions,
    resolve_with_provenance,
)
from .record import RECORD_NAME, read_record, read_train_yaml

TRAINING_ARGS = "training_args.yaml"
LLAMABOARD_CONFIG = "llamaboard_config.yaml"
ADAPTER_CONFIG = "adapter_config.json"
RECORD_SOURCE = "training record"
#: llamaboard_config.yaml element id -> LF key
BOARD_KEYS = {
    "top.template": "template",
    "train.enable_thinking": "enable_thinking",
    "train.mask_history": "mask_history",
    "train.cutoff_len": "cutoff_len",
}


@dataclass
class Provenance:
    """What the dir's training traces say: ``layers`` for the option rule (first wins), the record itself,
    the base model and where it was read."""

    layers: list[Layer] = field(default_factory=list)
    record: Optional[dict[str, Any]] = None
    base_model: Optional[str] = None
    base_model_source: Optional[str] = None

    @property
    def template(self) -> Optional[str]:
        return next((layer["template"] for _s, layer in self.layers if layer.get("template")), None)


def record_layer(record: dict[str, Any]) -> dict[str, Any]:
    """A record as option-rule keys (``template``, the options, ``cutoff_len``, ``template_ext_serve_max_len``)."""
    flat: dict[str, Any] = {}
    if record.get("template"):
        flat["template"] = record["template"]
    if record.get("cutoff_len") is not None:
        flat["cutoff_len"] = record["cutoff_len"]
    if record.get("serve_max_len"):
        flat["template_ext_serve_max_len"] = record["serve_max_len"]
    flat.update({k: v for k, v in (record.get("options") or {}).items() if k in OPTION_KEYS})
    return flat


def _read_yaml(path: str) -> Optional[dict[str, Any]]:
    import yaml

    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise BadInputError(f"cannot read LF's run file: {e}", path=path, hint="fix or delete it, or pass --template") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise BadInputError("an LF run file must be a YAML mapping", path=path, hint="fix or delete it, or pass --template")
    return data


def _dirs(model_dir: str) -> list[str]:
    """The dir, and the run's output dir for a ``checkpoint-N``."""
    path = os.path.abspath(model_dir)
    out = [path]
    if re.fullmatch(r"checkpoint-\d+", os.path.basename(path)):
        out.append(os.path.dirname(path))
    return out


def _label(directory: str, model_dir: str, name: str) -> str:
    return name if directory == os.path.abspath(model_dir) else os.path.join("..", name)


def read_provenance(model_dir: Optional[str]) -> Provenance:
    """Everything ``model_dir`` records about its training (an empty :class:`Provenance` for no dir)."""
    prov = Provenance()
    if not model_dir or not os.path.isdir(model_dir):
        return prov
    record = read_record(model_dir)
    if record is not None:
        prov.record = record
        prov.layers.append((RECORD_SOURCE, record_layer(record)))
        if record.get("model_name_or_path"):
            prov.base_model, prov.base_model_source = record["model_name_or_path"], RECORD_SOURCE
    for directory in _dirs(model_dir):
        args = _read_yaml(os.path.join(directory, TRAINING_ARGS))
        if args is not None:
            prov.layers.append((_label(directory, model_dir, TRAINING_ARGS), {k: v for k, v in args.items() if k in ALL_KEYS}))
            if prov.base_model is None and isinstance(args.get("model_name_or_path"), str):
                prov.base_model = args["model_name_or_path"]
                prov.base_model_source = _label(directory, model_dir, TRAINING_ARGS)
        board = _read_yaml(os.path.join(directory, LLAMABOARD_CONFIG))
        if board is not None:
            layer = {key: board[elem] for elem, key in BOARD_KEYS.items() if board.get(elem) not in (None, "")}
            prov.layers.append((_label(directory, model_dir, LLAMABOARD_CONFIG), layer))
    if prov.base_model is None:
        adapter = os.path.join(model_dir, ADAPTER_CONFIG)
        if os.path.isfile(adapter):
            try:
                with open(adapter, encoding="utf-8") as f:
                    base = json.load(f).get("base_model_name_or_path")
            except (OSError, ValueError, AttributeError):
                base = None
            if isinstance(base, str) and base:
                prov.base_model, prov.base_model_source = base, ADAPTER_CONFIG
    return prov


# -- the commands' resolution: flags > --config > what the dir records > LF's defaults ---------------------

COMMAND_LINE = "command line"


@dataclass
class Resolved:
    """A template name with its options, where each came from, and what contradicts training."""

    template: Optional[str]
    options: TemplateOptions
    cutoff_len: Optional[int] = None
    #: ``template_ext_serve_max_len`` / ``--max-model-len``: the serving context, only when asked for
    serve_max_len: Optional[int] = None
    sources: dict[str, str] = field(default_factory=dict)
    #: ``{key: "value (source)"}`` for the template and every option (alignment_report.json, SERVING.md)
    described: dict[str, str] = field(default_factory=dict)
    conflicts: tuple[Conflict, ...] = ()
    provenance: Provenance = field(default_factory=Provenance)

    @property
    def warnings(self) -> list[str]:
        return [c.message() for c in self.conflicts]


def resolve(*, cli: dict[str, Any], config_path: Optional[str] = None, model_dir: Optional[str] = None) -> Resolved:
    """The rule of ``model.options.resolve_with_provenance`` for a command: ``cli`` holds only the flags the
    user gave (they win over ``--config``); what the dir records comes next; LF's defaults last."""
    prov = read_provenance(model_dir)
    given: list[Layer] = []
    paths = {RECORD_SOURCE: os.path.join(model_dir or "", RECORD_NAME)}
    if config_path:
        given.append((config_path, read_train_yaml(config_path)))
        paths[config_path] = config_path
    given.append((COMMAND_LINE, cli))
    try:
        p = resolve_with_provenance(prov.layers, given)
    except OptionValueError as e:
        where = paths.get(e.source) or (os.path.join(model_dir or "", e.source) if e.source != COMMAND_LINE else e.source)
        raise BadInputError(e.reason, path=where) from None
    return Resolved(
        template=p.template,
        options=p.options,
        cutoff_len=p.values.get(CUTOFF_KEY.name),
        serve_max_len=p.values.get(SERVE_MAX_LEN.name),
        sources=dict(p.sources),
        described=p.describe(),
        conflicts=p.conflicts,
        provenance=prov,
    )
