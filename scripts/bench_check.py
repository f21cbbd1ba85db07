#!/usr/bin/env python
"""Benchmark: ``lf-template check --dataset`` against the physical limit, measured in the same run.

Writes a sharegpt dataset of ``--samples`` conversations (``--turns`` user/assistant turns of random
words, a system prompt on half of them) with its ``dataset_info.json``, loads LF, the Qwen2.5
tokenizer and the template once, then measures on the same rows:

* **LF encode**: LF's own training encoding of every sample (``lf_compat.encode_training``, one
  process: ``encode_multiturn`` tokenizes slot by slot, the cost any LF-side check must pay);
* **rendering**: the model dir's chat template rendered for every conversation (whole + generation
  prompt, the two texts the check renders);
* **batch tokenization**: the rendered texts tokenized by the fast tokenizer in batches of 1,000,
  once per side (training's text and the engine's text are the same text when aligned);
* **check**: the dataset check itself (``dataset_check.run``: stream the file, LF's converter, LF's
  encoding, rendering, batched tokenization, comparison) with ``--workers`` processes.

The limit is the slower of LF encode and batch tokenization (both sides); the target is a check
at >= 0.5x that limit with ``--workers 2``. Prints every figure and the ratio.

    python scripts/bench_check.py                      # 100,000 conversations (a few minutes on 2 cores)
    python scripts/bench_check.py --samples 5000       # quick

Run it in the test venv (``scripts/env.sh``) with ``HF_HUB_OFFLINE=1``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _script_utils import write_sharegpt_dataset  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(REPO / "examples" / "qwen2.5-tokenizer"), help="tokenizer dir (Qwen2.5)")
    parser.add_argument("--template", default="qwen", help="LF template")
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--turns", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()

    import logging

    logging.disable(logging.WARNING)
    from lf_template_ext.lf import compat as lf_compat
    from lf_template_ext.lf import datasets as lfdata
    from lf_template_ext.model.options import TemplateOptions
    from lf_template_ext.verifier import dataset as dc

    work = Path(tempfile.mkdtemp(prefix="bench_check_"))
    try:
        model = work / "model"
        shutil.copytree(args.model, model)
        t0 = time.perf_counter()
        write_sharegpt_dataset(work, args.samples, args.turns, jsonl=True)
        print(f"dataset: {args.samples} conversations x {args.turns} turns, written in {time.perf_counter() - t0:.1f}s")

        t0 = time.perf_counter()
        (source,) = lfdata.resolve("bench", str(work))
        setup = dc.build(str(model), args.template, TemplateOptions(), [source])
        print(f"setup (LF import, tokenizer, template): {time.perf_counter() - t0:.1f}s")
        checker = setup.checker

        # the same rows, converted by LF's converter, for the limit measurements
        convert = checker.converters[source.name]
        samples = []
        for index, raw in lfdata.RowStream(source):
            row = convert(lfdata.arrow_like(raw))
            samples.append(dc.Sample(index, row["_prompt"] + row["_response"], row["_system"], row["_tools"]))
        n = len(samples)

        prepared = checker.reference.prepared
        t0 = time.perf_counter()
        for s in samples:
            lf_compat.encode_training(prepared, s.messages, s.system, s.tools)
        lf_rate = n / (time.perf_counter() - t0)

        planned = checker.reference.parts_batch(samples)
        requests = [p.request for parts in planned for p in parts]
        t0 = time.perf_counter()
        texts = checker.engine.texts(requests)
        render_rate = n / (time.perf_counter() - t0)
        full_texts = [t for t, r in zip(texts, requests) if not r.add_generation_prompt]

        from lf_template_ext.render.hf import batch_encode

        tok = checker.engine.tokenizer
        t0 = time.perf_counter()
        for side in range(2):
            for i in range(0, len(full_texts), 1000):
                batch_encode(tok, full_texts[i : i + 1000])
        tok_rate = n / (time.perf_counter() - t0)  # conversations whose text is tokenized on both sides
        del planned, requests, texts, full_texts, samples

        t0 = time.perf_counter()
        agg = dc.run(checker, [(source.name, lfdata.RowStream(source))], workers=args.workers, batch_size=args.batch_size)
        check_seconds = time.perf_counter() - t0
        check_rate = agg.rows / check_seconds

        limit = min(lf_rate, tok_rate)
        print(f"LF encode (1 process):                  {lf_rate:9.0f} conv/s")
        print(f"rendering (whole + generation prompt):  {render_rate:9.0f} conv/s")
        print(f"batch tokenization, both sides:         {tok_rate:9.0f} conv/s")
        print(f"limit (slower of LF encode and batch tokenization): {limit:.0f} conv/s")
        print(f"check --workers {args.workers}: {agg.rows} rows in {check_seconds:.1f}s = {check_rate:.0f} conv/s  {agg.counts}")
        print(f"ratio check / limit: {check_rate / limit:.2f} (target >= 0.5)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
