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

import mmap
import os
import shutil
import struct
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
    meta: Any = None  # the GGUFMeta read for the plan (the write reuses it: one read)

    @property
    def changed(self) -> dict[str, tuple[Any, Any]]:
        return {k: (self.current.get(k), v) for k, v in self.updates.items() if self.current.get(k) != v}


# -- one pass over the metadata -----------------------------------------------------------------------------
#
# The ``gguf`` package's GGUFReader maps every string of the vocabulary (128k tokens + 280k merges for
# Llama-3) to its own numpy views: ~12 s for a 7.8 MB metadata-only file, and the old repair parsed it
# twice (plan, then write and re-read). The repair needs a few values and the byte ranges of the rest, so
# the file's header, key/values and tensor infos are walked once here (GGUF v2/v3, little-endian: the
# format's own layout, gguf-py ``constants.py``/``gguf_writer.py``), kept as raw bytes, and a rewrite is
# new header + key/values + the original tensor infos + the original tensor data copied in blocks.

_SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY, _UINT32, _BOOL = 8, 9, 4, 7
#: keys whose values the repair reads (the rest are copied as raw bytes)
_WANTED = (CHAT_TEMPLATE, EOS, EOT, EOS_LIST, ADD_BOS, TOKENS, "general.alignment")


@dataclass
class GGUFMeta:
    """A GGUF's metadata as read once: raw key/value records in file order, the values the repair needs,
    the tensor-info bytes and where the tensor data starts."""

    version: int
    tensor_count: int
    kv: dict[str, bytes]  # key -> its whole record (key, type, value) as in the file
    values: dict[str, Any]
    tensor_info: bytes
    data_offset: int
    size: int

    @property
    def alignment(self) -> int:
        return int(self.values.get("general.alignment") or 32)


class _Buf:
    def __init__(self, data: Any) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int) -> Any:
        if self.pos + n > len(self.data):
            raise ValueError(f"unexpected end of file at byte {self.pos}")
        out = bytes(self.data[self.pos : self.pos + n])  # a copy: no view outlives the map
        self.pos += n
        return out

    def unpack(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self, keep: bool = True) -> Optional[str]:
        raw = self.take(self.unpack("<Q"))
        return raw.decode("utf-8", errors="replace") if keep else None

    def value(self, vtype: int, keep: bool) -> Any:
        if vtype == _STRING:
            return self.string(keep)
        if vtype in _SCALAR:
            return self.unpack(_SCALAR[vtype])
        if vtype != _ARRAY:
            raise ValueError(f"unknown GGUF value type {vtype}")
        etype, count = self.unpack("<I"), self.unpack("<Q")
        if etype in _SCALAR and etype != _BOOL:
            size = struct.calcsize(_SCALAR[etype])
            raw = self.take(size * count)
            return list(struct.unpack(f"<{count}{_SCALAR[etype][1]}", raw)) if keep else None
        items = [self.value(etype, keep) for _ in range(count)]
        return items if keep else None


def read_meta(path: str) -> GGUFMeta:
    """The metadata of ``path``, read once (memory-mapped: the tensor data is not read); a truncated or
    foreign file is bad input."""
    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            with memoryview(mm) as view:
                return _parse(view, os.path.getsize(path))
    except (ValueError, struct.error, UnicodeDecodeError, OverflowError, MemoryError) as e:
        raise BadInputError(
            f"not a readable GGUF file ({type(e).__name__}: {e}); it was left untouched",
            path=path,
            hint="check the download/conversion (a truncated file cannot be repaired)",
        ) from None


def _parse(view: Any, size: int) -> GGUFMeta:
    buf = _Buf(view)
    try:
        if buf.take(4) != b"GGUF":
            raise ValueError("no GGUF magic")
        version = buf.unpack("<I")
        if version not in (2, 3):
            raise ValueError(f"GGUF version {version} (big-endian files are not supported)")
        tensor_count, kv_count = buf.unpack("<Q"), buf.unpack("<Q")
        kv: dict[str, bytes] = {}
        values: dict[str, Any] = {}
        for _ in range(kv_count):
            start = buf.pos
            key = buf.string()
            vtype = buf.unpack("<I")
            value = buf.value(vtype, keep=key in _WANTED)
            kv[key] = bytes(view[start : buf.pos])
            if key in _WANTED:
                values[key] = value
        info_start = buf.pos
        ends = []
        for _ in range(tensor_count):
            buf.string(keep=False)
            dims = buf.unpack("<I")
            shape = [buf.unpack("<Q") for _ in range(dims)]
            ttype = buf.unpack("<I")
            ends.append((buf.unpack("<Q"), shape, ttype))
        tensor_info = bytes(view[info_start : buf.pos])
        align = int(values.get("general.alignment") or 32)
        data_offset = buf.pos + (-buf.pos % align)
        if data_offset > size:
            raise ValueError("the tensor data is missing")
        if ends and data_offset + max(off + _nbytes(shape, t) for off, shape, t in ends) > size:
            raise ValueError("a tensor ends past the end of the file (truncated)")
    finally:
        buf.data = None
    return GGUFMeta(version, tensor_count, kv, values, tensor_info, data_offset, size)


def _nbytes(shape: list[int], ttype: int) -> int:
    """A tensor's size in bytes (gguf-py's ``GGML_QUANT_SIZES``: elements per block, bytes per block)."""
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    try:
        block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(ttype)]
    except (ValueError, KeyError):
        raise ValueError(f"unknown tensor type {ttype}") from None
    n = 1
    for d in shape:
        n *= d
    return n // block * type_size


def _record(key: str, value: Any, like: Optional[bytes]) -> bytes:
    """The key/value record for ``value``: the type of the record it replaces (``like``), else string /
    bool / uint32 / array of uint32."""
    vtype = struct.unpack_from("<I", like, 8 + struct.unpack_from("<Q", like, 0)[0])[0] if like else None
    if vtype is None:
        vtype = {str: _STRING, bool: _BOOL, int: _UINT32}.get(type(value), _ARRAY)
    out = [_str(key), struct.pack("<I", vtype)]
    if vtype == _ARRAY:
        etype = _UINT32
        if like:
            klen = struct.unpack_from("<Q", like, 0)[0]
            etype = struct.unpack_from("<I", like, 8 + klen + 4)[0]
        fmt = _SCALAR.get(etype, "<I")
        out += [struct.pack("<IQ", etype, len(value)), b"".join(struct.pack(fmt, v) for v in value)]
    elif vtype == _STRING:
        out.append(_str(value))
    else:
        out.append(struct.pack(_SCALAR[vtype], value))
    return b"".join(out)


def _str(text: str) -> bytes:
    raw = text.encode("utf-8")
    return struct.pack("<Q", len(raw)) + raw


def metadata_of(meta: GGUFMeta) -> dict[str, Any]:
    return {k: meta.values.get(k) for k in (CHAT_TEMPLATE, EOS, EOT, EOS_LIST, ADD_BOS)}


def open_reader(path: str) -> GGUFMeta:
    """The file's metadata (read once); kept for callers that only check the file is readable."""
    return read_meta(path)


def read_metadata(path: str) -> dict[str, Any]:
    return metadata_of(read_meta(path))


def plan_gguf(
    path: str, jinja: str, eos_id: int, stop_ids: list[int], *, tokenizer: Any = None, meta: Optional[GGUFMeta] = None
) -> GGUFPlan:
    """The metadata a repair writes; checks the tokenizer matches the GGUF's vocabulary.

    Written always (docs/cli.md): the template, eos, ``add_bos_token`` false, ``eot_token_id`` (the
    template's first stop id: llama.cpp ends a turn on it) and, with more than one stop id,
    ``eos_token_ids`` (the list Ollama's converter writes from generation_config.json)."""
    meta = meta or read_meta(path)
    current = metadata_of(meta)
    tokens = meta.values.get(TOKENS)
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
    updates[EOT] = stop_ids[0] if stop_ids else eos_id
    notes = []
    if len(stop_ids) > 1 or current.get(EOS_LIST) is not None:
        updates[EOS_LIST] = list(stop_ids)
    if len(stop_ids) > 1:
        notes.append(
            f"llama.cpp stops on eos {eos_id} and eot {updates[EOT]} and finds other end-of-generation tokens by their "
            f"text; the full list {list(stop_ids)} is in tokenizer.ggml.eos_token_ids (Ollama reads it): pass the "
            "others as `stop` in llama-server requests if the model does not stop"
        )
    plan = GGUFPlan(path=path, updates=updates, current=current, notes=notes)
    plan.meta = meta
    return plan


def write_gguf(src: str, dst: str, updates: dict[str, Any], meta: Optional[GGUFMeta] = None, progress: Any = None) -> None:
    """Copy ``src`` to ``dst`` with ``updates`` applied to its metadata: new key/values, the original tensor
    infos and tensor data byte for byte (offsets are relative to the aligned data start, so they stay)."""
    meta = meta or read_meta(src)
    records = dict(meta.kv)
    for key in list(records):
        if key.startswith(CHAT_TEMPLATE + ".") and CHAT_TEMPLATE in updates:
            del records[key]  # named variants (tokenizer.chat_template.tool_use): the compiled one replaces them
    for key, value in updates.items():
        records[key] = _record(key, value, meta.kv.get(key))
    head = b"GGUF" + struct.pack("<IQQ", meta.version, meta.tensor_count, len(records))
    body = head + b"".join(records.values()) + meta.tensor_info
    body += b"\0" * (-len(body) % meta.alignment)
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        fout.write(body)
        fin.seek(meta.data_offset)
        while True:
            chunk = fin.read(_COPY_BLOCK)
            if not chunk:
                break
            fout.write(chunk)
            if progress is not None:
                progress.update(len(chunk))


_COPY_BLOCK = 16 << 20


def _progress(total: int) -> Any:
    """A byte progress bar on stderr, only on a terminal and for files that take a while to copy."""
    import sys

    if total < (256 << 20) or not sys.stderr.isatty():
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="B", unit_scale=True, desc="rewriting GGUF", file=sys.stderr, leave=False)


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
            meta = plan.meta if plan.meta is not None and plan.meta.size == os.path.getsize(plan.path) else None
            meta = meta or read_meta(plan.path)
            bar = _progress(meta.size - meta.data_offset)
            try:
                write_gguf(plan.path, tmp, plan.updates, meta, progress=bar)
            finally:
                if bar is not None:
                    bar.close()
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            written = read_meta(tmp)  # re-read what we wrote (metadata only) before it replaces anything
            if written.size - written.data_offset != meta.size - meta.data_offset:
                raise BadInputError("the rewritten GGUF's tensor data differs in size; nothing was changed", path=plan.path)
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
