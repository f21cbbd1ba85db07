"""SERVING.md: the exact commands to serve a repaired model with each engine.

Pure text generation from facts about the model dir and the template; parser choices are
mapped from LF's tool format and thought words to the engines' own parser names (a wrong
parser silently breaks tool calls, so a format without a known parser gets a warning, not a
guess).
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field
from typing import Any, Optional

from ..model.tool_formats import TOOL_FORMATS
from ..model.tool_order import CLIENT, order_statement

#: LF tool_format -> vLLM / SGLang --tool-call-parser (``model.tool_formats``). None: no parser reads it.
VLLM_TOOL_PARSERS: dict[str, Optional[str]] = {name: f.vllm_parser for name, f in TOOL_FORMATS.items()}
SGLANG_TOOL_PARSERS: dict[str, Optional[str]] = {name: f.sglang_parser for name, f in TOOL_FORMATS.items()}


def reasoning_parser(template: str, thought_words: tuple[str, str]) -> Optional[str]:
    """vLLM/SGLang --reasoning-parser for a reasoning template (None: no matching parser)."""
    if template.startswith(("qwen3", "qwen2_5", "qwq")):
        return "qwen3"
    if template.startswith(("glm4_moe", "glm4_7", "glm4_5", "glmz1", "glm4v", "aeva")):
        return "glm45"
    if template == "seed_oss":
        return "seed_oss"
    if template == "minimax2":
        return "minimax_m2"
    if template == "gpt_oss":
        return "openai_gptoss"
    if template == "deepseekr1" or thought_words[0].strip() == "<think>":
        return "deepseek_r1"
    return None


@dataclass
class ServingFacts:
    model_dir: str
    template: str
    is_reasoning: bool
    tool_format: Optional[str]
    thought_words: tuple[str, str]
    stop_ids: list[int]
    stop_tokens: list[str]
    cutoff_len: Optional[int] = None
    #: the serving context asked for (``--max-model-len`` / ``template_ext_serve_max_len``); None: none written
    serve_max_len: Optional[int] = None
    is_adapter: bool = False
    base_model: Optional[str] = None
    has_modelfile: bool = False
    has_lmdeploy_json: bool = False
    keep_native: bool = False
    #: trained with ``template: native`` (the model's own chat template): :func:`native_serving_md`
    native: bool = False
    warnings: list[str] = field(default_factory=list)
    #: the engine registry's verdicts (``workflows.engines.Verdict`` by engine name)
    verdicts: dict[str, Any] = field(default_factory=dict)
    #: what each engine does with this LoRA adapter (``workflows.adapters.AdapterFinding``)
    adapter_findings: list[Any] = field(default_factory=list)
    #: LF chat's sampling vs what engines will use (``model.generation.side_by_side``); None: not shown
    sampling_rows: Optional[list[dict[str, Any]]] = None
    #: the trained ``enable_thinking`` (reasoning templates: what the served default must be)
    enable_thinking: Optional[bool] = True
    #: ``{key: "value (source)"}``: where the template and each option came from
    provenance: dict[str, str] = field(default_factory=dict)
    #: the key order the dir's template writes tool definitions in (``model.tool_order``)
    tool_order: str = CLIENT
    #: the dir has our Open WebUI preset (``open-webui-model.json``)
    has_openwebui_preset: bool = False
    #: the model name the OpenAI-compatible server answers to (Open WebUI's base model id)
    served_name: Optional[str] = None
    #: a multimodal template: the "Images" section (``workflows.media.serving_lines``)
    media_lines: list[str] = field(default_factory=list)


# Engine flags for LoRA adapters, from each engine's documentation (checked for this file, not from memory):
# vLLM docs "LoRA Adapters" (docs.vllm.ai, v0.8-latest): `vllm serve BASE --enable-lora --lora-modules NAME=PATH`;
# SGLang docs "LoRA Serving" (docs.sglang.io, 0.5.x): `--enable-lora --lora-paths NAME=PATH`, requests pick the
# adapter by `"model": "BASE:NAME"` or `"lora_path": NAME`; lmdeploy 0.18.0 `lmdeploy/cli/utils.py`
# (ArgumentHelper.adapters, in the PyTorch engine's option group): `--backend pytorch --adapters NAME=PATH`;
# llama.cpp `convert_lora_to_gguf.py ADAPTER --base BASE --outfile F` and `llama-server -m BASE.gguf --lora F`
# (llama.cpp LoRA refactor, GGUF-my-LoRA, Nov 2024); Ollama docs/modelfile.md `ADAPTER` (a safetensors adapter
# dir, or a GGUF adapter, applied to the model of `FROM`).
LORA_NAME = "lf"


def _q(path: str) -> str:
    return shlex.quote(path)


def serving_md(f: ServingFacts) -> str:
    if f.native:
        return native_serving_md(f)
    # paths in commands are shell-quoted (a dir with spaces must stay one argument); prose keeps them bare
    raw_d = os.path.abspath(f.model_dir)
    lines = [
        "# Serving this model",
        "",
        f"Written by lf-template-ext for the LLaMA-Factory template `{f.template}`. The chat template in this",
        "directory renders the token ids the model was trained on; the commands below make each engine use it",
        "and stop on the template's stop tokens "
        + ", ".join(f"`{t}` ({i})" for t, i in zip(f.stop_tokens, f.stop_ids))
        + ".",
        "",
    ]
    if f.is_adapter:
        base = f.base_model or "<base model dir>"
        lines += [
            f"**LoRA adapter dir.** Every engine loads the base model (`{base}`) and applies this adapter with its own",
            "LoRA option; the base model's chat template and stop ids are not the training format, so each command",
            "passes this dir's files. Where an engine has no LoRA option, merge first (`llamafactory-cli export` with",
            "`LF_TEMPLATE_EXT=1` writes a merged dir with its own SERVING.md).",
            "",
        ]
        if f.adapter_findings:
            lines += ["What the engines do with this adapter (`alignment_report.json` `adapter`):", ""]
            lines += [f"- {'all engines' if a.engine == 'all' else a.engine}: {a.text}" for a in f.adapter_findings]
            lines += [""]
    if f.keep_native:
        lines += [
            "**Mode keep-native**: the model's own chat template was left in place; `alignment_report.json` shows",
            "how far it is from what training saw. Stop ids were aligned.",
            "",
        ]
    for w in f.warnings:
        lines += [f"> Warning: {w}", ""]
    if f.provenance:
        lines += ["Template and options, and where each came from (a flag, the training record, LF's run files, LF's default):", ""]
        lines += [f"- `{key}`: {value}" for key, value in f.provenance.items()] + [""]
    if f.tool_format:
        lines += [f"**Tool definitions' key order**: {order_statement(f.tool_order)}.", ""]
    lines += _thinking_lines(f)
    lines += _context_lines(f)
    lines += _sampling_lines(f)
    lines += f.media_lines
    lines += _vllm(f, raw_d) + _sglang(f, raw_d) + _lmdeploy(f, raw_d) + _ollama(f, raw_d) + _llama_cpp(f, raw_d)
    lines += _openwebui(f, raw_d)
    return "\n".join(lines)


def native_serving_md(f: ServingFacts) -> str:
    """SERVING.md of a model trained with ``template: native``: its own chat template is the training format,
    so the engines that render Jinja serve it as they serve the base model; only the stop ids need care."""
    raw_d = os.path.abspath(f.model_dir)
    d = _q(raw_d)
    base = _q(f.base_model or "<base model dir>")
    lora = _q(LORA_NAME + "=" + raw_d)
    stops = ", ".join(f"`{t}` ({i})" for t, i in zip(f.stop_tokens, f.stop_ids))
    lines = [
        "# Serving this model",
        "",
        "Written by lf-template-ext for a model trained with `template: native`: LLaMA-Factory trained it on its own",
        "chat template (the one in this directory), tokenized whole, so every engine that renders that Jinja template",
        f"serves the training format. Stop on {stops} (`generation_config.json` lists them).",
        "",
    ]
    if f.is_adapter:
        lines += [
            f"**LoRA adapter dir.** Engines load the base model (`{f.base_model or '<base model dir>'}`) and apply this",
            "adapter; the base model's chat template is the one training used.",
            "",
        ]
    for w in f.warnings:
        lines += [f"> Warning: {w}", ""]
    lines += _context_lines(f)
    max_len = f" --max-model-len {f.serve_max_len}" if f.serve_max_len else ""
    ctx = f" -c {f.serve_max_len}" if f.serve_max_len else ""
    if f.is_adapter:
        vllm = f"vllm serve {base} --enable-lora --lora-modules {lora} --generation-config {d}{max_len}"
        sglang = f"python -m sglang.launch_server --model-path {base} --enable-lora --lora-paths {lora}"
        lmdeploy = f"lmdeploy serve api_server {base} --backend pytorch --adapters {lora} --chat-template hf"
        llama_cpp = [
            f"python convert_hf_to_gguf.py {base} --outfile base.gguf",
            f"python convert_lora_to_gguf.py {d} --base {base} --outfile adapter.gguf",
            f"llama-server -m base.gguf --lora adapter.gguf --jinja{ctx}",
        ]
    else:
        vllm = f"vllm serve {d} --generation-config {d}{max_len}"
        sglang = f"python -m sglang.launch_server --model-path {d}"
        lmdeploy = f"lmdeploy serve api_server {d} --chat-template hf"
        llama_cpp = [f"python convert_hf_to_gguf.py {d} --outfile model.gguf", f"llama-server -m model.gguf --jinja{ctx}"]
    lines += ["## vLLM", "", "```bash", vllm, "```", ""]
    lines += ["## SGLang", "", "```bash", sglang, "```", "", f'Pass `"stop_token_ids": {f.stop_ids}` in each request.', ""]
    lines += [
        "## LMDeploy", "", "```bash", lmdeploy, "```", "",
        "`--chat-template hf` makes LMDeploy render the Jinja template instead of a built-in one matched by the path.", "",
    ]  # fmt: skip
    lines += ["## llama.cpp", "", "```bash", *llama_cpp, "```", "", "`--jinja` renders the GGUF's Jinja chat template.", ""]
    lines += [
        "## Ollama",
        "",
        "Ollama renders a Go template of its own for the model family, not the Jinja template this model was trained",
        "on, and lf-template-ext compiles Ollama templates only from LLaMA-Factory templates, so nothing here makes",
        "Ollama render the training format: serve with an engine above.",
        "",
    ]
    return "\n".join(lines)


def _sampling_lines(f: ServingFacts) -> list[str]:
    """LF chat's sampling next to what vLLM/SGLang take from ``generation_config.json`` (``model.generation``)."""
    from ..model.generation import table_lines

    if f.sampling_rows is None:
        return []
    lines = ["## Sampling", "", "`llamafactory-cli chat` samples with LF's generating arguments; engines take their defaults from"]
    lines += ["`generation_config.json` (vLLM, SGLang, LMDeploy's `--generation-config auto`) or the Modelfile's `PARAMETER`s (Ollama):", ""]
    lines += table_lines(f.sampling_rows) + [""]
    if not all(r["same"] for r in f.sampling_rows):
        lines += [
            "To answer as LF's chat does, write LF's values into the model's files with `lf-template repair DIR --generation lf`",
            "(YAML: `template_ext_generation: lf`), or send them with each request.",
            "",
        ]
    if any(r["key"] == "do_sample" and r["lf_chat"] is False for r in f.sampling_rows):
        lines += ["LF's chat decodes greedily: vLLM and SGLang ignore `do_sample`, so send `\"temperature\": 0` with each request.", ""]
    return lines


def _context_lines(f: ServingFacts) -> list[str]:
    cutoff = f"`cutoff_len: {f.cutoff_len}`" if f.cutoff_len else "`cutoff_len`"
    if f.serve_max_len:
        return [
            f"Context length: {f.serve_max_len} tokens, as asked (`--max-model-len` / `template_ext_serve_max_len`). "
            f"Training's {cutoff} only",
            "truncated training samples; it is not a limit of the model.",
            "",
        ]
    return [
        f"Context length: the model's own (`config.json`). Training's {cutoff} only truncated training samples, so it",
        "is no serving limit and none is set here; ask for one with `lf-template repair/emit --max-model-len N` (or the",
        "YAML key `template_ext_serve_max_len`).",
        "",
    ]


def _thinking_lines(f: ServingFacts) -> list[str]:
    """Thinking as trained: what the served default is, and what the opposite request does."""
    if not f.is_reasoning:
        return []
    if f.enable_thinking is None:
        return [
            "Thinking: trained with `enable_thinking: null` (LF keeps each sample's own thoughts); the chat template",
            "leaves the mode to the request, so no default is set below.",
            "",
        ]
    value = "true" if f.enable_thinking else "false"
    lines = [f"Thinking: trained with `enable_thinking: {value}`. The chat template renders that mode when a request"]
    if f.enable_thinking:
        lines += [
            "does not say otherwise; the commands below make it the server default too and parse the thoughts out of",
            'the answer. A request with `"chat_template_kwargs": {"enable_thinking": false}` gets a prompt training',
            "never saw (`lf-template check DIR --chat-template-kwargs '{\"enable_thinking\": false}'` shows it).",
        ]
    else:
        lines += [
            "does not say otherwise (the empty thought block in the generation prompt, as in training), and the",
            "commands below make it the server default too. No reasoning parser is set: a model trained with",
            "thinking off writes no thoughts, and a parser would look for them. A request with",
            '`"chat_template_kwargs": {"enable_thinking": true}` gets a prompt training never saw',
            "(`lf-template check DIR --chat-template-kwargs '{\"enable_thinking\": true}'` shows it).",
        ]
    return lines + [""]


def _thinking_kwargs(f: ServingFacts) -> str:
    """``'{"enable_thinking": false}'`` (shell-quoted JSON) for a reasoning template trained with a mode, else ``""``."""
    if not f.is_reasoning or f.enable_thinking is None:
        return ""
    return _q('{"enable_thinking": ' + ("true" if f.enable_thinking else "false") + "}")


def _parsers(f: ServingFacts) -> tuple[Optional[str], Optional[str]]:
    """The tool-call parser, and the reasoning parser only where the trained mode can produce thoughts."""
    vparser = VLLM_TOOL_PARSERS.get(f.tool_format or "", None)
    thinks = f.is_reasoning and f.enable_thinking is not False
    rparser = reasoning_parser(f.template, f.thought_words) if thinks else None
    return vparser, rparser


def _vllm(f: ServingFacts, raw_d: str) -> list[str]:
    d, tpl = _q(raw_d), _q(os.path.join(raw_d, "chat_template.jinja"))
    vparser, rparser = _parsers(f)
    max_len = f" --max-model-len {f.serve_max_len}" if f.serve_max_len else ""
    tool_flags = f" --enable-auto-tool-choice --tool-call-parser {vparser}" if vparser else ""
    reason_flags = f" --reasoning-parser {rparser}" if rparser else ""
    kwargs = _thinking_kwargs(f)
    reason_flags += f" \\\n    --default-chat-template-kwargs {kwargs}" if kwargs else ""
    lines = ["## vLLM", ""]
    merge = _merge_first(f, "vllm")
    if merge:
        lines += merge
    elif f.is_adapter:
        base = _q(f.base_model or "<base model dir>")
        lora_flags = adapter_flags(f.adapter_findings, "vllm")
        lines += [
            "```bash",
            f"vllm serve {base} --enable-lora --lora-modules {_q(LORA_NAME + '=' + raw_d)}{lora_flags} \\",
            f"    --chat-template {tpl} --generation-config {d}{max_len}{tool_flags}{reason_flags}",
            "```",
            "",
            f'Requests select the adapter with `"model": "{LORA_NAME}"`. Without `--generation-config`, pass',
            f'`"stop_token_ids": {f.stop_ids}` in each request. Several adapters on one server share one',
            "`--chat-template`: to give each its own, add `--trust-request-chat-template` and send this dir's",
            '`chat_template.jinja` text as `"chat_template"` in each request for this adapter.',
        ]
    else:
        lines += [
            "```bash",
            f"vllm serve {d} --chat-template {tpl} --generation-config {d}{max_len}{tool_flags}{reason_flags}",
            "```",
            "",
            "`--chat-template` makes the file win over a processor's template (multimodal models);",
            "`--generation-config` (the default `auto` reads the same dir) adds every `eos_token_id` of",
            "`generation_config.json` to the stop ids.",
        ]
    if f.tool_format and not vparser:
        lines += ["", f"No vLLM tool-call parser reads LF's `{f.tool_format}` tool format: parse tool calls client-side."]
    if f.is_reasoning:
        if f.enable_thinking is False:
            lines += ["", "No `--reasoning-parser`: trained with thinking off, the model writes no thoughts (see Thinking above)."]
        elif not rparser:
            lines += ["", "No vLLM reasoning parser matches this template's thought words: thoughts stay in the content."]
        if kwargs:
            lines += [
                "",
                "`--default-chat-template-kwargs` makes training's mode the default of every request"
                + (" (and of the reasoning parser)" if rparser else "")
                + "; a request's own",
                "`chat_template_kwargs` still wins.",
            ]
    return lines + [""]


def _merge_first(f: ServingFacts, engine: str) -> list[str]:
    """An adapter this engine cannot serve as an adapter: "merge first", with the reasons (else ``[]``)."""
    from .adapters import blocks

    reasons = blocks(f.adapter_findings, engine) if f.is_adapter else []
    if not reasons:
        return []
    return [
        "Merge first: this adapter cannot be served as an adapter here ("
        + "; ".join(r.text.split(":")[0] for r in reasons)
        + "). `llamafactory-cli export` with `LF_TEMPLATE_EXT=1` writes the merged model with its own SERVING.md.",
        "",
    ]


def adapter_flags(findings: list[Any], engine: str) -> str:
    from .adapters import flags

    return flags(findings, engine)


def _sglang(f: ServingFacts, raw_d: str) -> list[str]:
    d, tpl = _q(raw_d), _q(os.path.join(raw_d, "chat_template.jinja"))
    _, rparser = _parsers(f)
    sparser = SGLANG_TOOL_PARSERS.get(f.tool_format or "")
    flags = (f" --tool-call-parser {sparser}" if sparser else "") + (f" --reasoning-parser {rparser}" if rparser else "")
    flags += f" --context-length {f.serve_max_len}" if f.serve_max_len else ""
    merge = _merge_first(f, "sglang")
    if merge:
        return ["## SGLang", ""] + merge
    lines = ["## SGLang", "", "```bash"]
    if f.is_adapter:
        base = _q(f.base_model or "<base model dir>")
        lines += [
            f"python -m sglang.launch_server --model-path {base} --enable-lora \\",
            f"    --lora-paths {_q(LORA_NAME + '=' + raw_d)} --chat-template {tpl}{flags}",
            "```",
            "",
            f'Requests select the adapter with `"lora_path": "{LORA_NAME}"`, and pass `"stop_token_ids": {f.stop_ids}`',
            "(SGLang reads the base model's generation config).",
        ]
    else:
        lines += [f"python -m sglang.launch_server --model-path {d} --chat-template {tpl}{flags}", "```"]
    if f.is_reasoning and f.enable_thinking is not None:
        value = "true" if f.enable_thinking else "false"
        lines += [
            "",
            f"Thinking: a request without `chat_template_kwargs` renders training's `enable_thinking: {value}` (the chat",
            "template's own default, which this dir's template sets to training's mode)"
            + ("; no `--reasoning-parser`: trained with thinking off, the model writes no thoughts." if not f.enable_thinking else "."),
        ]
    return lines + [""]


def _lmdeploy(f: ServingFacts, raw_d: str) -> list[str]:
    merge = _merge_first(f, "lmdeploy")
    if merge:
        return ["## LMDeploy", ""] + merge
    d = _q(raw_d)
    verdict = f.verdicts.get("lmdeploy")
    json_path = _q(os.path.join(raw_d, "lmdeploy_chat_template.json"))
    session = f" --session-len {f.serve_max_len}" if f.serve_max_len else ""
    lines = ["## LMDeploy", ""]
    expressible = verdict is None or verdict.ok
    if f.is_adapter:
        base = _q(f.base_model or "<base model dir>")
        if expressible and f.has_lmdeploy_json:
            lines += [
                "```bash",
                f"lmdeploy serve api_server {base} --backend pytorch --adapters {_q(LORA_NAME + '=' + raw_d)} \\",
                f"    --chat-template {json_path}{session}",
                "```",
            ]
        elif expressible:
            lines += [
                f"Run `lf-template emit {d} --engine lmdeploy` for the JSON chat template, then serve with",
                f"`--backend pytorch --adapters {LORA_NAME}=<this dir> --chat-template <the JSON>` (LMDeploy's",
                "`--chat-template hf` would render the base model's template).",
            ]
        else:
            lines += [
                "Merge first: LMDeploy's JSON chat template cannot express this template (below), and its",
                "`--chat-template hf` renders the base model's own template, not this adapter's.",
            ]
    elif expressible and f.has_lmdeploy_json:
        lines += ["```bash", f"lmdeploy serve api_server {d} --chat-template {json_path}{session}", "```"]
    else:
        lines += [
            "```bash",
            f"lmdeploy serve api_server {d} --chat-template hf{session}",
            "```",
            "",
            "`--chat-template hf` makes LMDeploy render this dir's Jinja chat template (the training format) even when",
            "the model path matches one of its built-in templates.",
        ]
        if expressible:
            lines += [f"`lf-template emit {d} --engine lmdeploy` writes LMDeploy's own JSON chat template instead."]
    if verdict is not None and not verdict.ok:
        lines += ["", f"LMDeploy's JSON chat template is not written for this template: {verdict.reason}"]
    elif verdict is not None and verdict.caveats and (f.has_lmdeploy_json or f.is_adapter):
        lines += ["", "What the JSON chat template does not reproduce:"] + [f"- {c}" for c in verdict.caveats]
    return lines + [""]


def _ollama(f: ServingFacts, raw_d: str) -> list[str]:
    merge = _merge_first(f, "ollama")
    if merge:
        return ["## Ollama", ""] + merge
    d = _q(raw_d)
    verdict = f.verdicts.get("ollama")
    lines = ["## Ollama", ""]
    if f.has_modelfile:
        lines += [
            "```bash",
            f"cd {d} && ollama create my-model -f Modelfile",
            "```",
            "",
            "The Modelfile's TEMPLATE renders the training format"
            + (" and its `FROM`/`ADAPTER` lines load the base model with this adapter." if f.is_adapter else "."),
            "If `ollama show --template` reports the GGUF's Jinja instead (Ollama >= 0.30 prefers it when it",
            "mentions tools or thinking), start the server with `OLLAMA_GO_TEMPLATE=1`.",
        ]
    elif f.is_adapter:
        lines += [
            f"Run `lf-template emit {d} --engine ollama` for a Modelfile with `FROM <base model>`, `ADAPTER <this dir>`",
            "and a TEMPLATE in the training format (Ollama's `ADAPTER` takes a safetensors LoRA dir of the Llama,",
            "Mistral and Gemma families, or a GGUF adapter; for others, merge first).",
        ]
    else:
        lines += [
            f"Run `lf-template emit {d} --engine ollama` for a Modelfile with a TEMPLATE in the training format.",
            "Ollama's safetensors import reads `tokenizer_config.json`'s `chat_template`, which holds the same template.",
        ]
    if f.is_reasoning and f.enable_thinking is not None:
        if f.enable_thinking:
            lines += ["", "Thinking: a request without `think` renders training's mode (thinking on); `think: false` renders",
                      "LF's `enable_thinking: false`, a prompt training never saw."]
        else:
            lines += ["", "Thinking: a request without `think` renders training's mode (thinking off, the empty thought block);",
                      "Ollama refuses `think: true` for this template, which never mentions thoughts."]
    if verdict is not None and verdict.caveats:
        lines += [""] + [f"Caveat: {c}." for c in verdict.caveats]
    return lines + [""]


def _llama_cpp(f: ServingFacts, raw_d: str) -> list[str]:
    merge = _merge_first(f, "llama.cpp")
    if merge:
        return ["## llama.cpp", ""] + merge
    d = _q(raw_d)
    ctx = f" -c {f.serve_max_len}" if f.serve_max_len else ""
    lines = ["## llama.cpp", "", "```bash"]
    if f.is_adapter:
        base = _q(f.base_model or "<base model dir>")
        tpl = _q(os.path.join(raw_d, "chat_template.jinja"))
        lines += [
            f"python convert_hf_to_gguf.py {base} --outfile base.gguf",
            f"python convert_lora_to_gguf.py {d} --base {base} --outfile adapter.gguf",
            f"llama-server -m base.gguf --lora adapter.gguf --jinja --chat-template-file {tpl}{ctx}",
            "```",
            "",
            "The base GGUF stops on the base model's eos; `lf-template repair base.gguf --template "
            + f.template
            + "` writes this template's stop ids (and template) into it.",
        ]
    else:
        lines += [
            f"python convert_hf_to_gguf.py {d} --outfile model.gguf      # reads tokenizer_config.json's chat_template",
            f"llama-server -m model.gguf --jinja{ctx}",
            "```",
            "",
            "For a GGUF converted before the repair: `lf-template repair model.gguf --template " + f.template + "`.",
        ]
    return lines + [""]


# -- engines that pick a built-in template by the model's path ----------------------------------

#: SGLang 0.5.23 ``sglang/srt/parser/conversation.py``: the path patterns of the ``match_*``
#: functions registered with ``register_conv_template_matching_function`` (tried in order when
#: no ``--chat-template`` is given) and its ``MODEL_TYPE_TO_TEMPLATE`` table (config.json).
_SGLANG_PATH_RULES: tuple[tuple[str, str], ...] = (
    (r"\bpoints\b", "points-v15-chat"),
    (r"moss.*vl|moss-vl", "moss-vl"),
    (r"internvl", "internvl-2-5"),
    (r"janus", "janus-pro"),
    (r"vicuna|llava-v1\.5|llava-next-video-7b", "vicuna_v1.1"),
    (r"deepseek.*vl2", "deepseek-vl2"),
    (r"llava-v1\.6-34b|llava-v1\.6-yi-34b|llava-next-video-34b|llava-onevision-qwen2", "chatml-llava"),
    (r"minicpm-(v|o)(?!-4[._][67])", "minicpm"),
    (r"phi-4-multimodal", "phi-4-mm"),
    (r"deepseek-ocr", "deepseek-ocr"),
    (r"unlimited", "unlimited-ocr"),
    (r"paddleocr", "paddle-ocr"),
    (r"whisper", "whisper"),
)
_SGLANG_MODEL_TYPES = {
    "internvl_chat": "internvl-2-5",
    "deepseek_vl_v2": "deepseek-vl2",
    "multi_modality": "janus-pro",
    "phi4mm": "phi-4-mm",
    "minicpmv": "minicpmv",
    "minicpmo": "minicpmo",
    "moss_vl": "moss-vl",
    "deepseek-ocr": "deepseek-ocr",
    "unlimited-ocr": "unlimited-ocr",
    "paddleocr_vl": "paddle-ocr",
    "whisper": "whisper",
}


def sglang_builtin_template(model_path: str) -> Optional[str]:
    """The conversation template SGLang would pick for this path (``None``: it uses the HF template)."""
    import json
    import re

    for pattern, name in _SGLANG_PATH_RULES:
        if re.search(pattern, model_path, re.IGNORECASE):
            return name
    config = os.path.join(model_path, "config.json")
    if os.path.isfile(config):
        try:
            with open(config, encoding="utf-8") as f:
                model_type = json.load(f).get("model_type")
        except (OSError, ValueError):
            return None
        return _SGLANG_MODEL_TYPES.get(model_type)
    return None


def sglang_name_warning(model_path: str) -> Optional[str]:
    name = sglang_builtin_template(model_path)
    if name is None:
        return None
    return (
        f"SGLang picks its built-in '{name}' conversation template for {model_path!r} (by its path or model_type) "
        "instead of the HF template: always pass --chat-template with the file below"
    )


def _openwebui(f: ServingFacts, raw_d: str) -> list[str]:
    """Open WebUI in front of an OpenAI-compatible server: what it adds, the preset, what to leave empty.
    Every claim is read in Open WebUI 0.12.4's source and measured by tests/test_openwebui.py."""
    name = f.served_name or os.path.basename(raw_d.rstrip(os.sep))
    preset = os.path.join(raw_d, "open-webui-model.json")
    lines = [
        "## Open WebUI",
        "",
        "Open WebUI (0.12.4) forwards a chat to the OpenAI-compatible server above after adding to it:",
        "",
        "- a system message: the chat's or the user's system prompt (Chat Controls, Settings > General > System Prompt;",
        "  the web UI sends it as the first message) and the model preset's System Prompt, joined into one. The template",
        "  renders it *instead of* training's default system prompt, so leave all three empty unless training used that",
        "  system prompt.",
        "- RAG context: attached files and knowledge (web search too, with legacy function calling) put Open WebUI's RAG",
        "  template with the retrieved text before the user's message (into the system message with",
        "  `RAG_SYSTEM_CONTEXT=true`): training never saw it.",
        "- built-in tools: web UI chats get Open WebUI's built-in tools in `tools` (the template renders a tool prompt)",
        "  unless the model's `builtin_tools` capability is off.",
        "- sampling: the chat's and the user's Advanced Params win over the preset's; each is sent under its own name.",
        "",
    ]
    if f.has_openwebui_preset:
        lines += [
            f"`{preset}` is a model preset in Open WebUI's import format (Workspace > Models > Import, or",
            '`POST /api/v1/models/import` with `{"models": <the file>}`): a model on top of the served',
            f"`{name}` with an empty system prompt, the template's stop strings, `builtin_tools` off and the",
            "sampling of the table above (where written). Chat with that model and leave the settings above empty.",
        ]
    else:
        lines += [
            "`lf-template repair DIR --engines openwebui` writes a model preset to import (`open-webui-model.json`):",
            "empty system prompt, the template's stop strings, `builtin_tools` off, the sampling written here.",
        ]
    if not f.is_adapter:
        lines += [f"Serve with `--served-model-name {name}` (vLLM, SGLang) so the preset's base model is found."]
    return lines + [""]
