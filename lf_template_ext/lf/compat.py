"""The one module that knows LLaMA-Factory: versions, imports, fields, signatures.

Everything else in the package talks to LF through the functions here, so supporting a new
LF release means editing this file (and its tests) only.

Versions (docs/lf-versions.md) are decided in ``lf.versions`` (re-exported here): tested releases, the
dev line by fingerprint, older ones refused, anything else feature-checked and used by proof: a
:class:`Snapshot` of an untested version, or of a template class the compiler does not know, has
:func:`proof_reasons`, which ``verifier.gate`` settles on the probe corpus before anything is written.
Differences handled here:

* 0.9.5 added ``Template.preserve_thinking``, ``Glm47ReasoningTemplate`` and the 5th
  ``encode_multiturn`` argument ``discarding_history_cot`` (0.9.4 never discards history
  thoughts in training, so ``mask_history`` does not change its encoding);
* all pass thought/tool-call words to ``FunctionFormatter`` (except ``Llama2Template``);
* the dev line's ``Template._encode`` strips the leading newlines of the tool text when there is
  no system message (``Capabilities.tools_lstrip_without_system``, detected in LF's source).

Importing this module is cheap; LF itself (10-20 s: torch, transformers) is imported on
first use of a function that needs it.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import datetime as _dt
import functools
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Optional

from ..errors import BadInputError, UnsupportedTemplateError
from ..model.media import MediaSpec
from ..model.options import TemplateOptions
from ..model.spec import (
    FormatterSpec,
    SpecialToken,
    TemplateSpec,
    Text,
    TokenizerFacts,
    TokenRef,
    kind_is_reasoning,
    kind_passes_call_words,
)
from ..model.stops import ordered_ids
from ..model.tool_formats import TOOL_FORMATS
from ..modeldir.tokenizer_copy import copy_tokenizer  # noqa: F401 - re-exported: the copy prepare() makes
from .versions import (  # noqa: F401 - the version policy, re-exported: callers ask lf.compat
    DEV_FINGERPRINTS,
    TESTED,
    check_version,
    installed_fingerprint,
    installed_version,
    is_tested,
    missing_features,
    require_features,
    tested_version,
)

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedTokenizerBase

_lock = threading.RLock()


@dataclass(frozen=True)
class Capabilities:
    """What the installed LF's template code can do (feature-detected, not assumed)."""

    version: str
    preserve_thinking: bool
    discarding_history_cot: bool
    glm47: bool
    tools_lstrip_without_system: bool = False


def template_module() -> Any:
    """LF's ``llamafactory.data.template`` (imported on first use, 10-20 s; the version checked first)."""
    return _template_module()


@functools.lru_cache(maxsize=None)
def _template_module():
    check_version()
    with _quiet_lf():
        from llamafactory.data import template as tmod  # 10-20 s on first import
    require_features(tmod)
    return tmod


@contextlib.contextmanager
def _quiet_lf() -> Iterator[None]:
    """Silence LF's info/warning logs (template choice, stop words) during our calls."""
    lf_logger = logging.getLogger("llamafactory")
    old = lf_logger.level
    lf_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        lf_logger.setLevel(old)


def _strips_tool_newline(tmod: Any) -> bool:
    """Whether ``Template._encode`` strips the tool text's leading newlines without a system message.

    Read from LF's source (the dev line's ``tool_text = tool_text.lstrip("\\n")``); the gate proves
    untested versions either way.
    """
    import inspect

    try:
        src = inspect.getsource(tmod.Template._encode)
    except (OSError, TypeError):
        return False
    return "tool_text.lstrip(" in src


@functools.lru_cache(maxsize=None)
def capabilities() -> Capabilities:
    import inspect

    tmod = _template_module()
    fields = {f.name for f in dataclasses.fields(tmod.Template)}
    sig = inspect.signature(tmod.Template.encode_multiturn)
    return Capabilities(
        version=check_version(),
        preserve_thinking="preserve_thinking" in fields,
        discarding_history_cot="discarding_history_cot" in sig.parameters,
        glm47=hasattr(tmod, "Glm47ReasoningTemplate"),
        tools_lstrip_without_system=_strips_tool_newline(tmod),
    )


#: Names this package registers in LF's ``TEMPLATES`` (native mode): not LF templates to compile.
OWN_TEMPLATE_NAMES = frozenset({"native"})


def template_names() -> list[str]:
    """LF's registered templates, without the ones this package adds (``template: native``)."""
    return [n for n in _template_module().TEMPLATES if n not in OWN_TEMPLATE_NAMES]


def closest_names(name: str, n: int = 5) -> list[str]:
    import difflib

    names = template_names()
    close = difflib.get_close_matches(name, names, n=n, cutoff=0.5)
    starts = [x for x in names if x.startswith(name) or name.startswith(x)]
    out: list[str] = []
    for x in close + starts:
        if x not in out:
            out.append(x)
    return out[:n]


def is_template(obj: Any) -> bool:
    return isinstance(obj, _template_module().Template)


# -- preparing a template + tokenizer exactly as LF's training does --------------------------


@dataclass
class Prepared:
    """An LF template and a tokenizer, both private copies, after LF's own fixing."""

    name: str
    template: Any
    tokenizer: Any
    options: TemplateOptions
    lf_version: str
    source_tokenizer: Any = None
    #: the encoding training used: ``slots`` (LF's) or ``whole`` (``template_ext_tokenize: whole``:
    #: the compiled template tokenized whole); read by the reference rule (``verifier.reference``)
    tokenize: str = "slots"


class _DataArgs(SimpleNamespace):
    """The data arguments we set; any other one LF reads gets ``DataArguments``' own default."""

    def __getattr__(self, name: str) -> Any:  # only for attributes not set
        defaults = data_argument_defaults()
        if name in defaults:
            return defaults[name]
        raise AttributeError(name)


def _literal(node: Any) -> Any:
    """``ast.literal_eval`` plus the integer arithmetic LF's defaults use (``768 * 768``)."""
    import ast

    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mult, ast.Add, ast.Sub, ast.Pow)):
        left, right = _literal(node.left), _literal(node.right)
        if isinstance(node.op, ast.Mult):
            return left * right
        if isinstance(node.op, ast.Add):
            return left + right
        if isinstance(node.op, ast.Sub):
            return left - right
        return left**right
    return ast.literal_eval(node)


@functools.lru_cache(maxsize=None)
def hparam_defaults(module: str, classes: Optional[tuple[str, ...]] = None) -> dict[str, Any]:
    """Literal defaults of the dataclass fields in LF's ``hparams/<module>.py`` (of ``classes``; all: None).

    Read from LF's source: importing ``llamafactory.hparams`` costs seconds (15 s with its imports), and
    a newer LF may declare arguments our code must not assume (the dev line's ``reasoning_effort``). A field
    whose default is not a literal (or integer arithmetic of literals) is left out; so is every field when
    LF is not installed or the file cannot be parsed.
    """
    import ast
    import importlib.util
    import os

    spec = importlib.util.find_spec("llamafactory")
    if spec is None or not spec.submodule_search_locations:
        return {}
    path = os.path.join(list(spec.submodule_search_locations)[0], "hparams", f"{module}.py")
    try:
        tree = ast.parse(open(path, encoding="utf-8").read())
    except (OSError, SyntaxError):
        return {}
    out: dict[str, Any] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.ClassDef) or (classes is not None and node.name not in classes):
            continue
        for item in node.body:
            if not (isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name) and item.value is not None):
                continue
            value = item.value
            if isinstance(value, ast.Call) and getattr(value.func, "id", "") == "field":
                value = next((k.value for k in value.keywords if k.arg == "default"), None)
            if value is None:
                continue
            try:
                out[item.target.id] = _literal(value)
            except (ValueError, TypeError):
                pass
    return out


def data_argument_defaults() -> dict[str, Any]:
    """LF's ``DataArguments`` defaults (a newer LF's ``get_template_and_fix_tokenizer`` may read a new one)."""
    return hparam_defaults("data_args", ("DataArguments",))


def _data_args(name: Optional[str], options: TemplateOptions) -> SimpleNamespace:
    # Only the attributes get_template_and_fix_tokenizer reads; a real DataArguments would pull
    # in LF's whole hparams package (15 s) for no benefit.
    return _DataArgs(template=name, train_on_prompt=False, **options.to_dict())


_PREPARED: "dict[tuple, Prepared]" = {}
_PREPARED_MAX = 16


def _tokenizer_key(tokenizer: Any) -> tuple:
    # Identity plus what changes when a caller adds tokens or replaces special tokens
    # (len(tokenizer) would ask the Rust backend for its vocab size: 60 ms).
    return (id(tokenizer), len(tokenizer.added_tokens_decoder), repr(sorted(tokenizer.special_tokens_map.items())))


def _tokenizer_state(tokenizer: Any) -> tuple:
    return (
        len(tokenizer.added_tokens_decoder),
        repr(sorted(tokenizer.special_tokens_map.items())),
        tokenizer.eos_token_id,
        tokenizer.pad_token_id,
    )


# Tokenizers already fixed by LF for a template: LF's fixing depends on the template only
# (stop words, replace_eos), not on the options, so other option sets reuse the same copy.
_FIXED: "dict[tuple, Any]" = {}


def prepare(template: Any, tokenizer: "PreTrainedTokenizerBase", options: TemplateOptions) -> Prepared:
    """Run LF's real ``get_template_and_fix_tokenizer`` on copies of template and tokenizer.

    LF mutates both in place (the template is a module singleton in ``TEMPLATES``); we give
    it a private ``TEMPLATES`` dict holding a deep copy, swapped in under a lock, so neither
    the caller's tokenizer nor LF's registry changes. Results for a registered name are
    cached per (tokenizer, options): copying a large tokenizer costs about a second.
    """
    if isinstance(template, str):
        key = (template, options, _tokenizer_key(tokenizer))
        with _lock:
            hit = _PREPARED.get(key)
        if hit is not None and hit.source_tokenizer is tokenizer:
            return hit
        prepared = _prepare(template, tokenizer, options)
        with _lock:
            if len(_PREPARED) >= _PREPARED_MAX:
                _PREPARED.pop(next(iter(_PREPARED)))
            _PREPARED[key] = prepared
        return prepared
    return _prepare(template, tokenizer, options)


def _prepare(template: Any, tokenizer: Any, options: TemplateOptions) -> Prepared:
    tmod = _template_module()
    if isinstance(template, str):
        if template not in tmod.TEMPLATES:
            close = closest_names(template)
            hint = f"did you mean {', '.join(close)}?" if close else "run `lf-template jinja --help` for the list"
            raise BadInputError(f"unknown LF template {template!r}", hint=hint)
        name = template
        tpl_copy = copy.deepcopy(tmod.TEMPLATES[template])
    elif isinstance(template, tmod.Template):
        name = "__lf_template_ext__"
        tpl_copy = copy.deepcopy(template)
    else:
        raise TypeError(f"template must be an LF Template or a registered name, got {type(template).__name__}")
    if options.tool_format is not None:
        from llamafactory.data import tool_utils

        if options.tool_format not in tool_utils.TOOLS:
            raise BadInputError(
                f"unknown tool_format {options.tool_format!r}", hint=f"LF knows: {', '.join(sorted(tool_utils.TOOLS))}"
            )
    fixed_key = (name, _tokenizer_key(tokenizer)) if isinstance(template, str) else None
    with _lock:
        reused = _FIXED.get(fixed_key) if fixed_key else None
    tok_copy = reused if reused is not None else copy_tokenizer(tokenizer)
    before = _tokenizer_state(tok_copy)
    fixed = _run_lf_fix(tmod, name, tpl_copy, tok_copy, options)
    if reused is not None and _tokenizer_state(tok_copy) != before:  # not idempotent: start afresh
        tpl_copy = copy.deepcopy(tmod.TEMPLATES[name])
        tok_copy = copy_tokenizer(tokenizer)
        fixed = _run_lf_fix(tmod, name, tpl_copy, tok_copy, options)
    if fixed_key is not None:
        with _lock:
            if len(_FIXED) >= _PREPARED_MAX:
                _FIXED.pop(next(iter(_FIXED)))
            _FIXED[fixed_key] = tok_copy
    return Prepared(
        name=template if isinstance(template, str) else "custom",
        template=fixed,
        tokenizer=tok_copy,
        options=options,
        lf_version=check_version(),
        source_tokenizer=tokenizer,
    )


def _run_lf_fix(tmod: Any, name: str, tpl_copy: Any, tok_copy: Any, options: TemplateOptions) -> Any:
    with _lock, _quiet_lf():
        original = tmod.TEMPLATES
        tmod.TEMPLATES = {**original, name: tpl_copy}
        try:
            # the hook wraps LF's function to record training/export state; our own calls bypass it
            fix = getattr(tmod.get_template_and_fix_tokenizer, "__wrapped__", tmod.get_template_and_fix_tokenizer)
            return fix(tok_copy, _data_args(name, options))
        finally:
            tmod.TEMPLATES = original


# -- snapshot into plain data -----------------------------------------------------------------


def _slots(slots: Any) -> tuple:
    out = []
    for s in slots:
        if isinstance(s, str):
            out.append(Text(s))
        elif isinstance(s, set):
            if "bos_token" in s:
                out.append(SpecialToken("bos"))
            elif "eos_token" in s:
                out.append(SpecialToken("eos"))
            else:  # LF's _convert_elements_to_ids ignores any other set
                out.append(SpecialToken("none"))
        elif isinstance(s, dict):
            out.append(TokenRef(str(s.get("token"))))
        else:
            raise UnsupportedTemplateError("", f"unknown slot type {type(s).__name__}")
    return tuple(out)


def _formatter(f: Any) -> FormatterSpec:
    from llamafactory.data import formatter as fmod

    if isinstance(f, fmod.FunctionFormatter):
        kind = "function"
    elif isinstance(f, fmod.ToolFormatter):
        kind = "tool"
    elif isinstance(f, fmod.StringFormatter):
        kind = "string"
    elif isinstance(f, fmod.EmptyFormatter):
        kind = "empty"
    else:
        raise UnsupportedTemplateError("", f"formatter class {type(f).__name__} is not known to lf-template-ext")
    return FormatterSpec(kind=kind, slots=_slots(f.slots), tool_format=getattr(f, "tool_format", None))


#: LF tool_format -> the prompt constant of ``llamafactory.data.tool_utils`` (``model.tool_formats``).
_TOOL_PROMPTS = {name: f.lf_prompt for name, f in TOOL_FORMATS.items() if f.lf_prompt}


def tool_prompt_pieces(tool_format: Optional[str]) -> tuple[tuple[str, str], ...]:
    """LF's tool prompt for ``tool_format`` split into literal text and ``{field}`` pieces."""
    import string

    if tool_format not in _TOOL_PROMPTS:
        return ()
    from llamafactory.data import tool_utils

    prompt = getattr(tool_utils, _TOOL_PROMPTS[tool_format], None)
    if prompt is None:
        return ()
    pieces: list[tuple[str, str]] = []
    for literal, field_name, _spec, _conv in string.Formatter().parse(prompt):
        if literal:
            pieces.append(("text", literal))
        if field_name is not None:
            pieces.append(("field", field_name))
    return tuple(pieces)


#: The methods by which a Template subclass changes how ids are built.
_ENCODING_METHODS = ("_encode", "encode_multiturn", "encode_oneturn", "add_thought", "remove_thought")


def _kind_and_base(template: Any) -> tuple[str, Any]:
    tmod = _template_module()
    if getattr(tmod, "Glm47ReasoningTemplate", None) is not None and isinstance(template, tmod.Glm47ReasoningTemplate):
        return "glm47", tmod.Glm47ReasoningTemplate
    if isinstance(template, tmod.ReasoningTemplate):
        return "reasoning", tmod.ReasoningTemplate
    if isinstance(template, tmod.Llama2Template):
        return "llama2", tmod.Llama2Template
    return "plain", tmod.Template


def unknown_class(template: Any) -> Optional[str]:
    """``"MossVLTemplate overrides _encode"`` for a Template subclass the compiler does not know, else ``None``.

    The compiler reproduces LF's own ``Template``, ``Llama2Template``, ``ReasoningTemplate`` and
    ``Glm47ReasoningTemplate``; a subclass that overrides how ids are built is compiled as its base
    class and must be proven (``Snapshot.needs_proof``).
    """
    _kind, base = _kind_and_base(template)
    cls = type(template)
    if cls is base:
        return None
    overridden = [m for m in _ENCODING_METHODS if getattr(cls, m) is not getattr(base, m)]
    return f"{cls.__name__} overrides {', '.join(overridden)}" if overridden else None


def template_kind(template: Any, strict: bool = True) -> str:
    """The class of ``template`` as the compiler knows it (plain, llama2, reasoning, glm47).

    ``strict``: refuse a subclass that overrides how ids are built (:func:`unknown_class`); otherwise
    the kind of its base class (what the compiler would reproduce, to be proven by the gate).
    """
    kind, _base = _kind_and_base(template)
    if strict:
        why = unknown_class(template)
        if why is not None:
            raise UnsupportedTemplateError(
                getattr(template, "name", type(template).__name__),
                f"template class {why}; lf-template-ext reproduces only LF's own "
                "Template, Llama2Template, ReasoningTemplate and Glm47ReasoningTemplate",
                "template class",
            )
    return kind


def template_spec(prepared: Prepared) -> TemplateSpec:
    """Snapshot ``prepared.template`` into a :class:`TemplateSpec`."""
    t = prepared.template
    caps = capabilities()
    kind = template_kind(t, strict=False)  # an unknown subclass: its base's rules, proven by the gate
    try:
        tools_fmt = _formatter(t.format_tools)
        spec = TemplateSpec(
            name=prepared.name,
            kind=kind,  # type: ignore[arg-type]
            prefix=_formatter(t.format_prefix),
            system=_formatter(t.format_system),
            user=_formatter(t.format_user),
            assistant=_formatter(t.format_assistant),
            function=_formatter(t.format_function),
            observation=_formatter(t.format_observation),
            tools=tools_fmt,
            default_system=t.default_system or "",
            stop_words=tuple(t.stop_words),
            thought_words=tuple(t.thought_words),  # type: ignore[arg-type]
            tool_call_words=tuple(t.tool_call_words) if getattr(t, "tool_call_words", None) else None,
            efficient_eos=bool(t.efficient_eos),
            replace_eos=bool(t.replace_eos),
            enable_thinking=t.enable_thinking,
            preserve_thinking=bool(getattr(t, "preserve_thinking", False)),
            mm_plugin=type(t.mm_plugin).__name__,
            discard_history_thoughts=caps.discarding_history_cot and prepared.options.discard_history_thoughts,
            empty_thought=t.add_thought() if kind_is_reasoning(kind) else "",
            function_gets_words=kind_passes_call_words(kind),
            tool_prompt=tool_prompt_pieces(tools_fmt.tool_format) if tools_fmt.kind == "tool" else (),
            tools_lstrip_without_system=caps.tools_lstrip_without_system and kind != "llama2",
            lf_version=prepared.lf_version,
            media=media_spec(t.mm_plugin),
        )
    except UnsupportedTemplateError as e:
        raise UnsupportedTemplateError(prepared.name, e.reason, e.feature) from None
    return spec


#: The plugin attributes that name tokens (set per template by ``get_mm_plugin`` or as class defaults).
_PLUGIN_TOKEN_ATTRS = (
    "image_token",
    "video_token",
    "audio_token",
    "vision_bos_token",
    "vision_eos_token",
    "audio_bos_token",
    "audio_eos_token",
)


def media_spec(plugin: Any) -> Optional[MediaSpec]:
    """LF's multimodal plugin as data: its class, its name in ``PLUGINS``, its tokens and LF's tags.

    ``None`` for ``BasePlugin`` (a text-only template). Read from the plugin object itself, so a template
    registered with other tokens (``dots_ocr``'s ``<|imgpad|>``) or the dev line's new plugins come out right.
    """
    cls = type(plugin)
    if cls.__name__ == "BasePlugin":
        return None
    from llamafactory.data import mm_plugin as mm
    from llamafactory.extras import constants

    key = next((k for k, v in getattr(mm, "PLUGINS", {}).items() if v is cls), "")
    tokens = tuple(
        (a, v) for a in _PLUGIN_TOKEN_ATTRS if isinstance(v := getattr(plugin, a, None), str) and v
    )
    tags = tuple(  # LF's constants (env-overridable); a release without one keeps LF's default tag
        (k, getattr(constants, f"{k.upper()}_PLACEHOLDER", f"<{k}>")) for k in ("image", "video", "audio")
    )
    return MediaSpec(plugin=cls.__name__, key=key, tokens=tokens, tags=tags)


def tokenizer_facts(tokenizer: Any) -> TokenizerFacts:
    """What the compiler needs from the (LF-fixed) tokenizer."""
    atomic = set(tokenizer.get_added_vocab().keys())
    atomic.update(t for t in tokenizer.all_special_tokens if t)
    return TokenizerFacts(
        bos_token=tokenizer.bos_token if tokenizer.bos_token_id is not None else None,
        eos_token=tokenizer.eos_token if tokenizer.eos_token_id is not None else None,
        atomic_tokens=frozenset(atomic),
        split_special_tokens=bool(getattr(tokenizer, "split_special_tokens", False)),
    )


# -- LF's training encoding (the reference ids) ----------------------------------------------


@contextlib.contextmanager
def frozen_time(when: Optional[_dt.datetime]) -> Iterator[None]:
    """Freeze ``datetime.now()`` in LF's tool formatter (Llama-3 tool prompts embed the date)."""
    if when is None:
        yield
        return
    from llamafactory.data import tool_utils

    class _Frozen(_dt.datetime):
        @classmethod
        def now(cls, tz=None):  # noqa: D401 - datetime API
            return when if tz is None else when.astimezone(tz)

    with _lock:
        original = tool_utils.datetime
        tool_utils.datetime = _Frozen
        try:
            yield
        finally:
            tool_utils.datetime = original


def _mm_identity_ok(prepared: Prepared, messages: list[dict[str, str]]) -> None:
    from llamafactory.extras import constants

    for m in messages:
        for ph in (constants.IMAGE_PLACEHOLDER, constants.VIDEO_PLACEHOLDER, constants.AUDIO_PLACEHOLDER):
            if ph in m["content"]:
                raise UnsupportedTemplateError(
                    prepared.name,
                    f"the text contains the multimodal placeholder {ph!r}; LF expands it with the processor before "
                    "encoding, which a text-only check cannot reproduce",
                    "multimodal",
                )


def encode_training(
    prepared: Prepared,
    messages: list[dict[str, str]],
    system: Optional[str],
    tools: Optional[str],
) -> list[tuple[list[int], list[int]]]:
    """LF's supervised encoding pairs, before cutoff truncation and without efficient-eos.

    Mirrors ``SupervisedDatasetProcessor._encode_data_example`` up to ``encode_multiturn``
    (media-free: the multimodal plugin's hooks are identities without media).
    """
    with _quiet_lf():
        return _encode_one(prepared, messages, system, tools, capabilities().discarding_history_cot)


def _encode_one(prepared: Prepared, messages: list, system: Optional[str], tools: Optional[str], discard: bool) -> Any:
    """One sample through LF's no-media plugin hooks and ``encode_multiturn`` (LF's logs already quiet).

    Without media (and, checked first, without placeholders) every plugin leaves messages and
    ids unchanged; some still insist on a processor, which a text-only check lacks.
    """
    t, tok = prepared.template, prepared.tokenizer
    plugin = t.mm_plugin
    msgs = [dict(m) for m in messages]
    _mm_identity_ok(prepared, msgs)
    try:
        msgs = plugin.process_messages(msgs, [], [], [], None)
    except (AttributeError, ValueError):
        pass
    try:
        prefix_ids, _ = plugin.process_token_ids([], [], [], [], [], tok, None)
    except (AttributeError, ValueError):
        prefix_ids = []
    if prefix_ids:
        raise UnsupportedTemplateError(prepared.name, "the multimodal plugin adds token ids without media", "multimodal")
    return encode_multiturn(prepared, msgs, system, tools, discard)


def encode_multiturn(
    prepared: Prepared, messages: list, system: Optional[str], tools: Optional[str], discard: Optional[bool] = None
) -> Any:
    """``Template.encode_multiturn`` as training calls it (``discarding_history_cot`` where LF has it).

    The last step of both references: the text-only one above and LF's media path (``lf.media``),
    which runs the plugin's hooks with the media first.
    """
    t, tok = prepared.template, prepared.tokenizer
    if discard is None:
        discard = capabilities().discarding_history_cot
    if discard:
        return t.encode_multiturn(tok, messages, system, tools, prepared.options.discard_history_thoughts)
    return t.encode_multiturn(tok, messages, system, tools)


def stop_token_ids(prepared: Prepared) -> list[int]:
    """``Template.get_stop_token_ids`` in template order: eos first, then the stop words."""
    tok = prepared.tokenizer
    return ordered_ids([tok.eos_token_id], [tok.convert_tokens_to_ids(w) for w in prepared.template.stop_words])


# -- the snapshot every command starts from ------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """An LF template prepared for a tokenizer, as plain data: what every command starts from.

    ``prepared`` (LF's objects, private copies), ``spec`` and ``facts`` (what the compilers read),
    and ``stop_ids`` (LF's ``get_stop_token_ids``: what an engine must stop on).
    """

    prepared: Prepared
    spec: TemplateSpec
    facts: TokenizerFacts
    stop_ids: tuple[int, ...]
    #: Why the compiled template must be proven before it is written (``verifier.gate``): an untested
    #: LF version, a template class the compiler does not know. Empty: nothing to prove.
    needs_proof: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.prepared.name

    def stop_tokens(self) -> list[str]:
        return [self.prepared.tokenizer.convert_ids_to_tokens(i) for i in self.stop_ids]


def proof_reasons(prepared: Prepared) -> tuple[str, ...]:
    """THE version policy per template: what makes a compiled template need proof (empty: none)."""
    reasons = []
    if not is_tested(prepared.lf_version):
        snapshot_note = " snapshot: its template code is not the tested one" if prepared.lf_version in DEV_FINGERPRINTS else ""
        reasons.append(f"LF {prepared.lf_version} (untested{snapshot_note})")
    why = unknown_class(prepared.template)
    if why is not None:
        reasons.append(f"template class {why} (not known to the compiler)")
    return tuple(reasons)


def snapshot_of(prepared: Prepared) -> Snapshot:
    return Snapshot(
        prepared=prepared,
        spec=template_spec(prepared),
        facts=tokenizer_facts(prepared.tokenizer),
        stop_ids=tuple(stop_token_ids(prepared)),
        needs_proof=proof_reasons(prepared),
    )


def snapshot(
    template: Any,
    tokenizer: Any,
    options: TemplateOptions,
    *,
    trained_with: Optional[str] = None,
) -> Snapshot:
    """:func:`prepare` + :func:`template_spec` + :func:`tokenizer_facts` + :func:`stop_token_ids`.

    ``trained_with``: the model dir (or tokenizer dir) the tokenizer came from, for the commands
    that serve a model trained with ``template``. Then a template whose stop words the tokenizer
    lacks is refused before anything is written: LF adds such tokens (and resizes the embeddings)
    when it trains with the template, so a tokenizer without them was not trained with it.
    """
    if isinstance(template, str) and template in OWN_TEMPLATE_NAMES:
        raise UnsupportedTemplateError(
            template,
            "native mode trains with the model's own chat template, so there is no LF template to compile: the "
            "dir's template already is the training format (`lf-template repair DIR --template native` aligns its "
            "stop ids and writes SERVING.md for the engines that render Jinja)",
            "template: native",
        )
    prepared = prepare(template, tokenizer, options)
    if trained_with is not None:
        require_trained_tokens(prepared, trained_with)
    return snapshot_of(prepared)


def require_trained_tokens(prepared: Prepared, where: str) -> None:
    """Refuse (bad input) a template whose stop words the source tokenizer does not have."""
    source = prepared.source_tokenizer if prepared.source_tokenizer is not None else prepared.tokenizer
    vocab = source.get_vocab()
    missing = [w for w in prepared.template.stop_words if w not in vocab]
    if missing:
        raise BadInputError(
            f"LF template {prepared.name!r} needs the token(s) {missing}, which this tokenizer does not have: the "
            "model was not trained with this template (LF would have added them and resized the embeddings)",
            path=where,
            hint="pass the template training used (see the training YAML or lf_template_ext.json)",
        )


def chat_sampling_defaults() -> dict[str, Any]:
    """LF chat's sampling defaults (``GeneratingArguments``) for the keys of ``model.generation.SAMPLING``."""
    from dataclasses import asdict

    from llamafactory.hparams import GeneratingArguments

    from ..model.generation import SAMPLING_KEYS

    values = asdict(GeneratingArguments())
    return {k: values[k] for k in SAMPLING_KEYS if k in values}


# -- native mode --------------------------------------------------------------------------------
# What ``template: native`` (``lf_template_ext.native.mode``) needs from LF: registering the template,
# the supervised loop's helpers, and LF's model tables to suggest a built-in template.


def supervised_helpers() -> tuple[Any, int]:
    """``(infer_seqlen, IGNORE_INDEX)`` of LF's supervised processor."""
    from llamafactory.data.processor.processor_utils import infer_seqlen
    from llamafactory.extras.constants import IGNORE_INDEX

    return infer_seqlen, IGNORE_INDEX


@functools.lru_cache(maxsize=None)
def native_helpers() -> Any:
    """What native mode (``native.mode``, LF-free) needs from LF, as one object."""
    from ..native.mode import LFHelpers

    infer_seqlen, ignore_index = supervised_helpers()
    return LFHelpers(infer_seqlen=infer_seqlen, ignore_index=ignore_index, suggest_template=suggest_template_for_model)


def model_identifiers(name_or_path: str) -> list[str]:
    """Lower-case ``org/name`` and ``name`` guesses for a model dir or hub id.

    Local copies are often named ``org--name`` (the hub cache convention) or keep the hub
    path as their last two components.
    """
    import os

    path = str(name_or_path).rstrip("/\\")
    base = os.path.basename(path)
    parent = os.path.basename(os.path.dirname(path))
    out = []
    if "--" in base:
        org, base = base.split("--", 1)
        out.append(f"{org}/{base}")
    elif parent:
        out.append(f"{parent}/{base}")
    out.append(base)  # the bare model name comes last
    return [x.lower() for x in out if x]


def suggest_template_for_model(name_or_path: str) -> Optional[str]:
    """The LF template LF itself associates with this model (or its chat sibling), if any."""
    import os

    from llamafactory.extras.constants import DEFAULT_TEMPLATE, SUPPORTED_MODELS

    ids = model_identifiers(name_or_path)
    by_path: dict[str, str] = {}
    by_base: dict[str, str] = {}
    for model_name, sources in SUPPORTED_MODELS.items():
        for hub_path in sources.values():
            by_path.setdefault(str(hub_path).lower(), model_name)
            by_base.setdefault(str(hub_path).lower().rsplit("/", 1)[-1], model_name)
        by_base.setdefault(model_name.lower(), model_name)
    model = next((by_path[i] for i in ids if i in by_path), None) or next((by_base[i] for i in ids if i in by_base), None)
    if model is not None:
        if DEFAULT_TEMPLATE.get(model):
            return DEFAULT_TEMPLATE[model]
        # a base model: the template of the chat model whose name extends it the furthest
        siblings = sorted((k for k in DEFAULT_TEMPLATE if k.startswith(model)), key=len)
        if siblings:
            return DEFAULT_TEMPLATE[siblings[0]]
    # an unknown size or revision: the chat model sharing the longest name prefix, family included
    base = ids[-1]
    family = base.split("-")[0]
    best, best_len = None, len(family)
    for key in sorted(DEFAULT_TEMPLATE, key=len):
        n = len(os.path.commonprefix([base, key.lower()]))
        if n > best_len or (best is None and n == best_len == len(family)):
            best, best_len = key, n
    return DEFAULT_TEMPLATE[best] if best is not None else None


# -- datasets --------------------------------------------------------------------------------------
# What ``check --dataset`` (``lf_template_ext.verifier.dataset``) needs from LF: its own converter for a
# dataset_info.json entry, so every row becomes the ``_prompt/_response/_system/_tools`` LF trained on.


def dataset_converter(entry: dict, dataset_name: str, dataset_dir: str) -> Any:
    """LF's converter for one ``dataset_info.json`` entry (a callable: raw row -> LF's aligned row).

    Built exactly as LF's loader builds it: ``DatasetAttr("file", ...)`` + ``DatasetAttr.join(entry)``
    (LF's column/tag defaults and quirks), then ``get_dataset_converter(formatting, ...)``. The converter
    only reads ``data_args.media_dir`` (media paths; a text check never opens them).
    """
    check_version()
    with _quiet_lf():
        from llamafactory.data.converter import get_dataset_converter
        from llamafactory.data.parser import DatasetAttr

    attr = DatasetAttr("file", dataset_name=str(entry.get("file_name", dataset_name)))
    attr.join(entry)
    data_args = SimpleNamespace(media_dir=dataset_dir, dataset_dir=dataset_dir)
    return get_dataset_converter(attr.formatting, attr, data_args)


@contextlib.contextmanager
def quiet_dataset_converter() -> Iterator[None]:
    """LF's converter logs every skipped row; the check reports them itself, per sample."""
    with _quiet_lf():
        yield


def supervised_example_ok(prompt: list, response: list) -> bool:
    """``SupervisedDatasetProcessor.preprocess_dataset``'s row filter (LF 0.9.4/0.9.5)."""
    return len(prompt) % 2 == 1 and len(response) == 1


def file_ext_types() -> dict:
    """LF's ``FILEEXT2TYPE`` (the dataset reader keeps a copy; tests compare the two)."""
    from llamafactory.extras.constants import FILEEXT2TYPE

    return dict(FILEEXT2TYPE)




def encode_training_batch(prepared: Prepared, samples: list) -> list:
    """:func:`encode_training` for many ``(messages, system, tools)`` samples, each result or exception.

    The same steps per sample (placeholder check, the multimodal plugin's no-media hooks,
    ``encode_multiturn`` with ``discarding_history_cot``), with LF's logs silenced once for the
    batch instead of once per sample (``Logger.setLevel`` clears every logger's cache: with
    torch and transformers loaded that costs a fifth of LF's own encoding time).
    """
    discard = capabilities().discarding_history_cot
    out: list = []
    with _quiet_lf():
        for messages, system, tools in samples:
            try:
                out.append(_encode_one(prepared, messages, system, tools, discard))
            except Exception as e:  # this sample only: LF cannot encode it
                out.append(e)
    return out
