"""``template: native`` through LLaMA-Factory's real data pipeline, with real tokenizers.

Every pipeline test writes a sharegpt dataset (``dataset_info.json`` in a tmp dataset dir),
runs ``llamafactory.data.get_dataset`` with ``template: native`` and compares every example
with what ``native_reference`` builds from ``apply_chat_template`` alone: input ids are the
vLLM-style rendering tokenized whole, labels are exactly the assistant spans.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any, Optional

import pytest
from native_fixtures import FIXTURES_WITH_TEMPLATES, fixture_template, fresh_tokenizer, model_dir, tokenizer_for
from native_reference import IGNORE, WEATHER_CALL, expected_examples, render

REPO = Path(__file__).resolve().parents[1]

TOOLS = [
    {
        "name": "get_weather",
        "description": "Current weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
]

# OpenAI-shaped samples (the engine's view); ``sharegpt`` turns them into LF's dataset rows.
MULTI = [
    {"role": "user", "content": "Name a prime number."},
    {"role": "assistant", "content": "Seven is prime."},
    {"role": "user", "content": "And an even one?"},
    {"role": "assistant", "content": "Two is the only even prime."},
    {"role": "user", "content": "Thanks!"},
    {"role": "assistant", "content": "You are welcome."},
]
SYSTEM = [
    {"role": "system", "content": "You are a terse assistant."},
    {"role": "user", "content": "Capital of France?"},
    {"role": "assistant", "content": "Paris."},
    {"role": "user", "content": "Of Italy?"},
    {"role": "assistant", "content": "Rome."},
]
REASONING = [
    {"role": "user", "content": "What is 2+3?"},
    {"role": "assistant", "content": "<think>\nAdd two and three.\n</think>\n\nFive."},
    {"role": "user", "content": "Times 4?"},
    {"role": "assistant", "content": "<think>\n5 * 4 = 20.\n</think>\n\nTwenty."},
]
TOOL_CONV = [
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": WEATHER_CALL}]},
    {"role": "tool", "content": '{"temp_c": 21}'},
    {"role": "assistant", "content": "It is 21 degrees in Paris."},
]
OPENAI_TOOLS = [{"type": "function", "function": t} for t in TOOLS]

TOOL_TEMPLATES = {"Qwen2.5", "Qwen3", "Llama-3.1", "Llama-3.2"}  # the others refuse or drop tool turns


def sharegpt(messages: list[dict], tools: Optional[list] = None) -> dict[str, Any]:
    row: dict[str, Any] = {"conversations": [], "system": "", "tools": ""}  # every column in every row
    for m in messages:
        if m["role"] == "system":
            row["system"] = m["content"]
        elif m["role"] == "user":
            row["conversations"].append({"from": "human", "value": m["content"]})
        elif m["role"] == "tool":
            row["conversations"].append({"from": "observation", "value": m["content"]})
        elif m.get("tool_calls"):
            call = m["tool_calls"][0]["function"]
            row["conversations"].append({"from": "function_call", "value": json.dumps(call, ensure_ascii=False)})
        else:
            row["conversations"].append({"from": "gpt", "value": m["content"]})
    if tools:
        row["tools"] = json.dumps(tools, ensure_ascii=False)
    return row


def write_dataset(directory: Path, rows: list[dict], ranking: bool = False) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "native.json").write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    columns = {"messages": "conversations", "system": "system", "tools": "tools"}
    info: dict[str, Any] = {"file_name": "native.json", "formatting": "sharegpt", "columns": columns}
    if ranking:
        info.update(ranking=True, columns={**columns, "chosen": "chosen", "rejected": "rejected"})
    (directory / "dataset_info.json").write_text(json.dumps({"native_test": info}), encoding="utf-8")


@pytest.fixture(scope="module")
def lf():
    """LF's modules with native mode installed, as the enable hook installs it."""
    import llamafactory.data.processor.pairwise as pairwise
    import llamafactory.data.processor.supervised as supervised
    import llamafactory.data.template as template_module

    from lf_template_ext.lf import native_template
    from lf_template_ext.lf.plugin import native_processors

    native_template.install(template_module)
    native_processors.install(supervised)
    native_processors.install(pairwise)
    from llamafactory.data import get_dataset, get_template_and_fix_tokenizer
    from llamafactory.hparams import get_train_args

    return {"get_dataset": get_dataset, "fix": get_template_and_fix_tokenizer, "args": get_train_args, "tm": template_module}


def run_pipeline(
    lf, tmp_path: Path, label: str, rows: list[dict], *, stage: str = "sft", ranking: bool = False, **overrides: Any
) -> tuple[Any, Any, list[dict]]:
    """LF's ``get_dataset`` with ``template: native``: (template, tokenizer, examples)."""
    data_dir = tmp_path / "data"
    write_dataset(data_dir, rows, ranking=ranking)
    args = dict(
        model_name_or_path=str(model_dir(label)),
        stage=stage,
        do_train=True,
        finetuning_type="full",
        template="native",
        dataset="native_test",
        dataset_dir=str(data_dir),
        cutoff_len=4096,
        output_dir=str(tmp_path / "out"),
        overwrite_cache=True,
        report_to="none",
        cache_dir=str(tmp_path / "cache"),
    )
    args.update(overrides)
    model_args, data_args, training_args, _, _ = lf["args"](args)
    tokenizer = fresh_tokenizer(label)
    template = lf["fix"](tokenizer, data_args)
    with contextlib.redirect_stdout(io.StringIO()):  # LF prints the first example
        module = lf["get_dataset"](template, model_args, data_args, training_args, stage, tokenizer=tokenizer)
    return template, tokenizer, list(module["train_dataset"])


def label_runs(tokenizer: Any, ids: list[int], labels: list[int]) -> list[str]:
    runs, cur = [], []
    for i, lab in zip(ids, labels, strict=True):
        if lab != IGNORE:
            assert lab == i
            cur.append(i)
        elif cur:
            runs.append(tokenizer.decode(cur))
            cur = []
    if cur:
        runs.append(tokenizer.decode(cur))
    return runs


# -- LF's pipeline vs the vLLM-style reference, per model --------------------------------------------

#: Turns (0-based) the full rendering cannot show as the engine generated them, per template and sample.
EXPANDED: dict[tuple[str, str], set[int]] = {
    ("Qwen3", "multi"): {0, 1},
    ("Qwen3", "system"): {0},
    ("Qwen3", "reasoning"): {0},
    ("Qwen3", "tools"): {0},
    ("Mistral-v0.3", "system"): {0, 1},  # the system prompt goes into the *last* user turn
}

MODELS = ["Qwen2.5", "Qwen3", "Llama-3.1", "Llama-3.2", "Gemma-3", "Mistral-v0.3", "Phi-3", "R1-Distill-32B", "Yi-1.5"]


def samples_for(label: str) -> dict[str, tuple[list[dict], Optional[list]]]:
    out: dict[str, tuple[list[dict], Optional[list]]] = {
        "multi": (MULTI, None),
        "system": (SYSTEM, None),
        "reasoning": (REASONING, None),
    }
    if label in TOOL_TEMPLATES:
        out["tools"] = (TOOL_CONV, TOOLS)
    return out


@pytest.mark.parametrize("label", MODELS)
def test_pipeline_matches_vllm_rendering(lf, tmp_path, label):
    samples = samples_for(label)
    template, tokenizer, got = run_pipeline(lf, tmp_path, label, [sharegpt(m, t) for m, t in samples.values()])
    reference_tok = tokenizer_for(label)
    expected = []
    for name, (messages, tools) in samples.items():
        expected += expected_examples(
            reference_tok,
            messages,
            [{"type": "function", "function": t} for t in tools] if tools else None,
            label,
            EXPANDED.get((label, name), set()),
            enable_thinking=True,
        )
    assert [e["input_ids"] for e in got] == [ids for ids, _ in expected]
    assert [e["labels"] for e in got] == [labels for _, labels in expected]
    # The check above is not vacuous: every example trains something, and nothing outside the answers.
    for e in got:
        assert any(x != IGNORE for x in e["labels"])
        assert any(x == IGNORE for x in e["labels"])
    assert type(template).__name__ == "NativeTemplate"


def test_pipeline_label_texts_are_the_answers(lf, tmp_path):
    """Spelled out for Qwen2.5 and Qwen3: what is trained, decoded (the contract of the issue)."""
    _, tok, got = run_pipeline(lf, tmp_path / "q25", "Qwen2.5", [sharegpt(MULTI), sharegpt(REASONING)])
    assert label_runs(tok, got[0]["input_ids"], got[0]["labels"]) == [
        "Seven is prime.<|im_end|>\n",
        "Two is the only even prime.<|im_end|>\n",
        "You are welcome.<|im_end|>\n",
    ]
    assert label_runs(tok, got[1]["input_ids"], got[1]["labels"]) == [
        "<think>\nAdd two and three.\n</think>\n\nFive.<|im_end|>\n",
        "<think>\n5 * 4 = 20.\n</think>\n\nTwenty.<|im_end|>\n",
    ]
    _, tok, got = run_pipeline(lf, tmp_path / "q3", "Qwen3", [sharegpt(REASONING)])
    # Qwen3 drops earlier thoughts from the history: the full rendering trains the last turn, the first
    # turn gets its own example with its thought, exactly as the engine renders it when it is generated.
    assert [label_runs(tok, e["input_ids"], e["labels"]) for e in got] == [
        ["<think>\n5 * 4 = 20.\n</think>\n\nTwenty.<|im_end|>\n"],
        ["<think>\nAdd two and three.\n</think>\n\nFive.<|im_end|>\n"],
    ]
    assert "Add two and three" not in tok.decode(got[0]["input_ids"])  # the history of the full rendering


# -- LF's options keep their meaning -----------------------------------------------------------------------


def test_train_on_prompt_labels_everything(lf, tmp_path):
    _, _, got = run_pipeline(lf, tmp_path, "Llama-3.1", [sharegpt(MULTI)], train_on_prompt=True)
    assert got[0]["labels"] == got[0]["input_ids"]


def test_mask_history_trains_the_last_turn_only_in_one_example(lf, tmp_path):
    _, tok, got = run_pipeline(lf, tmp_path, "Qwen3", [sharegpt(MULTI)], mask_history=True)
    expected = expected_examples(tokenizer_for("Qwen3"), MULTI, None, "Qwen3", {0, 1}, mask_history=True, enable_thinking=True)
    assert [(e["input_ids"], e["labels"]) for e in got] == expected
    assert label_runs(tok, got[0]["input_ids"], got[0]["labels"]) == ["<think>\n\n</think>\n\nYou are welcome.<|im_end|>\n"]


def test_cutoff_len_follows_lfs_own_loop(lf, tmp_path):
    """Truncation is LF's: native pairs through the unpatched ``_encode_data_example`` give the same ids."""
    import llamafactory.data.processor.supervised as supervised

    template, tok, got = run_pipeline(lf, tmp_path, "Qwen2.5", [sharegpt(MULTI)], cutoff_len=40)
    assert len(got[0]["input_ids"]) <= 40
    from lf_template_ext.lf.plugin import native_processors

    stock = native_processors.lf_original(supervised.SupervisedDatasetProcessor, "_encode_data_example")
    _, data_args, _, _, _ = lf["args"](
        dict(model_name_or_path=str(model_dir("Qwen2.5")), stage="sft", do_train=True, template="native",
             dataset="x", output_dir=str(tmp_path / "o"), cutoff_len=40, report_to="none")
    )
    processor = supervised.SupervisedDatasetProcessor(template=template, tokenizer=tok, processor=None, data_args=data_args)
    lf_msgs = [{"role": "user" if m["role"] == "user" else "assistant", "content": m["content"]} for m in MULTI]
    ids, labels = stock(processor, lf_msgs[:-1], lf_msgs[-1:], "", "", [], [], [])
    assert (got[0]["input_ids"], got[0]["labels"]) == (ids, labels)


def test_packing_keeps_every_trained_token(lf, tmp_path):
    _, _, plain = run_pipeline(lf, tmp_path / "a", "Qwen3", [sharegpt(MULTI), sharegpt(SYSTEM)])
    _, _, packed = run_pipeline(lf, tmp_path / "b", "Qwen3", [sharegpt(MULTI), sharegpt(SYSTEM)], packing=True)
    trained = sorted(x for e in plain for x in e["labels"] if x != IGNORE)
    assert trained and sorted(x for e in packed for x in e["labels"] if x != IGNORE) == trained


# -- policies for templates that are not prefix-stable ------------------------------------------------------


def test_policy_mask_makes_one_example_per_conversation(lf, tmp_path, monkeypatch):
    monkeypatch.setenv("LF_TEMPLATE_EXT_NATIVE_POLICY", "mask")
    _, tok, got = run_pipeline(lf, tmp_path, "Qwen3", [sharegpt(MULTI), sharegpt(SYSTEM)])
    assert [label_runs(tok, e["input_ids"], e["labels"]) for e in got] == [
        ["<think>\n\n</think>\n\nYou are welcome.<|im_end|>\n"],
        ["<think>\n\n</think>\n\nRome.<|im_end|>\n"],
    ]


def test_policy_strict_refuses_naming_sample_template_and_fix(lf, tmp_path, monkeypatch):
    from lf_template_ext.native.encode import NativeSampleError

    monkeypatch.setenv("LF_TEMPLATE_EXT_NATIVE_POLICY", "strict")
    with pytest.raises(NativeSampleError) as info:
        run_pipeline(lf, tmp_path, "Qwen3", [sharegpt(MULTI)])
    text = str(info.value)
    assert "sample 0" in text and "Name a prime number." in text  # the sample
    assert "Qwen--Qwen3-4B" in text  # the template (the model's)
    assert "prefix-stable" in text and "template_ext_native_policy: expand" in text and "`template: qwen3`" in text


def test_bad_policy_is_refused_with_the_choices(monkeypatch):
    from lf_template_ext.native import options as native_options

    monkeypatch.setenv("LF_TEMPLATE_EXT_NATIVE_POLICY", "sometimes")
    with pytest.raises(native_options.NativeOptionError, match="expand, mask, strict"):
        native_options.current()
    assert native_options.current({"template_ext_native_policy": "Mask"}).policy == "mask"


# -- errors: no chat template, a template that cannot render a sample ----------------------------------------


def test_no_chat_template_is_refused_with_a_suggestion(lf, tmp_path):
    from lf_template_ext.native.mode import NativeModeError, check_model_dir

    _, data_args, _, _, _ = lf["args"](
        dict(model_name_or_path=str(model_dir_of("01-ai--Yi-34B")), stage="sft", do_train=True, template="native",
             dataset="x", output_dir=str(tmp_path / "o"), report_to="none")
    )
    from harness import fixture_tokenizer

    from lf_template_ext.lf.compat import copy_tokenizer

    with pytest.raises(NativeModeError) as info:
        lf["fix"](copy_tokenizer(fixture_tokenizer("01-ai--Yi-34B")), data_args)
    assert "01-ai--Yi-34B" in str(info.value) and "no chat template" in str(info.value)
    assert "`template: yi`" in str(info.value)
    # Baichuan2's folder has no tokenizer LF could load, and no chat template: found from its files.
    with pytest.raises(NativeModeError) as info:
        check_model_dir(model_dir_of("baichuan-inc--Baichuan2-7B-Chat"))
    assert "Baichuan2-7B-Chat" in str(info.value) and "no chat template" in str(info.value)
    assert "template: <name>" in str(info.value)  # LF 0.9.5 has no Baichuan template to suggest
    check_model_dir(model_dir_of("Qwen--Qwen2.5-1.5B-Instruct"))  # a template: no error


def model_dir_of(folder: str) -> Path:
    from harness import FIXTURES

    return FIXTURES / folder


def test_template_that_cannot_render_a_sample_names_it(lf, tmp_path):
    from lf_template_ext.native.encode import NativeSampleError

    with pytest.raises(NativeSampleError) as info:
        run_pipeline(lf, tmp_path, "Gemma-2", [sharegpt(MULTI), sharegpt(SYSTEM)])
    text = str(info.value)
    assert "sample 1" in text and "Capital of France?" in text
    assert "google--gemma-2-2b-it" in text and "System role not supported" in text
    assert "`template: gemma2`" in text


def test_generation_prompt_that_the_answer_cannot_continue_is_refused(lf, tmp_path):
    """QwQ's generation prompt opens a thought; answers without one can never be produced as rendered."""
    from lf_template_ext.native.encode import NativeSampleError

    with pytest.raises(NativeSampleError, match="generation prompt") as info:
        run_pipeline(lf, tmp_path, "QwQ", [sharegpt(MULTI)])
    assert "`template: qwen`" in str(info.value)
    _, tok, got = run_pipeline(lf, tmp_path / "ok", "QwQ", [sharegpt(REASONING)])
    assert label_runs(tok, got[-1]["input_ids"], got[-1]["labels"]) == ["Add two and three.\n</think>\n\nFive.<|im_end|>\n"]


# -- chat engines, DPO, stop ids -----------------------------------------------------------------------------


@pytest.mark.parametrize("thinking", [True, False])
def test_chat_engine_prompt_is_the_engines(lf, tmp_path, thinking):
    """LF's HF/vLLM engines call ``encode_oneturn(messages + [empty assistant])``: the prompt must be vLLM's."""
    _, data_args, _, _, _ = lf["args"](
        dict(model_name_or_path=str(model_dir("Qwen3")), stage="sft", do_train=True, template="native",
             dataset="x", output_dir=str(tmp_path / "o"), report_to="none", enable_thinking=thinking)
    )
    tok = fresh_tokenizer("Qwen3")
    template = lf["fix"](tok, data_args)
    lf_messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Bye"}]
    prompt_ids, response = template.encode_oneturn(tok, lf_messages + [{"role": "assistant", "content": ""}], "Be brief.", None)
    engine = render(tok, [{"role": "system", "content": "Be brief."}] + lf_messages, None, True, enable_thinking=thinking)
    assert response == [] and prompt_ids == tok.encode(engine, add_special_tokens=False)
    assert engine.endswith("<think>\n\n</think>\n\n") is (not thinking)


def test_pairwise_dpo_matches_vllm_rendering(lf, tmp_path):
    row = sharegpt(MULTI[:3])
    row["chosen"] = {"from": "gpt", "value": "Two."}
    row["rejected"] = {"from": "gpt", "value": "Nine."}
    _, tok, got = run_pipeline(lf, tmp_path, "Llama-3.1", [row], stage="rm", ranking=True)
    for key, answer in (("chosen", "Two."), ("rejected", "Nine.")):
        ids, labels = expected_examples(
            tokenizer_for("Llama-3.1"), MULTI[:3] + [{"role": "assistant", "content": answer}], None, "Llama-3.1",
            set(), mask_history=True, enable_thinking=True,
        )[0]
        assert got[0][f"{key}_input_ids"] == ids and got[0][f"{key}_labels"] == labels


def test_stop_ids_are_tokenizer_eos_plus_generation_config(lf, tmp_path):
    _, data_args, _, _, _ = lf["args"](
        dict(model_name_or_path=str(model_dir("R1-Distill-32B")), stage="sft", do_train=True, template="native",
             dataset="x", output_dir=str(tmp_path / "o"), report_to="none")
    )
    tok = fresh_tokenizer("R1-Distill-32B")  # Qwen2.5's vocabulary + R1's markers; its generation_config.json
    template = lf["fix"](tok, data_args)
    generation_config = json.loads((model_dir("R1-Distill-32B") / "generation_config.json").read_text())
    assert template.get_stop_token_ids(tok) == [tok.eos_token_id, generation_config["eos_token_id"]]
    tok = fresh_tokenizer("Qwen2.5")  # no generation_config.json: the eos alone
    assert lf["fix"](tok, data_args).get_stop_token_ids(tok) == [tok.convert_tokens_to_ids("<|im_end|>")]


def test_install_is_idempotent(lf):
    import llamafactory.data.processor.supervised as supervised

    from lf_template_ext.lf import native_template
    from lf_template_ext.lf.plugin import native_processors

    before = lf["tm"].TEMPLATES["native"]
    native_template.install(lf["tm"])
    native_processors.install(supervised)
    assert lf["tm"].TEMPLATES["native"] is before
    for cls in (supervised.SupervisedDatasetProcessor, supervised.PackedSupervisedDatasetProcessor):
        assert cls.__dict__["preprocess_dataset"] is native_processors.preprocess_dataset
        assert native_processors.lf_original(cls, "preprocess_dataset").__module__ == supervised.__name__


# -- the render cache and the prefix-stability report --------------------------------------------------------


def _variants() -> list[tuple[list[dict], Optional[list]]]:
    """Same structures as the probes with other contents, edge cases included (whitespace, empty, thoughts)."""
    from lf_template_ext.native.report import PROBES

    out = []
    for conv in PROBES.values():
        out.append((conv.messages, conv.tools))
        for content in ("  padded answer \n", "", "<think>\nhidden\n</think>\n\nshown", "line1\nline2"):
            msgs = [dict(m, content=content) if m["role"] == "assistant" and not m.get("tool_calls") else m for m in conv.messages]
            out.append((msgs, conv.tools))
        msgs = [dict(m, content=" " + m["content"] + " ") if m["role"] in ("user", "system") else m for m in conv.messages]
        out.append((msgs, conv.tools))
    return out


#: Templates the skeleton fast path never proves: no probe is prefix-stable (see the report below), or a
#: finished conversation ends with a trailer (Phi-3's ``<|endoftext|>``) that only the full analysis accepts.
NOT_PROVEN = {"Qwen3", "QwQ", "Llama-3 base", "R1-Distill (alt: later)", "Phi-3", "Phi-3.5"}


@pytest.mark.parametrize("fixture", FIXTURES_WITH_TEMPLATES, ids=lambda f: f.label)
def test_render_cache_equals_real_rendering(fixture):
    from lf_template_ext.native.encode import special_text
    from lf_template_ext.native.layout import analyze
    from lf_template_ext.native.render import ChatRenderer, Conversation, NativeRenderError, anchors

    tok = tokenizer_for(fixture.label)
    cached, real = ChatRenderer(tok), ChatRenderer(tok, cache=False)
    variants = _variants()
    proven = 0
    for _ in range(2):  # the second pass is served from the cache
        for msgs, tools in variants:
            conv = Conversation(msgs, tools)
            try:
                want = real.turn_renders(conv)
            except NativeRenderError:
                with pytest.raises(NativeRenderError):
                    cached.stable_spans(conv)
                    cached.turn_renders(conv)
                continue
            fast = cached.stable_spans(conv)  # the layout proven on skeletons must be the full analysis's
            assert cached.turn_renders(conv) == want  # the encoder's order: stable_spans, then turn_renders
            if fast is not None:
                proven += 1
                layout = analyze(*want, special_text(tok), anchors(conv))
                assert layout.stable and fast == (layout.full, list(layout.spans))
    stats = cached.cache_stats
    assert stats["enabled"] and stats["hits"] > stats["misses"] > 0  # renders really came from the cache
    # Every template with a prefix-stable probe gets its layouts proven on skeletons (the fast path).
    assert (proven > 0) is (fixture.label not in NOT_PROVEN), proven


TRACED_TEMPLATE = (
    "{% for m in messages %}"
    "{% if '</think>' in m.content %}{{ m.content.split('</think>')[-1] | trim }}"
    "{% elif m.content.startswith('#') %}{{ m.content[1:] | upper }}"
    "{% elif not m.content %}(empty)"
    "{% else %}{{ m.content | replace('a', 'A') }}{% endif %}|{% endfor %}"
    "{% if add_generation_prompt %}GEN{% endif %}"
)


@pytest.mark.parametrize("template", [TRACED_TEMPLATE, "{% for m in messages %}{{ m.content | tojson }}{% endfor %}"])
def test_render_cache_follows_what_a_template_does_with_contents(template):
    """Contents that take other branches, or that a filter rewrites, never reuse a wrong rendering."""
    from lf_template_ext.lf.compat import copy_tokenizer
    from lf_template_ext.native.render import ChatRenderer, Conversation

    tok = copy_tokenizer(tokenizer_for("Qwen2.5"))
    tok.chat_template = template
    cached, real = ChatRenderer(tok, enable_thinking=None), ChatRenderer(tok, enable_thinking=None, cache=False)
    answers = ["plain", "banana", "#head", "", "<think>x</think>  kept  ", 'quote " and \\ backslash', "a\nb"]
    for first in answers:
        for second in answers:
            conv = Conversation(
                [{"role": "user", "content": "ask"}, {"role": "assistant", "content": first},
                 {"role": "user", "content": "again"}, {"role": "assistant", "content": second}]
            )
            cached.stable_spans(conv)  # the encoder's order: the fast path first, then the turn renderings
            assert cached.turn_renders(conv) == real.turn_renders(conv), (first, second)
    stats = cached.cache_stats
    if "tojson" in template:  # JSON escaping breaks the content markers: rendered for real, never cached
        assert stats["hits"] == 0
    else:  # the branches each content takes are recorded; same answers, same rendering
        assert stats["enabled"] and stats["hits"] > stats["misses"] > 4


UNTRACED_READS = {
    # a regex filter: refused on the template source (reads_text_untraceably)
    "wordcount": "{% for m in messages %}{{ m.content | wordcount }}|{% endfor %}",
    # the content as the argument of a literal's test: the repeated renders see it flip
    "in literal": "{% for m in messages %}{% if m.content in 'yes no' %}Y{% else %}{{ m.content }}{% endif %}|{% endfor %}",
    "literal method": "{% for m in messages %}{{ 'yes-no'.startswith(m.content) }}{{ m.content }}|{% endfor %}",
    "count in literal": "{% for m in messages %}{{ 'a yes b'.count(m.content) }}|{% endfor %}",
}


@pytest.mark.parametrize("name", list(UNTRACED_READS))
def test_render_cache_never_serves_a_rendering_that_read_the_text_untraced(name):
    """Every rendering a conversation needs (not only the full one) equals the real one."""
    from lf_template_ext.lf.compat import copy_tokenizer
    from lf_template_ext.native.render import ChatRenderer, Conversation

    tok = copy_tokenizer(tokenizer_for("Qwen2.5"))
    tok.chat_template = UNTRACED_READS[name] + "{% if add_generation_prompt %}GEN{% endif %}"
    cached, real = ChatRenderer(tok, enable_thinking=None), ChatRenderer(tok, enable_thinking=None, cache=False)
    for first in ["one", "two words", "yes", "no", "three more words", ""]:
        for second in ["yes", "z"]:
            conv = Conversation(
                [{"role": "user", "content": "q"}, {"role": "assistant", "content": first},
                 {"role": "user", "content": "q2"}, {"role": "assistant", "content": second}]
            )
            cached.stable_spans(conv)  # the encoder's order: the fast path first, then the turn renderings
            assert cached.turn_renders(conv) == real.turn_renders(conv), (first, second)
    assert cached.cache_stats["hits"] == 0


def test_templates_with_text_reading_filters_are_never_cached():
    from lf_template_ext.native.render import ChatRenderer
    from lf_template_ext.native.skeleton import reads_text_untraceably

    assert reads_text_untraceably(UNTRACED_READS["wordcount"]) == "wordcount"
    assert reads_text_untraceably("{{ messages[0].content | trim | title }}") == "title"
    assert reads_text_untraceably(UNTRACED_READS["in literal"]) is None  # left to the repeated renders
    assert reads_text_untraceably("{% generation %}{{ x }}{% endgeneration %}") is None  # not plain Jinja
    for f in FIXTURES_WITH_TEMPLATES:  # no fixture template loses the cache to it
        assert reads_text_untraceably(fixture_template(f)) is None, f.label
    from lf_template_ext.lf.compat import copy_tokenizer

    tok = copy_tokenizer(tokenizer_for("Qwen2.5"))
    tok.chat_template = UNTRACED_READS["wordcount"]
    assert ChatRenderer(tok).cache_stats["enabled"] is False


#: The prefix-stability report of every fixture template (docs/native-mode.md holds the same table).
STABLE = {"plain": "stable", "system": "stable", "reasoning": "stable", "tools": "stable"}
NOT_PREFIX_STABLE = {
    "Qwen3": {"plain": "expand (answer)", "system": "expand (answer)", "reasoning": "expand (answer)", "tools": "expand (answer)"},
    "QwQ": {"reasoning": "expand (answer)"},
    "Llama-3 base": {k: "expand (answer)" for k in STABLE},
    "Mistral-v0.3": {"system": "expand (prompt)"},
    "Mistral-Nemo": {"system": "expand (prompt)"},
    "Mistral-Nemo (alt: newer)": {"system": "expand (prompt)"},
}
REFUSED = {
    "QwQ": {"plain", "system", "tools"},
    "Gemma-3": {"tools"},
    "Gemma-2": {"system", "tools"},
    "Mistral-v0.3": {"tools"},
    "Mistral-v0.2": {"tools"},
    "Mistral-v0.2 (alt: pre-v1)": {"system", "tools"},
    "Mistral-Nemo": {"tools"},
    "Mistral-Nemo (alt: newer)": {"tools"},
    "R1-Distill (alt: later)": {"plain", "system", "reasoning", "tools"},
    "GLM-4": {"tools"},
}


def test_prefix_stability_report_for_every_fixture_template():
    from lf_template_ext.native import report as native_report

    rows = []
    for f in FIXTURES_WITH_TEMPLATES:
        row = native_report.stability_row(tokenizer_for(f.label))
        rows.append((f.label, f.tokenizer_from.split("--")[1] if f.tokenizer_from else "own", row))
        expected = {**STABLE, **NOT_PREFIX_STABLE.get(f.label, {})}
        for probe in REFUSED.get(f.label, ()):
            assert row[probe].startswith("error: "), (f.label, probe, row[probe])
            expected[probe] = row[probe]
        assert row == expected, f.label
    table = native_report.markdown(rows)
    doc = (REPO / "docs" / "native-mode.md").read_text(encoding="utf-8")
    assert table in doc, "docs/native-mode.md is out of date; paste:\n" + table
