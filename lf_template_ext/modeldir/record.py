"""The train-time record ``lf_template_ext.json``.

Serving with a different template than training used is the top cause of user reports, so
training (with the extension enabled) writes what it used into ``output_dir``, and every
command defaults to it (``modeldir.provenance`` reads it beside LF's own run files; the rule
is ``model.options.resolve_with_provenance``).

Pure Python (json, yaml): no LF import.
"""

from __future__ import annotations

import json
import os
from typing import Any, Optional

from .._version import __version__
from ..errors import BadInputError
from ..model.options import ALL_KEYS, TemplateOptions

RECORD_NAME = "lf_template_ext.json"


def read_record(model_dir: str) -> Optional[dict[str, Any]]:
    """The record in ``model_dir`` (or ``None``); a malformed one is bad input."""
    path = os.path.join(model_dir, RECORD_NAME)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise BadInputError(f"cannot read the training record: {e}", path=path, hint="fix or delete the file") from None
    if not isinstance(data, dict) or not isinstance(data.get("template"), (str, type(None))):
        raise BadInputError("the training record is not an object with a 'template' key", path=path)
    return data


def trained_tokenize(model_dir: str) -> str:
    """How the dir's training encoded: the record's ``tokenize`` (``whole``: ``template_ext_tokenize: whole``),
    else LF's own ``slots``. The reference rule follows it (``verifier.reference``)."""
    value = (read_record(model_dir) or {}).get("tokenize")
    return "whole" if value == "whole" else "slots"


def make_record(template: Optional[str], options: TemplateOptions, lf_version: str, cutoff_len: Optional[int]) -> dict[str, Any]:
    return {
        "lf_version": lf_version,
        "package_version": __version__,
        "template": template,
        "options": options.to_dict(),
        "cutoff_len": cutoff_len,
    }


#: ``lf_path`` of a record written on LF's v1 path (``USE_V1=1``): its ``template`` names a v1 renderer
#: (``lf.v1``), not an LF template, and check/repair take the v1 path (``workflows.v1``)
V1_PATH = "v1"


def make_v1_record(template: Optional[str], lf_version: str, cutoff_len: Optional[int], model: Optional[str]) -> dict[str, Any]:
    """The record of a run on LF's v1 path: the renderer, the path marker, the base model."""
    return {
        "lf_version": lf_version,
        "lf_path": V1_PATH,
        "package_version": __version__,
        "template": template,
        "options": {},
        "cutoff_len": cutoff_len,
        "model_name_or_path": model,
    }


def v1_template(model_dir: str) -> Optional[str]:
    """The v1 renderer a dir records (``""`` when the record has none), or ``None`` when it was not trained on
    the v1 path."""
    record = read_record(model_dir) if os.path.isdir(model_dir) else None
    if not record or record.get("lf_path") != V1_PATH:
        return None
    return record.get("template") or ""


def read_train_yaml(path: str) -> dict[str, Any]:
    """The template-related keys of an LF training/export YAML."""
    import yaml

    if not os.path.isfile(path):
        raise BadInputError("no such config file", path=path)
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except (OSError, yaml.YAMLError) as e:
        raise BadInputError(f"cannot parse YAML: {e}", path=path) from None
    if not isinstance(data, dict):
        raise BadInputError("an LF config must be a YAML mapping", path=path)
    out: dict[str, Any] = {}
    for key in ALL_KEYS:
        if key in data:
            out[key] = data[key]
    return out


def read_model_path(path: str) -> Optional[str]:
    """``model_name_or_path`` of an LF YAML (the tokenizer training used), or ``None``."""
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except (OSError, yaml.YAMLError):
        return None  # read_train_yaml reports a bad config
    value = data.get("model_name_or_path") if isinstance(data, dict) else None
    return value if isinstance(value, str) and value.strip() else None


def read_sampling(path: str) -> dict[str, Any]:
    """The LF sampling keys (``model.generation.SAMPLING_KEYS``: LF's generating arguments) an LF YAML sets."""
    import yaml

    from ..model.generation import SAMPLING_KEYS

    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except (OSError, yaml.YAMLError):
        return {}  # read_train_yaml reports a bad config
    return {k: data[k] for k in SAMPLING_KEYS if isinstance(data, dict) and k in data}
