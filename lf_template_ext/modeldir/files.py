"""Reading a model dir: its template files, configs and tokenizer files.

Writing lives in ``atomic`` and ``journal`` (atomic, backed-up, symlink-safe replacement).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Optional

from ..errors import BadInputError

TOKENIZER_CONFIG = "tokenizer_config.json"
CHAT_TEMPLATE_JINJA = "chat_template.jinja"
CHAT_TEMPLATE_JSON = "chat_template.json"  # legacy processor file
PROCESSOR_CONFIG = "processor_config.json"
GENERATION_CONFIG = "generation_config.json"
CONFIG = "config.json"
ADAPTER_CONFIG = "adapter_config.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "tiktoken.model", "tokenizer.tiktoken")


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


def read_text_file(path: str) -> str:
    """A UTF-8 text file; anything else is bad input naming the file."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise BadInputError(f"cannot read: {e.strerror or e}", path=path) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadInputError(
            f"not UTF-8 text (byte {data[e.start]:#04x} at offset {e.start}); transformers and every engine read "
            "this file as UTF-8",
            path=path,
            hint="re-save it as UTF-8, or delete it and run `lf-template repair` to write the compiled template",
        ) from None


def load_json_object(path: str) -> dict[str, Any]:
    data = load_json_file(path)
    if not isinstance(data, dict):
        raise BadInputError("expected a JSON object", path=path)
    return data


def dump_json(data: Any) -> str:
    """JSON as transformers writes its configs (2-space indent, unicode kept, final newline)."""
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


@dataclass(frozen=True)
class ModelDir:
    """What a directory holds, as far as chat templates and stop ids are concerned."""

    path: str
    has_tokenizer: bool
    is_adapter: bool
    has_config: bool

    @property
    def name(self) -> str:
        return os.path.basename(os.path.normpath(self.path))


def inspect_dir(path: str) -> ModelDir:
    """Classify ``path``; anything that is not a model, adapter or tokenizer dir is bad input."""
    if not os.path.exists(path):
        raise BadInputError("no such model dir", path=path)
    if not os.path.isdir(path):
        raise BadInputError("not a directory (expected a model dir)", path=path)
    names = set(os.listdir(path))
    has_tok = bool(names & {TOKENIZER_CONFIG, *TOKENIZER_FILES})
    is_adapter = ADAPTER_CONFIG in names
    has_config = CONFIG in names
    if not (has_tok or is_adapter or has_config):
        raise BadInputError(
            "not a model dir: no tokenizer files, config.json or adapter_config.json here",
            path=path,
            hint="point at the export_dir / output_dir / snapshot that holds the model's tokenizer",
        )
    for name in (TOKENIZER_CONFIG, GENERATION_CONFIG, CONFIG, ADAPTER_CONFIG, CHAT_TEMPLATE_JSON, PROCESSOR_CONFIG):
        if name in names:
            load_json_object(os.path.join(path, name))  # malformed -> BadInputError naming the file
    return ModelDir(path=path, has_tokenizer=has_tok, is_adapter=is_adapter, has_config=has_config)


def read_chat_template(model_dir: str) -> tuple[Optional[str], str]:
    """The chat template transformers (and so vLLM, SGLang, LMDeploy) would load, and its file.

    transformers >= 4.47 prefers ``chat_template.jinja`` over the ``tokenizer_config.json``
    key; a legacy ``chat_template.json`` (processor) comes last.
    """
    jinja_path = os.path.join(model_dir, CHAT_TEMPLATE_JINJA)
    if os.path.isfile(jinja_path):
        return read_text_file(jinja_path), jinja_path
    config_template, cfg_path = read_config_template(model_dir)
    if config_template is not None:
        return config_template, cfg_path
    legacy = os.path.join(model_dir, CHAT_TEMPLATE_JSON)
    if os.path.isfile(legacy):
        data = load_json_object(legacy)
        if isinstance(data.get("chat_template"), str):
            return data["chat_template"], legacy
    return None, ""


def read_config_template(model_dir: str) -> tuple[Optional[str], str]:
    """The ``tokenizer_config.json`` key alone: what llama.cpp's and Ollama's converters read."""
    cfg_path = os.path.join(model_dir, TOKENIZER_CONFIG)
    if not os.path.isfile(cfg_path):
        return None, ""
    tpl = load_json_object(cfg_path).get("chat_template")
    if isinstance(tpl, list):  # named templates: the "default" one
        named = {t.get("name"): t.get("template") for t in tpl if isinstance(t, dict)}
        tpl = named.get("default")
    return (tpl, cfg_path) if isinstance(tpl, str) else (None, "")


def generation_eos_ids(model_path: Optional[str], *, strict: bool = True) -> list[int]:
    """``eos_token_id`` of ``generation_config.json``, always a list (the one reader of that key).

    ``strict`` (commands on a model dir): a local dir only, and a malformed file or value is bad
    input naming the file. Not strict (inside training, where a stop-id lookup must never stop
    LF): the HF cache is searched too for a hub id, and anything unreadable gives ``[]``.
    """
    if not model_path:
        return []
    path = os.path.join(model_path, GENERATION_CONFIG)
    if not os.path.isfile(path):
        if strict:
            return []
        path = _cached_generation_config(model_path) or ""
        if not path:
            return []
    if not strict:
        try:
            with open(path, encoding="utf-8") as f:
                value = json.load(f).get("eos_token_id")
        except (OSError, ValueError, AttributeError):
            return []
        values = value if isinstance(value, list) else [value]
        return [int(v) for v in values if isinstance(v, int)]
    value = load_json_object(path).get("eos_token_id")
    if value is None:
        return []
    if isinstance(value, int):
        return [value]
    if isinstance(value, list) and all(isinstance(v, int) for v in value):
        return list(value)
    raise BadInputError(f"eos_token_id must be an int or a list of ints, got {value!r}", path=path)


def _cached_generation_config(model_id: str) -> Optional[str]:
    try:
        from transformers.utils import cached_file

        return cached_file(
            model_id, GENERATION_CONFIG, _raise_exceptions_for_missing_entries=False, local_files_only=True
        )
    except Exception:  # no cache, no such repo: no extra stop ids
        return None


def engine_stop_ids(model_path: Optional[str], tokenizer: Any, *, strict: bool = True) -> list[int]:
    """What vLLM, SGLang and LMDeploy stop on for this dir: the tokenizer's eos, then the dir's
    ``generation_config.json`` eos ids (``model.stops.ordered_ids``)."""
    from ..model.stops import ordered_ids

    return ordered_ids([tokenizer.eos_token_id], generation_eos_ids(model_path, strict=strict))
