"""`lf-template check --engine ollama|lmdeploy`: the emitted artifacts, rendered by the engines' own code.

The engine side of each sample is the Modelfile / LMDeploy JSON this package emits for the template:
the Modelfile read back and rendered by ``ollama_render`` (Ollama's template execution re-created in
Go, built here with the local ``go``), the JSON loaded and rendered by LMDeploy itself, each tokenized
with its engine's BOS rule. Real fixture tokenizers, LF's real converter and encoder; no mocks.
"""

from __future__ import annotations

import copy
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from test_dataset_check import LLAMA31, QWEN25, WEATHER, check_json, model_dir, statuses

from lf_template_ext.cli.main import main as cli_main
from lf_template_ext.model.corpus import probe_corpus

needs_go = pytest.mark.skipif(shutil.which("go") is None, reason="needs the Go toolchain (Debian golang-go)")

#: sharegpt with LF's default tags: a system message and two turns; quotes, backslashes, newlines.
CHAT_ROWS = [
    {"conversations": [{"from": "system", "value": "You are terse."}, {"from": "human", "value": "Hi"},
                       {"from": "gpt", "value": "Hello!"}, {"from": "human", "value": "And now?"},
                       {"from": "gpt", "value": "Done."}]},
    {"conversations": [{"from": "human", "value": 'Say "quoted" \\ text\nwith\n\nnewlines, tabs\tand 中文'},
                       {"from": "gpt", "value": 'Sure: "ok"\n\n- a\n- b\\n (literal)\n'}]},
]  # fmt: skip

#: A tool call; the tool's keys are in the usual order (name, description, parameters), not sorted.
TOOL_ROWS = [
    {"conversations": [{"from": "human", "value": "Weather in Paris?"},
                       {"from": "function_call", "value": json.dumps({"name": "get_weather", "arguments": {"city": "Paris"}})},
                       {"from": "observation", "value": json.dumps({"temp": 21})},
                       {"from": "gpt", "value": "It is 21 degrees."}],
     "tools": json.dumps([WEATHER])},
]  # fmt: skip

_ARCH = {QWEN25: ("qwen2", "Qwen2ForCausalLM"), LLAMA31: ("llama", "LlamaForCausalLM")}


def served_dir(tmp: Path, fixture: str) -> Path:
    """A copy of a fixture with the config.json every served model dir has (LMDeploy reads it first)."""
    import transformers

    d = model_dir(tmp, fixture)
    model_type, arch = _ARCH[fixture]
    config = {"architectures": [arch], "model_type": model_type, "transformers_version": transformers.__version__}
    (d / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return d


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("engines-data")
    (d / "chat.json").write_text(json.dumps(CHAT_ROWS, ensure_ascii=False), encoding="utf-8")
    (d / "tools.json").write_text(json.dumps(TOOL_ROWS), encoding="utf-8")
    info = {
        "chat": {"file_name": "chat.json", "formatting": "sharegpt"},
        "tools": {"file_name": "tools.json", "formatting": "sharegpt", "columns": {"messages": "conversations", "tools": "tools"}},
    }  # fmt: skip
    (d / "dataset_info.json").write_text(json.dumps(info), encoding="utf-8")
    return d


@pytest.fixture(scope="module")
def go_cache(tmp_path_factory) -> Path:
    """A fresh user cache: the first ollama check builds the renderer into it."""
    return tmp_path_factory.mktemp("xdg-cache")


def emitted(capsys, model: Path, engine: str, template: str) -> str:
    capsys.readouterr()
    assert cli_main(["emit", str(model), "--engine", engine, "--template", template, "--output", "-"]) == 0
    return capsys.readouterr().out


# -- LMDeploy ----------------------------------------------------------------------------------------------


def test_lmdeploy_json_renders_qwen_samples_as_trained(tmp_path, data_dir, capsys):
    qwen = served_dir(tmp_path, QWEN25)
    args = [str(qwen), "--template", "qwen", "--dataset-dir", str(data_dir), "--engine", "lmdeploy"]
    code, report = check_json(capsys, *args, "--dataset", "chat")
    assert code == 0, report["kinds"]
    assert report["summary"] == {"identical": 2, "boundary_only": 0, "differs": 0, "unsupported": 0}
    assert report["engine"] == "lmdeploy" and report["stop_ids"]["missing"] == []
    assert report["artifact"]["file"] == "lmdeploy_chat_template.json"
    assert report["artifact"]["text"] == emitted(capsys, qwen, "lmdeploy", "qwen")  # the file `emit` writes

    # LMDeploy's JSON template drops the request's tools and tool_calls: such a sample cannot be served as trained
    code, report = check_json(capsys, *args, "--dataset", "tools")
    assert code == 1
    assert statuses(report, "tools") == {"boundary_only": [], "differs": [0], "unsupported": [], "skipped": []}
    (case,) = report["cases"]
    assert "UnsupportedRequest" in case["kind"] and "tools are dropped" in case["reason"]


def test_lmdeploy_refuses_a_template_its_json_cannot_express(tmp_path, data_dir, capsys):
    """qwen3 trained with thinking on: LF's empty thought goes into history answers only (exit 3, why)."""
    qwen = served_dir(tmp_path, QWEN25)
    capsys.readouterr()
    code = cli_main(["check", str(qwen), "--template", "qwen3", "--dataset", "chat", "--dataset-dir", str(data_dir),
                     "--engine", "lmdeploy"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 3 and "'qwen3' (reasoning)" in err and "enable_thinking" in err


# -- Ollama ------------------------------------------------------------------------------------------------


@needs_go
def test_ollama_modelfile_renders_qwen_samples_as_trained(tmp_path, data_dir, go_cache, capsys, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(go_cache))
    qwen = served_dir(tmp_path, QWEN25)
    code, report = check_json(capsys, str(qwen), "--template", "qwen", "--dataset", "chat", "--dataset-dir",
                              str(data_dir), "--engine", "ollama")  # fmt: skip
    assert code == 0, report["kinds"]
    assert report["summary"] == {"identical": 2, "boundary_only": 0, "differs": 0, "unsupported": 0}
    assert report["engine"] == "ollama" and report["artifact"]["file"] == "Modelfile"
    assert report["artifact"]["text"] == emitted(capsys, qwen, "ollama", "qwen")
    assert list(go_cache.glob("lf-template-ext/ollama_render-*/ollama_render"))  # built on first use


@needs_go
def test_ollama_llama31_plain_samples_match_tool_json_order_does_not(tmp_path, data_dir, go_cache, capsys, monkeypatch):
    """Llama-3.1: LF's BOS written by the TEMPLATE once (the dir says no add_bos_token), <|eom_id|> among the
    Modelfile's stops; a tools list whose keys are not sorted differs (Ollama's Go maps sort them)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(go_cache))
    llama = served_dir(tmp_path, LLAMA31)
    args = [str(llama), "--template", "llama3", "--dataset", "chat,tools", "--dataset-dir", str(data_dir)]
    code, report = check_json(capsys, *args, "--engine", "ollama")
    assert code == 1
    assert statuses(report, "chat") == {"boundary_only": [], "differs": [], "unsupported": [], "skipped": []}
    assert statuses(report, "tools")["differs"] == [0]
    (case,) = report["cases"]
    assert case["kind"].startswith("differs · full conversation · in the first prompt")
    exp, act = case["first_diff"]["expected_text"], case["first_diff"]["actual_text"]
    # LF writes the keys in the dataset's order (its wrapper: "type" first; then name, description), the
    # TEMPLATE in sorted order, as Ollama's Go maps give them
    assert ('"type": "function"' in exp and '"function": {' in act) or ('"name"' in exp and '"description"' in act)
    assert report["stop_ids"]["missing"] == [] and 128008 in report["stop_ids"]["engine"]
    code, hf = check_json(capsys, *args, "--engine", "hf")  # the dir's own files: no <|eom_id|> stop
    assert hf["stop_ids"]["missing"] == [128008]


@needs_go
def test_ollama_adds_the_bos_the_dir_asks_for(tmp_path, data_dir, go_cache, capsys, monkeypatch):
    """`ollama create` from a dir whose tokenizer_config.json says add_bos_token: true writes that into the
    GGUF; Ollama then adds a BOS in front of the prompt (it keeps duplicates). The emitted TEMPLATE must
    leave the BOS to Ollama then, and the check must see one BOS, not two."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(go_cache))
    llama = served_dir(tmp_path, LLAMA31)
    args = ["--template", "llama3", "--dataset", "chat", "--dataset-dir", str(data_dir), "--engine", "ollama"]
    code, plain = check_json(capsys, str(llama), *args)
    assert code == 0 and statuses(plain, "chat")["differs"] == []
    cfg_path = llama / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    cfg["add_bos_token"] = True
    cfg_path.write_text(json.dumps(cfg), encoding="utf-8")
    code, report = check_json(capsys, str(llama), *args)
    assert code == 0 and statuses(report, "chat")["differs"] == [], report["kinds"]
    with_bos, without_bos = plain["artifact"]["text"], report["artifact"]["text"]
    assert with_bos != without_bos  # the TEMPLATE really changed: its leading BOS is now Ollama's
    assert with_bos.count("<|begin_of_text|>") > without_bos.count("<|begin_of_text|>")


@needs_go
def test_ollama_probe_corpus_differs_only_where_ollama_cannot_follow(tmp_path, go_cache, capsys, monkeypatch):
    """Without --dataset: the probe corpus. Only tool probes (unsorted JSON keys) and LF's {{idx}} quirk differ."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(go_cache))
    qwen = served_dir(tmp_path, QWEN25)
    code, report = check_json(capsys, str(qwen), "--template", "qwen", "--engine", "ollama")
    assert code == 1
    probes = [c for c in probe_corpus() if "enable_thinking" not in c]
    differs = statuses(report, "probe corpus")["differs"]
    assert differs and report["summary"]["identical"] >= 7

    def explained(conv: dict[str, Any]) -> bool:
        return bool(conv.get("tools")) or any("{{idx}}" in str(m.get("content")) for m in conv["messages"])

    assert all(explained(probes[i]) for i in differs), [probes[i]["id"] for i in differs]
    assert [probes[i]["id"] for i, _ in enumerate(probes) if probes[i].get("tools") and i not in differs] == []


# -- bad input ---------------------------------------------------------------------------------------------


def test_engine_choices_and_missing_tools_are_bad_input(tmp_path, data_dir, capsys, monkeypatch):
    qwen = served_dir(tmp_path, QWEN25)
    base = ["check", str(qwen), "--template", "qwen", "--dataset", "chat", "--dataset-dir", str(data_dir)]

    def run(*extra: str) -> tuple[int, str]:
        capsys.readouterr()
        code = cli_main(base + list(extra))
        return code, capsys.readouterr().err

    code, err = run("--engine", "gguf")
    assert code == 2 and "lf-template repair model.gguf" in err and "--engine hf" in err
    code, err = run("--engine", "ollama,hf")
    assert code == 2 and "one check per engine" in err
    code, err = run("--engine", "lmdeploy", "--endpoint", "http://127.0.0.1:9")
    assert code == 2 and "--endpoint" in err

    no_config = copy.copy(base)
    (tmp_path / "noconfig").mkdir()
    shutil.copy(qwen / "tokenizer.json", tmp_path / "noconfig")
    shutil.copy(qwen / "tokenizer_config.json", tmp_path / "noconfig")
    no_config[1] = str(tmp_path / "noconfig")
    capsys.readouterr()
    assert cli_main(no_config + ["--engine", "lmdeploy"]) == 2 and "config.json" in capsys.readouterr().err

    # no `go` on PATH and nothing built yet: exit 2 naming the package to install
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    code, err = run("--engine", "ollama")
    assert code == 2 and "apt install golang-go" in err and "re-creation of Ollama's template execution" in err

    # lmdeploy not importable (an installed module hidden from the import system)
    monkeypatch.setitem(sys.modules, "lmdeploy", None)
    code, err = run("--engine", "lmdeploy")
    assert code == 2 and "pip install --no-deps lmdeploy==0.18.0" in err


# -- --artifact FILE: the file you serve, not the one emit writes ------------------------------------------


@needs_go
def test_ollama_artifact_checks_the_given_modelfile(tmp_path, data_dir, go_cache, capsys, monkeypatch):
    """The emitted Modelfile passes; the same file with the assistant header's newline dropped fails."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(go_cache))
    qwen = served_dir(tmp_path, QWEN25)
    good = tmp_path / "Modelfile"
    good.write_text(emitted(capsys, qwen, "ollama", "qwen"), encoding="utf-8")
    args = [str(qwen), "--template", "qwen", "--dataset", "chat", "--dataset-dir", str(data_dir), "--engine", "ollama"]
    code, report = check_json(capsys, *args, "--artifact", str(good))
    assert code == 0, report["kinds"]
    assert report["artifact"]["file"] == str(good) and report["template_file"] == str(good)

    # the TEMPLATE's Go string literals spell the newline as \n
    edited = good.read_text(encoding="utf-8").replace('<|im_start|>assistant\\n"', '<|im_start|>assistant "')
    assert edited != good.read_text(encoding="utf-8")
    bad = tmp_path / "Modelfile.edited"
    bad.write_text(edited, encoding="utf-8")
    code, report = check_json(capsys, *args, "--artifact", str(bad))
    assert code == 1 and report["summary"]["differs"] == 2, report["summary"]


def test_lmdeploy_artifact_checks_the_given_json(tmp_path, data_dir, capsys):
    qwen = served_dir(tmp_path, QWEN25)
    config = json.loads(emitted(capsys, qwen, "lmdeploy", "qwen"))
    args = [str(qwen), "--template", "qwen", "--dataset", "chat", "--dataset-dir", str(data_dir), "--engine", "lmdeploy"]
    good = tmp_path / "lmdeploy.json"
    good.write_text(json.dumps(config), encoding="utf-8")
    code, report = check_json(capsys, *args, "--artifact", str(good))
    assert code == 0, report["kinds"]
    system_key = next(k for k in config if "system" in k and isinstance(config[k], str) and config[k].startswith("<|im_start|>"))
    config[system_key] = config[system_key].replace("<|im_start|>system\n", "<|im_start|>system ")
    bad = tmp_path / "lmdeploy.edited.json"
    bad.write_text(json.dumps(config), encoding="utf-8")
    code, report = check_json(capsys, *args, "--artifact", str(bad))
    assert code == 1 and report["summary"]["differs"] >= 1, report["summary"]


def test_artifact_bad_input(tmp_path, data_dir, capsys):
    qwen = served_dir(tmp_path, QWEN25)
    base = [str(qwen), "--template", "qwen", "--dataset", "chat", "--dataset-dir", str(data_dir)]

    def run(*extra: str) -> tuple[int, str]:
        capsys.readouterr()
        code = cli_main(["check", *base, *extra])
        return code, capsys.readouterr().err

    code, err = run("--artifact", str(tmp_path / "Modelfile"))  # no artifact engine
    assert code == 2 and "--engine ollama" in err
    code, err = run("--engine", "lmdeploy", "--artifact", str(tmp_path / "missing.json"))
    assert code == 2 and "missing.json" in err and "cannot read" in err
    not_json = tmp_path / "not.json"
    not_json.write_text("FROM x\n", encoding="utf-8")
    code, err = run("--engine", "lmdeploy", "--artifact", str(not_json))
    assert code == 2 and "not an LMDeploy chat template JSON" in err
    no_template = tmp_path / "Modelfile"
    no_template.write_text("FROM ./model.gguf\nPARAMETER stop <|im_end|>\n", encoding="utf-8")
    code, err = run("--engine", "ollama", "--artifact", str(no_template))
    assert code == 2 and "no TEMPLATE" in err
