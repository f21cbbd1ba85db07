"""The train-time record ``lf_template_ext.json`` and how options are resolved.

Serving with a different template than training used is the top cause of user reports, so
training (with the extension enabled) writes what it used into ``output_dir``, and every
command defaults to it. Precedence when resolving: command-line flags > ``--config`` YAML >
the record in the model dir > LF's defaults; a flag that contradicts the record is warned
about, not silently obeyed.

Pure Python (json, yaml): no LF import.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Optional

from .._version import __version__
from ..errors import BadInputError
from ..model.options import ALL_KEYS, OPTION_KEYS, TemplateOptions

RECORD_NAME = "lf_template_ext.json"


@dataclass
class Resolved:
    """A template name with its options, and where each came from."""

    template: Optional[str]
    options: TemplateOptions
    cutoff_len: Optional[int] = None
    #: ``template_ext_serve_max_len`` / ``--max-model-len``: the serving context, only when asked for
    serve_max_len: Optional[int] = None
    sources: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


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


def make_record(template: Optional[str], options: TemplateOptions, lf_version: str, cutoff_len: Optional[int]) -> dict[str, Any]:
    return {
        "lf_version": lf_version,
        "package_version": __version__,
        "template": template,
        "options": options.to_dict(),
        "cutoff_len": cutoff_len,
    }


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


def _coerce(key: str, value: Any, origin: str) -> Any:
    try:
        return ALL_KEYS[key].parse(value)
    except (TypeError, ValueError) as e:
        raise BadInputError(f"invalid value {value!r} for {key} ({e})", path=origin) from None


def resolve(
    *,
    cli: dict[str, Any],
    config_path: Optional[str] = None,
    model_dir: Optional[str] = None,
) -> Resolved:
    """Merge flags, YAML and the record. ``cli`` holds only the flags the user gave."""
    layers: list[tuple[str, dict[str, Any]]] = []
    record = read_record(model_dir) if model_dir and os.path.isdir(model_dir) else None
    if record is not None:
        rec_flat = {"template": record.get("template"), "cutoff_len": record.get("cutoff_len")}
        if record.get("serve_max_len"):
            rec_flat["template_ext_serve_max_len"] = record["serve_max_len"]
        rec_flat.update({k: v for k, v in (record.get("options") or {}).items() if k in OPTION_KEYS})
        layers.append((os.path.join(model_dir or "", RECORD_NAME), rec_flat))
    if config_path:
        layers.append((config_path, read_train_yaml(config_path)))
    layers.append(("command line", cli))

    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for origin, layer in layers:
        for key, value in layer.items():
            merged[key] = _coerce(key, value, origin)
            sources[key] = origin
    warnings = []
    if record is not None:
        rec_opts = record.get("options") or {}
        for key in ("template", *OPTION_KEYS):
            given = [(o, layer[key]) for o, layer in layers[1:] if key in layer]
            if not given:
                continue
            recorded = record.get("template") if key == "template" else rec_opts.get(key, getattr(TemplateOptions(), key))
            origin, value = given[-1]
            if _coerce(key, value, origin) != recorded:
                warnings.append(
                    f"{key}={_coerce(key, value, origin)!r} ({origin}) differs from what training recorded "
                    f"({key}={recorded!r} in {RECORD_NAME}); serving will match the value given here, not training"
                )
    defaults = TemplateOptions()
    options = TemplateOptions(**{k: merged.get(k, getattr(defaults, k)) for k in OPTION_KEYS})
    return Resolved(
        template=merged.get("template"),
        options=options,
        cutoff_len=merged.get("cutoff_len"),
        serve_max_len=merged.get("template_ext_serve_max_len"),
        sources=sources,
        warnings=warnings,
    )
