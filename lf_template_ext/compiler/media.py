"""Content parts in the compiled Jinja: text parts joined, media parts as the plugin's unexpanded placeholder.

A template whose LF plugin takes media renders a list ``content`` part by part, in order: a ``text`` part is
its text, an image/video/audio part is what ``model/media.py`` says the engine's processor expands into LF's
expansion; text parts are joined with nothing between them (LF's API and dataset convention: the tags sit
where the parts were). A part of a kind the plugin has no placeholder for raises, naming template and kind.

The loop over ``message["content"]`` is also what makes vLLM pick its "openai" content format for the
template (it then passes parts instead of flattening them); text-only templates keep the string-only check
(and vLLM's "string" format), so their output is unchanged.
"""

from __future__ import annotations

from ..model.media import KINDS, part_types_of, plan
from ..model.spec import TemplateSpec
from .jinja_text import JinjaWriter, lit

PREFIX = "lf-template-ext"


def takes_parts(spec: TemplateSpec) -> bool:
    """Whether the compiled template renders list content (the template has an LF multimodal plugin)."""
    return spec.media is not None


def state_fields(spec: TemplateSpec) -> list[str]:
    """The ``lf`` namespace fields the parts loop needs: the joined text and one counter per kind."""
    if not takes_parts(spec):
        return []
    return ['parts=""'] + [f"n_{k}=0" for k in KINDS]


def _msg(spec: TemplateSpec, text: str) -> str:
    return lit(f"{PREFIX} (LF template '{spec.name}'): {text}")


def write_system_parts(w: JinjaWriter, spec: TemplateSpec) -> None:
    """The system message as parts (vLLM's "openai" content format sends every content as a list): its
    text parts joined; LF's system string has no media (its plugin only reads the turns)."""
    w.open('for part in messages[0]["content"]')
    w.open('if part["type"] == "text"')
    w.stmt('set lf.system = lf.system ~ (part["text"] if part["text"] is string else "")')
    w.mid("else")
    w.out(
        "raise_exception("
        + _msg(spec, "the system message can only hold text parts (LF's system prompt has no media); got ")
        + ' ~ part["type"])'
    )
    w.close("endif")
    w.close("endfor")


def write_parts(w: JinjaWriter, spec: TemplateSpec) -> None:
    """Set ``content`` from a list of content parts (inside the message loop, after the string case)."""
    w.stmt('set lf.parts = ""')
    w.open('for part in message["content"]')
    w.open('if part["type"] == "text"')
    w.stmt('set lf.parts = lf.parts ~ (part["text"] if part["text"] is string else "")')
    for kind in KINDS:
        types = ", ".join(lit(t) for t in part_types_of(kind))
        w.mid(f'elif part["type"] in [{types}]')
        p = plan(spec.media, kind)
        if not p.ok:
            w.out(
                "raise_exception("
                + _msg(spec, f"{kind} content parts cannot be rendered: {p.reason} (docs/multimodal.md)")
                + ")"
            )
            continue
        w.stmt(f"set lf.n_{kind} = lf.n_{kind} + 1")
        if p.numbered:
            w.stmt(f"set lf.parts = lf.parts ~ {lit(p.head)} ~ lf.n_{kind} ~ {lit(p.tail)}")
        else:
            w.stmt(f"set lf.parts = lf.parts ~ {lit(p.head)}")
    w.mid("else")
    w.out(
        "raise_exception("
        + _msg(spec, "unknown content part type ")
        + ' ~ part["type"] ~ '
        + lit(" (text, image/image_url, video/video_url, audio/input_audio/audio_url are rendered)")
        + ")"
    )
    w.close("endif")
    w.close("endfor")
    w.stmt("set content = lf.parts")
