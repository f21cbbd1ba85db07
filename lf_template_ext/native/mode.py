"""``template: native``: train and chat with the model's own chat template, exactly.

The entry points of native mode, free of LF: the LF side (``lf_template_ext.lf.native_template``,
the ``Template`` subclass LF finds under the name ``native``, and ``lf.plugin.native_processors``,
LF's supervised processors batch-encoding native conversations) calls them with what they need
from LF (:class:`LFHelpers`: LF's ``infer_seqlen``, ``IGNORE_INDEX`` and its model table for
suggestions), so this package never imports LF.

Stop ids: the tokenizer's eos plus the ``eos_token_id`` of the model's ``generation_config.json``
(what vLLM stops on; ``modeldir.files.engine_stop_ids``).
"""

from __future__ import annotations

import json
import logging
import os
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Callable, Optional

from ..errors import BadInputError
from ..modeldir.files import engine_stop_ids

NAME = "native"
logger = logging.getLogger("llamafactory.lf_template_ext.native")


class NativeModeError(BadInputError, ValueError):
    """Native mode cannot work with this tokenizer/model (the message names the model and the fix)."""


@dataclass(frozen=True)
class LFHelpers:
    """What native mode takes from LF, handed in by the LF side (``lf.compat.native_helpers``)."""

    infer_seqlen: Callable[..., Any]
    ignore_index: int
    suggest_template: Callable[[str], Optional[str]] = lambda name: None
    #: ``template_ext_chat_template: lf:NAME``: (NAME, tokenizer, enable_thinking) -> LF's template NAME compiled
    compile_template: Optional[Callable[[str, Any, Optional[bool]], str]] = None


# -- stop ids ------------------------------------------------------------------------------------


def stop_token_ids(tokenizer: Any) -> list[int]:
    """The tokenizer's eos, then ``generation_config.json``'s eos ids (never raises: LF calls it)."""
    return engine_stop_ids(getattr(tokenizer, "name_or_path", None), tokenizer, strict=False)


# -- the chat template ------------------------------------------------------------------------------


def chat_template_of(tokenizer: Any) -> Optional[str]:
    """The template ``apply_chat_template`` would use without tools, or ``None``."""
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, Mapping):
        template = template.get("default")
    return template if isinstance(template, str) and template.strip() else None


def describe_template(tokenizer: Any) -> str:
    return f"the chat template of {getattr(tokenizer, 'name_or_path', '') or 'this tokenizer'}"


def suggest_template(name_or_path: str, helpers: Optional[LFHelpers]) -> Optional[str]:
    """LF's built-in template for this model (LF's own model table), for error messages."""
    if helpers is None:
        return None
    try:
        return helpers.suggest_template(name_or_path or "")
    except Exception:  # a suggestion must never hide the real error
        return None


def _no_template(name: str, helpers: Optional[LFHelpers] = None) -> NativeModeError:
    suggestion = suggest_template(name, helpers)
    fix = (
        f"train with LF's own template for this model: `template: {suggestion}`"
        if suggestion
        else "train with an LF template that matches the model's prompt format (`template: <name>`)"
    )
    return NativeModeError(
        f"{name}: the tokenizer has no chat template (no chat_template.jinja, chat_template.json or "
        "tokenizer_config.json 'chat_template'), so `template: native` has nothing to render with.\n"
        f"  fix: {fix}, or add the model's chat template to {name}"
    )


def require_chat_template(tokenizer: Any, helpers: Optional[LFHelpers] = None) -> str:
    template = chat_template_of(tokenizer)
    if template is None:
        raise _no_template(getattr(tokenizer, "name_or_path", "") or "this tokenizer", helpers)
    return template


def check_model_dir(model_dir: "str | os.PathLike[str]", helpers: Optional[LFHelpers] = None) -> None:
    """Refuse a model dir whose files carry no chat template (before any tokenizer is loaded).

    Looks where transformers looks: ``chat_template.jinja``, ``chat_template.json`` and the
    ``chat_template`` key of ``tokenizer_config.json``.
    """
    root = os.fspath(model_dir)
    if os.path.isfile(os.path.join(root, "chat_template.jinja")):
        return
    for name in ("chat_template.json", "tokenizer_config.json"):
        path = os.path.join(root, name)
        try:
            with open(path, encoding="utf-8") as f:
                if json.load(f).get("chat_template"):
                    return
        except (OSError, ValueError, AttributeError):
            continue
    raise _no_template(root, helpers)


def chosen_chat_template(tokenizer: Any, helpers: Optional[LFHelpers], enable_thinking: Optional[bool]) -> Optional[str]:
    """``template_ext_chat_template``: the Jinja text native mode renders instead of the model's own, or ``None``.

    ``FILE``: a Jinja file's text; ``lf:NAME``: LF's template NAME compiled for this tokenizer (the text export
    mode writes), so ``template: native`` trains with an LF format on whole-string ids.
    """
    from . import options as native_options

    chosen = native_options.current().chat_template
    if chosen is None:
        return None
    value, source = chosen
    if value.startswith("lf:"):
        name = value[3:].strip()
        if helpers is None or helpers.compile_template is None:
            raise NativeModeError(f"{source}: {value!r} needs LF to compile its template (run inside LLaMA-Factory)")
        return helpers.compile_template(name, tokenizer, enable_thinking)
    path = os.path.expanduser(value)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise NativeModeError(
            f"{source}: cannot read the chat template file {path!r}: {e.strerror or e}\n"
            "  fix: give a Jinja file that exists, or lf:NAME for LF's template NAME (e.g. lf:qwen)"
        ) from None
    if not text.strip():
        raise NativeModeError(f"{source}: the chat template file {path!r} is empty\n  fix: give a Jinja chat template")
    return text


# -- encoders ---------------------------------------------------------------------------------------

_ENCODERS: "weakref.WeakKeyDictionary[Any, dict[tuple, Any]]" = weakref.WeakKeyDictionary()


def encoder_for(
    tokenizer: Any,
    template: Any,
    helpers: LFHelpers,
    data_args: Any = None,
    overrides: Optional[Mapping[str, Any]] = None,
    chat_template: Optional[str] = None,
):
    """A cached :class:`~lf_template_ext.native.encode.NativeEncoder` for this tokenizer and settings.

    ``chat_template``: render with this Jinja instead of the tokenizer's (media samples: the processor's
    template, ``native.media``)."""
    from . import options as native_options
    from .encode import LFDataOptions, NativeEncoder
    from .render import ChatRenderer

    require_chat_template(tokenizer, helpers)
    opts = native_options.current(overrides)
    data = LFDataOptions(
        cutoff_len=int(getattr(data_args, "cutoff_len", 2048) or 2048),
        train_on_prompt=bool(getattr(data_args, "train_on_prompt", False)),
        mask_history=bool(getattr(data_args, "mask_history", False)),
    )
    thinking = getattr(template, "enable_thinking", True)
    key = (
        opts.policy,
        json.dumps(dict(opts.template_kwargs), sort_keys=True, default=str),
        thinking,
        data,
        chat_template_of(tokenizer),
        chat_template,
    )
    per_tokenizer = _ENCODERS.setdefault(tokenizer, {})
    encoder = per_tokenizer.get(key)
    if encoder is None:
        renderer = ChatRenderer(
            tokenizer, template_kwargs=opts.template_kwargs, enable_thinking=thinking, chat_template=chat_template
        )
        encoder = per_tokenizer[key] = NativeEncoder(
            renderer,
            policy=opts.policy,
            data=data,
            infer_seqlen=helpers.infer_seqlen,
            ignore_index=helpers.ignore_index,
            template_name=describe_template(tokenizer),
            suggest=lambda: suggest_template(getattr(tokenizer, "name_or_path", ""), helpers),
        )
    return encoder


def conversation(
    template: Any,
    messages: Sequence[Mapping[str, str]],
    system: Optional[str],
    tools: Optional[str],
    media_parts: bool = False,
):
    """LF's encoder arguments as the engine's request (LF's rule: an empty system -> default system).

    ``media_parts``: LF's media tags become content parts (a sample with media, ``native.media``)."""
    from .render import from_lf

    return from_lf(messages, system or getattr(template, "default_system", "") or "", tools, media_parts=media_parts)


def sample_name(row: int, messages: Sequence[Mapping[str, str]], datasets: Any = None) -> str:
    first = next((str(m.get("content", "")) for m in messages if str(m.get("role")) == "user"), "")
    first = first if len(first) <= 60 else first[:57] + "..."
    where = f" of dataset {', '.join(datasets) if isinstance(datasets, list) else datasets}" if datasets else ""
    return f"sample {row} of the preprocessing batch{where} (first user message {first!r})"


# -- the template's methods (``native_template.NativeTemplate`` delegates here) ----------------------------


def encode_oneturn(
    template: Any, tokenizer: Any, helpers: LFHelpers, messages: Sequence[Mapping[str, str]], system: Any, tools: Any
):
    from .layout import NativeLayoutError
    from .render import NativeRenderError

    encoder = encoder_for(tokenizer, template, helpers)
    try:
        return encoder.encode_oneturn(conversation(template, messages, system, tools))
    except (NativeRenderError, NativeLayoutError) as e:
        raise encoder.fail(sample_name(0, messages), str(e), "fix or drop this conversation") from e


def encode_multiturn(
    template: Any, tokenizer: Any, helpers: LFHelpers, messages: Sequence[Mapping[str, str]], system: Any, tools: Any
):
    encoder = encoder_for(tokenizer, template, helpers)
    return encoder.pairs(conversation(template, messages, system, tools), sample_name(0, messages))


def ollama_modelfile(tokenizer: Any) -> str:
    lines = ["# ollama modelfile for a `template: native` model: its own chat template (in the GGUF) applies", "FROM ."]
    lines += [f'PARAMETER stop "{tokenizer.convert_ids_to_tokens(i)}"' for i in stop_token_ids(tokenizer)]
    return "\n".join(lines) + "\n"


#: Class attribute that marks LF's ``native`` template class (``lf.native_template.NativeTemplate``).
MARKER = "_lf_template_ext_native"


def is_native(template: Any) -> bool:
    return bool(getattr(type(template), MARKER, False))
