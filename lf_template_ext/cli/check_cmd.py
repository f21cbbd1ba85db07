"""``lf-template check``: does a model dir (or a live server) render what training saw?

Three modes share the options, the exit codes and the report schema:

* probe corpus vs the model dir's template (no ``--dataset``, no ``--endpoint``);
* ``--dataset``: every sample of an LF dataset, as LF trained on it (``dataset_check``);
* ``--endpoint URL``: the engine side is a live vLLM / llama-server (``endpoint``), for the
  probe corpus or, with ``--dataset``, for every sample.

The engine side is the model dir's Jinja as vLLM/SGLang use it (``--engine hf,vllm,sglang``), or
(``--engine ollama`` / ``--engine lmdeploy``, one per run) the Modelfile / LMDeploy JSON this
package emits for the template, rendered by the engine's own code (``render/ollama.py``:
Ollama's template execution re-created in Go; ``render/lmdeploy.py``: LMDeploy itself) and
tokenized with that engine's BOS rule, for the probe corpus or every sample of ``--dataset``.

Everything that can be checked without LF (paths, JSON, dataset names, column mappings, flags,
the server being up) is checked before LF, torch and transformers are imported.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Optional

from ..workflows.engines import ARTIFACT_ENGINES  # the emitted file, rendered by the engine's own code
from .common import add_template_options, require_dir, resolve_template

HELP = "compare LF's training ids with what engines will render from a model dir"
DESCRIPTION = """\
Render the probe corpus with the chat template engines will load from MODEL_DIR (chat_template.jinja
first, then tokenizer_config.json, as transformers/vLLM/SGLang do), tokenize it as vLLM does, and compare
token by token with LLaMA-Factory's training encoding for the template you trained with. Also checks that
engines stop on every stop token of the template (tokenizer eos + generation_config.json eos_token_id).

With --dataset, every sample of your training data is checked instead, read as LF reads it
(dataset_info.json columns and tags, alpaca/sharegpt): a summary groups the differences by kind with one
example each, and --report lists every differing sample index. With --endpoint, the engine side is a
live server (vLLM's /tokenize, or llama-server's /apply-template + /tokenize). With --engine ollama or
--engine lmdeploy, the engine side is the Modelfile / LMDeploy JSON `lf-template emit` writes for the
template, rendered by the engine's own code (Ollama's template execution re-created in Go, built with the
local `go`; LMDeploy's messages2prompt and tokenizer, needs the lmdeploy package) with its BOS rule;
--artifact FILE checks the Modelfile / JSON you actually serve (e.g. edited by hand) instead.

examples:
  lf-template check ./merged --template llama3                 # exit 1: the native template differs
  lf-template check ./merged --config train.yaml --json        # machine-readable, same exit codes
  lf-template check ./merged --template qwen --strict          # boundary-only cases fail too
  lf-template check ./merged --template qwen --dataset data/my_sft.json --workers 2 --report check.json
  lf-template check ./merged --template qwen --dataset my_sft,my_tools --dataset-dir data
  lf-template check ./merged --template native --dataset my_sft --dataset-dir data
  lf-template check ./merged --template qwen3 --dataset data/my_sft.json --endpoint http://localhost:8000
  lf-template check ./merged --template qwen --dataset data/my_sft.json --engine ollama
  lf-template check ./merged --template qwen --dataset data/my_sft.json --engine lmdeploy
  lf-template check ./merged --template qwen --engine ollama --artifact ./merged/Modelfile

exit codes: 0 aligned (boundary-only cases are warned about), 1 misaligned, 2 bad input, 3 the engine's
file cannot express the template (--engine ollama / lmdeploy; the reason is printed).
"""

ENGINES = ("hf", "vllm", "sglang")  # all render the model dir's Jinja with transformers, no BOS added


def _positive(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return n


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_dir", metavar="MODEL_DIR", help="merged/exported model dir, checkpoint or HF snapshot")
    parser.add_argument("--json", action="store_true", help="print the report as JSON (schema: docs/cli.md)")
    parser.add_argument("--report", metavar="FILE", help="also write the JSON report to FILE")
    parser.add_argument("--strict", action="store_true", help="treat boundary-only cases as misaligned (exit 1)")
    parser.add_argument("--trust-remote-code", action="store_true", help="allow tokenizers that ship code")
    g = parser.add_argument_group("datasets (docs/dataset-check.md)")
    g.add_argument(
        "--dataset",
        metavar="PATH_OR_NAMES",
        help="a dataset file/dir, or dataset names of dataset_info.json joined by commas (as LF's `dataset:`)",
    )
    g.add_argument("--dataset-dir", metavar="DIR", help="LF's dataset_dir holding dataset_info.json (default: ./data)")
    g.add_argument("--max-samples", type=_positive, metavar="N", help="check the first N rows of each dataset (LF's max_samples)")
    g.add_argument(
        "--workers",
        type=_positive,
        default=None,
        metavar="K",
        help=f"processes to check with (default: 1 below {AUTO_WORKERS_MIN_ROWS:,} rows, where starting workers costs "
        f"more than it saves, else one per core up to {AUTO_WORKERS_MAX})",
    )
    g.add_argument(
        "--allow-skipped",
        action="store_true",
        help="exit 0 even when some rows cannot be read or encoded by LF (listed as unsupported); by default they "
        "make the check fail (exit 1): training fails on them or loses them",
    )
    g.add_argument("--batch-size", type=_positive, default=128, metavar="B", help=argparse.SUPPRESS)
    g.add_argument(
        "--engine",
        metavar="NAMES",
        default="hf",
        help="engines to model: hf, vllm, sglang (comma-separated; all render the model dir's chat template with "
        "transformers and tokenize without BOS), or one of ollama (the emitted Modelfile's TEMPLATE through Ollama's "
        "template execution re-created in Go; needs `go`), lmdeploy (the emitted JSON through LMDeploy's own "
        "messages2prompt and tokenizer; needs the lmdeploy package)",
    )
    g.add_argument(
        "--artifact",
        metavar="FILE",
        help="with --engine ollama or lmdeploy: check this Modelfile / LMDeploy JSON (the one you serve) instead of "
        "the one `lf-template emit` writes for the template",
    )
    g.add_argument(
        "--chat-template-kwargs",
        metavar="JSON",
        help="template variables every request sends, as vLLM's chat_template_kwargs (e.g. '{\"enable_thinking\": false}'); "
        "native mode defaults to the ones it trained with; without --dataset, the probe corpus is sent with them",
    )
    e = parser.add_argument_group("live server")
    e.add_argument("--endpoint", metavar="URL", help="compare against a running vLLM or llama-server instead of MODEL_DIR's files")
    e.add_argument(
        "--endpoint-kind", choices=("auto", "vllm", "llama-server"), default="auto", help="server type (default: detect)"
    )
    e.add_argument("--served-model-name", metavar="NAME", help="the model name to send to vLLM (default: the server's)")
    add_template_options(parser)


def _engines(value: str) -> list[str]:
    from ..errors import BadInputError

    names = [n.strip().lower() for n in value.split(",") if n.strip()]
    known = f"one or more of {', '.join(ENGINES)}, or one of {', '.join(ARTIFACT_ENGINES)}"
    if not names:
        raise BadInputError("--engine is empty", hint=f"use {known}")
    for n in names:
        if n == "gguf":
            raise BadInputError(
                "--engine gguf: a GGUF renders the Jinja chat template it carries, which `lf-template repair "
                "model.gguf` replaces with the one of this model dir",
                hint="repair the GGUF with `lf-template repair model.gguf --template NAME`, then check this dir with "
                "--engine hf (the same Jinja), or a running llama-server with --endpoint URL",
            )
        if n not in ENGINES + ARTIFACT_ENGINES:
            raise BadInputError(f"--engine: unknown engine {n!r}", hint=f"use {known}")
    names = list(dict.fromkeys(names))
    artifact = [n for n in names if n in ARTIFACT_ENGINES]
    if artifact and len(names) > 1:
        raise BadInputError(
            f"--engine {','.join(names)}: {artifact[0]} is checked on its own (its own renderer and BOS rule)",
            hint=f"run one check per engine: --engine {artifact[0]}, then --engine "
            + ",".join(n for n in names if n != artifact[0]),
        )
    return names


def _template_kwargs(value: Optional[str]) -> Optional[dict[str, Any]]:
    if value is None:
        return None
    import json

    from ..errors import BadInputError

    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as e:
        raise BadInputError(f"--chat-template-kwargs is not JSON: {e}", hint='pass an object, e.g. \'{"enable_thinking": false}\'') from None
    if not isinstance(parsed, dict):
        raise BadInputError("--chat-template-kwargs must be a JSON object", hint='e.g. \'{"enable_thinking": false}\'')
    return parsed


def run(args: argparse.Namespace) -> int:
    require_dir(args.model_dir)
    from ..modeldir.files import inspect_dir

    inspect_dir(args.model_dir)  # bad input found before LF loads
    from ..modeldir.journal import interrupted_run

    interrupted = interrupted_run(args.model_dir)
    if interrupted:  # the dir holds a mix of old and new files until the next repair/restore rolls it back
        print(f"warning: {interrupted}", file=sys.stderr)
    from ..modeldir.record import v1_template

    recorded_v1 = v1_template(args.model_dir)
    if recorded_v1 is not None:  # trained on LF's v1 path: v1's renderer is the reference (cli.v1_cmd)
        from .v1_cmd import run_check

        return run_check(args, recorded_v1)
    engines = _engines(args.engine)
    if args.artifact is not None and engines[0] not in ARTIFACT_ENGINES:
        from ..errors import BadInputError

        raise BadInputError(
            f"--artifact is the file an artifact engine renders; --engine {args.engine} renders the model dir's Jinja",
            hint="add --engine ollama (a Modelfile) or --engine lmdeploy (an LMDeploy JSON)",
        )
    args.template_kwargs = _template_kwargs(args.chat_template_kwargs)
    resolved = resolve_template(args, model_dir=args.model_dir)
    if args.dataset is None and args.dataset_dir is not None:
        from ..errors import BadInputError

        raise BadInputError("--dataset-dir needs --dataset", hint="pass --dataset NAME (a dataset_info.json entry)")
    if resolved.template == "native" and args.endpoint is None:
        from ..native.mode import check_model_dir

        check_model_dir(args.model_dir)  # no chat template: bad input, before LF loads
    samples = args.dataset is not None or args.endpoint is not None or resolved.template == "native"
    samples = samples or bool(args.template_kwargs)
    if samples or engines[0] in ARTIFACT_ENGINES:  # the artifact engines run the probe corpus as samples too
        return _run_samples(args, resolved, engines)
    return _run_probe(args, resolved)


# -- the probe corpus against the model dir's files (the original mode) ---------------------------------


def _run_probe(args: argparse.Namespace, resolved: Any) -> int:
    from ..modeldir.atomic import write_text_atomic
    from ..workflows.check import check_model_dir
    from .output import dump, print_report, verdict

    result = check_model_dir(
        args.model_dir, resolved.template, resolved.options, trust_remote_code=args.trust_remote_code
    )
    data = result.report.to_dict()
    data["stop_ids"] = {
        "template": result.stop_ids,
        "engine": result.engine_stop_ids,
        "missing": result.missing_stop_ids,
    }
    data["template_file"] = result.template_file
    if result.adapter is not None:
        data["adapter"] = result.adapter
    data["options_provenance"] = resolved.described
    if result.thinking is not None:
        data["thinking"] = result.thinking
    if result.tool_order is not None:
        data["tool_order"] = result.tool_order
    if result.resolution is not None:
        data["resolution"] = result.resolution
    code = result.exit_code(strict=args.strict)
    if args.report:
        write_text_atomic(args.report, dump(data) + "\n")
    if args.json:
        print(dump(data))
        return code
    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"LF template {resolved.template!r} vs {result.template_file or 'no chat template'}:")
    print_report(result.report)
    _print_stop_ids(result.stop_ids, result.engine_stop_ids, result.missing_stop_ids)
    _print_thinking(result.thinking, resolved)
    if result.tool_order is not None:
        print(f"tool definitions' key order ({result.tool_order['order']}): {result.tool_order['statement']}")
    _print_resolution(result.resolution, args.model_dir)
    if code == 0:
        verdict(True, "engines render what training saw")
    else:
        verdict(False, f"fix it with: lf-template repair {args.model_dir} --template {resolved.template}")
    return code


def _print_resolution(resolution: Optional[dict[str, Any]], model_dir: str) -> None:
    """One line: the pixels training saw per image vs what the dir's processor serves (``workflows.media``)."""
    if not resolution or not resolution.get("trained_max_pixels"):
        return
    if resolution["mismatch"]:
        print(f"resolution: {resolution['mismatch']} (fix: lf-template repair {model_dir}; exact: resize_like_training, SERVING.md)")
    else:
        print(f"resolution: training saw at most {resolution['trained_max_pixels']:,} pixels per image, the processor caps "
              f"at {resolution['served_max_pixels']:,} (exact with resize_like_training on the client, SERVING.md)")


def _print_thinking(thinking: Optional[dict[str, Any]], resolved: Any) -> None:
    """The opposite ``enable_thinking`` request: what a client flipping the mode gets (not an error: serve
    training's mode as the default, see SERVING.md)."""
    if thinking is None:
        return
    trained = "true" if thinking["trained"] else "false"
    source = resolved.sources.get("enable_thinking", "LF default")
    flipped = "false" if thinking["trained"] else "true"
    print(
        f"thinking: trained with enable_thinking: {trained} ({source}); requests without the kwarg render that. "
        f"A request with chat_template_kwargs {{\"enable_thinking\": {flipped}}}: {thinking['verdict']} "
        f"({thinking['differ']} of {thinking['cases']} probe cases differ)"
    )


def _print_stop_ids(stop_ids: list[int], engine_ids: list[int], missing: list[int]) -> None:
    if missing:
        print(
            f"stop ids: the template stops on {stop_ids}, engines stop on {engine_ids}: "
            f"missing {missing} (generation would run past the end of the turn)"
        )
    else:
        print(f"stop ids: engines stop on every template stop id {stop_ids}")


# -- datasets, native mode and live servers -------------------------------------------------------------


def _prepare_samples(args: argparse.Namespace, resolved: Any, engines: list[str]) -> tuple:
    """Everything that can be refused before LF loads: datasets and their columns, the report path, the
    artifact engine's preflight, the endpoint. Returns ``(sources, streams, artifact, ready, endpoint)``."""
    from ..errors import BadInputError
    from ..lf import datasets as lfdata

    sources: list[Any] = []
    streams: list[Any] = []
    if args.dataset is not None:
        sources = lfdata.resolve(args.dataset, args.dataset_dir)
        for source in sources:
            stream = lfdata.RowStream(source, max_rows=args.max_samples)
            stream.preparse()  # small files: malformed JSON anywhere is found now, before LF loads
            lfdata.validate_columns(source, next((row for _, row in stream), None))
            streams.append(stream)
            for w in source.warnings:
                print(f"warning: {w}", file=sys.stderr)
    if args.report:
        _check_writable(args.report)
    artifact = engines[0] if engines[0] in ARTIFACT_ENGINES else None
    ready = None
    if artifact is not None:
        ready = _artifact_preflight(args, resolved, artifact)
    endpoint = None
    if args.endpoint is not None:
        from ..render.endpoint import make_endpoint

        endpoint = make_endpoint(args.endpoint, args.endpoint_kind, model=args.served_model_name)
    elif resolved.template != "native" and args.dataset is None and artifact is None and not args.template_kwargs:
        raise BadInputError("internal: nothing to check")  # pragma: no cover - run() routes this case elsewhere

    return sources, streams, artifact, ready, endpoint


def _run_samples(args: argparse.Namespace, resolved: Any, engines: list[str]) -> int:

    sources, streams, artifact, go_binary, endpoint = _prepare_samples(args, resolved, engines)

    # -- LF, torch, transformers from here on ---------------------------------------------------------------
    import datetime as _dt

    from ..modeldir.atomic import write_text_atomic
    from ..verifier import dataset as dc
    from ..workflows.check import use_probe_rows
    from .output import dump, verdict

    frozen = _dt.datetime.now().replace(microsecond=0)
    probe = args.dataset is None
    factory: Any = (lambda tok, jinja, kwargs: endpoint) if endpoint is not None else None
    if artifact is not None:
        factory = _artifact_factory(args, resolved, artifact, go_binary, frozen)
    setup = dc.build(
        args.model_dir, resolved.template, resolved.options, [s for s in sources if not probe],
        engine_factory=factory, trust_remote_code=args.trust_remote_code, frozen=frozen,
        chat_template_kwargs=args.template_kwargs,
    )  # fmt: skip
    for w in setup.warnings:
        print(f"note: {w}", file=sys.stderr)
    if probe:
        source, rows = use_probe_rows(setup)
        sources = [source]
        named: list[Any] = [(source.name, rows)]
        total: Optional[int] = len(rows)
    else:
        named = [(s.name, st) for s, st in zip(sources, streams)]
        hints = [st.count_hint(scan=dc.shows_progress()) for st in streams]
        total = None if None in hints else sum(h for h in hints if h is not None)
    engine_name = endpoint.name if endpoint is not None else ",".join(engines)
    engine = setup.checker.engine
    if artifact is not None:  # the artifact's stop words count too; the dir's Jinja is not what is rendered
        from ..model.stops import missing_ids, ordered_ids

        setup.engine_stop_ids = ordered_ids(setup.engine_stop_ids, engine.extra_stop_ids)
        setup.missing_stop_ids = missing_ids(setup.stop_ids, setup.engine_stop_ids)
        setup.template_file = args.artifact if args.artifact is not None else f"the emitted {engine.artifact}"
    bar = dc.progress_bar(total)
    try:
        args.workers = auto_workers(args.workers, total)
        agg = dc.run(setup.checker, named, workers=args.workers, batch_size=_batch(args, total), progress=bar)
    finally:
        if bar is not None:
            bar.close()
    data = dc.report_dict(
        agg, template=resolved.template, options=resolved.options.to_dict(), engine=engine_name,
        lf_version=setup.lf_version, sources=sources,
    )  # fmt: skip
    tokenize = getattr(getattr(setup.checker.reference, "prepared", None), "tokenize", "slots")
    if tokenize != "slots":  # as the probe report says it: the reference is whole mode's ids (the record)
        data["tokenize"] = tokenize
    check_stops = endpoint is None
    missing = setup.missing_stop_ids if check_stops else []
    if check_stops:
        data["stop_ids"] = {"template": setup.stop_ids, "engine": setup.engine_stop_ids, "missing": missing}
        data["template_file"] = setup.template_file
        if artifact is not None:
            data["artifact"] = {"engine": artifact, "file": args.artifact or engine.artifact, "text": engine.text}
    else:
        data["endpoint"] = endpoint.url if endpoint is not None else None
    code = dc.exit_code(agg, args.strict, missing, allow_skipped=args.allow_skipped)
    if args.report:
        write_text_atomic(args.report, dump(data) + "\n")
    if args.json:
        print(dump(data))
        return code
    target = endpoint.url if endpoint is not None else (setup.template_file or "no chat template")
    what = "the probe corpus" if probe else ", ".join(s.name for s in sources)
    print(f"LF template {resolved.template!r} vs {target} ({engine_name}), {what}:")
    dc.print_summary(agg)
    if agg.counts["boundary_only"]:
        print(
            "warning: boundary-only samples render the same text, split into different tokens at an LF slot boundary "
            "(LF tokenizes each slot on its own); --strict treats them as failures",
            file=sys.stderr,
        )
    if agg.counts["unsupported"]:
        print(
            f"warning: {agg.counts['unsupported']} sample(s) cannot be encoded for training (listed as unsupported, "
            "with the reason): LF stops on them or they need media this text check cannot see",
            file=sys.stderr,
        )
    if check_stops:
        _print_stop_ids(setup.stop_ids, setup.engine_stop_ids, missing)
    if agg.unreadable:
        print(
            f"{agg.unreadable} row(s) LF cannot read or encode (unsupported above): "
            + ("allowed by --allow-skipped" if args.allow_skipped else "the check fails; fix them, or pass --allow-skipped")
        )
    if args.report:
        print(f"report: {args.report}")
    if code == 0:
        verdict(True, "engines render what training saw" + ("" if probe else " for every sample"))
    elif not agg.counts["differs"] and not missing and not (args.strict and agg.counts["boundary_only"]):
        verdict(False, "rows LF cannot read or encode: see the unsupported samples above (--allow-skipped accepts them)")
    elif resolved.template == "native" or endpoint is not None:
        verdict(False, "see the kinds of difference above")
    elif _flipped_thinking(args.template_kwargs, resolved) is not None:
        verdict(False, _flipped_thinking(args.template_kwargs, resolved) or "")
    elif artifact is not None:
        verdict(
            False,
            f"see the kinds of difference above and what the {engine.artifact} cannot express "
            f"(docs/engines-{artifact}.md)",
        )
    else:
        verdict(False, f"fix it with: lf-template repair {args.model_dir} --template {resolved.template}")
    return code


def _flipped_thinking(kwargs: Optional[dict[str, Any]], resolved: Any) -> Optional[str]:
    """The verdict when the requests' ``enable_thinking`` contradicts training's (None: it does not)."""
    if not kwargs or "enable_thinking" not in kwargs or resolved.options.enable_thinking is None:
        return None
    sent, trained = kwargs["enable_thinking"], resolved.options.enable_thinking
    if sent is None or bool(sent) == trained:
        return None
    source = resolved.sources.get("enable_thinking", "LF default")
    return (
        f"requests with enable_thinking={str(bool(sent)).lower()} get a prompt that is not what training saw "
        f"(enable_thinking={str(trained).lower()}, {source}); the dir is not at fault: serve training's mode (SERVING.md)"
    )


def _artifact_preflight(args: argparse.Namespace, resolved: Any, engine: str) -> Any:
    """What --engine ollama / lmdeploy need, checked before LF loads (the registry's preflight)."""
    from ..errors import BadInputError
    from ..workflows import engines

    if args.endpoint is not None:
        raise BadInputError(
            f"--engine {engine} renders the emitted {engine} file here; --endpoint checks a running server instead",
            hint="pass one of them",
        )
    entry = engines.get(engine)
    if args.artifact is not None:
        args.artifact_text = _read_artifact(args.artifact)
        entry.validate_artifact(args.artifact_text, args.artifact)  # type: ignore[misc]
    if resolved.template == "native":
        raise BadInputError(
            f"--engine {engine}: native mode serves the model's own Jinja chat template, which {engine} does not "
            "render from these artifacts",
            hint="check native mode with --engine hf",
        )
    return entry.preflight(args.model_dir)  # type: ignore[misc]


def _read_artifact(path: str) -> str:
    """The text of ``--artifact FILE`` (bad input: missing, unreadable, not text)."""
    from ..errors import BadInputError

    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise BadInputError(f"--artifact: cannot read it: {e}", path=path) from None


def _artifact_factory(args: argparse.Namespace, resolved: Any, engine: str, ready: Any, frozen: Any) -> Any:
    """``engine_factory`` for ``verifier.dataset.build``: emit the artifact for the template (or take
    ``--artifact FILE``) and load it with the engine's own code (the registry's ``side``)."""
    from ..workflows import engines

    entry = engines.get(engine)
    given = getattr(args, "artifact_text", None)

    def factory(tokenizer: Any, jinja: Optional[str], kwargs: dict[str, Any]) -> Any:
        from ..lf import compat as lf_compat
        from ..modeldir.files import inspect_dir

        snap = lf_compat.snapshot(resolved.template, tokenizer, resolved.options)  # build()'s, from LF's cache
        ctx = engines.EmitContext(snap, args.model_dir, inspect_dir(args.model_dir).name, tokenizer, resolved.cutoff_len)
        text = given if given is not None else entry.emit_checked(ctx)[0]  # not expressible: exit 3
        return entry.side(  # type: ignore[misc]
            ctx, text, ready=ready, now=frozen, kwargs=kwargs, trust_remote_code=args.trust_remote_code
        )

    if given is None:
        return factory

    def checked_factory(tokenizer: Any, jinja: Optional[str], kwargs: dict[str, Any]) -> Any:
        """A hand-written file the engine cannot load is bad input naming the file."""
        from ..errors import BadInputError

        try:
            return factory(tokenizer, jinja, kwargs)
        except (ValueError, KeyError, TypeError, RuntimeError, AttributeError) as e:
            raise BadInputError(f"--artifact: {engine} cannot load it: {e}", path=args.artifact) from None

    return checked_factory


#: ``--workers`` by size (scripts/bench_check.py on 2 cores, Qwen2.5 ``qwen``, 4-turn rows: 500 rows 1.8 s with
#: one process vs 2.8 s with two, 2,000 rows 12.7 s vs 12.5 s, 5,000 rows 31.6 s vs 21.4 s)
AUTO_WORKERS_MIN_ROWS = 4000
AUTO_WORKERS_MAX = 4


def auto_workers(given: Optional[int], total: Optional[int]) -> int:
    """``--workers`` as given, else by size: one process below ``AUTO_WORKERS_MIN_ROWS`` rows; an unknown count
    is a JSON-lines file too large to parse up front (``lf.datasets.RowStream``): a large one."""
    if given is not None:
        return given
    if total is not None and total < AUTO_WORKERS_MIN_ROWS:
        return 1
    return max(1, min(os.cpu_count() or 1, AUTO_WORKERS_MAX))


def _batch(args: argparse.Namespace, total: Optional[int]) -> int:
    """Small datasets: batches small enough that every worker gets some (results do not depend on it)."""
    size = args.batch_size
    if total is not None and args.workers > 1:
        size = max(1, min(size, -(-total // (2 * args.workers))))
    return size


def _check_writable(path: str) -> None:
    import os

    from ..errors import BadInputError

    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise BadInputError("the report's directory does not exist", path=path)
    if os.path.isdir(path):
        raise BadInputError("the report path is a directory", path=path)
