"""LMDeploy's JSON chat template (``lf_template_ext/compiler/lmdeploy.py``), checked with LMDeploy's own code.

For every LF template: emit the JSON, write it to a file and load it with lmdeploy's
``ChatTemplateConfig.from_json`` (what ``lmdeploy serve api_server DIR --chat-template FILE`` does),
render the probe corpus with its ``messages2prompt``, tokenize with
``lmdeploy.tokenizer.Tokenizer(DIR).encode(prompt, add_bos=True)`` (the serving path: HF
``add_special_tokens=True``, then a doubled BOS dropped) on the LF-fixed harness tokenizer saved to a
directory, and compare with LF's training ids (``verifier.reference_ids``). Loading and rendering are
``lf_template_ext/render/lmdeploy.py``'s, which ``lf-template check --engine lmdeploy`` uses too.

Each conversation gives two cases:

* ``gen``: all messages but the last answer (LMDeploy appends the assistant box) against LF's prompt
  ids of the last turn;
* ``full``: the whole conversation. LMDeploy renders a final assistant message as a prefill (it strips
  ``eoa + separator``); the check appends ``eoa`` back (LF's last turn ends with the assistant slot's
  end and no next-turn header), so the last answer's history rendering is compared too.

Rows: every template at LF's default options, and the reasoning templates trained with
``enable_thinking`` false and null. Every feature the emitted JSON claims must be token-identical, or boundary-only where
docs/coverage.md already says boundary for that template and column (a BPE merge across LF's piece
boundaries, the same for every engine). Every feature it declines must really differ when rendered
anyway, so a refusal is never just caution. docs/engines-lmdeploy.md must be the table these runs
produce (``python scripts/lmdeploy_table.py`` writes it).

Conversations adapted to what a feature means (documented in the table's header):

* a probe's system message is dropped when ``system`` is not supported (``adversarial``, ``reasoning``);
* ``adversarial`` writes ``{{idx}}`` as ``{idx}``: LF replaces a literal ``{{idx}}`` in user content
  with the turn index, a quirk LMDeploy cannot copy; with thinking off, answers lose their leading
  newlines, as LF's ``remove_thought`` strips them. Each row also renders both quirks as they are and
  checks that they differ exactly where LF applies them;
* ``tool_results``: ``tools_no_system`` without the tools list, the call sent as assistant content in
  LF's format (LF's own function-turn text), because LMDeploy drops ``tool_calls``.
"""

from __future__ import annotations

import atexit
import copy
import dataclasses
import datetime as _dt
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Optional

import lmdeploy
import lmdeploy.model as lmd_model
import pytest
from harness import FAMILY, QWEN25, fixture_tokenizer, harness_tokenizer, template_markers
from lmdeploy.tokenizer import Tokenizer as LMDeployTokenizer
from lmdeploy.utils import _stop_words as lmdeploy_stop_words

from lf_template_ext.compiler import lmdeploy as engine
from lf_template_ext.errors import BadInputError, UnsupportedTemplateError
from lf_template_ext.lf import compat as lf_compat
from lf_template_ext.model.corpus import probe_corpus
from lf_template_ext.model.options import TemplateOptions
from lf_template_ext.render import lmdeploy as lmdeploy_side
from lf_template_ext.verifier.probe import reference_ids
from lf_template_ext.verifier.report import CaseResult, compare_ids

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "engines-lmdeploy.md"
COVERAGE = REPO / "docs" / "coverage.md"
FROZEN = _dt.datetime(2026, 11, 28, 12, 0, 0)

#: Templates whose JSON is emitted (plain chat exact) at LF's default options, of 121 in LF 0.9.5,
#: and how many JSONs claim each feature. Reasoning templates are refused at the default
#: enable_thinking=true; THINKING_OFF counts them trained with enable_thinking=false (25 templates).
EXPECTED = {
    "expressible": 89,
    "plain": 89,
    "system": 46,
    "empty_system": 54,
    "tool_results": 80,
    "tools": 0,
    "reasoning": 0,
}
EXPECTED_THINKING_OFF = {
    "expressible": 18, "plain": 18, "system": 11, "empty_system": 10, "tool_results": 14, "tools": 0, "reasoning": 18,
}  # fmt: skip

COLUMNS = ("plain", "system", "empty_system", "gen_prompt", "tool_results", "tools", "reasoning", "adversarial")
HEADINGS = ("plain", "system", "empty system", "gen prompt", "tool results", "tools", "reasoning", "adversarial")
COVERAGE_COLUMN = {
    "plain": "plain",
    "system": "system",
    "empty_system": "system",
    "gen_prompt": "gen_prompt",
    "tool_results": "tools",
    "reasoning": "reasoning",
    "adversarial": "adversarial",
}
PLAIN = ("plain", "multi_turn_no_system")
SYSTEM = ("system", "multi_turn")
EMPTY_SYSTEM = ("empty_system",)
TOOLS = ("tools", "tools_no_system", "tools_parallel", "tools_with_text")
REASONING = ("reasoning", "reasoning_history_only")
ADVERSARIAL = ("adversarial", "whitespace")

VARIANTS = {
    "default": TemplateOptions(),
    "enable_thinking=false": TemplateOptions(enable_thinking=False),
    "enable_thinking=null": TemplateOptions(enable_thinking=None),
}

# LMDeploy's config.json needs: it reads the model type (gpt_oss / ChatGLM tokenizer classes) and the
# architecture (transformers version check) from the model dir before it loads the tokenizer.
_ARCH = {
    "Qwen2.5-1.5B-Instruct": ("qwen2", "Qwen2ForCausalLM"),
    "qwen2.5+markers": ("qwen2", "Qwen2ForCausalLM"),
    "Qwen3-4B": ("qwen3", "Qwen3ForCausalLM"),
    "Meta-Llama-3.1-8B-Instruct": ("llama", "LlamaForCausalLM"),
    "gemma-3-1b-it": ("gemma3_text", "Gemma3ForCausalLM"),
    "Mistral-7B-Instruct-v0.3": ("mistral", "MistralForCausalLM"),
}


# -- inputs: harness tokenizers, prepared specs, saved LMDeploy tokenizers ----------------------
#
# Costs per template (a 150k vocabulary): LF's prepare copies the tokenizer (~1 s), lmdeploy's
# Tokenizer loads a saved dir (~1.5 s) and its stop-word lookup scans the vocabulary (~0.7 s). Templates
# are processed in groups that share a harness tokenizer (and so, mostly, the saved dir), groups run in
# WORKERS forked processes, and nothing heavy is kept after its group (a prepared tokenizer is ~50 MB).

# Under pytest-xdist the suite already fills the cores: one process here, unless asked.
WORKERS = max(1, int(os.environ.get("LF_LMDEPLOY_TEST_WORKERS", "1" if os.environ.get("PYTEST_XDIST_WORKER") else "2")))
_WORK: list[Path] = []


def _workdir() -> Path:
    if not _WORK:
        d = Path(tempfile.mkdtemp(prefix="lf-lmdeploy-"))
        atexit.register(shutil.rmtree, d, True)
        _WORK.append(d)
    return _WORK[0]


def harness_key(name: str) -> tuple:
    """Templates with equal keys get equal ``harness_tokenizer`` results (it copies on every call)."""
    template = lf_compat._template_module().TEMPLATES[name]
    base = set(fixture_tokenizer(QWEN25).get_added_vocab())
    markers = tuple(m for m in template_markers(template) if m not in base)
    return (FAMILY.get(name), name.startswith(("qwen", "llava_next_qwen")), markers)


_HARNESS: dict[tuple, tuple[Any, str]] = {}


def _harness(name: str) -> tuple[Any, str]:
    key = harness_key(name)
    if key not in _HARNESS:
        _HARNESS[key] = harness_tokenizer(name)
    return _HARNESS[key]


@dataclasses.dataclass
class Served:
    """An LF-fixed tokenizer saved as a model dir and loaded back by LMDeploy."""

    path: Path
    tokenizer: Any  # lmdeploy.tokenizer.Tokenizer
    adds_bos: bool  # what LMDeploy's encode(add_bos=True) does with it


_SERVED: dict[tuple, Served] = {}
_SERVED_MAX = 3  # most templates share one (the marked Qwen2.5 harness): saving and loading it costs ~3 s
_TOKEN2ID: dict[str, tuple[int, dict[str, int]]] = {}


def _served(tokenizer: Any, label: str) -> Served:
    """LMDeploy's tokenizer for an LF-fixed tokenizer, saved and loaded back.

    Shared by the templates whose fixed tokenizers split text the same way: same base fixture, same
    added tokens (ids included) and same BOS. They may differ in ``eos_token``/``pad_token``, which
    tokenization does not read (the stop-word check maps words through the vocabulary).
    """
    key = (label, tuple(sorted(tokenizer.get_added_vocab().items())), tokenizer.bos_token)
    if key not in _SERVED:
        while len(_SERVED) >= _SERVED_MAX:  # oldest first: groups of one harness tokenizer run together
            shutil.rmtree(_SERVED.pop(next(iter(_SERVED))).path, ignore_errors=True)
        import transformers

        path = _workdir() / f"tok-{os.getpid()}-{len(os.listdir(_workdir()))}"
        tokenizer.save_pretrained(str(path))
        model_type, arch = _ARCH[label]
        (path / "config.json").write_text(
            json.dumps(
                {"architectures": [arch], "model_type": model_type, "transformers_version": transformers.__version__}
            )
        )
        tok = LMDeployTokenizer(str(path))
        _share_vocab_scan(tok, label)
        bos = tok.bos_token_id
        adds = bos is not None and tok.encode("a", add_bos=True)[:1] == [bos]
        _SERVED[key] = Served(path, tok, adds)
    return _SERVED[key]


def _share_vocab_scan(tok: Any, label: str) -> None:
    """Reuse LMDeploy's stop-word vocabulary scan between tokenizers of one base fixture.

    ``HuggingFaceTokenizer.indexes_containing_token`` builds ``token2id`` over ``range(vocab_size)``
    (the base vocabulary; added tokens come after it) on first use: ~1 s for 150k entries. Tokenizers
    built from the same fixture have the same base vocabulary, so the first one's map (computed by
    LMDeploy itself, see :func:`_remember_vocab_scan`) is the map every other one would compute.
    """
    if label in _TOKEN2ID:
        size, maybe_bytes, token2id = _TOKEN2ID[label]
        assert tok.model.vocab_size == size, (label, tok.model.vocab_size, size)
        tok.model._maybe_decode_bytes = maybe_bytes
        tok.model.token2id = token2id


def _remember_vocab_scan(tok: Any, label: str) -> None:
    if label not in _TOKEN2ID and tok.model.token2id:
        _TOKEN2ID[label] = (tok.model.vocab_size, tok.model._maybe_decode_bytes, tok.model.token2id)


def _release() -> None:
    """Drop the tokenizers of a finished group (memory and the saved dirs)."""
    for s in _SERVED.values():
        shutil.rmtree(s.path, ignore_errors=True)
    _SERVED.clear()
    _HARNESS.clear()


@dataclasses.dataclass
class Emitted:
    name: str
    variant: str
    kind: str
    label: str
    prepared: Any
    template: Optional[engine.LMDeployTemplate]
    refused: Optional[UnsupportedTemplateError]
    helper_adds_bos: bool

    @property
    def served(self) -> Served:
        return _served(self.prepared.tokenizer, self.label)


def emitted(name: str, variant: str = "default") -> Emitted:
    """Prepare the LF template on its harness tokenizer and emit the JSON (or the refusal)."""
    tok, label = _harness(name)
    prepared = lf_compat.prepare(name, tok, VARIANTS[variant])
    spec = lf_compat.template_spec(prepared)
    facts = lf_compat.tokenizer_facts(prepared.tokenizer)
    adds = engine.tokenizer_adds_bos(prepared.tokenizer)
    try:
        tpl = engine.lmdeploy_template(spec, facts, model_name=f"lf-test-{name}", tokenizer_adds_bos=adds)
        refused = None
    except UnsupportedTemplateError as e:
        tpl, refused = None, e
    return Emitted(name, variant, spec.kind, label, prepared, tpl, refused, adds)


# -- rendering with LMDeploy ---------------------------------------------------------------------


def load_json(tpl: engine.LMDeployTemplate, name: str) -> Any:
    """Write the JSON to a file and load it as ``lmdeploy serve --chat-template FILE`` does."""
    return lmdeploy_side.load_chat_template(tpl.config, str(_workdir() / f"{name}.json"))


def lmdeploy_case(
    case_id: str, chat: Any, served: Served, messages: list[dict[str, Any]], expected: list[int], full: bool
) -> CaseResult:
    """``full``: a final answer closed with ``eoa`` (LMDeploy renders it as a prefill), as the check does."""
    prompt = lmdeploy_side.prompt(chat, messages, full)
    actual = served.tokenizer.encode(prompt, add_bos=True)
    return compare_ids(case_id, expected, actual, served.tokenizer.model.model)


def conversation_cases(e: Emitted, chat: Any, conv: dict[str, Any]) -> list[CaseResult]:
    cid = conv["id"]
    try:
        with lf_compat.frozen_time(FROZEN):
            expected, prompt = reference_ids(e.prepared, conv)
    except Exception as err:  # LF itself cannot encode it
        reason = f"LF cannot encode this conversation: {type(err).__name__}: {err}"
        return [
            CaseResult(f"{cid}/full", "unsupported", reason=reason),
            CaseResult(f"{cid}/gen", "unsupported", reason=reason),
        ]
    msgs = conv["messages"]
    return [
        lmdeploy_case(f"{cid}/full", chat, e.served, msgs, expected, full=True),
        lmdeploy_case(f"{cid}/gen", chat, e.served, msgs[:-1], prompt, full=False),
    ]


def tool_result_cases(e: Emitted, chat: Any) -> list[CaseResult]:
    """``tools_no_system`` without tools, its call sent as assistant content in LF's own format.

    The call text is LF's function turn (its training ids decoded) minus the turn end ``eoa``; no
    cases when that turn does not end with ``eoa`` (LMDeploy cannot write it as an answer then).
    """
    messages = next(p for p in probe_corpus() if p["id"] == "tools_no_system")["messages"]
    try:
        with lf_compat.frozen_time(FROZEN):
            call_full, call_prompt = reference_ids(e.prepared, {"messages": messages[:2]})
            expected, prompt = reference_ids(e.prepared, {"messages": messages})
    except Exception:
        return []
    tok = e.prepared.tokenizer
    text = tok.decode(call_full[len(call_prompt) :], skip_special_tokens=False, clean_up_tokenization_spaces=False)
    if not text.endswith(chat.eoa):
        return []
    msgs = copy.deepcopy(messages)
    msgs[1] = {"role": "assistant", "content": text[: len(text) - len(chat.eoa)] if chat.eoa else text}
    return [
        lmdeploy_case("tool_results/full", chat, e.served, msgs, expected, full=True),
        lmdeploy_case("tool_results/gen", chat, e.served, msgs[:-1], prompt, full=False),
    ]


# -- one row per template -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Refusal:
    feature: str
    reason: str
    message: str


@dataclasses.dataclass
class Row:
    """Plain data (it crosses process boundaries): one template's results."""

    name: str
    variant: str
    kind: str
    label: str
    refused: Optional[Refusal]
    template: Optional[engine.LMDeployTemplate]
    cells: dict[str, str]
    cases: dict[str, list[CaseResult]]  # column -> cases
    evidence: dict[str, Optional[bool]]  # declined feature -> whether rendering it anyway differs
    stop_ids: tuple[list[int], list[int]] = ([], [])  # (LMDeploy's, LF's)
    adds_bos: tuple[bool, Optional[bool]] = (False, None)  # (tokenizer_adds_bos(), LMDeploy's encode)
    quirks: dict[str, tuple[bool, str]] = dataclasses.field(default_factory=dict)  # name -> (LF applies it, status)


def _cell(cases: list[CaseResult]) -> str:
    live = [c.status for c in cases if c.status != "unsupported"]
    if not cases:
        return "n/a"
    if not live:
        return "LF cannot encode"
    if "differs" in live:
        return "DIFFERS"
    value = "exact" if all(s == "identical" for s in live) else "boundary"
    if len(live) < len(cases):
        value += f" ({len(cases) - len(live)} unsupported)"
    return value


def _probes(ids: tuple[str, ...], drop_system: bool) -> list[dict[str, Any]]:
    out = []
    for p in probe_corpus():
        if p["id"] in ids:
            if drop_system and p["messages"][0]["role"] == "system":
                p["messages"] = p["messages"][1:]
            out.append(p)
    return out


def _differs(cases: list[CaseResult]) -> Optional[bool]:
    live = [c for c in cases if c.status != "unsupported"]
    return None if not live else any(c.status == "differs" for c in live)


def row(name: str, variant: str = "default") -> Row:
    """Render every probe group of one template with LMDeploy and classify it per column."""
    e = emitted(name, variant)
    reasoning_kind = e.kind in ("reasoning", "glm47")
    if e.refused is not None:
        cells = {c: ("n/a" if c == "reasoning" and not reasoning_kind else "refused") for c in COLUMNS}
        refusal = Refusal(e.refused.feature, e.refused.reason, str(e.refused))
        return Row(name, variant, e.kind, e.label, refusal, None, cells, {}, {}, adds_bos=(e.helper_adds_bos, None))
    tpl = e.template
    chat = load_json(tpl, f"{name}@{variant}")
    no_system = "system" not in tpl.supports
    thinking_off = reasoning_kind and e.prepared.template.enable_thinking is False

    def run(ids: tuple[str, ...], drop_system: bool = False) -> list[CaseResult]:
        return [c for p in _probes(ids, drop_system) for c in conversation_cases(e, chat, p)]

    groups = {"plain": run(PLAIN), "system": run(SYSTEM), "empty_system": run(EMPTY_SYSTEM), "tools": run(TOOLS)}
    adversarial = _probes(ADVERSARIAL, no_system)
    for p in adversarial:
        for m in p["messages"]:
            if m["role"] == "user":
                m["content"] = m["content"].replace("{{idx}}", "{idx}")  # LF's {{idx}} quirk (see the notes)
            if m["role"] == "assistant" and thinking_off:
                m["content"] = m["content"].lstrip("\n")  # LF's remove_thought quirk (see the notes)
    groups["adversarial"] = [c for p in adversarial for c in conversation_cases(e, chat, p)]
    groups["tool_results"] = tool_result_cases(e, chat)
    groups["reasoning"] = run(REASONING, no_system) if reasoning_kind else []

    cells: dict[str, str] = {}
    evidence: dict[str, Optional[bool]] = {}
    for column in COLUMNS:
        if column == "gen_prompt":
            gen = [c for f in ("plain", "system", "empty_system") if f in tpl.supports for c in groups[f]]
            cells[column] = _cell([c for c in gen if c.id.endswith("/gen")])
        elif column == "reasoning" and not reasoning_kind:
            cells[column] = "n/a"
        elif column == "adversarial":
            cells[column] = _cell(groups[column])
        elif column in tpl.supports:
            cases = groups[column]
            if column in ("plain", "system", "empty_system"):  # their /gen cases are the gen_prompt column
                cases = [c for c in cases if c.id.endswith("/full")]
            cells[column] = _cell(cases)
        else:
            cells[column] = "refused"
            evidence[column] = _differs(groups[column])
    stop_ids = (
        sorted(set(lmdeploy_stop_words(chat.stop_words, e.served.tokenizer)[0][0].tolist())),
        sorted(set(lf_compat.stop_token_ids(e.prepared))),
    )
    _remember_vocab_scan(e.served.tokenizer, e.label)
    groups["gen_prompt"] = [c for f in ("plain", "system", "empty_system") for c in groups[f] if c.id.endswith("/gen")]
    return Row(
        name,
        variant,
        e.kind,
        e.label,
        None,
        tpl,
        cells,
        groups,
        evidence,
        stop_ids,
        (e.helper_adds_bos, e.served.adds_bos),
        _quirks(e, chat, thinking_off),
    )


def _quirks(e: Emitted, chat: Any, thinking_off: bool) -> dict[str, tuple[bool, str]]:
    """The two LF quirks the table's probes avoid, rendered as they are: do they really differ?

    ``idx``: LF replaces a literal ``{{idx}}`` in user content with the turn index (``Template``, not
    ``Llama2Template``, passes ``idx``). ``newline``: with thinking off, LF's ``remove_thought`` strips
    the leading newlines of every answer.
    """
    msgs = [{"role": "user", "content": "turn {{idx}}"}, {"role": "assistant", "content": "ok"}]
    expected, _ = reference_ids(e.prepared, {"messages": msgs})
    replaced = "{{idx}}" not in e.prepared.tokenizer.decode(expected)
    out = {"idx": (replaced, lmdeploy_case("idx/full", chat, e.served, msgs, expected, full=True).status)}
    if thinking_off:
        whitespace = next(p for p in probe_corpus() if p["id"] == "whitespace")
        out["newline"] = (True, conversation_cases(e, chat, whitespace)[0].status)
    return out


def _group_rows(tasks: list[tuple[str, str]]) -> list[Row]:
    return [row(name, variant) for name, variant in tasks]


def all_rows(workers: int = WORKERS, thinking_null: bool = False) -> tuple[list[Row], list[Row], list[Row]]:
    """Rows: every template at LF's default options; the reasoning ones with enable_thinking=false
    (and, when asked, =null).

    Templates sharing a harness tokenizer form one task; tasks run in ``workers`` forked processes
    (LF, transformers and lmdeploy are imported before the fork).
    """
    names = lf_compat.template_names()
    templates = lf_compat._template_module().TEMPLATES
    reasoning = {n for n in names if lf_compat.template_kind(templates[n]) in ("reasoning", "glm47")}
    groups: dict[tuple, list[tuple[str, str]]] = {}
    for n in names:
        tasks = groups.setdefault(harness_key(n), [])
        tasks.append((n, "default"))
        if n in reasoning:
            tasks.append((n, "enable_thinking=false"))
            if thinking_null:
                tasks.append((n, "enable_thinking=null"))
    ordered = sorted(groups.values(), key=len, reverse=True)
    _workdir()  # created (and removed at exit) by this process, shared with the workers
    try:
        if workers > 1:
            import multiprocessing

            with multiprocessing.get_context("fork").Pool(workers) as pool:
                results = pool.map(_group_rows, ordered, chunksize=1)
        else:
            results = [_group_rows(g) for g in ordered]
    finally:
        _release()
    by_key = {(r.name, r.variant): r for rows in results for r in rows}
    default = [by_key[(n, "default")] for n in names]
    thinking_off = [by_key[(n, "enable_thinking=false")] for n in names if n in reasoning]
    thinking_nulls = [by_key[(n, "enable_thinking=null")] for n in names if n in reasoning and thinking_null]
    return default, thinking_off, thinking_nulls


# -- the table (scripts/lmdeploy_table.py writes it to docs/engines-lmdeploy.md) ------------------


def table_markdown(rows: list[Row]) -> str:
    head = "| template | class | tokenizer | " + " | ".join(HEADINGS) + " |"
    lines = [head, "|" + "---|" * (3 + len(COLUMNS))]
    for r in rows:
        lines.append(f"| {r.name} | {r.kind} | {r.label} | " + " | ".join(r.cells[c] for c in COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def reasons_markdown(rows: list[Row]) -> str:
    """Why each refused template / feature is refused, templates with the same reason on one line.

    The pointer to LMDeploy's HF-template path that ends most reasons, and the tools reason (the same
    for every template), are stated once in the doc's text instead.
    """
    grouped: dict[tuple[str, str], list[str]] = {}
    for r in rows:
        if r.refused is not None:
            items = [(f"refused ({r.refused.feature})", r.refused.reason)]
        elif r.template is not None:
            items = [(f, reason) for f, reason in r.template.unsupported if f != "tools"]
        else:
            items = []
        for feature, reason in items:
            reason = reason.replace(engine.HF_PATH, "see --chat-template hf").replace("; see", ": see")
            grouped.setdefault((feature.replace("_", " "), reason), []).append(r.name)
    lines = [
        f"- {', '.join(f'`{n}`' for n in names)}: {feature}: {reason}" for (feature, reason), names in grouped.items()
    ]
    return "\n".join(lines) + "\n"


def counts(rows: list[Row]) -> dict[str, int]:
    out = {"expressible": sum(r.refused is None for r in rows)}
    for f in engine.FEATURES:
        out[f] = sum(r.template is not None and f in r.template.supports for r in rows)
    return out


def _coverage_cells() -> dict[str, dict[str, str]]:
    """docs/coverage.md's cells per template, read by the table's header (``scripts/engines_table.read_table``)."""
    sys.path.insert(0, str(REPO / "scripts"))
    from engines_table import read_table

    cols = ("plain", "system", "gen_prompt", "tools", "reasoning", "adversarial", "multimodal")
    out = {name: {c: cells[c] for c in cols} for name, cells in read_table(COVERAGE, "template").items()}
    assert len(out) == len(lf_compat.template_names()), f"{COVERAGE}: {len(out)} template rows"
    return out


def row_problems(r: Row, coverage: dict[str, dict[str, str]]) -> list[str]:
    """What is wrong with a row: text differences in claimed features, unjustified boundaries/refusals."""
    problems = []
    if r.refused is not None:
        e = r.refused
        if not e.feature or f"({e.feature})" not in e.message or f"'{r.name}'" not in e.message:
            problems.append(f"refusal does not name the template and feature: {e.message}")
        if e.feature not in e.reason.lower() or ("--chat-template" not in e.reason and e.feature != "bos"):
            problems.append(f"refusal reason does not explain {e.feature!r} or point at another path: {e.reason}")
        return problems
    for column, value in r.cells.items():
        if value == "DIFFERS":
            bad = [f"{c.id}: {c.reason or c.first_diff}" for c in r.cases[column] if c.status == "differs"]
            problems.append(f"{column}: LMDeploy's ids differ from LF's: {bad[:2]}")
        if value.startswith("boundary"):
            cov = coverage.get(r.name, {}).get(COVERAGE_COLUMN[column], "")
            if not cov.startswith("boundary"):
                problems.append(f"{column}: boundary-only, but docs/coverage.md says {cov!r} for {r.name}")
        if value == "LF cannot encode" or (value == "n/a" and column in r.template.supports):
            problems.append(f"{column}: claimed, but no case LF can encode, so nothing was checked")
    for feature, differs in r.evidence.items():
        if differs is False:
            problems.append(f"{feature} is declined but LMDeploy renders its probes exactly: the refusal is wrong")
    if "plain" not in r.template.supports:
        problems.append("a JSON was emitted without plain-chat support")
    if r.stop_ids[0] != r.stop_ids[1]:
        problems.append(f"LMDeploy's stop ids {r.stop_ids[0]} != LF's {r.stop_ids[1]}")
    for quirk, (applies, status) in r.quirks.items():
        if (status == "differs") != applies:
            problems.append(
                f"LF quirk {quirk!r} {'applies' if applies else 'does not apply'} but LMDeploy's ids: {status}"
            )
    if "idx" in r.quirks and r.quirks["idx"][0] != (r.kind != "llama2"):
        problems.append("LF's {{idx}} replacement is expected in every template class but Llama2Template")
    if r.adds_bos[0] != r.adds_bos[1]:
        problems.append(f"tokenizer_adds_bos() says {r.adds_bos[0]}, LMDeploy's encode says {r.adds_bos[1]}")
    return problems


# -- tests ---------------------------------------------------------------------------------------


def test_lmdeploy_is_the_version_the_rules_were_read_from():
    assert lmdeploy.__version__ == engine.LMDEPLOY_VERSION


@pytest.mark.slow
def test_every_template_renders_lf_ids_or_is_refused(capsys):
    coverage = _coverage_cells()
    default, thinking_off, thinking_null = all_rows(thinking_null=True)
    problems = []
    for r in default + thinking_off + thinking_null:
        problems += [f"{r.name} [{r.variant}] {p}" for p in row_problems(r, coverage)]
    for r in thinking_off:
        if r.refused is None and "reasoning" not in r.template.supports:
            problems.append(f"{r.name}: enable_thinking=false JSON does not claim reasoning")
    for off, null in zip(thinking_off, thinking_null):
        # null: plain chat as with false (the empty thought on the prompt side), history thoughts kept by LF
        if (off.refused is None) != (null.refused is None):
            problems.append(f"{null.name}: enable_thinking=null and =false differ in expressibility")
        elif null.refused is None and (
            null.evidence.get("reasoning") is not True or "null" not in null.template.reason("reasoning")
        ):
            problems.append(
                f"{null.name}: enable_thinking=null JSON must decline reasoning, and its probes must differ"
            )
    assert not problems, "\n".join(problems)

    c, c_off = counts(default), counts(thinking_off)
    with capsys.disabled():
        print(f"\nLMDeploy JSON: {c['expressible']} of {len(default)} LF templates expressible; per feature: {c}")
        print(f"reasoning templates with enable_thinking=false ({len(thinking_off)}): {c_off}")
    assert len(default) == 121 and len(thinking_off) == 25
    assert c == EXPECTED
    assert c_off == EXPECTED_THINKING_OFF

    # the committed table is the one these runs produce
    assert DOC.exists(), f"{DOC} missing; run python scripts/lmdeploy_table.py"
    doc = DOC.read_text(encoding="utf-8")
    assert table_markdown(default) in doc, "docs/engines-lmdeploy.md is stale; run python scripts/lmdeploy_table.py"
    assert table_markdown(thinking_off) in doc, (
        "docs/engines-lmdeploy.md is stale; run python scripts/lmdeploy_table.py"
    )


def test_mask_history_is_refused_naming_the_feature():
    tok, _ = _harness("qwen3")
    prepared = lf_compat.prepare("qwen3", tok, TemplateOptions(enable_thinking=False, mask_history=True))
    spec = lf_compat.template_spec(prepared)
    with pytest.raises(UnsupportedTemplateError) as info:
        engine.chat_template_config(spec, lf_compat.tokenizer_facts(prepared.tokenizer), model_name="x")
    assert info.value.feature == "reasoning" and "mask_history" in info.value.reason and "'qwen3'" in str(info.value)


def test_extra_bos_is_refused_and_real():
    """A tokenizer that adds BOS, under a template LF encoded without one (alpaca has no prefix)."""
    label = "Meta-Llama-3.1-8B-Instruct"
    prepared = lf_compat.prepare("alpaca", fixture_tokenizer(f"meta-llama--{label}"), TemplateOptions())
    spec, facts = lf_compat.template_spec(prepared), lf_compat.tokenizer_facts(prepared.tokenizer)
    assert engine.tokenizer_adds_bos(prepared.tokenizer)
    with pytest.raises(UnsupportedTemplateError) as info:
        engine.lmdeploy_template(spec, facts, model_name="x", tokenizer_adds_bos=True)
    assert info.value.feature == "bos" and "add_bos_token" in info.value.reason and "'alpaca'" in str(info.value)
    # What LMDeploy does with the JSON a caller gets without saying: one BOS more than LF trained with.
    tpl = engine.lmdeploy_template(spec, facts, model_name="x", tokenizer_adds_bos=None)
    chat, served = load_json(tpl, "alpaca-llama3"), _served(prepared.tokenizer, label)
    messages = next(p for p in probe_corpus() if p["id"] == "plain")["messages"]
    expected, _ = reference_ids(prepared, {"messages": messages})
    actual = served.tokenizer.encode(chat.messages2prompt(messages) + chat.eoa, add_bos=True)
    assert actual == [prepared.tokenizer.bos_token_id] + expected


def test_builtin_names_are_lmdeploys():
    builtin = {k for k, v in lmd_model.MODELS.module_dict.items() if v is not lmd_model.BaseChatTemplate or k == "base"}
    assert builtin == set(engine.BUILTIN_TEMPLATE_NAMES)


@pytest.mark.parametrize("model_name", ["vicuna", "hf", "llama2"])
def test_builtin_model_name_is_renamed_to_a_base_template(model_name):
    e = emitted("qwen")
    spec = lf_compat.template_spec(e.prepared)
    tpl = engine.lmdeploy_template(spec, lf_compat.tokenizer_facts(e.prepared.tokenizer), model_name=model_name)
    assert tpl.config["model_name"] != model_name and any(model_name in n for n in tpl.notes)
    chat = load_json(tpl, f"renamed-{model_name}")
    assert type(chat) is lmd_model.BaseChatTemplate
    with pytest.raises(BadInputError):
        engine.chat_template_config(spec, lf_compat.tokenizer_facts(e.prepared.tokenizer), model_name=" ")


def test_json_null_meta_instruction_is_not_none_in_lmdeploy():
    """Why the rule never relies on meta_instruction=None: LMDeploy's from_json path turns it into ''."""
    path = _workdir() / "null-meta.json"
    path.write_text(
        json.dumps({"model_name": "lf-null-meta", "system": "<S>", "meta_instruction": None, "eosys": "</S>"})
    )
    chat = lmd_model.ChatTemplateConfig.from_json(str(path)).chat_template()
    assert chat.messages2prompt([{"role": "user", "content": "hi"}]).startswith("<S></S>")


def test_chat_template_hf_selects_the_models_jinja():
    """The refusals' advice: ``--chat-template hf`` is LMDeploy's HF-template path."""
    e = emitted("qwen")
    chat = lmd_model.ChatTemplateConfig(model_name="hf", model_path=str(e.served.path)).chat_template()
    assert type(chat) is lmd_model.HFChatTemplate


NAMES_TO_MATCH = [
    "llama2-7b-sft",
    "/data/runs/Llama-2-13b-chat/checkpoint-100",
    "my-codellama-ft",
    "vicuna-13b-lora",
    "WizardLM-7B",
    "llava-v1.5-7b",
    "llava-v1.6-34b",
    "llava-v1.6-mistral-7b",
    "mistral-7b-instruct-sft",
    "Mixtral-8x7B-Instruct",
    "mistral-7b-base-sft",
    "chatglm2-6b",
    "cogvlm-chat",
    "cogvlm2-llama3",
    "internvl-chat-v1-1",
    "deepseek-vl-7b-chat",
    "deepseek-vl2-tiny",
    "qwen2.5-7b-sft",
    "llama3-8b-sft",
    "output/checkpoint-500",
    "saves/Qwen3-4B/lora/sft",
]


def _lmdeploy_match(path: str) -> Optional[str]:
    """lmdeploy.model.get_chat_template's loop, minus the matchers that read files instead of the name."""
    for key, cls in lmd_model.MODELS.module_dict.items():
        if key in ("hf", "deepseek-v4", "deepseek-v32", "deepseek-v3.2"):
            continue  # HF loads the tokenizer; DeepSeek V3.2/V4 read config.json's architecture
        if cls.match(path):
            return key
    return None


@pytest.mark.parametrize("path", NAMES_TO_MATCH)
def test_name_match_warning_agrees_with_lmdeploy(path):
    real = _lmdeploy_match(path)
    assert engine.builtin_template_for_path(path) == real
    warning = engine.name_match_warning(path)
    if real is None:
        assert warning is None
    else:
        assert warning is not None and f"'{real}'" in warning and "--chat-template" in warning
