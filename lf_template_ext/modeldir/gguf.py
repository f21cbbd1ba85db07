"""Repair a GGUF file's chat template and stop metadata for llama.cpp and Ollama >= 0.30.

llama.cpp (and Ollama when it runs the GGUF's Jinja) renders ``tokenizer.chat_template``
and adds a BOS when ``tokenizer.ggml.add_bos_token`` is true. The compiled template already
writes everything LF put in front of the first turn (its prefix, BOS included), so the
repair sets ``add_bos_token`` to false: otherwise a BOS would be doubled, or added where LF
trained without one. Keys written (only where the GGUF format defines them):

* ``tokenizer.chat_template``: the compiled template;
* ``tokenizer.ggml.eos_token_id``: the eos LF trained with (after ``replace_eos``);
* ``tokenizer.ggml.eot_token_id``: the template's first stop id, when the key is present;
* ``tokenizer.ggml.eos_token_ids``: the template's stop ids, when the key is present
  (Ollama's converter writes it from ``generation_config.json``);
* ``tokenizer.ggml.add_bos_token``: false.

A GGUF cannot be edited in place (the header grows), so the new file is written beside the
original (free space checked first), then the original is *moved* into
``.lf-template-backups/<UTC timestamp>/`` and the new file moved into place: no copy of the
weights, every step a rename (``journal.swap_in``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Any, Optional

from ..errors import BadInputError

CHAT_TEMPLATE = "tokenizer.chat_template"
EOS = "tokenizer.ggml.eos_token_id"
EOT = "tokenizer.ggml.eot_token_id"
EOS_LIST = "tokenizer.ggml.eos_token_ids"
ADD_BOS = "tokenizer.ggml.add_bos_token"
TOKENS = "tokenizer.ggml.tokens"


@dataclass
class GGUFPlan:
    path: str
    updates: dict[str, Any]
    current: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> dict[str, tuple[Any, Any]]:
        return {k: (self.current.get(k), v) for k, v in self.updates.items() if self.current.get(k) != v}


_READERS: dict[tuple[str, float, int], Any] = {}


def open_reader(path: str):
    """A ``GGUFReader`` over ``path``; a truncated or foreign file is bad input.

    Parsing the metadata of a 150k-token vocabulary takes seconds, so readers are cached per
    (path, mtime, size) within a process.
    """
    import gguf

    st = os.stat(path)
    key = (os.path.abspath(path), st.st_mtime, st.st_size)
    if key in _READERS:
        return _READERS[key]
    try:
        reader = gguf.GGUFReader(path, "r")
        _READERS.clear()
        _READERS[key] = reader
        return reader
    except Exception as e:  # the reader raises ValueError/struct.error/IndexError on bad files
        raise BadInputError(
            f"not a readable GGUF file ({type(e).__name__}: {e}); it was left untouched",
            path=path,
            hint="check the download/conversion (a truncated file cannot be repaired)",
        ) from None


def _field(reader: Any, key: str) -> Any:
    f = reader.get_field(key)
    return f.contents() if f is not None else None


def read_metadata(path: str) -> dict[str, Any]:
    reader = open_reader(path)
    return {k: _field(reader, k) for k in (CHAT_TEMPLATE, EOS, EOT, EOS_LIST, ADD_BOS)}


def plan_gguf(path: str, jinja: str, eos_id: int, stop_ids: list[int], *, tokenizer: Any = None) -> GGUFPlan:
    """The metadata a repair writes; checks the tokenizer matches the GGUF's vocabulary."""
    reader = open_reader(path)
    current = {k: _field(reader, k) for k in (CHAT_TEMPLATE, EOS, EOT, EOS_LIST, ADD_BOS)}
    tokens = _field(reader, TOKENS)
    if tokenizer is not None and tokens is not None:
        for i in dict.fromkeys([eos_id, *stop_ids]):
            hf = tokenizer.convert_ids_to_tokens(i)
            if i >= len(tokens) or tokens[i] != hf:
                got = tokens[i] if i < len(tokens) else "<out of range>"
                raise BadInputError(
                    f"the tokenizer does not match this GGUF: id {i} is {hf!r} in the tokenizer, {got!r} in the GGUF",
                    path=path,
                    hint="pass --tokenizer with the HF tokenizer the GGUF was converted from",
                )
    updates: dict[str, Any] = {CHAT_TEMPLATE: jinja, EOS: eos_id, ADD_BOS: False}
    notes = []
    if current.get(EOT) is not None:
        updates[EOT] = stop_ids[0] if stop_ids else eos_id
    if current.get(EOS_LIST) is not None:
        updates[EOS_LIST] = list(stop_ids)
    elif len(stop_ids) > 1:
        notes.append(
            f"the GGUF has no list of eos ids; llama.cpp stops on eos {eos_id} and detects other end-of-turn tokens "
            "by their text: pass the others as `stop` in requests if the model does not stop"
        )
    return GGUFPlan(path=path, updates=updates, current=current, notes=notes)


def write_gguf(src: str, dst: str, updates: dict[str, Any]) -> None:
    """Copy ``src`` to ``dst`` with ``updates`` applied to its metadata (gguf's own writer)."""
    import gguf

    reader = open_reader(src)
    arch = _field(reader, gguf.Keys.General.ARCHITECTURE)
    writer = gguf.GGUFWriter(dst, arch=arch, endianess=reader.endianess)
    pending = dict(updates)
    for f in reader.fields.values():
        if f.name == gguf.Keys.General.ARCHITECTURE or f.name.startswith("GGUF."):
            continue
        if f.name.startswith(CHAT_TEMPLATE) and CHAT_TEMPLATE in pending and f.name != CHAT_TEMPLATE:
            continue  # named variants (tokenizer.chat_template.tool_use): the compiled one replaces them
        vtype = f.types[0]
        sub = f.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        value = pending.pop(f.name, f.contents())
        writer.add_key_value(f.name, value, vtype, sub_type=sub)
    for key, value in pending.items():
        vtype = {str: gguf.GGUFValueType.STRING, bool: gguf.GGUFValueType.BOOL, int: gguf.GGUFValueType.UINT32}.get(
            type(value), gguf.GGUFValueType.ARRAY
        )
        sub = gguf.GGUFValueType.UINT32 if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(key, value, vtype, sub_type=sub)
    for t in reader.tensors:
        writer.add_tensor_info(t.name, t.data.shape, t.data.dtype, t.data.nbytes, t.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for t in reader.tensors:
        writer.write_tensor_data(t.data, tensor_endianess=reader.endianess)
    writer.close()


def check_free_space(path: str, margin: float = 1.05) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    need = int(os.path.getsize(path) * margin) + (1 << 20)
    free = shutil.disk_usage(directory).free
    if free < need:
        raise BadInputError(
            f"not enough free space to rewrite the GGUF ({free / 2**20:.1f} MiB free, {need / 2**20:.1f} MiB needed); "
            "nothing was changed",
            path=path,
            hint="free some space on that file system (the new file is written beside the old one)",
        )


def apply_gguf(plan: GGUFPlan) -> Optional[Any]:
    """Write the new GGUF beside the old one and swap it in with a backup (``None``: no change).

    Holds the dir's writer lock throughout (so no other run's recovery removes the temp file);
    the new file gets the original's mode, owner and timestamps before it is swapped in.
    """
    from .atomic import TMP_SUFFIX, copy_file_attributes
    from .journal import recover, swap_in
    from .lock import dir_lock
    from .write_errors import os_hint

    directory = os.path.dirname(os.path.abspath(plan.path))
    with dir_lock(directory):
        recover(directory)
        if not plan.changed:
            return None
        check_free_space(plan.path)
        try:
            fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(plan.path) + ".", suffix=TMP_SUFFIX, dir=directory)
        except OSError as e:
            raise BadInputError(
                f"cannot write beside the GGUF ({e.strerror or e}); nothing was changed", path=plan.path, hint=os_hint(e)
            ) from None
        os.close(fd)
        try:
            write_gguf(plan.path, tmp, plan.updates)
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            open_reader(tmp)  # re-read what we wrote before it replaces anything
            copy_file_attributes(plan.path, tmp)
        except OSError as e:
            os.unlink(tmp)
            raise BadInputError(
                f"writing the new GGUF failed ({e.strerror or e}); nothing was changed", path=plan.path, hint=os_hint(e)
            ) from None
        except BaseException:
            os.unlink(tmp)
            raise
        try:
            return swap_in(directory, os.path.basename(plan.path), tmp, tool="lf-template repair (gguf)")
        except OSError as e:
            raise BadInputError(
                f"replacing the GGUF failed ({e.strerror or e}); the original is in place", path=plan.path, hint=os_hint(e)
            ) from None
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
