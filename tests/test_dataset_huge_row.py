"""Issue 17 finding 11: a 50 MB single-string dataset row is refused at once with a clear message (it
took 126 s and 5.3 GB), in both JSON layouts; normal rows and the override still work."""

from __future__ import annotations

import json
import time

import pytest

from lf_template_ext.errors import BadInputError
from lf_template_ext.lf.datasets import iter_file_rows

HUGE = "x" * (50 << 20)


@pytest.mark.parametrize("layout", ["jsonl", "json"])
def test_a_50mb_row_is_refused_quickly(tmp_path, layout):
    small = {"instruction": "Hi", "output": "Hello"}
    big = {"instruction": HUGE, "output": "ok"}
    path = tmp_path / f"data.{layout}"
    if layout == "jsonl":
        path.write_text(json.dumps(small) + "\n" + json.dumps(big) + "\n")
    else:
        path.write_text(json.dumps([small, big]))
    start = time.perf_counter()
    rows = []
    with pytest.raises(BadInputError) as err:
        for _n, row in iter_file_rows(str(path), "json"):
            rows.append(row)
    assert time.perf_counter() - start < 20
    assert rows == [small]  # rows before it were read
    message = str(err.value)
    assert str(path) in message and "row 1" in message and "50.0 Mi characters" in message
    assert "LF_TEMPLATE_EXT_MAX_ROW_CHARS" in message


def test_the_limit_can_be_raised(tmp_path, monkeypatch):
    path = tmp_path / "data.jsonl"
    path.write_text(json.dumps({"instruction": "y" * 5000, "output": "ok"}) + "\n")
    monkeypatch.setenv("LF_TEMPLATE_EXT_MAX_ROW_CHARS", "1000")
    with pytest.raises(BadInputError):
        list(iter_file_rows(str(path), "json"))
    monkeypatch.setenv("LF_TEMPLATE_EXT_MAX_ROW_CHARS", "0")
    assert len(list(iter_file_rows(str(path), "json"))) == 1
