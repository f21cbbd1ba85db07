"""LF's tool formats (``tool_format``), and what each side knows of them: the one list.

The Jinja compiler (``compiler/tools.py``), the Ollama writer (``compiler/ollama*.py``), the LF
adapter (which prompt constant of LF's ``tool_utils`` a format uses) and ``SERVING.md`` (which tool
parser of vLLM / SGLang reads it back) all read this table, so a new LF format is one row here plus
its writers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class ToolFormat:
    name: str
    #: the prompt constant in LF's ``llamafactory.data.tool_utils`` (None: the format has no tools prompt)
    lf_prompt: Optional[str]
    #: the function formatter walks the arguments object key by key (needs a JSON object, not a string)
    walks_arguments: bool = False
    #: ``--tool-call-parser`` of vLLM 0.33 / SGLang that parses this format back (None: none does)
    vllm_parser: Optional[str] = None
    sglang_parser: Optional[str] = None


TOOL_FORMATS: dict[str, ToolFormat] = {
    f.name: f
    for f in (
        ToolFormat("default", "DEFAULT_TOOL_PROMPT"),  # "Action: / Action Input:": no engine parses it
        ToolFormat("gemma4", None, walks_arguments=True),
        ToolFormat("glm4", "GLM4_TOOL_PROMPT"),
        ToolFormat("glm4_moe", "GLM4_MOE_TOOL_PROMPT", True, "glm45", "glm45"),
        ToolFormat("lfm2", "LFM2_TOOL_PROMPT", walks_arguments=True),
        ToolFormat("llama3", "LLAMA3_TOOL_PROMPT", False, "llama3_json", "llama3"),
        ToolFormat("ling", "LING_TOOL_PROMPT", False, "hermes", "qwen25"),
        ToolFormat("minimax1", "MINIMAX_M1_TOOL_PROMPT", False, "minimax", None),
        ToolFormat("minimax2", "MINIMAX_M2_TOOL_PROMPT", True, "minimax_m2", "minimax-m2"),
        ToolFormat("mistral", None, False, "mistral", "mistral"),
        ToolFormat("qwen", "QWEN_TOOL_PROMPT", False, "hermes", "qwen25"),
        ToolFormat("qwen3_5", "QWEN35_TOOL_PROMPT", True, "qwen3_coder", "qwen3_coder"),
        ToolFormat("seed_oss", "SEED_TOOL_PROMPT", True, "seed_oss", None),
    )
}
