"""The engine registry: what each serving engine gets from us, decided in one place.

``emit``, ``repair --engines``, the export hook (``template_ext_engines``) and ``check --engine``
all look an engine up here instead of keeping their own if-ladders. An :class:`Engine` says which
file it reads from a model dir, how that file is written for a template (``emit``: raises
``UnsupportedTemplateError`` when the engine cannot express the template), and, for the engines
whose file we can render with the engine's own code, how ``check --engine NAME`` gets ready before
LF loads (``preflight``) and builds the engine side (``side``).

What an engine can express for a template is decided here too, once (:class:`Verdict`, the
``expressible`` field): ``emit`` exits 3 when the verdict says no, ``repair --engines`` and the export
hook write no file then, SERVING.md does not recommend the file and says why, and the caveats of an
expressible file appear in emit's output, SERVING.md and ``alignment_report.json`` (``engines``).

The text writers stay pure (``compiler.ollama``, ``compiler.lmdeploy``); this module adds what
needs a model dir or a tokenizer (Ollama's BOS rule, LMDeploy's folder-name match).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Callable, Optional

from ..errors import BadInputError, UnsupportedTemplateError


@dataclass(frozen=True)
class EmitContext:
    """What an engine file is written from: the template snapshot and the model dir it serves."""

    snapshot: Any  # lf.compat.Snapshot
    model_dir: str
    model_name: str
    tokenizer: Any  # the dir's own tokenizer (before LF's fixing)
    cutoff_len: Optional[int] = None  # training's (SERVING.md explains it; never a serving limit)
    #: the serving context asked for (``--max-model-len`` / ``template_ext_serve_max_len``); None: the model's own
    serve_max_len: Optional[int] = None
    #: a LoRA adapter dir: the base model engines load it onto (None: unknown)
    is_adapter: bool = False
    base_model: Optional[str] = None
    #: how training encoded (``slots``/``whole``); None: the dir's record (``modeldir.record.trained_tokenize``)
    tokenize: Optional[str] = None
    #: the dir the file is written to (a Modelfile's FROM is relative to it); None: ``model_dir``
    output_dir: Optional[str] = None
    #: ``{key: "value (source)"}``: where the template and each option came from (report, SERVING.md)
    provenance: Optional[dict[str, str]] = None
    #: LF chat's sampling and what is written (``model.generation.Sampling``); None: nothing written
    sampling: Any = None
    #: ``generation_config.json`` as this run leaves it (None: read it from the dir)
    generation: Optional[dict[str, Any]] = None


@dataclass(frozen=True)
class Verdict:
    """Whether an engine's file renders a template as trained: ``ok`` (the file is written and
    recommended), ``caveats`` (true of every conversation, shown wherever the file is), ``reason`` (why
    not, naming the feature), ``feature`` (the feature that decided it)."""

    ok: bool
    caveats: tuple[str, ...] = ()
    reason: Optional[str] = None
    feature: Optional[str] = None

    def to_dict(self) -> dict[str, Any]:
        return {"expressible": self.ok, "caveats": list(self.caveats), "reason": self.reason}


def _always(ctx: "EmitContext") -> Verdict:
    return Verdict(True)


def _jinja_expressible(ctx: "EmitContext") -> Verdict:
    """The compiled Jinja serves every text conversation; media parts a plugin cannot express raise in the
    template (compiler/media.py) and are caveats here (docs/multimodal.md)."""
    from ..model import media as mm

    m = ctx.snapshot.spec.media
    state, why = mm.status(m)
    if state == "refused":
        return Verdict(True, caveats=(f"media parts: refused (the template raises): {why}",))
    return Verdict(True, caveats=tuple(f"{k} parts: refused (the template raises): {r}" for k, r in mm.kinds_refused(m).items()))


@dataclass(frozen=True)
class Engine:
    name: str
    #: the file this engine reads, written by ``repair --engines`` and by default by ``emit``
    filename: str
    emit: Callable[[EmitContext], str]
    #: repair writes the file (vLLM's template files are written by every repair, not as an extra)
    written_by_repair: bool = True
    #: ``check --engine NAME``: checks before LF loads (returns what ``side`` needs), and the engine side
    preflight: Optional[Callable[[str], Any]] = None
    side: Optional[Callable[..., Any]] = None
    #: ``check --artifact FILE``: refuses a file this engine would not take as its template
    validate_artifact: Optional[Callable[[str, str], None]] = None
    #: what this engine's file can express for a template (the one decision emit, repair, export,
    #: SERVING.md and the report read)
    expressible: Callable[[EmitContext], Verdict] = _always

    def verdict(self, ctx: EmitContext) -> Verdict:
        """:attr:`expressible`, with an ``UnsupportedTemplateError`` of the writer as a refusal."""
        try:
            return self.expressible(ctx)
        except UnsupportedTemplateError as e:
            return Verdict(False, reason=e.reason, feature=e.feature)

    def emit_checked(self, ctx: EmitContext) -> tuple[str, Verdict]:
        """The file's text and its verdict; raises ``UnsupportedTemplateError`` (exit 3) when not expressible."""
        verdict = self.verdict(ctx)
        if not verdict.ok:
            raise UnsupportedTemplateError(ctx.snapshot.spec.name, verdict.reason or "not expressible", verdict.feature or "")
        return self.emit(ctx), verdict


# -- emitting ----------------------------------------------------------------------------------------------


def _emit_jinja(ctx: EmitContext) -> str:
    """The compiled template; its tool order follows how training encoded (``model.tool_order.tool_order_for``)."""
    from ..compiler import compile_spec
    from ..model.tool_order import tool_order_for
    from ..modeldir.record import trained_tokenize

    tokenize = ctx.tokenize or trained_tokenize(ctx.model_dir)
    return compile_spec(ctx.snapshot.spec, ctx.snapshot.facts, tool_order=tool_order_for(tokenize))


def emit_modelfile(
    spec: Any,
    facts: Any,
    *,
    cutoff_len: Optional[int],
    from_: str = ".",
    engine_adds_bos: bool = False,
    adapter: Optional[str] = None,
    parameters: tuple[tuple[str, str], ...] = (),
) -> str:
    """Ollama Modelfile. The template writes LF's prefix (BOS) itself, unless ``engine_adds_bos``: the
    model Ollama builds from the dir adds a BOS to every prompt (see ``render.ollama.adds_bos``), so the
    TEMPLATE leaves it out instead of doubling it. ``lf-template repair model.gguf`` sets a GGUF's
    ``add_bos_token`` to false, which needs no such change."""
    from ..compiler import ollama

    return ollama.modelfile(
        spec,
        facts,
        from_=from_,
        stop_words=ollama.default_stop_words(spec, facts),
        cutoff_len=cutoff_len,
        jinja_may_take_over=True,  # the dir's tokenizer_config.json holds a chat_template the GGUF will carry
        engine_adds_bos=engine_adds_bos,
        adapter=adapter,
        parameters=parameters,
    )


def modelfile_paths(ctx: EmitContext) -> tuple[str, Optional[str]]:
    """``(FROM, ADAPTER)`` for a Modelfile written to ``ctx.output_dir``: ``.`` inside the model dir, else
    its absolute path (Ollama resolves both relative to the Modelfile); an adapter dir is loaded onto its
    base model (``FROM <base>``, ``ADAPTER <adapter dir>``)."""
    import os

    out = os.path.abspath(ctx.output_dir or ctx.model_dir)
    here = os.path.abspath(ctx.model_dir)
    own = "." if out == here else here
    if not ctx.is_adapter:
        return own, None
    if not ctx.base_model:
        raise BadInputError(
            "a Modelfile for a LoRA adapter needs the base model (FROM base, ADAPTER this dir), which is unknown",
            path=ctx.model_dir,
            hint="set base_model_name_or_path in adapter_config.json, or merge first (llamafactory-cli export)",
        )
    base = os.path.abspath(ctx.base_model) if os.path.isdir(ctx.base_model) else ctx.base_model
    return base, own


def ollama_adds_bos(model_dir: str, tokenizer: Any) -> bool:
    """Whether ``ollama create`` from ``model_dir`` (``FROM .``) gives a model that adds a BOS itself."""
    from ..render.ollama import adds_bos

    return adds_bos(model_dir, tokenizer)


def _emit_ollama(ctx: EmitContext) -> str:
    from_, adapter = modelfile_paths(ctx)
    adds_bos = ollama_adds_bos(ctx.base_model if adapter and os.path.isdir(ctx.base_model or "") else ctx.model_dir, ctx.tokenizer)
    from ..model.generation import modelfile_parameters

    params = tuple(modelfile_parameters(ctx.sampling.written)) if ctx.sampling is not None else ()
    return emit_modelfile(
        ctx.snapshot.spec, ctx.snapshot.facts, cutoff_len=ctx.serve_max_len, from_=from_, engine_adds_bos=adds_bos,
        adapter=adapter, parameters=params,
    )  # fmt: skip


def emit_lmdeploy(spec: Any, facts: Any, *, model_name: str, tokenizer: Any = None) -> str:
    """LMDeploy ``--chat-template`` JSON (raises ``UnsupportedTemplateError`` when not expressible)."""
    from ..compiler import lmdeploy

    adds_bos = lmdeploy.tokenizer_adds_bos(tokenizer) if tokenizer is not None else None
    config = lmdeploy.chat_template_config(spec, facts, model_name=model_name, tokenizer_adds_bos=adds_bos)
    return json.dumps(config, indent=2, ensure_ascii=False) + "\n"


def _emit_lmdeploy(ctx: EmitContext) -> str:
    return emit_lmdeploy(ctx.snapshot.spec, ctx.snapshot.facts, model_name=ctx.model_name, tokenizer=ctx.tokenizer)


#: The LMDeploy JSON features whose loss is a caveat (the file is still written); any other feature the
#: JSON cannot render (a system message: every OpenAI client may send one) makes it not expressible.
LMDEPLOY_CAVEAT_FEATURES = ("tools", "tool_results", "reasoning", "empty_system")


def _lmdeploy_expressible(ctx: EmitContext) -> Verdict:
    """LMDeploy's JSON for the template: not expressible when the compiler refuses it or when a system
    message would render differently from training (llama3: LF writes ``<|start_header_id|>system...``,
    the JSON writes the system text bare after ``<|begin_of_text|>``, measured with ``check --engine
    lmdeploy``); the features in :data:`LMDEPLOY_CAVEAT_FEATURES` are caveats."""
    from ..compiler import lmdeploy
    from ..compiler.lmdeploy import HF_PATH

    adds_bos = lmdeploy.tokenizer_adds_bos(ctx.tokenizer) if ctx.tokenizer is not None else None
    tpl = lmdeploy.lmdeploy_template(
        ctx.snapshot.spec, ctx.snapshot.facts, model_name=ctx.model_name, tokenizer_adds_bos=adds_bos
    )
    system = tpl.reason("system")
    if system is not None:
        if HF_PATH not in system:
            system = f"{system}; {HF_PATH}"
        return Verdict(False, reason=f"system messages: {system}", feature="system")
    caveats = []
    for feature in LMDEPLOY_CAVEAT_FEATURES:
        why = tpl.reason(feature)
        if why:
            caveats.append(f"{feature.replace('_', ' ')}: {why.split('; serve with')[0]}")
    media = lmdeploy.media_reason(ctx.snapshot.spec)
    if media:  # text conversations are served as trained; media parts are not (docs/multimodal.md)
        caveats.append(media)
    return Verdict(True, caveats=tuple(caveats))


def _ollama_expressible(ctx: EmitContext) -> Verdict:
    """Ollama re-serializes tool JSON from Go structs and maps (sorted keys): tool definitions match training
    only when training wrote them canonically (``tokenize: whole``); call arguments always keep the dataset's order
    in training, so they are a caveat either way."""
    from ..compiler.ollama import media_reason
    from ..model.tool_order import CANONICAL, tool_order_for
    from ..modeldir.record import trained_tokenize

    media = media_reason(ctx.snapshot.spec)
    extra = (media,) if media else ()  # text conversations as trained; media parts not (docs/multimodal.md)
    if ctx.snapshot.spec.tools_format is None:
        return Verdict(True, caveats=extra)
    if tool_order_for(ctx.tokenize or trained_tokenize(ctx.model_dir)) == CANONICAL:
        what = ("tool-call arguments: Ollama hands them to the TEMPLATE as a Go map, so they come out in sorted key "
                "order where training wrote the dataset's (tool definitions were trained in that same sorted order: "
                "exact)")  # fmt: skip
    else:
        what = ("tools: Ollama hands tool definitions and call arguments to the TEMPLATE as Go structs and maps, so "
                "their JSON comes out in struct / sorted key order where training wrote the dataset's order: a tool "
                "prompt can differ from training in key order only (docs/engines-ollama.md, `normalised-JSON`)")  # fmt: skip
    return Verdict(True, caveats=(what,) + extra)


def lmdeploy_name_warning(model_dir_name: str) -> Optional[str]:
    from ..compiler import lmdeploy

    return lmdeploy.name_match_warning(model_dir_name)


def _emit_gguf(ctx: EmitContext) -> str:
    """The GGUF metadata a repaired GGUF carries (``lf-template repair model.gguf`` writes it)."""
    snap = ctx.snapshot
    stops = list(snap.stop_ids)
    return json.dumps(
        {
            "tokenizer.chat_template": _emit_jinja(ctx),
            "tokenizer.ggml.eos_token_id": snap.prepared.tokenizer.eos_token_id,
            "tokenizer.ggml.eot_token_id (if present)": stops[0],
            "tokenizer.ggml.eos_token_ids (if present)": stops,
            "tokenizer.ggml.add_bos_token": False,
        },
        indent=2,
        ensure_ascii=False,
    ) + "\n"


def served_name(ctx: EmitContext) -> str:
    """The model name an OpenAI-compatible server answers to, as SERVING.md serves it: the dir's name
    (``--served-model-name``), or the LoRA adapter's name on a server with the base model."""
    from .serving import LORA_NAME

    return LORA_NAME if ctx.is_adapter else ctx.model_name


def _emit_openwebui(ctx: EmitContext) -> str:
    """Open WebUI's model preset (``workflows.openwebui``): empty system prompt, stop strings, sampling."""
    from .openwebui import preset_json

    written = ctx.sampling.written if ctx.sampling is not None else {}
    return preset_json(
        served_name=served_name(ctx), template=ctx.snapshot.spec.name, stop_tokens=list(ctx.snapshot.stop_tokens()),
        sampling=written,
    )  # fmt: skip


# -- check --engine NAME (the artifact rendered by the engine's own code) -----------------------------------


def _ollama_preflight(model_dir: str) -> Any:
    from ..render import ollama_go

    return ollama_go.binary()  # built on first use; no `go` -> bad input


def _lmdeploy_preflight(model_dir: str) -> Any:
    import importlib.util
    import os

    from ..render.lmdeploy import INSTALL_HINT

    if importlib.util.find_spec("lmdeploy") is None:
        raise BadInputError("--engine lmdeploy needs the lmdeploy package, which is not installed", hint=INSTALL_HINT)
    if not os.path.isfile(os.path.join(model_dir, "config.json")):
        raise BadInputError(
            "no config.json: LMDeploy reads it (model type, architecture) before it loads the tokenizer",
            path=model_dir,
            hint="check the merged/exported model dir you serve (it has config.json)",
        )
    return None


def _ollama_side(ctx: EmitContext, text: str, *, ready: Any, now: Any, kwargs: dict[str, Any], **_: Any) -> Any:
    from ..render import ollama as ollama_side
    from ..render import ollama_go

    return ollama_side.make_engine(
        ctx.model_dir, ctx.snapshot, ctx.tokenizer, text=text, binary=ready, now=ollama_go.go_time(now), kwargs=kwargs
    )


def _lmdeploy_side(ctx: EmitContext, text: str, *, trust_remote_code: bool = False, **_: Any) -> Any:
    from ..render import lmdeploy as lmdeploy_side

    return lmdeploy_side.make_engine(
        ctx.model_dir, ctx.snapshot, ctx.tokenizer, text=text, trust_remote_code=trust_remote_code
    )


def _validate_modelfile(text: str, path: str) -> None:
    if not any(line.strip().upper().startswith("TEMPLATE") for line in text.splitlines()):
        raise BadInputError(
            "--artifact: the Modelfile has no TEMPLATE: Ollama would use the template inside the GGUF, which is "
            "the model's Jinja converted by Ollama, not this file",
            path=path,
            hint="check the model dir's Jinja with --engine hf, or pass a Modelfile with a TEMPLATE",
        )


def _validate_lmdeploy_json(text: str, path: str) -> None:
    try:
        json.loads(text)
    except json.JSONDecodeError as e:
        raise BadInputError(
            f"--artifact: not an LMDeploy chat template JSON: {e}", path=path,
            hint="pass the file given to lmdeploy's --chat-template (`lf-template emit MODEL_DIR --engine lmdeploy`)",
        ) from None  # fmt: skip


ENGINES: dict[str, Engine] = {
    "vllm": Engine("vllm", "chat_template.jinja", _emit_jinja, written_by_repair=False, expressible=_jinja_expressible),
    "ollama": Engine(
        "ollama", "Modelfile", _emit_ollama,
        preflight=_ollama_preflight, side=_ollama_side, validate_artifact=_validate_modelfile,
        expressible=_ollama_expressible,
    ),  # fmt: skip
    "lmdeploy": Engine(
        "lmdeploy", "lmdeploy_chat_template.json", _emit_lmdeploy,
        preflight=_lmdeploy_preflight, side=_lmdeploy_side, validate_artifact=_validate_lmdeploy_json,
        expressible=_lmdeploy_expressible,
    ),  # fmt: skip
    "gguf": Engine("gguf", "-", _emit_gguf, written_by_repair=False),
    "openwebui": Engine("openwebui", "open-webui-model.json", _emit_openwebui),
}
#: The engines ``check --engine`` renders through their own code from the file we emit.
ARTIFACT_ENGINES: tuple[str, ...] = tuple(name for name, e in ENGINES.items() if e.side is not None)


def verdicts(ctx: EmitContext) -> dict[str, Verdict]:
    """Every engine's verdict for one template and dir (SERVING.md and the report show them all)."""
    return {name: engine.verdict(ctx) for name, engine in ENGINES.items()}


def get(name: str) -> Engine:
    try:
        return ENGINES[name]
    except KeyError:
        raise BadInputError(f"unknown engine {name!r} (choose from {', '.join(ENGINES)})") from None


def parse_names(value: Any) -> tuple[str, ...]:
    """``[vllm, ollama]`` / ``"vllm,ollama"`` / a list, as the YAML key and the CLI flag give it; vLLM by default."""
    if value is None:
        return ("vllm",)
    if isinstance(value, str):
        items = [v.strip() for v in value.strip("[]").split(",")]
    else:
        items = [str(v).strip() for v in value]
    names = tuple(v for v in items if v) or ("vllm",)
    bad = [n for n in names if n not in ENGINES]
    if bad:
        raise BadInputError(f"unknown engine(s) {', '.join(bad)} (choose from {', '.join(ENGINES)})")
    return names
