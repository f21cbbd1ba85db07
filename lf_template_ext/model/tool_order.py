"""The key order of tool definitions: as the client wrote them, or one canonical order (the one rule).

Why: LF writes a dataset's tool JSON in the dataset's key order (``json.dumps`` keeps insertion
order), but the serving engines rebuild the tools before the chat template sees them:

* **Ollama** decodes ``tools`` into Go structs whose schema maps reach a template only as Go maps
  (``ToolPropertiesMap.ToMap()``), and Go ranges maps in sorted key order; our Ollama TEMPLATE writes
  struct fields in sorted order too (``compiler/go_json.py``). Every object comes out key-sorted.
* **LMDeploy**'s server (0.18; HF-template path; ``dump_tools`` runs with or without a tool parser) validates
  ``tools`` into pydantic ``Tool``/``Function`` models and hands the template
  ``[t.function.model_dump() for t in tools]``: bare function objects in the model's field order
  ``description, name, parameters``, ``"description": null`` where the client gave none; the
  ``parameters`` schema (a plain dict) keeps the client's order.
* **vLLM** validates them into ``ChatCompletionToolsParam``/``FunctionDefinition`` and passes
  ``t.model_dump()``: ``{"type", "function": {"name", "description", "parameters"}}`` in that order,
  ``null`` for an omitted description or parameters; the schema keeps the client's order.

So a model trained on the client's order sees another order under Ollama always, and under LMDeploy
and vLLM whenever the client's top-level order is not theirs. A fixed function of the *keys* makes the
input order irrelevant: ``canonical`` sorts every object's keys (code-point order, which is Go's byte
order for UTF-8 strings), recursively, after two normalisations that the engines make anyway:

1. a tool that is not ``{"type": "function", ...}`` is wrapped as ``{"type": "function", "function":
   tool}`` (LF's own wrapping rule in its JSON tool formats; Ollama always wraps, LMDeploy never does);
2. a ``null`` ``description`` or ``parameters`` of the function is left out (what pydantic adds for an
   omitted field; Ollama writes no empty description).

Sorted order is the only fixed order that Ollama can reproduce: its templates see schema maps without
their key order, so any other rule would need the key order Ollama has already lost. Lists keep their
order (``required``, ``enum``, the tool list). Tool-call *arguments* are not reordered: they are the
training labels (what the model learns to write); Ollama sorts them, the others keep the client's order.

:data:`CLIENT` (the default) keeps LF's behaviour, text-identical to LF's own encoding on the dataset's
order; :data:`CANONICAL` is a compile option (``compile_spec(..., tool_order="canonical")``) for training
that renders samples with the compiled template (``tokenize: whole``), so training and every engine
write the same text. The compiled Jinja's ``lf_cjson`` macro (``compiler/tools.py``) is this module in Jinja.
"""

from __future__ import annotations

from typing import Any

from ..errors import BadInputError

CLIENT = "client"
CANONICAL = "canonical"
TOOL_ORDERS = (CLIENT, CANONICAL)

#: Function fields an engine's pydantic model fills with ``null`` when the client left them out.
NULL_DROPPED = ("description", "parameters")


def tool_order_for(tokenize: str) -> str:
    """The tool order a template is compiled with for a model trained with ``tokenize``.

    Whole-mode training (``template_ext_tokenize: whole``) renders every sample with the compiled
    template, so it writes tool definitions canonically and every engine's re-ordering is undone at
    serving; LF's ``slots`` wrote the dataset's order, which the template must then keep.
    """
    return CANONICAL if tokenize == "whole" else CLIENT


def check_tool_order(value: str) -> str:
    """``value`` if it is a known tool order, else bad input (exit 2) naming the choices."""
    if value not in TOOL_ORDERS:
        raise BadInputError(f"tool_order must be one of {', '.join(TOOL_ORDERS)}, not {value!r}")
    return value


def canonical_value(value: Any) -> Any:
    """``value`` with every JSON object's keys sorted (code-point order), recursively; lists keep their order."""
    if isinstance(value, dict):
        return {k: canonical_value(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [canonical_value(v) for v in value]
    return value


def canonical_function(function: Any) -> Any:
    """A function object: null ``description``/``parameters`` left out, keys sorted recursively."""
    if not isinstance(function, dict):
        return canonical_value(function)
    kept = {k: v for k, v in function.items() if not (k in NULL_DROPPED and v is None)}
    return canonical_value(kept)


def canonical_tool(tool: Any) -> dict[str, Any]:
    """THE rule: one tool definition in canonical form (wrapped, nulls of the function left out, keys sorted).

    ``json.dumps(canonical_tool(t), ensure_ascii=False)`` is the text the canonical Jinja writes where LF
    writes ``json.dumps(tool)``, whatever key order (and wrapping) the client or an engine used.
    """
    if isinstance(tool, dict) and tool.get("type") == "function":
        out = {k: (canonical_function(v) if k == "function" else canonical_value(v)) for k, v in tool.items()}
        return {k: out[k] for k in sorted(out)}
    return {"function": canonical_function(tool), "type": "function"}


def canonical_tools(tools: Any) -> Any:
    """Every tool of a list in canonical form (anything else is returned as is)."""
    if not isinstance(tools, list):
        return tools
    return [canonical_tool(t) for t in tools]


# -- what the engines do to the client's order (measured: tests/test_tool_order.py) -------------------------

#: Engine -> the order it hands a chat template the tools in (vLLM 0.33, LMDeploy 0.18, Ollama v0.33).
REORDERING_ENGINES: dict[str, str] = {
    "vllm": "each tool as `type, function` and its function as `name, description, parameters` (pydantic "
    "`model_dump`; the parameters schema as sent)",
    "lmdeploy": "each function unwrapped as `description, name, parameters` (pydantic `model_dump` of its server's "
    "`Function`; the parameters schema as sent)",
    "ollama": "every object's keys sorted (Go maps; the TEMPLATE writes the tool structs' fields sorted too)",
}

ENGINE_LABELS = {"vllm": "vLLM", "lmdeploy": "LMDeploy's server (HF-template path)", "ollama": "Ollama"}

#: The macro only a template compiled with ``tool_order="canonical"`` defines (how a dir's template is told apart).
CANONICAL_MARKER = "macro lf_cjson("


def template_tool_order(jinja: str) -> str:
    """The tool order a compiled template writes (``canonical`` when it defines the canonical writer)."""
    return CANONICAL if CANONICAL_MARKER in jinja else CLIENT


def order_statement(tool_order: str) -> str:
    """The one statement (SERVING.md, ``check``'s report) of which engines re-order tool definitions."""
    if tool_order == CANONICAL:
        return (
            "training and this template write every tool definition in one canonical key order (keys sorted at "
            "every level, a null description/parameters left out) whatever order the engine hands over, so tool "
            "prompts are exact under vLLM, LMDeploy's server (HF-template path) and Ollama (tests/test_tool_order.py); "
            "fields an engine drops (JSON-schema keys Ollama's structs do not model) are still lost"
        )
    engines = "; ".join(f"{ENGINE_LABELS[name]}: {what}" for name, what in REORDERING_ENGINES.items())
    return (
        "training wrote each tool definition in the dataset's key order, and the engines re-order it before the "
        f"template sees it ({engines}). A tool prompt then differs from training in key order only: under Ollama "
        "always, under LMDeploy unless the dataset writes functions description-first, under vLLM when the dataset's "
        "order is not vLLM's (measured, tests/test_tool_order.py; SGLang and llama.cpp not measured). Training with "
        "`template_ext_tokenize: whole` writes tools in the canonical order all three reproduce"
    )


def tool_order_report(tool_order: str) -> dict[str, Any]:
    """The ``tool_order`` entry of ``alignment_report.json`` and ``check --json`` (a template with tools)."""
    return {
        "order": tool_order,
        "reordering_engines": {} if tool_order == CANONICAL else dict(REORDERING_ENGINES),
        "statement": order_statement(tool_order),
    }
