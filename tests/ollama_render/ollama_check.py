"""Check an emitted Ollama TEMPLATE against LF's training ids, through Go's own text/template.

Shared by ``tests/test_engine_ollama.py`` and ``scripts/ollama_table.py``. For one LF template:

1. LF's real ``get_template_and_fix_tokenizer`` on the harness tokenizer (``lf_compat.prepare``),
   snapshot to a spec, ``compiler.ollama.go_template``;
2. every probe the template claims to support, in Ollama's native request shape (``thinking``
   field, tool-call ``arguments`` as objects), rendered by ``ollama_render`` (Ollama's data path
   re-created in Go, ``lf_template_ext/render/ollama_render/main.go``, shipped with the package for
   ``lf-template check --engine ollama``; ``lf_template_ext.render.ollama_go`` builds and runs it)
   -- all cases of a template in one process;
3. the text tokenized whole with ``add_special_tokens=False`` (the template writes LF's BOS itself)
   and compared with ``verifier.reference_ids`` (full conversation; generation prompt = the
   conversation minus its last answer, which is what Ollama renders for a new turn).

Tool probes are sent with their JSON keys sorted (``canonical``): Ollama decodes tools and
arguments into Go maps and loses the client's key order, so the template's promise is
token-identity for key-sorted JSON (``OllamaTemplate.normalised``). The unsorted originals are
rendered too, to tell "exact" from "normalised-JSON" in the table.
"""

from __future__ import annotations

import copy
import datetime as _dt
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lf_template_ext.render.ollama_go import to_ollama  # the request shape, shared with `check --engine ollama`

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
FROZEN = _dt.datetime(2026, 11, 28, 12, 0, 0)  # harness.FROZEN: Llama-3 tool prompts embed the date
FROZEN_GO = "2026-11-28T12:00:00Z"

PLAIN = ("plain", "multi_turn", "multi_turn_no_system")
SYSTEM = ("system", "empty_system")
TOOLS = ("tools", "tools_no_system", "tools_parallel", "tools_with_text")
REASONING = ("reasoning", "reasoning_history_only", "reasoning_tools")
ADVERSARIAL = ("adversarial", "whitespace")
COLUMNS = ("plain", "system", "gen_prompt", "tools", "reasoning")
CUTOFF_LEN = 4096

#: Every JSON shape Ollama's tool structs carry: nested properties, anyOf, array items, type lists,
#: numbers, null and non-ASCII in arguments. Enum values are strings (LF's default format joins them).
RICH_TOOL = {
    "type": "function",
    "function": {
        "name": "book_trip",
        "description": 'Book a trip. Quotes "ok", backslash \\ and 中文.',
        "parameters": {
            "type": "object",
            "properties": {
                "when": {"type": ["string", "null"], "description": "ISO date"},
                "who": {
                    "type": "array",
                    "description": "Travellers",
                    "items": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
                },
                "class": {"type": "string", "enum": ["economy", "business"]},
                "opts": {
                    "type": "object",
                    "description": "Options",
                    "properties": {"window": {"type": "boolean"}, "meal": {"type": "string", "description": "Meal"}},
                    "required": ["window"],
                },
                "mode": {"anyOf": [{"type": "string"}, {"type": "integer"}], "description": "Mode"},
            },
            "required": ["when", "who"],
        },
    },
}

RICH = {
    "id": "tools_rich",
    "tools": [RICH_TOOL],
    "messages": [
        {"role": "user", "content": "Book it."},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "type": "function",
                    "function": {
                        "name": "book_trip",
                        "arguments": {
                            "when": None,
                            "who": [{"name": "Ann", "age": 30}, {"name": "Bo"}],
                            "class": "economy",
                            "opts": {"window": True, "meal": "veg", "extra": []},
                            "mode": 7,
                            "ratio": 0.5,
                            "note": 'a "quoted" \\ path, 中文, tab\there',
                        },
                    },
                }
            ],
        },
        {"role": "tool", "content": "booked"},
        {"role": "assistant", "content": "Done."},
    ],
}

#: Go's ``json`` (json.Marshal) escapes <, > and & where Python's json.dumps does not: declared.
ESCAPE = {
    "id": "tools_escape",
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "cmp",
                "description": "Is a < b && c > d?",
                "parameters": {"type": "object", "properties": {"expr": {"type": "string", "description": "<expr>"}}},
            },
        }
    ],
    "messages": [
        {"role": "user", "content": "Compare."},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"type": "function", "function": {"name": "cmp", "arguments": {"expr": "a<b & c>d"}}}],
        },
        {"role": "tool", "content": "true"},
        {"role": "assistant", "content": "Yes."},
    ],
}
GO_JSON_ESCAPES = {"\\u003c": "<", "\\u003e": ">", "\\u0026": "&"}


def build_renderer(out_dir: str | None = None) -> Path:
    """``go build`` the packaged renderer (``lf_template_ext/render/ollama_render``) into ``out_dir``
    (a fresh temp dir by default)."""
    from lf_template_ext.render import ollama_go

    return ollama_go.build(out_dir or tempfile.mkdtemp(prefix="ollama_render-"))


def render(binary: Path, template: str, cases: list[dict[str, Any]], *, system: str = "") -> dict[str, Any]:
    """Render ``cases`` (``{"id", "messages", "tools"?, "think"?}``) with one Go process, at ``FROZEN_GO``."""
    from lf_template_ext.render import ollama_go

    return ollama_go.render(binary, template, cases, system=system, now=FROZEN_GO)


def canonical(value: Any) -> Any:
    """``value`` with every JSON object's keys in sorted order (what Ollama's Go maps give back)."""
    if isinstance(value, dict):
        return {k: canonical(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [canonical(v) for v in value]
    return value


def canonical_conversation(conv: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(conv)
    if out.get("tools"):
        out["tools"] = canonical(out["tools"])
    for m in out["messages"]:
        for call in m.get("tool_calls") or []:
            call["function"]["arguments"] = canonical(call["function"]["arguments"])
    return out


# -- one template ---------------------------------------------------------------------------------


@dataclass
class Case:
    id: str
    column: str | None  # table column (None: checked, not tabulated)
    coverage: str  # docs/coverage.md column whose "boundary" permits boundary-only here
    status: str  # identical | boundary_only | differs | unsupported | refused
    reason: str = ""
    normalised: bool = False  # compared on key-sorted JSON
    first_diff: Any = None
    go_text: str = ""  # kept for the informational ("~") cases only
    lf_text: str = ""


@dataclass
class Row:
    template: str
    kind: str
    tokenizer: str
    supports: frozenset
    normalised: frozenset
    cells: dict[str, str] = field(default_factory=dict)
    cases: list[Case] = field(default_factory=list)
    capabilities: list[str] = field(default_factory=list)
    thinking_tags: tuple[str, str] = ("", "")
    tool_round_trip: bool = False  # what server/images.go::goTemplateHasToolRoundTrip sees
    expected_tags: tuple[str, str] | None = None
    refusal: str = ""
    unsorted_exact: bool | None = None
    notes: tuple[str, ...] = ()
    template_text: str = ""
    modelfile_text: str = ""
    stop_words: tuple[str, ...] = ()


def _needs(probe_id: str) -> set[str]:
    """Features of ``OllamaTemplate.supports`` a probe needs."""
    if probe_id in TOOLS or probe_id in ("tools_rich", "tools_escape"):
        return {"tools", "tool_calls", "tool_results"}
    if probe_id == "reasoning_tools":
        return {"reasoning", "tools", "tool_calls", "tool_results"}
    if probe_id in REASONING:
        return {"reasoning"}
    return {"plain"}


def _column(probe_id: str, suffix: str) -> tuple[str | None, str]:
    if probe_id in ("tools_rich", "tools_escape"):
        return None, "tools"
    if probe_id in PLAIN:
        return ("plain" if suffix == "full" else "gen_prompt"), ("plain" if suffix == "full" else "gen_prompt")
    if probe_id in SYSTEM:
        return ("system" if suffix == "full" else "gen_prompt"), ("system" if suffix == "full" else "gen_prompt")
    if probe_id in TOOLS:
        return "tools", "tools"
    if probe_id in REASONING:
        return "reasoning", "reasoning"
    return None, "adversarial"


def _without_idx(conv: dict[str, Any]) -> dict[str, Any]:
    """The adversarial probe minus LF's ``{{idx}}`` quirk, which a Go template cannot reproduce."""
    out = copy.deepcopy(conv)
    for m in out["messages"]:
        if isinstance(m.get("content"), str):
            m["content"] = m["content"].replace("{{idx}}", "{{ idx }}")
    out["id"] = conv["id"] + "~noidx"
    return out


def _variants(spec: Any) -> list[tuple[str, Any, bool | None]]:
    """(label, TemplateOptions for LF's reference, Ollama ``think``) pairs for the reasoning probes."""
    from lf_template_ext.model.options import TemplateOptions

    out = [("", TemplateOptions(), None), ("@think=false", TemplateOptions(enable_thinking=False), False)]
    out += [
        ("@trained_null", TemplateOptions(enable_thinking=None), None),
        ("@trained_null@think=false", TemplateOptions(enable_thinking=False), False),
    ]
    out += [("@trained_false", TemplateOptions(enable_thinking=False), None)]
    out += [
        ("@mask_history", TemplateOptions(mask_history=True), None),
        ("@mask_history@think=false", TemplateOptions(enable_thinking=False, mask_history=True), False),
    ]
    return out


def _emit_options(label: str) -> Any:
    """The options the *template* is generated with for a variant (what training used)."""
    from lf_template_ext.model.options import TemplateOptions

    if label.startswith("@trained_null"):
        return TemplateOptions(enable_thinking=None)
    if label.startswith("@trained_false"):
        return TemplateOptions(enable_thinking=False)
    if label.startswith("@mask_history"):
        return TemplateOptions(mask_history=True)
    return TemplateOptions()


@dataclass
class Prepared:
    """One LF template prepared for checking: tokenizer, LF's fixed template, spec, facts."""

    name: str
    tokenizer: Any
    label: str
    base: Any
    spec: Any
    facts: Any


_TOKENIZERS: dict[tuple, tuple[Any, str]] = {}


def tokenizer_key(name: str) -> tuple:
    """What ``harness_tokenizer(name)`` depends on: the family fixture, or the template's marker strings.

    100 templates get Qwen2.5's tokenizer plus their markers, but only 46 distinct marker sets; one
    tokenizer per set saves a copy each (LF's ``prepare`` never mutates the tokenizer it is given).
    """
    from harness import FAMILY, QWEN25, template_markers

    from lf_template_ext.lf import compat as lf_compat

    folder = FAMILY.get(name)
    if folder is not None and (folder != QWEN25 or name.startswith(("qwen", "llava_next_qwen"))):
        return ("family", folder)
    return ("markers", tuple(template_markers(lf_compat._template_module().TEMPLATES[name])))


def prepare(name: str) -> Prepared:
    from harness import harness_tokenizer

    from lf_template_ext.lf import compat as lf_compat
    from lf_template_ext.model.options import TemplateOptions

    key = tokenizer_key(name)
    if key not in _TOKENIZERS:
        _TOKENIZERS.clear()  # keep one: evaluate_all hands out names grouped by key
        _TOKENIZERS[key] = harness_tokenizer(name)
    tok, label = _TOKENIZERS[key]
    base = lf_compat.prepare(name, tok, TemplateOptions())
    return Prepared(name, tok, label, base, lf_compat.template_spec(base), lf_compat.tokenizer_facts(base.tokenizer))


def check(
    p: Prepared,
    binary: Path,
    template: str,
    items: list[tuple[Any, bool | None, dict[str, Any], str]],
    *,
    columns: Any = None,
) -> tuple[list[Case], dict[str, Any]]:
    """Render ``items`` = (LF options, Ollama think, conversation, case id) with one Go process.

    Each conversation gives a ``/full`` case (the whole conversation) and a ``/gen`` case (all but
    the last message, against LF's prompt ids of the last turn). Returns the cases and the Go
    program's report (capabilities, thinking tags, raw results).
    """
    from lf_template_ext.lf import compat as lf_compat
    from lf_template_ext.verifier.probe import reference_ids
    from lf_template_ext.verifier.report import compare_ids

    columns = columns or (lambda cid, suffix: (None, "adversarial"))
    out_cases: list[Case] = []
    cases, expected = [], []
    for lf_opts, think, conv, cid in items:
        prepared = lf_compat.prepare(p.name, p.tokenizer, lf_opts)
        try:
            with lf_compat.frozen_time(FROZEN):
                full_ids, prompt_ids = reference_ids(prepared, conv)
        except Exception as e:  # noqa: BLE001 - LF (or the mapping) cannot encode it: nothing to compare with
            for suffix in ("full", "gen"):
                column, cov = columns(cid, suffix)
                out_cases.append(Case(f"{cid}/{suffix}", column, cov, "unsupported", f"LF: {type(e).__name__}: {e}"))
            continue
        for suffix, msgs, ids in (("full", conv["messages"], full_ids), ("gen", conv["messages"][:-1], prompt_ids)):
            case: dict[str, Any] = {"id": f"{cid}/{suffix}", "messages": to_ollama(msgs)}
            if conv.get("tools"):
                case["tools"] = conv["tools"]
            if think is not None:
                case["think"] = think
            cases.append(case)
            expected.append((ids, prepared, columns(cid, suffix)))
    report: dict[str, Any] = {"results": []}
    if cases:
        report = render(binary, template, cases)
    for res, (ids, prepared, (column, cov)) in zip(report["results"], expected):
        if res.get("error"):
            out_cases.append(Case(res["id"], column, cov, "refused", res["error"]))
            continue
        actual = prepared.tokenizer.encode(res["prompt"], add_special_tokens=False)
        r = compare_ids(res["id"], ids, actual, prepared.tokenizer)
        case = Case(res["id"], column, cov, r.status, "", False, r.first_diff)
        if "~" in res["id"]:
            case.go_text = res["prompt"]
            case.lf_text = prepared.tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
        out_cases.append(case)
    return out_cases, report


def _probe_columns(cid: str, suffix: str) -> tuple[str | None, str]:
    probe_id = cid.split("@")[0].split("~")[0]
    column, cov = _column(probe_id, suffix)
    informational = "~unsorted" in cid or "~idx" in cid or "~escape" in cid
    return (None if informational else column), cov


def evaluate(name: str, binary: Path) -> Row:
    """Render every supported probe of LF template ``name`` through Go and compare with LF."""
    from lf_template_ext.compiler.ollama import go_template
    from lf_template_ext.errors import UnsupportedTemplateError
    from lf_template_ext.lf import compat as lf_compat
    from lf_template_ext.model.corpus import probe_corpus
    from lf_template_ext.model.options import TemplateOptions

    p = prepare(name)
    spec = p.spec
    try:
        emitted = go_template(spec, p.facts)
    except UnsupportedTemplateError as e:
        row = Row(name, spec.kind, p.label, frozenset(), frozenset(), refusal=str(e))
        row.cells = {c: f"refused: {e.reason}" for c in COLUMNS}
        return row
    from lf_template_ext.compiler.ollama import default_stop_words, modelfile

    row = Row(name, spec.kind, p.label, emitted.supports, emitted.normalised, expected_tags=emitted.thinking_tags)
    row.template_text = emitted.text
    row.notes = emitted.notes
    row.stop_words = tuple(default_stop_words(spec, p.facts))
    row.modelfile_text = modelfile(
        spec, p.facts, stop_words=list(row.stop_words), cutoff_len=CUTOFF_LEN, jinja_may_take_over=True
    )
    reasoning = spec.kind in ("reasoning", "glm47")

    groups: dict[str, list[tuple[Any, bool | None, dict[str, Any], str]]] = {}
    text_for: dict[str, str] = {"": emitted.text}
    for probe in probe_corpus() + [copy.deepcopy(RICH), copy.deepcopy(ESCAPE)]:
        pid = probe["id"]
        if (pid in REASONING and not reasoning) or not _needs(pid) <= emitted.supports:
            continue
        convs = [_without_idx(probe), dict(probe, id=pid + "~idx")] if pid == "adversarial" else [probe]
        if probe.get("tools") or any(m.get("tool_calls") for m in probe["messages"]):
            convs = [canonical_conversation(probe)]
            if pid in TOOLS:
                convs.append(dict(probe, id=pid + "~unsorted"))
            if pid == "tools_escape":
                convs = [dict(canonical_conversation(probe), id=pid + "~escape")]
        variants = _variants(spec) if (reasoning and pid in REASONING) else [("", TemplateOptions(), None)]
        for vlabel, lf_opts, think in variants:
            emit_key = vlabel.split("@think")[0]
            if emit_key not in text_for:
                prepared = lf_compat.prepare(name, p.tokenizer, _emit_options(vlabel))
                text_for[emit_key] = go_template(lf_compat.template_spec(prepared), p.facts).text
            for conv in convs:
                groups.setdefault(emit_key, []).append((lf_opts, think, conv, conv["id"] + vlabel))

    for emit_key, items in groups.items():
        cases, report = check(p, binary, text_for[emit_key], items, columns=_probe_columns)
        for c in cases:
            c.normalised = c.id.startswith("tools") and "~unsorted" not in c.id
        row.cases += cases
        if emit_key == "":
            row.capabilities = report.get("capabilities") or []
            row.thinking_tags = tuple(report.get("thinking_tags") or ("", ""))
            row.tool_round_trip = bool(report.get("tool_round_trip"))
    unsorted = [c for c in row.cases if "~unsorted" in c.id and c.status != "unsupported"]
    for c in row.cases:  # the unsorted probes only decide the table label; keep no texts for them
        if "~unsorted" in c.id:
            c.go_text = c.lf_text = ""
    row.unsorted_exact = all(c.status in ("identical", "boundary_only") for c in unsorted) if unsorted else None
    row.cells = _cells(row, reasoning)
    return row


def _evaluate_in_worker(args: tuple[str, str]) -> Row:
    return evaluate(args[0], Path(args[1]))


def evaluate_all(names: list[str], binary: Path, workers: int | None = None) -> dict[str, Row]:
    """``evaluate`` every template, in ``workers`` processes (default: up to 2, ``OLLAMA_CHECK_WORKERS``).

    Preparing a template copies its tokenizer twice (harness + LF's fixing), about a second of CPU
    each; that, not Go, is the cost, and it parallelises cleanly. Workers are forked after LF is
    imported here (an import costs ~10 s of CPU per process); tokenizers' own thread pool is off
    (``TOKENIZERS_PARALLELISM=false``), so forking is safe. Where fork is unavailable, serial.
    """
    import concurrent.futures
    import multiprocessing

    from lf_template_ext.lf import compat as lf_compat

    # Under pytest-xdist the suite already fills the cores: one process, unless asked.
    default = 1 if os.environ.get("PYTEST_XDIST_WORKER") else min(2, os.cpu_count() or 1)
    workers = workers or int(os.environ.get("OLLAMA_CHECK_WORKERS", "0")) or default
    if workers <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        rows = {n: evaluate(n, binary) for n in sorted(names, key=tokenizer_key)}
        return {n: rows[n] for n in names}
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    lf_compat.template_names()  # import LF once, before forking
    import harness  # noqa: F401 - likewise

    ordered = sorted(names, key=tokenizer_key)  # equal tokenizers in the same chunk: one copy each
    chunk = max(1, len(ordered) // (workers * 4))
    ctx = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        rows = dict(zip(ordered, pool.map(_evaluate_in_worker, [(n, str(binary)) for n in ordered], chunksize=chunk)))
    return {n: rows[n] for n in names}


def _cells(row: Row, reasoning: bool) -> dict[str, str]:
    """Table cells: exact / boundary / normalised-JSON / refused (why) / n/a / DIFFERS."""
    cells = {}
    for column in COLUMNS:
        if column == "reasoning" and not reasoning:
            cells[column] = "n/a"
            continue
        if column in ("tools", "reasoning") and column not in row.supports:
            cells[column] = "refused: not expressible (see notes)"
            continue
        cases = [c for c in row.cases if c.column == column]
        live = [c for c in cases if c.status != "unsupported"]
        if not live:
            cells[column] = "n/a"
            continue
        if any(c.status in ("differs", "refused") for c in live):
            cells[column] = "DIFFERS"
            continue
        base = "exact" if all(c.status == "identical" for c in live) else "boundary"
        if column == "tools" and row.unsorted_exact is False:
            base = "normalised-JSON" if base == "exact" else "normalised-JSON, boundary"
        cells[column] = base
    return cells


# -- the docs table -------------------------------------------------------------------------------

TABLE_HEADER = """# Ollama: every LF template through Go's own `text/template`

Generated by `python scripts/ollama_table.py` against LLaMA-Factory {lf} and transformers {tf}; do not edit
(`tests/test_engine_ollama.py` fails when it is stale). Emitter: `lf_template_ext/compiler/ollama.py`.

Each row emits the Ollama TEMPLATE for the LF template, renders the probe corpus with
`lf_template_ext/render/ollama_render` (Ollama v0.33's data path re-created in Go: `collate`, messages-mode values, its
template functions, `missingkey=zero`), tokenizes the text whole without adding special tokens and compares
with LF's training ids. *gen prompt* is what Ollama renders for a new turn (the conversation minus its last
answer). *reasoning*: thoughts via Ollama's `thinking` field with `think` unset and `think: false`, for
templates trained with `enable_thinking` true, null and false and with `mask_history`.

Cells: **exact** token-identical; **boundary** same text, token split differs where the Jinja compiler's
table (`docs/coverage.md`) already says boundary; **normalised-JSON** token-identical when the request's
JSON (tools, tool-call arguments) has its keys sorted: Ollama decodes both into Go maps and cannot keep the
client's order (also `<`, `>`, `&` in JSON strings come out as `\\u003c`...: equal after JSON parsing);
**refused (why)** the template cannot express it and says so; **n/a** no such feature.
Not reproduced (declared in each TEMPLATE's comments): LF's replacement of a literal `{{{{idx}}}}` in user content
(all but the Llama2-style templates), thoughts written inline in content instead of the `thinking` field,
Ollama's merging of consecutive same-role messages. The Modelfile sets no SYSTEM (the template applies LF's
default system itself), one `PARAMETER stop` per LF stop word (eos first), `num_ctx` = `cutoff_len`, and
`PARSER qwen3`/`qwen3-thinking` only for the `qwen` tool format, the one built-in parser checked against LF's.

"""


def table_markdown(rows: dict[str, Row]) -> str:
    head = "| template | class | plain | system | gen prompt | tools | reasoning |"
    lines = [head, "|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r.kind} | " + " | ".join(r.cells[c] for c in COLUMNS) + " |")
    total = len(rows)
    counts = []
    for c in COLUMNS:
        cells = [r.cells[c] for r in rows.values()]
        applicable = [x for x in cells if x != "n/a"]
        parts = [f"{sum(x == 'exact' for x in applicable)} exact"]
        for label in ("boundary", "normalised-JSON", "normalised-JSON, boundary"):
            n = sum(x == label for x in applicable)
            if n:
                parts.append(f"{n} {label}")
        n = sum(x.startswith("refused") for x in applicable)
        if n:
            parts.append(f"{n} refused")
        counts.append(
            f"- {c.replace('_', ' ')}: " + ", ".join(parts) + f" (of {len(applicable)}; {total - len(applicable)} n/a)"
        )
    return "\n".join(lines) + "\n\nTotals over " + str(total) + " templates:\n\n" + "\n".join(counts) + "\n"


def document(rows: dict[str, Row]) -> str:
    import llamafactory
    import transformers

    return TABLE_HEADER.format(lf=llamafactory.__version__, tf=transformers.__version__) + table_markdown(rows)
