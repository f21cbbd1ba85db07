"""LF tool formats as Jinja macros.

Each LF ``tool_format`` (``llamafactory/data/tool_utils.py``) has two halves:

* ``tool_formatter(tools) -> str``: the tool list appended to the system prompt;
* ``function_formatter(calls) -> str``: the assistant's tool calls.

For each format this module emits two macros with the same behaviour, ``lf_tools(tools)``
and ``lf_calls(calls)``, written for the message shapes an OpenAI-compatible server passes
to a chat template (``tools`` as a list of ``{"type": "function", "function": {...}}``,
``tool_calls`` as a list of ``{"function": {"name", "arguments"}}``). The long prompt texts
are not copied here: they come from the installed LF (``TemplateSpec.tool_prompt``), so the
template follows LF's wording of the version it was compiled against.

Python and Jinja agree on the details that matter: ``~`` uses ``str()`` (so ``None``,
``True`` and lists print as Python prints them), the ``tojson`` filter of transformers is
``json.dumps(..., ensure_ascii=False)``, and dict iteration keeps insertion order.
Arguments that arrive as a JSON *string* are written as-is where LF writes the JSON text,
and refused with a clear message where LF needs the object (per-argument formats).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..errors import UnsupportedTemplateError
from ..model.tool_formats import TOOL_FORMATS as LF_TOOL_FORMATS
from ..model.tool_order import CANONICAL, CLIENT, NULL_DROPPED, check_tool_order
from .jinja_text import concat, lit

PromptPieces = Sequence[tuple[str, str]]  # ("text", literal) | ("field", name)

#: Formats whose function formatter walks the arguments object key by key.
NEEDS_ARGUMENT_OBJECT = frozenset(name for name, f in LF_TOOL_FORMATS.items() if f.walks_arguments)

KNOWN_FORMATS = frozenset(LF_TOOL_FORMATS)


def prompt_expr(pieces: PromptPieces, **fields: str) -> str:
    """A Jinja expression for ``PROMPT.format(**fields)`` given the prompt's pieces."""
    parts = []
    for kind, value in pieces:
        if kind == "text":
            parts.append(lit(value))
        else:
            if value not in fields:
                raise UnsupportedTemplateError(
                    "", f"tool prompt field {{{value}}} is not known to lf-template-ext", "tools"
                )
            parts.append(f"({fields[value]})")
    return concat(parts)


def _fill(source: str, **exprs: str) -> str:
    """Replace ``@key@`` markers; every marker must be given (checked before any value goes in)."""
    markers = set(re.findall(r"@([a-z_]+)@", source))
    if markers != set(exprs):
        raise AssertionError(f"tool macro markers {sorted(markers)} != values {sorted(exprs)}")
    return re.sub(r"@([a-z_]+)@", lambda m: exprs[m.group(1)], source)


# -- shared pieces ---------------------------------------------------------------------------

_CALL_FN = '{%- set fn = call["function"] if call["function"] is defined else call -%}'
_ARGS_JSON = '(fn["arguments"] if fn["arguments"] is string else fn["arguments"]|tojson)'
_REQUIRE_OBJECT = (
    '{%- if fn["arguments"] is not mapping -%}'
    "{{- raise_exception(@msg@) -}}"
    "{%- endif -%}"
)
# json.dumps(value, ensure_ascii=False) unless value is already a string (LF's per-argument rule)
_VALUE_TEXT = "(value if value is string else value|tojson)"

# tool unwrapping variants used by LF
_UNWRAP_EMPTY = 't = tool.get("function", "") if tool.get("type") == "function" else tool'
_UNWRAP_SELF = 't = tool.get("function", tool) if tool.get("type") == "function" else tool'
_WRAP = 't = tool if tool.get("type") == "function" else {"type": "function", "function": tool}'


# -- canonical tool JSON (tool_order="canonical", model/tool_order.py) ------------------------------

#: ``lf_cjson(v, ind, d, kind)`` writes ``json.dumps(v, ensure_ascii=False)`` (``ind`` 0) or
#: ``json.dumps(v, indent=ind, ensure_ascii=False)`` at nesting depth ``d``, every object's keys sorted
#: (``dictsort(case_sensitive=true)``: Python's code-point order), recursively. ``kind`` says what ``v``
#: is: ``"tool"`` a wrapped tool (its ``function`` is a ``"fn"``), ``"fn"`` a function (a null
#: description/parameters is left out), ``"tools"``/``"fns"`` lists of those, ``""`` plain JSON. This is
#: ``model.tool_order.canonical_tool`` written in Jinja; ``tests/test_tool_order.py`` checks one against
#: the other through LF's own formatters.
CANONICAL_JSON_MACROS = _CJSON = (
    """{%- macro lf_cjoin(parts, open, close, ind, d) -%}
    {%- if not parts -%}
        {{- open ~ close -}}
    {%- elif ind -%}
        {%- set pad = "\\n" ~ " " * (ind * (d + 1)) -%}
        {{- open ~ pad ~ parts|join("," ~ pad) ~ "\\n" ~ " " * (ind * d) ~ close -}}
    {%- else -%}
        {{- open ~ parts|join(", ") ~ close -}}
    {%- endif -%}
{%- endmacro -%}
{%- macro lf_cjson(v, ind, d, kind) -%}
    {%- if v is mapping -%}
        {%- set ns = namespace(parts=[]) -%}
        {%- for k, x in v|dictsort(case_sensitive=true) -%}
            {%- if not (kind == "fn" and x is none and k in @dropped@) -%}
                {%- set ns.parts = ns.parts + [k|tojson ~ ": " ~ lf_cjson(x, ind, d + 1, "fn" if (kind == "tool" and k == "function") else "")] -%}
            {%- endif -%}
        {%- endfor -%}
        {{- lf_cjoin(ns.parts, "{", "}", ind, d) -}}
    {%- elif v is string or v is number or v is none -%}
        {{- v|tojson -}}
    {%- elif v is iterable -%}
        {%- set ns = namespace(parts=[]) -%}
        {%- for x in v -%}
            {%- set ns.parts = ns.parts + [lf_cjson(x, ind, d + 1, "tool" if kind == "tools" else ("fn" if kind == "fns" else ""))] -%}
        {%- endfor -%}
        {{- lf_cjoin(ns.parts, "[", "]", ind, d) -}}
    {%- else -%}
        {{- v|tojson -}}
    {%- endif -%}
{%- endmacro -%}
{%- macro lf_ctools(tools) -%}
    {%- set ns = namespace(items=[]) -%}
    {%- for tool in tools -%}
        {%- set t = tool if tool.get("type") == "function" else {"type": "function", "function": tool} -%}
        {%- set ns.items = ns.items + [t] -%}
    {%- endfor -%}
    {{- lf_cjson(ns.items, 0, 0, "tools") -}}
{%- endmacro -%}"""
).replace("@dropped@", "[" + ", ".join(f'"{k}"' for k in NULL_DROPPED) + "]")


def _json_expr(value: str, kind: str, order: str, indent: int = 0) -> str:
    """``value|tojson`` (``tool_order`` client: LF's ``json.dumps`` of what the engine passed) or the canonical
    writer (``kind``: what ``value`` is, see :data:`CANONICAL_JSON_MACROS`)."""
    if order == CANONICAL:
        return f'lf_cjson({value}, {indent}, 0, "{kind}")'
    return f"{value}|tojson(indent={indent})" if indent else f"{value}|tojson"


def _object_message(fmt: str, template: str) -> str:
    return lit(
        f"lf-template-ext (LF template '{template}', tool format '{fmt}'): tool call arguments must be a "
        "JSON object, not a string, because this format writes each argument separately "
        "(vLLM passes objects; with transformers pass a dict)"
    )


def _tools_json_lines(unwrap: str, prompt: PromptPieces, line: str, suffix: str = "") -> str:
    """Tools formatter of the shape: for each tool, text += <line>; PROMPT.format(tool_text)."""
    return _fill(
        """{%- macro lf_tools(tools) -%}
    {%- set ns = namespace(text="") -%}
    {%- for tool in tools -%}
        {%- set @unwrap@ -%}
        {%- set ns.text = ns.text ~ @line@ -%}
    {%- endfor -%}
    {{- @prompt@@suffix@ -}}
{%- endmacro -%}""",
        unwrap=unwrap,
        line=line,
        prompt=prompt_expr(prompt, tool_text="ns.text"),
        suffix=suffix,
    )


def _calls_joined(item: str) -> str:
    """Function formatter of the shape: "\\n".join(<item> for each call)."""
    return _fill(
        """{%- macro lf_calls(calls) -%}
    {%- for call in calls -%}
        @call_fn@
        {{- ("\\n" if not loop.first else "") ~ @item@ -}}
    {%- endfor -%}
{%- endmacro -%}""",
        call_fn=_CALL_FN,
        item=item,
    )


def _per_argument(head: str, arg: str, tail: str, msg: str, sep: str = '"\\n"') -> str:
    """Function formatter that writes each argument of each call (needs an object)."""
    return _fill(
        """{%- macro lf_calls(calls) -%}
    {%- for call in calls -%}
        @call_fn@
        @require@
        {%- set ns = namespace(text=@head@) -%}
        {%- for key, value in fn["arguments"].items() -%}
            {%- set ns.text = ns.text ~ @arg@ -%}
        {%- endfor -%}
        {{- (@sep@ if not loop.first else "") ~ ns.text ~ @tail@ -}}
    {%- endfor -%}
{%- endmacro -%}""",
        call_fn=_CALL_FN,
        require=_fill(_REQUIRE_OBJECT, msg=msg),
        head=head,
        arg=arg,
        tail=tail,
        sep=sep,
    )


def _name_arguments_json(name_key: str = "name", args_key: str = "arguments") -> str:
    # json.dumps({"name": n, "arguments": a}) == '{"name": ' + dumps(n) + ', "arguments": ' + dumps(a) + '}'
    return concat(
        [
            lit('{"' + name_key + '": '),
            '(fn["name"]|tojson)',
            lit(', "' + args_key + '": '),
            _ARGS_JSON,
            lit("}"),
        ]
    )


# -- formats ---------------------------------------------------------------------------------


def _default_tools(prompt: PromptPieces, order: str) -> str:
    source = _fill(
        """{%- macro lf_tools(tools) -%}
    {%- set ns = namespace(text="", names=[]) -%}
    {%- for tool in tools -%}
        {%- set @unwrap@ -%}
        {%- set args = namespace(text="") -%}
        {%- for name, param in t["parameters"]["properties"].items() -%}
            {%- set required = ", required" if name in t["parameters"].get("required", []) else "" -%}
            {%- set enum = (", should be one of [" ~ param["enum"]|join(", ") ~ "]") if param.get("enum", none) else "" -%}
            {%- set item = (", where each item should be " ~ param["items"].get("type", "")) if param.get("items", none) else "" -%}
            {%- set args.text = args.text ~ "  - " ~ name ~ " (" ~ param.get("type", "") ~ required ~ "): " ~ param.get("description", "") ~ enum ~ item ~ "\\n" -%}
        {%- endfor -%}
        {%- set ns.text = ns.text ~ "> Tool Name: " ~ t["name"] ~ "\\nTool Description: " ~ t.get("description", "") ~ "\\nTool Args:\\n" ~ args.text ~ "\\n" -%}
        {%- set ns.names = ns.names + [t["name"]] -%}
    {%- endfor -%}
    {{- @prompt@ -}}
{%- endmacro -%}""",
        unwrap=_UNWRAP_EMPTY,
        prompt=prompt_expr(prompt, tool_text="ns.text", tool_names='ns.names|join(", ")'),
    )
    return _canonical_iteration(source) if order == CANONICAL else source


#: A description an engine's pydantic model set to null reads as LF's missing one ("").
_DESCRIPTION = 't.get("description", "")'
_DESCRIPTION_NOT_NULL = '(t.get("description") if t.get("description") is not none else "")'


def _canonical_iteration(source: str) -> str:
    """Formats that walk a schema's properties (``default``, ``gemma4``): in sorted key order, null
    description as missing (``model.tool_order``)."""
    out = source.replace('["properties"].items()', '["properties"]|dictsort(case_sensitive=true)')
    out = out.replace("properties.items()", "properties|dictsort(case_sensitive=true)")
    out = out.replace(_DESCRIPTION, _DESCRIPTION_NOT_NULL)
    if out == source:
        raise AssertionError("no properties iteration found to put in canonical order")
    return out


def _default_calls() -> str:
    return _calls_joined(concat([lit("Action: "), 'fn["name"]', lit("\nAction Input: "), _ARGS_JSON]))


def _qwen_like_tools(prompt: PromptPieces, order: str, suffix: str = "") -> str:
    return _tools_json_lines(_WRAP, prompt, '"\\n" ~ ' + _json_expr("t", "tool", order), suffix)


def _qwen_calls() -> str:
    return _calls_joined(concat([lit("<tool_call>\n"), _name_arguments_json(), lit("\n</tool_call>")]))


def _mistral_tools(order: str) -> str:
    return _fill(
        """{%- macro lf_tools(tools) -%}
    {%- set ns = namespace(items=[]) -%}
    {%- for tool in tools -%}
        {%- set @wrap@ -%}
        {%- set ns.items = ns.items + [t] -%}
    {%- endfor -%}
    {{- "[AVAILABLE_TOOLS] " ~ @items@ ~ "[/AVAILABLE_TOOLS]" -}}
{%- endmacro -%}""",
        wrap=_WRAP,
        items=_json_expr("ns.items", "tools", order),
    )


def _mistral_calls() -> str:
    return _fill(
        """{%- macro lf_calls(calls) -%}
    {{- "[" -}}
    {%- for call in calls -%}
        @call_fn@
        {{- (", " if not loop.first else "") ~ @item@ -}}
    {%- endfor -%}
    {{- "]" -}}
{%- endmacro -%}""",
        call_fn=_CALL_FN,
        item=_name_arguments_json(),
    )


def _llama3_tools(prompt: PromptPieces, order: str) -> str:
    return _fill(
        """{%- macro lf_tools(tools) -%}
    {%- set ns = namespace(text="") -%}
    {%- for tool in tools -%}
        {%- set @wrap@ -%}
        {%- set ns.text = ns.text ~ @json@ ~ "\\n\\n" -%}
    {%- endfor -%}
    {{- @prompt@ -}}
{%- endmacro -%}""",
        wrap=_WRAP,
        json=_json_expr("t", "tool", order, indent=4),
        prompt=prompt_expr(prompt, tool_text="ns.text", date='strftime_now("%d %b %Y")'),
    )


def _llama3_calls() -> str:
    return _fill(
        """{%- macro lf_calls(calls) -%}
    {%- if calls|length > 1 -%}{{- "[" -}}{%- endif -%}
    {%- for call in calls -%}
        @call_fn@
        {{- (", " if not loop.first else "") ~ @item@ -}}
    {%- endfor -%}
    {%- if calls|length > 1 -%}{{- "]" -}}{%- endif -%}
{%- endmacro -%}""",
        call_fn=_CALL_FN,
        item=_name_arguments_json(args_key="parameters"),
    )


def _glm4_tools(prompt: PromptPieces, order: str) -> str:
    line = concat(
        [
            lit("\n\n## "),
            't["name"]',
            lit("\n\n"),
            _json_expr("t", "fn", order, indent=4),
            lit("\n在调用上述函数时，请使用 Json 格式表示调用的参数。"),
        ]
    )
    return _tools_json_lines(_UNWRAP_EMPTY, prompt, line)


def _glm4_calls(template: str) -> str:
    msg = lit(f"lf-template-ext (LF template '{template}', tool format 'glm4'): GLM-4 does not support parallel functions.")
    return _fill(
        """{%- macro lf_calls(calls) -%}
    {%- if calls|length > 1 -%}{{- raise_exception(@msg@) -}}{%- endif -%}
    {%- for call in calls -%}
        @call_fn@
        {{- fn["name"] ~ "\\n" ~ @args@ -}}
    {%- endfor -%}
{%- endmacro -%}""",
        msg=msg,
        call_fn=_CALL_FN,
        args=_ARGS_JSON,
    )


def _glm4_moe_calls(template: str) -> str:
    return _per_argument(
        head='"\\n<tool_call>" ~ fn["name"]',
        arg=f'"\\n<arg_key>" ~ key ~ "</arg_key>" ~ "\\n<arg_value>" ~ {_VALUE_TEXT} ~ "</arg_value>"',
        tail='""',
        msg=_object_message("glm4_moe", template),
    )


def _qwen3_5_calls(template: str) -> str:
    return _per_argument(
        head='"<tool_call>\\n<function=" ~ fn["name"] ~ ">"',
        arg=f'"\\n<parameter=" ~ key ~ ">" ~ "\\n" ~ {_VALUE_TEXT} ~ "\\n</parameter>"',
        tail='"\\n</function>\\n</tool_call>"',
        msg=_object_message("qwen3_5", template),
    )


def _seed_tools(prompt: PromptPieces, order: str) -> str:
    # LF dumps the raw list; canonical order wraps each tool as Ollama does (model/tool_order.py)
    tools_json = "lf_ctools(tools)" if order == CANONICAL else "tools|tojson"
    return _fill(
        """{%- macro lf_tools(tools) -%}
    {{- @prompt@ -}}
{%- endmacro -%}""",
        prompt=prompt_expr(prompt, tool_text='"\\n" ~ ' + tools_json),
    )


def _seed_calls(template: str) -> str:
    return _per_argument(
        head='"\\n<seed:tool_call>\\n<function=" ~ fn["name"]',
        arg=f'"\\n<parameter=" ~ key ~ ">" ~ {_VALUE_TEXT} ~ "</parameter>"',
        tail='"\\n</function>\\n</seed:tool_call>"',
        msg=_object_message("seed_oss", template),
    )


def _minimax1_calls() -> str:
    return _fill(
        """{%- macro lf_calls(calls) -%}
    {{- "<tool_calls>\\n" -}}
    {%- for call in calls -%}
        @call_fn@
        {{- ("\\n" if not loop.first else "") ~ @item@ -}}
    {%- endfor -%}
    {{- "\\n</tool_calls>" -}}
{%- endmacro -%}""",
        call_fn=_CALL_FN,
        item=_name_arguments_json(),
    )


def _minimax2_calls(template: str) -> str:
    return _per_argument(
        head="'<invoke name=\"' ~ fn[\"name\"] ~ '\">'",
        arg=f"'\\n<parameter name=\"' ~ key ~ '\">' ~ {_VALUE_TEXT} ~ \"</parameter>\"",
        tail='"\\n</invoke>"',
        msg=_object_message("minimax2", template),
    )


def _lfm2_tools(prompt: PromptPieces, order: str) -> str:
    return _fill(
        """{%- macro lf_tools(tools) -%}
    {%- set ns = namespace(items=[]) -%}
    {%- for tool in tools -%}
        {%- set @unwrap@ -%}
        {%- set ns.items = ns.items + [t] -%}
    {%- endfor -%}
    {{- @prompt@ -}}
{%- endmacro -%}""",
        unwrap=_UNWRAP_SELF,
        prompt=prompt_expr(prompt, tool_text=_json_expr("ns.items", "fns", order)),
    )


def _lfm2_calls(template: str) -> str:
    return _fill(
        """{%- macro lf_calls(calls) -%}
    {%- set out = namespace(items=[]) -%}
    {%- for call in calls -%}
        @call_fn@
        @require@
        {%- set ns = namespace(parts=[]) -%}
        {%- for key, value in fn["arguments"].items() -%}
            {%- set ns.parts = ns.parts + [(key ~ '="' ~ value ~ '"') if value is string else (key ~ "=" ~ value|tojson)] -%}
        {%- endfor -%}
        {%- set out.items = out.items + [fn["name"] ~ "(" ~ ns.parts|join(", ") ~ ")"] -%}
    {%- endfor -%}
    {{- "<|tool_call_start|>[" ~ out.items|join(", ") ~ "]<|tool_call_end|>" -}}
{%- endmacro -%}""",
        call_fn=_CALL_FN,
        require=_fill(_REQUIRE_OBJECT, msg=_object_message("lfm2", template)),
    )


def _gemma4_tools(order: str) -> str:
    source = _GEMMA4_TOOLS
    return _canonical_iteration(source) if order == CANONICAL else source


_GEMMA4_TOOLS = """{%- macro lf_gemma4_params(properties) -%}
    {%- set ns = namespace(parts=[]) -%}
    {%- for name, schema in properties.items() -%}
        {%- set item = namespace(parts=[]) -%}
        {%- if schema.get("description") -%}
            {%- set item.parts = item.parts + ['description:<|"|>' ~ schema["description"] ~ '<|"|>'] -%}
        {%- endif -%}
        {%- if schema.get("type") -%}
            {%- set item.parts = item.parts + ['type:<|"|>' ~ (schema["type"]|string).upper() ~ '<|"|>'] -%}
        {%- endif -%}
        {%- set ns.parts = ns.parts + [name ~ ":{" ~ item.parts|join(",") ~ "}"] -%}
    {%- endfor -%}
    {{- ns.parts|join(",") -}}
{%- endmacro -%}
{%- macro lf_tools(tools) -%}
    {%- set out = namespace(items=[]) -%}
    {%- for tool in tools -%}
        {%- set t = tool.get("function", tool) if tool.get("type") == "function" else tool -%}
        {%- set ns = namespace(text="declaration:" ~ t["name"] ~ "{" ~ 'description:<|"|>' ~ t.get("description", "") ~ '<|"|>') -%}
        {%- set params = t.get("parameters") -%}
        {%- if params -%}
            {%- set pp = namespace(parts=[]) -%}
            {%- if params.get("properties") -%}
                {%- set pp.parts = pp.parts + ["properties:{" ~ lf_gemma4_params(params["properties"]) ~ "}"] -%}
            {%- endif -%}
            {%- if params.get("required") -%}
                {%- set req = namespace(parts=[]) -%}
                {%- for r in params["required"] -%}
                    {%- set req.parts = req.parts + ['<|"|>' ~ r ~ '<|"|>'] -%}
                {%- endfor -%}
                {%- set pp.parts = pp.parts + ["required:[" ~ req.parts|join(",") ~ "]"] -%}
            {%- endif -%}
            {%- if params.get("type") -%}
                {%- set pp.parts = pp.parts + ['type:<|"|>' ~ (params["type"]|string).upper() ~ '<|"|>'] -%}
            {%- endif -%}
            {%- set ns.text = ns.text ~ ",parameters:{" ~ pp.parts|join(",") ~ "}" -%}
        {%- endif -%}
        {%- set response = t.get("response") -%}
        {%- if response -%}
            {%- set rp = namespace(parts=[]) -%}
            {%- if response.get("description") -%}
                {%- set rp.parts = rp.parts + ['description:<|"|>' ~ response["description"] ~ '<|"|>'] -%}
            {%- endif -%}
            {%- set rtype = (response.get("type", "")|string).upper() -%}
            {%- if rtype == "OBJECT" -%}
                {%- set rp.parts = rp.parts + ['type:<|"|>' ~ rtype ~ '<|"|>'] -%}
            {%- endif -%}
            {%- set ns.text = ns.text ~ ",response:{" ~ rp.parts|join(",") ~ "}" -%}
        {%- endif -%}
        {%- set out.items = out.items + [ns.text ~ "}"] -%}
    {%- endfor -%}
    {{- out.items|join("\\n") -}}
{%- endmacro -%}"""


def _gemma4_calls() -> str:
    # Gemma4ToolUtils.function_formatter: sorted keys, Python-like scalars, <|"|> string quotes.
    return """{%- macro lf_gemma4_arg(value, escape_keys) -%}
    {%- if value is string -%}
        {{- '<|"|>' ~ value ~ '<|"|>' -}}
    {%- elif value is boolean -%}
        {{- "true" if value else "false" -}}
    {%- elif value is mapping -%}
        {%- set ns = namespace(items=[]) -%}
        {%- for key in value.keys()|sort(case_sensitive=true) -%}
            {%- set k = ('<|"|>' ~ key ~ '<|"|>') if escape_keys else (key|string) -%}
            {%- set ns.items = ns.items + [k ~ ":" ~ lf_gemma4_arg(value[key], escape_keys)] -%}
        {%- endfor -%}
        {{- "{" ~ ns.items|join(",") ~ "}" -}}
    {%- elif value is iterable -%}
        {%- set ns = namespace(items=[]) -%}
        {%- for item in value -%}
            {%- set ns.items = ns.items + [lf_gemma4_arg(item, escape_keys)] -%}
        {%- endfor -%}
        {{- "[" ~ ns.items|join(",") ~ "]" -}}
    {%- elif value is none -%}
        {{- "null" -}}
    {%- else -%}
        {{- value|string -}}
    {%- endif -%}
{%- endmacro -%}
{%- macro lf_calls(calls) -%}
    {%- for call in calls -%}
        {%- set fn = call["function"] if call["function"] is defined else call -%}
        {%- set args = fn["arguments"] -%}
        {{- "<|tool_call>call:" ~ fn["name"] ~ "{" -}}
        {%- if args is mapping -%}
            {%- set ns = namespace(items=[]) -%}
            {%- for key in args.keys()|sort(case_sensitive=true) -%}
                {%- set ns.items = ns.items + [key ~ ":" ~ lf_gemma4_arg(args[key], false)] -%}
            {%- endfor -%}
            {{- ns.items|join(",") -}}
        {%- elif args is string -%}
            {{- args -}}
        {%- else -%}
            {{- lf_gemma4_arg(args, false) -}}
        {%- endif -%}
        {{- "}<tool_call|>" -}}
    {%- endfor -%}
{%- endmacro -%}"""


def tools_macro(tool_format: str, prompt: PromptPieces, template: str, tool_order: str = CLIENT) -> str:
    """Jinja source defining ``lf_tools(tools)`` for ``tool_format``.

    ``tool_order`` (``model/tool_order.py``): ``client`` writes the tool JSON in the order the engine passed
    it (LF's ``json.dumps``), ``canonical`` in the one order every engine can reproduce (the caller adds
    :data:`CANONICAL_JSON_MACROS` once).
    """
    order = check_tool_order(tool_order)
    if tool_format == "default":
        return _default_tools(prompt, order)
    if tool_format in ("qwen", "glm4_moe"):
        return _qwen_like_tools(prompt, order)
    if tool_format == "ling":
        return _qwen_like_tools(prompt, order, suffix=' ~ "\\n" ~ "detailed thinking off"')
    if tool_format == "mistral":
        return _mistral_tools(order)
    if tool_format == "llama3":
        return _llama3_tools(prompt, order)
    if tool_format == "glm4":
        return _glm4_tools(prompt, order)
    if tool_format == "qwen3_5":
        return _tools_json_lines(_UNWRAP_SELF, prompt, '"\\n" ~ ' + _json_expr("t", "fn", order))
    if tool_format == "seed_oss":
        return _seed_tools(prompt, order)
    if tool_format == "minimax1":
        return _tools_json_lines(_UNWRAP_EMPTY, prompt, _json_expr("t", "fn", order) + ' ~ "\\n"')
    if tool_format == "minimax2":
        return _tools_json_lines(_UNWRAP_EMPTY, prompt, '"<tool>" ~ ' + _json_expr("t", "fn", order) + ' ~ "</tool>\\n"')
    if tool_format == "lfm2":
        return _lfm2_tools(prompt, order)
    if tool_format == "gemma4":
        return _gemma4_tools(order)
    raise UnsupportedTemplateError(template, f"tool format {tool_format!r} is not known to lf-template-ext", "tools")


def calls_macro(tool_format: str, template: str) -> str:
    """Jinja source defining ``lf_calls(calls)`` for ``tool_format``."""
    if tool_format == "default":
        return _default_calls()
    if tool_format in ("qwen", "ling"):
        return _qwen_calls()
    if tool_format == "mistral":
        return _mistral_calls()
    if tool_format == "llama3":
        return _llama3_calls()
    if tool_format == "glm4":
        return _glm4_calls(template)
    if tool_format == "glm4_moe":
        return _glm4_moe_calls(template)
    if tool_format == "qwen3_5":
        return _qwen3_5_calls(template)
    if tool_format == "seed_oss":
        return _seed_calls(template)
    if tool_format == "minimax1":
        return _minimax1_calls()
    if tool_format == "minimax2":
        return _minimax2_calls(template)
    if tool_format == "lfm2":
        return _lfm2_calls(template)
    if tool_format == "gemma4":
        return _gemma4_calls()
    raise UnsupportedTemplateError(template, f"tool format {tool_format!r} is not known to lf-template-ext", "tool calls")
