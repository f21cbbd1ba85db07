"""The one rule for "what training saw" (docs/contracts.md, "Reference ids").

Training ids are LF's supervised encoding pairs (``lf.compat.encode_training``: ``encode_multiturn``
before cutoff truncation, without the efficient-eos token) concatenated. The generation prompt of
the last turn is that sequence cut at the start of the last response, except for a reasoning
template trained with ``enable_thinking: null``: LF then puts the empty thought in the prompt only
when the answer has no thought, so the prompt depends on the answer. The compiled template follows
LF's own inference there (``encode_oneturn`` with an empty answer: empty thought in the prompt),
and so does this reference.

A model trained with ``template_ext_tokenize: whole`` (``prepared.tokenize == "whole"``, from the
train-time record) saw other ids: the compiled template's rendering tokenized whole, cut into LF's
pairs (``lf.whole_template``). Its reference is those ids, and its generation prompt the compiled
template's generation prompt tokenized whole (what whole mode's ``encode_oneturn`` feeds LF's chat).

Both the probe verifier (OpenAI-shaped conversations, ``verifier.probe``) and the dataset checker
(LF-shaped rows, ``verifier.dataset``) take their expected ids from :class:`TrainingReference`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

from ..lf import compat as lf_compat
from ..model.spec import kind_is_reasoning, kind_passes_call_words

Pairs = list[tuple[list[int], list[int]]]
#: One LF-shaped sample: (messages with LF roles, system, tools JSON).
LFSample = tuple[list[dict[str, str]], Optional[str], Optional[str]]


def concatenated(pairs: Sequence[tuple[list[int], list[int]]]) -> list[int]:
    return [i for src, tgt in pairs for i in src + tgt]


class TrainingReference:
    """LF's training ids and generation-prompt ids for one prepared template (``lf.compat.Prepared``)."""

    def __init__(self, prepared: Any, processor: Any = None) -> None:
        self.prepared = prepared
        #: LF's patched processor (``lf.media.training_processor``): set for samples with media
        self.processor = processor
        template = prepared.template
        self.kind = lf_compat.template_kind(template, strict=False)  # LF encodes; any class
        self.thought_words: tuple[str, str] = tuple(template.thought_words)  # type: ignore[assignment]
        tcw = getattr(template, "tool_call_words", None)
        # Llama2Template's FunctionFormatter gets no words: the turn is the call JSON
        self.tool_call_words: Optional[tuple[str, str]] = (
            tuple(tcw) if tcw and kind_passes_call_words(self.kind) else None  # type: ignore[assignment]
        )
        self.prompt_follows_inference = kind_is_reasoning(self.kind) and template.enable_thinking is None
        self.whole = None
        if getattr(prepared, "tokenize", "slots") == "whole":
            from types import SimpleNamespace

            from ..lf import whole_template

            data_args = SimpleNamespace(template=prepared.name, **prepared.options.to_dict())
            self.whole = whole_template.wrap(template, prepared.tokenizer, data_args)

    def _encode_whole(self, sample: LFSample) -> tuple[list[int], list[int], Pairs]:
        """Whole mode's training ids and generation prompt (``lf.whole_template``)."""
        messages, system, tools = sample
        tok, whole = self.prepared.tokenizer, self.whole
        discard = (self.prepared.options.discard_history_thoughts,) if lf_compat.capabilities().discarding_history_cot else ()
        pairs = whole.encode_multiturn(tok, messages, system, tools, *discard)
        blank = messages[:-1] + [{"role": "assistant", "content": ""}]
        prompt, _ = whole.encode_oneturn(tok, blank, system, tools)
        return concatenated(pairs), list(prompt), pairs

    def _blank_answer(self, sample: LFSample) -> Optional[LFSample]:
        """The sample with its last answer emptied, when the prompt must come from LF's inference rule."""
        messages, system, tools = sample
        if not self.prompt_follows_inference or not messages or messages[-1]["role"] != "assistant":
            return None
        return messages[:-1] + [{"role": "assistant", "content": ""}], system, tools

    @staticmethod
    def ids_and_prompt(pairs: Pairs, blank_pairs: Optional[Pairs] = None) -> tuple[list[int], list[int]]:
        """The training ids and the last turn's generation-prompt ids, from LF's encoding pairs."""
        ids = concatenated(pairs)
        prompt = ids[: len(ids) - len(pairs[-1][1])] if pairs else []
        if blank_pairs is not None:
            prompt = concatenated(blank_pairs[:-1]) + blank_pairs[-1][0]
        return ids, prompt

    def encode(self, sample: LFSample) -> tuple[list[int], list[int], Pairs]:
        """``(ids, prompt, pairs)`` of one sample; raises what LF raises when it cannot encode it."""
        if self.whole is not None:
            lf_compat.encode_training(self.prepared, *sample)  # what LF cannot encode stays unsupported
            return self._encode_whole(sample)
        pairs = lf_compat.encode_training(self.prepared, *sample)
        blank = self._blank_answer(sample)
        blank_pairs = lf_compat.encode_training(self.prepared, *blank) if blank is not None else None
        ids, prompt = self.ids_and_prompt(pairs, blank_pairs)
        return ids, prompt, pairs

    def encode_media(self, sample: LFSample, media: Any, expand: bool = True) -> tuple[list[int], list[int], Pairs]:
        """:meth:`encode` of a sample with media (``lf.media.MediaInputs``): LF's full path.

        The plugin expands the tags and may add leading ids (``lf.media.encode_training``); those
        lead both the training ids and the generation prompt. The prompt follows the same rule as
        without media (cut before the last answer, or LF's inference rule for ``enable_thinking: null``).
        ``expand=False``: the same with one unexpanded placeholder per medium (``lf.media.encode_training``).
        """
        from ..errors import UnsupportedTemplateError
        from ..lf import media as lf_media

        if self.processor is None:
            raise UnsupportedTemplateError(
                self.prepared.name,
                "the sample carries media but no processor was loaded: check a model dir with its preprocessor_config.json",
                "multimodal",
            )
        if self.whole is not None:
            raise UnsupportedTemplateError(
                self.prepared.name,
                "whole mode (template_ext_tokenize: whole) does not encode media; train media with LF's encoding (slots)",
                "multimodal",
            )
        prefix, pairs = lf_media.encode_training(self.prepared, self.processor, *sample, media, expand)
        blank = self._blank_answer(sample)
        blank_pairs = (
            lf_media.encode_training(self.prepared, self.processor, *blank, media, expand)[1] if blank is not None else None
        )
        ids, prompt = self.ids_and_prompt(pairs, blank_pairs)
        return prefix + ids, prefix + prompt, pairs

    def encode_batch(self, samples: Sequence[LFSample]) -> list[Any]:
        """:meth:`encode` for many samples: per sample ``(ids, prompt, pairs)`` or the exception LF raised.

        LF's logs are silenced once per batch (``lf.compat.encode_training_batch``).
        """
        if self.whole is not None:
            out_whole: list[Any] = []
            for sample in samples:
                try:
                    out_whole.append(self.encode(sample))
                except Exception as e:  # per sample, as LF's batch encoder reports it
                    out_whole.append(e)
            return out_whole
        encoded = lf_compat.encode_training_batch(self.prepared, list(samples))
        todo = [k for k, s in enumerate(samples) if self._blank_answer(s) is not None]
        blanks = dict(zip(todo, lf_compat.encode_training_batch(self.prepared, [self._blank_answer(samples[k]) for k in todo])))
        out: list[Any] = []
        for k, pairs in enumerate(encoded):
            blank = blanks.get(k)
            if isinstance(pairs, Exception):
                out.append(pairs)
            elif isinstance(blank, Exception):
                out.append(blank)
            else:
                ids, prompt = self.ids_and_prompt(pairs, blank)
                out.append((ids, prompt, pairs))
        return out

    def for_conversation(self, conversation: dict[str, Any]) -> tuple[list[int], list[int]]:
        """:meth:`encode` for an OpenAI-shaped conversation ``{"messages", "tools"?}``.

        Raises ``UnrepresentableConversation`` or LF's own error when LF cannot encode it.
        """
        from ..model import messages as msgmap

        conv = msgmap.to_lf(
            conversation["messages"],
            conversation.get("tools"),
            thought_words=self.thought_words,
            tool_call_words=self.tool_call_words,
        )
        ids, prompt, _ = self.encode((conv.messages, conv.system, conv.tools))
        return ids, prompt
