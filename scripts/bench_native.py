#!/usr/bin/env python
"""Benchmark: LF's built-in template vs ``template: native`` on the same multi-turn dataset.

Writes one sharegpt dataset (``--samples`` conversations of ``--turns`` user/assistant turns,
random words, a system prompt on half of them), converts it once with LF's converter, then,
in this one process, runs LF's preprocessing stage on it (the processor from LF's
``_get_dataset_processor`` and the ``dataset.map(processor.preprocess_dataset, batched=True)``
of ``_get_preprocessed_dataset``, given a fixed fingerprint: ``datasets`` would otherwise
spend seconds pickling the tokenizer to hash it, the same for every template), once with
``--lf-template`` and once per native policy. It also times the processor alone
(``preprocess_dataset`` on in-memory batches), which leaves out the Arrow reading and writing
that ``datasets`` adds for every template alike. It prints CPU and wall seconds,
conversations per second and the ratios; CPU time (of the whole process, all threads) is the
figure to compare on a shared machine, where wall time mostly measures the other jobs.
Every template first runs once on one batch, untimed (file caches, template compilation), then
``--rounds`` rounds interleave the templates in the same process, the order reversed every other
round, so other load falls on each alike; the figures are the medians over the rounds, and the
ratio's spread over the rounds is printed with them. The load average is printed around every
round. Tokenizer parallelism is left as LF runs it (``TOKENIZERS_PARALLELISM`` unset: batched
tokenization may use every core; set it to ``false`` to compare single-threaded); the bench prints
what the tokenizers library sees at the start and the end (it turns its parallelism off in a
forked child) and how many times the process forked. Note that other load does not cost both
alike: LF's slot-by-slot encoding uses one core whatever the load, whole and native mode's
batched tokenization uses a second one only when it is free.

``--whole`` adds ``template_ext_tokenize: whole`` with the same LF template (``lf.whole_template``).

Example (the figures in docs/native-mode.md):

    python scripts/bench_native.py --model ../shared/fixtures/models/Qwen--Qwen2.5-1.5B-Instruct --lf-template qwen
    python scripts/bench_native.py --model ../shared/fixtures/models/Qwen--Qwen3-4B --lf-template qwen3 \\
        --policies expand mask
    python scripts/bench_native.py --model ../shared/fixtures/models/Qwen--Qwen2.5-1.5B-Instruct --lf-template qwen \
        --policies none --whole

Run it in the test venv (``scripts/env.sh``) with ``HF_HUB_OFFLINE=1``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _script_utils import write_sharegpt_dataset  # noqa: E402

_FORKS = [0]
os.register_at_fork(before=lambda: _FORKS.__setitem__(0, _FORKS[0] + 1))


def _state() -> str:
    """Load average, ``TOKENIZERS_PARALLELISM`` as the tokenizers library reads it (the C environment, which
    it sets itself), and the forks of this process so far."""
    import ctypes

    getenv = ctypes.CDLL(None).getenv
    getenv.restype = ctypes.c_char_p
    value = getenv(b"TOKENIZERS_PARALLELISM")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"load average {load}; TOKENIZERS_PARALLELISM as tokenizers sees it: "
        f"{value.decode() if value is not None else 'unset (parallel)'}; forks: {_FORKS[0]}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="model/tokenizer dir")
    parser.add_argument("--lf-template", required=True, help="LF's built-in template for the model (e.g. qwen, qwen3)")
    parser.add_argument("--samples", type=int, default=10000)
    parser.add_argument("--turns", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (medians are reported)")
    parser.add_argument("--policies", nargs="+", default=["expand"], help="native policies to time (none: skip native)")
    parser.add_argument(
        "--whole", action="store_true",
        help="also time `template_ext_tokenize: whole` with --lf-template (the compiled template tokenized whole)",
    )
    parser.add_argument("--cutoff-len", type=int, default=8192)
    args = parser.parse_args()

    import logging

    import llamafactory.data.processor.supervised as supervised
    import llamafactory.data.template as template_module

    from lf_template_ext.lf import native_template, whole_template
    from lf_template_ext.lf.plugin import native_processors

    native_template.install(template_module)  # what the enable hook does when LF's modules load
    native_processors.install(supervised)
    from llamafactory.data import get_template_and_fix_tokenizer
    from llamafactory.data.loader import _get_dataset_processor, _get_merged_dataset
    from llamafactory.hparams import get_train_args
    from llamafactory.model import load_tokenizer

    logging.getLogger("llamafactory").setLevel(logging.ERROR)
    import datasets

    datasets.disable_progress_bars()

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        write_sharegpt_dataset(tmp_path, args.samples, args.turns, jsonl=False)

        def lf_args(template: str) -> tuple:
            return get_train_args(
                dict(
                    model_name_or_path=str(Path(args.model).resolve()),
                    stage="sft",
                    do_train=True,
                    finetuning_type="full",
                    template=template,
                    dataset="bench",
                    dataset_dir=str(tmp_path),
                    cutoff_len=args.cutoff_len,
                    output_dir=str(tmp_path / "out"),
                    report_to="none",
                    cache_dir=str(tmp_path / "cache"),
                )
            )

        model_args, data_args, training_args, _, _ = lf_args(args.lf_template)
        raw = _get_merged_dataset(data_args.dataset, model_args, data_args, training_args, "sft")  # LF's converter
        columns = list(next(iter(raw)).keys())

        batches = [raw[i : i + data_args.preprocessing_batch_size] for i in range(0, len(raw), data_args.preprocessing_batch_size)]

        def run(template: str, policy: str | None, rows: int = 0) -> dict[str, tuple[float, float, int]]:
            """Both stages for one template: LF's map, and the processor alone on in-memory batches
            (``rows``: only the first rows, for the warm-up)."""
            whole = policy == "whole"
            if policy and not whole:
                os.environ["LF_TEMPLATE_EXT_NATIVE_POLICY"] = policy
            model_args, data_args, _, _, _ = lf_args(template)
            tokenizer_module = load_tokenizer(model_args)
            tpl = get_template_and_fix_tokenizer(tokenizer_module["tokenizer"], data_args)
            if whole:  # what the enable hook does with template_ext_tokenize: whole
                tpl = whole_template.wrap(tpl, tokenizer_module["tokenizer"], data_args)
            processor = _get_dataset_processor(data_args, "sft", tpl, tokenizer_module["tokenizer"], None)
            data = raw.select(range(rows)) if rows else raw
            wall, cpu = time.perf_counter(), time.process_time()
            out = data.map(
                processor.preprocess_dataset,
                batched=True,
                batch_size=data_args.preprocessing_batch_size,
                remove_columns=columns,
                load_from_cache_file=False,
                new_fingerprint=f"bench-{template}-{policy}-{time.time_ns()}",
            )
            mapped = (time.perf_counter() - wall, time.process_time() - cpu, len(out))
            wall, cpu = time.perf_counter(), time.process_time()
            examples = sum(len(processor.preprocess_dataset(b)["input_ids"]) for b in (batches[:1] if rows else batches))
            alone = (time.perf_counter() - wall, time.process_time() - cpu, examples)
            return {"map": mapped, "processor": alone}

        labels = [(args.lf_template, None)] + [("native", p) for p in args.policies if p != "none"]
        if args.whole:
            labels.append((args.lf_template, "whole"))

        def title(template: str, policy: str | None) -> str:
            return template if policy is None else f"{template} (whole)" if policy == "whole" else f"native ({policy})"

        print(f"start: {_state()}", flush=True)
        for template, policy in labels:  # warm-up, untimed: one batch through LF's map and the processor
            run(template, policy, rows=min(len(raw), data_args.preprocessing_batch_size))
        rounds: dict[tuple[str, str], list[tuple[float, float, int]]] = {}
        for n in range(args.rounds):
            order = labels if n % 2 == 0 else labels[::-1]
            load = os.getloadavg()[0]
            for template, policy in order:
                for stage, result in run(template, policy).items():
                    rounds.setdefault((stage, title(template, policy)), []).append(result)
            print(f"round {n + 1}: {' -> '.join(title(*x) for x in order)}; load {load:.1f} -> {os.getloadavg()[0]:.1f}", flush=True)
        print(f"end: {_state()}")
        print(
            f"model {args.model}: {args.samples} conversations x {args.turns} turns, median of {args.rounds} rounds "
            f"(TOKENIZERS_PARALLELISM={os.environ.get('TOKENIZERS_PARALLELISM', 'unset')}, {os.cpu_count()} CPUs, "
            f"map batch size {data_args.preprocessing_batch_size})"
        )
        for stage, heading in (
            ("map", "LF's preprocessing map (datasets reads rows and writes Arrow: the same cost for every template)"),
            ("processor", "the processor alone (preprocess_dataset on in-memory batches of 1000 rows)"),
        ):
            print(f" {heading}")
            base = rounds[(stage, args.lf_template)]
            for (st, name), results in rounds.items():
                if st != stage:
                    continue
                wall, cpu = median(r[0] for r in results), median(r[1] for r in results)
                line = (
                    f"  {name:<16} {cpu:7.2f} s CPU {args.samples / cpu:7.0f} conv/s | {wall:7.2f} s wall "
                    f"{args.samples / wall:7.0f} conv/s | {results[0][2]:6d} examples"
                )
                if name != args.lf_template:  # per round, the candidate against the baseline of the same round
                    wall_x = [b[0] / r[0] for b, r in zip(base, results)]
                    cpu_x = [b[1] / r[1] for b, r in zip(base, results)]
                    line += (
                        f"  x{median(cpu_x):.2f} CPU, x{median(wall_x):.2f} wall vs LF "
                        f"(wall by round: {', '.join(f'{x:.2f}' for x in wall_x)})"
                    )
                print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
