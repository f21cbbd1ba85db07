"""Whole mode's check (``template_ext_tokenize: whole``): a corpus of boundary cases and the assertion.

Shared by ``tests/test_whole.py`` (a few templates, in CI) and its opt-in sweep over every LF template
(``LF_TEMPLATE_EXT_WHOLE_SWEEP=1``), and by ``scripts/coverage_table.py``'s *whole* column.

For every conversation LF can encode, LF's real ``SupervisedDatasetProcessor._encode_data_example``
runs with the wrapped template (``lf.whole_template.wrap``) and must give:

* input ids == the compiled template's rendering of the conversation tokenized whole with
  ``add_special_tokens=False`` (plus LF's trailing eos for ``efficient_eos`` templates), exactly;
* labels == LF's label rule computed independently here from the tokenizer's offsets: a token is
  in the slot piece its last character is in; response pieces are trained (only the last with
  ``mask_history``), prompt pieces with ``train_on_prompt``, and with ``efficient_eos`` the first
  token of every later prompt is labelled eos and an eos is appended, as LF's loop does.
"""

from __future__ import annotations

import copy
from types import SimpleNamespace
from typing import Any, Optional

from lf_template_ext.lf import compat as lf_compat
from lf_template_ext.lf import whole_template
from lf_template_ext.model import corpus
from lf_template_ext.model import messages as msgmap
from lf_template_ext.model.options import TemplateOptions
from lf_template_ext.verifier.reference import TrainingReference

WS = [" ", "\n", "\n\n", "  \n", "\t", " \n "]


def _boundary_conversations() -> list[dict[str, Any]]:
    """Leading/trailing whitespace and newlines in every role, and contents that merge with the slot before."""
    convs: list[dict[str, Any]] = []
    for k, ws in enumerate(WS):
        convs.append({"id": f"ws{k}_user_assistant", "messages": [
            {"role": "user", "content": f"{ws}Hi there{ws}"},
            {"role": "assistant", "content": f"{ws}Hello!{ws}"},
            {"role": "user", "content": f"{ws}again"},
            {"role": "assistant", "content": f"sure{ws}"},
        ]})
        convs.append({"id": f"ws{k}_system", "messages": [
            {"role": "system", "content": f"{ws}Be brief.{ws}"},
            {"role": "user", "content": "Q"},
            {"role": "assistant", "content": f"{ws}A"},
        ]})
    merges = ["\n\nanswer", ":colon", "assistant", "s", "'s fine", "!!", ">", "|>", "0", ".\n", " \n\n\n", "\r\n"]
    for k, text in enumerate(merges):
        convs.append({"id": f"merge{k}", "messages": [
            {"role": "system", "content": text},
            {"role": "user", "content": text},
            {"role": "assistant", "content": text},
            {"role": "user", "content": f"x{text}"},
            {"role": "assistant", "content": f"{text}y"},
        ]})
    convs.append({"id": "ws_tools", "tools": [corpus.WEATHER_TOOL], "messages": [
        {"role": "user", "content": "\n weather? \n"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": {"city": " Paris\n"}}}
        ]},
        {"role": "tool", "content": "\n\n sunny \n", "tool_call_id": "call_1"},
        {"role": "assistant", "content": "\n\nIt is sunny. \n"},
    ]})
    convs.append({"id": "ws_thoughts", "messages": [
        {"role": "user", "content": " think\n"},
        {"role": "assistant", "content": "\n", "reasoning_content": "\nhmm \n"},
        {"role": "user", "content": "\nagain"},
        {"role": "assistant", "content": " done\n\n", "reasoning_content": " ok"},
    ]})
    return convs


BOUNDARY = _boundary_conversations()


def corpus_conversations() -> list[dict[str, Any]]:
    return corpus.probe_corpus() + BOUNDARY


def _expected_labels(offsets: list[tuple[int, int]], ids: list[int], pieces: list[tuple[str, str]],
                     data: Any, eos: int, efficient_eos: bool, ignore: int) -> list[int]:
    """LF's label rule from the tokenizer's offsets (independent of ``native.whole``'s char_to_token)."""
    spans: list[tuple[int, int, int, bool]] = []  # (start, end, pair index, is response)
    pos = 0
    for k, (p, r) in enumerate(pieces):
        spans.append((pos, pos + len(p), k, False))
        spans.append((pos + len(p), pos + len(p) + len(r), k, True))
        pos += len(p) + len(r)
    last = len(pieces) - 1
    owner = [next(n for n, sp in enumerate(spans) if sp[0] < end <= sp[1]) if end > 0 else 0 for _, end in offsets]
    for n in range(0, len(spans), 2):  # a non-empty prompt piece keeps one token (the merged one that covers it)
        if spans[n][1] > spans[n][0] and n not in owner:
            t = next((t for t, o in enumerate(owner) if o == n + 1), None)
            if t is not None and offsets[t][0] < spans[n][1]:
                owner[t] = n
    labels, seen_source = [], set()
    for tid, o in zip(ids, owner):
        s, e, k, resp = spans[o]
        if resp:
            trained = not data.mask_history or k == last
        else:
            trained = data.train_on_prompt
        label = tid if trained else ignore
        if not resp and k not in seen_source:
            seen_source.add(k)
            # LF's loop: ``turn_idx != 0`` counts the pairs it walks, in reverse order with mask_history
            first = last if data.mask_history else 0
            if efficient_eos and k != first and not data.train_on_prompt:
                label = eos
        labels.append(label)
    if efficient_eos:
        labels.append(eos)
    return labels


def check_template(name: str, tokenizer: Any, options: TemplateOptions = TemplateOptions(),
                   data_variants: Optional[list[dict[str, bool]]] = None) -> dict[str, Any]:
    """Run the corpus through LF's processor with ``name`` wrapped whole; returns counts and failures.

    Each ``mask_history`` value compiles its own template (LF's option changes the rendering of
    reasoning templates); a case counts as exact when every variant is.
    """
    variants = data_variants or [{"train_on_prompt": False, "mask_history": options.mask_history}]
    out: dict[str, Any] = {"exact": 0, "unsupported": 0, "failures": [], "cases": 0}
    for mask in sorted({v["mask_history"] for v in variants}):
        opts = TemplateOptions(**{**options.to_dict(), "mask_history": mask})
        _check(name, tokenizer, opts, [v for v in variants if v["mask_history"] == mask], out)
    return out


def _check(name: str, tokenizer: Any, options: TemplateOptions, variants: list[dict[str, bool]], out: dict) -> None:
    from llamafactory.data.processor.supervised import SupervisedDatasetProcessor
    from llamafactory.extras.constants import IGNORE_INDEX

    prep = lf_compat.prepare(name, tokenizer, options)
    tok = prep.tokenizer
    data_args = SimpleNamespace(template=name, **options.to_dict())
    jinja = whole_template.compiled_template(name, tokenizer, options)  # prepared once (compat's cache)
    wrapped = whole_template.wrap(prep.template, tok, data_args, jinja=jinja)
    ref = TrainingReference(prep)
    if type(wrapped.mm_plugin).__name__ != "BasePlugin":
        # a multimodal template: text-only samples, where its plugin's hooks are identities (as in
        # lf.compat.encode_training), but LF's processor insists on a processor object a text check lacks
        from llamafactory.data.mm_plugin import get_mm_plugin

        wrapped = copy.copy(wrapped)
        wrapped.mm_plugin = get_mm_plugin(name="base")
        out["text_only"] = True
    for conv in corpus_conversations():
        try:
            lf = msgmap.to_lf(conv["messages"], conv.get("tools"), thought_words=ref.thought_words,
                              tool_call_words=ref.tool_call_words)
            lf_compat.encode_training(prep, lf.messages, lf.system, lf.tools)  # LF itself can encode it
        except Exception:
            out["unsupported"] += 1
            continue
        out["cases"] += 1
        try:
            text = tok.apply_chat_template(conv["messages"], tools=conv.get("tools"), chat_template=jinja,
                                           tokenize=False)
            enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
            ok = True
            for v in variants:
                data = SimpleNamespace(cutoff_len=1 << 20, **v)
                proc = SupervisedDatasetProcessor(template=wrapped, tokenizer=tok, processor=None, data_args=data)
                msgs = lf.messages
                ids, labels = proc._encode_data_example(msgs[:-1], msgs[-1:], lf.system, lf.tools, [], [], [])
                want = list(enc["input_ids"]) + ([tok.eos_token_id] if wrapped.efficient_eos else [])
                pieces = wrapped.whole_pieces(tok, msgs, lf.system, lf.tools,
                                              *((v["mask_history"] and not wrapped.preserve_thinking,)
                                                if lf_compat.capabilities().discarding_history_cot else ()))
                exp = _expected_labels(list(enc["offset_mapping"]), list(enc["input_ids"]), pieces, data,
                                       tok.eos_token_id, wrapped.efficient_eos, IGNORE_INDEX)
                if ids != want:
                    out["failures"].append((conv["id"], v, "ids"))
                    ok = False
                elif labels != exp:
                    out["failures"].append((conv["id"], v, "labels"))
                    ok = False
            out["exact"] += ok
        except Exception as e:  # a whole-mode refusal is a failure of the claim
            out["failures"].append((conv["id"], options.mask_history, f"{type(e).__name__}: {str(e)[:300]}"))
