"""A render cache for chat templates: render a conversation's *structure* once, reuse it.

Native mode needs several renderings per conversation (the generation prompt of every
assistant turn, the conversation ending at every turn, the whole), which would cost more
than LF's own encoding. Conversations of a dataset share few structures (roles, tool calls,
tools, number of turns), and chat templates mostly paste message contents into fixed text.

So a structure is rendered once with every message content replaced by a traced string
(:class:`Traced`): a ``str`` whose text is a private marker and which records what the
template does with it. Concatenation and string methods that return text (``strip``,
``split``, ``replace``, ...) yield new traced strings carrying the expression; every answer
the template gets *about* the content (``'</think>' in content``, ``content.startswith``,
``content == ''``, ``content | length``, truthiness) is recorded as a predicate with the
value the real content gives. The output is then a sequence of literal text and
expressions over the contents.

A later conversation with the same structure whose contents give the same answers to every
recorded predicate takes the same path through the template, so its rendering is the
recorded sequence with the expressions evaluated on its contents. Anything the tracer
cannot follow (iterating over the content, hashing it, ``tojson`` or HTML escaping of it,
which break the marker) makes the structure uncacheable: it is rendered for real every
time.

Code that reads a traced string's *text* without calling its methods (a regex, as Jinja's
``wordcount``, ``title`` or ``striptags`` filters do; ``int()``; a literal's method or ``in``
with the content as argument: ``'yes no' in content`` is traced, ``content in 'yes no'`` is
not) would see the marker, not the content, and nothing records it. Two defences:

* the templates that use a filter known to read text that way are never cached
  (:func:`reads_text_untraceably`, checked by ``native_render`` on the template source);
* every traced render is repeated with other texts behind the same traced strings
  (:data:`ALT_BUFFERS`: empty, then digits and words); whatever read the text answers
  differently for them, so a rendering that does not come out as the first one with the
  markers swapped (or takes another path) is not cached. ``''`` is in every string and
  every string starts with it, so untraced ``in``/``startswith``/``replace`` checks flip.

This makes a miss unlikely, not impossible (a read whose answer is the same for the marker
and both alternatives but not for some real content). The caller renders the full
conversation for real and compares (``native_render``), so the input ids never depend on the
cache; a template that inspects content in a way the tracer cannot see is caught there too
and the cache switched off for it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any, Optional

from ..errors import InternalSignal

# Private-use delimiters plus characters that JSON and HTML escaping rewrite: a content passed
# through ``tojson`` or ``escape`` no longer matches and the structure is refused.
_OPEN, _CLOSE = "\ue000", "\ue001"
_MARKER = re.compile(_OPEN + r"(\d+)&\x01" + _CLOSE)

Expr = tuple  # ("leaf", j) | ("lit", s) | ("cat", parts) | ("call", e, name, args, kw) | ("item", e, name, args, kw, i)


class Untraceable(InternalSignal):
    """The template used a content in a way the tracer cannot reproduce."""


def evaluate(expr: Expr, contents: Sequence[str]) -> Any:
    kind = expr[0]
    if kind == "leaf":
        return contents[expr[1]]
    if kind == "lit":
        return expr[1]
    if kind == "cat":
        return "".join(evaluate(p, contents) for p in expr[1])
    if kind == "call":
        _, target, name, args, kw = expr
        return getattr(evaluate(target, contents), name)(*_resolve(args, contents), **dict(kw))
    if kind == "item":
        _, target, name, args, kw, index = expr
        return getattr(evaluate(target, contents), name)(*_resolve(args, contents), **dict(kw))[index]
    raise ValueError(f"unknown expression {kind!r}")


def _resolve(args: tuple, contents: Sequence[str]) -> list[Any]:
    return [evaluate(a[1], contents) if a[0] == "e" else a[1] for a in args]


def marker(i: int) -> str:
    """The text of traced string ``i`` in the render a skeleton is read from."""
    return f"{_OPEN}{i}&\x01{_CLOSE}"


#: The texts behind traced string ``i`` in the repeated renders (see the module docstring).
ALT_BUFFERS: tuple[Callable[[int], str], ...] = (lambda i: "", lambda i: f"{i + 7} x7 Word{i} é 9")

#: Jinja filters that read their argument's text with a regex or a conversion (never via its methods).
TEXT_READING_FILTERS = frozenset(
    {"wordcount", "title", "striptags", "urlize", "wordwrap", "int", "float", "format", "filesizeformat", "urlencode", "xmlattr"}
)


def reads_text_untraceably(template: str) -> Optional[str]:
    """The first text-reading filter (or test) the template uses, or ``None``.

    The template is parsed with plain Jinja; one it cannot parse (an engine-specific tag) is
    left to the repeated renders.
    """
    try:
        from jinja2 import Environment, nodes

        ast = Environment(extensions=["jinja2.ext.loopcontrols"]).parse(template)
    except Exception:
        return None
    for node in ast.find_all((nodes.Filter, nodes.Test)):
        if node.name in TEXT_READING_FILTERS:
            return node.name
    return None


class Tracer:
    """Collects the expressions and predicates of one traced render."""

    def __init__(self, buffer: Callable[[int], str] = marker) -> None:
        self.exprs: list[Expr] = []
        self.predicates: list[tuple[Expr, str, tuple, Any]] = []
        self.buffer = buffer

    def traced(self, expr: Expr, actual: str) -> "Traced":
        self.exprs.append(expr)
        obj = str.__new__(Traced, self.buffer(len(self.exprs) - 1))
        obj.__dict__.update(expr=expr, actual=actual, tracer=self)
        return obj

    def record(self, target: Expr, op: str, args: tuple, result: Any) -> Any:
        self.predicates.append((target, op, args, result))
        return result


def _arg(value: Any) -> tuple:
    if isinstance(value, Traced):
        return ("e", value.expr)
    if isinstance(value, (str, int, float, bool, type(None))):
        return ("v", value)
    if isinstance(value, tuple) and all(isinstance(v, str) and not isinstance(v, Traced) for v in value):
        return ("v", value)  # startswith(("a", "b"))
    raise Untraceable(f"argument of type {type(value).__name__}")


def _actual(value: Any) -> Any:
    return value.actual if isinstance(value, Traced) else value


_TEXT_METHODS = frozenset(
    name for name in dir(str) if not name.startswith("_") and callable(getattr(str, name))
) - {"join", "format", "format_map", "maketrans", "encode", "translate"}


class Traced(str):
    """A message content inside a traced render (see the module docstring)."""

    def __getattribute__(self, name: str) -> Any:
        if name in _TEXT_METHODS:
            return _method(self, name)
        if name in ("join", "format", "format_map", "encode", "translate"):
            raise Untraceable(f"content.{name}")
        return object.__getattribute__(self, name)

    # -- text: concatenation stays traced -------------------------------------------------
    def __str__(self) -> str:
        return self  # ``str(content)`` (jinja's filters call it) stays traced

    def __format__(self, spec: str) -> str:
        if spec:
            raise Untraceable("format spec on content")
        return str.__str__(self)

    def __add__(self, other: Any) -> "Traced":
        if not isinstance(other, str):
            return NotImplemented
        d = self.__dict__
        return d["tracer"].traced(("cat", (d["expr"], _arg_expr(other))), d["actual"] + _actual(other))

    def __radd__(self, other: Any) -> "Traced":
        if not isinstance(other, str):
            return NotImplemented
        d = self.__dict__
        return d["tracer"].traced(("cat", (_arg_expr(other), d["expr"])), _actual(other) + d["actual"])

    def __getitem__(self, key: Any) -> "Traced":
        if not isinstance(key, (int, slice)) or isinstance(key, bool):
            raise Untraceable(f"content[{type(key).__name__}]")
        d = self.__dict__
        return d["tracer"].traced(("call", d["expr"], "__getitem__", (("v", key),), ()), d["actual"][key])

    # -- questions about the content: recorded with the real answer ---------------------------
    def _ask(self, op: str, args: tuple, fn: Callable[..., Any]) -> Any:
        d = self.__dict__
        return d["tracer"].record(d["expr"], op, tuple(_arg(a) for a in args), fn(d["actual"], *map(_actual, args)))

    def __contains__(self, item: Any) -> bool:
        return self._ask("__contains__", (item,), lambda s, x: x in s)

    def __len__(self) -> int:
        return self._ask("__len__", (), len)

    def __eq__(self, other: Any) -> bool:  # type: ignore[override]
        if not isinstance(other, str):
            return False
        return self._ask("__eq__", (other,), lambda s, x: s == x)

    def __ne__(self, other: Any) -> bool:  # type: ignore[override]
        return not self.__eq__(other)

    def __lt__(self, other: Any) -> bool:
        return self._ask("__lt__", (other,), lambda s, x: s < x)

    def __le__(self, other: Any) -> bool:
        return self._ask("__le__", (other,), lambda s, x: s <= x)

    def __gt__(self, other: Any) -> bool:
        return self._ask("__gt__", (other,), lambda s, x: s > x)

    def __ge__(self, other: Any) -> bool:
        return self._ask("__ge__", (other,), lambda s, x: s >= x)

    # -- what cannot be followed ---------------------------------------------------------------
    def __hash__(self) -> int:
        raise Untraceable("hash(content)")

    def __iter__(self):
        raise Untraceable("iterating over content")

    def __mod__(self, other: Any):
        raise Untraceable("content % ...")

    def __rmod__(self, other: Any):
        raise Untraceable("... % content")

    def __mul__(self, other: Any):
        raise Untraceable("content * n")

    __rmul__ = __mul__

    def __reduce__(self):
        raise Untraceable("copying content")


def _arg_expr(value: str) -> Expr:
    return value.__dict__["expr"] if isinstance(value, Traced) else ("lit", str(value))


def _method(obj: Traced, name: str) -> Callable[..., Any]:
    d = obj.__dict__

    def call(*args: Any, **kwargs: Any) -> Any:
        spec = tuple(_arg(a) for a in args)
        kw = tuple(sorted((k, _arg(v)[1]) for k, v in kwargs.items()))
        if any(isinstance(v, Traced) for v in kwargs.values()):
            raise Untraceable(f"content.{name} with a content keyword argument")
        result = getattr(d["actual"], name)(*map(_actual, args), **kwargs)
        tracer: Tracer = d["tracer"]
        if isinstance(result, str):
            return tracer.traced(("call", d["expr"], name, spec, kw), result)
        if isinstance(result, list) and all(isinstance(r, str) for r in result):
            tracer.record(d["expr"], f"len:{name}", spec + (("v", kw),), len(result))
            return [tracer.traced(("item", d["expr"], name, spec, kw, i), r) for i, r in enumerate(result)]
        if isinstance(result, tuple) and all(isinstance(r, str) for r in result):  # partition
            tracer.record(d["expr"], f"len:{name}", spec + (("v", kw),), len(result))
            return tuple(tracer.traced(("item", d["expr"], name, spec, kw, i), r) for i, r in enumerate(result))
        if isinstance(result, (bool, int)):
            return tracer.record(d["expr"], f"call:{name}", spec + (("v", kw),), result)
        raise Untraceable(f"content.{name} returned {type(result).__name__}")

    return call


def check_predicate(pred: tuple[Expr, str, tuple, Any], contents: Sequence[str]) -> bool:
    """Does ``contents`` give the recorded answer to this predicate?"""
    target, op, args, expected = pred
    value = evaluate(target, contents)
    if op.startswith("len:") or op.startswith("call:"):
        name = op.split(":", 1)[1]
        *plain, kw = args
        result = getattr(value, name)(*_resolve(tuple(plain), contents), **dict(kw[1]))
        if op.startswith("len:"):
            result = len(result)
        return bool(result == expected) and type(result) is type(expected)
    resolved = _resolve(args, contents)
    if op == "__len__":
        return len(value) == expected
    if op == "__contains__":
        return (resolved[0] in value) == expected
    return getattr(str, op)(value, *resolved) == expected


class Skeleton:
    """One traced rendering: literal text and expressions, valid under its predicates."""

    __slots__ = ("segments", "predicates", "_literal_len", "_leaves", "_exprs")

    def __init__(self, output: str, tracer: Tracer) -> None:
        parts: list[Any] = []
        pos = 0
        for m in _MARKER.finditer(output):
            if m.start() > pos:
                parts.append(("lit", output[pos : m.start()]))
            parts.append(tracer.exprs[int(m.group(1))])
            pos = m.end()
        if pos < len(output):
            parts.append(("lit", output[pos:]))
        segments = _flatten(parts)
        for seg in segments:
            if isinstance(seg, str) and (_OPEN in seg or _CLOSE in seg):
                raise Untraceable("a content was escaped or serialised (tojson, escape)")
        self.segments = tuple(segments)
        self.predicates = tuple(tracer.predicates)
        # what length() sums: literal text once, then the contents used whole, then the rest
        self._literal_len = sum(len(s) for s in self.segments if type(s) is str)
        self._leaves = tuple(s[1] for s in self.segments if type(s) is not str and s[0] == "leaf")
        self._exprs = tuple(s for s in self.segments if type(s) is not str and s[0] != "leaf")

    def applies(self, contents: Sequence[str]) -> bool:
        try:
            return all(check_predicate(p, contents) for p in self.predicates)
        except Exception:  # a method that raises on these contents: not the same path
            return False

    def length(self, contents: Sequence[str]) -> int:
        """``len(self.fill(contents))`` without building the text."""
        n = self._literal_len
        for j in self._leaves:
            n += len(contents[j])
        for expr in self._exprs:
            n += len(evaluate(expr, contents))
        return n

    def prefix_of(self, other: "Skeleton") -> bool:
        """Is every filling of ``self`` a prefix of the same filling of ``other``, whatever the contents?"""
        a, b = self.segments, other.segments
        if len(a) > len(b):
            return False
        for i, (x, y) in enumerate(zip(a, b, strict=False)):  # len(a) <= len(b)
            if x != y:
                return i == len(a) - 1 and type(x) is str and type(y) is str and y.startswith(x)
        return True

    def fill(self, contents: Sequence[str]) -> str:
        return "".join(
            s if type(s) is str else contents[s[1]] if s[0] == "leaf" else evaluate(s, contents) for s in self.segments
        )


def _flatten(parts: Sequence[Expr]) -> list[Any]:
    """Concatenations spelled out, adjacent literals merged: ``str`` literals and leaf/call expressions."""
    out: list[Any] = []

    def walk(expr: Expr) -> None:
        if expr[0] == "cat":
            for p in expr[1]:
                walk(p)
        elif expr[0] == "lit":
            if out and type(out[-1]) is str:
                out[-1] += expr[1]
            elif expr[1]:
                out.append(expr[1])
        else:
            out.append(expr)

    for p in parts:
        walk(p)
    return out


def structure_key(message: dict[str, Any]) -> Any:
    """Everything of a message a template may branch on, except its content."""
    if len(message) == 2 and type(message.get("content")) is str and type(message.get("role")) is str:
        return message["role"]  # the common case, cheap
    items = []
    for k in sorted(message):
        if k == "content":
            c = message[k]
            items.append((k, "str" if isinstance(c, str) else repr(c)))
        else:
            items.append((k, json.dumps(message[k], sort_keys=True, ensure_ascii=False, default=str)))
    return tuple(items)


def traceable_contents(messages: Sequence[dict[str, Any]]) -> Optional[list[str]]:
    """The contents to trace (``None`` when a content is not a plain string or holds a marker)."""
    contents = []
    for m in messages:
        c = m.get("content")
        if c is None:
            contents.append("")
            continue
        if type(c) is not str or _OPEN in c or _CLOSE in c:
            return None
        contents.append(c)
    return contents


def traced_messages(messages: Sequence[dict[str, Any]], contents: Sequence[str], tracer: Tracer) -> list[dict]:
    out = []
    for j, m in enumerate(messages):
        if isinstance(m.get("content"), str):
            m = dict(m, content=tracer.traced(("leaf", j), contents[j]))
        out.append(m)
    return out


class SkeletonCache:
    """Skeletons per structure key, a few variants each (different predicate answers)."""

    MAX_VARIANTS = 8
    MAX_KEYS = 4096

    def __init__(self, render: Callable[[list[dict], Any, bool], str]) -> None:
        self._render = render  # render(messages, tools, add_generation_prompt) with the real template
        self._entries: dict[Any, list[Skeleton]] = {}
        self._refused: set = set()
        self.enabled = True
        self.hits = 0
        self.misses = 0

    def lookup(self, key: Any, contents: Sequence[str]) -> Optional[Skeleton]:
        """The skeleton that renders ``contents`` under ``key``, if one is cached."""
        if not self.enabled:
            return None
        for sk in self._entries.get(key, ()):
            if sk.applies(contents):
                self.hits += 1
                return sk
        return None

    def render(self, key: Any, messages: list[dict], tools: Any, contents: Optional[Sequence[str]], agp: bool) -> str:
        if not self.enabled or contents is None or key in self._refused:
            return self._render(messages, tools, agp)
        variants = self._entries.get(key)
        if variants:
            for sk in variants:
                if sk.applies(contents):
                    self.hits += 1
                    return sk.fill(contents)
        self.misses += 1
        real = self._render(messages, tools, agp)  # raises the template's own error, if any
        tracer = Tracer()
        try:
            output = self._render(traced_messages(messages, contents, tracer), tools, agp)
            skeleton = Skeleton(output, tracer)
            same = skeleton.fill(contents) == real and self._text_unread(output, tracer, messages, tools, contents, agp)
        except Exception:  # Untraceable, or the template choked on a traced content
            same = False
        if not same:
            if len(self._refused) >= self.MAX_KEYS:
                self._refused.clear()
            self._refused.add(key)
            return real
        if variants is None:
            if len(self._entries) >= self.MAX_KEYS:
                self._entries.pop(next(iter(self._entries)))
            variants = self._entries[key] = []
        if len(variants) < self.MAX_VARIANTS:
            variants.append(skeleton)
        return real

    def _text_unread(
        self, output: str, tracer: Tracer, messages: list[dict], tools: Any, contents: Sequence[str], agp: bool
    ) -> bool:
        """Does the render come out the same, markers swapped, with other texts behind the traced strings?"""
        for buffer in ALT_BUFFERS:
            alt = Tracer(buffer)
            alt_output = self._render(traced_messages(messages, contents, alt), tools, agp)
            expected = _MARKER.sub(lambda m: buffer(int(m.group(1))), output)
            if alt_output != expected or alt.exprs != tracer.exprs or alt.predicates != tracer.predicates:
                return False
        return True
