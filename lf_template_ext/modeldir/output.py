"""Files the user names (``emit --output``, ``jinja --output``): :func:`write_output`.

Inside a model dir such a file goes through the journal (a :class:`~.journal.Transaction`: lock,
backup, ``restore`` undoes it) and never replaces the model's own files; elsewhere it is written
atomically and never replaces a file that is not ours unless forced.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

from ..errors import BadInputError
from .atomic import read_bytes, write_bytes_atomic
from .journal import BackupInfo, Transaction
from .write_errors import WriteError

#: What a dir holds to be a model dir (``files.inspect_dir``'s markers).
MODEL_DIR_MARKERS = (
    "config.json", "tokenizer_config.json", "adapter_config.json",
    "tokenizer.json", "tokenizer.model", "vocab.json", "tiktoken.model", "tokenizer.tiktoken",
)
#: Files of a model dir that engines or transformers parse: an emitted template never replaces them.
MODEL_OWN_FILES = frozenset(
    {
        "config.json", "tokenizer_config.json", "generation_config.json", "adapter_config.json", "tokenizer.json",
        "special_tokens_map.json", "added_tokens.json", "processor_config.json", "preprocessor_config.json",
        "chat_template.json", "vocab.json", "merges.txt", "tokenizer.model", "lf_template_ext.json",
        "alignment_report.json",
    }
)
MODEL_OWN_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth", ".index.json")
#: Every text file lf-template-ext emits with a header says so within its first lines.
OURS_MARKER = b"lf-template-ext"


def is_model_dir(directory: str) -> bool:
    try:
        names = set(os.listdir(directory))
    except OSError:
        return False
    return bool(names & set(MODEL_DIR_MARKERS))


def is_ours(path: str, data: bytes) -> bool:
    """An existing file we may overwrite without ``--force``: it carries our header marker (the
    Jinja template, the Modelfile) or already holds exactly ``data``."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    return OURS_MARKER in head or read_bytes(path) == data


@dataclass
class Written:
    path: str
    backup: Optional[BackupInfo] = None  # inside a model dir: the journal's backup (None: unchanged or outside)
    unchanged: bool = False
    journaled: bool = False


def write_output(
    path: str,
    data: bytes,
    *,
    force: bool = False,
    tool: str = "lf-template",
    in_model_dir: Optional[bool] = None,
    extra: Optional[dict[str, bytes]] = None,
) -> Written:
    """Write a file the user named (``emit --output``, ``jinja --output``).

    * Inside a model dir (its dir holds config.json / tokenizer_config.json / adapter_config.json):
      through the journal (a :class:`Transaction` of that dir: lock, backup, ``restore`` undoes it).
      The model's own files (tokenizer_config.json, config.json, weights, ...) are refused: a
      template written over them breaks the model.
    * Elsewhere: atomically; an existing file that is not ours (no ``lf-template-ext`` header and
      other content) is refused unless ``force``.

    Every refusal or OS failure is a :class:`BadInputError` (exit 2) naming the file; nothing is
    written then. ``extra``: other files of the same model dir written in the same transaction
    (``emit`` regenerates SERVING.md and the report beside its file).
    """
    path = os.path.abspath(path)
    directory = os.path.dirname(path)
    name = os.path.basename(path)
    if os.path.isdir(path):
        raise WriteError("is a directory, not a file", path=path, hint="give a file name, e.g. " + os.path.join(path, "out.txt"))
    if not os.path.isdir(directory):
        raise WriteError("the directory does not exist; nothing was written", path=directory, hint="create it first, or choose an existing one")
    if in_model_dir if in_model_dir is not None else is_model_dir(directory):
        if name in MODEL_OWN_FILES or name.endswith(MODEL_OWN_SUFFIXES):
            raise BadInputError(
                f"refusing to write over the model's own {name} (engines and transformers read it); nothing was written",
                path=path,
                hint="choose another --output, e.g. " + os.path.join(directory, "chat_template.jinja"),
            )
        txn = Transaction(directory, tool=tool)
        txn.stage(name, data)
        for relpath, content in (extra or {}).items():
            txn.stage(relpath, content)
        backup = txn.commit()
        return Written(path, backup=backup, unchanged=backup is None, journaled=True)
    if os.path.lexists(path) and not force and not is_ours(path, data):
        raise BadInputError(
            "exists and was not written by lf-template-ext; nothing was written",
            path=path,
            hint="pass --force to overwrite it, or choose another --output",
        )
    if read_bytes(path) == data:
        return Written(path, unchanged=True)
    write_bytes_atomic(path, data)
    return Written(path)
