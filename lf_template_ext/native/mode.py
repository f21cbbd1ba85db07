"""``template: native``: train and chat with the model's own chat template, exactly.

The LF edge of native mode. The enable hook (``lf_template_ext.lf.plugin.hook``) calls

* :func:`install` right after ``llamafactory.data.template`` is imported: registers the
  template ``native`` (``native_template.NativeTemplate``, a ``ReasoningTemplate`` so that LF
  hands it ``enable_thinking`` / ``preserve_thinking`` from the data arguments);
* :func:`install_processors` right after ``llamafactory.data.processor.supervised`` (and
  ``.pairwise``) is imported: the supervised processors (plain and packed) encode a whole
  batch at once (one batched tokenization) and may emit more examples than rows (policy
  ``expand``).

Everything else goes through LF's own code: ``get_template_and_fix_tokenizer`` finds the
template by name, ``encode_multiturn`` / ``encode_oneturn`` serve the stock processors and
LF's HF/vLLM/SGLang chat engines (``llamafactory-cli chat`` / ``api``), and
``get_stop_token_ids`` gives them native mode's stop ids: the tokenizer's eos plus the
``eos_token_id`` of the model's ``generation_config.json`` (what vLLM stops on).

Importing this module imports neither LF, transformers nor torch.
"""

from __future__ import annotations

import json
import logging
import os
import weakref
from collections.abc import Mapping, Sequence
from typing import Any, Optional

from ..errors import LFTemplateExtError

NAME = "native"
logger = logging.getLogger("llamafactory.lf_template_ext.native")


class NativeModeError(LFTemplateExtError, ValueError):
    """Native mode cannot work with this tokenizer/model (the message names the model and the fix)."""


# -- stop ids ------------------------------------------------------------------------------------


def generation_config_eos(model_path: Optional[str]) -> list[int]:
    """``eos_token_id`` of the model's ``generation_config.json`` (a local dir or the HF cache)."""
    if not model_path:
        return []
    path = os.path.join(model_path, "generation_config.json")
    if not os.path.isfile(path):
        try:
            from transformers.utils import cached_file

            path = cached_file(
                model_path, "generation_config.json", _raise_exceptions_for_missing_entries=False, local_files_only=True
            )
        except Exception:
            return []
        if not path:
            return []
    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f).get("eos_token_id")
    except (OSError, ValueError, AttributeError):
        return []
    values = value if isinstance(value, list) else [value]
    return [int(v) for v in values if isinstance(v, int)]


def stop_token_ids(tokenizer: Any) -> list[int]:
    """The tokenizer's eos, then ``generation_config.json``'s eos ids, without repeats."""
    out: list[int] = []
    for i in [tokenizer.eos_token_id] + generation_config_eos(getattr(tokenizer, "name_or_path", None)):
        if i is not None and i not in out:
            out.append(i)
    return out


# -- the chat template ------------------------------------------------------------------------------


def chat_template_of(tokenizer: Any) -> Optional[str]:
    """The template ``apply_chat_template`` would use without tools, or ``None``."""
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, Mapping):
        template = template.get("default")
    return template if isinstance(template, str) and template.strip() else None


def describe_template(tokenizer: Any) -> str:
    return f"the chat template of {getattr(tokenizer, 'name_or_path', '') or 'this tokenizer'}"


def suggest_template(name_or_path: str) -> Optional[str]:
    """LF's built-in template for this model (LF's own model table), for error messages."""
    from ..lf import compat as lf_compat

    try:
        return lf_compat.suggest_template_for_model(name_or_path or "")
    except Exception:  # a suggestion must never hide the real error
        return None


def _no_template(name: str) -> NativeModeError:
    suggestion = suggest_template(name)
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


def require_chat_template(tokenizer: Any) -> str:
    template = chat_template_of(tokenizer)
    if template is None:
        raise _no_template(getattr(tokenizer, "name_or_path", "") or "this tokenizer")
    return template


def check_model_dir(model_dir: "str | os.PathLike[str]") -> None:
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
    raise _no_template(root)


# -- encoders ---------------------------------------------------------------------------------------

_ENCODERS: "weakref.WeakKeyDictionary[Any, dict[tuple, Any]]" = weakref.WeakKeyDictionary()


def encoder_for(tokenizer: Any, template: Any, data_args: Any = None, overrides: Optional[Mapping[str, Any]] = None):
    """A cached :class:`~lf_template_ext.native.encode.NativeEncoder` for this tokenizer and settings."""
    from ..lf import compat as lf_compat
    from . import options as native_options
    from .encode import LFDataOptions, NativeEncoder
    from .render import ChatRenderer

    require_chat_template(tokenizer)
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
    )
    per_tokenizer = _ENCODERS.setdefault(tokenizer, {})
    encoder = per_tokenizer.get(key)
    if encoder is None:
        infer_seqlen, ignore_index = lf_compat.supervised_helpers()
        renderer = ChatRenderer(tokenizer, template_kwargs=opts.template_kwargs, enable_thinking=thinking)
        encoder = per_tokenizer[key] = NativeEncoder(
            renderer,
            policy=opts.policy,
            data=data,
            infer_seqlen=infer_seqlen,
            ignore_index=ignore_index,
            template_name=describe_template(tokenizer),
            suggest=lambda: suggest_template(getattr(tokenizer, "name_or_path", "")),
        )
    return encoder


def conversation(template: Any, messages: Sequence[Mapping[str, str]], system: Optional[str], tools: Optional[str]):
    """LF's encoder arguments as the engine's request (LF's rule: an empty system -> default system)."""
    from .render import from_lf

    return from_lf(messages, system or getattr(template, "default_system", "") or "", tools)


def sample_name(row: int, messages: Sequence[Mapping[str, str]], datasets: Any = None) -> str:
    first = next((str(m.get("content", "")) for m in messages if str(m.get("role")) == "user"), "")
    first = first if len(first) <= 60 else first[:57] + "..."
    where = f" of dataset {', '.join(datasets) if isinstance(datasets, list) else datasets}" if datasets else ""
    return f"sample {row} of the preprocessing batch{where} (first user message {first!r})"


# -- the template's methods (``native_template.NativeTemplate`` delegates here) ----------------------------


def encode_oneturn(template: Any, tokenizer: Any, messages: Sequence[Mapping[str, str]], system: Any, tools: Any):
    from .layout import NativeLayoutError
    from .render import NativeRenderError

    encoder = encoder_for(tokenizer, template)
    try:
        return encoder.encode_oneturn(conversation(template, messages, system, tools))
    except (NativeRenderError, NativeLayoutError) as e:
        raise encoder.fail(sample_name(0, messages), str(e), "fix or drop this conversation") from e


def encode_multiturn(template: Any, tokenizer: Any, messages: Sequence[Mapping[str, str]], system: Any, tools: Any):
    encoder = encoder_for(tokenizer, template)
    return encoder.pairs(conversation(template, messages, system, tools), sample_name(0, messages))


def ollama_modelfile(tokenizer: Any) -> str:
    lines = ["# ollama modelfile for a `template: native` model: its own chat template (in the GGUF) applies", "FROM ."]
    lines += [f'PARAMETER stop "{tokenizer.convert_ids_to_tokens(i)}"' for i in stop_token_ids(tokenizer)]
    return "\n".join(lines) + "\n"


def is_native(template: Any) -> bool:
    if type(template).__name__ != "NativeTemplate":  # cheap test first: no LF import for other templates
        return False
    from ..lf.native_template import NativeTemplate

    return isinstance(template, NativeTemplate)


def install(template_module: Any) -> None:
    """Register ``template: native`` in LF's ``TEMPLATES`` (idempotent)."""
    from ..lf import compat as lf_compat
    from ..lf.native_template import NativeTemplate

    lf_compat.register_native_template(template_module, NAME, NativeTemplate)


# -- the supervised processors (``native_processors``) ------------------------------------------------------


def install_processors(module: Any) -> None:
    """Batch-encode native conversations in LF's supervised processors (idempotent; see ``native_processors``)."""
    from ..lf.plugin.native_processors import install

    install(module)
