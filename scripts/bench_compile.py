"""Benchmark: compile + verify every registered LF template; seconds per template.

    python scripts/bench_compile.py [--templates qwen llama3 ...]

Per template it measures, in this process and on the same tokenizer:
  prepare  LF's get_template_and_fix_tokenizer on private copies (tokenizer deep copy included)
  compile  TemplateSpec -> Jinja (the pure compiler)
  verify   the probe corpus: LF's training encoding + rendering + whole-string tokenization
  lf_enc   baseline: LF's own encode_multiturn of the same corpus alone
and prints the ratio verify / lf_enc (how much the check costs over encoding with LF at all).
Tokenizers: the coverage harness (tests/harness.py: family fixtures, else Qwen2.5 + markers).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--templates", nargs="*", help="default: every registered template")
    args = parser.parse_args()

    from harness import FROZEN, harness_tokenizer

    from lf_template_ext.compiler import compile_spec
    from lf_template_ext.lf import compat as lf_compat
    from lf_template_ext.model import messages
    from lf_template_ext.model.corpus import probe_corpus
    from lf_template_ext.model.options import TemplateOptions
    from lf_template_ext.verifier.probe import verify_template

    t0 = time.perf_counter()
    names = args.templates or lf_compat.template_names()
    print(f"LF import: {time.perf_counter() - t0:.1f}s; {len(names)} templates", file=sys.stderr)
    corpus = probe_corpus()
    rows = []
    print(f"{'template':26s} {'prepare':>8s} {'compile':>8s} {'verify':>8s} {'lf_enc':>8s} {'ratio':>6s}")
    for name in names:
        tok, _ = harness_tokenizer(name)
        t = time.perf_counter()
        prepared = lf_compat.prepare(name, tok, TemplateOptions())
        t_prep = time.perf_counter() - t
        t = time.perf_counter()
        try:
            jinja = compile_spec(lf_compat.template_spec(prepared), lf_compat.tokenizer_facts(prepared.tokenizer))
        except Exception as e:  # noqa: BLE001
            print(f"{name:26s} skipped: {e}")
            continue
        t_comp = time.perf_counter() - t
        t = time.perf_counter()
        verify_template(name, tok, corpus, jinja=jinja, frozen=FROZEN)
        t_ver = time.perf_counter() - t
        t = time.perf_counter()
        for conv in corpus:
            try:
                c = messages.to_lf(conv["messages"], conv.get("tools"), thought_words=tuple(prepared.template.thought_words))
                lf_compat.encode_training(prepared, c.messages, c.system, c.tools)
            except Exception:  # noqa: BLE001 - unsupported by LF: skipped on both sides
                pass
        t_lf = time.perf_counter() - t
        rows.append((t_prep, t_comp, t_ver, t_lf))
        print(f"{name:26s} {t_prep:8.3f} {t_comp:8.4f} {t_ver:8.3f} {t_lf:8.3f} {t_ver / max(t_lf, 1e-9):6.1f}")
    if rows:
        cols = list(zip(*rows))
        print(
            f"\n{len(rows)} templates; mean seconds per template: prepare {statistics.mean(cols[0]):.3f}, "
            f"compile {statistics.mean(cols[1]):.4f}, verify {statistics.mean(cols[2]):.3f} "
            f"(LF encode alone {statistics.mean(cols[3]):.3f}, ratio {statistics.mean(cols[2]) / statistics.mean(cols[3]):.1f}x); "
            f"compile+verify {statistics.mean(cols[1]) + statistics.mean(cols[2]):.3f}s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
