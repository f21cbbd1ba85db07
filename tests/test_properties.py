"""Property-based: adversarial strings in content and default_system never change the text.

Hypothesis draws message contents and default system prompts from a mix of Jinja syntax,
quotes, backslashes, LF placeholders, special-token look-alikes, whitespace and unicode.
For every draw the compiled template must render what LF trains on: identical ids or, at
worst, a boundary-only split (never a text difference, never an injection or a crash).
"""

from __future__ import annotations

import pytest
from harness import FROZEN, harness_tokenizer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lf_template_ext as lte
from lf_template_ext.verifier.probe import verify_template

FRAGMENTS = [
    "{{", "}}", "{%", "%}", "{#", "#}", "{{ messages }}", "{% raw %}", "{{content}}", "{{idx}}",
    "'", '"', "\\", "\\n", "\n", "\r\n", "\t", "  ", "<|im_end|>", "<|im_start|>", "<|eot_id|>",
    "<think>", "</think>", "</s>", "<s>", "[INST]", "[/INST]", "<tool_call>", "```", "你好", "🙂", "é",
    "raise_exception('x')", "ns.text", "lf.system",
]
TEXT = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(min_size=1, max_size=8)), min_size=1, max_size=6).map("".join)
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _conv(user: str, answer: str, user2: str) -> dict:
    return {
        "id": "prop",
        "messages": [
            {"role": "system", "content": "sys " + user2},
            {"role": "user", "content": user},
            {"role": "assistant", "content": answer},
            {"role": "user", "content": user2},
            {"role": "assistant", "content": "ok"},
        ],
    }


@pytest.mark.parametrize("name", ["qwen", "llama3", "mistral", "qwen3", "chatglm3", "alpaca"])
def test_adversarial_content(name):
    tok, _ = harness_tokenizer(name)

    @SETTINGS
    @given(TEXT, TEXT, TEXT)
    def check(user, answer, user2):
        report = verify_template(name, tok, [_conv(user, answer, user2)], frozen=FROZEN)
        bad = [c for c in report.cases if c.status == "differs"]
        assert not bad, [(c.id, c.reason, c.first_diff) for c in bad]

    check()


@pytest.mark.parametrize("name", ["qwen", "llama3", "gemma"])
def test_adversarial_default_system(name):
    tok, _ = harness_tokenizer(name)

    @SETTINGS
    @given(TEXT)
    def check(default_system):
        conv = {"id": "ds", "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
        report = lte.verify(name, tok, [conv], default_system=default_system)
        bad = [c for c in report.cases if c.status == "differs"]
        assert not bad, [(c.id, c.reason, c.first_diff) for c in bad]

    check()
