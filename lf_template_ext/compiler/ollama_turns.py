"""The body of the Ollama TEMPLATE: state, the loop over ``.Messages``, the generation prompt (pure).

``ollama.go_template`` decides what the template supports (a :class:`TemplatePlan`: tool code,
thinking switch, notes) and writes the header and defines; :func:`write_body` then writes what
runs per request: LF's ``system or default_system``, the checks of LF's turn order, each turn
through LF's slots, and the empty thought of the turn being generated. Why each piece is written
the way it is: ``ollama``'s module docstring.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import UnsupportedTemplateError
from ..model.spec import TemplateSpec, Text, TokenizerFacts
from .go_text import GoWriter, fail, go_lit, out, slot_code


@dataclass
class TemplatePlan:
    """What ``ollama.go_template`` decides before writing a line; :func:`write_body` writes from it.

    The features (``supports``/``normalised``) and ``notes`` are collected while deciding, so the
    header comment written first can list them all.
    """

    spec: TemplateSpec
    facts: TokenizerFacts
    skip_bos: bool  # the engine adds the leading BOS of LF's prefix
    supports: set[str] = field(default_factory=lambda: {"plain", "system", "gen_prompt", "full"})
    normalised: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)
    tools_code: str = ""  # Go code for the "lf_tools" define ("": the tool list is not written)
    tools_bare_code: str = ""  # "lf_tools_bare": the tool text without leading newlines (LF 0.9.6.dev0, no system)
    calls_code: str = ""  # Go code for the "lf_calls" define ("": tool calls are refused)
    calls_fmt: str | None = None
    thinking_mode: str | None = None  # reasoning templates: "switch" (think maps onto enable_thinking) or "off"
    thinking_tags: tuple[str, str] | None = None

    @property
    def reasoning(self) -> bool:
        return self.spec.is_reasoning

    @property
    def llama2(self) -> bool:
        return self.spec.is_llama2

    @property
    def has_tools(self) -> str:
        """Go condition: the request has tools the template can write."""
        return "$.Tools" if self.tools_code else "false"

    @property
    def system_content(self) -> str:
        """Go code for the system slot's content: LF's ``system + tool_text``."""
        tools_text = '{{- if $.Tools -}}{{- template "lf_tools" $.Tools -}}{{- end -}}' if self.tools_code else ""
        if self.tools_bare_code:  # LF's dev line: tool_text.lstrip("\n") when the system text is empty
            tools_text = (
                '{{- if $.Tools -}}{{- if $system -}}{{- template "lf_tools" $.Tools -}}'
                '{{- else -}}{{- template "lf_tools_bare" $.Tools -}}{{- end -}}{{- end -}}'
            )
        return "{{- $system -}}" + tools_text


def write_body(w: GoWriter, plan: TemplatePlan) -> None:
    """Everything after the defines: state variables, the message loop, the generation prompt."""
    _write_state(w, plan)
    _write_messages(w, plan)
    _write_generation_prompt(w, plan)


def _write_state(w: GoWriter, plan: TemplatePlan) -> None:
    """The variables the message loop reads: LF's ``system or default_system``, position, thinking switch."""
    spec = plan.spec
    if spec.default_system:
        w.stmt("$system := or $.System " + go_lit(spec.default_system))
    else:
        w.stmt("$system := $.System")
    w.stmt("$first := true")
    w.stmt("$even := true")
    w.stmt('$last := ""')
    if plan.reasoning:
        if plan.thinking_mode == "off":
            w.stmt("$thinkOff := true")
        else:
            w.comment("think=false (explicitly set) selects LF's enable_thinking=false; otherwise training's value")
            w.stmt("$thinkOff := and $.IsThinkSet (not $.Think)")


def _write_messages(w: GoWriter, plan: TemplatePlan) -> None:
    """The loop over ``.Messages``: refuse what LF cannot encode, then write each turn as LF does.

    System messages are folded into ``.System`` by Ollama; one is only allowed first, as in LF.
    """
    spec = plan.spec
    w.open("range $i, $m := .Messages")
    w.open("if .Images")
    w.line(
        fail(spec, "images are not supported by this template (LF expands media with the processor before encoding)")
    )
    w.close()
    w.open('if eq .Role "system"')
    w.open("if not $first")
    w.line(
        fail(
            spec,
            "a system message is only allowed as the first message (LF trains with one system prompt per conversation)",
        )
    )
    w.close()
    w.mid("else")
    _write_alternation_check(w, spec)
    _write_prefix_and_system(w, plan)
    _write_turn(w, plan)
    w.stmt("$first = false")
    w.stmt("$even = not $even")
    w.stmt("$last = .Role")
    w.close()  # system / else
    w.close()  # range


def _write_alternation_check(w: GoWriter, spec: TemplateSpec) -> None:
    """LF's strict alternation: user/tool at even positions, assistant at odd ones."""
    w.open("if $even")
    w.open('if not (or (eq .Role "user") (eq .Role "tool"))')
    w.line(
        fail(
            spec,
            "expected a user or tool message (LF alternates user/tool and assistant turns and cannot start with an "
            "assistant turn; if Ollama truncated a long conversation to fit num_ctx, shorten it or raise num_ctx)",
        )
    )
    w.close()
    w.mid('else if ne .Role "assistant"')
    w.line(
        fail(
            spec,
            "expected an assistant message (LF alternates user/tool and assistant turns; merge the results of "
            "parallel tool calls into one tool message)",
        )
    )
    w.close()


def _write_prefix_and_system(w: GoWriter, plan: TemplatePlan) -> None:
    """LF's prefix and system slot (system + tool text), in front of the first turn.

    Llama2-style templates fuse the system text into the first user message instead (:func:`_user_code`).
    """
    spec, facts = plan.spec, plan.facts
    w.open("if $first")
    w.line(slot_code(spec.prefix, facts, spec, "prefix", skip_leading_bos=plan.skip_bos))
    if not plan.llama2:
        w.open(f"if or $system {plan.has_tools}")
        w.line(slot_code(spec.system, facts, spec, "system", plan.system_content))
        w.close()
    w.close()


def _write_turn(w: GoWriter, plan: TemplatePlan) -> None:
    """One user, tool (LF's observation) or assistant turn."""
    spec, facts = plan.spec, plan.facts
    w.open('if eq .Role "user"')
    w.line(_user_code(plan))
    w.mid('else if eq .Role "tool"')
    w.line(slot_code(spec.observation, facts, spec, "observation", "{{- .Content -}}"))
    w.mid("else")
    _write_assistant(w, plan)
    w.close()  # role


def _user_code(plan: TemplatePlan) -> str:
    """The user slot; for Llama2-style templates with the first system slot fused into the first one."""
    spec, facts = plan.spec, plan.facts
    if not plan.llama2:
        return slot_code(spec.user, facts, spec, "user", "{{- .Content -}}")
    if not spec.system.slots or not isinstance(spec.system.slots[0], Text):
        raise UnsupportedTemplateError(spec.name, "Llama2-style templates need a text first system slot", "system")
    sys_text = (
        f"{{{{- if and $first (or $system {plan.has_tools}) -}}}}"
        + slot_code(spec.system, facts, spec, "system", plan.system_content, first_slot_only=True)
        + "{{- end -}}"
    )
    return slot_code(spec.user, facts, spec, "user", sys_text + "{{- .Content -}}")


def _write_assistant(w: GoWriter, plan: TemplatePlan) -> None:
    """An assistant turn: thought + content, through LF's function slot when it carries tool calls."""
    spec, facts = plan.spec, plan.facts
    thought, empty = _write_thought_switch(w, plan)
    w.line(empty)
    w.open("if .ToolCalls")
    if not plan.calls_code:
        w.line(fail(spec, "this template has no function formatter for tool calls"))
    else:
        if not spec.function_gets_words:
            w.open("if or .Content .Thinking")
            w.line(
                fail(
                    spec,
                    "an assistant message with tool_calls cannot also carry text or thinking in this template "
                    "(LF parses the whole turn as the call JSON)",
                )
            )
            w.close()
        calls = thought + '{{- .Content -}}{{- template "lf_calls" .ToolCalls -}}'
        w.line(slot_code(spec.function, facts, spec, "function", calls))
    w.mid("else")
    w.line(slot_code(spec.assistant, facts, spec, "assistant", thought + "{{- .Content -}}"))
    w.close()


def _write_thought_switch(w: GoWriter, plan: TemplatePlan) -> tuple[str, str]:
    """Decide whether this answer's thought is shown; return Go code for (the thought, the empty thought).

    LF's ReasoningTemplate: a thought is kept unless thinking is off (or, with mask_history, the
    answer is not the last one); an answer without a kept thought gets the empty thought (with
    mask_history only the last answer does). `$m.Thinking`, not `.Thinking`: InferTags must see
    only the one `.Thinking` of the thought. Plain templates write a thought inline, as LF's
    dataset convention does, and advertise no thinking.
    """
    spec = plan.spec
    tw0, tw1 = spec.thought_words
    if not plan.reasoning:
        return "{{- if $m.Thinking -}}" + out(tw0) + "{{- $m.Thinking -}}" + out(tw1) + "{{- end -}}", ""
    if spec.discard_history_thoughts:
        w.stmt("$isLast := eq (len (slice $.Messages $i)) 1")
        w.stmt("$showThought := and (not $thinkOff) $isLast $m.Thinking")
        empty_cond = "and (not $showThought) $isLast"
    else:
        w.stmt("$showThought := and (not $thinkOff) $m.Thinking")
        empty_cond = "not $showThought"
    if plan.thinking_mode == "off":
        thought = ""
    else:
        # literal text around {{ .Thinking }}: what thinking.InferTags reads (no trim markers inside)
        thought = "{{- if $showThought }}" + tw0 + "{{ .Thinking }}" + tw1 + "{{ end -}}"
    empty = "{{- if " + empty_cond + " -}}" + out(spec.empty_thought) + "{{- end -}}"
    return thought, empty


def _write_generation_prompt(w: GoWriter, plan: TemplatePlan) -> None:
    """The empty thought LF puts in the prompt of the turn being generated (reasoning templates).

    LF's user/observation slot already ends with the assistant header, so nothing else is added.
    """
    if not plan.reasoning:
        return
    cond = "$thinkOff" if plan.spec.enable_thinking is True else "true"
    w.open(f'if and (or (eq $last "user") (eq $last "tool")) {cond}')
    w.line(out(plan.spec.empty_thought))
    w.close()
