#!/usr/bin/env bash
# Run the whole test suite on this machine, installing what it needs (see scripts/env.sh).
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k compiler`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${LF_TEMPLATE_EXT_CACHE:-$HOME/.cache/lf-template-ext}"
mkdir -p "$cache"
# One run at a time per cache: the shared venv gets this clone's package installed.
exec 9>"$cache/.lock"
flock 9
export LF_TEMPLATE_EXT_LOCKED=1
venv="$(bash "$root/scripts/env.sh" | tail -n 1)"
cd "$root"
# Tokenizer fixtures: LF_TEMPLATE_EXT_FIXTURES, ../shared/fixtures/models, the cache, else fetched from the
# Hugging Face Hub into the cache when online (tests/fixtures/README.md); offline with none: one message, exit 2.
fixtures="$("$venv/bin/python" "$root/tests/fixtures_locate.py" --fetch)" || exit 2
export LF_TEMPLATE_EXT_FIXTURES="$fixtures"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export PATH="$venv/bin:$PATH"
set +e
"$venv/bin/python" -m pytest -n "${PYTEST_WORKERS:-2}" --dist loadgroup --durations=15 "$@"
rc=$?
set -e
# pytest exits 5 when it collected no tests: a failure for us, like any other non-zero exit.
if [ "$rc" -ne 0 ]; then
  echo "test.sh: pytest exited $rc" >&2
  exit 1
fi
