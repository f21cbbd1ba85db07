"""``lf-template check --engine ollama``: the emitted Modelfile, rendered as Ollama renders it.

The engine side of a check (``engine_sides.EngineSide``) for Ollama:

* **the artifact**: the Modelfile ``lf-template emit --engine ollama`` / ``repair`` writes
  (``engine_files.emit_modelfile``), read back with a re-creation of Ollama's Modelfile parser
  (``ollama_go.parse_modelfile``): its ``TEMPLATE``, ``SYSTEM`` (none is written) and ``stop`` words;
* **rendering**: every request of a batch in one run of ``ollama_render`` (Ollama's template execution
  re-created in Go, ``ollama_go``), as ``/api/chat`` receives it (``ollama_go.to_ollama``): content,
  tool calls with their arguments as JSON objects, the request's ``tools``. For reasoning templates a
  thought written inline at the start of an assistant message (LF's dataset convention,
  ``thought_words[0] + thought + thought_words[1] + answer``) is sent in Ollama's ``thinking`` field,
  as an Ollama client sends back what Ollama's parser split off. ``enable_thinking`` among the
  request's template kwargs (``--chat-template-kwargs``) becomes Ollama's ``think``; otherwise it is
  unset (Ollama then thinks when the template is thinking-capable).
  A full conversation renders closed (the TEMPLATE writes a final answer as LF trained it); a
  generation prompt is the conversation minus its last answer (Ollama always renders for generation);
* **tokenization** with MODEL_DIR's tokenizer, whole, special-token text parsed, and a BOS added by
  Ollama's rule (:func:`adds_bos`): the Modelfile says ``FROM .``, so ``ollama create`` imports the
  dir and writes ``tokenizer_config.json``'s ``add_bos_token`` into its GGUF; the runner adds a BOS
  when that is true and keeps a duplicate. (A GGUF made elsewhere carries its own flag: ``lf-template
  repair model.gguf`` sets it false, which is what the TEMPLATE expects.)

What Ollama cannot reproduce shows up as differing samples, never hidden: tool definitions and
arguments whose JSON keys are not in sorted order (Ollama decodes them into Go maps; the TEMPLATE
writes sorted keys, docs/engines-ollama.md "normalised-JSON"), fields Ollama's tool structs do not
model, ``<``/``>``/``&`` in tool JSON, a literal ``{{idx}}`` in user content. A request Ollama would
refuse (the TEMPLATE's own checks, undecodable tool JSON) is an :class:`OllamaRefuses` for that request.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional, Sequence

from ..errors import ConversationError
from . import ollama_go
from .hf import IdsOrError, RenderRequest, batch_encode


class OllamaRefuses(ConversationError):
    """Ollama answers the request with an error (the TEMPLATE's refusal, or JSON its API cannot decode)."""


def adds_bos(model_dir: str, tokenizer: Any) -> bool:
    """Whether Ollama adds a BOS to every prompt of a model created from ``model_dir`` (``FROM .``).

    Ollama's safetensors import (``convert/tokenizer.go``) writes ``tokenizer.ggml.add_bos_token`` from
    ``tokenizer_config.json``'s ``add_bos_token`` (false when the key is missing) when the BOS token is
    an added token of ``tokenizer.json``; the runner then adds the BOS when the flag is true. Without
    that (a sentencepiece-only dir) no flag is written and the runtime default applies, which for those
    tokenizers is to add it: the HF tokenizer's own behaviour is taken then.
    """
    bos = getattr(tokenizer, "bos_token", None)
    if getattr(tokenizer, "bos_token_id", None) is None or not bos:
        return False
    cfg: dict[str, Any] = {}
    cfg_path = os.path.join(model_dir, "tokenizer_config.json")
    if os.path.isfile(cfg_path):
        with open(cfg_path, encoding="utf-8") as f:
            cfg = json.load(f)
    tok_json = os.path.join(model_dir, "tokenizer.json")
    if os.path.isfile(tok_json):
        with open(tok_json, encoding="utf-8") as f:
            added = {t.get("content") for t in json.load(f).get("added_tokens") or []}
        if bos in added:
            return cfg.get("add_bos_token") is True
    from ..compiler.lmdeploy import tokenizer_adds_bos

    return tokenizer_adds_bos(tokenizer)


def split_inline_thought(content: str, thought_words: tuple[str, str]) -> tuple[str, str]:
    """``(thinking, answer)`` for content that starts with a non-empty thought in LF's words, else ``("", content)``."""
    open_, close = thought_words
    if open_ and close and content.startswith(open_):
        end = content.find(close, len(open_))
        if end >= 0 and content[len(open_) : end].strip():
            return content[len(open_) : end], content[end + len(close) :]
    return "", content


class OllamaEngine:
    """The emitted Modelfile's TEMPLATE rendered by ``ollama_render`` and tokenized with Ollama's BOS rule."""

    name = "ollama"
    artifact = "Modelfile"

    def __init__(
        self,
        tokenizer: Any,
        modelfile: str,
        *,
        binary: Path,
        add_bos: bool,
        now: Optional[str] = None,
        kwargs: Optional[dict[str, Any]] = None,
        thought_words: Optional[tuple[str, str]] = None,
    ) -> None:
        parsed = ollama_go.parse_modelfile(binary, modelfile)
        if parsed.get("error"):
            raise RuntimeError(f"the Modelfile does not parse as Ollama reads it: {parsed['error']}")
        commands = parsed.get("commands") or []
        templates = [c["args"] for c in commands if c["name"] == "template"]
        systems = [c["args"] for c in commands if c["name"] == "system"]
        self.template = templates[-1] if templates else ""
        self.system = systems[-1] if systems else ""
        self.stop_words = [c["args"] for c in commands if c["name"] == "stop"]
        self.text = modelfile
        self.binary = binary
        self.tokenizer = tokenizer
        self.add_bos = add_bos and tokenizer.bos_token_id is not None
        self.now = now
        self.kwargs = dict(kwargs or {})
        self.thought_words = thought_words

    @property
    def extra_stop_ids(self) -> list[int]:
        """The ids of the Modelfile's stop words that are one token (Ollama matches the others as text)."""
        out: list[int] = []
        for word in self.stop_words:
            ids = self.tokenizer.encode(word, add_special_tokens=False)
            if len(ids) == 1 and ids[0] not in out:
                out.append(ids[0])
        return out

    def case(self, key: str, r: RenderRequest) -> dict[str, Any]:
        messages = [dict(m) for m in r.messages]
        if self.thought_words:
            for m in messages:
                content = m.get("content")
                if m.get("role") == "assistant" and isinstance(content, str) and not m.get("reasoning_content"):
                    thought, answer = split_inline_thought(m["content"], self.thought_words)
                    if thought:
                        m["reasoning_content"], m["content"] = thought, answer
        try:
            out = ollama_go.to_ollama(messages)
        except json.JSONDecodeError as e:
            raise OllamaRefuses(f"tool-call arguments are not JSON: {e}") from None
        for m in out:
            for call in m.get("tool_calls") or []:
                if not isinstance(call["function"]["arguments"], dict):
                    raise OllamaRefuses("Ollama decodes tool-call arguments into a JSON object; these are not one")
        case: dict[str, Any] = {"id": key, "messages": out}
        if r.tools:
            case["tools"] = r.tools
        think = {**self.kwargs, **r.kwargs}.get("enable_thinking")
        if isinstance(think, bool):
            case["think"] = think
        return case

    def _render(self, cases: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Results by case id; a batch the Go side cannot decode is retried case by case."""
        if not cases:
            return {}
        try:
            report = ollama_go.render(self.binary, self.template, cases, system=self.system, now=self.now)
            return {res["id"]: res for res in report.get("results") or []}
        except RuntimeError as e:
            if len(cases) == 1:
                return {cases[0]["id"]: {"id": cases[0]["id"], "error": f"Ollama cannot decode the request: {e}"}}
        out: dict[str, dict[str, Any]] = {}
        for c in cases:
            out.update(self._render([c]))
        return out

    def texts(self, requests: Sequence[RenderRequest]) -> list[Any]:
        cases: list[dict[str, Any]] = []
        out: list[Any] = [None] * len(requests)
        for i, r in enumerate(requests):
            try:
                cases.append(self.case(str(i), r))
            except OllamaRefuses as e:
                out[i] = e
        results = self._render(cases)
        for c in cases:
            res = results.get(c["id"]) or {"error": "no result"}
            i = int(c["id"])
            out[i] = OllamaRefuses(res["error"]) if res.get("error") else res.get("prompt", "")
        return out

    def ids_batch(self, requests: Sequence[RenderRequest]) -> list[IdsOrError]:
        texts = self.texts(requests)
        todo = [i for i, t in enumerate(texts) if isinstance(t, str)]
        encoded = batch_encode(self.tokenizer, [texts[i] for i in todo])
        out: list[IdsOrError] = list(texts)
        prefix = [self.tokenizer.bos_token_id] if self.add_bos else []
        for i, ids in zip(todo, encoded, strict=True):
            out[i] = prefix + ids
        return out


def make_engine(
    model_dir: str,
    snapshot: Any,
    tokenizer: Any,
    *,
    text: str,
    binary: Path,
    now: Optional[str],
    kwargs: Optional[dict[str, Any]] = None,
) -> OllamaEngine:
    """The Modelfile ``text`` (emitted for the template, or ``check --artifact``'s) as Ollama renders it.

    ``snapshot`` (``lf.compat.Snapshot``) gives the thought words a reasoning template's answers use.
    """
    spec = snapshot.spec
    add_bos = adds_bos(model_dir, tokenizer)
    reasoning = spec.is_reasoning
    return OllamaEngine(
        tokenizer,
        text,
        binary=binary,
        add_bos=add_bos,
        now=now,
        kwargs=kwargs,
        thought_words=tuple(spec.thought_words) if reasoning else None,  # type: ignore[arg-type]
    )
