"""`lf-template check --dataset`: every sample of an LF dataset, as LF trained on it, against the engine.

Datasets are written by the tests in LF's formats with ``dataset_info.json`` entries that rename
columns and tags; model dirs are copies of real fixtures whose chat template is the model's own
(native) one, so some samples must differ, and the same samples must not after `lf-template repair`.
Everything is real: LF's converter and encoder, the fixture tokenizers, transformers' rendering.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from harness import FIXTURES

from lf_template_ext.cli.main import main as cli_main
from lf_template_ext.errors import BadInputError
from lf_template_ext.lf import datasets as lfdata

REPO = Path(__file__).resolve().parents[1]
LLAMA31 = "meta-llama--Meta-Llama-3.1-8B-Instruct"
QWEN25 = "Qwen--Qwen2.5-1.5B-Instruct"

WEATHER = {
    "name": "get_weather",
    "description": "Get the weather of a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}

#: alpaca, renamed columns (system and history included). Row 4 has no answer: LF drops it.
ALPACA_ROWS = [
    {"instr": "Summarize the text.", "inp": "The cat sat on the mat.", "out": "A cat sat.", "sys": "You are terse.",
     "hist": [["Hi", "Hello! How can I help?"]]},
    {"instr": "Say hi", "inp": "", "out": "Hi!"},
    {"instr": "Repeat", "inp": "<|eot_id|> and <|start_header_id|> as text", "out": "Done <|eot_id|> here"},
    {"instr": "Blank lines first", "out": "\n\nAnswer after blank lines."},
    {"instr": "No answer", "out": None},
]  # fmt: skip
ALPACA_ENTRY = {
    "file_name": "alpaca_like.json",
    "columns": {"prompt": "instr", "query": "inp", "response": "out", "system": "sys", "history": "hist"},
}

#: sharegpt, renamed columns and tags, tools. Row 2 starts with the assistant: LF skips it.
SHAREGPT_ROWS = [
    {"msgs": [{"r": "s", "c": "You are a pirate."}, {"r": "u", "c": "Hello"}, {"r": "a", "c": "Arr!"}]},
    {"msgs": [{"r": "u", "c": "Weather in Paris?"},
              {"r": "fc", "c": json.dumps({"name": "get_weather", "arguments": {"city": "Paris"}})},
              {"r": "obs", "c": json.dumps({"temp": 21})},
              {"r": "a", "c": "It is 21 degrees."}],
     "tools": json.dumps([WEATHER])},
    {"msgs": [{"r": "a", "c": "I speak first"}, {"r": "u", "c": "?"}]},
    {"msgs": [{"r": "u", "c": "One"}, {"r": "a", "c": "Two"}, {"r": "u", "c": "  Three  "}, {"r": "a", "c": "Four\t"}],
     "sys": "Count."},
]  # fmt: skip
SHAREGPT_ENTRY = {
    "file_name": "sharegpt_like.jsonl",
    "formatting": "sharegpt",
    "columns": {"messages": "msgs", "system": "sys", "tools": "tools"},
    "tags": {"role_tag": "r", "content_tag": "c", "user_tag": "u", "assistant_tag": "a", "observation_tag": "obs",
             "function_tag": "fc", "system_tag": "s"},
}  # fmt: skip


def write_datasets(d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "alpaca_like.json").write_text(json.dumps(ALPACA_ROWS, indent=1), encoding="utf-8")
    (d / "sharegpt_like.jsonl").write_text("".join(json.dumps(r) + "\n" for r in SHAREGPT_ROWS), encoding="utf-8")
    info = {"alpaca_like": ALPACA_ENTRY, "sharegpt_like": SHAREGPT_ENTRY}
    (d / "dataset_info.json").write_text(json.dumps(info, indent=1), encoding="utf-8")
    return d


def model_dir(tmp: Path, fixture: str) -> Path:
    d = tmp / fixture
    shutil.copytree(FIXTURES / fixture, d)
    return d


def check_json(capsys, *args: str) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    code = cli_main(["check", *args, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


def statuses(report: dict[str, Any], dataset: str) -> dict[str, list[int]]:
    s = report["samples"][dataset]
    return {k: v for k, v in s.items() if k != "skipped"} | {"skipped": [x["index"] for x in s["skipped"]]}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return write_datasets(tmp_path_factory.mktemp("data"))


# -- Llama-3.1's own template vs LF's llama3: every sample differs; after repair none does ----------------


def test_native_llama31_template_differs_and_repair_aligns_every_sample(tmp_path, data_dir, capsys):
    llama = model_dir(tmp_path, LLAMA31)
    (llama / "generation_config.json").write_text(json.dumps({"eos_token_id": 128009}))
    args = [str(llama), "--template", "llama3", "--dataset", "alpaca_like,sharegpt_like", "--dataset-dir", str(data_dir)]

    code, before = check_json(capsys, *args)
    assert code == 1
    assert before["summary"] == {"identical": 0, "boundary_only": 0, "differs": 7, "unsupported": 0}
    assert statuses(before, "alpaca_like") == {"boundary_only": [], "differs": [0, 1, 2, 3], "unsupported": [], "skipped": [4]}
    assert statuses(before, "sharegpt_like") == {"boundary_only": [], "differs": [0, 1, 3], "unsupported": [], "skipped": [2]}
    # the native template writes a system header with its date even when the sample has no system prompt
    first = next(c for c in before["cases"] if c["dataset"] == "alpaca_like" and c["index"] == 1)
    assert "Cutting Knowledge Date" in first["first_diff"]["actual_text"]
    assert "system" not in first["first_diff"]["expected_text"]
    kinds = {k["kind"]: k for k in before["kinds"]}
    top = "differs · full conversation · in the first prompt (prefix, system, tools, first user turn) · text"
    assert kinds[top]["count"] == 7 and kinds[top]["example"] == "alpaca_like#0"
    assert before["stop_ids"]["missing"] == [128008]
    assert [r["reason"] for r in before["samples"]["sharegpt_like"]["skipped"]] == [
        "LF skips it: invalid role order or message count"
    ]

    assert cli_main(["repair", str(llama), "--template", "llama3"]) == 0
    code, after = check_json(capsys, *args)
    assert code == 0, after["kinds"]
    assert after["summary"] == {"identical": 6, "boundary_only": 1, "differs": 0, "unsupported": 0}
    assert statuses(after, "alpaca_like") == {"boundary_only": [3], "differs": [], "unsupported": [], "skipped": [4]}
    assert statuses(after, "sharegpt_like")["differs"] == []
    assert after["stop_ids"]["missing"] == []
    (boundary,) = after["cases"]
    assert boundary["status"] == "boundary_only" and boundary["index"] == 3
    assert boundary["first_diff"]["expected_text"] == boundary["first_diff"]["actual_text"]

    code, strict = check_json(capsys, *args, "--strict")
    assert code == 1 and strict["summary"] == after["summary"]

    code, parallel = check_json(capsys, *args, "--workers", "2")
    assert code == 0 and parallel == after


# -- one run, samples that must differ and samples that must not (Qwen2.5's own template vs LF's qwen) ------


def test_qwen25_native_template_separates_lf_quirks_from_aligned_samples(tmp_path, capsys):
    rows = [
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello!"}]},
        # LF replaces a literal {{idx}} in user content by the turn index; Qwen's own template does not
        {"conversations": [{"from": "human", "value": "keep {{idx}} please"}, {"from": "gpt", "value": "ok"}]},
        {"conversations": [{"from": "human", "value": "a <|im_end|> b <|im_start|>"}, {"from": "gpt", "value": "<|endoftext|>"}]},
        {"conversations": [{"from": "human", "value": "Weather?"},
                           {"from": "function_call", "value": json.dumps({"name": "get_weather", "arguments": {"city": "Oslo"}})},
                           {"from": "observation", "value": "{\"temp\": -3}"}, {"from": "gpt", "value": "Cold."}],
         "tools": json.dumps([WEATHER])},
        {"conversations": [{"from": "human", "value": "x"}, {"from": "gpt", "value": "\n\nindented"}]},
        {"conversations": [{"from": "human", "value": "only a question"}]},
        {"conversations": [{"from": "human", "value": "s"}, {"from": "gpt", "value": "t"}], "system": "Per-sample system."},
        {"conversations": [{"from": "human", "value": "e"}, {"from": "gpt", "value": "f"}], "system": ""},
    ]  # fmt: skip
    d = tmp_path / "data"
    d.mkdir()
    (d / "mixed.json").write_text(json.dumps(rows), encoding="utf-8")
    info = {"mixed": {"file_name": "mixed.json", "formatting": "sharegpt", "columns": {"messages": "conversations", "system": "system", "tools": "tools"}}}
    (d / "dataset_info.json").write_text(json.dumps(info), encoding="utf-8")
    qwen = model_dir(tmp_path, QWEN25)
    report_file = tmp_path / "report.json"
    code, report = check_json(capsys, str(qwen), "--template", "qwen", "--dataset", str(d / "mixed.json"), "--report", str(report_file))
    assert code == 1
    assert statuses(report, "mixed") == {"boundary_only": [4], "differs": [1], "unsupported": [], "skipped": [5]}
    assert report["summary"] == {"identical": 5, "boundary_only": 1, "differs": 1, "unsupported": 0}
    assert json.loads(report_file.read_text()) == report
    (idx,) = [c for c in report["cases"] if c["index"] == 1]
    assert "keep 0 please" in idx["first_diff"]["expected_text"] and "{{idx}}" in idx["first_diff"]["actual_text"]
    assert report["dataset"]["datasets"][0]["info"] == str(d / "dataset_info.json")  # found by file name

    code, first_two = check_json(capsys, str(qwen), "--template", "qwen", "--dataset", str(d / "mixed.json"), "--max-samples", "2")
    assert first_two["dataset"]["rows"] == 2 and statuses(first_two, "mixed")["differs"] == [1]


# -- native mode ---------------------------------------------------------------------------------------------


def test_native_mode_training_ids_equal_engine_ids_sample_by_sample(tmp_path, data_dir, capsys):
    llama = model_dir(tmp_path, LLAMA31)
    code, report = check_json(
        capsys, str(llama), "--template", "native", "--dataset", "alpaca_like,sharegpt_like", "--dataset-dir", str(data_dir)
    )
    assert code == 0, report["kinds"]
    assert report["summary"]["differs"] == 0 and report["summary"]["identical"] >= 6
    assert statuses(report, "sharegpt_like")["skipped"] == [2]


def test_native_mode_reports_samples_the_template_refuses(tmp_path, capsys):
    """Gemma-2's template raises on a system message: native training refuses that sample."""
    gemma = model_dir(tmp_path, "google--gemma-2-2b-it")
    rows = [
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]},
        {"conversations": [{"from": "system", "value": "Be brief."}, {"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Yo"}]},
    ]  # fmt: skip
    path = tmp_path / "g.json"
    path.write_text(json.dumps(rows))
    code, report = check_json(capsys, str(gemma), "--template", "native", "--dataset", str(path))
    assert code == 1  # nothing differs, but a sample training cannot encode fails the check (issue 16)
    assert statuses(report, "g.json")["unsupported"] == [1]
    code, report = check_json(capsys, str(gemma), "--template", "native", "--dataset", str(path), "--allow-skipped")
    assert code == 0
    (case,) = report["cases"]
    assert "System role not supported" in case["reason"]


# -- CLI behaviour: exit codes, progress, bad input ------------------------------------------------------------


def test_progress_is_quiet_in_pipes_and_the_summary_names_the_kinds(tmp_path, data_dir):
    qwen = model_dir(tmp_path, QWEN25)
    proc = subprocess.run(
        [sys.executable, "-m", "lf_template_ext.cli.main", "check", str(qwen), "--template", "qwen",
         "--dataset", "alpaca_like", "--dataset-dir", str(data_dir), "--workers", "2"],
        capture_output=True, text=True, cwd=REPO, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "\r" not in proc.stderr and "conv/s" not in proc.stderr and "checking" not in proc.stderr
    assert "samples: 4 checked: 3 identical, 1 boundary-only, 0 differ" in proc.stdout
    assert "skipped 1 of alpaca_like: LF's supervised processor drops it" in proc.stdout
    assert "ALIGNED" in proc.stdout


def test_progress_bar_shows_on_a_terminal():
    from lf_template_ext.verifier.dataset import progress_bar

    master, slave = os.openpty()
    with os.fdopen(slave, "w") as tty, open(os.devnull, "w") as pipe:
        bar = progress_bar(10, tty)
        assert bar is not None
        bar.update(10)
        bar.close()
        assert progress_bar(10, pipe) is None
    os.close(master)


@pytest.mark.parametrize(
    "entry, rows, message",
    [
        ({"file_name": "x.json", "formatting": "sharegpt"}, [{"messages": [{"role": "user", "content": "a"}]}],
         "the messages column 'conversations' is not a list"),
        ({"file_name": "x.json", "formatting": "sharegpt", "columns": {"messages": "messages"}},
         [{"messages": [{"role": "user", "content": "a"}]}], "messages have no 'from'/'value' keys"),
        ({"file_name": "x.json", "formatting": "sharegpt", "columns": {"messages": "messages"},
          "tags": {"role_tag": "role", "content_tag": "content"}},
         [{"messages": [{"role": "user", "content": "a"}]}], "none of the roles in the data (user)"),
        ({"file_name": "x.json", "columns": {"prompt": "q", "response": "a"}}, [{"question": "a", "answer": "b"}],
         "the prompt column 'q' is not in the data"),
        ({"file_name": "x.json", "ranking": True}, [{"instruction": "a"}], "ranking (preference) dataset"),
        ({"hf_hub_url": "org/data"}, [], "check reads local files only"),
        ({"file_name": "missing.json"}, [], "dataset file not found"),
    ],
)  # fmt: skip
def test_dataset_mapping_errors_are_bad_input_named(tmp_path, entry, rows, message):
    (tmp_path / "x.json").write_text(json.dumps(rows))
    (tmp_path / "dataset_info.json").write_text(json.dumps({"d": entry}))
    with pytest.raises(BadInputError) as err:
        (source,) = lfdata.resolve("d", str(tmp_path))
        lfdata.validate_columns(source, lfdata.first_row(source))
    assert message in str(err.value)


def test_malformed_json_names_the_line(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"instruction": "a", "output": "b"}\n{"instruction": oops}\n')
    with pytest.raises(BadInputError, match=r"a\.jsonl: malformed JSON at line 2"):
        stream = lfdata.RowStream(lfdata.resolve(str(tmp_path / "a.jsonl"))[0])
        stream.preparse()
    (tmp_path / "b.json").write_text('[{"instruction": "a", "output": "b"},\n {"instruction": "c" "output": "d"}]')
    with pytest.raises(BadInputError, match=r"b\.json: malformed JSON at line 2"):
        list(lfdata.iter_file_rows(str(tmp_path / "b.json"), "json"))


def test_json_arrays_stream_across_buffer_refills(tmp_path, monkeypatch):
    monkeypatch.setattr(lfdata, "_CHUNK", 7)  # every value straddles many reads
    rows = [{"instruction": f"q{i} " + "é" * i, "output": str(i), "n": 10**i} for i in range(30)]
    (tmp_path / "a.json").write_text(json.dumps(rows, indent=2, ensure_ascii=False), encoding="utf-8")
    assert [r for _, r in lfdata.iter_file_rows(str(tmp_path / "a.json"), "json")] == rows
    (tmp_path / "b.json").write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")  # JSON lines in .json
    assert [r for _, r in lfdata.iter_file_rows(str(tmp_path / "b.json"), "json")] == rows
    (tmp_path / "c.json").write_text(json.dumps(rows)[:-3], encoding="utf-8")
    with pytest.raises(BadInputError):
        list(lfdata.iter_file_rows(str(tmp_path / "c.json"), "json"))


def test_the_reader_follows_lfs_own_parser_and_tables():
    """Our pre-LF copy of DatasetAttr.join's rules and FILEEXT2TYPE equals the installed LF's."""
    from llamafactory.data.parser import DatasetAttr

    from lf_template_ext.lf import compat as lf_compat

    assert lfdata.FILEEXT2TYPE == lf_compat.file_ext_types()
    for entry in (ALPACA_ENTRY, SHAREGPT_ENTRY, {"file_name": "f"}, {"formatting": "sharegpt", "tags": {"role_tag": "role"}}):
        attr = DatasetAttr("file", dataset_name="f")
        attr.join(entry)
        assert lfdata.attributes(entry) == {k: getattr(attr, k) for k in lfdata.ATTR_DEFAULTS}, entry


# -- the batched tokenization shortcut -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fixture",
    [QWEN25, LLAMA31, "mistralai--Mistral-7B-Instruct-v0.3", "google--gemma-3-1b-it", "microsoft--Phi-3-mini-4k-instruct"],
)
def test_prefix_ids_equal_whole_tokenization(fixture):
    """A generation prompt's ids taken from its conversation's ids == the prompt tokenized whole."""
    import random

    from harness import fixture_tokenizer

    from lf_template_ext.render.hf import PrefixTokenizer, batch_encode

    tok = fixture_tokenizer(fixture)
    pt = PrefixTokenizer(tok)
    assert pt.enabled
    rng = random.Random(fixture)
    added = list(tok.get_added_vocab())
    pieces = [" hello", "\n\n", "world ", "  x", "été", "a\n", " ", "<think>", "12 34", "\t", "你好", "▁", "\n"]
    texts = ["".join(rng.choice(added) if rng.random() < 0.4 else rng.choice(pieces) for _ in range(rng.randint(1, 10))) for _ in range(400)]
    ids, offsets = pt.encode_with_offsets(texts)
    jobs = [(i, o, t[: rng.randint(0, len(t))]) for i, o, t in zip(ids, offsets, texts)]
    used = sum(pt.split(*job) is not None for job in jobs)
    assert used > 50  # the shortcut is really taken
    assert pt.prefix_ids(jobs) == batch_encode(tok, [job[2] for job in jobs])
