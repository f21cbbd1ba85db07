"""LF's tool prompts and tool calls as Go template code for Ollama (pure).

:func:`tools_define` writes ``format_tools.apply(content=tools)[0]`` from Ollama's ``.Tools`` and
:func:`calls_define` writes ``tool_utils.function_formatter(calls)`` from a message's ``.ToolCalls``,
for every tool format of LF 0.9.5 (``ollama.TOOL_FORMATS``). JSON is written by ``go_json.GoJson``
(sorted keys, ``json.dumps`` spacing); the other pieces are LF's literal text around Go actions.
"""

from __future__ import annotations

from ..errors import UnsupportedTemplateError
from ..model.spec import TemplateSpec, TokenizerFacts
from .go_json import GoJson
from .go_text import PREFIX, fail, go_lit, out, slot_code


def _unwrapped(spec: TemplateSpec, type_field: str = ".Type") -> str:
    """Refuse a tool that is not OpenAI-shaped: Ollama keeps only ``type`` and ``function``.

    ``type_field``: the tool's type (``$x.Type`` for a tool bound to ``$x`` inside ``GoJson.array``).
    """
    return (
        "{{- if ne "
        + type_field
        + " "
        + go_lit("function")
        + " -}}"
        + fail(spec, 'only tools of type "function" can be written (Ollama keeps no other tool shape)')
        + "{{- end -}}"
    )


def _each_tool(spec: TemplateSpec, body: str, sep: str = "") -> str:
    """Range over the tools (dot: the list), dot inside = one ``templateTool``."""
    head = "{{- range $j, $t := . -}}" + _unwrapped(spec)
    if sep:
        head += "{{- if $j -}}" + out(sep) + "{{- end -}}"
    return head + body + "{{- end -}}"


def _prompt(spec: TemplateSpec, fields: dict[str, str]) -> str:
    """``PROMPT.format(**fields)`` from the prompt pieces LF's installed version uses."""
    code = ""
    for kind, value in spec.tool_prompt:
        if kind == "text":
            code += out(value)
        elif value in fields:
            code += fields[value]
        else:
            raise UnsupportedTemplateError(
                spec.name, f"tool prompt field {{{value}}} is not known to {PREFIX}", "tools"
            )
    return code


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _llama3_date() -> str:
    """``datetime.now().strftime("%d %b %Y")`` from Ollama's ``currentDate`` (``2006-01-02`` layout)."""
    code = "{{- $date := currentDate -}}{{- slice $date 8 10 -}}" + out(" ")
    code += "{{- $mm := slice $date 5 7 -}}"
    for i, month in enumerate(_MONTHS, 1):
        code += ("{{- if" if i == 1 else "{{- else if") + " eq $mm " + go_lit(f"{i:02d}") + " -}}" + out(month)
    return code + "{{- end -}}" + out(" ") + "{{- slice $date 0 4 -}}"


def _gemma4_upper(value: str) -> str:
    """``str(t).upper()`` for a JSON-schema type name (Go templates have no upper-casing)."""
    names = ("string", "number", "integer", "boolean", "array", "object", "null")
    code = ""
    for i, n in enumerate(names):
        code += ("{{- if" if i == 0 else "{{- else if") + f" eq {value} " + go_lit(n) + " -}}" + out(n.upper())
    return (
        code
        + "{{- else -}}{{- template "
        + go_lit(f"{PREFIX}: gemma4 tool types must be JSON-schema type names (no upper-casing in Go templates)")
        + " . -}}{{- end -}}"
    )


def _gemma4_type(field: str) -> str:
    """``str(schema["type"]).upper()`` of an Ollama ``PropertyType`` (one name, or a list)."""
    return (
        "{{- if eq (len "
        + field
        + ") 1 -}}"
        + _gemma4_upper("(index " + field + " 0)")
        + "{{- else -}}"
        + out("[")
        + "{{- range $i, $y := "
        + field
        + " -}}{{- if $i -}}"
        + out(", ")
        + "{{- end -}}"
        + out("'")
        + _gemma4_upper("$y")
        + out("'")
        + "{{- end -}}"
        + out("]")
        + "{{- end -}}"
    )


def tools_define(spec: TemplateSpec, facts: TokenizerFacts, fmt: str, js: GoJson) -> str:
    """Go code (dot: ``.Tools``) writing ``format_tools.apply(content=tools)[0]``."""
    if spec.tools.kind == "string":  # phi4_mini: a StringFormatter gets the raw tools JSON
        tools_json = js.array("compact", 0, ".", js.call("tool", "compact", 1, "$x"))
        return slot_code(spec.tools, facts, spec, "tools", tools_json, first_slot_only=True)
    if fmt == "default":
        return _default_tools(spec)
    if fmt in ("qwen", "ling", "glm4_moe"):
        text = _each_tool(spec, out("\n") + js.call("tool", "compact", 0, "."))
        return _prompt(spec, {"tool_text": text}) + (out("\ndetailed thinking off") if fmt == "ling" else "")
    if fmt == "qwen3_5":
        return _prompt(spec, {"tool_text": _each_tool(spec, out("\n") + js.call("fn", "compact", 0, ".Function"))})
    if fmt == "mistral":
        return (
            out("[AVAILABLE_TOOLS] ")
            + js.array("compact", 0, ".", js.call("tool", "compact", 1, "$x"))
            + out("[/AVAILABLE_TOOLS]")
        )
    if fmt == "llama3":
        text = _each_tool(spec, js.call("tool", "indent", 0, ".") + out("\n\n"))
        return _prompt(spec, {"tool_text": text, "date": _llama3_date()})
    if fmt == "glm4":
        text = _each_tool(
            spec,
            out("\n\n## ")
            + "{{- .Function.Name -}}"
            + out("\n\n")
            + js.call("fn", "indent", 0, ".Function")
            + out("\n在调用上述函数时，请使用 Json 格式表示调用的参数。"),
        )
        return _prompt(spec, {"tool_text": text})
    if fmt == "minimax1":
        return _prompt(spec, {"tool_text": _each_tool(spec, js.call("fn", "compact", 0, ".Function") + out("\n"))})
    if fmt == "minimax2":
        text = _each_tool(spec, out("<tool>") + js.call("fn", "compact", 0, ".Function") + out("</tool>\n"))
        return _prompt(spec, {"tool_text": text})
    if fmt == "seed_oss":
        item = _unwrapped(spec, "$x.Type") + js.call("tool", "compact", 1, "$x")
        text = out("\n") + js.array("compact", 0, ".", item)
        return _prompt(spec, {"tool_text": text})
    if fmt == "lfm2":
        item = _unwrapped(spec, "$x.Type") + js.call("fn", "compact", 1, "$x.Function")
        text = js.array("compact", 0, ".", item)
        return _prompt(spec, {"tool_text": text})
    if fmt == "gemma4":
        return _gemma4_tools(spec)
    raise UnsupportedTemplateError(spec.name, f"tool format {fmt!r} is not known to {PREFIX}", "tools")


def _default_tool_arg() -> str:
    """One ``  - name (type, required): description, ...`` line of the default tool prompt.

    Dot: ``$p`` the property (an Ollama ``ToolProperty``), ``$name`` its key, ``$f`` the function.
    """
    return (
        out("  - ")
        + "{{- $name -}}"
        + out(" (")
        + "{{- if eq (len $p.Type) 1 -}}{{- index $p.Type 0 -}}{{- else if $p.Type -}}"
        + out("[")
        + "{{- range $i, $y := $p.Type -}}{{- if $i -}}"
        + out(", ")
        + "{{- end -}}"
        + out("'")
        + "{{- $y -}}"
        + out("'")
        + "{{- end -}}"
        + out("]")
        + "{{- end -}}"
        + "{{- range $r := $f.Parameters.Required -}}{{- if eq $r $name -}}"
        + out(", required")
        + "{{- break -}}{{- end -}}{{- end -}}"
        + out("): ")
        + "{{- $p.Description -}}"
        + "{{- if $p.Enum -}}"
        + out(", should be one of [")
        + "{{- range $i, $e := $p.Enum -}}{{- if $i -}}"
        + out(", ")
        + "{{- end -}}{{- $e -}}{{- end -}}"
        + out("]")
        + "{{- end -}}"
        + "{{- if $p.Items -}}"
        + out(", where each item should be ")
        + '{{- with index $p.Items "type" -}}{{- . -}}{{- end -}}{{- end -}}'
        + out("\n")
    )


def _default_tools(spec: TemplateSpec) -> str:
    """LF's ``DefaultToolUtils.tool_formatter``: a ``> Tool Name:`` block per tool, then the names."""
    prop = _default_tool_arg()
    text = _each_tool(
        spec,
        "{{- $f := .Function -}}"
        + out("> Tool Name: ")
        + "{{- $f.Name -}}"
        + out("\nTool Description: ")
        + "{{- $f.Description -}}"
        + out("\nTool Args:\n")
        + "{{- range $name, $p := $f.Parameters.Properties -}}"
        + prop
        + "{{- end -}}"
        + out("\n"),
    )
    names = _each_tool(spec, "{{- .Function.Name -}}", sep=", ")
    return _prompt(spec, {"tool_text": text, "tool_names": names})


def _gemma4_property() -> str:
    """``name:{description:<|"|>...<|"|>,type:<|"|>TYPE<|"|>}`` for the property ``$p`` named ``$name``."""
    return (
        "{{- $name -}}"
        + out(":{")
        + '{{- $is := "" -}}'
        + "{{- if $p.Description -}}"
        + out('description:<|"|>')
        + "{{- $p.Description -}}"
        + out('<|"|>')
        + '{{- $is = "," -}}{{- end -}}'
        + "{{- if $p.Type -}}{{- $is -}}"
        + out('type:<|"|>')
        + _gemma4_type("$p.Type")
        + out('<|"|>')
        + "{{- end -}}"
        + out("}")
    )


def _gemma4_tools(spec: TemplateSpec) -> str:
    """``Gemma4ToolUtils.tool_formatter``: one ``declaration:name{...}`` per tool, Python-like, no JSON."""
    prop = _gemma4_property()
    decl = (
        out("declaration:")
        + "{{- .Function.Name -}}"
        + out('{description:<|"|>')
        + "{{- .Function.Description -}}"
        + out('<|"|>')
        + "{{- $pp := .Function.Parameters -}}"
        + "{{- if or $pp.Properties $pp.Required $pp.Type -}}"
        + out(",parameters:{")
        + '{{- $ps := "" -}}'
        + "{{- if $pp.Properties -}}"
        + out("properties:{")
        + '{{- $qs := "" -}}{{- range $name, $p := $pp.Properties -}}{{- $qs -}}'
        + prop
        + '{{- $qs = "," -}}{{- end -}}'
        + out("}")
        + '{{- $ps = "," -}}{{- end -}}'
        + "{{- if $pp.Required -}}{{- $ps -}}"
        + out("required:[")
        + "{{- range $i, $r := $pp.Required -}}{{- if $i -}}"
        + out(",")
        + "{{- end -}}"
        + out('<|"|>')
        + "{{- $r -}}"
        + out('<|"|>')
        + "{{- end -}}"
        + out("]")
        + '{{- $ps = "," -}}{{- end -}}'
        + "{{- if $pp.Type -}}{{- $ps -}}"
        + out('type:<|"|>')
        + _gemma4_upper("$pp.Type")
        + out('<|"|>')
        + "{{- end -}}"
        + out("}")
        + "{{- end -}}"
        + out("}")
    )
    return _each_tool(spec, decl, sep="\n")


def _each_call(body: str, sep: str) -> str:
    """Range over the calls (dot: ``.ToolCalls``) as ``$c``, writing ``sep`` between their ``body``."""
    return "{{- range $j, $c := . -}}{{- if $j -}}" + out(sep) + "{{- end -}}" + body + "{{- end -}}"


def _per_argument(js: GoJson, head: str, arg: str, tail: str, sep: str = "\n") -> str:
    """Formats that write each argument (``glm4_moe``, ``qwen3_5``, ``seed_oss``, ``minimax2``).

    ``arg`` may use ``$k`` and ``VALUE`` (LF's ``value if str else json.dumps(value)``).
    """
    value = (
        '{{- if eq (printf "%T" $v) "string" -}}{{- $v -}}{{- else -}}'
        + js.call("any", "compact", 0, "$v")
        + "{{- end -}}"
    )
    return _each_call(
        head + "{{- range $k, $v := $c.Function.Arguments -}}" + arg.replace("VALUE", value) + "{{- end -}}" + tail,
        sep,
    )


def _name_args(js: GoJson, args_key: str = "arguments") -> str:
    """``json.dumps({"name": n, args_key: a})`` for the call ``$c``."""
    return (
        out('{"name": ')
        + "{{- json $c.Function.Name -}}"
        + out(f', "{args_key}": ')
        + js.call("obj", "compact", 0, "$c.Function.Arguments")
        + out("}")
    )


def calls_define(spec: TemplateSpec, fmt: str, js: GoJson) -> str:
    """Go code (dot: ``.ToolCalls``) writing ``tool_utils.function_formatter(calls)``."""
    if fmt == "default":
        action = (
            out("Action: ")
            + "{{- $c.Function.Name -}}"
            + out("\nAction Input: ")
            + js.call("obj", "compact", 0, "$c.Function.Arguments")
        )
        return _each_call(action, "\n")
    if fmt in ("qwen", "ling"):
        return _each_call(out("<tool_call>\n") + _name_args(js) + out("\n</tool_call>"), "\n")
    if fmt == "mistral":
        return out("[") + _each_call(_name_args(js), ", ") + out("]")
    if fmt == "llama3":
        many = "{{- if gt (len .) 1 -}}" + out("[") + "{{- end -}}"
        return many + _each_call(_name_args(js, "parameters"), ", ") + many.replace(go_lit("["), go_lit("]"))
    if fmt == "glm4":
        return (
            "{{- if gt (len .) 1 -}}"
            + fail(spec, "GLM-4 does not support parallel functions (LF refuses them too)")
            + "{{- end -}}{{- range $c := . -}}{{- $c.Function.Name -}}"
            + out("\n")
            + js.call("obj", "compact", 0, "$c.Function.Arguments")
            + "{{- end -}}"
        )
    if fmt == "glm4_moe":
        return _per_argument(
            js,
            out("\n<tool_call>") + "{{- $c.Function.Name -}}",
            out("\n<arg_key>") + "{{- $k -}}" + out("</arg_key>\n<arg_value>") + "VALUE" + out("</arg_value>"),
            "",
        )
    if fmt == "qwen3_5":
        return _per_argument(
            js,
            out("<tool_call>\n<function=") + "{{- $c.Function.Name -}}" + out(">"),
            out("\n<parameter=") + "{{- $k -}}" + out(">\n") + "VALUE" + out("\n</parameter>"),
            out("\n</function>\n</tool_call>"),
        )
    if fmt == "seed_oss":
        return _per_argument(
            js,
            out("\n<seed:tool_call>\n<function=") + "{{- $c.Function.Name -}}",
            out("\n<parameter=") + "{{- $k -}}" + out(">") + "VALUE" + out("</parameter>"),
            out("\n</function>\n</seed:tool_call>"),
        )
    if fmt == "minimax1":
        return out("<tool_calls>\n") + _each_call(_name_args(js), "\n") + out("\n</tool_calls>")
    if fmt == "minimax2":
        return _per_argument(
            js,
            out('<invoke name="') + "{{- $c.Function.Name -}}" + out('">'),
            out('\n<parameter name="') + "{{- $k -}}" + out('">') + "VALUE" + out("</parameter>"),
            out("\n</invoke>"),
        )
    if fmt == "lfm2":
        return _lfm2_calls(js)
    if fmt == "gemma4":
        return _gemma4_calls()
    raise UnsupportedTemplateError(spec.name, f"tool format {fmt!r} is not known to {PREFIX}", "tool calls")


def _lfm2_calls(js: GoJson) -> str:
    """``LFM2ToolUtils.function_formatter``: ``[name(k="str", k=json), ...]``, Python-call style."""
    arg = (
        "{{- if $a -}}"
        + out(", ")
        + "{{- end -}}{{- $a = true -}}{{- $k -}}"
        + '{{- if eq (printf "%T" $v) "string" -}}'
        + out('="')
        + "{{- $v -}}"
        + out('"')
        + "{{- else -}}"
        + out("=")
        + js.call("any", "compact", 0, "$v")
        + "{{- end -}}"
    )
    call = (
        "{{- $c.Function.Name -}}"
        + out("(")
        + "{{- $a := false -}}{{- range $k, $v := $c.Function.Arguments -}}"
        + arg
        + "{{- end -}}"
        + out(")")
    )
    return out("<|tool_call_start|>[") + _each_call(call, ", ") + out("]<|tool_call_end|>")


def _gemma4_calls() -> str:
    """``Gemma4ToolUtils.function_formatter``: sorted keys, Python-like scalars, ``<|"|>`` string quotes."""
    return (
        "{{- range $c := . -}}"
        + out("<|tool_call>call:")
        + "{{- $c.Function.Name -}}"
        + out("{")
        + '{{- $s := "" -}}{{- range $k, $v := $c.Function.Arguments -}}{{- $s -}}{{- $k -}}'
        + out(":")
        + '{{- template "lf_gemma4_arg" $v -}}{{- $s = "," -}}{{- end -}}'
        + out("}<tool_call|>")
        + "{{- end -}}"
    )


#: The define :func:`_gemma4_calls` uses for each argument value (recursive: Go templates have no functions).
GEMMA4_ARG_DEFINE = (
    '{{- define "lf_gemma4_arg" -}}{{- $t := printf "%T" . -}}'
    '{{- if eq $t "string" -}}'
    + out('<|"|>')
    + "{{- . -}}"
    + out('<|"|>')
    + '{{- else if eq $t "bool" -}}{{- if . -}}'
    + out("true")
    + "{{- else -}}"
    + out("false")
    + "{{- end -}}"
    + '{{- else if eq $t "map[string]interface {}" -}}'
    + out("{")
    + '{{- $s := "" -}}{{- range $k, $v := . -}}{{- $s -}}{{- $k -}}'
    + out(":")
    + '{{- template "lf_gemma4_arg" $v -}}{{- $s = "," -}}{{- end -}}'
    + out("}")
    + '{{- else if eq $t "[]interface {}" -}}'
    + out("[")
    + '{{- $s := "" -}}{{- range $v := . -}}{{- $s -}}{{- template "lf_gemma4_arg" $v -}}{{- $s = "," -}}{{- end -}}'
    + out("]")
    + '{{- else if eq $t "<nil>" -}}'
    + out("null")
    + "{{- else -}}{{- . -}}{{- end -}}{{- end -}}"
)
