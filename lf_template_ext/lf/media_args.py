"""LF's side of the resolution record: which mm plugin a template uses, and LF's media arguments.

Why here: only ``lf/`` imports llamafactory. The training hook records the plugin name and
``model_args``' media fields (``model.media_args.MediaArgs``); repair and check ask which plugin a
template has when the record does not say (a dir trained without the hook).
"""

from __future__ import annotations

from typing import Any, Optional

from ..model.media_args import MediaArgs


def plugin_name(mm_plugin: Any) -> Optional[str]:
    """The key of ``llamafactory.data.mm_plugin.PLUGINS`` for a template's plugin object (None: ``base``,
    a text-only template, or a plugin class LF's table does not list)."""
    from llamafactory.data.mm_plugin import PLUGINS

    if mm_plugin is None:
        return None
    for name, cls in PLUGINS.items():
        if type(mm_plugin) is cls:
            return None if name == "base" else name
    return None


def template_plugin(template: str) -> Optional[str]:
    """The mm plugin name of LF template ``template`` (None: text-only or not an LF template)."""
    from .compat import template_module

    tpl = template_module().TEMPLATES.get(template)
    return plugin_name(getattr(tpl, "mm_plugin", None)) if tpl is not None else None


def media_of(model_args: Any) -> MediaArgs:
    """LF's ``ModelArguments`` (its ``ProcessorArguments`` fields) as :class:`MediaArgs`."""
    return MediaArgs.from_obj(model_args)
