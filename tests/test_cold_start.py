"""Cold start: help, restore and every input error found without LF answer at once.

LF pulls in torch and transformers (10-20 s); a typo in a path or a flag must not wait for
that. Two checks per command, each in a fresh interpreter:

* the strict one: after the command returned, none of torch, transformers, LF, datasets,
  tokenizers, numpy, jinja2, tqdm or pyarrow is in ``sys.modules``;
* a generous wall-clock bound (the issue's 1 s) on ``python -m lf_template_ext.cli.main ...``,
  best of three tries so a busy machine does not fail it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from harness import FIXTURES

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "llamafactory", "datasets", "tokenizers", "numpy", "jinja2", "tqdm", "pyarrow")
BOUND_SECONDS = 1.0

PROBE = f"""
import json, sys
from lf_template_ext.cli.main import main
try:
    rc = main(sys.argv[2:])
except SystemExit as e:
    rc = e.code
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY!r})
with open(sys.argv[1], "w") as f:
    json.dump({{"rc": rc, "heavy": heavy}}, f)
"""


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("cold")
    model = root / "model"
    shutil.copytree(FIXTURES / "Qwen--Qwen2.5-1.5B-Instruct", model)
    broken = root / "broken"
    shutil.copytree(model, broken)
    (broken / "tokenizer_config.json").write_text('{"chat_template": "x",,}')
    data = root / "data"
    data.mkdir()
    (data / "ok.json").write_text(json.dumps([{"conversations": [{"from": "human", "value": "a"}, {"from": "gpt", "value": "b"}]}]))
    (data / "bad.jsonl").write_text('{"instruction": "a", "output": "b"}\n{"instruction": \n')
    (data / "wrong_columns.json").write_text(json.dumps([{"messages": [{"role": "user", "content": "a"}]}]))
    info = {
        "ok": {"file_name": "ok.json", "formatting": "sharegpt"},
        "wrong": {"file_name": "wrong_columns.json", "formatting": "sharegpt"},
    }
    (data / "dataset_info.json").write_text(json.dumps(info))
    return {"model": str(model), "broken": str(broken), "data": str(data), "root": str(root)}


CASES = {
    "help": (["--help"], 0),
    "check --help": (["check", "--help"], 0),
    "restore (nothing to restore)": (["restore", "{model}"], 2),
    "restore --list": (["restore", "{model}", "--list"], None),
    "missing model dir": (["check", "{root}/nope", "--template", "qwen"], 2),
    "malformed tokenizer_config.json": (["check", "{broken}", "--template", "qwen"], 2),
    "bad flag value": (["check", "{model}", "--template", "qwen", "--workers", "0"], 2),
    "unknown flag": (["check", "{model}", "--frobnicate"], 2),
    "unknown engine": (["check", "{model}", "--template", "qwen", "--engine", "tgi", "--dataset", "ok", "--dataset-dir", "{data}"], 2),
    "missing dataset file": (["check", "{model}", "--template", "qwen", "--dataset", "{data}/missing.json"], 2),
    "unknown dataset name": (["check", "{model}", "--template", "qwen", "--dataset", "okk", "--dataset-dir", "{data}"], 2),
    "no dataset_info.json": (["check", "{model}", "--template", "qwen", "--dataset", "ok", "--dataset-dir", "{root}"], 2),
    "malformed dataset JSON": (["check", "{model}", "--template", "qwen", "--dataset", "{data}/bad.jsonl"], 2),
    "columns that do not fit": (["check", "{model}", "--template", "qwen", "--dataset", "wrong", "--dataset-dir", "{data}"], 2),
    "server not running": (["check", "{model}", "--template", "qwen", "--endpoint", "http://127.0.0.1:9"], 2),
}  # fmt: skip


def _argv(template: list[str], inputs: dict[str, str]) -> list[str]:
    return [a.format(**inputs) for a in template]


@pytest.mark.parametrize("case", list(CASES))
def test_no_heavy_import(case, inputs, tmp_path):
    argv, expected_rc = CASES[case]
    out = tmp_path / "result.json"
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(out), *_argv(argv, inputs)], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    result = json.loads(out.read_text())
    assert result["heavy"] == [], f"{case} imported {result['heavy'][:8]}"
    if expected_rc is not None:
        assert result["rc"] == expected_rc, proc.stdout + proc.stderr
    if expected_rc == 2:
        assert "error" in proc.stderr and len(proc.stderr.strip().splitlines()) <= 20


@pytest.mark.parametrize("case", ["help", "restore (nothing to restore)", "malformed dataset JSON", "unknown dataset name"])
def test_answers_within_a_second(case, inputs):
    argv, expected_rc = CASES[case]
    cmd = [sys.executable, "-m", "lf_template_ext.cli.main", *_argv(argv, inputs)]
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=120, env={**os.environ})
        best = min(best, time.perf_counter() - start)
        assert proc.returncode == expected_rc, proc.stderr
        if best < BOUND_SECONDS:
            break
    assert best < BOUND_SECONDS, f"{case}: {best:.2f}s"
