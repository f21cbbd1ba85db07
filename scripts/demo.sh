#!/usr/bin/env bash
# The README's first command: compile LF's `qwen` template for the bundled Qwen2.5 tokenizer
# and prove it token-identical to LF's training encoding on the probe corpus.
# Builds the environment first if this machine has none (scripts/env.sh).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$(bash "$root/scripts/env.sh" | tail -n 1)"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PATH="$venv/bin:$PATH"
cd "$root"
echo "== lf-template jinja --template qwen --tokenizer examples/qwen2.5-tokenizer" >&2
lf-template jinja --template qwen --tokenizer examples/qwen2.5-tokenizer
echo "== verify: LF's training ids vs the compiled template rendered by transformers (as vLLM does)" >&2
python - <<'PY'
from transformers import AutoTokenizer
import lf_template_ext

tok = AutoTokenizer.from_pretrained("examples/qwen2.5-tokenizer")
report = lf_template_ext.verify("qwen", tok)
for case in report.cases:
    print(f"  {case.status:13s} {case.id}")
print("summary:", report.summary)
native = lf_template_ext.verify("qwen", tok, jinja=tok.chat_template)
print("the tokenizer's own chat_template, for comparison:", native.summary)
PY
