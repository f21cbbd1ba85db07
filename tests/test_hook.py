"""The enable switch: the installed .pth, LF module patches, YAML keys, child processes,
and the train-time record written by a real (tiny) `llamafactory-cli train`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from tiny_models import QWEN25, build_tiny_model, write_yaml

TESTS = Path(__file__).resolve().parent


def py(code: str, *, enabled: object = None, cwd: Path | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("LF_TEMPLATE_EXT", None)
    if enabled is not None:
        env["LF_TEMPLATE_EXT"] = str(enabled)
    # run outside the repo so the *installed* package (and its .pth) is what loads
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=cwd or "/", timeout=timeout)


def test_pth_is_installed_at_site_packages_root():
    pth = Path(sysconfig.get_paths()["purelib"]) / "lf_template_ext.pth"
    assert pth.is_file(), "the wheel must install lf_template_ext.pth next to the packages"
    line = pth.read_text().strip()
    assert line.startswith("import os, sys;") and "LF_TEMPLATE_EXT" in line and "\n" not in line


@pytest.mark.parametrize("value, on", [(None, False), ("0", False), ("false", False), ("1", True), ("TRUE", True), ("y", True)])
def test_switch_follows_lf_is_env_enabled(value, on):
    code = (
        "import sys; loaded = 'lf_template_ext' in sys.modules;"
        "finder = any(type(f).__name__ == '_Finder' for f in sys.meta_path);"
        "heavy = [m for m in ('torch', 'transformers', 'llamafactory') if m in sys.modules];"
        "print(loaded, finder, heavy)"
    )
    proc = py(code, enabled=value)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"{on} {on} []"  # disabled: nothing imported; enabled: hook only


def test_yaml_keys_are_stripped_before_lf_parses(tmp_path):
    code = (
        "from llamafactory.hparams import get_infer_args\n"
        "args = {'model_name_or_path': %r, 'template': 'qwen', 'template_ext_mode': 'keep-native',"
        " 'template_ext_engines': ['vllm', 'ollama']}\n"
        "try:\n    get_infer_args(args)\nexcept ValueError as e:\n    print('REJECTED', e)\nelse:\n"
        "    from lf_template_ext.lf.plugin import hook; print('OPTIONS', sorted(hook.OPTIONS.items()))\n"
    ) % str(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    on = py(code, enabled="1")
    assert "OPTIONS [('template_ext_engines', ['vllm', 'ollama']), ('template_ext_mode', 'keep-native')]" in on.stdout, on.stderr[-2000:]
    off = py(code, enabled="0")
    assert "REJECTED" in off.stdout and "template_ext_mode" in off.stdout  # stock LF refuses unknown keys


def test_extension_keys_without_the_switch_say_how_to_turn_it_on(tmp_path):
    """Issue 16 finding 11: with the switch off, LF refuses `template_ext_*` keys with its argument parser's
    error; the .pth (importing nothing) adds the one line that says what to do."""
    (tmp_path / "config.json").write_text("{}")
    cfg = write_yaml(
        tmp_path / "train.yaml",
        {"model_name_or_path": str(tmp_path), "stage": "sft", "do_train": True, "template": "qwen",
         "output_dir": str(tmp_path / "out"), "template_ext_engines": ["vllm"]},
    )  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "LF_TEMPLATE_EXT"}
    env.update(HF_HUB_OFFLINE="1", CUDA_VISIBLE_DEVICES="", FORCE_TORCHRUN="0")
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "llamafactory-cli"), "train", str(cfg)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600,
    )
    assert proc.returncode != 0
    assert "template_ext_engines" in proc.stderr, proc.stderr[-2000:]  # LF's own error stays
    assert proc.stderr.rstrip().endswith(
        "[lf-template-ext] template_ext_* keys are read only with the switch on: run with LF_TEMPLATE_EXT=1 "
        "(e.g. LF_TEMPLATE_EXT=1 llamafactory-cli train config.yaml)"
    ), proc.stderr[-2000:]


def test_lf_modules_are_patched_when_they_load():
    code = (
        "import llamafactory.train.tuner as t, llamafactory.data as d, llamafactory.data.template as tm\n"
        "print(getattr(t.export_model, '_lf_template_ext', False), getattr(t.run_exp, '_lf_template_ext', False),"
        " getattr(d.get_template_and_fix_tokenizer, '_lf_template_ext', False),"
        " getattr(tm.Template.get_ollama_modelfile, '_lf_template_ext', False))\n"
        "import llamafactory.train.sft.workflow as w\n"
        "print(w.get_template_and_fix_tokenizer is d.get_template_and_fix_tokenizer)\n"
        "print(getattr(t.get_train_args, '_lf_template_ext', False))\n"  # the run's media arguments (issue 12)
    )
    on = py(code, enabled="1")
    assert on.stdout.split() == ["True", "True", "True", "True", "True", "True"], on.stderr[-2000:]
    off = py(code, enabled="0")
    assert off.stdout.split()[:4] == ["False", "False", "False", "False"] and off.stdout.split()[-1] == "False"


def test_child_processes_and_webui_export_are_patched():
    """torchrun re-executes llamafactory/launcher.py and the WebUI binds export_model at import: both patched."""
    code = (
        "import subprocess, sys\n"
        "child = subprocess.run([sys.executable, '-c', 'import llamafactory.launcher, llamafactory.train.tuner as t;"
        " print(getattr(t.run_exp, \"_lf_template_ext\", False))'], capture_output=True, text=True)\n"
        "print('child', child.stdout.strip())\n"
        "import llamafactory.webui.components.export as e\n"
        "print('webui', getattr(e.export_model, '_lf_template_ext', False))\n"
    )
    proc = py(code, enabled="1")
    assert "child True" in proc.stdout and "webui True" in proc.stdout, proc.stderr[-2000:]


def _train(tmp_path: Path, **overrides) -> tuple[Path, subprocess.CompletedProcess]:
    """A real `llamafactory-cli train` (2 steps, a checkpoint at each) of a tiny Qwen2.5 with the switch on."""
    base = build_tiny_model(tmp_path / "base", QWEN25)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    samples = [
        {"conversations": [{"from": "human", "value": f"Question {i}?"}, {"from": "gpt", "value": f"Answer {i}."}]}
        for i in range(8)
    ]
    (data_dir / "tiny.json").write_text(json.dumps(samples))
    (data_dir / "dataset_info.json").write_text(
        json.dumps({"tiny": {"file_name": "tiny.json", "formatting": "sharegpt"}})
    )
    out = tmp_path / "saves"
    config = {
        "model_name_or_path": str(base), "stage": "sft", "do_train": True, "finetuning_type": "lora",
        "lora_target": "all", "dataset": "tiny", "dataset_dir": str(data_dir), "template": "qwen",
        "cutoff_len": 64, "output_dir": str(out), "per_device_train_batch_size": 2, "max_steps": 2,
        "save_steps": 1, "logging_steps": 1, "overwrite_output_dir": True, "report_to": "none",
    }
    config.update(overrides)
    cfg = write_yaml(tmp_path / "train.yaml", config)
    env = dict(os.environ, LF_TEMPLATE_EXT="1", HF_HUB_OFFLINE="1", CUDA_VISIBLE_DEVICES="", FORCE_TORCHRUN="0")
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "llamafactory-cli"), "train", str(cfg)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=1200,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out, proc


def _check(model_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lf_template_ext.cli.main", "check", str(model_dir)], capture_output=True, text=True
    )


def _summary(proc: subprocess.CompletedProcess) -> list[str]:
    """The hook's last three lines on stderr."""
    return [line for line in proc.stderr.splitlines() if line.startswith("[lf-template-ext]")][-3:]


@pytest.mark.slow
def test_training_writes_the_record_and_fixes_checkpoints(tmp_path):
    out, proc = _train(tmp_path, default_system="Be brief.", template_ext_engines=["vllm"])
    record = json.loads((out / "lf_template_ext.json").read_text())
    assert record["template"] == "qwen" and record["cutoff_len"] == 64
    assert record["options"]["default_system"] == "Be brief." and record["source"] == "train"
    ckpt = out / "checkpoint-1"
    assert json.loads((ckpt / "lf_template_ext.json").read_text())["template"] == "qwen"
    jinja = (ckpt / "chat_template.jinja").read_text()
    assert jinja.startswith("{#- Generated by lf-template-ext") and '"Be brief."' in jinja
    serving = (ckpt / "SERVING.md").read_text()  # a LoRA checkpoint: the base model + this adapter, per engine
    assert serving.count("--lora-modules lf=") == 1 and serving.count("--lora-paths lf=") == 1
    # and the commands default to the record: no --template needed, and check agrees
    check = _check(ckpt)
    assert check.returncode == 0, check.stdout + check.stderr
    # the final output_dir (saved after training ends) gets the same: template, SERVING.md, generation config
    assert (out / "chat_template.jinja").read_text() == jinja
    assert (out / "SERVING.md").read_text().count("--lora-modules lf=") == 1
    assert json.loads((out / "generation_config.json").read_text())["eos_token_id"] == [151645]
    check = _check(out)
    assert check.returncode == 0, check.stdout + check.stderr
    # and the console says what was done, the alignment and what to run next
    tail = _summary(proc)
    assert f"{out}: served as LF template 'qwen' (fix): " in tail[0] and "; 2 checkpoint(s) fixed" in tail[0], tail
    assert " 0 differ: engines render what training saw" in tail[1], tail
    assert f"{out / 'SERVING.md'}" in tail[2] and f"`lf-template check {out}`" in tail[2], tail


@pytest.mark.slow
def test_native_full_fine_tune_fixes_checkpoints_and_output_dir(tmp_path):
    """`template: native`, full fine-tune: every checkpoint and the final model get the record, the stop ids
    engines read and a SERVING.md; the model's own template stays (it is what training saw)."""
    out, proc = _train(tmp_path, template="native", finetuning_type="full")
    assert "failed" not in proc.stderr, proc.stderr[-3000:]
    from lf_template_ext.model.corpus import probe_corpus
    from lf_template_ext.modeldir.files import read_chat_template

    own = read_chat_template(str(tmp_path / "base"))[0]
    probes = [c["id"] for c in probe_corpus() if "enable_thinking" not in c]
    for d in (out / "checkpoint-1", out / "checkpoint-2", out):
        assert json.loads((d / "lf_template_ext.json").read_text())["template"] == "native", d
        assert json.loads((d / "generation_config.json").read_text())["eos_token_id"] == [151645], d
        serving = (d / "SERVING.md").read_text()
        assert "trained with `template: native`" in serving and f"vllm serve {d} --generation-config {d}" in serving
        assert read_chat_template(str(d))[0] == own and own, d
        # the report is native mode's check: training's examples vs the dir's template, the same as `check` says;
        # the one probe that differs is the answer after blank lines ("\n" + "\n\n" merge in whole tokenization)
        report = json.loads((d / "alignment_report.json").read_text())
        assert report["template"] == "native" and report["summary"]["identical"] == 11, report["summary"]
        assert [probes[int(c["id"].split("#")[1])] for c in report["cases"]] == ["whitespace"], report["cases"]
        check = _check(d)
        assert check.returncode == 1 and "11 identical, 0 boundary-only, 1 differ" in check.stdout, check.stdout
    tail = _summary(proc)
    assert f"{out}: served as LF template 'native' (keep-native): " in tail[0] and "2 checkpoint(s) fixed" in tail[0], tail
    assert tail[1].endswith(" 1 differ: NOT aligned on probe corpus#6: see alignment_report.json"), tail
