"""Whole-string batch tokenization straight through the Rust backend, proven equal to transformers' call.

Native mode and ``template_ext_tokenize: whole`` tokenize every example text of a batch in one call, with
``add_special_tokens=False``. transformers' ``tokenizer(texts, ...)`` (``TokenizersBackend._encode_plus``) does
three things: it resets the backend's truncation and padding to "none", sets ``encode_special_tokens`` from
``split_special_tokens``, and calls ``backend.encode_batch``; then it converts every encoding into Python
dicts and a ``BatchEncoding``. That conversion costs about as much as the tokenization itself (measured on
the Qwen2.5 tokenizer, 10,000 chat texts on 2 cores: ``tokenizer(texts)`` 7.4 s wall / 8.2 s CPU, the
backend's ``encode_batch`` 3.8 s wall / 7.0 s CPU): the batched Rust call runs on every core, the conversion
on one.

:class:`BatchTokenizer` keeps transformers' call for the first batch, which also leaves the backend in the
state transformers sets, and takes the backend's ids and encodings from then on, under two guards:

* the tokenizer's class must not override transformers' batch encoding (``_encode_plus``/``__call__``):
  a subclass that preprocesses text in Python would be bypassed;
* the first batch is tokenized both ways and must give the same ids, text for text; if not, the run keeps
  transformers' call (with a warning) and nothing else changes.

The ids are therefore transformers' ids, which is what the engines tokenize a rendered prompt with.
"""

from __future__ import annotations

import logging
from typing import Any, Optional

logger = logging.getLogger("llamafactory.lf_template_ext.native")

#: texts of the first batch compared both ways (all of a smaller batch)
CHECKED = 256


def _direct_capable(tokenizer: Any) -> bool:
    """Whether the tokenizer's batch call is transformers' own (no Python-side text handling to bypass)."""
    try:
        from transformers.tokenization_utils_base import PreTrainedTokenizerBase
        from transformers.tokenization_utils_tokenizers import TokenizersBackend
    except ImportError:  # pragma: no cover - an older transformers: keep its call
        return False
    cls = type(tokenizer)
    backend = getattr(tokenizer, "_tokenizer", None)
    return (
        isinstance(tokenizer, TokenizersBackend)
        and getattr(cls, "_encode_plus", None) is TokenizersBackend._encode_plus
        and getattr(cls, "__call__", None) is PreTrainedTokenizerBase.__call__
        and backend is not None
        and hasattr(backend, "encode_batch")
    )


class BatchTokenizer:
    """``(ids, encodings)`` of a batch of texts, ``add_special_tokens=False`` (see module doc)."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.direct: Optional[bool] = None if _direct_capable(tokenizer) else False

    def __call__(self, texts: list[str]) -> tuple[list[list[int]], list[Any]]:
        if self.direct:
            backend = self.tokenizer._tokenizer
            split = bool(getattr(self.tokenizer, "split_special_tokens", False))
            if backend.truncation is None and backend.padding is None and backend.encode_special_tokens == split:
                encodings = backend.encode_batch(texts, add_special_tokens=False)
                return [e.ids for e in encodings], encodings
        enc = self.tokenizer(texts, add_special_tokens=False, return_attention_mask=False, return_token_type_ids=False)
        ids, encodings = enc["input_ids"], enc.encodings
        if self.direct is None and encodings is not None:
            self.direct = self._same_both_ways(texts[:CHECKED], ids[:CHECKED])
        return ids, encodings

    def _same_both_ways(self, texts: list[str], ids: list[list[int]]) -> bool:
        direct = [e.ids for e in self.tokenizer._tokenizer.encode_batch(texts, add_special_tokens=False)]
        if direct == ids:
            return True
        logger.warning(
            "%s: the Rust backend's batch ids differ from transformers' call on this batch; keeping "
            "transformers' call for this run (slower, same ids)",
            type(self.tokenizer).__name__,
        )
        return False
