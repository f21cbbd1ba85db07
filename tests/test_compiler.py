"""The compiler's seams: API contracts, LF quirks kept, refusals, engine-facing properties."""

from __future__ import annotations

import json
import subprocess
import sys

import jinja2
import jinja2.meta
import pytest
from harness import FROZEN, fixture_tokenizer, harness_tokenizer
from jinja2 import nodes

import lf_template_ext as lte
from lf_template_ext.lf import compat as lf_compat
from lf_template_ext.render.hf import Renderer
from lf_template_ext.verifier.probe import verify_template


def render(tok, jinja, messages, tools=None, agp=False, **kw):
    return tok.apply_chat_template(
        messages, tools=tools, chat_template=jinja, tokenize=False, add_generation_prompt=agp, **kw
    )


def test_import_is_light(repo):
    code = (
        "import sys, lf_template_ext, lf_template_ext.cli.main;"
        "heavy=[m for m in ('torch','llamafactory','transformers') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=repo, check=True)
    assert out.stdout.strip() == "", f"importing lf_template_ext pulled in {out.stdout.strip()}"


def test_compile_does_not_mutate_tokenizer_or_registry(qwen25):
    tmod = lf_compat._template_module()
    before_tpl = tmod.TEMPLATES["qwen3"]
    before_fields = (before_tpl.default_system, before_tpl.enable_thinking, before_tpl.format_tools.tool_format)
    before_tok = (qwen25.eos_token, len(qwen25), list(qwen25.extra_special_tokens), qwen25.chat_template)
    lte.compile_jinja("qwen3", qwen25, default_system="X", enable_thinking=False, tool_format="default")
    lte.compile_jinja("chatml", qwen25)  # replace_eos + stop words: LF would clobber extra special tokens
    assert tmod.TEMPLATES["qwen3"] is before_tpl
    assert (before_tpl.default_system, before_tpl.enable_thinking, before_tpl.format_tools.tool_format) == before_fields
    assert (qwen25.eos_token, len(qwen25), list(qwen25.extra_special_tokens), qwen25.chat_template) == before_tok


def test_accepts_template_object(qwen25):
    tmod = lf_compat._template_module()
    by_name = lte.compile_jinja("qwen", qwen25)
    by_object = lte.compile_jinja(tmod.TEMPLATES["qwen"], qwen25)
    # same rendering (the header names the template differently)
    msgs = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
    assert render(qwen25, by_name, msgs) == render(qwen25, by_object, msgs)


def test_unknown_template_suggests_names(qwen25):
    with pytest.raises(lte.BadInputError, match="did you mean.*qwen"):
        lte.compile_jinja("qwn", qwen25)


def test_enable_thinking_is_an_undeclared_variable(qwen25):
    jinja = lte.compile_jinja("qwen3", qwen25)
    env = jinja2.Environment(extensions=["jinja2.ext.loopcontrols"])
    undeclared = jinja2.meta.find_undeclared_variables(env.parse(jinja))
    assert "enable_thinking" in undeclared  # vLLM forwards only undeclared chat_template_kwargs
    assert {"messages", "tools", "add_generation_prompt"} <= undeclared


def _loops_over_content(jinja: str) -> bool:
    """vLLM's "openai" content-format detection: a for loop over a message's content."""
    tree = jinja2.Environment(extensions=["jinja2.ext.loopcontrols"]).parse(jinja)
    for loop in tree.find_all(nodes.For):
        for n in [loop.iter, *loop.iter.find_all((nodes.Getattr, nodes.Getitem, nodes.Name))]:
            if isinstance(n, nodes.Getattr) and n.attr == "content":
                return True
            if isinstance(n, nodes.Getitem) and isinstance(n.arg, nodes.Const) and n.arg.value == "content":
                return True
            if isinstance(n, nodes.Name) and n.name == "content":
                return True
        if isinstance(loop.iter, nodes.Name) and loop.iter.name == "content":
            return True
    return False


@pytest.mark.parametrize("name", ["qwen", "qwen3", "llama3", "mistral", "glm4", "default"])
def test_content_format_is_string_for_vllm(name):
    tok, _ = harness_tokenizer(name)
    assert not _loops_over_content(lte.compile_jinja(name, tok))


@pytest.mark.parametrize("name", ["gemma4", "qwen2_vl"])
def test_content_format_is_openai_for_a_multimodal_template(name):
    """A template with an LF multimodal plugin loops over content parts (compiler/media.py), so vLLM passes
    the parts (its "openai" format) and the media placeholders land where the client put the parts."""
    tok, _ = harness_tokenizer(name)
    assert _loops_over_content(lte.compile_jinja(name, tok))


def test_detector_sees_a_content_loop():
    assert _loops_over_content("{% for m in messages %}{% for p in m['content'] %}{{ p.text }}{% endfor %}{% endfor %}")


def test_idx_quirk_is_reproduced(qwen25):
    """LF replaces a literal {{idx}} in user content by the turn index (StringFormatter.apply)."""
    conv = {
        "id": "idx",
        "messages": [
            {"role": "user", "content": "turn {{idx}} and {{idx}}"},
            {"role": "assistant", "content": "a"},
            {"role": "user", "content": "now {{idx}}"},
            {"role": "assistant", "content": "b"},
        ],
    }
    jinja = lte.compile_jinja("qwen", qwen25)
    text = render(qwen25, jinja, conv["messages"])
    assert "turn 0 and {{idx}}" in text and "now 1" in text
    assert all(c.status == "identical" for c in verify_template("qwen", qwen25, [conv]).cases)


def test_empty_system_falls_back_to_default(qwen25):
    jinja = lte.compile_jinja("qwen", qwen25)
    text = render(qwen25, jinja, [{"role": "system", "content": ""}, {"role": "user", "content": "q"}], agp=True)
    assert "You are Qwen" in text


def test_default_system_override(qwen25):
    jinja = lte.compile_jinja("qwen", qwen25, default_system='Be "brief" \\ {{ no }}')
    text = render(qwen25, jinja, [{"role": "user", "content": "q"}], agp=True)
    assert text.startswith('<|im_start|>system\nBe "brief" \\ {{ no }}<|im_end|>')
    report = lte.verify("qwen", qwen25, default_system='Be "brief" \\ {{ no }}')
    assert report.summary["differs"] == 0


@pytest.mark.parametrize(
    "messages, rule",
    [
        (
            [{"role": "user", "content": "a"}, {"role": "system", "content": "late"}],
            "only allowed as the first message",
        ),
        (
            [
                {"role": "user", "content": "a"},
                {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "f", "arguments": {}}}]},
                {"role": "tool", "content": "1"},
                {"role": "tool", "content": "2"},
            ],
            "expected an assistant message at position 3",
        ),
        ([{"role": "assistant", "content": "first"}], "expected a user or tool message at position 0"),
        ([{"role": "user", "content": [{"type": "text", "text": "x"}]}], "content must be a string"),
    ],
)
def test_unrepresentable_conversations_are_refused_with_the_rule(qwen25, messages, rule):
    jinja = lte.compile_jinja("qwen", qwen25)
    with pytest.raises(jinja2.TemplateError, match=rule):
        render(qwen25, jinja, messages)


def test_string_arguments_are_refused_where_lf_needs_an_object():
    tok, _ = harness_tokenizer("qwen3_5")
    jinja = lte.compile_jinja("qwen3_5", tok)
    msgs = [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "f", "arguments": '{"x": 1}'}}]},
    ]
    with pytest.raises(jinja2.TemplateError, match="must be a JSON object"):
        render(tok, jinja, msgs)


def test_canonical_string_arguments_match_lf(qwen25):
    """A JSON-string `arguments` (as OpenAI clients send) renders like the object in `json` formats."""
    args = {"city": "Paris", "days": [1, 2]}
    conv = {
        "id": "stringargs",
        "tools": [{"type": "function", "function": {"name": "w", "parameters": {"type": "object", "properties": {}}}}],
        "messages": [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "w", "arguments": json.dumps(args)}}]},
            {"role": "tool", "content": "r"},
            {"role": "assistant", "content": "done"},
        ],
    }
    assert all(c.status == "identical" for c in verify_template("qwen", qwen25, [conv]).cases)


def test_dict_slot_token_missing_from_tokenizer_is_unsupported(qwen25):
    # chatglm3 prefixes [gMASK] sop as dict slots; the bare Qwen2.5 tokenizer has neither token
    with pytest.raises(lte.UnsupportedTemplateError, match=r"\[gMASK\].*not an added/special token"):
        lte.compile_jinja("chatglm3", qwen25)


def test_split_special_tokens_is_unsupported():
    tok, _ = harness_tokenizer("chatglm3")
    tok2 = lf_compat.copy_tokenizer(tok)
    tok2.split_special_tokens = True
    with pytest.raises(lte.UnsupportedTemplateError, match="split_special_tokens"):
        lte.compile_jinja("chatglm3", tok2)


def test_thinking_switch_as_template_kwarg():
    tok = fixture_tokenizer("Qwen--Qwen3-4B")
    jinja = lte.compile_jinja("qwen3", tok)  # trained with enable_thinking=True (LF's default)
    msgs = [{"role": "user", "content": "q"}]
    assert render(tok, jinja, msgs, agp=True).endswith("<|im_start|>assistant\n")
    assert render(tok, jinja, msgs, agp=True, enable_thinking=False).endswith(
        "<|im_start|>assistant\n<think>\n\n</think>\n\n"
    )
    off = lte.compile_jinja("qwen3", tok, enable_thinking=False)  # trained with thinking off
    assert render(tok, off, msgs, agp=True).endswith("<think>\n\n</think>\n\n")


def test_llama3_tool_prompt_date_is_live_and_frozen_in_checks():
    tok = fixture_tokenizer("meta-llama--Meta-Llama-3.1-8B-Instruct")
    jinja = lte.compile_jinja("llama3", tok)
    assert 'strftime_now("%d %b %Y")' in jinja
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}]
    text = Renderer(tok, jinja, FROZEN).text([{"role": "user", "content": "q"}], tools, True)
    assert "Today Date: 28 Nov 2026" in text


def test_report_schema(qwen25):
    report = lte.verify("qwen", qwen25)
    d = report.to_dict()
    assert set(d) == {"schema_version", "lf_version", "package_version", "template", "options", "engine", "summary", "cases"}
    assert set(d["summary"]) == {"identical", "boundary_only", "differs", "unsupported"}
    for case in d["cases"]:
        assert {"id", "status", "first_diff"} <= set(case)
        if case["first_diff"]:
            assert {"index", "expected_ids", "actual_ids", "expected_text", "actual_text"} <= set(case["first_diff"])
    assert report.exit_code() == 0


def test_verifier_catches_the_native_template_difference():
    """The point of the verifier: Llama-3.1's own template is not what `template: llama3` trained on."""
    tok = fixture_tokenizer("meta-llama--Meta-Llama-3.1-8B-Instruct")
    report = lte.verify("llama3", tok, jinja=tok.chat_template)
    assert report.summary["differs"] > 0
    assert "Cutting Knowledge Date" in tok.apply_chat_template(
        [{"role": "user", "content": "q"}], tokenize=False, add_generation_prompt=True
    )
    first = next(c for c in report.cases if c.status == "differs")
    assert first.first_diff.expected_ids[first.first_diff.index - first.first_diff.window_start] != (
        first.first_diff.actual_ids[first.first_diff.index - first.first_diff.window_start]
    )
    assert report.exit_code() == 1


def test_boundary_only_is_reported_not_hidden():
    tok = fixture_tokenizer("Qwen--Qwen3-4B")
    conv = {"id": "nl", "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "\n\nHello!"}]}
    report = verify_template("qwen3_nothink", tok, [conv])
    full = report.cases[0]
    assert full.status == "boundary_only"
    assert full.first_diff.expected_ids != full.first_diff.actual_ids
    assert report.exit_code() == 0 and report.exit_code(strict=True) == 1
