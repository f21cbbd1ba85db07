"""Issue 16, "everything we write is right the first time": what a new user meets on the first day.

Each test names the finding of the issue it keeps fixed. Real inputs only: the fixture tokenizers
(Llama-3.1, Qwen2.5, Qwen3), real LF, and LMDeploy's own code for the LMDeploy measurement.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from harness import FIXTURES

REPO = Path(__file__).resolve().parents[1]
LLAMA31 = "meta-llama--Meta-Llama-3.1-8B-Instruct"
QWEN25 = "Qwen--Qwen2.5-1.5B-Instruct"
QWEN3 = "Qwen--Qwen3-4B"


def cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lf_template_ext.cli.main", *args], capture_output=True, text=True, cwd=cwd)


EXAMPLES = REPO / "docs" / "serving-examples"


def same_as_example(serving: Path, name: str, tmp_path: Path) -> None:
    """docs/serving-examples/NAME is this SERVING.md with the test's temporary paths written as /models
    (`LF_TEMPLATE_EXT_WRITE_EXAMPLES=1 pytest tests/test_first_day.py` rewrites them)."""
    text = serving.read_text(encoding="utf-8").replace(str(tmp_path), "/models")
    path = EXAMPLES / name
    if os.environ.get("LF_TEMPLATE_EXT_WRITE_EXAMPLES") == "1":
        EXAMPLES.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.read_text(encoding="utf-8") == text, f"{path} is stale: rerun with LF_TEMPLATE_EXT_WRITE_EXAMPLES=1"


def model_dir(tmp_path: Path, fixture: str, name: str = "merged", model_type: str = "llama") -> Path:
    """A model dir as LMDeploy and the engines read it: the fixture's tokenizer and a config.json (no weights:
    nothing here loads them)."""
    d = tmp_path / name
    shutil.copytree(FIXTURES / fixture, d)
    arch = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM"}[model_type]
    (d / "config.json").write_text(json.dumps({"model_type": model_type, "architectures": [arch]}))
    return d


# -- finding 1: one truth per engine (LMDeploy JSON that breaks the system prompt) ------------------------------


def test_lmdeploy_json_for_llama3_is_not_expressible_everywhere(tmp_path):
    """Finding 1: the system-prompt difference `check --engine lmdeploy --artifact` measures on llama3's JSON is
    what the engine registry decides on: emit exits 3, repair --engines writes no JSON, SERVING.md does not
    recommend one (and says why), the report records it."""
    d = model_dir(tmp_path, LLAMA31)
    # the measurement: the JSON the compiler can still build renders a system prompt bare (exit 1)
    from harness import fixture_tokenizer

    from lf_template_ext.compiler import lmdeploy
    from lf_template_ext.lf import compat as lf_compat
    from lf_template_ext.model.options import TemplateOptions

    snap = lf_compat.snapshot("llama3", fixture_tokenizer(LLAMA31), TemplateOptions())
    config = lmdeploy.chat_template_config(snap.spec, snap.facts, model_name="merged", tokenizer_adds_bos=True)
    artifact = tmp_path / "llama3_lmdeploy.json"
    artifact.write_text(json.dumps(config))
    measured = cli("check", str(d), "--template", "llama3", "--engine", "lmdeploy", "--artifact", str(artifact))
    assert measured.returncode == 1, measured.stdout + measured.stderr
    assert "training '<|begin_of_text|><|start_header_id|>system" in measured.stdout

    emitted = cli("emit", str(d), "--template", "llama3", "--engine", "lmdeploy")
    assert emitted.returncode == 3, emitted.stderr
    assert "system" in emitted.stderr and "--chat-template hf" in emitted.stderr
    assert not (d / "lmdeploy_chat_template.json").exists()

    repaired = cli("repair", str(d), "--template", "llama3", "--engines", "vllm,lmdeploy")
    assert repaired.returncode == 0, repaired.stderr
    assert "lmdeploy: lmdeploy_chat_template.json not written" in repaired.stderr
    assert not (d / "lmdeploy_chat_template.json").exists()
    serving = (d / "SERVING.md").read_text()
    lmdeploy_part = serving.split("## LMDeploy")[1].split("## Ollama")[0]
    assert "--chat-template hf" in lmdeploy_part and "lmdeploy_chat_template.json" not in lmdeploy_part
    assert "is not written for this template: system messages" in lmdeploy_part
    report = json.loads((d / "alignment_report.json").read_text())
    assert report["engines"]["lmdeploy"]["expressible"] is False and "system" in report["engines"]["lmdeploy"]["reason"]


def test_lmdeploy_json_with_caveats_shows_them_everywhere(tmp_path):
    """Finding 1: an expressible JSON (qwen: default system) is written; what it drops (tools) is a caveat in
    emit's output, SERVING.md and the report."""
    d = model_dir(tmp_path, QWEN25, model_type="qwen2")
    repaired = cli("repair", str(d), "--template", "qwen", "--engines", "vllm,lmdeploy")
    assert repaired.returncode == 0, repaired.stderr
    assert "lmdeploy: caveat: tools:" in repaired.stderr
    serving = (d / "SERVING.md").read_text()
    lmdeploy_part = serving.split("## LMDeploy")[1].split("## Ollama")[0]
    assert "--chat-template " + str(d / "lmdeploy_chat_template.json") in lmdeploy_part
    assert "What the JSON chat template does not reproduce:" in lmdeploy_part and "- tools:" in lmdeploy_part
    report = json.loads((d / "alignment_report.json").read_text())
    assert report["engines"]["lmdeploy"] == {
        "file": "lmdeploy_chat_template.json", "present": True, "expressible": True,
        "caveats": report["engines"]["lmdeploy"]["caveats"], "reason": None,
    }  # fmt: skip
    assert any(c.startswith("tools:") for c in report["engines"]["lmdeploy"]["caveats"])

    emitted = cli("emit", str(d), "--template", "qwen", "--engine", "lmdeploy", "--output", "-")
    assert emitted.returncode == 0, emitted.stderr
    assert "caveat: tools:" in emitted.stderr


# -- finding 2: SERVING.md for a LoRA adapter dir ---------------------------------------------------------------


def adapter_dir(tmp_path: Path, fixture: str, base: Path, name: str = "lora-sft") -> Path:
    """An LF LoRA output dir as LF saves it: adapter_config.json (PEFT's keys) and the tokenizer files."""
    d = tmp_path / name
    d.mkdir()
    for f in (FIXTURES / fixture).iterdir():
        if f.is_file() and f.name != "LICENSE":
            shutil.copy(f, d / f.name)
    (d / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "base_model_name_or_path": str(base), "r": 8, "lora_alpha": 16,
        "target_modules": ["q_proj", "v_proj"], "task_type": "CAUSAL_LM",
    }))  # fmt: skip
    return d


def _section(text: str, title: str) -> str:
    return text.split(f"## {title}")[1].split("\n## ")[0]


def test_serving_md_for_a_lora_adapter_loads_the_base_with_each_engines_lora_option(tmp_path):
    """Finding 2: every engine gets the base model plus its own LoRA mechanism (or "merge first")."""
    base = model_dir(tmp_path, QWEN25, name="Qwen2.5-base", model_type="qwen2")
    d = adapter_dir(tmp_path, QWEN25, base)
    proc = cli("repair", str(d), "--template", "qwen", "--engines", "vllm,ollama,lmdeploy")
    assert proc.returncode == 0, proc.stderr
    text = (d / "SERVING.md").read_text()
    assert "LoRA adapter dir" in text
    assert f"vllm serve {base} --enable-lora --lora-modules lf={d}" in _section(text, "vLLM")
    sglang = _section(text, "SGLang")
    assert f"--model-path {base} --enable-lora" in sglang and f"--lora-paths lf={d}" in sglang
    assert f"--model-path {d}" not in sglang
    lmdeploy = _section(text, "LMDeploy")
    assert f"api_server {base} --backend pytorch --adapters lf={d}" in lmdeploy
    assert f"--chat-template {d / 'lmdeploy_chat_template.json'}" in lmdeploy and f"api_server {d}" not in lmdeploy
    llama = _section(text, "llama.cpp")
    assert f"convert_hf_to_gguf.py {base}" in llama and f"convert_lora_to_gguf.py {d} --base {base}" in llama
    assert "--lora adapter.gguf" in llama and f"convert_hf_to_gguf.py {d}" not in llama
    modelfile = (d / "Modelfile").read_text().splitlines()
    assert f"FROM {base}" in modelfile and "ADAPTER ." in modelfile
    same_as_example(d / "SERVING.md", "lora-adapter-qwen.md", tmp_path)
    # a template LMDeploy's JSON cannot express: merge first (its `--chat-template hf` would be the base's)
    lbase = model_dir(tmp_path, LLAMA31, name="Llama-base")
    ld = adapter_dir(tmp_path, LLAMA31, lbase, name="llama-lora")
    proc = cli("repair", str(ld), "--template", "llama3", "--engines", "vllm,lmdeploy")
    assert proc.returncode == 0, proc.stderr
    lmdeploy = _section((ld / "SERVING.md").read_text(), "LMDeploy")
    assert "Merge first" in lmdeploy and "api_server" not in lmdeploy


# -- findings 5, 7, 10: Modelfile FROM, context length, SERVING.md as the dir is ----------------------------------


def test_emit_modelfile_elsewhere_points_from_at_the_model_dir(tmp_path):
    """Finding 5: `emit --output out/Modelfile` writes FROM <absolute model dir>; the printed hint works from
    anywhere (it changes into the Modelfile's dir, whose FROM is absolute)."""
    d = model_dir(tmp_path, QWEN25, model_type="qwen2")
    out = tmp_path / "out"
    out.mkdir()
    proc = cli("emit", "merged", "--template", "qwen", "--engine", "ollama", "--output", "out/Modelfile", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"FROM {d}" in (out / "Modelfile").read_text().splitlines()
    assert f"serve: cd {out} && ollama create my-model -f Modelfile" in proc.stdout


def test_serving_context_is_not_capped_at_cutoff_len_unless_asked(tmp_path):
    """Finding 7: training's cutoff_len is explained, never used as --max-model-len / -c / num_ctx; an
    explicit --max-model-len (or template_ext_serve_max_len) is."""
    d = model_dir(tmp_path, LLAMA31)
    (d / "lf_template_ext.json").write_text(json.dumps({"template": "llama3", "options": {}, "cutoff_len": 512}))
    proc = cli("repair", str(d), "--engines", "vllm,ollama")
    assert proc.returncode == 0, proc.stderr
    text = (d / "SERVING.md").read_text()
    assert "--max-model-len" not in text.replace("--max-model-len N", "") and " -c " not in text
    assert "--context-length" not in text and "PARAMETER num_ctx" not in (d / "Modelfile").read_text()
    assert "`cutoff_len: 512` only truncated training samples" in text
    yaml_path = tmp_path / "train.yaml"
    yaml_path.write_text("template: llama3\ncutoff_len: 512\ntemplate_ext_serve_max_len: 8192\n")
    proc = cli("repair", str(d), "--config", str(yaml_path), "--engines", "vllm,ollama")
    assert proc.returncode == 0, proc.stderr
    text = (d / "SERVING.md").read_text()
    assert "--max-model-len 8192" in text and "-c 8192" in text and "--context-length 8192" in text
    assert "PARAMETER num_ctx 8192" in (d / "Modelfile").read_text()
    proc = cli("emit", str(d), "--template", "llama3", "--engine", "ollama", "--max-model-len", "16384", "--output", "-")
    assert proc.returncode == 0 and "PARAMETER num_ctx 16384" in proc.stdout


def test_emit_regenerates_serving_md_and_report_and_thinking_only_for_reasoning(tmp_path):
    """Finding 10: `emit` into a repaired dir regenerates SERVING.md and alignment_report.json (the Modelfile
    is then recommended and reported); "Thinking on/off" only for reasoning templates; LMDeploy's HF-template
    command carries `--chat-template hf`."""
    d = model_dir(tmp_path, LLAMA31)
    assert cli("repair", str(d), "--template", "llama3").returncode == 0
    before = (d / "SERVING.md").read_text()
    assert "Run `lf-template emit" in _section(before, "Ollama")
    assert "Thinking" not in before and "chat-template-kwargs" not in before
    assert f"lmdeploy serve api_server {d} --chat-template hf" in before
    proc = cli("emit", str(d), "--template", "llama3", "--engine", "ollama")
    assert proc.returncode == 0, proc.stderr
    after = (d / "SERVING.md").read_text()
    assert f"cd {d} && ollama create my-model -f Modelfile" in _section(after, "Ollama")
    report = json.loads((d / "alignment_report.json").read_text())
    assert report["engines"]["ollama"]["present"] is True and report["summary"]["differs"] == 0
    same_as_example(d / "SERVING.md", "merged-llama3.md", tmp_path)
    # Issue 13 item 2, thinking served as trained: qwen3 trained with thinking on vs off
    q = model_dir(tmp_path, QWEN3, name="qwen3-merged", model_type="qwen3")
    assert cli("repair", str(q), "--template", "qwen3").returncode == 0
    on = (q / "SERVING.md").read_text()
    assert "--reasoning-parser qwen3 \\\n    --default-chat-template-kwargs '{\"enable_thinking\": true}'" in on
    assert "- `enable_thinking`: true (LF default)" in on
    same_as_example(q / "SERVING.md", "merged-qwen3-thinking-on.md", tmp_path)
    q = model_dir(tmp_path, QWEN3, name="qwen3-nothink-merged", model_type="qwen3")
    assert cli("repair", str(q), "--template", "qwen3", "--enable-thinking", "false").returncode == 0
    off = (q / "SERVING.md").read_text()
    assert "--reasoning-parser" not in _section(off, "SGLang").split("```")[1]
    assert "--reasoning-parser qwen3" not in off and "No `--reasoning-parser`: trained with thinking off" in off
    assert "--default-chat-template-kwargs '{\"enable_thinking\": false}'" in _section(off, "vLLM")
    assert "Ollama refuses `think: true`" in _section(off, "Ollama")
    same_as_example(q / "SERVING.md", "merged-qwen3-thinking-off.md", tmp_path)


# -- finding 6: --dataset FILE without a dataset_info.json entry --------------------------------------------------


def test_dataset_file_columns_come_from_every_row_and_unreadable_rows_fail(tmp_path):
    """Finding 6: a first row without `system` no longer drops the column for the whole file (the mapping is
    printed), and a row LF cannot encode makes the check fail unless --allow-skipped."""
    d = model_dir(tmp_path, QWEN25, model_type="qwen2")
    assert cli("repair", str(d), "--template", "qwen").returncode == 0
    turn = [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]
    rows = [{"conversations": turn}, {"system": "You are terse.", "conversations": turn}]
    data = tmp_path / "my_sft.json"
    data.write_text(json.dumps(rows))
    proc = cli("check", str(d), "--template", "qwen", "--dataset", str(data))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert '"columns": {"messages": "conversations", "system": "system"}' in proc.stderr  # the mapping, printed
    data.write_text(json.dumps(rows + [{"conversations": [{"from": "human", "value": 5}, turn[1]]}]))
    proc = cli("check", str(d), "--template", "qwen", "--dataset", str(data), "--report", str(tmp_path / "r.json"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "1 row(s) LF cannot read or encode" in proc.stdout and "--allow-skipped" in proc.stdout
    assert json.loads((tmp_path / "r.json").read_text())["dataset"]["unreadable"] == 1
    allowed = cli("check", str(d), "--template", "qwen", "--dataset", str(data), "--allow-skipped")
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr


# -- finding 11: the smaller ones --------------------------------------------------------------------------------


def test_dry_run_prints_a_short_summary_and_jinja_output_names_missed_stop_ids(tmp_path):
    """Finding 11: `repair --dry-run` says what would change in a few lines (the template is not printed);
    `jinja --output` names the stop ids `vllm serve --chat-template` alone would miss (Llama-3.1's 128008)."""
    d = model_dir(tmp_path, LLAMA31)
    proc = cli("repair", str(d), "--template", "llama3", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"would change 5 file(s) in {d}:" and lines[-1].startswith("nothing written")
    assert len(lines) == 7 and "  modify  tokenizer_config.json (+" in proc.stdout
    assert not (d / "SERVING.md").exists()
    out = tmp_path / "llama3_lf.jinja"
    proc = cli("jinja", "--template", "llama3", "--tokenizer", str(d), "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "misses [128008]" in proc.stderr and '"stop_token_ids": [128008]' in proc.stderr


def test_boundary_only_cases_show_the_token_split_and_the_report_has_stop_ids(tmp_path):
    """Finding 10: a boundary-only case renders the same text on both sides, so its line shows each side's
    tokens from the divergence on; alignment_report.json carries the stop ids (as `check --json` does)."""
    d = model_dir(tmp_path, LLAMA31)
    proc = cli("repair", str(d), "--template", "llama3")
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stdout.splitlines() if x.lstrip().startswith("boundary-only"))
    assert line.endswith(
        "at token 13: training '\\n\\n' + '\\n\\n' + 'Answer' + ' after' | engine '\\n\\n\\n\\n' + 'Answer' + ' after' + ' blank'"
    ), line
    report = json.loads((d / "alignment_report.json").read_text())
    assert report["stop_ids"] == {"template": [128009, 128008], "engine": [128009, 128008], "missing": []}
    diff = next(c["first_diff"] for c in report["cases"] if c["status"] == "boundary_only")
    assert diff["expected_tokens"][:2] == ["\n\n", "\n\n"] and diff["actual_tokens"][0] == "\n\n\n\n"


def test_check_groups_cases_by_cause(tmp_path):
    """Finding 11: `check` printed one DIFFERS line per probe case (28 for Llama-3.1's own template vs LF's
    llama3, one cause: the date header); cases diverging at the same tokens are now one group with a count."""
    d = model_dir(tmp_path, LLAMA31)
    proc = cli("check", str(d), "--template", "llama3")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = [x for x in proc.stdout.splitlines() if x.lstrip().startswith("DIFFERS")]
    assert sum(int(x.split()[1]) if x.split()[1].isdigit() else 1 for x in lines) == 28
    assert len(lines) <= 7, lines
    assert any(x.startswith("  DIFFERS       10 cases: plain/full, plain/gen,") and "and 6 more  at token 2 (plain/full)" in x for x in lines)
    assert "summary: 0 identical, 0 boundary-only, 28 differ, 0 unsupported" in proc.stdout


def test_jinja_config_takes_the_tokenizer_from_the_yaml(tmp_path):
    """Finding 11: `jinja --config TRAIN.yaml` without --tokenizer loads the YAML's model_name_or_path (LF's
    tokenizer); with neither, exit 2 naming both ways."""
    d = model_dir(tmp_path, QWEN25, model_type="qwen2")
    cfg = tmp_path / "train.yaml"
    cfg.write_text(f"model_name_or_path: {d}\ntemplate: qwen\ndefault_system: Be brief.\n")
    proc = cli("jinja", "--config", str(cfg))
    assert proc.returncode == 0, proc.stderr
    given = cli("jinja", "--config", str(cfg), "--tokenizer", str(d))
    assert proc.stdout == given.stdout and '"Be brief."' in proc.stdout
    proc = cli("jinja", "--template", "qwen")
    assert proc.returncode == 2 and "--tokenizer DIR" in proc.stderr and "model_name_or_path" in proc.stderr, proc.stderr


def test_workers_default_by_size():
    """Finding 11: `--workers 2` was slower than 1 on small datasets (pool start-up); the default follows the size."""
    from lf_template_ext.cli.check_cmd import AUTO_WORKERS_MIN_ROWS, auto_workers

    assert auto_workers(None, 500) == 1 and auto_workers(None, AUTO_WORKERS_MIN_ROWS - 1) == 1
    assert auto_workers(None, AUTO_WORKERS_MIN_ROWS) == min(os.cpu_count() or 1, 4)
    assert auto_workers(None, None) == min(os.cpu_count() or 1, 4)  # a JSON-lines file too large to parse up front
    assert auto_workers(3, 10) == 3  # as given


# -- finding 4: a model trained with `template: native` ------------------------------------------------------------


def test_repair_template_native_keeps_the_template_and_emit_says_there_is_nothing_to_compile(tmp_path):
    """Finding 4 (CLI side; the training side is tests/test_hook.py): `repair --template native` used to fail
    with "NativeTemplate overrides encode_multiturn"; it keeps the model's template, writes the stop ids, the
    native SERVING.md and native mode's check as the report. `emit`/`jinja` have no LF template to compile:
    exit 3 with the reason."""
    from lf_template_ext.modeldir.files import read_chat_template

    d = model_dir(tmp_path, QWEN25, model_type="qwen2")
    own = read_chat_template(str(d))[0]
    proc = cli("repair", str(d), "--template", "native")
    assert proc.returncode == 0, proc.stderr
    assert f"repaired {d} for LF template 'native' (keep-native):" in proc.stdout
    assert read_chat_template(str(d))[0] == own
    assert json.loads((d / "generation_config.json").read_text())["eos_token_id"] == [151645]
    serving = (d / "SERVING.md").read_text()
    assert f"vllm serve {d} --generation-config {d}\n" in serving and "--chat-template hf" in serving
    report = json.loads((d / "alignment_report.json").read_text())
    assert report["template"] == "native" and report["summary"]["identical"] == 11
    for cmd in (["emit", str(d), "--template", "native", "--engine", "ollama"], ["jinja", "--template", "native", "--tokenizer", str(d)]):
        proc = cli(*cmd)
        assert proc.returncode == 3 and "no LF template to compile" in proc.stderr, proc.stderr
