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
from typing import Optional

from ..model.tool_formats import TOOL_FORMATS

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
    is_adapter: bool = False
    base_model: Optional[str] = None
    has_modelfile: bool = False
    has_lmdeploy_json: bool = False
    keep_native: bool = False
    warnings: list[str] = field(default_factory=list)


def serving_md(f: ServingFacts) -> str:
    # paths in commands are shell-quoted (a dir with spaces must stay one argument); prose keeps them bare
    raw_d = os.path.abspath(f.model_dir)
    d = shlex.quote(raw_d)
    tpl = shlex.quote(os.path.join(raw_d, "chat_template.jinja"))
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
    if f.keep_native:
        lines += [
            "**Mode keep-native**: the model's own chat template was left in place; `alignment_report.json` shows",
            "how far it is from what training saw. Stop ids were aligned.",
            "",
        ]
    for w in f.warnings:
        lines += [f"> Warning: {w}", ""]
    max_len = f" --max-model-len {f.cutoff_len}" if f.cutoff_len else ""
    vparser = VLLM_TOOL_PARSERS.get(f.tool_format or "", None)
    rparser = reasoning_parser(f.template, f.thought_words) if f.is_reasoning else None
    tool_flags = f" --enable-auto-tool-choice --tool-call-parser {vparser}" if vparser else ""
    reason_flags = f" --reasoning-parser {rparser}" if rparser else ""
    lines += ["## vLLM", ""]
    if f.is_adapter:
        base = shlex.quote(f.base_model or "<base model dir>")
        lines += [
            "This is a LoRA adapter dir: vLLM reads the chat template and generation config of the *base* model,",
            "so pass this dir's files explicitly:",
            "",
            "```bash",
            f"vllm serve {base} --enable-lora --lora-modules {shlex.quote('lf=' + raw_d)} \\",
            f"    --chat-template {tpl} --generation-config {d}{max_len}{tool_flags}{reason_flags}",
            "```",
            "",
            f"Without `--generation-config`, pass `\"stop_token_ids\": {f.stop_ids}` in each request.",
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
    if f.is_reasoning and not rparser:
        lines += ["", "No vLLM reasoning parser matches this template's thought words: thoughts stay in the content."]
    lines += [
        "",
        "Thinking on/off per request (reasoning templates): `\"chat_template_kwargs\": {\"enable_thinking\": false}`.",
        "",
        "## SGLang",
        "",
        "```bash",
        f"python -m sglang.launch_server --model-path {d} --chat-template {tpl}"
        + (f" --tool-call-parser {SGLANG_TOOL_PARSERS[f.tool_format]}" if SGLANG_TOOL_PARSERS.get(f.tool_format or "") else "")
        + (f" --reasoning-parser {rparser}" if rparser else ""),
        "```",
        "",
        "## LMDeploy",
        "",
    ]
    if f.has_lmdeploy_json:
        lines += [
            "```bash",
            f"lmdeploy serve api_server {d} --chat-template {shlex.quote(os.path.join(raw_d, 'lmdeploy_chat_template.json'))}",
            "```",
        ]
    else:
        lines += [
            "```bash",
            f"lmdeploy serve api_server {d}",
            "```",
            "",
            "LMDeploy then renders the HF chat template of this dir. Its JSON chat-template format cannot express",
            "this template (see `alignment_report.json` / `lf-template emit --engine lmdeploy` for the reason).",
        ]
    lines += ["", "## Ollama", ""]
    if f.has_modelfile:
        lines += [
            "```bash",
            f"cd {d} && ollama create my-model -f Modelfile",
            "```",
            "",
            "The Modelfile's TEMPLATE renders the training format. If `ollama show --template` reports the GGUF's",
            "Jinja instead (Ollama >= 0.30 prefers it when it mentions tools or thinking), start the server with",
            "`OLLAMA_GO_TEMPLATE=1`.",
            "",
            "Tools: Ollama hands the request's tool definitions and call arguments to the TEMPLATE as Go structs and",
            "maps, so their JSON comes out in struct / sorted key order, where training wrote the dataset's order: a",
            "tool prompt can differ from training in key order only (the `normalised-JSON` cells of lf-template-ext's",
            "docs/engines-ollama.md).",
        ]
    else:
        lines += [
            "Run `lf-template emit <dir> --engine ollama` for a Modelfile with a TEMPLATE in the training format.",
            "Ollama's safetensors import reads `tokenizer_config.json`'s `chat_template`, which holds the same template.",
        ]
    lines += [
        "",
        "## llama.cpp",
        "",
        "```bash",
        f"python convert_hf_to_gguf.py {d} --outfile model.gguf      # reads tokenizer_config.json's chat_template",
        "llama-server -m model.gguf --jinja" + (f" -c {f.cutoff_len}" if f.cutoff_len else ""),
        "```",
        "",
        "For a GGUF converted before the repair: `lf-template repair model.gguf --template " + f.template + "`.",
        "",
    ]
    return "\n".join(lines)


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
