"""Jinja string literals: whatever the text, the literal evaluates back to it (no injection)."""

import jinja2
from hypothesis import given, settings
from hypothesis import strategies as st
from jinja2.sandbox import ImmutableSandboxedEnvironment

from lf_template_ext.compiler.jinja_text import JinjaWriter, comment_safe, concat, lit

ENVS = [
    ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True),  # transformers / vLLM
    jinja2.Environment(),  # torchtune-style plain environment
]

NASTY = st.one_of(
    st.text(),
    st.lists(
        st.sampled_from(list("\\\"'{}%#\n\r\t -|<>\u2028\x00\x7f") + ["{{", "}}", "{%", "%}", "{#", "#}", "{%-", "-%}"])
    ).map("".join),
)


@given(NASTY)
@settings(max_examples=400, deadline=None)
def test_literal_round_trips(text):
    for env in ENVS:
        assert env.from_string("{{- " + lit(text) + " -}}").render() == text


@given(NASTY, NASTY)
@settings(max_examples=200, deadline=None)
def test_concat_of_literals(a, b):
    env = ENVS[0]
    assert env.from_string("{{- " + concat([lit(a), lit(b)]) + " -}}").render() == a + b


@given(NASTY)
@settings(max_examples=200, deadline=None)
def test_comment_cannot_end_early(text):
    w = JinjaWriter()
    w.comment(text)
    w.out(lit("after"))
    assert ENVS[0].from_string(w.text()).render() == "after"
    assert "#}" not in comment_safe(text)


def test_writer_checks_balance():
    w = JinjaWriter()
    w.open("if true")
    try:
        w.text()
    except AssertionError:
        pass
    else:  # pragma: no cover
        raise AssertionError("unbalanced blocks must be reported")
