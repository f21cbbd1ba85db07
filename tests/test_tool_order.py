"""Tool JSON key order: the client's (default) or the canonical one every engine reproduces.

``model/tool_order.py`` is the rule, ``lf_cjson`` in the compiled Jinja its Jinja form. What is shown:

* for every LF tool format, the canonical template renders the four tool conversations of the probe
  corpus, with the client's tool keys shuffled (and LMDeploy's bare, null-description shape), as LF
  encodes the same conversations with ``canonical_tools(tools)``: one text whatever the input order;
* through the three engines' own request handling, the canonical Qwen2.5 template renders those
  conversations token-identical to that training encoding: vLLM (its pydantic tool models' ``model_dump``,
  re-created below from vLLM's source, into transformers' ``apply_chat_template``), LMDeploy's server
  (the real ``ChatCompletionRequest``, ``dump_tools`` and ``HFChatTemplate``) and Ollama (the emitted
  TEMPLATE through ``ollama_render``, Ollama v0.33's data path re-created in Go);
* the default (``client``) template is unchanged, and the measurement behind SERVING.md's statement: with
  the dataset's order, LMDeploy and Ollama give another tool text than training, in key order only, on
  every tool conversation; vLLM only when the client's top-level order is not its own.
"""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any, Optional

import pytest
from harness import harness_tokenizer
from pydantic import BaseModel

from lf_template_ext.compiler import compile_spec
from lf_template_ext.errors import BadInputError
from lf_template_ext.lf import compat as lf_compat
from lf_template_ext.model.corpus import probe_corpus
from lf_template_ext.model.options import TemplateOptions
from lf_template_ext.model.tool_formats import TOOL_FORMATS
from lf_template_ext.model.tool_order import (
    REORDERING_ENGINES,
    canonical_tool,
    canonical_tools,
    order_statement,
    template_tool_order,
)
from lf_template_ext.verifier.probe import reference_ids

TOOL_PROBES = ("tools", "tools_no_system", "tools_parallel", "tools_with_text")
SEEDS = (1, 2, 3)
GO_NOW = "2026-11-28T12:00:00Z"


def _probes() -> list[dict[str, Any]]:
    return [p for p in probe_corpus() if p["id"] in TOOL_PROBES]


def shuffled(value: Any, rng: random.Random) -> Any:
    """``value`` with every object's keys in a random order (lists keep theirs)."""
    if isinstance(value, dict):
        keys = list(value)
        rng.shuffle(keys)
        return {k: shuffled(value[k], rng) for k in keys}
    if isinstance(value, list):
        return [shuffled(v, rng) for v in value]
    return value


def client_orders(tools: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The tools in several client key orders, plus LMDeploy's shape (bare functions: ``description, name,
    parameters``, pydantic's field order)."""
    out = [shuffled(tools, random.Random(seed)) for seed in SEEDS]
    out.append([{k: t["function"][k] for k in ("description", "name", "parameters")} for t in tools])
    return out


def without_description(tools: list[dict[str, Any]], null: bool) -> list[dict[str, Any]]:
    """The tools with no description: left out (the dataset, Ollama) or null (vLLM's and LMDeploy's models)."""
    out = copy.deepcopy(tools)
    for t in out:
        if null:
            t["function"]["description"] = None
        else:
            del t["function"]["description"]
    return out


_PREPARED: dict[str, Any] = {}


def prepared(tool_format: str = "qwen") -> Any:
    """LF's ``qwen`` template with ``tool_format`` (LF's override), on Qwen2.5's tokenizer."""
    if tool_format not in _PREPARED:
        tok, _ = harness_tokenizer("qwen")
        _PREPARED[tool_format] = lf_compat.prepare("qwen", tok, TemplateOptions(tool_format=tool_format))
    return _PREPARED[tool_format]


def compiled(p: Any, order: str) -> str:
    return compile_spec(lf_compat.template_spec(p), lf_compat.tokenizer_facts(p.tokenizer), tool_order=order)


def training_text(p: Any, conv: dict[str, Any], canonical: bool) -> tuple[str, str]:
    """LF's training encoding (full conversation, prompt of the last turn) as text, tools as given or canonical."""
    if canonical:
        conv = dict(conv, tools=canonical_tools(conv["tools"]))
    full, prompt = reference_ids(p, conv)
    dec = lambda ids: p.tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    return dec(full), dec(prompt)


# -- the rule ---------------------------------------------------------------------------------------


def test_canonical_tool_is_one_fixed_function_of_the_keys():
    tool = _probes()[0]["tools"][0]
    forms = client_orders([tool])
    texts = {json.dumps(canonical_tool(t[0]), ensure_ascii=False) for t in forms}
    assert len(texts) == 1
    text = texts.pop()
    assert text.startswith('{"function": {"description": "Get the current weather for a city.", "name": "get_weather", ')
    assert text.endswith('"required": ["city"], "type": "object"}}, "type": "function"}')
    # lists keep their order; a null description (pydantic's omitted field) is left out, other nulls stay
    bare = {"name": "f", "description": None, "parameters": {"type": "object", "properties": {"b": {"default": None}, "a": {}}}}
    assert json.dumps(canonical_tool(bare)) == (
        '{"function": {"name": "f", "parameters": {"properties": {"a": {}, "b": {"default": null}}, "type": "object"}}, '
        '"type": "function"}'
    )


def test_unknown_tool_order_is_bad_input():
    with pytest.raises(BadInputError, match="tool_order must be one of client, canonical"):
        compiled(prepared(), "sorted")


# -- the Jinja form, every LF tool format ------------------------------------------------------------


@pytest.mark.parametrize("tool_format", sorted(TOOL_FORMATS))
def test_canonical_jinja_writes_lf_encoding_of_canonical_tools(tool_format):
    """Whatever the client's key order (or wrapping), the canonical template writes LF's text for the
    canonical tools: the JSON formats ``json.dumps(canonical_tool(t))`` with LF's separators, the
    property-walking ones (default, gemma4) the properties in sorted order."""
    p = prepared(tool_format)
    jinja = compiled(p, "canonical")
    checked = 0
    for probe in _probes():
        try:
            want_full, _ = training_text(p, probe, canonical=True)
        except ValueError as e:  # glm4: LF refuses parallel calls, the template too
            assert "parallel" in str(e)
            continue
        for tools in client_orders(probe["tools"]):
            got = p.tokenizer.apply_chat_template(probe["messages"], tools=tools, chat_template=jinja, tokenize=False)
            assert got == want_full, (tool_format, probe["id"], tools)
            checked += 1
        # a tool without description: the engines' pydantic models pass it as null, training has none
        bare = dict(probe, tools=without_description(probe["tools"], null=False))
        want_full, _ = training_text(p, bare, canonical=True)
        nulls = without_description(probe["tools"], null=True)
        got = p.tokenizer.apply_chat_template(probe["messages"], tools=nulls, chat_template=jinja, tokenize=False)
        assert got == want_full, (tool_format, probe["id"], "null description")
    assert checked >= 12


# -- through the engines ------------------------------------------------------------------------------


class VllmFunction(BaseModel):
    """vLLM's ``FunctionDefinition`` (vllm/entrypoints/generate/base/protocol.py, 0.33): field order and defaults."""

    name: str
    description: Optional[str] = None
    parameters: Optional[dict[str, Any]] = None


class VllmTool(BaseModel):
    """vLLM's ``ChatCompletionToolsParam``: the serving code hands ``[t.model_dump() for t in request.tools]`` on."""

    type: str = "function"
    function: VllmFunction


def vllm_text(tok: Any, jinja: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]], agp: bool) -> str:
    dumped = [VllmTool.model_validate(t).model_dump() for t in tools]
    return tok.apply_chat_template(messages, tools=dumped, chat_template=jinja, tokenize=False, add_generation_prompt=agp)


def openai_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages as an OpenAI client sends them: tool-call arguments as JSON strings."""
    out = copy.deepcopy(messages)
    for m in out:
        for call in m.get("tool_calls") or []:
            call["function"]["arguments"] = json.dumps(call["function"]["arguments"], ensure_ascii=False)
        if m.get("content") is None:
            m["content"] = ""
    return out


class LMDeployServer:
    """LMDeploy 0.18's server path for a model dir whose tokenizer carries ``jinja``: the request model,
    ``dump_tools`` (what every tool parser's ``adjust_request`` does), ``normalize_chat_request`` and the
    HF-template path (``HFChatTemplate.messages2prompt(messages, tools=...)``)."""

    def __init__(self, tok: Any, jinja: str, path: Path) -> None:
        import transformers

        tok = copy.deepcopy(tok)
        tok.chat_template = jinja
        tok.save_pretrained(str(path))
        config = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "transformers_version": transformers.__version__}
        (path / "config.json").write_text(json.dumps(config))
        self._load(path)

    @classmethod
    def serving(cls, model_dir: Path) -> "LMDeployServer":
        """``lmdeploy serve api_server DIR --chat-template hf`` (SERVING.md's command) for a real model dir."""
        server = cls.__new__(cls)
        server._load(model_dir)
        return server

    def _load(self, path: Path) -> None:
        from lmdeploy.model import ChatTemplateConfig

        self.path = str(path)
        # what LMDeploy's CLI makes of `--chat-template hf` (lmdeploy.cli.utils.get_chat_template): HFChatTemplate
        self.chat = ChatTemplateConfig(model_name="hf", model_path=self.path).chat_template()
        assert type(self.chat).__name__ == "HFChatTemplate", type(self.chat)
        self._tokenizer: Any = None

    def prompt(self, messages: list[dict[str, Any]], tools: Optional[list[dict[str, Any]]]) -> str:
        from lmdeploy.serve.openai.protocol import ChatCompletionRequest
        from lmdeploy.serve.parsers.response_parser import normalize_chat_request
        from lmdeploy.serve.parsers.tool_parser.tool_parser import dump_tools
        from lmdeploy.serve.processors.multimodal import MultimodalProcessor

        body: dict[str, Any] = {"model": "m", "messages": openai_messages(messages)}
        if tools:
            body.update(tools=tools, tool_choice="auto")
        request = normalize_chat_request(dump_tools(ChatCompletionRequest.model_validate(body)))
        # the prompt processor's text path (_get_text_prompt_input): content made a string, then the template
        msgs = [MultimodalProcessor.merge_message_content(m) for m in request.messages]
        text = self.chat.messages2prompt(msgs, tools=request.tools)
        if messages[-1]["role"] == "assistant":  # a final answer is rendered as a prefill: its end goes back on
            text += self.chat.assistant_end
        return text

    def ids(self, messages: list[dict[str, Any]], tools: Optional[list[dict[str, Any]]]) -> list[int]:
        """The server's ids: LMDeploy's own tokenizer of the dir, ``encode(prompt, add_bos=True)``."""
        from lmdeploy.tokenizer import Tokenizer

        if self._tokenizer is None:
            self._tokenizer = Tokenizer(self.path)
        return list(self._tokenizer.encode(self.prompt(messages, tools), add_bos=True))


def ollama_texts(template: str, cases: list[dict[str, Any]]) -> dict[str, str]:
    from lf_template_ext.render import ollama_go

    report = ollama_go.render(ollama_go.binary(), template, cases, system="", now=GO_NOW)
    out = {}
    for r in report["results"]:
        assert not r.get("error"), r
        out[r["id"]] = r["prompt"]
    return out


def _ollama_case(cid: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> dict[str, Any]:
    from lf_template_ext.render.ollama_go import to_ollama

    return {"id": cid, "messages": to_ollama(messages), "tools": tools}


def engine_texts(order: str, tmp_path: Path, tool_sets: dict[str, list[list[dict[str, Any]]]]) -> dict[tuple, str]:
    """``{(engine, probe id, variant, full|gen): text}`` for the qwen template compiled with ``order``."""
    from lf_template_ext.compiler.ollama import go_template

    p = prepared()
    jinja = compiled(p, order)
    lmdeploy = LMDeployServer(p.tokenizer, jinja, tmp_path / "lmdeploy-model")
    go = go_template(lf_compat.template_spec(p), lf_compat.tokenizer_facts(p.tokenizer)).text
    out: dict[tuple, str] = {}
    cases = []
    for probe in _probes():
        for i, tools in enumerate(tool_sets[probe["id"]]):
            for part, msgs in (("full", probe["messages"]), ("gen", probe["messages"][:-1])):
                key = (probe["id"], i, part)
                out[("vllm", *key)] = vllm_text(p.tokenizer, jinja, msgs, tools, agp=part == "gen")
                out[("lmdeploy", *key)] = lmdeploy.prompt(msgs, tools)
                cases.append(_ollama_case("|".join(map(str, key)), msgs, tools))
    for cid, text in ollama_texts(go, cases).items():
        probe_id, i, part = cid.split("|")
        out[("ollama", probe_id, int(i), part)] = text
    return out


def _json_equal_text(a: str, b: str) -> bool:
    """Same text once every JSON object in it is parsed (one tool JSON per line in the qwen format)."""
    la, lb = a.split("\n"), b.split("\n")
    if len(la) != len(lb):
        return False
    for x, y in zip(la, lb):
        if x != y:
            try:
                if json.loads(x) != json.loads(y):
                    return False
            except ValueError:
                return False
    return True


def test_canonical_order_is_exact_through_vllm_lmdeploy_and_ollama(tmp_path):
    """The issue's "must show": the four tool conversations, tools in several client orders, token-identical
    through vLLM, LMDeploy's server path and Ollama to what training writes with ``tokenize: whole``
    (the canonical template = LF's encoding of the canonical tools, test above)."""
    p = prepared()
    tool_sets = {probe["id"]: client_orders(probe["tools"])[:len(SEEDS)] + [probe["tools"]] for probe in _probes()}
    texts = engine_texts("canonical", tmp_path, tool_sets)
    assert len(texts) == 3 * 4 * 4 * 2
    for (engine, probe_id, i, part), text in texts.items():
        probe = next(x for x in _probes() if x["id"] == probe_id)
        full, prompt = reference_ids(p, dict(probe, tools=canonical_tools(probe["tools"])))
        want = full if part == "full" else prompt
        got = p.tokenizer.encode(text, add_special_tokens=False)
        assert got == want, (engine, probe_id, i, part, text)


def test_whole_mode_trains_the_canonical_order_every_engine_serves(tmp_path):
    """After training with ``tokenize: whole`` the dataset's tools, in whatever order the dataset wrote them,
    were trained canonically (``lf.whole_template.canonical_tools_text``), and the template repair writes for
    such a dir (``model.tool_order.tool_order_for("whole")``) is the canonical one: the four tool conversations,
    tools sent in several client orders, are token-identical through vLLM, LMDeploy's server path and Ollama
    to whole mode's own training ids (``verifier.reference``, ``tokenize="whole"``)."""
    import dataclasses

    from lf_template_ext.lf.whole_template import compiled_template
    from lf_template_ext.model.tool_order import tool_order_for

    assert tool_order_for("whole") == "canonical" and tool_order_for("slots") == "client"
    p = prepared()
    assert compiled_template("qwen", p.source_tokenizer, p.options) == compiled(p, "canonical")
    whole = dataclasses.replace(p, tokenize="whole")
    rng = random.Random(7)
    tool_sets = {probe["id"]: client_orders(probe["tools"])[:2] for probe in _probes()}
    texts = engine_texts("canonical", tmp_path, tool_sets)
    assert len(texts) == 3 * 4 * 2 * 2
    for (engine, probe_id, i, part), text in texts.items():
        probe = next(x for x in _probes() if x["id"] == probe_id)
        dataset_tools = shuffled(probe["tools"], rng)  # the dataset's own order: any
        full, prompt = reference_ids(whole, dict(probe, tools=dataset_tools))
        want = full if part == "full" else prompt
        assert p.tokenizer.encode(text, add_special_tokens=False) == want, (engine, probe_id, i, part, text)


def whole_tool_cases(whole: Any) -> tuple[list[tuple], list[Any], list[list[int]]]:
    """The four tool conversations as requests (``render.hf.RenderRequest``), tools in several client key orders
    and as the dataset wrote them, full conversation and generation prompt, each with whole mode's training ids
    of the dataset's sample (``whole``: a prepared template with ``tokenize="whole"``; the sample's tools in
    yet another key order, as a dataset may write them). Returns ``(keys, requests, expected ids)``."""
    from lf_template_ext.render.hf import RenderRequest

    assert whole.tokenize == "whole"
    rng = random.Random(11)
    keys, requests, want = [], [], []
    for probe in _probes():
        dataset_tools = shuffled(probe["tools"], rng)  # the training sample's own key order: any
        full, prompt = reference_ids(whole, dict(probe, tools=dataset_tools))
        for i, tools in enumerate(client_orders(probe["tools"])[: len(SEEDS)] + [probe["tools"]]):
            for part, msgs in (("full", probe["messages"]), ("gen", probe["messages"][:-1])):
                keys.append((probe["id"], i, part))
                requests.append(RenderRequest(messages=msgs, tools=tools, add_generation_prompt=part == "gen"))
                want.append(full if part == "full" else prompt)
    return keys, requests, want


def assert_trained_dir_serves_whole_tool_ids(model_dir: Path, whole: Any, modelfile: str) -> int:
    """A dir trained (and exported) with ``tokenize: whole``, served as SERVING.md says: the four tool
    conversations (:func:`whole_tool_cases`) through LMDeploy's server path (``--chat-template hf``: its request
    models, ``dump_tools``, the dir's Jinja, LMDeploy's tokenizer with its BOS rule) and Ollama's renderer
    (``modelfile``, the one ``lf-template emit DIR --engine ollama`` writes for the dir, through ``ollama_render``,
    Ollama's tokenization rule) equal whole mode's training ids, full conversation and generation prompt.
    The check can fail: LMDeploy's ids for the dataset's own order are asserted to differ from what slot-wise
    (LF's default) training saw. Returns the number of cases compared. (vLLM: tests/test_endpoint_vllm.py.)"""
    import dataclasses

    from lf_template_ext.modeldir.files import read_chat_template
    from lf_template_ext.render import ollama_go
    from lf_template_ext.render.ollama import OllamaEngine, adds_bos

    assert template_tool_order(read_chat_template(str(model_dir))[0]) == "canonical"
    tok = whole.tokenizer
    keys, requests, want = whole_tool_cases(whole)
    lmdeploy = LMDeployServer.serving(model_dir)
    for key, r, ids in zip(keys, requests, want):
        assert lmdeploy.ids(r.messages, r.tools) == ids, ("lmdeploy", key, lmdeploy.prompt(r.messages, r.tools))
    ollama = OllamaEngine(tok, modelfile, binary=ollama_go.binary(), add_bos=adds_bos(str(model_dir), tok))
    for key, got, ids in zip(keys, ollama.ids_batch(requests), want):
        assert got == ids, ("ollama", key, got if isinstance(got, Exception) else tok.decode(got))
    slots = dataclasses.replace(whole, tokenize="slots")
    probe = _probes()[0]
    assert lmdeploy.ids(probe["messages"], probe["tools"]) != reference_ids(slots, probe)[0]
    return len(keys)


def test_client_order_is_lf_and_which_engines_reorder(tmp_path):
    """Default (``client``): the dataset's order, as LF writes it. Measured on the probe corpus, whose tools
    are written ``type, function`` / ``name, description, parameters``: LMDeploy (function fields
    ``description, name, parameters``, schema as sent) and Ollama (every object sorted) re-order the tool
    JSON on all four conversations, and nothing else differs; vLLM keeps this order (its own field order),
    but re-orders a client that writes ``function`` before ``type`` (``reordered`` variant)."""
    p = prepared()
    reordered = {pid: [[{"function": t["function"], "type": t["type"]} for t in probe["tools"]]]
                 for pid, probe in ((x["id"], x) for x in _probes())}
    tool_sets = {probe["id"]: [probe["tools"]] + reordered[probe["id"]] for probe in _probes()}
    texts = engine_texts("client", tmp_path, tool_sets)
    differs: dict[str, set] = {"vllm": set(), "lmdeploy": set(), "ollama": set()}
    for (engine, probe_id, i, part), text in texts.items():
        probe = next(x for x in _probes() if x["id"] == probe_id)
        sent = dict(probe, tools=tool_sets[probe_id][i])
        full, prompt = training_text(p, sent, canonical=False)
        want = full if part == "full" else prompt
        if text != want:
            assert _json_equal_text(text, want), (engine, probe_id, i, part)  # key order only
            differs[engine].add((probe_id, i))
    assert {e for e, d in differs.items() if d} == set(REORDERING_ENGINES)  # SERVING.md names exactly these
    every = {(pid, i) for pid in TOOL_PROBES for i in (0, 1)}
    assert differs["lmdeploy"] == every
    assert differs["ollama"] == every
    assert differs["vllm"] == {(pid, 1) for pid in TOOL_PROBES}


def test_a_dir_tells_its_tool_order_and_serving_md_states_it():
    """``check`` and ``repair`` read the order from the dir's template; SERVING.md states it for a template with tools."""
    from lf_template_ext.workflows.serving import ServingFacts, serving_md

    p = prepared()
    assert template_tool_order(compiled(p, "client")) == "client"
    assert template_tool_order(compiled(p, "canonical")) == "canonical"
    facts = dict(model_dir="/m", template="qwen", is_reasoning=False, thought_words=("", ""), stop_ids=[1], stop_tokens=["x"])
    for order in ("client", "canonical"):
        text = serving_md(ServingFacts(tool_format="qwen", tool_order=order, **facts))
        assert f"**Tool definitions' key order**: {order_statement(order)}." in text
    assert "key order**" not in serving_md(ServingFacts(tool_format=None, **facts))
