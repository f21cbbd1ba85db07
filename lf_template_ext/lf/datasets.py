"""Finding and streaming LLaMA-Factory datasets the way LF's loader finds and reads them.

``check --dataset`` must see every sample as training saw it, so this module follows LF's
``data/parser.py`` (``dataset_info.json`` entries, ``DatasetAttr.join``) and ``data/loader.py``
(local files, one dir = all its files, the extension table ``FILEEXT2TYPE``) in plain Python:
everything here runs **before** LF (10-20 s to import) is loaded, so a missing file, malformed
JSON, an unknown dataset name or a column mapping that does not fit the data is answered at
once (exit 2). The conversion of a row into LF's ``_prompt/_response/_system/_tools`` is LF's
own converter class, called through ``lf.compat.dataset_converter`` once LF is loaded.

Rows are streamed: JSON lines line by line, a JSON array value by value
(``json.JSONDecoder.raw_decode`` over a sliding buffer), parquet/arrow/csv through
``datasets.load_dataset(..., streaming=True)``. Arrow, which LF's loader goes through, gives
every row every column (``None`` where a row lacks it) and every struct every field;
:func:`arrow_like` reproduces that for JSON rows, so LF's converter takes the same branches
(``example["system"]`` is ``None``, not a ``KeyError``).
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Optional

from ..errors import BadInputError

DATA_CONFIG = "dataset_info.json"  # LF's extras.constants.DATA_CONFIG
DEFAULT_DATASET_DIR = "data"  # LF's DataArguments.dataset_dir default
#: LF's ``extras.constants.FILEEXT2TYPE`` (tests compare it with the installed LF).
FILEEXT2TYPE = {"arrow": "arrow", "csv": "csv", "json": "json", "jsonl": "json", "parquet": "parquet", "txt": "text"}
#: Files up to this size are parsed whole before LF loads, so a malformed line anywhere is bad
#: input found at once; larger ones are validated on their first row and streamed.
PREPARSE_BYTES = 8 << 20
_CHUNK = 1 << 20
#: A row longer than this (characters of its JSON text) is refused with a clear message: a 50 MB
#: single-string row took 126 s and 5.3 GB to tokenize, while LF's cutoff_len keeps only its first
#: few thousand tokens. 4 Mi characters is ~1M tokens, beyond any cutoff_len. Override with
#: LF_TEMPLATE_EXT_MAX_ROW_CHARS (0: no limit).
MAX_ROW_CHARS = 4 << 20


def max_row_chars() -> int:
    value = os.environ.get("LF_TEMPLATE_EXT_MAX_ROW_CHARS", "")
    try:
        return int(value) if value.strip() else MAX_ROW_CHARS
    except ValueError:
        raise BadInputError(
            f"LF_TEMPLATE_EXT_MAX_ROW_CHARS must be a number of characters, got {value!r}",
            hint="unset it, or set e.g. LF_TEMPLATE_EXT_MAX_ROW_CHARS=16777216 (0: no limit)",
        ) from None


def _row_chars(value: Any) -> int:
    """Characters of text in a row read by a non-JSON reader (parquet, arrow, csv)."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return sum(_row_chars(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_row_chars(v) for v in value)
    return 8


def _too_big(path: str, n: int, line: Optional[int], chars: int, limit: int) -> BadInputError:
    at = f"row {n}" + (f" (line {line})" if line else "")
    return BadInputError(
        f"{at} is {chars / 2**20:.1f} Mi characters, over the {limit / 2**20:.0f} Mi limit per row: checking it "
        "would take minutes and gigabytes, and LF's cutoff_len trains on its first few thousand tokens only",
        path=path,
        hint="drop or shorten that row (or check with --max-samples N before it); to check it anyway, raise "
        "LF_TEMPLATE_EXT_MAX_ROW_CHARS (0: no limit)",
    )

#: ``DatasetAttr``'s defaults (LF 0.9.4/0.9.5 ``data/parser.py``).
ATTR_DEFAULTS: dict[str, Any] = {
    "formatting": "alpaca",
    "ranking": False,
    "prompt": "instruction",
    "query": "input",
    "response": "output",
    "history": None,
    "messages": "conversations",
    "system": None,
    "tools": None,
    "images": None,
    "videos": None,
    "audios": None,
    "chosen": None,
    "rejected": None,
    "kto_tag": None,
    "role_tag": "from",
    "content_tag": "value",
    "user_tag": "human",
    "assistant_tag": "gpt",
    "observation_tag": "observation",
    "function_tag": "function_call",
    "system_tag": "system",
}
COLUMN_NAMES = ("prompt", "query", "response", "history", "messages", "system", "tools")
COLUMN_NAMES += ("images", "videos", "audios", "chosen", "rejected", "kto_tag")
TAG_NAMES = ("role_tag", "content_tag", "user_tag", "assistant_tag", "observation_tag", "function_tag", "system_tag")
FORMATS = ("alpaca", "sharegpt", "openai")
HUB_KEYS = ("hf_hub_url", "ms_hub_url", "om_hub_url", "script_url", "cloud_file_name")

#: The ``dataset_info.json`` entry LF's README gives for OpenAI-style ``messages`` data.
OPENAI_STYLE_TAGS = {
    "role_tag": "role",
    "content_tag": "content",
    "user_tag": "user",
    "assistant_tag": "assistant",
    "observation_tag": "tool",
    "function_tag": "function_call",
    "system_tag": "system",
}


def attributes(entry: dict[str, Any]) -> dict[str, Any]:
    """The ``DatasetAttr`` fields LF derives from an entry (``DatasetAttr.join``, quirks included).

    LF copies *every* column (tag) name from ``columns`` (``tags``) with ``dict.get``: naming
    one column in ``columns`` sets every column not named there to ``None``, not to its default.
    """
    attr = dict(ATTR_DEFAULTS)
    attr["formatting"] = entry.get("formatting", "alpaca")
    attr["ranking"] = entry.get("ranking", False)
    if "columns" in entry:
        for name in COLUMN_NAMES:
            attr[name] = entry["columns"].get(name)
    if "tags" in entry:
        for name in TAG_NAMES:
            attr[name] = entry["tags"].get(name)
    return attr


@dataclass(frozen=True)
class DatasetSource:
    """One LF dataset: its files and the ``dataset_info.json`` entry LF reads them with."""

    name: str
    files: tuple[str, ...]
    entry: dict[str, Any]
    dataset_dir: str
    info_path: Optional[str] = None  # the dataset_info.json it came from; None: mapping inferred
    warnings: tuple[str, ...] = ()
    file_type: str = "json"

    @property
    def attr(self) -> dict[str, Any]:
        return attributes(self.entry)

    @property
    def formatting(self) -> str:
        return str(self.entry.get("formatting", "alpaca"))

    def where(self) -> str:
        return f"{self.info_path} entry {self.name!r}" if self.info_path else ", ".join(self.files)


# -- finding datasets ----------------------------------------------------------------------------


def resolve(spec: str, dataset_dir: Optional[str] = None) -> list[DatasetSource]:
    """``--dataset`` (a path, or LF dataset names joined by commas) -> sources to read.

    A path to a file or dir is read with the ``dataset_info.json`` entry that names it (in
    ``dataset_dir`` or beside it) when there is one, else with a mapping inferred from its first
    row (warned about: training used what ``dataset_info.json`` said). Otherwise ``spec`` holds
    names of ``dataset_info.json`` in ``dataset_dir`` (LF's default ``data``), as in LF's YAML.
    """
    spec = spec.strip()
    if not spec:
        raise BadInputError("--dataset is empty", hint="pass a dataset file or a name from dataset_info.json")
    if os.path.exists(spec):
        return [_from_path(spec, dataset_dir)]
    names = [n.strip() for n in spec.split(",") if n.strip()]
    ddir = dataset_dir if dataset_dir is not None else DEFAULT_DATASET_DIR
    if len(names) == 1 and (os.sep in spec or spec.endswith((".json", ".jsonl", ".parquet", ".csv", ".arrow"))):
        raise BadInputError("no such dataset file", path=spec, hint="check the path, or pass a dataset name from dataset_info.json")
    info_path = os.path.join(ddir, DATA_CONFIG)
    info = load_dataset_info(info_path, names)
    return [_from_entry(name, info, ddir, info_path) for name in names]


def load_dataset_info(info_path: str, names: list[str]) -> dict[str, Any]:
    if not os.path.isfile(info_path):
        raise BadInputError(
            f"no {DATA_CONFIG} here, so dataset name(s) {', '.join(names)} cannot be looked up",
            path=info_path,
            hint="pass --dataset-dir DIR (LF's dataset_dir, default ./data) or a dataset file path",
        )
    info = _load_json(info_path)
    if not isinstance(info, dict):
        raise BadInputError(f"{DATA_CONFIG} must be a JSON object of dataset entries", path=info_path)
    return info


def _from_entry(name: str, info: dict[str, Any], dataset_dir: str, info_path: str) -> DatasetSource:
    if name not in info:
        close = difflib.get_close_matches(name, list(info), n=3, cutoff=0.5)
        raise BadInputError(
            f"undefined dataset {name!r} (LF: 'Undefined dataset {name} in {DATA_CONFIG}')",
            path=info_path,
            hint=(f"did you mean {', '.join(close)}?" if close else f"known: {', '.join(sorted(info)[:12]) or 'none'}"),
        )
    entry = info[name]
    where = f"{info_path} entry {name!r}"
    if not isinstance(entry, dict):
        raise BadInputError(f"entry {name!r} must be an object", path=info_path)
    hub = [k for k in HUB_KEYS if k in entry]
    if hub:
        raise BadInputError(
            f"entry {name!r} loads from {hub[0]} ({entry[hub[0]]}); check reads local files only",
            path=info_path,
            hint="download the data (e.g. `huggingface-cli download --repo-type dataset ...`), add an entry with "
            "its local file_name, and check that",
        )
    if "file_name" not in entry:
        raise BadInputError(f"entry {name!r} has no file_name", path=info_path)
    _check_entry(entry, where)
    local = os.path.join(dataset_dir, str(entry["file_name"]))
    files = _files_of(local, where)
    warnings = []
    if entry.get("num_samples") is not None:
        warnings.append(
            f"{where}: num_samples={entry['num_samples']} makes LF train on a random selection; every row is checked"
        )
    return DatasetSource(
        name=name,
        files=files,
        entry=entry,
        dataset_dir=dataset_dir,
        info_path=info_path,
        warnings=tuple(warnings),
        file_type=FILEEXT2TYPE[_ext(files[0])],
    )


def _from_path(path: str, dataset_dir: Optional[str]) -> DatasetSource:
    """A file or dir given directly: its ``dataset_info.json`` entry if one names it, else inferred."""
    path = os.path.normpath(path)
    for ddir in ([dataset_dir] if dataset_dir is not None else []) + [os.path.dirname(path) or "."]:
        info_path = os.path.join(ddir, DATA_CONFIG)
        if not os.path.isfile(info_path):
            continue
        info = _load_json(info_path)
        if not isinstance(info, dict):
            raise BadInputError(f"{DATA_CONFIG} must be a JSON object of dataset entries", path=info_path)
        for name, entry in info.items():
            if isinstance(entry, dict) and "file_name" in entry:
                if os.path.normpath(os.path.join(ddir, str(entry["file_name"]))) == path:
                    return _from_entry(name, info, ddir, info_path)
    files = _files_of(path, path)
    file_type = FILEEXT2TYPE[_ext(files[0])]
    if file_type != "json":
        raise BadInputError(
            f"a {file_type} dataset needs its {DATA_CONFIG} entry (formatting, columns)",
            path=path,
            hint=f"pass --dataset NAME --dataset-dir DIR with the {DATA_CONFIG} used for training",
        )
    union = union_of_rows(files, file_type)
    if union is None:
        raise BadInputError("the dataset file holds no rows", path=files[0])
    entry = infer_entry(union, files[0])
    shown = json.dumps({os.path.splitext(os.path.basename(path))[0]: {"file_name": os.path.basename(path), **entry}})
    warning = (
        f"{path}: no {DATA_CONFIG} entry names this file; read it as {shown}. Training read it with its "
        f"{DATA_CONFIG} entry: pass --dataset NAME --dataset-dir DIR to use exactly that"
    )
    return DatasetSource(
        name=os.path.basename(path),
        files=files,
        entry=entry,
        dataset_dir=os.path.dirname(path) or ".",
        info_path=None,
        warnings=(warning,),
        file_type=file_type,
    )


def union_of_rows(files: tuple[str, ...], file_type: str) -> Optional[dict[str, Any]]:
    """The first row with every top-level key any row of ``files`` has (the first value seen), or ``None``
    without rows. Columns are decided over the whole dataset: a first row without ``system`` or ``tools``
    must not drop those columns for every other row."""
    union: Optional[dict[str, Any]] = None
    for path in files:
        for _, row in iter_file_rows(path, file_type):
            if not isinstance(row, dict):
                continue
            if union is None:
                union = dict(row)
            else:
                for key, value in row.items():
                    union.setdefault(key, value)
    return union


def infer_entry(row: dict[str, Any], path: str) -> dict[str, Any]:
    """The ``dataset_info.json`` entry LF's README gives for data shaped like ``row``."""
    if isinstance(row.get("conversations"), list):
        entry: dict[str, Any] = {"formatting": "sharegpt"}
        columns = {k: k for k in ("system", "tools") if k in row}
        if columns:
            entry["columns"] = {"messages": "conversations", **columns}
        return entry
    if isinstance(row.get("messages"), list):
        columns = {"messages": "messages", **{k: k for k in ("system", "tools") if k in row}}
        return {"formatting": "sharegpt", "columns": columns, "tags": dict(OPENAI_STYLE_TAGS)}
    if "instruction" in row or "output" in row:
        columns = {"prompt": "instruction", "query": "input", "response": "output"}
        columns.update({k: k for k in ("system", "history") if k in row})
        return {"formatting": "alpaca", "columns": columns}
    raise BadInputError(
        f"cannot tell the format of this dataset from its first row (keys: {', '.join(map(str, row)) or 'none'})",
        path=path,
        hint=f"describe it in a {DATA_CONFIG} entry (formatting, columns, tags) and pass --dataset NAME --dataset-dir DIR",
    )


def _ext(path: str) -> str:
    return os.path.splitext(path)[-1][1:]


def _files_of(local: str, where: str) -> tuple[str, ...]:
    """LF's ``_load_single_dataset`` for ``load_from: file``: a dir means all of its files."""
    if os.path.isdir(local):
        files = [os.path.join(local, f) for f in os.listdir(local)]  # LF's order: os.listdir
        files = [f for f in files if os.path.isfile(f)]
        if not files:
            raise BadInputError("the dataset dir holds no files", path=local)
    elif os.path.isfile(local):
        files = [local]
    else:
        raise BadInputError(f"dataset file not found (named by {where})", path=local, hint="fix file_name or the path")
    kinds = {FILEEXT2TYPE.get(_ext(f)) for f in files}
    if None in kinds:
        bad = next(f for f in files if FILEEXT2TYPE.get(_ext(f)) is None)
        raise BadInputError(f"unsupported file type (LF allows {', '.join(FILEEXT2TYPE)})", path=bad)
    if len(kinds) > 1:
        raise BadInputError("all files of one dataset must have the same type (LF: 'File types should be identical')", path=local)
    if kinds == {"text"}:
        raise BadInputError("a .txt dataset is pre-training text: it has no conversations to check", path=local)
    return tuple(files)


def _check_entry(entry: dict[str, Any], where: str) -> None:
    fmt = entry.get("formatting", "alpaca")
    if fmt not in FORMATS:
        raise BadInputError(f"{where}: unknown formatting {fmt!r} (LF knows {', '.join(FORMATS)})")
    if entry.get("ranking"):
        raise BadInputError(
            f"{where}: a ranking (preference) dataset is encoded by LF's pairwise processor for rm/dpo, "
            "not by supervised training",
            hint="check the sft datasets; pairwise prompts use the same template as the sft check verifies",
        )
    for key in ("columns", "tags"):
        if key in entry and not isinstance(entry[key], dict):
            raise BadInputError(f"{where}: {key!r} must be an object")


# -- reading rows ----------------------------------------------------------------------------------


def _load_json(path: str) -> Any:
    from ..modeldir.files import load_json_file

    return load_json_file(path)


def _json_error(path: str, text_before: str, lines_before: int, err: json.JSONDecodeError) -> BadInputError:
    line = lines_before + text_before.count("\n", 0, err.pos) + 1
    return BadInputError(
        f"malformed JSON at line {line}: {err.msg}",
        path=path,
        hint="fix that line (LF's loader refuses the whole file too)",
    )


def _iter_jsonl(path: str) -> Iterator[tuple[Any, int]]:
    _limit, _row_index = max_row_chars(), 0
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            if _limit and len(line) > _limit:
                raise _too_big(path, _row_index, lineno, len(line), _limit)
            _row_index += 1
            try:
                yield json.loads(line), lineno
            except json.JSONDecodeError as e:
                raise BadInputError(
                    f"malformed JSON at line {lineno}, column {e.colno}: {e.msg}",
                    path=path,
                    hint="every line of a .jsonl file must be one JSON object",
                ) from None


def _iter_json(path: str) -> Iterator[tuple[Any, int]]:
    """Values of a JSON array (or of whitespace-separated JSON values), one at a time."""
    decoder = json.JSONDecoder()
    limit, rows = max_row_chars(), 0
    with open(path, encoding="utf-8") as f:
        buf, pos, lines_before, eof = "", 0, 0, False
        want = _CHUNK

        def fill() -> bool:
            nonlocal buf, pos, lines_before, eof, want
            if eof:
                return False
            chunk = f.read(want)
            if not chunk:
                eof = True
                return False
            if pos > _CHUNK:  # drop what was consumed
                lines_before += buf.count("\n", 0, pos)
                buf, pos = buf[pos:], 0
            buf += chunk
            return True

        def skip_ws() -> bool:
            nonlocal pos
            while True:
                while pos < len(buf) and buf[pos] in " \t\r\n":
                    pos += 1
                if pos < len(buf):
                    return True
                if not fill():
                    return False

        def value() -> Any:
            nonlocal pos, want, rows
            while True:
                try:
                    obj, end = decoder.raw_decode(buf, pos)
                except json.JSONDecodeError as e:
                    if fill():
                        want = min(want * 2, 64 << 20)  # a huge value: read faster than quadratically
                        continue
                    raise _json_error(path, buf, lines_before, e) from None
                if end == len(buf) and not eof and isinstance(obj, (int, float)):
                    if fill():  # a number cut at the chunk edge
                        continue
                if limit and end - pos > limit:
                    raise _too_big(path, rows, line_no(), end - pos, limit)
                pos = end
                rows += 1
                want = _CHUNK
                return obj

        def line_no() -> int:
            return lines_before + buf.count("\n", 0, pos) + 1

        if not skip_ws():
            return
        if buf.startswith("\ufeff", pos):
            pos += 1
            skip_ws()
        if buf[pos] != "[":
            while skip_ws():
                line = line_no()
                yield value(), line
            return
        pos += 1
        first = True
        while True:
            if not skip_ws():
                raise BadInputError("the JSON array is not closed (file truncated?)", path=path)
            if buf[pos] == "]":
                pos += 1
                if skip_ws():
                    raise _json_error(path, buf, lines_before, json.JSONDecodeError("extra data after the array", buf, pos))
                return
            if not first:
                if buf[pos] != ",":
                    raise _json_error(path, buf, lines_before, json.JSONDecodeError("expected ',' or ']'", buf, pos))
                pos += 1
                if not skip_ws():
                    raise BadInputError("the JSON array is not closed (file truncated?)", path=path)
            first = False
            line = line_no()
            yield value(), line


def iter_file_rows(path: str, file_type: str, limit: Optional[int] = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(row index within the file, row)``; a row that is not an object is bad input."""
    if file_type == "json":
        values = _iter_jsonl(path) if _ext(path) == "jsonl" else _iter_json(path)
        for n, (row, line) in enumerate(values):
            if limit is not None and n >= limit:
                return
            if not isinstance(row, dict):
                raise BadInputError(
                    f"row {n} (line {line}) is a {type(row).__name__}, not an object", path=path,
                    hint="a dataset file holds a JSON array of objects, or one object per line",
                )
            yield n, row
        return
    import datasets as hf_datasets  # parquet / arrow / csv: the library LF loads them with

    stream = hf_datasets.load_dataset(file_type, data_files=[path], split="train", streaming=True)
    max_chars = max_row_chars()
    for n, row in enumerate(stream):
        if limit is not None and n >= limit:
            return
        if max_chars and _row_chars(row) > max_chars:
            raise _too_big(path, n, None, _row_chars(row), max_chars)
        yield n, row


@dataclass
class RowStream:
    """The rows of one dataset in LF's order, indexed from 0 across its files."""

    source: DatasetSource
    max_rows: Optional[int] = None
    _cached: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def preparse(self) -> None:
        """Parse small JSON files whole now (before LF loads): malformed JSON anywhere -> exit 2 at once."""
        if self.source.file_type != "json":
            return
        budget = self.max_rows
        for path in self.source.files:
            if budget is not None and budget <= 0:
                break
            if os.path.getsize(path) <= PREPARSE_BYTES:
                rows = [row for _, row in iter_file_rows(path, "json", limit=budget)]
                self._cached[path] = rows
                if budget is not None:
                    budget -= len(rows)

    def count_hint(self, scan: bool = True) -> Optional[int]:
        """The number of rows if known: parsed files, and with ``scan`` the newline count of .jsonl files
        (a read of the file, worth it only for a progress bar)."""
        total = 0
        for path in self.source.files:
            if path in self._cached:
                total += len(self._cached[path])
            elif scan and _ext(path) == "jsonl":
                with open(path, "rb") as f:
                    total += sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(_CHUNK), b""))
            else:
                return self.max_rows
        return total if self.max_rows is None else min(total, self.max_rows)

    def __iter__(self) -> Iterator[tuple[int, dict[str, Any]]]:
        index = 0
        for path in self.source.files:
            rows: Any = self._cached.get(path)
            it = iter(rows) if rows is not None else (row for _, row in iter_file_rows(path, self.source.file_type))
            for row in it:
                if self.max_rows is not None and index >= self.max_rows:
                    return
                yield index, row
                index += 1


def first_row(source: DatasetSource) -> Optional[dict[str, Any]]:
    return next((row for _, row in iter_file_rows(source.files[0], source.file_type, limit=1)), None)


def validate_columns(source: DatasetSource, row: Optional[dict[str, Any]]) -> None:
    """Does the entry's column/tag mapping fit the data? Checked on the first row, before LF loads.

    Only what makes LF fail or drop *every* row is bad input: the conversation column missing,
    messages without the role/content keys, roles none of which the tags name. A single odd row
    is LF's business (it skips it) and is reported per sample.
    """
    if row is None:
        raise BadInputError("the dataset holds no rows", path=source.files[0])
    attr = source.attr
    where = source.where()
    if source.formatting == "alpaca":
        for key in ("prompt", "response"):
            col = attr[key]
            if col and col not in row:
                raise BadInputError(
                    f"{where}: the {key} column {col!r} is not in the data (its keys: {', '.join(map(str, row))})",
                    path=source.files[0],
                    hint=f'map it in the entry\'s "columns", e.g. "{key}": "<key holding it>"',
                )
        return
    col = attr["messages"]
    if not col or col not in row or not isinstance(row[col], list):
        raise BadInputError(
            f"{where}: the messages column {col!r} is not a list in the data (its keys: {', '.join(map(str, row))})",
            path=source.files[0],
            hint='map it in the entry\'s "columns", e.g. "messages": "messages"',
        )
    messages = [m for m in row[col] if isinstance(m, dict)]
    if not messages:
        return
    role_tag, content_tag = attr["role_tag"], attr["content_tag"]
    keys = sorted({str(k) for m in messages for k in m})
    if role_tag not in messages[0] or content_tag not in messages[0]:
        guess = dict(OPENAI_STYLE_TAGS) if {"role", "content"} <= set(keys) else None
        raise BadInputError(
            f"{where}: messages have no {role_tag!r}/{content_tag!r} keys (they have {', '.join(keys)})",
            path=source.files[0],
            hint=(f'set "tags": {json.dumps(guess)}' if guess else 'set "tags": {"role_tag": ..., "content_tag": ...}'),
        )
    known = {attr[t] for t in TAG_NAMES[2:] if attr[t]}
    roles = {m.get(role_tag) for m in messages}
    if not roles & known:
        raise BadInputError(
            f"{where}: none of the roles in the data ({', '.join(sorted(map(str, roles)))}) is a role tag of the entry "
            f"({', '.join(sorted(known))}): LF would skip every sample",
            path=source.files[0],
            hint='map them in the entry\'s "tags": "user_tag", "assistant_tag", "observation_tag", "function_tag", "system_tag"',
        )


# -- rows as Arrow gives them to LF ---------------------------------------------------------------


class ArrowRow(dict):
    """A dict whose missing keys read as ``None``: Arrow's view of a column a row lacks."""

    def __missing__(self, key: Any) -> None:
        return None


def arrow_like(value: Any) -> Any:
    if isinstance(value, dict):
        return ArrowRow((k, arrow_like(v)) for k, v in value.items())
    if isinstance(value, list):
        return [arrow_like(v) for v in value]
    return value
