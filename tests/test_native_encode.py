"""The encoder's two shortcuts, checked against the long way they replace.

* ``encoding_range`` (the Rust encoding's ``char_to_token``) must give the token range that
  :func:`offsets_range` gives from the full offsets list, for every fixture tokenizer and
  every character position of real renderings (multi-byte characters, whitespace runs,
  special tokens, SentencePiece's ``▁``).
* ``assemble_fitting`` (labels by slice for an example that fits ``cutoff_len``) must equal
  LF's loop (:func:`assemble` over :func:`to_pairs`) with LF's own ``infer_seqlen``, for any
  ranges and options, and must step aside (``None``) when the example does not fit.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from native_fixtures import tokenizer_for

from lf_template_ext.native.encode import (
    LFDataOptions,
    assemble,
    assemble_fitting,
    encoding_range,
    offsets_range,
    to_pairs,
)

#: one label per distinct tokenizer (byte-level BPE, SentencePiece BPE, Gemma's, Phi's, Yi's, InternLM's)
TOKENIZER_LABELS = ["Qwen2.5", "Qwen3", "Llama-3.1", "Gemma-3", "Mistral-v0.3", "Phi-3", "Yi-1.5", "InternLM2"]
CONTENTS = [
    "Hello  world!\n\n  indented\tline",
    "naïve café — 你好，世界 🙂🙂 ĳ",
    " leading space and trailing space ",
    "<think>\nhmm\n</think>\n\nanswer",
    "x\r\n y\u00a0z\u200b end",
]


@pytest.mark.parametrize("label", TOKENIZER_LABELS)
def test_char_to_token_ranges_equal_offsets_ranges(label):
    tok = tokenizer_for(label)
    assert tok.is_fast
    messages = [
        {"role": "user", "content": CONTENTS[0] + CONTENTS[1]},
        {"role": "assistant", "content": CONTENTS[2] + CONTENTS[3]},
        {"role": "user", "content": CONTENTS[4]},
        {"role": "assistant", "content": CONTENTS[1]},
    ]
    text = tok.apply_chat_template(messages, tokenize=False)
    enc = tok([text], add_special_tokens=False, return_offsets_mapping=True)
    encoding, offsets = enc.encodings[0], enc["offset_mapping"][0]
    checked = 0
    for s, e in itertools.combinations_with_replacement(range(len(text) + 1), 2):
        if (s * 7 + e) % 5 and e - s > 3:  # every pair near the diagonal, a fifth of the rest
            continue
        assert encoding_range(encoding, len(text), (s, e)) == offsets_range(offsets, (s, e)), (label, s, e, text[s:e])
        checked += 1
    assert checked > len(text)


def _lf_infer_seqlen():
    from lf_template_ext.lf.compat import supervised_helpers

    return supervised_helpers()


@st.composite
def examples(draw):
    n = draw(st.integers(min_value=0, max_value=60))
    bounds = sorted(draw(st.lists(st.integers(min_value=0, max_value=n), min_size=0, max_size=8)))
    ranges = [(bounds[k], bounds[k + 1]) for k in range(0, len(bounds) - 1, 2)]
    if draw(st.booleans()) and ranges:  # an overlapping or reversed range, as to_pairs tolerates
        i, j = draw(st.integers(0, n)), draw(st.integers(0, n))
        ranges.insert(draw(st.integers(0, len(ranges))), (i, j))
    options = LFDataOptions(
        cutoff_len=draw(st.integers(min_value=1, max_value=80)),
        train_on_prompt=draw(st.booleans()),
        mask_history=draw(st.booleans()),
    )
    return list(range(1000, 1000 + n)), ranges, options


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(examples())
def test_fitting_fast_path_equals_lfs_loop(example):
    infer_seqlen, ignore = _lf_infer_seqlen()
    ids, ranges, options = example
    fast = assemble_fitting(ids, ranges, options, ignore)
    if len(ids) > options.cutoff_len:
        assert fast is None
        return
    assert fast == assemble(to_pairs(ids, ranges), options, infer_seqlen, ignore)


def test_characters_no_token_covers_fall_back_to_the_offsets():
    """A normalizer that drops characters leaves positions ``char_to_token`` cannot answer.

    Qwen2.5's real tokenizer with one more normalizer step (drop zero-width spaces): the
    fallback must still give :func:`offsets_range`'s answer for spans starting or ending there.
    """
    from harness import FIXTURES, QWEN25
    from tokenizers import Tokenizer, normalizers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer.from_file(str(FIXTURES / QWEN25 / "tokenizer.json"))
    steps = [normalizers.Replace("\u200b", "")] + ([backend.normalizer] if backend.normalizer else [])
    backend.normalizer = normalizers.Sequence(steps)
    tok = PreTrainedTokenizerFast(tokenizer_object=backend)
    text = "<|im_start|>user\n\u200b\u200bHi\u200b there<|im_end|>\n<|im_start|>assistant\nok\u200b<|im_end|>\n"
    enc = tok([text], add_special_tokens=False, return_offsets_mapping=True)
    encoding, offsets = enc.encodings[0], enc["offset_mapping"][0]
    uncovered = [p for p in range(len(text)) if encoding.char_to_token(p) is None]
    assert uncovered, "the test needs characters no token covers"
    for s, e in itertools.combinations_with_replacement(range(len(text) + 1), 2):
        assert encoding_range(encoding, len(text), (s, e)) == offsets_range(offsets, (s, e)), (s, e)


# -- token-prefix reuse for policy expand (native_prefix) ---------------------------------------------------

THOUGHT_CONVS = [
    [("Hi there", "<think>\nGreeting.\n</think>\n\nHello!"), ("What is 2+2?", "<think>\nAdd.\n</think>\n\n4"),
     ("And 3+3?", "6"), ("Bye", "<think>\nEnd.\n</think>\n\nBye — 再见 🙂")],
    [("  spaced  ", "plain answer\n"), ("next", "<think>x</think>y")],
]


def _qwen3_encoder(data: LFDataOptions = LFDataOptions(cutoff_len=1 << 20)):
    from lf_template_ext.native.encode import NativeEncoder
    from lf_template_ext.native.render import ChatRenderer

    infer_seqlen, ignore = _lf_infer_seqlen()
    tok = tokenizer_for("Qwen3")
    return NativeEncoder(
        ChatRenderer(tok), policy="expand", data=data, infer_seqlen=infer_seqlen, ignore_index=ignore,
        template_name="Qwen3",
    )


def _convs():
    from lf_template_ext.native.render import Conversation

    out = []
    for turns in THOUGHT_CONVS:
        msgs = [{"role": "system", "content": "Be brief."}]
        for user, answer in turns:
            msgs += [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]
        out.append(Conversation(msgs))
    return out


def _whole(encoder, convs):
    """The same examples with every text tokenized whole (no reuse)."""
    encoder._reuse = None
    return encoder.encode_batch(convs, ["s"] * len(convs))


@pytest.mark.parametrize("label,independent", [
    ("Qwen2.5", True), ("Qwen3", True), ("Llama-3.1", True), ("Gemma-3", True), ("Mistral-v0.3", False), ("Phi-3", False),
])
def test_which_tokenizers_tokenize_pieces_independently(label, independent):
    from lf_template_ext.native.prefix import pieces_are_independent

    assert pieces_are_independent(tokenizer_for(label)) is independent


@pytest.mark.parametrize("data", [
    LFDataOptions(cutoff_len=1 << 20),
    LFDataOptions(cutoff_len=40),  # LF's truncation loop, on composed ids and spans
    LFDataOptions(cutoff_len=1 << 20, train_on_prompt=True),
    LFDataOptions(cutoff_len=1 << 20, mask_history=True),
], ids=["plain", "cutoff", "train_on_prompt", "mask_history"])
def test_expand_examples_reuse_the_conversations_tokens_and_equal_whole_tokenization(data):
    encoder = _qwen3_encoder(data)
    convs = _convs()
    got = encoder.encode_batch(convs, ["s"] * len(convs))
    # Qwen3 trains every earlier turn alone; with mask_history only the last turn is trained: one example each
    assert (encoder.stats["reused_prefixes"] >= 3) is not data.mask_history
    tok = encoder.tokenizer
    if data.cutoff_len > 1000:
        for conv, rows in zip(convs, got):
            for ex, row in zip(encoder.examples(conv, "s"), rows):
                assert row.input_ids == tok(ex.text, add_special_tokens=False)["input_ids"]
    assert [[(r.input_ids, r.labels) for r in rows] for rows in got] == [
        [(r.input_ids, r.labels) for r in rows] for rows in _whole(_qwen3_encoder(data), convs)
    ]


def test_a_reuse_that_changes_ids_is_caught_and_switched_off(monkeypatch, caplog):
    """What a tokenizer whose pieces are not independent would do: the batch's check must catch it."""
    from lf_template_ext.native import encode as native_encode

    monkeypatch.setattr(native_encode, "compose_ids", lambda base, u, suffix: base[: u + 1] + suffix)
    encoder = _qwen3_encoder()
    convs = _convs()
    with caplog.at_level("WARNING", logger="llamafactory.lf_template_ext.native.mode"):
        got = encoder.encode_batch(convs, ["s"] * len(convs))
    assert "reusing token prefixes changed" in caplog.text
    assert encoder._reuse is None and encoder.stats["reused_prefixes"] == 0
    want = _whole(_qwen3_encoder(), convs)
    assert [[(r.input_ids, r.labels) for r in rows] for rows in got] == [[(r.input_ids, r.labels) for r in rows] for rows in want]
