"""The Open WebUI model preset (`open-webui-model.json`): written only when asked, through the journal, in
Open WebUI 0.12.4's import format (checked against the shape read in its source, see
``lf_template_ext.workflows.openwebui``); the real import and chat run in the opt-in tests/test_openwebui.py."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from harness import FIXTURES

from lf_template_ext.workflows import openwebui
from lf_template_ext.workflows.engines import ENGINES, parse_names

REPO = Path(__file__).resolve().parents[1]
QWEN25 = "Qwen--Qwen2.5-1.5B-Instruct"
PRESET = "open-webui-model.json"


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lf_template_ext.cli.main", *args], capture_output=True, text=True, cwd=REPO)


@pytest.fixture
def model_dir(tmp_path) -> Path:
    d = tmp_path / "qwen2.5 lf sft"  # a space: Open WebUI refuses ids with whitespace
    shutil.copytree(FIXTURES / QWEN25, d)
    return d


def assert_import_shape(preset) -> dict:
    """Open WebUI 0.12.4: the import file is a list of ``ModelForm`` dicts (routers/models.py: import_models)."""
    assert isinstance(preset, list) and len(preset) == 1
    model = preset[0]
    assert set(model) == {"id", "base_model_id", "name", "meta", "params", "is_active"}
    assert model["id"] and not any(c.isspace() for c in model["id"]) and model["id"] != model["base_model_id"]
    assert isinstance(model["meta"], dict) and isinstance(model["params"], dict) and model["is_active"] is True
    assert model["params"]["system"] == ""
    return model


def test_registry_has_openwebui():
    assert ENGINES["openwebui"].filename == PRESET and ENGINES["openwebui"].written_by_repair
    assert parse_names("vllm,openwebui") == ("vllm", "openwebui")


def test_repair_writes_the_preset_only_when_asked_through_the_journal(model_dir):
    proc = cli("repair", str(model_dir), "--template", "qwen")
    assert proc.returncode == 0, proc.stderr
    assert not (model_dir / PRESET).exists()
    assert "## Open WebUI" in (model_dir / "SERVING.md").read_text()
    assert "--engines openwebui" in (model_dir / "SERVING.md").read_text()
    proc = cli("repair", str(model_dir), "--template", "qwen", "--engines", "vllm,openwebui", "--generation", "lf")
    assert proc.returncode == 0, proc.stderr
    model = assert_import_shape(json.loads((model_dir / PRESET).read_text()))
    assert model["base_model_id"] == "qwen2.5 lf sft" and model["id"] == "qwen2.5-lf-sft-lf"
    assert model["meta"]["capabilities"] == {"builtin_tools": False}
    assert model["params"] == {
        "system": "", "stop": ["<|im_end|>"], "temperature": 0.95, "top_p": 0.7, "top_k": 50,
        "repetition_penalty": 1.0, "max_tokens": 1024,
    }  # fmt: skip
    backups = sorted((model_dir / ".lf-template-backups").iterdir())
    manifest = json.loads((backups[-1] / "manifest.json").read_text())
    assert PRESET in json.dumps(manifest)  # journaled: restore removes it
    serving = (model_dir / "SERVING.md").read_text()
    assert str(model_dir / PRESET) in serving and "--served-model-name" in serving
    report = json.loads((model_dir / "alignment_report.json").read_text())
    assert report["engines"]["openwebui"]["present"] is True
    assert cli("restore", str(model_dir)).returncode == 0
    assert not (model_dir / PRESET).exists()


def test_emit_openwebui(model_dir):
    proc = cli("emit", str(model_dir), "--engine", "openwebui", "--template", "qwen", "--output", "-")
    assert proc.returncode == 0, proc.stderr
    model = assert_import_shape(json.loads(proc.stdout))
    assert model["params"] == {"system": "", "stop": ["<|im_end|>"]}  # default: no sampling written
    proc = cli("emit", str(model_dir), "--engine", "openwebui", "--template", "qwen", "--generation", "lf")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((model_dir / PRESET).read_text())[0]["params"]["top_k"] == 50
    assert "Import" in proc.stdout


def test_stop_strings_survive_open_webuis_unicode_escape():
    """Open WebUI sends ``bytes(s, 'utf-8').decode('unicode_escape')`` of each preset stop string
    (utils/payload.py: apply_model_params_to_body_openai): the written strings decode to the stop tokens."""
    tokens = ["<|im_end|>", "<｜end▁of▁sentence｜>", "a\\b", "é"]
    for written, token in zip(openwebui.stop_strings(tokens), tokens):
        assert bytes(written, "utf-8").decode("unicode_escape") == token


def test_greedy_is_temperature_zero():
    params = openwebui.sampling_params({"do_sample": False, "temperature": 0.95, "max_new_tokens": 64})
    assert params == {"temperature": 0, "max_tokens": 64}


def test_yaml_key_template_ext_engines_writes_the_preset(model_dir):
    """``template_ext_engines: [openwebui]``: the hook's checkpoint/output_dir repair (the export hook parses the
    key the same way) writes the preset through the journal."""
    from lf_template_ext.lf.plugin.export import repair_checkpoint

    assert repair_checkpoint(str(model_dir), {"template": "qwen"}, {"template_ext_engines": ["vllm", "openwebui"]})
    assert_import_shape(json.loads((model_dir / PRESET).read_text()))
    assert list((model_dir / ".lf-template-backups").iterdir())
