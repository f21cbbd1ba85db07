"""Reading a model dir: its template files, configs and tokenizer files.

Writing lives in ``journal`` (atomic, backed-up, symlink-safe replacement).
"""

from __future__ import annotations

import json
import os
from typing import Any, Optional

from .errors import BadInputError

TOKENIZER_CONFIG = "tokenizer_config.json"
CHAT_TEMPLATE_JINJA = "chat_template.jinja"
CHAT_TEMPLATE_JSON = "chat_template.json"  # legacy processor file
GENERATION_CONFIG = "generation_config.json"
CONFIG = "config.json"


def load_json_file(path: str) -> Any:
    """Parse a JSON file; malformed content is bad input naming the file."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise BadInputError(
            f"malformed JSON (line {e.lineno}, column {e.colno}: {e.msg})",
            path=path,
            hint="fix the file or restore it from the original model",
        ) from None
    except UnicodeDecodeError as e:
        raise BadInputError(f"not UTF-8 text ({e})", path=path) from None
    except OSError as e:
        raise BadInputError(f"cannot read: {e.strerror or e}", path=path) from None


def load_json_object(path: str) -> dict[str, Any]:
    data = load_json_file(path)
    if not isinstance(data, dict):
        raise BadInputError("expected a JSON object", path=path)
    return data


def read_chat_template(model_dir: str) -> tuple[Optional[str], str]:
    """The chat template transformers (and so vLLM, SGLang, LMDeploy) would load, and its file.

    transformers >= 4.47 prefers ``chat_template.jinja`` over the ``tokenizer_config.json``
    key; a legacy ``chat_template.json`` (processor) comes last.
    """
    jinja_path = os.path.join(model_dir, CHAT_TEMPLATE_JINJA)
    if os.path.isfile(jinja_path):
        with open(jinja_path, encoding="utf-8") as f:
            return f.read(), jinja_path
    cfg_path = os.path.join(model_dir, TOKENIZER_CONFIG)
    if os.path.isfile(cfg_path):
        cfg = load_json_object(cfg_path)
        tpl = cfg.get("chat_template")
        if isinstance(tpl, list):  # named templates: transformers picks "default"
            named = {t.get("name"): t.get("template") for t in tpl if isinstance(t, dict)}
            tpl = named.get("default")
        if isinstance(tpl, str):
            return tpl, cfg_path
    legacy = os.path.join(model_dir, CHAT_TEMPLATE_JSON)
    if os.path.isfile(legacy):
        data = load_json_object(legacy)
        if isinstance(data.get("chat_template"), str):
            return data["chat_template"], legacy
    return None, ""
