"""Issue 15 item 4 and issue 13 item 1: where the template and options come from.

The rule (``model.options.resolve_with_provenance``): what the user gave > what training recorded (our record,
then LF's training_args.yaml, then llamaboard_config.yaml) > LF's default; the commands on a LLaMA Board-style
run dir (training_args.yaml only, as LF 0.9.5's web UI writes it), with real fixture tokenizers and real LF.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from harness import FIXTURES

from lf_template_ext.cli.main import main as cli_main
from lf_template_ext.model.options import LF_DEFAULT, TemplateOptions, resolve_with_provenance
from lf_template_ext.modeldir.provenance import read_provenance

QWEN3 = FIXTURES / "Qwen--Qwen3-4B"


def test_given_beats_trained_beats_lf_default():
    trained = [
        ("training record", {"template": "qwen3", "enable_thinking": False}),
        ("training_args.yaml", {"template": "qwen", "enable_thinking": True, "mask_history": True}),
    ]
    p = resolve_with_provenance(trained, [])
    assert p.template == "qwen3" and p.sources["template"] == "training record"  # the record before LF's file
    assert p.options == TemplateOptions(enable_thinking=False, mask_history=True)
    assert p.sources["mask_history"] == "training_args.yaml" and p.sources["default_system"] == LF_DEFAULT
    assert p.describe()["enable_thinking"] == "false (training record)" and not p.conflicts
    # given: the later layer wins (a flag over --config); a value equal to training is no conflict
    p = resolve_with_provenance(trained, [("cfg.yaml", {"enable_thinking": "true", "template": "qwen3"}), ("command line", {"enable_thinking": "false"})])
    assert p.options.enable_thinking is False and p.sources["enable_thinking"] == "command line" and not p.conflicts
    p = resolve_with_provenance(trained, [("export arguments", {"enable_thinking": True})])
    assert p.options.enable_thinking is True
    [conflict] = p.conflicts
    assert conflict.message().startswith(
        "enable_thinking=True (export arguments) differs from what training used (enable_thinking=False, training record)"
    )
    # nothing given, nothing recorded: LF's defaults, said so
    p = resolve_with_provenance([], [])
    assert p.template is None and p.options == TemplateOptions() and p.describe()["enable_thinking"] == f"true ({LF_DEFAULT})"


@pytest.fixture
def board_run(tmp_path) -> Path:
    """A LoRA run dir as LLaMA Board leaves it: the tokenizer, training_args.yaml, llamaboard_config.yaml."""
    d = tmp_path / "saves" / "Qwen3-4B-Instruct" / "lora" / "train_2026-12-05"
    shutil.copytree(QWEN3, d)
    (d / "training_args.yaml").write_text(
        yaml.safe_dump(  # LF 0.9.5 webui/common.py save_cmd: LF's own keys, False/None dropped but enable_thinking
            {
                "bf16": True, "cutoff_len": 2048, "dataset": "identity", "do_train": True, "enable_thinking": False,
                "finetuning_type": "lora", "model_name_or_path": "Qwen/Qwen3-4B-Instruct-2507", "output_dir": str(d),
                "stage": "sft", "template": "qwen3", "lora_rank": 8,
            }
        )
    )
    (d / "llamaboard_config.yaml").write_text(
        yaml.safe_dump({"top.model_name": "Qwen3-4B-Instruct", "top.template": "qwen3", "train.enable_thinking": False})
    )
    return d


def test_reader_reads_llamaboard_files_and_checkpoint_parents(board_run):
    prov = read_provenance(str(board_run))
    assert [s for s, _ in prov.layers] == ["training_args.yaml", "llamaboard_config.yaml"]
    assert prov.template == "qwen3" and prov.base_model == "Qwen/Qwen3-4B-Instruct-2507"
    ckpt = board_run / "checkpoint-100"
    shutil.copytree(QWEN3, ckpt)
    prov = read_provenance(str(ckpt))
    assert [s for s, _ in prov.layers] == ["../training_args.yaml", "../llamaboard_config.yaml"]
    (board_run / "training_args.yaml").unlink()
    assert read_provenance(str(board_run)).layers == [
        ("llamaboard_config.yaml", {"template": "qwen3", "enable_thinking": False})
    ]


def test_repair_without_template_on_a_llamaboard_run_dir(board_run, capsys):
    assert cli_main(["repair", str(board_run)]) == 0
    out, err = capsys.readouterr()
    assert "for LF template 'qwen3'" in out and "warning" not in err
    report = json.loads((board_run / "alignment_report.json").read_text())
    assert report["options_provenance"]["template"] == "'qwen3' (training_args.yaml)"
    assert report["options_provenance"]["enable_thinking"] == "false (training_args.yaml)"
    assert report["summary"]["differs"] == 0
    serving = (board_run / "SERVING.md").read_text()
    assert "- `enable_thinking`: false (training_args.yaml)" in serving
    # the compiled template renders training's mode (the empty thought) when no kwarg says otherwise
    jinja = (board_run / "chat_template.jinja").read_text()
    assert "enable_thinking is defined" in jinja
    # Issue 13 item 2: check keeps training's mode without the kwarg (exit 0) and says what the flipped request gets
    assert cli_main(["check", str(board_run), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["summary"]["differs"] == 0 and data["options_provenance"]["enable_thinking"] == "false (training_args.yaml)"
    thinking = data["thinking"]
    assert thinking["trained"] is False and thinking["verdict"] == "not what training saw" and thinking["differ"] > 0
    assert cli_main(["check", str(board_run)]) == 0
    out, _ = capsys.readouterr()
    assert 'A request with chat_template_kwargs {"enable_thinking": true}: not what training saw' in out
    # the same request through the dataset/kwargs path is a difference (exit 1), not a pass
    assert cli_main(["check", str(board_run), "--chat-template-kwargs", '{"enable_thinking": true}']) == 1
    out, _ = capsys.readouterr()
    assert "requests with enable_thinking=true get a prompt that is not what training saw (enable_thinking=false, " in out
    # a contradicting --template: a warning naming both values; --override-training: none
    assert cli_main(["repair", str(board_run), "--template", "qwen3_nothink", "--dry-run"]) == 0
    _, err = capsys.readouterr()
    assert "template='qwen3_nothink' (command line) differs from what training used (template='qwen3', training_args.yaml)" in err
    assert cli_main(["repair", str(board_run), "--template", "qwen3_nothink", "--dry-run", "--override-training"]) == 0
    _, err = capsys.readouterr()
    assert "differs from what training used" not in err


def test_nothing_recorded_names_lfs_pick_and_asks_for_template(tmp_path, capsys):
    d = tmp_path / "Qwen3-4B"
    shutil.copytree(QWEN3, d)
    assert cli_main(["repair", str(d)]) == 2
    _, err = capsys.readouterr()
    assert "no LF template given" in err and "LF itself would pick template 'qwen3'" in err and "--template" in err


def test_export_takes_only_the_keys_written_in_the_raw_arguments():
    """The hook's half of the rule: LF's parsed DataArguments hold a value for every option (LF's defaults
    included), so only the keys read_args saw in the YAML/CLI count as given."""
    from types import SimpleNamespace

    from lf_template_ext.lf.plugin.export import export_options
    from lf_template_ext.lf.plugin.hook import given_keys

    assert given_keys({"template": "qwen3", "export_dir": "x", "enable_thinking": True}) == {"template", "enable_thinking"}
    assert given_keys(["--template", "qwen3", "--enable_thinking=false", "--export_dir", "x"]) == {"template", "enable_thinking"}
    parsed = SimpleNamespace(template="qwen3", default_system=None, tool_format=None, enable_thinking=True,
                             preserve_thinking=False, mask_history=False)  # fmt: skip
    trained = [("training record", {"template": "qwen3", "enable_thinking": False, "mask_history": True})]
    p = export_options(parsed, frozenset({"template"}), trained)
    assert p.options == TemplateOptions(enable_thinking=False, mask_history=True) and not p.conflicts
    assert p.sources["enable_thinking"] == "training record" and p.sources["template"] == "export arguments"
    p = export_options(parsed, frozenset({"template", "enable_thinking"}), trained)
    assert p.options.enable_thinking is True and [c.key for c in p.conflicts] == ["enable_thinking"]
    # nothing recorded: LF's parsed values are what the user ran with
    assert export_options(parsed, frozenset({"template"}), []).options == TemplateOptions()
