"""The multimodal proof: LF's expanded training ids against the model's HF processor, per case.

Reference (``verifier.reference.TrainingReference.encode_media``): LF's full path, the template's
``mm_plugin`` expanding ``<image>``/``<video>``/``<audio>`` tags with LF's media arguments
(``lf.media``). Engine (``render.hf_media``): a chat template over OpenAI content parts, then the
processor's own expansion at its own resolution, as vLLM and SGLang serve most VLMs. The Jinja is
any string: the model's own chat template, or the compiled one.

A case that differs is put in one of three groups, each with its fix:

* ``resolution``: the engine given the media *as LF resized and sampled them* (``lf.media.regularized``:
  ``image_max_pixels``, ``video_fps``, ...) produces training's ids: the server sees another resolution
  or frame rate than training (fix: the processor's settings or the client-side resize);
* ``count``: not that, but the ids are equal with each medium's token runs collapsed, or the template's
  text is LF's text before expansion (LF's plugin with its own ``expand_mm_tokens`` switch off: one
  placeholder per medium): the processor expands the media into other ids than LF's plugin even at
  training's resolution (another token count, e.g. InternVL's tiling when LF trained without
  ``crop_to_patches``, or other text inside the expansion, such as Qwen3-VL's video timestamps);
* ``placeholder``: otherwise: another placeholder, another position, or other text or special tokens
  around the media (or the engine refuses the request).

The probe corpus (:func:`probe_cases`) is generated in code: patterned PIL images at several sizes,
one larger than LF's default ``image_max_pixels`` (768x768), a short video as frames, a short
audio array. Nothing is downloaded.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

from ..model.messages import has_media_tags, lf_text_to_parts
from ..model.options import TemplateOptions
from ..render.hf import RenderRequest
from .report import AlignmentReport, CaseResult, compare_ids

GROUPS = ("placeholder", "count", "resolution")


# -- the probe media ---------------------------------------------------------------------------------


def probe_image(width: int, height: int, seed: int = 0) -> Any:
    """A patterned RGB image (gradients and stripes: resizing changes it, as it does a photo)."""
    import numpy as np
    from PIL import Image

    y, x = np.mgrid[0:height, 0:width]
    r = (x * 255 // max(1, width - 1) + seed * 37) % 256
    g = (y * 255 // max(1, height - 1) + seed * 59) % 256
    b = ((x // 7 + y // 5) % 2) * 200 + 20
    return Image.fromarray(np.stack([r, g, b], -1).astype("uint8"), "RGB")


def probe_video(frames: int = 4, width: int = 112, height: int = 84) -> list[Any]:
    """A short video as a list of frames (LF's "video as images" form; LF then assumes ``video_fps``)."""
    return [probe_image(width, height, seed=k) for k in range(frames)]


def probe_video_file(directory: str, frames: int = 8, fps: int = 4, width: int = 112, height: int = 84) -> Optional[str]:
    """A short video file (MPEG-4, ``frames`` at ``fps``) written with ``av`` (LF's video reader), or ``None``
    without ``av``. Both sides decode it themselves: LF samples ``video_fps`` frames per second of it."""
    import os

    try:
        import av
        import numpy as np
    except ImportError:
        return None
    path = os.path.join(directory, f"probe-{frames}x{width}x{height}@{fps}.mp4")
    if os.path.exists(path):
        return path
    container = av.open(path, "w")
    stream = container.add_stream("mpeg4", rate=fps)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    for k in range(frames):
        frame = av.VideoFrame.from_ndarray(np.asarray(probe_image(width, height, seed=k)), format="rgb24")
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return path


def probe_audio(seconds: float = 1.0, sampling_rate: int = 16000) -> Any:
    """A mono float32 tone sweep at ``sampling_rate``."""
    import numpy as np

    t = np.arange(int(seconds * sampling_rate)) / sampling_rate
    return (0.3 * np.sin(2 * np.pi * (220 + 220 * t) * t)).astype("float32")


# -- cases ---------------------------------------------------------------------------------------------


@dataclass
class MediaCase:
    """One conversation in LF's form (roles, text with tags) with its media, in tag order."""

    id: str
    messages: list[dict[str, str]]
    media: Any  # lf.media.MediaInputs
    system: Optional[str] = None
    tools: Optional[str] = None

    @property
    def kinds(self) -> set[str]:
        return {k for k in ("image", "video", "audio") if getattr(self.media, f"{k}s")}


_MEDIA_DIR: list[str] = []


def media_dir() -> str:
    """A private temporary directory for the probe's media files (one per process, removed at exit)."""
    if not _MEDIA_DIR:
        import atexit
        import shutil
        import tempfile

        d = tempfile.mkdtemp(prefix="lf-template-ext-media-")
        atexit.register(shutil.rmtree, d, True)
        _MEDIA_DIR.append(d)
    return _MEDIA_DIR[0]


def probe_cases(kinds: Sequence[str] = ("image",), large: bool = True, video_file: bool = True) -> list[MediaCase]:
    """The multimodal probe corpus for the given media kinds.

    Images: one small image first, text before the image, two images, a system prompt, an image in
    a later turn, and (``large``) a 1600x1200 image, more pixels than LF's default ``image_max_pixels``:
    the resolution case. Video: 4 frames given as images (LF then assumes ``video_fps``; an engine
    without the clip's timing may differ) and (``video_file``) an MPEG-4 file of 8 frames at 4 fps,
    which both sides decode. Audio: a one-second tone first, a half-second one after text, both together.
    """
    from ..lf.media import MediaInputs

    small, medium = probe_image(64, 48), probe_image(320, 240, seed=1)
    out: list[MediaCase] = []
    if "image" in kinds:
        out += [
            MediaCase("image/first", [_u("<image>What is in the picture?"), _a("Stripes.")], MediaInputs(images=[small])),
            MediaCase(
                "image/after-text", [_u("Look at this: <image> Which colour dominates?"), _a("Red.")],
                MediaInputs(images=[medium]),
            ),  # fmt: skip
            MediaCase(
                "image/two", [_u("<image><image>Compare the two."), _a("The second is larger.")],
                MediaInputs(images=[small, medium]),
            ),  # fmt: skip
            MediaCase(
                "image/system", [_u("<image>Describe it."), _a("A pattern.")], MediaInputs(images=[small]),
                system="You describe images tersely.",
            ),  # fmt: skip
            MediaCase(
                "image/later-turn",
                [_u("Hello."), _a("Hi! Send a picture."), _u("<image>Here it is."), _a("Nice stripes.")],
                MediaInputs(images=[medium]),
            ),
        ]
        if large:
            out.append(
                MediaCase("image/large", [_u("<image>Where is the box?"), _a("Top left.")], MediaInputs(images=[probe_image(1600, 1200, seed=2)]))
            )
    if "video" in kinds:
        out.append(MediaCase("video/frames", [_u("<video>What happens?"), _a("Colours shift.")], MediaInputs(videos=[probe_video()])))
        path = probe_video_file(media_dir()) if video_file else None
        if path is not None:
            out.append(MediaCase("video/file", [_u("<video>What happens?"), _a("Colours shift.")], MediaInputs(videos=[path])))
    if "audio" in kinds:
        tone, short = probe_audio(), probe_audio(0.5)
        out += [
            MediaCase("audio/tone", [_u("<audio>What do you hear?"), _a("A rising tone.")], MediaInputs(audios=[tone])),
            MediaCase("audio/after-text", [_u("Listen: <audio> Which pitch?"), _a("Rising.")], MediaInputs(audios=[short])),
            MediaCase(
                "audio/two", [_u("<audio><audio>Same sound twice?"), _a("No, the second is shorter.")],
                MediaInputs(audios=[tone, short]),
            ),  # fmt: skip
        ]
    return out


def _u(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def _a(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def content_parts(text: str, media_iters: dict[str, Any]) -> Any:
    """LF text with tags -> OpenAI content parts in the same order, each medium taken from its iterator.

    The one parts<->tags mapping (``model.messages.lf_text_to_parts`` with ``model.media.LF_TAGS``); this
    only attaches the payloads, in tag order. A text without tags stays a string (what a text-only client
    sends).
    """
    if not has_media_tags(text):
        return text
    parts = lf_text_to_parts(text)
    for part in parts:
        kind = part["type"]
        if kind != "text":
            part[kind] = next(media_iters[kind])
    return parts


def openai_messages(messages: Sequence[dict[str, Any]], system: Optional[str], media: Any) -> list[dict[str, Any]]:
    """The request a client sends for an LF-shaped conversation with media (roles already OpenAI's)."""
    iters = {"image": iter(media.images), "video": iter(media.videos), "audio": iter(media.audios)}
    out: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    for m in messages:
        m = dict(m)
        if isinstance(m.get("content"), str):
            m["content"] = content_parts(m["content"], iters)
        out.append(m)
    return out


# -- comparison ------------------------------------------------------------------------------------------


@dataclass
class MediaCaseResult(CaseResult):
    """A :class:`CaseResult` with the difference's group and the media token counts of both sides."""

    group: str = ""
    expected_media: dict[str, int] = field(default_factory=dict)
    actual_media: dict[str, int] = field(default_factory=dict)
    #: a difference's comparison with the engine given the media as LF resized and sampled them (what a client
    #: does after repair, ``modeldir.media.resize_like_training``): ``identical``/``boundary_only``/``differs``
    at_training: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        if self.group:
            d["group"] = self.group
        if self.at_training:
            d["at_training_resolution"] = self.at_training
        if self.expected_media or self.actual_media:
            d["media_tokens"] = {"training": self.expected_media, "engine": self.actual_media}
        return d


def _collapse(ids: Sequence[int], media_ids: dict[int, str]) -> list[Any]:
    out: list[Any] = []
    for i in ids:
        kind = media_ids.get(i)
        if kind is not None and out and out[-1] == ("run", i):
            continue
        out.append(("run", i) if kind is not None else i)
    return out


def media_counts(ids: Sequence[int], media_ids: dict[int, str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for i in ids:
        kind = media_ids.get(i)
        if kind is not None:
            counts[kind] = counts.get(kind, 0) + 1
    return counts


def group_of(expected: Sequence[int], actual: Sequence[int], media_ids: dict[int, str]) -> str:
    """``placeholder`` when the ids differ with media runs collapsed, else ``count`` (refined to
    ``resolution`` by the caller when LF's resized media give training's ids)."""
    return "count" if _collapse(expected, media_ids) == _collapse(actual, media_ids) else "placeholder"


class MediaComparer:
    """Compares one LF-shaped sample with media: reference ids vs the processor engine's, grouped."""

    def __init__(self, reference: Any, engine: Any, media_ids: dict[int, str]) -> None:
        self.reference = reference  # verifier.reference.TrainingReference with a processor
        self.engine = engine  # render.hf_media.HFProcessorEngine
        self.media_ids = media_ids
        self.tokenizer = reference.prepared.tokenizer

    def compare(
        self, case_id: str, expected: list[int], request: RenderRequest, media: Any,
        unexpanded: Optional[Callable[[], list[int]]] = None,
    ) -> MediaCaseResult:  # fmt: skip
        """One part: ``expected`` vs the engine's ids for ``request``; the group of a difference
        (``unexpanded``: LF's ids of the part with one placeholder per medium, see :meth:`group`)."""
        try:
            actual = self.engine.ids(request)
        except Exception as e:  # the template or the processor refuses what LF trained on
            return MediaCaseResult(
                case_id, "differs", reason=f"the engine refuses it: {type(e).__name__}: {e}",
                expected_len=len(expected), actual_len=0, group="placeholder",
                expected_media=media_counts(expected, self.media_ids),
            )  # fmt: skip
        base = compare_ids(case_id, expected, actual, self.tokenizer)
        result = MediaCaseResult(**{f.name: getattr(base, f.name) for f in dataclasses.fields(CaseResult)})
        result.expected_media = media_counts(expected, self.media_ids)
        result.actual_media = media_counts(actual, self.media_ids)
        if result.status == "differs":
            result.at_training = self.training_resolution_status(expected, request, media)
            result.group = self.group(expected, actual, request, media, unexpanded, result.at_training)
        return result

    def group(
        self, expected: list[int], actual: list[int], request: RenderRequest, media: Any,
        unexpanded: Optional[Callable[[], list[int]]] = None, at_training: Optional[str] = None,
    ) -> str:  # fmt: skip
        """``resolution`` when the engine given the media as LF resized and sampled them produces training's
        ids (up to a token-boundary split); else ``count`` when the ids are equal with each medium's token runs
        collapsed (:func:`group_of`) or the template's text is LF's text before expansion (LF's plugin with
        ``expand_mm_tokens`` off: one placeholder per medium; text inside the expansion, such as video
        timestamps, differs then); else ``placeholder``."""
        if at_training is None:
            at_training = self.training_resolution_status(expected, request, media)
        if at_training in ("identical", "boundary_only"):
            return "resolution"
        same_text = group_of(expected, actual, self.media_ids) == "count"
        if not same_text and unexpanded is not None:
            try:
                same_text = self.same_text(unexpanded(), self.engine.text(request))
            except Exception:  # LF's unexpanded form is not available for this plugin
                same_text = False
        return "count" if same_text else "placeholder"

    def same_text(self, ids: list[int], text: str) -> bool:
        tok = self.tokenizer
        if tok.encode(text, add_special_tokens=False) == ids:
            return True
        return tok.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False) == text

    def at_training_resolution(self, expected: list[int], request: RenderRequest, media: Any) -> bool:
        """Does the engine, given the media as LF resized them, produce training's ids (up to a token-boundary
        split elsewhere in the sequence, LF's slots: that does not make it another difference)?"""
        return self.training_resolution_status(expected, request, media) in ("identical", "boundary_only")

    def training_resolution_status(self, expected: list[int], request: RenderRequest, media: Any) -> str:
        """``compare_ids``'s status of training's ids vs the engine given the media as LF resized and sampled
        them (``lf.media.regularized``: the pixels ``resize_like_training`` gives a client); ``differs`` when
        LF's resized media do not go through the engine."""
        from ..lf import media as lf_media
        from ..render.hf_media import Media

        try:
            reg = lf_media.regularized(self.reference.prepared, self.reference.processor, media)
            ids = self.engine.ids(request, Media(images=reg.images, videos=reg.videos, audios=reg.audios))
        except Exception:  # not a resolution-only difference
            return "differs"
        return compare_ids("", expected, ids, self.tokenizer).status


def check_case(comparer: MediaComparer, case: MediaCase, kwargs: Optional[dict[str, Any]] = None) -> list[MediaCaseResult]:
    """The full-conversation and generation-prompt cases of one :class:`MediaCase`."""
    sample = (case.messages, case.system, case.tools)
    try:
        expected, prompt, _ = comparer.reference.encode_media(sample, case.media)
    except Exception as e:  # LF cannot encode it: nothing to compare against
        reason = f"LF cannot encode this conversation: {type(e).__name__}: {e}"
        return [MediaCaseResult(f"{case.id}/full", "unsupported", reason=reason), MediaCaseResult(f"{case.id}/gen", "unsupported", reason=reason)]
    messages = openai_messages(case.messages, case.system, case.media)
    kwargs = dict(kwargs or {})
    unexpanded = unexpanded_thunks(comparer.reference, sample, case.media)
    return [
        comparer.compare(f"{case.id}/full", expected, RenderRequest(messages, None, False, kwargs), case.media, unexpanded[0]),
        comparer.compare(f"{case.id}/gen", prompt, RenderRequest(messages[:-1], None, True, kwargs), case.media, unexpanded[1]),
    ]


def unexpanded_thunks(reference: Any, sample: Any, media: Any) -> tuple[Callable[[], list[int]], Callable[[], list[int]]]:
    """LF's unexpanded ids of a sample (full, prompt), computed once, on first need (a difference)."""
    memo: list[Any] = []

    def get(k: int) -> list[int]:
        if not memo:
            memo.append(reference.encode_media(sample, media, expand=False))
        return memo[0][k]

    return (lambda: get(0)), (lambda: get(1))


def media_token_ids(prepared: Any, processor: Any) -> dict[int, str]:
    from ..lf import media as lf_media

    return {i: kind for kind, ids in lf_media.media_tokens(prepared, processor).items() for i in ids}


def verify_media(
    template: Any,
    processor: Any,
    jinja: Optional[str] = None,
    *,
    cases: Optional[Sequence[MediaCase]] = None,
    kinds: Sequence[str] = ("image",),
    options: TemplateOptions = TemplateOptions(),
    media_args: Optional[dict[str, Any]] = None,
    kwargs: Optional[dict[str, Any]] = None,
    processor_kwargs: Optional[dict[str, Any]] = None,
) -> AlignmentReport:
    """The multimodal probe: LF's template ``template`` (a name or an LF Template) with LF's media
    arguments (``media_args`` over LF's defaults) against ``jinja`` (default: the compiled template of
    ``template`` with ``options``, what a repaired dir serves; pass ``processor.chat_template`` to measure the
    model's own) expanded by ``processor`` (called with ``processor_kwargs``, a server's ``--mm-processor-kwargs``).
    Cases default to :func:`probe_cases` of ``kinds``.

    Each case's ``MediaCaseResult.group`` says what differs (module docstring).
    """
    from ..lf import compat as lf_compat
    from ..lf import media as lf_media
    from ..render.hf_media import HFProcessorEngine
    from .reference import TrainingReference

    prepared = lf_compat.prepare(template, processor.tokenizer, options)
    training = lf_media.training_processor(processor, prepared.tokenizer, media_args)
    reference = TrainingReference(prepared, training)
    if jinja is None:
        from ..compiler import compile_spec
        from .gate import snapshot

        snap = snapshot(template, processor.tokenizer, options)
        jinja = compile_spec(snap.spec, snap.facts)
    engine = HFProcessorEngine(processor, jinja, processor_kwargs=processor_kwargs)
    comparer = MediaComparer(reference, engine, media_token_ids(prepared, training))
    report = AlignmentReport(
        template=prepared.name,
        options={**options.to_dict(), "media": lf_media.media_arguments(media_args)},
        engine=engine.name,
        lf_version=prepared.lf_version,
    )
    for case in probe_cases(kinds) if cases is None else cases:
        report.cases.extend(check_case(comparer, case, kwargs))
    return report


# -- check --dataset with media (verifier.dataset) -------------------------------------------------------

def declares_media(entry: dict[str, Any]) -> bool:
    """Does a ``dataset_info.json`` entry map ``images``/``videos``/``audios`` columns (LF reads media)?"""
    return any((entry.get("columns") or {}).get(k) for k in ("images", "videos", "audios"))


def trained_media_args(model_dir: str) -> tuple[Optional[dict[str, Any]], str]:
    """LF's media arguments the dir's training used, from LF's ``training_args.yaml`` (the dir, or the run's
    output dir of a ``checkpoint-N``), and where they came from; ``(None, "LF's defaults")`` without one."""
    import os

    import yaml

    from ..lf.media import MEDIA_ARGUMENTS

    dirs = [os.path.abspath(model_dir)]
    if re.fullmatch(r"checkpoint-\d+", os.path.basename(dirs[0])):
        dirs.append(os.path.dirname(dirs[0]))
    for d in dirs:
        path = os.path.join(d, "training_args.yaml")
        if not os.path.isfile(path):
            continue
        try:
            with open(path, encoding="utf-8") as f:
                data = yaml.safe_load(f) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue
        if isinstance(data, dict):
            found = {k: data[k] for k in MEDIA_ARGUMENTS if data.get(k) is not None}
            return (found, path) if found else (None, f"LF's defaults ({path} sets none)")
    return None, "LF's defaults"


def media_setup(
    checker: Any, model_dir: str, prepared: Any, jinja: Optional[str], kwargs: dict[str, Any],
    media_args: Optional[dict[str, Any]], default_engine: bool, trust_remote_code: bool,
) -> Optional[str]:  # fmt: skip
    """Let ``checker`` (``verifier.dataset.Checker``) compare samples with media: LF's patched processor on the reference side, the dir's
    processor behind the engine side (``render.hf_media.MediaRouter``); or say why samples with media are
    not compared (another engine, native mode, no processor in the dir). Returns a line saying which LF
    media arguments the reference uses (``media_args``, else the dir's ``training_args.yaml``, else LF's
    defaults), or ``None`` when samples with media are not compared."""
    if not default_engine:
        checker.no_media_reason = "it carries images/videos/audios; this engine's check compares text only"
        return None
    if not hasattr(checker.reference, "training"):  # native mode's reference
        checker.no_media_reason = (
            "it carries images/videos/audios; native mode with media is not checked (LF's template trains media)"
        )
        return None
    from ..lf import media as lf_media
    from ..render.hf_media import HFProcessorEngine, MediaRouter
    processor = lf_media.load_processor(model_dir, trust_remote_code=trust_remote_code)
    if processor is None:
        checker.no_media_reason = (
            f"it carries images/videos/audios and {model_dir} has no processor AutoProcessor loads "
            "(preprocessor_config.json / processor_config.json; LF cannot train media without one): the check compares text only"
        )
        return None
    source = "given"
    if media_args is None:
        media_args, source = trained_media_args(model_dir)
    training = lf_media.training_processor(processor, prepared.tokenizer, media_args)
    reference = checker.reference
    reference.training.processor = training
    media_engine = HFProcessorEngine(processor, jinja, kwargs)
    checker.engine = MediaRouter(checker.engine, media_engine)
    checker.media = MediaComparer(reference.training, media_engine, media_token_ids(prepared, training))
    used = lf_media.media_arguments(media_args)
    shown = ", ".join(f"{k}={used[k]}" for k in ("image_max_pixels", "image_min_pixels", "video_max_pixels", "video_fps") if k in used)
    return f"samples with media: LF's media arguments from {source} ({shown}, ...)"


def media_result(checker: Any, result: Any, part: Any, actual: list[int]) -> Any:
    """``check --dataset``: a part of a sample with media (``verifier.dataset.Checker.compare``): its media token
    counts, and a difference's group and kind."""
    ids = checker.media.media_ids
    result.media_tokens = {"training": media_counts(part.expected, ids), "engine": media_counts(actual, ids)}
    if result.status == "identical":
        return result
    if result.status == "differs":
        result.group = checker.media.group(part.expected, actual, part.request, part.media, part.unexpanded)
    if result.group in ("count", "resolution"):
        result.kind = f"differs · {part.name} · media {result.group}: {GROUP_FIX[result.group]}"
    else:
        i = result.first_diff.index if result.first_diff else 0
        result.kind = checker.kind_of(result.status, part, actual, i)
        if result.group:
            result.kind = result.kind.replace(" · in ", " · media placeholder · in ", 1)
    return result


def groups(report: AlignmentReport) -> dict[str, list[str]]:
    """Case ids per difference group (``placeholder`` / ``count`` / ``resolution``)."""
    out: dict[str, list[str]] = {g: [] for g in GROUPS}
    for c in report.cases:
        g = getattr(c, "group", "")
        if g:
            out[g].append(c.id)
    return out


#: the family verdicts of :func:`expansion_verdict`, best first
VERDICTS = ("exact after expansion", "boundary-only", "differs", "unsupported")


def case_after_resolution(case: Any) -> str:
    """A case's status once resolution is taken out: a ``resolution`` difference counts as what the engine
    gives with the media at training's resolution (the processor's limits like training's, or the client's
    ``resize_like_training``)."""
    if case.status == "differs" and getattr(case, "group", "") == "resolution":
        return getattr(case, "at_training", "") or "differs"
    return case.status


def expansion_verdict(cases: Sequence[Any]) -> str:
    """One verdict for a family's cases (``report.cases``): ``exact after expansion`` when every case's ids (media expanded by
    the processor, at training's resolution) equal training's; ``boundary-only`` when the only differences are
    token-boundary splits (LF tokenizes slot by slot; ``template_ext_tokenize: whole`` removes them);
    ``differs``; ``unsupported`` when LF itself cannot encode a case and nothing else differs."""
    statuses = {case_after_resolution(c) for c in cases}
    if "differs" in statuses:
        return "differs"
    if "unsupported" in statuses:
        return "unsupported"
    if "boundary_only" in statuses:
        return "boundary-only"
    return "exact after expansion"


#: what each group means for the user, and the fix
GROUP_FIX = {
    "placeholder": "the ids around the media differ (the template's placeholder, its position, or the text "
    "and special tokens around it): serve the compiled template",
    "count": "even at training's resolution the processor expands the media into other ids than LF's plugin "
    "(a token count, e.g. tiling, or text inside the expansion such as timestamps): its settings differ from training's",
    "resolution": "the server sees the media at another resolution or frame rate than training (LF resized "
    "and sampled them with its media arguments): set the processor's limits like training or resize on the client",
}


def format_report(report: AlignmentReport) -> str:
    """The report as lines: counts, each group with its cases and fix, then each non-identical case with
    its media token counts and, for a placeholder difference, its first divergence (``FirstDiff.shown``)."""
    s = report.summary
    lines = [
        f"{report.template} vs {report.engine}: {s['identical']} identical, {s['boundary_only']} boundary-only, "
        f"{s['differs']} differ, {s['unsupported']} unsupported"
    ]
    for g, ids in groups(report).items():
        if ids:
            lines.append(f"  {g}: {len(ids)} ({', '.join(ids[:6])}{', ...' if len(ids) > 6 else ''})")
            lines.append(f"      {GROUP_FIX[g]}")
    for c in report.cases:
        if c.status == "identical":
            continue
        media = getattr(c, "expected_media", {}), getattr(c, "actual_media", {})
        lines.append(f"  {c.id}: {c.status}{' · ' + c.group if getattr(c, 'group', '') else ''}"
                     f"{f' · media tokens training {media[0]} engine {media[1]}' if media[0] != media[1] else ''}")  # fmt: skip
        if getattr(c, "group", "") in ("count", "resolution") and media[0] != media[1]:
            continue  # the counts say it; a window of pad tokens says nothing more
        if c.first_diff is not None:
            training, engine = c.first_diff.shown(c.status, 100)
            lines.append(f"      token {c.first_diff.index}: training {training}")
            lines.append(f"      {' ' * len(str(c.first_diff.index))}        engine   {engine}")
        elif c.reason:
            lines.append(f"      {c.reason[:300]}")
    return "\n".join(lines)
