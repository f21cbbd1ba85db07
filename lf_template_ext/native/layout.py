"""Where each assistant turn's trainable text lies, found by comparing renderings (pure).

Native mode trains on ``apply_chat_template`` renderings. For a conversation with assistant
turns ``0..n-1`` (OpenAI shape, ``a_k`` the index of turn ``k``'s message) it uses:

* ``P_k = render(messages[:a_k], add_generation_prompt=True)``: the prompt an engine sends
  to generate turn ``k``;
* ``S_k = render(messages[:a_k + 1])``: the conversation that ends with turn ``k``
  (``S_{n-1}`` is the full rendering ``T``).

What the model must produce for turn ``k`` is the answer as ``S_k`` renders it, after the
prompt: normally ``S_k[len(P_k):]`` (see :func:`answer_start` for templates whose ``S_k``
renders the prompt part differently). Trained alone, turn ``k`` is the example
``P_k + answer`` (:func:`turn_example`): the engine's prompt and what the model generates.

Turn ``k`` can be trained *inside* ``T`` (render once) when ``T`` shows it exactly as the
engine generated it: ``P_k`` is a prefix of ``T`` and ``S_k`` and ``T`` agree up to the end
of the turn, where the end is their longest common prefix (moved back to the start of a
special token it would cut) and whatever ``S_k`` has after it is only an end-of-conversation
trailer (special tokens and whitespace, e.g. Phi-3's final ``<|endoftext|>``). The label
span is then ``T[len(P_k):end]`` (docs/contracts.md: from the generation prompt up to the start of
the next turn, so it covers inserted thought blocks and the newline after the end-of-turn
token); the last turn's span runs to the end of ``T``.

A template is *prefix-stable* for a conversation when every turn passes. When one does not
(Qwen3 drops the thoughts of earlier turns and gives only the last one an empty
``<think></think>``; Mistral v0.3 moves the system prompt to the last user turn), the policy
(``native_options``) decides: train it in its own example, leave it untrained, or refuse.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Optional

from ..errors import ConversationError

EXCERPT = 40


class NativeLayoutError(ConversationError):
    """A conversation cannot be trained so that training equals serving (``turn`` is 0-based)."""

    def __init__(self, turn: int, reason: str) -> None:
        self.turn = turn
        self.reason = reason
        super().__init__(f"assistant turn {turn + 1}: {reason}")


class GenerationPromptError(NativeLayoutError):
    """The engine's prompt ``P_k`` is not continued by the answer's rendering ``S_k`` (see :func:`answer_start`)."""


class UnstableTurnError(NativeLayoutError):
    """Policy ``strict`` and a turn whose rendering changes once later turns follow."""


def common_prefix(a: str, b: str) -> int:
    """Length of the longest common prefix (C-speed slice compares, O(n log n))."""
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    lo, hi = 0, n  # a[:lo] == b[:lo], a[:hi] != b[:hi]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid
    return lo


def excerpt(text: str, at: int) -> str:
    return repr(text[max(0, at - 10) : at + EXCERPT])


class SpecialText:
    """The tokenizer's added/special token strings, for snapping offsets and spotting trailers."""

    def __init__(self, tokens: Iterable[str]) -> None:
        toks = sorted({t for t in tokens if t}, key=len, reverse=True)
        self.longest = max((len(t) for t in toks), default=0)
        self._re = re.compile("|".join(re.escape(t) for t in toks)) if toks else None

    def snap(self, pos: int, texts: Sequence[str]) -> int:
        """Move ``pos`` back to the start of any special token (in any of ``texts``) it cuts."""
        if self._re is None:
            return pos
        moved = True
        while moved and pos > 0:
            moved = False
            for text in texts:
                lo = max(0, pos - self.longest + 1)
                for m in self._re.finditer(text, lo, min(len(text), pos + self.longest)):
                    if m.start() < pos < m.end():
                        pos, moved = m.start(), True
                        break
        return pos

    def last_start(self, text: str, end: int) -> Optional[int]:
        """Where the last special token that lies wholly inside ``text[:end]`` starts (``None``: none)."""
        start = None
        if self._re is not None:
            for m in self._re.finditer(text, 0, end):
                start = m.start()
        return start

    def is_trailer(self, text: str) -> bool:
        """Only special tokens and whitespace: an end-of-conversation marker, not answer text."""
        rest = self._re.sub("", text) if self._re is not None else text
        return not rest.strip()


@dataclass(frozen=True)
class TurnVerdict:
    """Whether turn ``index`` can be trained inside the full rendering, and if not why."""

    index: int
    in_full: bool
    reason: Optional[str] = None  # "prompt" | "answer"
    detail: str = ""


@dataclass(frozen=True)
class Layout:
    full: str
    spans: tuple[Optional[tuple[int, int]], ...]  # per turn: char span in ``full`` or None
    verdicts: tuple[TurnVerdict, ...]
    anchors: tuple[str, ...] = ()

    @property
    def stable(self) -> bool:
        return all(v.in_full for v in self.verdicts)


@dataclass(frozen=True)
class Example:
    """One training sequence: its text and the char spans to train, in order, with their turns."""

    text: str
    spans: tuple[tuple[int, int], ...]
    turns: tuple[int, ...]


def answer_start(turn: int, prompt: str, final: str, anchor: str = "") -> int:
    """Where turn ``turn``'s answer begins in ``final`` (``S_k``), after the prompt ``P_k``.

    Normally ``P_k`` is a prefix of ``S_k`` and the answer starts at ``len(P_k)``. Some
    templates render the prompt part of ``S_k`` differently from the prompt they send
    (Mistral v0.3 puts the system prompt into the *last* user turn, so a conversation that
    ends with an answer has none). Then the answer starts right after the prompt's last
    message as the prompt renders it: ``anchor`` (the content of the message before the
    answer) and everything ``P_k`` has after it (the end of that message and the generation
    header) must appear in ``S_k``; if it does not, the engine's prompt cannot be continued
    into this answer (:class:`GenerationPromptError`).
    """
    if final.startswith(prompt):
        return len(prompt)
    floor = common_prefix(prompt, final)
    found = -1
    for text in dict.fromkeys((anchor, anchor.strip())):
        at = prompt.rfind(text) if text else -1
        if at < 0:
            continue
        tail = prompt[at:]
        found = final.find(tail, max(0, floor - len(tail)))
        if found >= 0:
            return found + len(tail)
    raise GenerationPromptError(
        turn,
        "the generation prompt (add_generation_prompt=True) is not continued by the conversation rendered with "
        f"this answer: the prompt continues {excerpt(prompt, floor)}, the answer's rendering "
        f"{excerpt(final, floor)}; the model could never produce this turn as rendered",
    )


def turn_example(turn: int, prompt: str, final: str, anchor: str = "") -> Example:
    """Turn ``turn`` trained alone: the engine's prompt followed by the answer as rendered."""
    start = answer_start(turn, prompt, final, anchor)
    text = prompt + final[start:]
    return Example(text=text, spans=((len(prompt), len(text)),), turns=(turn,))


def analyze(
    prompts: Sequence[str], finals: Sequence[str], special: SpecialText, anchors: Optional[Sequence[str]] = None
) -> Layout:
    """Compare the renderings of one conversation (see the module docstring).

    ``anchors[k]``: the content of the message before turn ``k`` (see :func:`answer_start`).
    """
    n = len(prompts)
    anchors = list(anchors) if anchors is not None else [""] * n
    if n == 0 or len(finals) != n or len(anchors) != n:
        raise ValueError("need one prompt, one final rendering and one anchor per assistant turn")
    full = finals[-1]
    starts = [answer_start(k, prompts[k], finals[k], anchors[k]) for k in range(n)]
    spans: list[Optional[tuple[int, int]]] = []
    verdicts: list[TurnVerdict] = []

    def unstable(k: int, reason: str, detail: str) -> None:
        spans.append(None)
        verdicts.append(TurnVerdict(k, False, reason, detail))

    for k in range(n):
        prompt, final, start = prompts[k], finals[k], len(prompts[k])
        if starts[k] != start or not final.startswith(prompt):
            at = common_prefix(final, prompt)
            unstable(k, "prompt", f"a conversation ending with this answer renders its prompt differently: "
                     f"{excerpt(prompt, at)} becomes {excerpt(final, at)}")
            continue
        if not full.startswith(prompt):
            at = common_prefix(full, prompt)
            anchor_end = prompt.rfind(anchors[k]) + len(anchors[k]) if anchors[k] else 0
            if anchors[k] and at >= anchor_end:  # only the generation header differs: the answer's start
                unstable(k, "answer", f"the answer's start renders differently once later turns follow: "
                         f"{excerpt(prompt, at)} becomes {excerpt(full, at)}")
            else:
                unstable(k, "prompt", f"its prompt renders differently once later turns follow: "
                         f"{excerpt(prompt, at)} becomes {excerpt(full, at)}")
            continue
        if k == n - 1:
            spans.append((start, len(full)))
            verdicts.append(TurnVerdict(k, True))
            continue
        if full.startswith(final):  # the usual case: the conversation so far is a prefix of the whole
            spans.append((start, len(final)))
            verdicts.append(TurnVerdict(k, True))
            continue
        end = special.snap(common_prefix(final, full), (final, full))
        if end < start or not special.is_trailer(final[end:]):
            unstable(k, "answer", f"the answer renders differently once later turns follow: {excerpt(final, end)} "
                     f"becomes {excerpt(full, end)}")
            continue
        spans.append((start, end))
        verdicts.append(TurnVerdict(k, True))
    return Layout(full=full, spans=tuple(spans), verdicts=tuple(verdicts), anchors=tuple(anchors))


def plan(
    layout: Layout, prompts: Sequence[str], finals: Sequence[str], *, policy: str, mask_history: bool
) -> list[Example]:
    """The training examples for one conversation under ``policy``.

    The full rendering is an example when it holds at least one turn that is trained in
    place. ``mask_history`` (LF: train the last turn only) and policy ``mask`` make exactly
    one example: the full rendering when its last turn is rendered as the engine generates
    it, else that turn's own example.
    """
    in_full = [i for i, s in enumerate(layout.spans) if s is not None]
    main = Example(
        text=layout.full,
        spans=tuple(layout.spans[i] for i in in_full),  # type: ignore[misc]
        turns=tuple(in_full),
    )
    last = len(layout.spans) - 1
    unstable = [v for v in layout.verdicts if not v.in_full]
    if not unstable:
        return [main]
    if mask_history or policy == "mask":
        if layout.spans[last] is not None:
            return [main]
        return [turn_example(last, prompts[last], finals[last], layout.anchors[last])]
    if policy == "strict":
        v = unstable[0]
        raise UnstableTurnError(
            v.index,
            f"{v.detail}; the template is not prefix-stable for this conversation (policy strict). "
            "Use template_ext_native_policy: expand (train such turns in their own example) or mask",
        )
    extra = [turn_example(v.index, prompts[v.index], finals[v.index], layout.anchors[v.index]) for v in unstable]
    return ([main] if in_full else []) + extra
