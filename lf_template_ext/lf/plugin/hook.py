"""What ``LF_TEMPLATE_EXT=1`` turns on inside LLaMA-Factory.

The installed ``lf_template_ext.pth`` runs one line at interpreter start: if the variable is
``1``/``true``/``y`` (LF's own ``is_env_enabled`` rule) it calls :func:`install`; otherwise
it imports nothing and only wraps ``sys.excepthook`` to add one line to an uncaught ``ValueError``
that names a ``template_ext_*`` key (LF's argument parser refusing our YAML keys): "run with
LF_TEMPLATE_EXT=1". :func:`install` imports nothing of LF, transformers or torch: it adds
an import hook that patches LF modules *when they load*, so every process that runs LF
(``llamafactory-cli``, ``lmf``, torchrun workers re-executing ``launcher.py``, the WebUI and
its training subprocesses) gets the same behaviour without extra flags.

Patches (each idempotent, each a thin wrapper around LF's own function):

* ``llamafactory.hparams.parser.read_args``: strips ``template_ext_*`` keys from the YAML /
  CLI arguments before LF's argument parser (which rejects unknown keys) sees them, and
  keeps them in :data:`OPTIONS`; remembers which template/option keys the user wrote
  (``STATE.given_keys``: at export, only those override what training recorded);
* ``llamafactory.data.get_template_and_fix_tokenizer``: remembers the data arguments, the
  template and the tokenizer's extra special tokens *before* LF's fixing (on transformers 5
  LF replaces the whole list); with ``template_ext_tokenize: whole`` it hands LF the template
  wrapped by ``lf.whole_template.wrap`` (the compiled template tokenized whole);
* ``llamafactory.data.template``: registers ``template: native`` (``lf_template_ext.lf.native_template``)
  and keeps ``get_ollama_modelfile`` from crashing on dict slots (chatglm3, yuan);
* ``llamafactory.train.tuner.export_model`` (and the WebUI's bound copy): after LF's export,
  repairs ``export_dir`` (``lf_template_ext.workflows.repair``) and pushes the rewritten files when
  ``export_hub_model_id`` is set; in the WebUI each Export click starts with no ``template_ext_*``
  options but its own (the process outlives the click);
* LF's v1 path (``USE_V1=1``: ``llamafactory.v1.launcher``, ``...core.base_trainer``, ``...model_plugins.peft``):
  a start-up line saying what is covered, the record at ``sft``, the repair at ``merge`` (``v1_hooks``);
* ``llamafactory.train.tuner.run_exp``: adds a callback that writes the train-time record
  ``lf_template_ext.json`` into ``output_dir`` and fixes every saved checkpoint; once LF has saved
  the final model, fixes ``output_dir`` the same way and prints a three-line summary.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
import threading
from typing import Any, Callable, Optional

from ...model.generation import SAMPLING_KEYS
from ...model.options import EXTENSION_OPTIONS, KEY_PREFIX, RESOLVED_KEYS

ENV = "LF_TEMPLATE_EXT"
#: ``template_ext_*`` options stripped from LF's arguments (YAML keys or ``--template_ext_x v``): the
#: one store every reader uses (``model.options.EXTENSION_OPTIONS``).
OPTIONS = EXTENSION_OPTIONS


class _State:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.data_args: Any = None
        self.model_args: Any = None
        self.template: Any = None
        self.extra_tokens_before_fix: Optional[list[str]] = None
        self.base_tokenizer_path: Optional[str] = None
        #: set by the training callback at ``on_train_end`` (main process): the dir to repair once LF saved it
        self.trained_output_dir: Optional[str] = None
        self.checkpoints_fixed = 0
        self.checkpoints_failed = 0
        #: the template and option keys the user wrote in LF's raw arguments (YAML / CLI), as read by
        #: ``read_args`` before LF's parser fills in its defaults; None: ``read_args`` has not run
        self.given_keys: Optional[frozenset[str]] = None
        #: the sampling keys (LF's generating arguments, ``model.generation``) the user wrote, and LF's parsed values
        self.given_sampling: frozenset[str] = frozenset()
        self.generating_args: Any = None
        #: LF's media arguments of the training run (``model.media_args.MediaArgs``, from ``get_train_args``'
        #: model arguments); the record keeps them when the template has an mm plugin
        self.train_media: Any = None


STATE = _State()
_installed = False


def enabled(environ: Optional[dict[str, str]] = None) -> bool:
    """LF's ``is_env_enabled`` rule: ``1``, ``true`` or ``y``, case-insensitive."""
    env = os.environ if environ is None else environ
    return env.get(ENV, "0").lower() in ("true", "y", "1")


def _warn(message: str) -> None:
    print(f"[lf-template-ext] {message}", file=sys.stderr)


# -- the import hook ---------------------------------------------------------------------------


class _PatchingLoader(importlib.abc.Loader):
    def __init__(self, inner: importlib.abc.Loader, patch: Callable[[Any], None]) -> None:
        self.inner = inner
        self.patch = patch

    def create_module(self, spec):  # noqa: D401 - importlib API
        return self.inner.create_module(spec) if hasattr(self.inner, "create_module") else None

    def exec_module(self, module) -> None:
        self.inner.exec_module(module)
        try:
            self.patch(module)
        except Exception as e:  # never break LF because of us
            _warn(f"could not patch {module.__name__}: {type(e).__name__}: {e}")

    def __getattr__(self, name: str) -> Any:  # get_data, is_package, ... for tools that ask
        return getattr(self.inner, name)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        patch = _PATCHES.get(fullname)
        if patch is None:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _PatchingLoader(spec.loader, patch)
                return spec
        return None


def install() -> None:
    """Install the import hook (and patch LF modules that are already imported)."""
    global _installed
    if _installed:
        return
    _installed = True
    sys.meta_path.insert(0, _Finder())
    for name, patch in _PATCHES.items():
        module = sys.modules.get(name)
        if module is not None:
            try:
                patch(module)
            except Exception as e:
                _warn(f"could not patch {name}: {type(e).__name__}: {e}")


def _version_ok() -> bool:
    """Active for every LF ``lf.compat.check_version`` accepts, untested versions included: there the
    gate (``verifier.gate``) decides per template at export time; inactive only without LF or below the
    oldest tested release (docs/lf-versions.md)."""
    from ...errors import UnsupportedLFVersionError
    from .. import compat as lf_compat

    try:
        lf_compat.check_version()
    except UnsupportedLFVersionError as e:
        _warn(f"inactive: {e}")
        return False
    return True


# -- argument stripping ----------------------------------------------------------------------


def strip_options(args: Any) -> Any:
    """Remove ``template_ext_*`` keys from LF's parsed arguments, recording them in OPTIONS."""
    if isinstance(args, dict):
        ours = {k: v for k, v in args.items() if isinstance(k, str) and k.startswith(KEY_PREFIX)}
        if not ours:
            return args
        OPTIONS.update(ours)
        return {k: v for k, v in args.items() if k not in ours}
    if isinstance(args, list):
        out: list[str] = []
        i = 0
        while i < len(args):
            a = args[i]
            if isinstance(a, str) and a.startswith("--" + KEY_PREFIX):
                name = a[2:]
                if "=" in name:
                    key, value = name.split("=", 1)
                    i += 1
                else:
                    key, value = name, (args[i + 1] if i + 1 < len(args) else "")
                    i += 2
                OPTIONS[key] = value
                continue
            out.append(a)
            i += 1
        return out
    return args


def given_keys(args: Any, keys: Any = RESOLVED_KEYS) -> frozenset[str]:
    """The ``keys`` (default: the template and option keys, ``RESOLVED_KEYS``) written in LF's raw arguments:
    a YAML/JSON dict (with ``key=value`` overrides merged in by LF) or a ``--key value`` / ``--key=value`` list."""
    if isinstance(args, dict):
        return frozenset(k for k in args if k in keys)
    if isinstance(args, list):
        names = (a[2:].split("=", 1)[0] for a in args if isinstance(a, str) and a.startswith("--"))
        return frozenset(n for n in names if n in keys)
    return frozenset()


def _patch_parser(module: Any) -> None:
    if getattr(module.read_args, "_lf_template_ext", False):
        return
    original = module.read_args

    def read_args(args=None):
        result = strip_options(original(args))
        STATE.given_keys = given_keys(result)
        STATE.given_sampling = given_keys(result, SAMPLING_KEYS)
        return result

    read_args._lf_template_ext = True  # type: ignore[attr-defined]
    module.read_args = read_args
    module.get_train_args = _wrap_get_train_args(module.get_train_args)


def _wrap_get_train_args(original: Callable) -> Callable:
    """Keep the training run's media arguments (``image_max_pixels``...: LF's ``ProcessorArguments``, part of
    its model arguments) for the record (``export._record_for_training``)."""
    if getattr(original, "_lf_template_ext", False):
        return original

    def get_train_args(args=None):
        result = original(args)
        from ..media_args import media_of

        STATE.train_media = media_of(result[0])
        return result

    get_train_args._lf_template_ext = True  # type: ignore[attr-defined]
    get_train_args.__wrapped__ = original  # type: ignore[attr-defined]
    return get_train_args


# -- template capture --------------------------------------------------------------------------


def _extra_special_tokens(tokenizer: Any) -> Optional[list[str]]:
    for attr in ("extra_special_tokens", "additional_special_tokens"):
        value = getattr(tokenizer, attr, None)
        if isinstance(value, (list, tuple)):
            return [str(t) for t in value]
    return None


def _wrap_get_template(original: Callable) -> Callable:
    if getattr(original, "_lf_template_ext", False):
        return original

    def get_template_and_fix_tokenizer(tokenizer, data_args):
        with STATE.lock:
            STATE.extra_tokens_before_fix = _extra_special_tokens(tokenizer)
            STATE.base_tokenizer_path = getattr(tokenizer, "name_or_path", None)
            STATE.data_args = data_args
        template = original(tokenizer, data_args)
        template = _maybe_whole(template, tokenizer, data_args)
        STATE.template = template
        return template

    get_template_and_fix_tokenizer._lf_template_ext = True  # type: ignore[attr-defined]
    get_template_and_fix_tokenizer.__wrapped__ = original  # type: ignore[attr-defined]
    return get_template_and_fix_tokenizer


def _maybe_whole(template: Any, tokenizer: Any, data_args: Any) -> Any:
    """``template_ext_tokenize: whole``: LF's template, encoding with the compiled template tokenized whole
    (``lf.whole_template``); native mode already tokenizes whole, so it is left alone."""
    from ...native.mode import is_native
    from ...native.whole import tokenize_mode

    if is_native(template) or tokenize_mode() != "whole":
        return template
    from .. import whole_template

    return whole_template.wrap(template, tokenizer, data_args)


def _patch_data(module: Any) -> None:
    if not _version_ok():
        return
    module.get_template_and_fix_tokenizer = _wrap_get_template(module.get_template_and_fix_tokenizer)
    tmod = sys.modules.get("llamafactory.data.template")
    if tmod is not None:
        tmod.get_template_and_fix_tokenizer = module.get_template_and_fix_tokenizer


def _patch_template(module: Any) -> None:
    if not _version_ok():
        return
    from .. import native_template

    native_template.install(module)
    original = module.Template.get_ollama_modelfile
    if getattr(original, "_lf_template_ext", False):
        return

    def get_ollama_modelfile(self, tokenizer):
        try:
            return original(self, tokenizer)
        except ValueError as e:  # dict slots ("Dict is not supported."): stock LF crashes here
            return (
                "# ollama modelfile: LLaMA-Factory could not write one for this template "
                f"({e}); lf-template-ext writes a Modelfile when `template_ext_engines` includes ollama\n"
            )

    get_ollama_modelfile._lf_template_ext = True  # type: ignore[attr-defined]
    module.Template.get_ollama_modelfile = get_ollama_modelfile


def _patch_processors(module: Any) -> None:
    from . import native_processors

    native_processors.install(module)


# -- export -------------------------------------------------------------------------------------


def _wrap_export(original: Callable) -> Callable:
    if getattr(original, "_lf_template_ext", False):
        return original

    def export_model(args=None):
        tuner = sys.modules["llamafactory.train.tuner"]
        get_infer = tuner.get_infer_args

        def capture_infer_args(a=None):
            result = get_infer(a)
            STATE.model_args = result[0]
            STATE.generating_args = result[3] if len(result) > 3 else None
            return result

        tuner.get_infer_args = capture_infer_args
        try:
            original(args)
        finally:
            tuner.get_infer_args = get_infer
        from .export import post_export

        post_export(STATE, OPTIONS)

    export_model._lf_template_ext = True  # type: ignore[attr-defined]
    export_model.__wrapped__ = original  # type: ignore[attr-defined]
    return export_model


def _wrap_run_exp(original: Callable) -> Callable:
    if getattr(original, "_lf_template_ext", False):
        return original

    def run_exp(args=None, callbacks=None):
        from .export import finish_training, train_callback

        callbacks = list(callbacks or [])
        callbacks.append(train_callback(STATE, OPTIONS))
        result = original(args, callbacks)
        finish_training(STATE, OPTIONS)  # LF has saved the final model into output_dir by now
        return result

    run_exp._lf_template_ext = True  # type: ignore[attr-defined]
    run_exp.__wrapped__ = original  # type: ignore[attr-defined]
    return run_exp


def _patch_tuner(module: Any) -> None:
    if not _version_ok():
        return
    module.export_model = _wrap_export(module.export_model)
    module.run_exp = _wrap_run_exp(module.run_exp)
    webui_export = sys.modules.get("llamafactory.webui.components.export")
    if webui_export is not None:
        webui_export.export_model = module.export_model


def _wrap_webui_export(export: Callable) -> Callable:
    """One Export click is one command: the web UI process lives on, so the ``template_ext_*`` options an
    earlier click (or the Chat tab) put into :data:`OPTIONS` are cleared first; the click's own options
    (the Export tab's "Extra arguments") are read again by ``read_args``, as ``llamafactory-cli export`` reads its YAML."""
    if getattr(export, "_lf_template_ext_webui", False):
        return export

    def export_model(args=None):
        OPTIONS.clear()
        return export(args)

    export_model._lf_template_ext = True  # type: ignore[attr-defined]
    export_model._lf_template_ext_webui = True  # type: ignore[attr-defined]
    export_model.__wrapped__ = export  # type: ignore[attr-defined]
    return export_model


def _patch_webui_export(module: Any) -> None:
    if not _version_ok():
        return
    module.export_model = _wrap_webui_export(_wrap_export(module.export_model))


def _patch_v1(name: str) -> Callable[[Any], None]:
    """LF's v1 path (``USE_V1=1``): ``lf.plugin.v1_hooks``."""

    def patch(module: Any) -> None:
        from . import v1_hooks

        getattr(v1_hooks, name)(module)

    return patch


_PATCHES: dict[str, Callable[[Any], None]] = {
    "llamafactory.hparams.parser": _patch_parser,
    "llamafactory.data": _patch_data,
    "llamafactory.data.template": _patch_template,
    "llamafactory.data.processor.supervised": _patch_processors,
    "llamafactory.data.processor.pairwise": _patch_processors,
    "llamafactory.train.tuner": _patch_tuner,
    "llamafactory.webui.components.export": _patch_webui_export,
    "llamafactory.v1.launcher": _patch_v1("patch_launcher"),
    "llamafactory.v1.core.base_trainer": _patch_v1("patch_base_trainer"),
    "llamafactory.v1.plugins.model_plugins.peft": _patch_v1("patch_peft"),
}
