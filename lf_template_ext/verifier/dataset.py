"""``check --dataset``: every sample of a training dataset, as LF trained on it, against the engine.

Per sample (a row of an LF dataset, converted by LF's own converter):

* **expected** ids: LF's training encoding (``lf.compat.encode_training``, the verifier's
  reference: ``encode_multiturn`` pairs before cutoff, without efficient-eos), or native mode's
  examples (``lf_template_ext.native.mode``) for ``--template native``;
* **actual** ids: the same conversation as the OpenAI request an engine receives
  (``messages.from_lf``), rendered and tokenized by the engine side (``engine_sides``: the model
  dir's chat template as vLLM uses it, or a live server);
* compared part by part with the verifier's ``compare_ids`` (the whole conversation and the
  generation prompt of its last turn; native mode: each example and each trained turn's prompt).
  The sample's status is its worst part.

Rows LF itself skips (its converter's role/count checks, the supervised processor's filter) are
listed as skipped, never compared: training never saw them.

Speed: rows stream in batches; a batch is converted, encoded by LF, rendered, and its texts are
tokenized in one fast-tokenizer call. ``workers > 1`` forks processes after LF, the tokenizer and
the template are loaded in the parent (nothing is loaded twice); batches come back in order, so
the result does not depend on the number of workers.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import os
import sys
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

from ..errors import ConversationError
from ..render.hf import EngineSide, RenderRequest
from .report import SCHEMA_VERSION, STATUSES, CaseResult, compare_ids

RANK = {"identical": 0, "boundary_only": 1, "unsupported": 2, "differs": 3}
#: Non-identical samples whose full detail goes into the report; every index is listed regardless.
MAX_DETAILED_CASES = 1000


# -- results -----------------------------------------------------------------------------------------


@dataclass
class SampleResult(CaseResult):
    """A :class:`~lf_template_ext.verifier.report.CaseResult` for one dataset sample (its worst part)."""

    dataset: str = ""
    index: int = -1
    part: str = "full"
    kind: str = ""
    #: a sample with media: the difference's group (``verifier.media``: placeholder / count / resolution)
    #: and the media token counts of both sides
    group: str = ""
    media_tokens: Optional[dict[str, dict[str, int]]] = None

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d.update(dataset=self.dataset, index=self.index, part=self.part, kind=self.kind)
        if self.group:
            d["group"] = self.group
        if self.media_tokens is not None:
            d["media_tokens"] = self.media_tokens
        return d


@dataclass
class Part:
    """One comparison of a sample: expected ids vs what the engine makes of ``request``."""

    name: str
    expected: list[int]
    request: RenderRequest
    segments: list[tuple[int, str]]  # (start index, label) of the expected ids' regions, ascending
    media: Any = None  # the sample's ``lf.media.MediaInputs`` when it carries media
    unexpanded: Any = None  # LF's ids of the part before expansion, on demand (``verifier.media.unexpanded_thunks``)


@dataclass
class BatchOutcome:
    dataset: str
    counts: dict[str, int] = field(default_factory=lambda: {s: 0 for s in STATUSES})
    results: list[SampleResult] = field(default_factory=list)  # non-identical samples only
    skipped: list[tuple[int, str]] = field(default_factory=list)
    rows: int = 0
    #: rows LF cannot read or encode (its converter or encoder raises): training fails or loses them
    unreadable: int = 0


# -- LF's side ----------------------------------------------------------------------------------------


class NoRequestForm(ConversationError):
    """LF encodes the sample, but no chat request can carry it (e.g. a tool call that is not JSON)."""


@dataclass
class Sample:
    index: int
    messages: list[dict[str, str]]  # LF roles: user/assistant/function/observation
    system: Optional[str]
    tools: Optional[str]
    media: Any = None  # ``lf.media.MediaInputs``: the row's images/videos/audios (paths LF resolved)


def lf_segments(pairs: Sequence[tuple[list[int], list[int]]], start: int = 0) -> list[tuple[int, str]]:
    """Where LF's prompts and answers start in the concatenated training ids (after ``start`` leading ids:
    a multimodal plugin's ``process_token_ids``)."""
    out: list[tuple[int, str]] = [(0, "the ids the multimodal plugin puts first")] if start else []
    pos = start
    for k, (src, tgt) in enumerate(pairs):
        out.append((pos, "the first prompt (prefix, system, tools, first user turn)" if k == 0 else "a later prompt"))
        pos += len(src)
        out.append((pos, "an answer"))
        pos += len(tgt)
    return out


def openai_tools(tools: Optional[list[Any]]) -> Optional[list[dict[str, Any]]]:
    """LF's tools list as a client sends it: each ``{"type": "function", "function": ...}``.

    LF's dataset tools are bare function schemas; LF's tool formatters unwrap either shape, and
    native chat templates expect what clients send.
    """
    if not tools:
        return None
    return [t if isinstance(t, dict) and t.get("type") == "function" else {"type": "function", "function": t} for t in tools]


def with_call_ids(messages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages as a client sends them: every tool call with an ``id``, every tool result with its
    ``tool_call_id`` (vLLM rejects a request without them; LF's data has none).

    Ids are ``call`` + 5 digits: 9 alphanumeric characters, the form Mistral's templates insist on.
    A tool result answers the calls of the assistant message before it, in order.
    """
    out: list[dict[str, Any]] = []
    n = 0
    pending: list[str] = []
    for m in messages:
        m = dict(m)
        if m.get("role") == "assistant" and m.get("tool_calls"):
            calls = []
            pending = []
            for call in m["tool_calls"]:
                call = dict(call)
                if "id" not in call:
                    call["id"] = f"call{n:05d}"
                    n += 1
                pending.append(call["id"])
                calls.append(call)
            m["tool_calls"] = calls
        elif m.get("role") == "tool" and "tool_call_id" not in m:
            m["tool_call_id"] = pending.pop(0) if pending else f"call{n:05d}"
        out.append(m)
    return out


class LFReference:
    """LF's training ids for a sample (``verifier.reference``: the one rule), and the engine requests to
    compare them with (the sample as the OpenAI request an engine receives)."""

    def __init__(self, prepared: Any, kwargs: Optional[dict[str, Any]] = None, processor: Any = None) -> None:
        from .reference import TrainingReference

        #: ``processor``: LF's patched processor (``lf.media.training_processor``): samples with media
        self.training = TrainingReference(prepared, processor)
        self.prepared = prepared
        self.thought_words = self.training.thought_words
        self.tool_call_words = self.training.tool_call_words
        self.kwargs = dict(kwargs or {})

    def parts_batch(self, samples: Sequence[Sample]) -> list[Any]:
        """Per sample its :class:`Part` list, or the exception LF (or the request mapping) raised."""
        plain = [s for s in samples if not s.media]
        encoded_plain = iter(self.training.encode_batch([(s.messages, s.system, s.tools) for s in plain]))
        encoded = [next(encoded_plain) if not s.media else self._encode_media(s) for s in samples]
        out: list[Any] = []
        for sample, result in zip(samples, encoded):
            if isinstance(result, Exception):
                out.append(result)
                continue
            try:
                out.append(self.parts(sample, *result))
            except Exception as e:  # the conversation cannot be sent to an engine as an OpenAI request
                out.append(e)
        return out

    def _encode_media(self, sample: Sample) -> Any:
        try:
            return self.training.encode_media((sample.messages, sample.system, sample.tools), sample.media)
        except Exception as e:  # this sample only: LF cannot encode it (tag/media count, unreadable file)
            return e

    def parts(self, sample: Sample, ids: list[int], prompt: list[int], pairs: Any) -> list[Part]:
        from ..model.messages import from_lf

        segments = lf_segments(pairs, len(ids) - sum(len(a) + len(b) for a, b in pairs))
        from ..model.messages import UnrepresentableConversation

        try:
            messages, tools = from_lf(
                sample.messages, sample.system, sample.tools,
                thought_words=self.thought_words, tool_call_words=self.tool_call_words,  # type: ignore[arg-type]
            )  # fmt: skip
        except UnrepresentableConversation as e:
            raise NoRequestForm(str(e)) from None
        tools = openai_tools(tools)
        messages = with_call_ids(messages)
        unexpanded: Any = (None, None)
        if sample.media:
            from .media import openai_messages, unexpanded_thunks

            messages = openai_messages(messages, None, sample.media)  # tags -> content parts with the files
            unexpanded = unexpanded_thunks(self.training, (sample.messages, sample.system, sample.tools), sample.media)
        full = RenderRequest(messages, tools, False, self.kwargs)
        gen = RenderRequest(messages[:-1], tools, True, self.kwargs)
        return [
            Part("full conversation", ids, full, segments, sample.media, unexpanded[0]),
            Part("generation prompt", prompt, gen, segments, sample.media, unexpanded[1]),
        ]


# -- the checker -------------------------------------------------------------------------------------


def _special_ids(tokenizer: Any) -> frozenset[int]:
    ids = set(getattr(tokenizer, "all_special_ids", []) or [])
    ids.update(tokenizer.get_added_vocab().values())
    return frozenset(ids)


class Checker:
    """Checks batches of raw rows of one or more datasets (built in the parent, used by every worker)."""

    def __init__(
        self,
        reference: Any,
        engine: EngineSide,
        tokenizer: Any,
        converters: dict[str, Callable[[dict[str, Any]], dict[str, Any]]],
        frozen: Optional[_dt.datetime] = None,
        media: Any = None,
    ) -> None:
        self.reference = reference
        self.engine = engine
        self.tokenizer = tokenizer
        self.converters = converters
        self.frozen = frozen
        self.special_ids = _special_ids(tokenizer)
        #: ``verifier.media.MediaComparer`` when samples with media are compared (the dir has a processor,
        #: the engine is its processor); else the reason they are not
        self.media = media
        self.no_media_reason = "it carries images/videos/audios; the check compares text only"

    # -- rows -> LF samples -----------------------------------------------------------------------
    def convert(self, dataset: str, rows: Sequence[tuple[int, dict[str, Any]]], out: BatchOutcome) -> list[Sample]:
        from ..lf import compat as lf_compat
        from ..lf.datasets import arrow_like

        convert = self.converters[dataset]
        samples = []
        with lf_compat.quiet_dataset_converter():
            for index, raw in rows:
                try:
                    row = convert(arrow_like(raw))
                except Exception as e:  # LF's converter itself fails: so would LF's loader
                    self._unsupported(
                        out, dataset, index, f"LF's converter fails on this row: {type(e).__name__}: {e}", unreadable=True
                    )
                    continue
                prompt, response = row["_prompt"], row["_response"]
                if not prompt and not response:
                    out.skipped.append((index, "LF skips it: invalid role order or message count"))
                elif not lf_compat.supervised_example_ok(prompt, response):
                    out.skipped.append(
                        (index, f"LF's supervised processor drops it: {len(prompt)} prompt message(s), {len(response)} response(s)")
                    )
                elif any(row.get(k) for k in ("_images", "_videos", "_audios")):
                    if self.media is None:
                        self._unsupported(out, dataset, index, self.no_media_reason)
                    else:
                        from ..lf.media import MediaInputs

                        media = MediaInputs(*(list(row.get(k) or []) for k in ("_images", "_videos", "_audios")))
                        samples.append(Sample(index, list(prompt) + list(response), row["_system"], row["_tools"], media))
                else:
                    samples.append(Sample(index, list(prompt) + list(response), row["_system"], row["_tools"]))
        return samples

    def _unsupported(self, out: BatchOutcome, dataset: str, index: int, reason: str, unreadable: bool = False) -> None:
        out.counts["unsupported"] += 1
        out.unreadable += int(unreadable)
        out.results.append(
            SampleResult(f"{dataset}#{index}", "unsupported", reason=reason, dataset=dataset, index=index, kind="unsupported")
        )

    # -- one batch ----------------------------------------------------------------------------------
    def check_batch(self, dataset: str, rows: Sequence[tuple[int, dict[str, Any]]]) -> BatchOutcome:
        from ..lf import compat as lf_compat

        out = BatchOutcome(dataset=dataset, rows=len(rows))
        samples = self.convert(dataset, rows, out)
        with lf_compat.frozen_time(self.frozen):
            planned = self.reference.parts_batch(samples)
        if getattr(self.engine, "generation_only", False):  # e.g. llama-server: a final answer is a prefill
            planned = [p if isinstance(p, Exception) else [x for x in p if x.request.add_generation_prompt] for p in planned]
        requests = [p.request for parts in planned if isinstance(parts, list) for p in parts]
        actual = iter(self.engine.ids_batch(requests))
        for sample, parts in zip(samples, planned):
            if isinstance(parts, NoRequestForm):  # trained on, yet no client can send it: serving cannot match
                out.counts["differs"] += 1
                out.results.append(
                    SampleResult(
                        f"{dataset}#{sample.index}", "differs", reason=f"no chat request can carry this sample: {parts}",
                        dataset=dataset, index=sample.index, kind="differs · no chat request can carry the sample",
                    )  # fmt: skip
                )
                continue
            if isinstance(parts, Exception):
                self._unsupported(
                    out, dataset, sample.index, f"LF cannot encode this sample: {type(parts).__name__}: {parts}",
                    unreadable=True,
                )  # fmt: skip
                continue
            worst: Optional[SampleResult] = None
            for part in parts:
                result = self.compare(dataset, sample.index, part, next(actual))
                if worst is None or RANK[result.status] > RANK[worst.status]:
                    worst = result
            assert worst is not None
            out.counts[worst.status] += 1
            if worst.status != "identical":
                out.results.append(worst)
        return out

    def compare(self, dataset: str, index: int, part: Part, actual: Any) -> SampleResult:
        case_id = f"{dataset}#{index}"
        if isinstance(actual, Exception):
            return SampleResult(
                case_id, "differs", reason=f"the engine refuses it: {type(actual).__name__}: {actual}",
                expected_len=len(part.expected), actual_len=0, dataset=dataset, index=index, part=part.name,
                kind=f"differs · {part.name} · the engine refuses the request ({type(actual).__name__})",
            )  # fmt: skip
        base = compare_ids(case_id, part.expected, actual, self.tokenizer)
        result = SampleResult(**{f.name: getattr(base, f.name) for f in dataclasses.fields(CaseResult)})
        result.dataset, result.index, result.part = dataset, index, part.name
        if part.media and self.media is not None:
            from .media import media_result

            return media_result(self, result, part, actual)
        if result.status != "identical":
            result.kind = self.kind_of(result.status, part, actual, base.first_diff.index if base.first_diff else 0)
        return result

    def kind_of(self, status: str, part: Part, actual: list[int], i: int) -> str:
        """A label grouping differences of the same nature: where they start and at which tokens."""
        expected = part.expected
        label = "differs" if status == "differs" else "boundary-only"
        if i >= len(expected):
            where = "after training's last token (the engine adds more)"
        elif i >= len(actual):
            where = "the engine's ids end early"
        else:
            where = next((lab for start, lab in reversed(part.segments) if start <= i), "the start")
        detail = "text"
        if i < len(expected) and i < len(actual):
            e, a = expected[i], actual[i]
            if e in self.special_ids or a in self.special_ids:
                detail = f"training {self._tok(e)} vs engine {self._tok(a)}"
        elif i < len(expected) or i < len(actual):
            extra = expected[i] if i < len(expected) else actual[i]
            if extra in self.special_ids:
                detail = f"at {self._tok(extra)}"
        return f"{label} · {part.name} · in {where} · {detail}"

    def _tok(self, i: int) -> str:
        return repr(self.tokenizer.decode([i], skip_special_tokens=False, clean_up_tokenization_spaces=False))


# -- running over datasets ---------------------------------------------------------------------------


@dataclass
class KindStat:
    kind: str
    status: str
    count: int
    example: SampleResult


@dataclass
class Aggregate:
    """Everything the report needs, accumulated batch by batch (in dataset order)."""

    counts: dict[str, int] = field(default_factory=lambda: {s: 0 for s in STATUSES})
    kinds: dict[str, KindStat] = field(default_factory=dict)
    indices: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    skipped: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    cases: list[SampleResult] = field(default_factory=list)
    rows: int = 0
    cases_truncated: bool = False
    unreadable: int = 0

    def add(self, outcome: BatchOutcome) -> None:
        self.rows += outcome.rows
        self.unreadable += outcome.unreadable
        for status, n in outcome.counts.items():
            self.counts[status] += n
        per = self.indices.setdefault(outcome.dataset, {s: [] for s in STATUSES if s != "identical"})
        for r in outcome.results:
            per[r.status].append(r.index)
            key = r.kind or r.status
            stat = self.kinds.get(key)
            if stat is None:
                self.kinds[key] = KindStat(key, r.status, 1, r)
            else:
                stat.count += 1
            if len(self.cases) < MAX_DETAILED_CASES:
                self.cases.append(r)
            else:
                self.cases_truncated = True
        self.skipped.setdefault(outcome.dataset, []).extend(outcome.skipped)

    @property
    def checked(self) -> int:
        return sum(self.counts.values())


def batches(
    streams: Iterable[tuple[str, Iterable[tuple[int, dict[str, Any]]]]], size: int
) -> Iterator[tuple[str, list[tuple[int, dict[str, Any]]]]]:
    for name, rows in streams:
        chunk: list[tuple[int, dict[str, Any]]] = []
        for item in rows:
            chunk.append(item)
            if len(chunk) >= size:
                yield name, chunk
                chunk = []
        if chunk:
            yield name, chunk


_WORKER: Optional[Checker] = None


def _work(task: tuple[str, list[tuple[int, dict[str, Any]]]]) -> BatchOutcome:
    assert _WORKER is not None, "worker started without a checker"
    return _WORKER.check_batch(*task)


def _init_worker() -> None:
    # The parent's Rust thread pool does not survive fork; tokenizers would warn and turn it off anyway.
    os.environ["TOKENIZERS_PARALLELISM"] = "false"


def run(
    checker: Checker,
    streams: Iterable[tuple[str, Iterable[tuple[int, dict[str, Any]]]]],
    *,
    workers: int = 1,
    batch_size: int = 128,
    progress: Optional[Any] = None,
) -> Aggregate:
    """Check every row; ``progress`` (a tqdm bar or ``None``) is advanced by rows."""
    agg = Aggregate()
    tasks = batches(streams, batch_size)
    if workers <= 1:
        for task in tasks:
            outcome = checker.check_batch(*task)
            agg.add(outcome)
            if progress is not None:
                progress.update(outcome.rows)
        return agg
    import multiprocessing

    global _WORKER
    _WORKER = checker
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    ctx = multiprocessing.get_context("fork")
    try:
        with ctx.Pool(workers, initializer=_init_worker) as pool:
            pending: deque = deque()
            for task in tasks:
                pending.append(pool.apply_async(_work, (task,)))
                while len(pending) >= 2 * workers:  # bounded: rows stream, they are not all read ahead
                    _collect(pending.popleft().get(), agg, progress)
            while pending:
                _collect(pending.popleft().get(), agg, progress)
    finally:
        _WORKER = None
    return agg


def _collect(outcome: BatchOutcome, agg: Aggregate, progress: Optional[Any]) -> None:
    agg.add(outcome)
    if progress is not None:
        progress.update(outcome.rows)


def shows_progress(stream: Any = None) -> bool:
    stream = stream or sys.stderr
    return bool(hasattr(stream, "isatty") and stream.isatty())


def progress_bar(total: Optional[int], stream: Any = None) -> Optional[Any]:
    """A tqdm bar on a terminal; ``None`` (silence) when stderr is a pipe or a file."""
    stream = stream or sys.stderr
    if not shows_progress(stream):
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="conv", file=stream, dynamic_ncols=True, desc="checking")


# -- the report ----------------------------------------------------------------------------------------


def report_dict(
    agg: Aggregate,
    *,
    template: str,
    options: dict[str, Any],
    engine: str,
    lf_version: str,
    sources: Sequence[Any],
) -> dict[str, Any]:
    """The report (docs/contracts.md schema) plus the dataset's sample lists and the kinds of difference.

    ``summary`` counts samples; ``cases`` holds the non-identical samples in detail (the first
    ``MAX_DETAILED_CASES``); ``samples`` lists every non-identical and skipped index per dataset.
    """
    from .._version import __version__

    return {
        "schema_version": SCHEMA_VERSION,
        "lf_version": lf_version,
        "package_version": __version__,
        "template": template,
        "options": options,
        "engine": engine,
        "summary": dict(agg.counts),
        "cases": [c.to_dict() for c in agg.cases],
        "cases_truncated": agg.cases_truncated,
        "dataset": {
            "datasets": [
                {"name": s.name, "files": list(s.files), "formatting": s.formatting, "entry": s.entry, "info": s.info_path}
                for s in sources
            ],
            "rows": agg.rows,
            "checked": agg.checked,
            "skipped": sum(len(v) for v in agg.skipped.values()),
            "unreadable": agg.unreadable,
        },
        "samples": {
            name: {
                **{status: idx for status, idx in agg.indices.get(name, {}).items()},
                "skipped": [{"index": i, "reason": r} for i, r in agg.skipped.get(name, [])],
            }
            for name in [s.name for s in sources]
        },
        "kinds": [
            {"kind": k.kind, "status": k.status, "count": k.count, "example": k.example.id}
            for k in sorted(agg.kinds.values(), key=lambda k: (-RANK[k.status], -k.count))
        ],
    }


def exit_code(
    agg: Aggregate, strict: bool, missing_stop_ids: Sequence[int] = (), *, allow_skipped: bool = False
) -> int:
    """The checks' one rule (``verifier.report.exit_code``) on the dataset's counts: rows LF cannot read
    or encode fail the check unless ``allow_skipped`` (training would fail on them or lose them)."""
    from .report import exit_code as rule

    return rule(
        agg.counts, strict=strict, missing_stop_ids=missing_stop_ids, skipped=agg.unreadable, allow_skipped=allow_skipped
    )


def print_summary(agg: Aggregate, out: Any = None) -> None:
    """Counts, then each kind of difference with its count and one example (first diverging token)."""
    out = out or sys.stdout
    c = agg.counts
    skipped = sum(len(v) for v in agg.skipped.values())
    print(
        f"samples: {agg.checked} checked: {c['identical']} identical, {c['boundary_only']} boundary-only, "
        f"{c['differs']} differ, {c['unsupported']} unsupported; {skipped} skipped (LF does not train on them)",
        file=out,
    )
    for k in sorted(agg.kinds.values(), key=lambda k: (-RANK[k.status], -k.count)):
        ex = k.example
        print(f"  {k.count:>7} × {k.kind}", file=out)
        if ex.group in ("count", "resolution") and ex.media_tokens:
            mt = ex.media_tokens
            print(f"            e.g. sample {ex.index} of {ex.dataset}, {ex.part}: media tokens training "
                  f"{_counts(mt['training'])}, engine {_counts(mt['engine'])}", file=out)  # fmt: skip
        elif ex.first_diff is not None:
            d = ex.first_diff
            print(f"            e.g. sample {ex.index} of {ex.dataset}, {ex.part}, token {d.index}:", file=out)
            training, engine = d.shown(k.status, 100)
            print(f"              training {training}", file=out)
            print(f"              engine   {engine}", file=out)
        elif ex.reason:
            print(f"            e.g. sample {ex.index} of {ex.dataset}: {ex.reason[:300]}", file=out)
    for name, items in agg.skipped.items():
        if items:
            reasons: dict[str, int] = {}
            for _, r in items:
                reasons[r] = reasons.get(r, 0) + 1
            for r, n in reasons.items():
                print(f"  skipped {n} of {name}: {r} (e.g. sample {next(i for i, x in items if x == r)})", file=out)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())) or "none"


# -- native mode --------------------------------------------------------------------------------------


def label_run_starts(labels: Sequence[int], ignore_index: int) -> list[int]:
    """Start index of every run of trained (non-``IGNORE_INDEX``) labels."""
    starts = []
    prev_trained = False
    for i, lab in enumerate(labels):
        trained = lab != ignore_index
        if trained and not prev_trained:
            starts.append(i)
        prev_trained = trained
    return starts


def label_segments(labels: Sequence[int], ignore_index: int) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    prev: Optional[bool] = None
    for i, lab in enumerate(labels):
        trained = lab != ignore_index
        if trained != prev:
            out.append((i, "an answer" if trained else ("the first prompt" if i == 0 else "a later prompt")))
            prev = trained
    return out


class NativeReference:
    """``template: native``'s training examples for a sample, and the engine requests they must equal.

    Native mode (``lf_template_ext.native.mode``) trains each assistant turn in an example rendered with
    the model's own chat template. Two things must hold for every example: its ``input_ids`` are the
    engine's ids for the conversation it renders (the whole conversation, or the prefix ending with
    the turn of an extra ``expand`` example), and for each turn it trains, the ids before the turn's
    answer are the engine's generation prompt for that turn (what the model sees when it answers).
    Both are compared; the engine renders with the same template variables native training used
    (``enable_thinking``, ``template_ext_native_kwargs``: serve with the same).
    """

    def __init__(self, prepared: Any, mask_history: bool = False) -> None:
        from types import SimpleNamespace

        from ..lf import compat as lf_compat
        from ..native import mode as native

        self.native = native
        self.template = prepared.template
        self.tokenizer = prepared.tokenizer
        data_args = SimpleNamespace(cutoff_len=1 << 30, train_on_prompt=False, mask_history=mask_history)
        self.encoder = native.encoder_for(self.tokenizer, self.template, lf_compat.native_helpers(), data_args)
        self.kwargs = dict(self.encoder.renderer.kwargs)
        self.ignore_index = lf_compat.supervised_helpers()[1]

    def _encode(self, convs: list[Any], names: list[str]) -> list[Any]:
        try:
            return list(self.encoder.encode_batch(convs, names))
        except Exception:  # one sample native mode refuses: find which, keep the others
            out: list[Any] = []
            for conv, name in zip(convs, names):
                try:
                    out.extend(self.encoder.encode_batch([conv], [name]))
                except Exception as e:
                    out.append(e)
            return out

    def parts_batch(self, samples: Sequence[Sample]) -> list[Any]:
        convs: list[Any] = []
        planned: list[Any] = []
        for s in samples:
            try:
                conv = self.native.conversation(self.template, s.messages, s.system, s.tools)
            except Exception as e:
                planned.append(e)
                continue
            planned.append(conv)
            convs.append(conv)
        names = [self.native.sample_name(s.index, s.messages) for s, p in zip(samples, planned) if not isinstance(p, Exception)]
        encoded = iter(self._encode(convs, names))
        out: list[Any] = []
        for p in planned:
            if isinstance(p, Exception):
                out.append(p)
                continue
            examples = next(encoded)
            out.append(examples if isinstance(examples, Exception) else self._parts(p, examples))
        return out

    def _parts(self, conv: Any, examples: Sequence[Any]) -> list[Part]:
        turns = conv.assistant_indices
        messages = with_call_ids(conv.messages)
        parts: list[Part] = []
        for k, ex in enumerate(examples):  # the full rendering first, then the extra ones (policy expand)
            extra = k > 0
            segments = label_segments(ex.labels, self.ignore_index)
            n = turns[ex.turns[-1]] + 1 if extra else len(conv.messages)
            name = f"extra example of turn {ex.turns[-1] + 1}" if extra else "full conversation"
            parts.append(Part(name, list(ex.input_ids), RenderRequest(messages[:n], conv.tools, False, self.kwargs), segments))
            starts = label_run_starts(ex.labels, self.ignore_index)
            for turn, start in zip(reversed(ex.turns), reversed(starts)):
                parts.append(
                    Part(
                        f"generation prompt of turn {turn + 1}",
                        list(ex.input_ids[:start]),
                        RenderRequest(messages[: turns[turn]], conv.tools, True, self.kwargs),
                        segments,
                    )
                )
        return parts


# -- building a check ----------------------------------------------------------------------------------


@dataclass
class Setup:
    checker: Checker
    template: str
    lf_version: str
    stop_ids: list[int]
    engine_stop_ids: list[int]
    missing_stop_ids: list[int]
    template_file: str
    warnings: list[str]


def build(
    model_dir: str,
    template: str,
    options: Any,
    sources: Sequence[Any],
    *,
    engine_factory: Optional[Callable[[Any, Optional[str], dict[str, Any]], EngineSide]] = None,
    trust_remote_code: bool = False,
    frozen: Optional[_dt.datetime] = None,
    chat_template_kwargs: Optional[dict[str, Any]] = None,
    media_args: Optional[dict[str, Any]] = None,
) -> Setup:
    """Load the tokenizer, LF and the template once (the parent of the workers), then the checker.

    ``engine_factory(tokenizer, jinja, kwargs)`` makes the engine side; by default the model dir's
    chat template rendered as vLLM does (:class:`~lf_template_ext.render.hf.HFEngine`).

    A dataset declaring ``images``/``videos``/``audios`` columns is checked with media when the default
    engine side is used and the dir has a processor: LF's expanded ids (LF's media arguments,
    ``media_args`` over LF's defaults) against the dir's chat template + its HF processor (:func:`media_setup`).
    """
    from ..lf import compat as lf_compat
    from ..model.stops import missing_ids
    from ..modeldir.files import engine_stop_ids, read_chat_template
    from ..modeldir.record import trained_tokenize
    from ..modeldir.tokenizer import load_tokenizer
    from ..render.hf import HFEngine

    tokenizer = load_tokenizer(model_dir, trust_remote_code=trust_remote_code)
    jinja, where = read_chat_template(model_dir)
    warnings: list[str] = []
    if template == "native":
        from ..lf import native_template
        from ..native import mode as native

        native_template.register()
        prepared = lf_compat.prepare("native", tokenizer, options)
        reference: Any = NativeReference(prepared, mask_history=options.mask_history)
        if chat_template_kwargs is not None:  # serving with other variables than training: check that
            reference.kwargs = dict(chat_template_kwargs)
        stop_ids = native.stop_token_ids(prepared.tokenizer)
        kwargs = reference.kwargs
        frozen = None  # native training renders with the live date too (Llama-3.x date_string)
    else:
        prepared = lf_compat.snapshot(template, tokenizer, options, trained_with=model_dir).prepared
        tokenize = trained_tokenize(model_dir)  # whole mode's ids are what a `tokenize: whole` run trained on
        if tokenize != getattr(prepared, "tokenize", "slots"):
            prepared = dataclasses.replace(prepared, tokenize=tokenize)
        reference = LFReference(prepared, chat_template_kwargs)
        stop_ids = lf_compat.stop_token_ids(prepared)
        kwargs = {}
    engine_ids = engine_stop_ids(model_dir, tokenizer)
    if engine_factory is None:
        if jinja is None:
            from ..errors import BadInputError

            raise BadInputError(
                "no chat template (chat_template.jinja or tokenizer_config.json's chat_template): engines refuse chat "
                "requests", path=model_dir, hint=f"lf-template repair {model_dir} --template {template}",
            )  # fmt: skip
        engine: EngineSide = HFEngine(tokenizer, jinja, frozen, kwargs)
    else:
        engine = engine_factory(tokenizer, jinja, kwargs)
    converters = {s.name: lf_compat.dataset_converter(s.entry, s.name, s.dataset_dir) for s in sources}
    checker = Checker(reference, engine, prepared.tokenizer, converters, frozen)
    from .media import declares_media, media_setup

    if any(declares_media(s.entry) for s in sources):
        note = media_setup(checker, model_dir, prepared, jinja, kwargs, media_args, engine_factory is None, trust_remote_code)
        if note:
            warnings.append(note)
    return Setup(
        checker=checker,
        template=template,
        lf_version=prepared.lf_version,
        stop_ids=stop_ids,
        engine_stop_ids=engine_ids,
        missing_stop_ids=missing_ids(stop_ids, engine_ids),
        template_file=where,
        warnings=warnings,
    )

