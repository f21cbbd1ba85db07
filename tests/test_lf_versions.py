"""Versions by proof (docs/lf-versions.md): an untested LF and an unknown Template class go through the gate.

The installed LF 0.9.5 package is copied (``test_compat_094._overlay``) with its version string set to
0.9.7, so it is an untested version with known code: exact templates are written with the one-line
notice; with ``Template._encode`` altered in the copy, the compiled template no longer matches and the
gate refuses with the first divergence (exit 3, nothing written). In the same copy, Template subclasses
appended to ``data/template.py`` show the class rule; with a renamed method the adapter refuses naming it.
Each case runs in a subprocess so this process keeps 0.9.5.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from harness import FIXTURES
from test_compat_094 import REPO, TESTS, _overlay

from lf_template_ext.model.corpus import probe_corpus

QWEN3 = "Qwen--Qwen3-4B"
QWEN25 = "Qwen--Qwen2.5-1.5B-Instruct"

SUBCLASSES = '''

@dataclass
class SameTemplate(Template):
    @override
    def _encode(self, tokenizer, messages, system, tools):
        return super()._encode(tokenizer, messages, system, tools)


@dataclass
class ShoutingTemplate(Template):
    @override
    def _encode(self, tokenizer, messages, system, tools):
        messages = [dict(m, content=m["content"].upper()) if m["role"] == "user" else m for m in messages]
        return super()._encode(tokenizer, messages, system, tools)


for _name, _cls in (("qwen_same", SameTemplate), ("qwen_shouting", ShoutingTemplate)):
    _t = TEMPLATES["qwen"]
    register_template(
        name=_name, format_user=_t.format_user, format_assistant=_t.format_assistant, format_system=_t.format_system,
        format_function=_t.format_function, format_observation=_t.format_observation, format_tools=_t.format_tools,
        default_system=_t.default_system, stop_words=_t.stop_words, replace_eos=True, template_class=_cls,
    )
'''


def _cli(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), str(TESTS), str(REPO)]), DISABLE_VERSION_CHECK="1")
    return subprocess.run(
        [sys.executable, "-m", "lf_template_ext.cli.main", *args], capture_output=True, text=True, env=env, timeout=600
    )


def _tree(d: Path) -> dict[str, str]:
    return {str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.rglob("*")) if p.is_file()}


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.mark.slow
def test_untested_version_exact_template_is_written_with_one_notice(tmp_path):
    root = _overlay(tmp_path, "0.9.7", with_094_files=False)
    model = tmp_path / "model"
    shutil.copytree(FIXTURES / QWEN3, model)
    proc = _cli(root, "repair", str(model), "--template", "qwen3")
    assert proc.returncode == 0, proc.stderr[-3000:]
    notices = [line for line in proc.stderr.splitlines() if "(untested)" in line]
    assert len(notices) == 1, proc.stderr
    assert notices[0].startswith("lf-template-ext: LF 0.9.7 (untested): template qwen3 verified on ")
    assert notices[0].split("verified on ")[1].split(" probe cases, ")[1].startswith("0 differ")
    assert int(notices[0].split("verified on ")[1].split(" ")[0]) == 2 * len(probe_corpus())  # full + gen each
    assert "from LLaMA-Factory 0.9.7 template 'qwen3'" in (model / "chat_template.jinja").read_text(encoding="utf-8")


@pytest.mark.slow
def test_untested_version_with_altered_encoding_is_refused_with_the_first_divergence(tmp_path):
    root = _overlay(tmp_path, "0.9.7", with_094_files=False)
    # LF's encoding changes under the same slots: user messages are stripped (the probe's padded question)
    _edit(
        root / "llamafactory" / "data" / "template.py",
        'elements += self.format_user.apply(content=message["content"], idx=str(i // 2))',
        'elements += self.format_user.apply(content=message["content"].strip(), idx=str(i // 2))',
    )
    model = tmp_path / "model"
    shutil.copytree(FIXTURES / QWEN3, model)
    before = _tree(model)
    proc = _cli(root, "repair", str(model), "--template", "qwen3")
    assert proc.returncode == 3, proc.stderr[-3000:]
    assert "LF 0.9.7 (untested)" in proc.stderr and "first divergence: case " in proc.stderr, proc.stderr
    assert "LF encodes " in proc.stderr and "where the template renders" in proc.stderr
    assert _tree(model) == before, "a refused template must not write anything"
    jinja = _cli(root, "jinja", "--template", "qwen3", "--tokenizer", str(FIXTURES / QWEN3))
    assert jinja.returncode == 3 and jinja.stdout == "", jinja.stderr[-2000:]


@pytest.mark.slow
def test_unknown_template_class_is_proven_or_refused_by_name(tmp_path):
    root = _overlay(tmp_path, "0.9.5", with_094_files=False)  # a tested version: only the class needs proof
    (root / "llamafactory" / "data" / "template.py").open("a", encoding="utf-8").write(SUBCLASSES)
    tok = str(FIXTURES / QWEN25)
    same = _cli(root, "jinja", "--template", "qwen_same", "--tokenizer", tok)
    assert same.returncode == 0, same.stderr[-3000:]
    assert same.stderr.count("verified on ") == 1
    assert "template class SameTemplate overrides _encode (not known to the compiler)" in same.stderr
    assert "(untested)" not in same.stderr
    plain = _cli(root, "jinja", "--template", "qwen", "--tokenizer", tok)
    assert plain.returncode == 0 and plain.stderr == "", plain.stderr  # nothing to prove: no notice
    assert same.stdout.replace("'qwen_same'", "'qwen'") == plain.stdout  # compiled as its base class
    shouting = _cli(root, "jinja", "--template", "qwen_shouting", "--tokenizer", tok)
    assert shouting.returncode == 3, shouting.stderr[-3000:]
    assert "ShoutingTemplate overrides _encode" in shouting.stderr and "first divergence" in shouting.stderr


def test_adapter_refuses_naming_what_is_missing(tmp_path):
    root = _overlay(tmp_path, "0.9.7", with_094_files=False)
    tpl = root / "llamafactory" / "data" / "template.py"
    text = tpl.read_text(encoding="utf-8")
    tpl.write_text(text.replace("def encode_multiturn(", "def encode_conversation("), encoding="utf-8")
    proc = _cli(root, "jinja", "--template", "qwen", "--tokenizer", str(FIXTURES / QWEN25))
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "LLaMA-Factory 0.9.7 lacks what lf-template-ext calls: Template.encode_multiturn" in proc.stderr


def test_enable_switch_is_active_on_untested_versions_and_off_below_the_oldest(tmp_path):
    code = "from lf_template_ext.lf.plugin import hook\nprint('ACTIVE', hook._version_ok())\n"
    env_base = dict(os.environ, DISABLE_VERSION_CHECK="1")
    for version, active in (("0.9.7", True), ("0.9.3", False)):
        root = _overlay(tmp_path / version, version, with_094_files=False)
        env = dict(env_base, PYTHONPATH=os.pathsep.join([str(root), str(REPO)]))
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
        assert f"ACTIVE {active}" in proc.stdout, proc.stderr[-2000:]
        assert ("inactive: LLaMA-Factory 0.9.3 is not supported" in proc.stderr) == (not active), proc.stderr


@pytest.mark.slow
def test_a_dev_version_string_with_other_template_code_is_an_untested_snapshot(tmp_path):
    """LF's main keeps ``0.9.6.dev0`` across commits: other template code under that string needs proof."""
    root = _overlay(tmp_path, "0.9.6.dev0", with_094_files=False)  # 0.9.5's code, the dev line's version string
    proc = _cli(root, "jinja", "--template", "qwen", "--tokenizer", str(FIXTURES / QWEN25))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr.startswith(
        "lf-template-ext: LF 0.9.6.dev0 (untested snapshot: its template code is not the tested one): template qwen "
        "verified on "
    ), proc.stderr
