"""Issue 17 finding 11, the smaller ones that need no model run: a non-UTF-8 chat_template.jinja is named,
SERVING.md commands are shell-quoted, and check can learn of an interrupted run."""

from __future__ import annotations

import shlex
import shutil

import pytest
from harness import FIXTURES

from lf_template_ext.errors import BadInputError
from lf_template_ext.modeldir import journal
from lf_template_ext.modeldir.files import read_chat_template


def test_non_utf8_chat_template_is_bad_input_naming_the_file(tmp_path):
    d = tmp_path / "m"
    shutil.copytree(FIXTURES / "Qwen--Qwen2.5-1.5B-Instruct", d)
    (d / "chat_template.jinja").write_bytes(b"{{ 'caf\xe9' }}")  # Latin-1
    with pytest.raises(BadInputError) as err:
        read_chat_template(str(d))
    assert str(d / "chat_template.jinja") in str(err.value) and "not UTF-8" in str(err.value)


def test_serving_md_commands_are_shell_quoted(tmp_path):
    from lf_template_ext.workflows.serving import ServingFacts, serving_md

    d = tmp_path / "my models" / "Qwen 2.5 (sft)"
    facts = ServingFacts(
        model_dir=str(d), template="qwen", is_reasoning=False, tool_format=None, thought_words=("<think>", "</think>"),
        stop_ids=[151645], stop_tokens=["<|im_end|>"], has_modelfile=True, has_lmdeploy_json=True,
    )
    text = serving_md(facts)
    commands = [line for line in text.splitlines() if line.startswith(("vllm serve", "python -m sglang", "cd ", "lmdeploy serve"))]
    assert commands
    for line in commands:
        words = shlex.split(line.split(" && ")[0] if line.startswith("cd ") else line)
        assert str(d) in words or str(d / "chat_template.jinja") in words, line


def test_interrupted_run_is_none_on_a_clean_dir(tmp_path):
    assert journal.interrupted_run(str(tmp_path)) is None
