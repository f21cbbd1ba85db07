"""The Ollama emitter (``lf_template_ext/compiler/ollama.py``), checked through Go's own text/template.

``lf_template_ext/render/ollama_render`` (shipped with the package: ``lf-template check --engine
ollama`` renders with it too) re-creates Ollama v0.33's request path in Go (standard library only): every
LF template's TEMPLATE renders the probe corpus there, and the text, tokenized whole with the real
tokenizer, must give LF's training ids (token-identical, or boundary-only exactly where
docs/coverage.md says the Jinja compiler is boundary-only too). Tool probes are compared with
their JSON keys sorted (declared: Ollama's Go maps lose the client's order). The Modelfile is read
back with a re-creation of Ollama's own Modelfile parser.

Runtime is dominated by preparing 121 templates (LF copies each tokenizer); ``ollama_check``
spreads that over two forked processes (``OLLAMA_CHECK_WORKERS`` to change).
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "ollama_render"))

import ollama_check as oc

from lf_template_ext.compiler import ollama
from lf_template_ext.errors import UnsupportedTemplateError
from lf_template_ext.lf import compat as lf_compat
from lf_template_ext.model.spec import FormatterSpec, Text, TokenRef

# One xdist worker runs this module: the session fixtures below render every template once.
pytestmark = [
    pytest.mark.skipif(shutil.which("go") is None, reason="needs the Go toolchain (Debian golang-go)"),
    pytest.mark.xdist_group("ollama"),
]

NAMES = lf_compat.template_names()
REPO = Path(__file__).resolve().parents[1]
COVERAGE = REPO / "docs" / "coverage.md"
DOC = REPO / "docs" / "engines-ollama.md"
COVERAGE_COLUMNS = ("plain", "system", "gen_prompt", "tools", "reasoning", "adversarial", "multimodal")


def _coverage() -> dict[str, dict[str, str]]:
    """The Jinja compiler's verdict per template and column (boundary-only is allowed where it is), read by the
    table's header (``scripts/engines_table.read_table``: a column added to docs/coverage.md cannot shift them)."""
    sys.path.insert(0, str(REPO / "scripts"))
    from engines_table import read_table

    rows = {name: {c: cells[c] for c in COVERAGE_COLUMNS} for name, cells in read_table(COVERAGE, "template").items()}
    assert len(rows) == len(NAMES), f"{COVERAGE}: {len(rows)} template rows, LF has {len(NAMES)}"
    return rows


@pytest.fixture(scope="session")
def go_binary(tmp_path_factory) -> Path:
    return oc.build_renderer(str(tmp_path_factory.mktemp("ollama_render")))


@pytest.fixture(scope="session")
def rows(go_binary) -> dict[str, oc.Row]:
    return oc.evaluate_all(NAMES, go_binary)


@pytest.fixture(scope="session")
def coverage() -> dict[str, dict[str, str]]:
    return _coverage()


def _go(binary: Path, payload: dict) -> dict:
    proc = subprocess.run([str(binary)], input=json.dumps(payload), capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)


# -- every LF template ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_template_renders_lf_training_ids(name, rows, coverage):
    row = rows[name]
    assert not row.refusal, f"{name}: the emitter refused a registered template: {row.refusal}"
    problems = []
    for case in row.cases:
        if case.status in ("identical", "unsupported") or "~" in case.id:
            continue
        allowed = coverage[name][case.coverage].startswith("boundary")
        if case.status == "boundary_only" and allowed:
            continue
        problems.append(f"{case.id}: {case.status} {case.reason} {case.first_diff}")
    assert not problems, f"{name}:\n" + "\n".join(problems)

    # every column was really exercised (a check that compares nothing would pass silently)
    live = {c.column for c in row.cases if c.status != "unsupported"}
    assert {"plain", "system", "gen_prompt", "tools"} <= live, (name, live)
    assert any(c.id.startswith("tools_rich") and c.status in ("identical", "boundary_only") for c in row.cases)
    if row.kind in ("reasoning", "glm47"):
        labels = {c.id.split("/")[0].split("@", 1)[1] for c in row.cases if c.column == "reasoning" and "@" in c.id}
        assert labels >= {"think=false", "trained_null", "trained_null@think=false", "trained_false", "mask_history"}

    # what Ollama derives from the template: tools capability, tool round trip, thinking tags
    # (a Go template with tools but no "tool round trip" loses to a GGUF Jinja that has one)
    assert ("tools" in row.capabilities) == ("tools" in row.supports) == row.tool_round_trip
    if row.expected_tags:
        assert row.thinking_tags == row.expected_tags and "thinking" in row.capabilities
    else:
        assert "thinking" not in row.capabilities


@pytest.mark.parametrize("name", NAMES)
def test_declared_limitations_are_the_only_differences(name, rows):
    """The informational cases differ exactly as the emitter's notes say, and in no other way."""
    row = rows[name]
    idx = [c for c in row.cases if "~idx" in c.id and c.status != "unsupported"]
    assert idx, "the {{idx}} probe did not run"
    declared = any("{{idx}}" in note for note in row.notes)
    assert declared == (row.kind != "llama2")  # Llama2Template._encode passes no idx: nothing to replace
    for c in idx:  # LF replaces the first literal {{idx}} in user content by the turn index
        if declared:
            assert c.status == "differs" and "{{idx}}" in c.go_text
            assert c.go_text.replace("{{idx}}", "1", 1) == c.lf_text
        else:
            assert c.status in ("identical", "boundary_only"), c.first_diff
    for c in (c for c in row.cases if "~escape" in c.id and c.status != "unsupported"):
        go_text = c.go_text
        for escaped, raw in oc.GO_JSON_ESCAPES.items():
            go_text = go_text.replace(escaped, raw)
        assert go_text == c.lf_text, f"{c.id}: differs beyond Go's <, >, & escaping"


def test_summary_and_docs_table(rows, capsys):
    """Prints the per-template summary; docs/engines-ollama.md must be what the code produces."""
    with capsys.disabled():
        print("\nOllama TEMPLATE vs LF training ids (" + ", ".join(oc.COLUMNS) + "):")
        for name, r in rows.items():
            statuses = [c.status for c in r.cases if "~" not in c.id]
            counts = {s: statuses.count(s) for s in ("identical", "boundary_only", "unsupported") if statuses.count(s)}
            print(f"  {name:26} {r.kind:9} " + " | ".join(r.cells[c] for c in oc.COLUMNS) + f"  {counts}")
    assert "DIFFERS" not in oc.table_markdown(rows)
    assert DOC.exists(), "run python scripts/ollama_table.py"
    assert DOC.read_text(encoding="utf-8") == oc.document(rows), (
        "docs/engines-ollama.md is stale; run scripts/ollama_table.py"
    )


@pytest.mark.parametrize("name", NAMES)
def test_modelfile_reads_back(name, rows, go_binary):
    """Ollama's parser (re-created) gets back the TEMPLATE, the stop words and num_ctx, and no SYSTEM."""
    row = rows[name]
    parsed = _go(go_binary, {"modelfile": row.modelfile_text})
    assert "error" not in parsed, parsed
    cmds = parsed["commands"]
    assert [c["args"] for c in cmds if c["name"] == "template"] == [row.template_text]
    assert [c["args"] for c in cmds if c["name"] == "stop"] == list(row.stop_words)
    assert [c["args"] for c in cmds if c["name"] == "num_ctx"] == [str(oc.CUTOFF_LEN)]
    assert [c["args"] for c in cmds if c["name"] == "model"] == ["."]
    assert not [c for c in cmds if c["name"] == "system"]
    assert '"""' not in row.template_text
    assert all(ollama.go_printable(ch) or ch in "\n" for ch in row.template_text)


# -- the Modelfile in detail ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def qwen3():
    p = oc.prepare("qwen3")
    return p.spec, p.facts, p


@pytest.fixture(scope="session")
def llama3():
    p = oc.prepare("llama3")
    return p.spec, p.facts, p


def _commands(go_binary, text: str) -> list[dict]:
    parsed = _go(go_binary, {"modelfile": text})
    assert "error" not in parsed, parsed
    return parsed["commands"]


def test_modelfile_stops_parser_and_comments(qwen3, llama3, go_binary):
    spec, facts, _ = qwen3
    stops = ollama.default_stop_words(spec, facts)
    assert stops == ["<|im_end|>"]  # eos (replaced by LF) == the first stop word: written once
    text = ollama.modelfile(spec, facts, stop_words=stops + ["<|im_end|>"], cutoff_len=2048, jinja_may_take_over=True)
    cmds = _commands(go_binary, text)
    assert [c["args"] for c in cmds if c["name"] == "stop"] == ["<|im_end|>"]
    assert [c["args"] for c in cmds if c["name"] == "num_ctx"] == ["2048"]
    assert [c["args"] for c in cmds if c["name"] == "parser"] == ["qwen3-thinking"]

    spec, facts, _ = llama3
    stops = ollama.default_stop_words(spec, facts)
    assert stops == ["<|eot_id|>", "<|eom_id|>"]
    text = ollama.modelfile(spec, facts, stop_words=stops, cutoff_len=None, jinja_may_take_over=True)
    cmds = _commands(go_binary, text)
    assert [c["args"] for c in cmds if c["name"] == "stop"] == stops
    assert not [c for c in cmds if c["name"] in ("num_ctx", "parser", "system")]
    assert "# num_ctx not set" in text and "# No PARSER line" in text and "OLLAMA_GO_TEMPLATE=1" in text
    quiet = ollama.modelfile(spec, facts, stop_words=stops, cutoff_len=None, jinja_may_take_over=False)
    assert "OLLAMA_GO_TEMPLATE" not in quiet


def test_modelfile_quotes(qwen3, go_binary):
    """Triple quotes: Ollama's parser has no escapes; a value ends at a line ending in \"\"\"."""
    spec, facts, _ = qwen3
    tricky = 'Say """hi"""\nthen "bye" \t'
    spec2 = dataclasses.replace(spec, default_system=tricky)
    stops = ['a"b', " spaced ", 'x"\ny', '"quoted"', 'ends with """']
    text = ollama.modelfile(spec2, facts, stop_words=stops, cutoff_len=None, jinja_may_take_over=False)
    cmds = _commands(go_binary, text)
    template = [c["args"] for c in cmds if c["name"] == "template"]
    assert template == [ollama.go_template(spec2, facts).text]
    assert [c["args"] for c in cmds if c["name"] == "stop"] == stops
    out = _go(
        go_binary, {"template": template[0], "cases": [{"id": "x", "messages": [{"role": "user", "content": "hi"}]}]}
    )
    assert tricky in out["results"][0]["prompt"]  # the default system survives Go string escaping
    for bad in ['x"""  \nnext', 'a\n"""\r\n']:
        with pytest.raises(UnsupportedTemplateError, match="qwen3.*modelfile"):
            ollama.modelfile(spec, facts, stop_words=[bad], cutoff_len=None, jinja_may_take_over=False)
    with pytest.raises(UnsupportedTemplateError, match="drops"):
        ollama.modelfile(spec, facts, stop_words=["bell\x07"], cutoff_len=None, jinja_may_take_over=False)


# -- what cannot be expressed: raised or declared -------------------------------------------------


def test_unexpressible_templates_raise(qwen3, llama3):
    spec, facts, _ = qwen3
    with_idx = dataclasses.replace(spec, user=FormatterSpec("string", (Text("[Round {{idx}}] {{content}}"),)))
    with pytest.raises(UnsupportedTemplateError, match=r"'qwen3' \(user\).*arithmetic"):
        ollama.go_template(with_idx, facts)
    unknown_token = dataclasses.replace(spec, prefix=FormatterSpec("empty", (TokenRef("<not-a-token>"),)))
    with pytest.raises(UnsupportedTemplateError, match=r"'qwen3' \(prefix\)"):
        ollama.go_template(unknown_token, facts)
    with pytest.raises(UnsupportedTemplateError, match=r"'qwen3' \(bos\)"):  # Qwen has no BOS to leave to the GGUF
        ollama.go_template(spec, facts, engine_adds_bos=True)
    with pytest.raises(UnsupportedTemplateError, match="split_special_tokens"):
        ollama.go_template(spec, dataclasses.replace(facts, split_special_tokens=True))


def test_features_left_out_are_declared_and_refused_by_ollama(qwen3, go_binary):
    spec, facts, _ = qwen3
    msgs = [{"role": "user", "content": "hi"}]
    tool = oc.RICH_TOOL
    # no tool formatter: no .Tools in the template, so Ollama reports no tool capability
    no_tools = dataclasses.replace(
        spec, tools=FormatterSpec("empty"), function=FormatterSpec("string", spec.assistant.slots)
    )
    t = ollama.go_template(no_tools, facts)
    assert "tools" not in t.supports and "tool_calls" not in t.supports
    assert any("tool list is not written" in n for n in t.notes) and any("tool calls are refused" in n for n in t.notes)
    out = _go(go_binary, {"template": t.text, "cases": [{"id": "t", "messages": msgs, "tools": [tool]}]})
    assert "tools" not in out["capabilities"] and out["results"][0]["error"] == "does not support tools"
    # trained without thinking: no thinking capability, think=true refused, the empty thought always written
    t = ollama.go_template(dataclasses.replace(spec, enable_thinking=False), facts)
    assert t.thinking_tags is None and any("enable_thinking=false" in n for n in t.notes)
    out = _go(
        go_binary,
        {
            "template": t.text,
            "cases": [{"id": "on", "messages": msgs, "think": True}, {"id": "unset", "messages": msgs}],
        },
    )
    assert "thinking" not in out["capabilities"]
    assert out["results"][0]["error"] == '"model" does not support thinking'
    assert out["results"][1]["prompt"].endswith(spec.empty_thought)


REFUSALS = [
    (
        "two tool messages",
        [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "f", "arguments": {}}}]},
            {"role": "tool", "content": "1"},
            {"role": "tool", "content": "2"},
        ],
        "merge the results of parallel tool calls",
    ),
    (
        "late system",
        [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "system", "content": "c"}],
        "only allowed as the first message",
    ),
    ("assistant first", [{"role": "assistant", "content": "b"}], "cannot start with an assistant turn"),
    ("image", [{"role": "user", "content": "a", "images": ["aGk="]}], "images are not supported"),
]


@pytest.mark.parametrize("label,messages,rule", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_template_refuses_what_lf_cannot_encode(label, messages, rule, qwen3, go_binary):
    spec, facts, _ = qwen3
    out = _go(
        go_binary, {"template": ollama.go_template(spec, facts).text, "cases": [{"id": label, "messages": messages}]}
    )
    error = out["results"][0]["error"]
    assert "LF template 'qwen3'" in error and rule in error


def test_collate_merges_consecutive_messages_as_declared(llama3, go_binary):
    """Ollama merges two user messages with a blank line; LF encodes the merged message the same."""
    from lf_template_ext.verifier.probe import reference_ids

    spec, facts, p = llama3
    split = [{"role": "user", "content": "first"}, {"role": "user", "content": "second"}]
    out = _go(go_binary, {"template": ollama.go_template(spec, facts).text, "cases": [{"id": "c", "messages": split}]})
    merged = {"messages": [{"role": "user", "content": "first\n\nsecond"}, {"role": "assistant", "content": "x"}]}
    _, prompt = reference_ids(p.base, merged)
    assert p.base.tokenizer.encode(out["results"][0]["prompt"], add_special_tokens=False) == prompt


@pytest.mark.parametrize("name", ["llama3", "gemma", "mistral"])
def test_gguf_that_adds_bos(name, go_binary):
    """``engine_adds_bos``: the template leaves LF's leading BOS to the engine (GGUF add_bos_token)."""
    from lf_template_ext.model.corpus import probe_corpus
    from lf_template_ext.verifier.probe import reference_ids

    p = oc.prepare(name)
    convs = [c for c in probe_corpus() if c["id"] in oc.PLAIN + oc.SYSTEM]
    cases = [{"id": c["id"], "messages": oc.to_ollama(c["messages"][:-1])} for c in convs]
    tok = p.base.tokenizer
    with_bos = _go(
        go_binary, {"template": ollama.go_template(p.spec, p.facts, engine_adds_bos=True).text, "cases": cases}
    )
    default = _go(go_binary, {"template": ollama.go_template(p.spec, p.facts).text, "cases": cases})
    for conv, res, plain in zip(convs, with_bos["results"], default["results"]):
        expected = reference_ids(p.base, conv)[1]
        assert expected[0] == tok.bos_token_id and not res["prompt"].startswith(p.facts.bos_token)
        assert tok.encode(res["prompt"], add_special_tokens=True) == expected, conv["id"]  # BOS added as the GGUF would
        assert (
            tok.encode(plain["prompt"], add_special_tokens=True)[:2] == [tok.bos_token_id] * 2
        )  # why the option exists


def test_go_literals_round_trip(go_binary):
    """Every string the emitter writes into Go source evaluates back to itself in Go."""
    samples = [
        "plain",
        'quote " and """',
        "back\\slash",
        "nl\n cr\r tab\t",
        "\x00\x07\x1b\x7f",
        "nbsp\u00a0 zwj\u200d",
        "ls\u2028ps\u2029",
        "中文 🙂 ℕ",
        "{{ .Messages }} }} {{",
        "emoji \U0001f600 private \ue000",
    ]
    template = "".join("{{ " + ollama.go_lit(s) + " }}\x1e" for s in samples).replace("\x1e", '{{ "\\x1e" }}')
    assert all(ollama.go_printable(ch) or ch == "\n" for ch in template) and '"""' not in template
    out = _go(
        go_binary,
        {
            "template": template + "{{ .Messages }}",
            "cases": [{"id": "x", "messages": [{"role": "user", "content": ""}]}],
        },
    )
    assert out["results"][0]["prompt"].split("\x1e")[:-1] == samples
    assert re.search(r"\\x22", ollama.go_lit('"'))
