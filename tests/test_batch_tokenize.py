"""native/batch_tokenize.py: the Rust backend's batch ids are taken only where they are transformers' ids."""

from __future__ import annotations

import pytest
from harness import FIXTURES

from lf_template_ext.native.batch_tokenize import BatchTokenizer

TEXTS = [
    "<|im_start|>system\n  lead and trail  <|im_end|>\n<|im_start|>user\n\n\nHi<|im_end|>\n<|im_start|>assistant\n",
    " leading space", "[INST] x [/INST]", "<s>hi</s>", "\n\n\tTabs, émojis 🎉 and 中文", "",
]


def _load(folder: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(FIXTURES / folder))  # private: the tests below change its backend


@pytest.mark.parametrize(
    "folder", ["Qwen--Qwen2.5-1.5B-Instruct", "meta-llama--Meta-Llama-3.1-8B-Instruct", "mistralai--Mistral-7B-Instruct-v0.2",
               "google--gemma-3-1b-it"],
)  # fmt: skip
def test_backend_ids_are_transformers_ids(folder: str) -> None:
    tok = _load(folder)
    batch = BatchTokenizer(tok)
    expected = tok(TEXTS, add_special_tokens=False)["input_ids"]
    first, _ = batch(TEXTS)  # transformers' call, checked against the backend's
    assert batch.direct is True, folder
    later, encodings = batch(TEXTS)  # the backend's
    assert first == later == expected
    assert [e.offsets for e in encodings] == tok(TEXTS, add_special_tokens=False, return_offsets_mapping=True)[
        "offset_mapping"
    ]


def test_a_backend_changed_after_the_check_goes_through_transformers_again() -> None:
    tok = _load("Qwen--Qwen2.5-1.5B-Instruct")
    batch = BatchTokenizer(tok)
    expected = tok(TEXTS, add_special_tokens=False)["input_ids"]
    batch(TEXTS)
    tok._tokenizer.enable_padding(length=64)  # someone turned padding on in the backend: the direct call would pad
    assert batch(TEXTS)[0] == expected  # transformers' call, which turns it off again
    tok.split_special_tokens = True  # special tokens split as text from now on: transformers' call follows it
    split = tok(TEXTS, add_special_tokens=False)["input_ids"]
    assert split != expected and batch(TEXTS)[0] == split


def test_a_class_with_its_own_encoding_keeps_transformers_call() -> None:
    tok = _load("Qwen--Qwen2.5-1.5B-Instruct")

    class Shouting(type(tok)):  # Python-side text handling the backend would bypass
        def _encode_plus(self, text, *args, **kwargs):
            text = [t.upper() for t in text] if isinstance(text, list) else text.upper()
            return super()._encode_plus(text, *args, **kwargs)

    tok.__class__ = Shouting
    batch = BatchTokenizer(tok)
    expected = tok(TEXTS, add_special_tokens=False)["input_ids"]
    assert batch(TEXTS)[0] == batch(TEXTS)[0] == expected and batch.direct is False
