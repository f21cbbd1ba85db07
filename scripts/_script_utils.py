"""Helpers shared by the scripts: the synthetic benchmark dataset, and write-or-check of generated docs.

Scripts run as files (``python scripts/X.py``), so this module is found beside them on ``sys.path``.
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Iterator
from pathlib import Path

WORDS = (
    "the of and to in is that for it as with was on be by this are at from or an have not they which one you "
    "were all we when there can been has more if will no would so what out up about into than them only time "
    "model data train token template engine answer question system value result number paris weather river "
    "mountain city country history science music language people world water light energy market"
).split()


def sentence(rng: random.Random, lo: int, hi: int) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(lo, hi))]
    return " ".join(words).capitalize() + rng.choice([".", "?", "!", "."])


def sharegpt_rows(samples: int, turns: int, seed: int = 0) -> Iterator[dict]:
    """``samples`` sharegpt conversations of ``turns`` user/assistant turns of random words; a system
    prompt on every other one. Deterministic for a seed."""
    rng = random.Random(seed)
    for i in range(samples):
        conv = []
        for _ in range(turns):
            conv.append({"from": "human", "value": sentence(rng, 8, 30)})
            conv.append({"from": "gpt", "value": " ".join(sentence(rng, 10, 40) for _ in range(rng.randint(1, 3)))})
        row: dict = {"conversations": conv}
        if i % 2 == 0:
            row["system"] = sentence(rng, 5, 15)
        yield row


def write_sharegpt_dataset(directory: Path, samples: int, turns: int, *, jsonl: bool, seed: int = 0) -> None:
    """The rows as ``bench.jsonl`` (streamed) or ``bench.json`` (one array), with the ``dataset_info.json``
    entry ``bench`` that LF and ``lf-template check --dataset bench`` read."""
    name = "bench.jsonl" if jsonl else "bench.json"
    rows = sharegpt_rows(samples, turns, seed)
    with open(directory / name, "w", encoding="utf-8") as f:
        if jsonl:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        else:
            json.dump(list(rows), f)
    info = {"bench": {"file_name": name, "formatting": "sharegpt", "columns": {"messages": "conversations", "system": "system"}}}
    (directory / "dataset_info.json").write_text(json.dumps(info), encoding="utf-8")


def write_or_check(text: str, output: Path, script: str, check: bool) -> int:
    """Write a generated doc, or with ``check`` exit 1 when the committed file differs (tests call this)."""
    if check:
        current = output.read_text(encoding="utf-8") if output.exists() else ""
        if current != text:
            print(f"{output} is stale; run python scripts/{script}", file=sys.stderr)
            return 1
        return 0
    output.write_text(text, encoding="utf-8")
    print(f"wrote {output}", file=sys.stderr)
    return 0
