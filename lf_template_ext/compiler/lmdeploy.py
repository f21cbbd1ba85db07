"""LF template -> LMDeploy chat-template JSON (``lmdeploy serve api_server DIR --chat-template FILE``).

Pure: a :class:`TemplateSpec` and :class:`TokenizerFacts` in, a JSON-ready dict out; no file I/O,
no LF or LMDeploy import. Facts about LMDeploy below are from lmdeploy 0.18.0 (``lmdeploy/model.py``,
``lmdeploy/tokenizer.py``, ``lmdeploy/serve/processors/multimodal.py``) and were checked by running it.

How LMDeploy renders a JSON template
------------------------------------
``ChatTemplateConfig.from_json(file).chat_template()`` builds a ``BaseChatTemplate`` whose
``messages2prompt`` is a plain concatenation of "boxes":

* ``system + meta_instruction + eosys`` in front when ``messages[0]`` is not a system message.
  ``ChatTemplateConfig.chat_template()`` drops ``None`` fields and ``BaseChatTemplate`` defaults
  ``meta_instruction`` to ``''``, so this head is **always** emitted: a JSON ``null`` cannot turn it off;
* each message: ``box[role] + content + end[role]`` with user ``user``/``eoh``, assistant
  ``assistant``/``eoa + separator``, system ``system``/``eosys``, tool ``tool``/``eotool``. Only
  ``content`` is used: ``reasoning_content``, ``tool_calls`` and the request's ``tools`` are dropped
  (the OpenAI server first joins list content's text parts with ``"\\n"``);
* a final assistant message loses its ``eoa + separator`` (a prefill); otherwise ``assistant`` is
  appended (every other request is a generation prompt).

The prompt is then encoded with ``Tokenizer.encode(prompt, add_bos=True)``: HF
``add_special_tokens=True``, and a doubled leading BOS is dropped (with a warning).

Split rule (LF slots -> LMDeploy boxes)
---------------------------------------
Both sides are concatenations, so any split whose concatenations agree works. Write each LF slot as
``X1 {{content}} X2`` (``{"bos_token"}``/``{"eos_token"}`` and ``{"token": t}`` slots as their token
text, as the Jinja compiler does); ``P`` is the prefix, ``D`` the default system, ``E`` the empty
thought a reasoning template trained with thinking off puts on the *prompt* side of every turn.

* ``eoh = U2 + E`` and ``assistant = ""``: LF's user slot already ends with the assistant header and
  LF's prompt ids end there, so nothing may follow it. ``eoa = A2``. This needs ``A1 == ""``: an
  assistant-slot prefix (GLM's ``"\\n"``, Mistral's ``" "``) would have to sit in the assistant box,
  which LMDeploy also appends to every generation prompt (refused).
* Between turns ``eoa + separator + user = A2 + U1``. Plain templates: ``user = U1``,
  ``separator = ""``. Llama2-style templates (LF fuses the system text into the first user message):
  ``user = ""``, ``separator = U1``, so that the first ``U1`` can sit in the head, before the system text.
* Head (LF's text before the first user content): plain ``head + [S1 + S' + S2]`` (``U1`` follows
  from the user box), Llama2-style ``head + [S1 + S' + S2]`` with ``head = P + U1``, plain ``head = P``;
  ``S' = system or D``. With a default system: ``system = head + S1``, ``meta_instruction = D``,
  ``eosys = S2``. Without one, LF writes just ``head`` when there is no system prompt, and that must be
  what ``system + meta_instruction + eosys`` gives: ``system = head``, ``meta_instruction = ""``,
  ``eosys = ""``, and a system prompt is exact only when ``S1 + S2 == ""``.
* Tool results: ``tool = O1`` (minus the separator the previous answer already wrote),
  ``eotool = O2 + E``; exact only when an assistant message carries the tool call as its ``content``
  in LF's format, because LMDeploy drops ``tool_calls``.
* ``stop_words`` = the (LF-fixed) eos token + LF's stop words, in LF's order.
* BOS: when the caller says the tokenizer adds BOS itself (``tokenizer_adds_bos=True``), a leading BOS
  is left out of the ``system`` box (LMDeploy adds it); when it is unknown it is kept, which LMDeploy's
  duplicate-BOS rule makes right either way.

The JSON always contains every field, so ``from_json`` never falls back to class defaults. A
``model_name`` with a dot, or equal to one of LMDeploy's built-in names, is renamed: LMDeploy's mmengine
registry reads a dot as a scope (the template is then not found), and a built-in name selects that class
(``vicuna`` strips the last prompt character, ``hf`` ignores every field).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from ..errors import BadInputError, UnsupportedTemplateError
from ..model.spec import FormatterSpec, TemplateSpec, TokenizerFacts
from .slots import walk_slots

LMDEPLOY_VERSION = "0.18.0"
"""The lmdeploy release whose code these rules were read from and tested against."""

FEATURES = ("plain", "system", "empty_system", "tool_results", "tools", "reasoning")
"""What a conversation may use. ``plain``: user/assistant turns, no system message (history and
generation prompt); ``system``: a non-empty first system message; ``empty_system``: a system message
with empty content; ``tool_results``: tool messages, with the calls as LF-formatted assistant content;
``tools``: tool definitions and ``tool_calls``; ``reasoning``: ``reasoning_content`` in history."""

BUILTIN_TEMPLATE_NAMES = frozenset(
    {
        "base", "cogvlm", "vicuna", "llava-v1", "llama2", "codellama", "chatglm", "mistral", "mixtral",
        "internvl-zh", "deepseek-vl", "deepseek-vl2", "deepseek-v4", "deepseek-v32", "deepseek-v3.2",
        "llava-chatml", "hf",
    }
)  # fmt: skip
"""``lmdeploy.model.MODELS`` in 0.18.0 (``lmdeploy list``): a JSON ``model_name`` equal to one of
these makes ``ChatTemplateConfig.chat_template()`` instantiate that class instead of
``BaseChatTemplate``."""

HF_PATH = (
    "serve with `--chat-template hf` instead: LMDeploy then renders the model's own Jinja chat template "
    "(the one `lf-template repair` writes reproduces LF exactly); without --chat-template the model path "
    "may first match one of LMDeploy's built-in templates (see name_match_warning)"
)


#: What LMDeploy does with media instead of the JSON (its VL models build the image tokens in their own code).
LMDEPLOY_MEDIA = (
    "the ChatTemplateConfig JSON has no media slots; LMDeploy's vision models insert their own image tokens "
    "into the rendered text"
)


def media_reason(spec: TemplateSpec) -> Optional[str]:
    """Why the LMDeploy JSON does not serve the template's media parts as trained (``None``: text-only)."""
    from ..model.media import engine_media_reason

    return engine_media_reason(spec.media, "LMDeploy's JSON", LMDEPLOY_MEDIA)


@dataclass(frozen=True)
class LMDeployTemplate:
    """The JSON fields and what a conversation may use with them.

    ``supports`` holds names from :data:`FEATURES`; ``unsupported`` maps every other feature that
    applies to this template to the reason; ``notes`` are caveats true for every conversation.
    """

    config: dict[str, Any]
    supports: frozenset[str]
    unsupported: tuple[tuple[str, str], ...]
    notes: tuple[str, ...]

    def reason(self, feature: str) -> Optional[str]:
        """Why ``feature`` is not supported (``None`` when it is, or does not apply)."""
        return dict(self.unsupported).get(feature)


# -- slots -> text -------------------------------------------------------------------------------


def _joined(fmt: FormatterSpec, facts: TokenizerFacts, template: str, where: str, first_slot_only: bool = False) -> str:
    """The formatter's slots as the text LF's ids decode to (placeholders left in; a token as its text)."""
    pieces = walk_slots(fmt, facts, template, where, first_slot_only=first_slot_only)
    return "".join(value for _, value in pieces)


def _split(
    fmt: FormatterSpec, facts: TokenizerFacts, template: str, where: str, *, first_slot_only: bool = False
) -> tuple[str, str]:
    """``(X1, X2)`` around the single ``{{content}}`` of a formatter, or raise naming ``where``."""
    text = _joined(fmt, facts, template, where, first_slot_only)
    if "{{idx}}" in text:
        raise UnsupportedTemplateError(
            template,
            f"the {where} slot contains {{{{idx}}}} (the turn index); LMDeploy's boxes are fixed strings and "
            f"cannot count turns; {HF_PATH}",
            where,
        )
    n = text.count("{{content}}")
    if n != 1:
        raise UnsupportedTemplateError(
            template,
            f"the {where} slot has {n} {{{{content}}}} placeholders; an LMDeploy box pair needs exactly one; {HF_PATH}",
            where,
        )
    before, after = text.split("{{content}}", 1)
    return before, after


# -- the rule ------------------------------------------------------------------------------------


def _reasoning_suffix(spec: TemplateSpec) -> str:
    """The empty thought on the prompt side of every turn, or refuse when its place depends on the turn."""
    if spec.kind not in ("reasoning", "glm47"):
        return ""
    if spec.enable_thinking is True:
        raise UnsupportedTemplateError(
            spec.name,
            f"reasoning template trained with enable_thinking=true: LF puts the empty thought {spec.empty_thought!r} in front of "
            "every history answer that has no thought, but not into the generation prompt; LMDeploy's "
            "assistant box is one string used for both, so plain multi-turn chat cannot be rendered. Train "
            f"(or export) with enable_thinking: false for an LMDeploy JSON template, or {HF_PATH}",
            "reasoning",
        )
    if spec.discard_history_thoughts:
        raise UnsupportedTemplateError(
            spec.name,
            "reasoning template trained with mask_history (LF 0.9.5 discards history thoughts): LF puts the empty thought "
            f"{spec.empty_thought!r} only after the last user turn; LMDeploy's boxes repeat on every turn; "
            f"{HF_PATH}",
            "reasoning",
        )
    return spec.empty_thought


def _strip_engine_bos(system_box: str, facts: TokenizerFacts, adds_bos: Optional[bool], template: str) -> str:
    """Leave a leading BOS to LMDeploy's ``add_bos=True`` when the tokenizer adds it anyway.

    Every LMDeploy prompt starts with the ``system`` box (the head is always emitted), so that is
    where LF's leading BOS sits. A tokenizer that adds a BOS LF never trained with cannot be fixed
    by any template (LMDeploy's HF path encodes the same way).
    """
    if not adds_bos or facts.bos_token is None:
        return system_box
    if system_box.startswith(facts.bos_token):
        return system_box[len(facts.bos_token) :]
    raise UnsupportedTemplateError(
        template,
        f"LMDeploy encodes every prompt with add_bos=True and this tokenizer then prepends {facts.bos_token!r}, "
        "but LF's template does not start with it, so no LMDeploy template (JSON or Jinja) can reproduce the "
        "training ids; set add_bos_token to false in tokenizer_config.json (LF encoded without it)",
        "bos",
    )


def _registry_name(model_name: str) -> tuple[str, Optional[str]]:
    """A ``model_name`` LMDeploy's registry resolves to ``BaseChatTemplate`` (the name only keys it).

    ``MODELS`` is an mmengine ``Registry``: ``get("a.b")`` reads ``a`` as a scope and finds nothing, so
    ``chat_template()`` fails on a name with a dot (``qwen2.5-sft``); a built-in name selects that class.
    """
    if not isinstance(model_name, str) or not model_name.strip():
        raise BadInputError("the LMDeploy chat template needs a non-empty model_name")
    safe = model_name.strip().replace(".", "-")
    if safe in BUILTIN_TEMPLATE_NAMES:
        safe = f"{safe}-lf"
    if safe == model_name:
        return safe, None
    return safe, (
        f"model_name {model_name!r} would not resolve to a plain template in LMDeploy's registry (a dot is read as "
        f"a registry scope; a built-in name selects that class, e.g. 'vicuna' strips the last prompt character); "
        f"the JSON uses {safe!r}"
    )


def _stop_words(spec: TemplateSpec, facts: TokenizerFacts) -> tuple[list[str], list[str]]:
    """LF's stop ids as words (eos first, as ``get_stop_token_ids``), and notes on unusable ones."""
    words: list[str] = []
    for w in ([facts.eos_token] if facts.eos_token else []) + list(spec.stop_words):
        if w and w not in words:
            words.append(w)
    notes = [
        f"stop word {w!r} is not a special/added token of the tokenizer; LMDeploy uses only stop words that "
        "encode to one token and ignores the others (with a warning)"
        for w in words
        if w not in facts.atomic_tokens
    ]
    return words, notes


def lmdeploy_template(
    spec: TemplateSpec,
    facts: TokenizerFacts,
    *,
    model_name: str,
    tokenizer_adds_bos: Optional[bool] = None,
) -> LMDeployTemplate:
    """The LMDeploy JSON for ``spec`` and what it reproduces (see the module docstring for the rule).

    ``tokenizer_adds_bos``: whether ``tokenizer.encode(text, add_special_tokens=True)`` puts the BOS
    in front (LMDeploy encodes with ``add_bos=True``); :func:`tokenizer_adds_bos` computes it.
    ``None`` (unknown) keeps LF's BOS text in the JSON, which is right either way.

    Raises :class:`UnsupportedTemplateError` when not even plain chat (user/assistant turns and
    the generation prompt) can be rendered as LF trained; the reason names the feature and points
    at LMDeploy's HF-template path.
    """
    name = spec.name
    json_name, rename_note = _registry_name(model_name)
    llama2 = spec.is_llama2
    think = _reasoning_suffix(spec)

    u1, u2 = _split(spec.user, facts, name, "user")
    a1, a2 = _split(spec.assistant, facts, name, "assistant")
    if a1:
        raise UnsupportedTemplateError(
            name,
            f"LF's assistant slot starts with {a1!r}, which belongs to the response (the model was trained to "
            f"generate it after the prompt); LMDeploy's assistant box is written both in front of history "
            f"answers and at the end of every generation prompt, so either the prompt gains {a1!r} or history "
            f"answers lose it; {HF_PATH}",
            "generation prompt",
        )
    prefix = _joined(spec.prefix, facts, name, "prefix")
    head = prefix + (u1 if llama2 else "")  # LF's text in front of the first user content, no system prompt
    user, separator = ("", u1) if llama2 else (u1, "")

    supports = {"plain"}
    unsupported: dict[str, str] = {}
    notes: list[str] = []
    system, meta, eosys = _head_boxes(spec, facts, head, supports, unsupported)
    system = _strip_engine_bos(system, facts, tokenizer_adds_bos, name)

    unsupported["tools"] = (
        "LMDeploy's JSON template has no place for tool definitions (the request's tools are ignored) and "
        f"renders only message content (tool_calls are dropped); {HF_PATH}"
    )
    tool, eotool = _tool_boxes(spec, facts, a2, separator, think, unsupported)
    if tool is not None:
        supports.add("tool_results")

    if spec.is_reasoning:
        if spec.enable_thinking is False:
            supports.add("reasoning")
            notes.append(
                f"thinking off (as trained): history thoughts are dropped, as LF dropped them, and every "
                f"generation prompt ends with the empty thought {think!r}; a thought inlined in content is kept "
                "(LF removed it)"
            )
            notes.append(
                "thinking off: LF's remove_thought also strips leading newlines from every answer, with or without "
                "a thought; LMDeploy keeps them (answers starting with a newline differ)"
            )
        else:  # None: _reasoning_suffix refused True
            unsupported["reasoning"] = (
                "trained with enable_thinking=null, LF keeps the thoughts of history answers; LMDeploy renders "
                "only content and drops reasoning_content, so conversations whose history has thoughts differ"
            )

    stop_words, stop_notes = _stop_words(spec, facts)
    notes += stop_notes
    if rename_note:
        notes.append(rename_note)
    if tokenizer_adds_bos is None and facts.bos_token and system.startswith(facts.bos_token):
        notes.append(
            f"the prompt starts with {facts.bos_token!r}; if the tokenizer also adds it, LMDeploy drops the "
            "duplicate (with a warning)"
        )
    if not llama2:  # Llama2Template passes no idx to the user slot
        notes.append(
            "a literal {{idx}} in user content was replaced by the turn index in LF's training text; LMDeploy keeps it"
        )
    notes.append(
        "LMDeploy renders only message content: reasoning_content, tool_calls and the request's tools are "
        "dropped; list content is joined with '\\n' by the OpenAI server"
    )
    notes.append("a request's `stop` replaces the template stop_words (generation_config.json eos ids still apply)")
    notes.append(f"do not name a LoRA adapter {json_name!r}: LMDeploy then renders with an empty BaseChatTemplate")

    config = {
        "model_name": json_name,
        "system": system,
        "meta_instruction": meta,
        "eosys": eosys,
        "user": user,
        "eoh": u2 + think,
        "assistant": "",
        "eoa": a2,
        "separator": separator,
        "tool": tool if tool is not None else "",
        "eotool": eotool if eotool is not None else "",
        "capability": "chat",
        "stop_words": stop_words,
    }
    return LMDeployTemplate(
        config=config,
        supports=frozenset(supports),
        unsupported=tuple((f, unsupported[f]) for f in FEATURES if f in unsupported),
        notes=tuple(notes),
    )


def _head_boxes(
    spec: TemplateSpec, facts: TokenizerFacts, head: str, supports: set[str], unsupported: dict[str, str]
) -> tuple[str, str, str]:
    """``(system, meta_instruction, eosys)``; records what system messages the boxes support.

    LMDeploy writes ``system + X + eosys`` in front of every conversation, ``X`` being the system
    message or, without one, ``meta_instruction`` (never skipped, see the module docstring). LF writes
    ``head`` and, when the system prompt (or the default) is non-empty, wraps it in ``S1``/``S2``.
    """
    llama2 = spec.is_llama2
    default = spec.default_system
    try:
        s1, s2 = _split(spec.system, facts, spec.name, "system", first_slot_only=llama2)
    except UnsupportedTemplateError as e:
        if default:
            raise UnsupportedTemplateError(
                spec.name, f"the default system prompt cannot be placed: {e.reason}", "system"
            ) from None
        unsupported["system"] = e.reason
        supports.add("empty_system")
        return head, "", ""
    if default:
        supports.add("system")
        unsupported["empty_system"] = (
            "LF replaces an empty system prompt with the default system prompt; LMDeploy renders an empty "
            "system message as empty (send no system message to get the default)"
        )
        return head + s1, default, s2
    supports.add("empty_system")
    if s1 + s2 == "":
        supports.add("system")
    else:
        unsupported["system"] = (
            f"LF wraps a system prompt in {s1!r}...{s2!r} and writes nothing without one (no default "
            "system); LMDeploy always writes system + meta_instruction + eosys in front of a conversation "
            "without a system message (a null meta_instruction becomes ''), so the same boxes cannot give "
            f"both; the JSON renders plain chat exactly and a system message as bare text. If clients send "
            f"system prompts, {HF_PATH}"
        )
    return head, "", ""


def _tool_boxes(
    spec: TemplateSpec,
    facts: TokenizerFacts,
    a2: str,
    separator: str,
    think: str,
    unsupported: dict[str, str],
) -> tuple[Optional[str], Optional[str]]:
    """``(tool, eotool)`` when a tool message renders as LF's observation turn, else record why not."""
    try:
        o1, o2 = _split(spec.observation, facts, spec.name, "observation")
        f1, f2 = _split(spec.function, facts, spec.name, "function")
    except UnsupportedTemplateError as e:
        unsupported["tool_results"] = e.reason
        return None, None
    if f1 or f2 != a2:
        unsupported["tool_results"] = (
            f"LF writes a tool-call turn as {f1!r}<calls>{f2!r} but an answer as <content>{a2!r}; LMDeploy drops "
            "tool_calls and renders both as answers"
        )
        return None, None
    if not o1.startswith(separator):
        unsupported["tool_results"] = (
            f"after an answer LMDeploy writes the separator {separator!r} (the next user turn's header), but "
            f"LF's tool-result turn starts with {o1!r}"
        )
        return None, None
    return o1[len(separator) :], o2 + think


def chat_template_config(
    spec: TemplateSpec,
    facts: TokenizerFacts,
    *,
    model_name: str,
    tokenizer_adds_bos: Optional[bool] = None,
) -> dict[str, Any]:
    """The ``ChatTemplateConfig`` JSON fields (write them with ``json.dumps(..., ensure_ascii=False)``).

    See :func:`lmdeploy_template` for what the JSON supports and when it raises.
    """
    return lmdeploy_template(spec, facts, model_name=model_name, tokenizer_adds_bos=tokenizer_adds_bos).config


def tokenizer_adds_bos(tokenizer: Any) -> bool:
    """Whether encoding with special tokens (LMDeploy's ``add_bos=True``) prepends the tokenizer's BOS.

    LMDeploy's ``HuggingFaceTokenizer.encode`` calls ``tokenizer.encode(s, add_special_tokens=True)``;
    GLM-4's tokenizer class is the exception (LMDeploy forces ``add_special_tokens=False``).
    """
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is None:
        return False
    return tokenizer.encode("a", add_special_tokens=True)[:1] == [bos]


# -- LMDeploy's path-name matching -----------------------------------------------------------------

# (registry key, class, rule) in lmdeploy 0.18.0's MODELS registration order; each rule is the class's
# ``match(model_path)`` from lmdeploy/model.py. get_chat_template() takes the first key whose class
# matches, before the HF-template fallback ('hf'). DeepseekV4/V32 match on config.json's architecture,
# not on the name, and are left out.
_NAME_RULES: tuple[tuple[str, str, Any], ...] = (
    ("cogvlm", "CogVLM", lambda p: "cogvlm" in p and "cogvlm2" not in p),
    ("vicuna", "Vicuna", lambda p: ("vicuna" in p and "llava" not in p) or "wizardlm" in p),
    (
        "llava-v1",
        "Llavav1",
        lambda p: ("llava" in p and "v1" in p and "v1.6-34b" not in p and "mistral" not in p) or "llava-1.5" in p,
    ),
    ("llama2", "Llama2", lambda p: "llama-2" in p or "llama2" in p),
    ("codellama", "CodeLlama", lambda p: "codellama" in p),
    ("chatglm", "ChatGLM2", lambda p: "chatglm2" in p),
    ("mistral", "MistralChat", lambda p: ("instruct" in p or "llava" in p) and ("mistral" in p or "mixtral" in p)),
    ("internvl-zh", "InternVLZH", lambda p: "internvl-chat" in p and "v1-1" in p),
    ("deepseek-vl", "DeepseekVL", lambda p: "deepseek-vl" in p and "chat" in p),
    ("deepseek-vl2", "DeepseekVL2", lambda p: "deepseek-vl2" in p),
    ("llava-chatml", "ChatmlDirect", lambda p: "llava" in p and "v1.6-34b" in p),
)


def builtin_template_for_path(model_path: str) -> Optional[str]:
    """The built-in template LMDeploy 0.18.0 picks for ``model_path`` by name, or ``None``.

    Re-creates ``lmdeploy.model.get_chat_template`` without a config: the ``match`` rules of the
    registered classes, in registration order, on the lower-cased path (the whole string given to
    ``lmdeploy serve``, parent directories included). LMDeploy's own matcher needs ``import
    lmdeploy.model`` (torch, transformers, mmengine) and its last rule loads the tokenizer.
    """
    p = model_path.lower()
    for key, _cls, rule in _NAME_RULES:
        if rule(p):
            return key
    return None


def name_match_warning(model_dir_name: str) -> Optional[str]:
    """A warning when LMDeploy would render ``model_dir_name`` with a built-in template, else ``None``.

    Without ``--chat-template``, LMDeploy matches the model path against its built-in templates
    *before* it falls back to the model's Jinja template (lmdeploy #2150: a checkpoint dir named like
    ``llama2-7b-sft`` gets the stock Llama-2 template whatever it was trained with).
    """
    key = builtin_template_for_path(model_dir_name)
    if key is None:
        return None
    cls = next(c for k, c, _ in _NAME_RULES if k == key)
    return (
        f"LMDeploy matches the model path {model_dir_name!r} to its built-in {key!r} chat template "
        f"(lmdeploy/model.py {cls}.match, lmdeploy {LMDEPLOY_VERSION}): served without --chat-template it uses "
        "that template, not the model's own chat template. Pass --chat-template lmdeploy_chat_template.json "
        f"(or --chat-template hf), or serve it from a path without the matching name"
    )
