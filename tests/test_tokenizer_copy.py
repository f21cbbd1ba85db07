"""Copy-on-write tokenizer copies (modeldir/tokenizer_copy.py): as good as a deep copy, never a leak.

Every sweep over LF's templates prepares each template on a copy of a shared fixture tokenizer;
sharing the frozen fixture's Rust backend until a copy writes to it took the 121 preparations of
the Qwen2.5 harness from ~115 s to ~1.5 s. These tests hold the two promises: a prepared copy is
the same tokenizer a deep copy would have given (LF's real fixing on both), and nothing a copy
does reaches the fixture.
"""

from __future__ import annotations

import copy
import pickle

import pytest
from harness import QWEN25, fixture_tokenizer, harness_tokenizer

from lf_template_ext.lf import compat as lf_compat
from lf_template_ext.model.options import TemplateOptions
from lf_template_ext.modeldir.tokenizer_copy import FrozenTokenizerError, _base, copy_tokenizer, freeze, is_frozen

LLAMA31 = "meta-llama--Meta-Llama-3.1-8B-Instruct"
TEXT = "<|im_start|>user\nHi <|eot_id|> there<|im_end|>\n<think>\n\n</think>\n\nok</s>"


def _state(tok) -> tuple:
    return (
        len(tok),
        sorted(tok.get_added_vocab().items()),
        sorted((k, str(v)) for k, v in tok.special_tokens_map.items()),
        tok.eos_token_id,
        tok.pad_token_id,
        tok(TEXT, add_special_tokens=False)["input_ids"],
        tok(TEXT)["input_ids"],
    )


def _deep(tok):
    """What copy_tokenizer gives for a tokenizer nobody froze: a full deep copy."""
    plain = copy.deepcopy(tok)
    assert not is_frozen(plain) and plain._tokenizer is not tok._tokenizer
    return plain


@pytest.mark.parametrize(
    "template, folder",
    [("qwen", LLAMA31), ("llama3", QWEN25), ("qwen3", None), ("alpaca", None), ("mistral", None), ("deepseek3", None)],
)
def test_prepared_copy_equals_a_deep_copy_and_leaves_the_fixture_alone(template, folder):
    tok = fixture_tokenizer(folder) if folder else harness_tokenizer(template)[0]
    assert is_frozen(tok)
    before = _state(tok)
    shared = lf_compat.prepare(template, tok, TemplateOptions())
    lf_compat._PREPARED.clear(), lf_compat._FIXED.clear()
    full = lf_compat.prepare(template, _deep(tok), TemplateOptions())
    lf_compat._PREPARED.clear(), lf_compat._FIXED.clear()
    assert _state(shared.tokenizer) == _state(full.tokenizer)
    assert _state(tok) == before
    if template == "qwen" and folder == LLAMA31:  # LF adds <|im_end|>: this copy had to own a backend
        assert shared.tokenizer._tokenizer is not tok._tokenizer and len(shared.tokenizer) == len(tok) + 1


def test_copies_share_until_they_write_and_the_fixture_refuses_writes():
    tok = fixture_tokenizer(LLAMA31)
    c = copy_tokenizer(tok)
    assert c._tokenizer is tok._tokenizer and isinstance(c, _base(type(tok)))
    assert c.add_special_tokens({"additional_special_tokens": ["<|eot_id|>"]}, replace_extra_special_tokens=False) == 0
    assert c._tokenizer is tok._tokenizer  # a token it has, with the same flags: no write
    n = len(tok)
    assert c.add_tokens(["zqxjv_new"]) == 1
    assert c._tokenizer is not tok._tokenizer and len(c) == n + 1 and len(tok) == n
    assert type(c) is _base(type(tok))  # plain again after owning
    with pytest.raises(FrozenTokenizerError, match="copy_tokenizer"):
        tok.add_tokens(["zqxjv_other"])
    assert len(tok) == n


def test_copies_pickle_and_deep_copy_as_the_tokenizers_own_class():
    tok = fixture_tokenizer(LLAMA31)
    for obj in (tok, copy_tokenizer(tok)):
        for out in (pickle.loads(pickle.dumps(obj)), copy.deepcopy(obj)):
            assert type(out) is _base(type(tok)) and out._tokenizer is not tok._tokenizer
            assert _state(out) == _state(tok)


def test_unfrozen_tokenizers_are_deep_copied():
    plain = _deep(fixture_tokenizer(LLAMA31))
    c = copy_tokenizer(plain)
    assert c._tokenizer is not plain._tokenizer and type(c) is type(plain)
    assert freeze(plain) is plain and is_frozen(plain)
