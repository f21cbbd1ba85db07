"""``lf-template check --engine lmdeploy``: the emitted JSON chat template, rendered by LMDeploy itself.

The engine side of a check (``engine_sides.EngineSide``) for LMDeploy (needs the ``lmdeploy``
package; its chat-template code runs on CPU, so ``pip install --no-deps lmdeploy==0.18.0`` plus
its small pure-Python needs is enough, see :data:`INSTALL_HINT`):

* **the artifact**: the JSON ``lf-template emit --engine lmdeploy`` / ``repair`` writes
  (``engine_files.emit_lmdeploy``; a template LMDeploy's format cannot express raises
  ``UnsupportedTemplateError``: exit 3 with the reason), written to a file and loaded as ``lmdeploy
  serve api_server DIR --chat-template FILE`` does (``ChatTemplateConfig.from_json(FILE).chat_template()``);
* **rendering** with that template's ``messages2prompt``. LMDeploy renders message ``content`` only
  (``None`` becomes ``""``, as its server does). Its JSON template has no place for the request's
  ``tools`` and drops ``tool_calls``, so a request carrying either is not rendered: it is an
  :class:`UnsupportedRequest` naming why (the sample then ``differs``: a client sending it gets a
  conversation without them). A generation prompt ends with the assistant box LMDeploy appends. A
  full conversation ends with an assistant message, which LMDeploy renders as a *prefill* (it strips
  ``eoa + separator``); ``eoa`` is appended back (:func:`prompt`), which is how LMDeploy renders that
  answer once it is history (the separator belongs to the next turn), so the last answer's end is
  compared too, as in ``tests/test_engine_lmdeploy.py``;
* **tokenization** with LMDeploy's own tokenizer of MODEL_DIR: ``lmdeploy.tokenizer.Tokenizer(DIR)
  .encode(prompt, add_bos=True)`` (HF ``add_special_tokens=True``, a doubled leading BOS dropped), the
  serving path. LMDeploy reads ``config.json`` first, so MODEL_DIR must have one (it must to be served).
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Sequence, Union

from ..errors import ConversationError
from .hf import IdsOrError, RenderRequest

INSTALL_HINT = (
    "pip install --no-deps lmdeploy==0.18.0 && pip install mmengine-lite addict yapf shortuuid openai-harmony "
    "pybase64 (the chat-template code runs on CPU; a full `pip install lmdeploy` pulls torch and CUDA kernels)"
)


class UnsupportedRequest(ConversationError):
    """LMDeploy's JSON template cannot carry this request (it would render it without a part of it)."""


def for_lmdeploy(messages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages as LMDeploy's server hands them to ``messages2prompt``: ``content`` never ``None``.

    (Its server fills a missing content with ``''`` but passes ``None`` through, and ``get_text(None)``
    fails.) Everything but ``role``/``content`` is ignored by the JSON template.
    """
    return [dict(m, content=m.get("content") or "") for m in messages]


def load_chat_template(config: Union[str, dict[str, Any]], path: str) -> Any:
    """Write the JSON (a file's text, or its fields) to ``path`` and load it as ``lmdeploy serve
    --chat-template FILE`` does."""
    import lmdeploy.model as lmd_model

    text = config if isinstance(config, str) else json.dumps(config, ensure_ascii=False, indent=2)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return lmd_model.ChatTemplateConfig.from_json(path).chat_template()


def prompt(chat: Any, messages: Sequence[dict[str, Any]], full: bool) -> str:
    """LMDeploy's prompt for ``messages``; ``full``: a final answer closed with ``eoa`` (see the module doc)."""
    text = chat.messages2prompt(for_lmdeploy(messages))
    if full and messages and messages[-1].get("role") == "assistant":
        text += chat.eoa
    return text


class LMDeployEngine:
    """The emitted JSON rendered by LMDeploy's ``messages2prompt``, tokenized by LMDeploy's ``Tokenizer``."""

    name = "lmdeploy"
    artifact = "lmdeploy_chat_template.json"

    def __init__(self, chat: Any, tokenizer: Any, *, tools_reason: str, text: str) -> None:
        self.chat = chat
        self.tokenizer = tokenizer  # lmdeploy.tokenizer.Tokenizer
        self.tools_reason = tools_reason
        self.text = text

    @property
    def extra_stop_ids(self) -> list[int]:
        """The JSON's stop words as LMDeploy maps them to ids (one-token words only, its own rule)."""
        from lmdeploy.utils import _stop_words

        words = list(self.chat.stop_words or [])
        if not words:
            return []
        return sorted({int(i) for i in _stop_words(words, self.tokenizer)[0][0].tolist()})

    def check(self, r: RenderRequest) -> None:
        if r.tools:
            raise UnsupportedRequest(f"the request's tools are dropped: {self.tools_reason}")
        if any(m.get("tool_calls") for m in r.messages):
            raise UnsupportedRequest(
                "tool_calls are dropped (LMDeploy renders message content only); the JSON renders tool results "
                "exactly only when the client writes each call as assistant content in LF's format"
            )

    def ids_batch(self, requests: Sequence[RenderRequest]) -> list[IdsOrError]:
        out: list[IdsOrError] = []
        for r in requests:
            try:
                self.check(r)
                text = prompt(self.chat, r.messages, full=not r.add_generation_prompt)
                out.append(list(self.tokenizer.encode(text, add_bos=True)))
            except Exception as e:  # noqa: BLE001 - the engine's own failure is the answer for this request
                out.append(e)
        return out


def import_lmdeploy() -> None:
    """Import LMDeploy's chat-template and tokenizer code, or bad input with the install hint."""
    from ..errors import BadInputError

    try:
        import lmdeploy.model  # noqa: F401
        import lmdeploy.tokenizer  # noqa: F401
    except ImportError as e:
        raise BadInputError(f"--engine lmdeploy needs the lmdeploy package: {e}", hint=INSTALL_HINT) from None


def make_engine(
    model_dir: str, snapshot: Any, tokenizer: Any, *, text: str, trust_remote_code: bool = False
) -> LMDeployEngine:
    """Load the JSON ``text`` (emitted for the template, or ``check --artifact``'s) and MODEL_DIR's tokenizer
    with LMDeploy. ``snapshot`` (``lf.compat.Snapshot``) tells which of its features LMDeploy's JSON lacks."""
    import sys

    from ..compiler import lmdeploy as engine
    from ..modeldir.files import inspect_dir

    import_lmdeploy()
    import lmdeploy
    from lmdeploy.tokenizer import Tokenizer

    if lmdeploy.__version__ != engine.LMDEPLOY_VERSION:
        print(
            f"warning: lmdeploy {lmdeploy.__version__} is installed; the JSON rules were read from and tested with "
            f"lmdeploy {engine.LMDEPLOY_VERSION}",
            file=sys.stderr,
        )
    spec, facts = snapshot.spec, snapshot.facts
    name = inspect_dir(model_dir).name
    try:
        tpl = engine.lmdeploy_template(
            spec, facts, model_name=name, tokenizer_adds_bos=engine.tokenizer_adds_bos(tokenizer)
        )
        tools_reason = tpl.reason("tools") or ""
    except Exception:  # a template the emitter refuses, checked through a JSON written by hand
        tools_reason = "LMDeploy's JSON chat template has no tools or tool calls"
    with tempfile.TemporaryDirectory(prefix="lf-template-lmdeploy-") as tmp:  # from_json reads it once
        chat = load_chat_template(text, os.path.join(tmp, "lmdeploy_chat_template.json"))
    lmd_tokenizer = Tokenizer(model_dir, trust_remote_code=trust_remote_code)
    return LMDeployEngine(chat, lmd_tokenizer, tools_reason=tools_reason, text=text)
