"""Real tokenizers for every fixture chat template, for native-mode tests.

A fixture folder with its own loadable tokenizer is used as is. Folders that carry only the
template (MANIFEST.md) are rendered with their family's tokenizer, as the issue says:
DeepSeek-R1-Distill with Qwen2.5's, Yi-1.5 with Yi-34B's, Gemma-2 with Gemma-3's, Phi-3.5 with
Phi-3's, Mistral-Nemo with Mistral v0.3's; the template's marker strings the borrowed
tokenizer lacks (e.g. R1's ``<｜User｜>``) are added as special tokens, as the compiler's
harness does ("+markers"), and ``name_or_path`` points at the fixture folder so that its
``generation_config.json`` and the model name are found.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from harness import FIXTURES, QWEN25, fixture_tokenizer

_MARKER = re.compile(r"<\|[^<>\s|{}]{1,40}\|>|<｜[^<>]{1,40}｜>|\[[A-Za-z_/]{3,30}\]")


@dataclass(frozen=True)
class Fixture:
    folder: str  # fixture folder holding the chat template
    label: str  # short name in reports
    tokenizer_from: Optional[str] = None  # family folder whose tokenizer renders it (None: its own)
    template_file: Optional[str] = None  # a template outside the usual files (alt/ revisions)
    lf_template: Optional[str] = None  # LF's closest built-in template


#: Every fixture chat template (MANIFEST.md), plus the alternative revisions kept under alt/.
FIXTURES_WITH_TEMPLATES: tuple[Fixture, ...] = (
    Fixture("Qwen--Qwen2.5-1.5B-Instruct", "Qwen2.5", lf_template="qwen"),
    Fixture("Qwen--Qwen3-4B", "Qwen3", lf_template="qwen3"),
    Fixture("Qwen--QwQ-32B", "QwQ", tokenizer_from=QWEN25, lf_template="qwen"),
    Fixture("Qwen--Qwen1.5-72B-Chat", "Qwen1.5", lf_template="qwen"),
    Fixture("meta-llama--Meta-Llama-3-8B-Instruct", "Llama-3", lf_template="llama3"),
    Fixture("NousResearch--Meta-Llama-3-8B", "Llama-3 base", lf_template="llama3"),
    Fixture("meta-llama--Meta-Llama-3.1-8B-Instruct", "Llama-3.1", lf_template="llama3"),
    Fixture("meta-llama--Llama-3.2-3B-Instruct", "Llama-3.2", lf_template="llama3"),
    Fixture("google--gemma-3-1b-it", "Gemma-3", lf_template="gemma3"),
    Fixture("google--gemma-2-2b-it", "Gemma-2", tokenizer_from="google--gemma-3-1b-it", lf_template="gemma2"),
    Fixture("mistralai--Mistral-7B-Instruct-v0.3", "Mistral-v0.3", lf_template="mistral"),
    Fixture("mistralai--Mistral-7B-Instruct-v0.2", "Mistral-v0.2", lf_template="mistral"),
    Fixture(
        "mistralai--Mistral-7B-Instruct-v0.2",
        "Mistral-v0.2 (alt: pre-v1)",
        template_file="alt/chat_template.pre-v1.jinja",
        lf_template="mistral",
    ),
    Fixture(
        "mistralai--Mistral-Nemo-Instruct-2407",
        "Mistral-Nemo",
        tokenizer_from="mistralai--Mistral-7B-Instruct-v0.3",
        lf_template="ministral",
    ),
    Fixture(
        "mistralai--Mistral-Nemo-Instruct-2407",
        "Mistral-Nemo (alt: newer)",
        tokenizer_from="mistralai--Mistral-7B-Instruct-v0.3",
        template_file="alt/chat_template.llama.cpp-newer-revision.jinja",
        lf_template="ministral",
    ),
    Fixture("microsoft--Phi-3-mini-4k-instruct", "Phi-3", lf_template="phi"),
    Fixture("microsoft--Phi-3.5-mini-instruct", "Phi-3.5", tokenizer_from="microsoft--Phi-3-mini-4k-instruct", lf_template="phi"),
    Fixture("deepseek-ai--DeepSeek-R1-Distill-Qwen-14B", "R1-Distill-14B", tokenizer_from=QWEN25, lf_template="deepseekr1"),
    Fixture("deepseek-ai--DeepSeek-R1-Distill-Qwen-32B", "R1-Distill-32B", tokenizer_from=QWEN25, lf_template="deepseekr1"),
    Fixture(
        "deepseek-ai--DeepSeek-R1-Distill-Qwen-32B",
        "R1-Distill (alt: later)",
        tokenizer_from=QWEN25,
        template_file="alt/chat_template.xinference-later-revision.jinja",
        lf_template="deepseekr1",
    ),
    Fixture("01-ai--Yi-1.5-9B-Chat", "Yi-1.5", tokenizer_from="01-ai--Yi-34B", lf_template="yi"),
    Fixture("THUDM--chatglm3-6b", "ChatGLM3", tokenizer_from=QWEN25, lf_template="chatglm3"),
    Fixture("THUDM--glm-4-9b-chat", "GLM-4", tokenizer_from=QWEN25, lf_template="glm4"),
    Fixture("internlm--internlm2-1_8b", "InternLM2", lf_template="intern2"),
)

BY_LABEL = {f.label: f for f in FIXTURES_WITH_TEMPLATES}


def fixture_template(f: Fixture) -> str:
    folder = FIXTURES / f.folder
    if f.template_file:
        return (folder / f.template_file).read_text(encoding="utf-8")
    jinja = folder / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    return json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))["chat_template"]


def _config_token(value: Any) -> Optional[str]:
    if isinstance(value, dict):
        return value.get("content")
    return value if isinstance(value, str) else None


@functools.lru_cache(maxsize=None)
def tokenizer_for(label: str) -> Any:
    """The (shared, do not mutate) tokenizer rendering fixture ``label``'s chat template."""
    from lf_template_ext.lf.compat import copy_tokenizer

    f = BY_LABEL[label]
    if f.folder == "internlm--internlm2-1_8b":  # custom tokenizer class; its tokenizer.json is a fast one
        from transformers import PreTrainedTokenizerFast

        return PreTrainedTokenizerFast.from_pretrained(str(FIXTURES / f.folder))
    if f.tokenizer_from is None and f.template_file is None:
        return fixture_tokenizer(f.folder)
    tok = copy_tokenizer(fixture_tokenizer(f.tokenizer_from or f.folder))
    template = fixture_template(f)
    config = json.loads((FIXTURES / f.folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    specials = {k: _config_token(config.get(k)) for k in ("bos_token", "eos_token")}
    vocab = tok.get_added_vocab()
    markers = [m for m in dict.fromkeys(_MARKER.findall(template)) if m not in vocab]
    markers += [t for t in specials.values() if t and t not in vocab and t not in markers and t not in tok.get_vocab()]
    if markers:
        tok.add_special_tokens({"additional_special_tokens": markers}, replace_extra_special_tokens=False)
    for key, value in specials.items():
        if value:
            setattr(tok, key, value)
    tok.chat_template = template
    tok.name_or_path = str(FIXTURES / f.folder)
    return tok


def fresh_tokenizer(label: str) -> Any:
    """A private copy LF may mutate (``get_template_and_fix_tokenizer`` sets the pad token).

    transformers 5 keeps the construction-time ``_vocab``/``_merges`` lists on the tokenizer
    (nothing reads them afterwards: the Rust tokenizer holds the vocabulary), and ``datasets``
    pickles them in pure Python to fingerprint every ``map`` (seconds to a minute per call on
    a loaded machine, whatever the template). The copy drops them to keep the tests short.
    """
    from lf_template_ext.lf.compat import copy_tokenizer

    tok = copy_tokenizer(tokenizer_for(label))
    tok.__dict__.pop("_vocab", None)
    tok.__dict__.pop("_merges", None)
    return tok


def model_dir(label: str) -> Path:
    return FIXTURES / BY_LABEL[label].folder
