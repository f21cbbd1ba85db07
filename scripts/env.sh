#!/usr/bin/env bash
# Build (or reuse) the environment the demo and the tests run in, and install this project
# into it. Prints nothing on success but the venv path on the last line of stdout.
#
# The venv lives outside the clone, keyed by a hash of everything that decides its content
# (requirements files, this script, the Python version), so a fresh machine builds it from
# nothing and later runs reuse it. A venv is used only once its build finished (.complete).
#
#   LF_TEMPLATE_EXT_CACHE   where venvs live (default: ~/.cache/lf-template-ext)
#   PYTHON                  interpreter to build with (default: python3.11, else python3)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="${PYTHON:-$(command -v python3.11 || command -v python3)}"
pyver="$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
if [ "$pyver" != "3.11" ] && [ "$pyver" != "3.12" ]; then
  echo "env.sh: LLaMA-Factory 0.9.5 needs Python >= 3.11 (found $pyver at $py); set PYTHON=" >&2
  exit 2
fi
key="$(cat "$root/requirements/test.txt" "$root/requirements/test-nodeps.txt" "$root/scripts/env.sh" \
        | sha256sum | cut -c1-16)-py$pyver"
cache="${LF_TEMPLATE_EXT_CACHE:-$HOME/.cache/lf-template-ext}"
venv="$cache/venv-$key"
mkdir -p "$cache"

if [ -z "${LF_TEMPLATE_EXT_LOCKED:-}" ]; then  # callers that hold the lock already set this
  exec 9>"$cache/.lock"
  flock 9
fi

log="$cache/build-$key.log"
quiet() {  # run a step with its output in $log; show the tail only if it fails
  if ! "$@" >>"$log" 2>&1; then
    echo "env.sh: failed: $*" >&2
    tail -n 40 "$log" >&2
    exit 1
  fi
}

if [ ! -f "$venv/.complete" ]; then
  echo "env.sh: building $venv (first run on this machine: about 6-8 minutes, 8 GB; log: $log)" >&2
  rm -rf "$venv"
  : >"$log"
  quiet "$py" -m venv "$venv"
  quiet "$venv/bin/python" -m pip install --upgrade pip
  quiet "$venv/bin/python" -m pip install -r "$root/requirements/test.txt"
  quiet "$venv/bin/python" -m pip install --no-deps -r "$root/requirements/test-nodeps.txt"
  # LF 0.9.4's wheel, unpacked by tests/test_compat_094.py (not installed: one LF per venv)
  quiet "$venv/bin/python" -m pip download --no-deps "llamafactory==0.9.4" -d "$venv/lf-wheels"
  touch "$venv/.complete"
  echo "env.sh: built $venv" >&2
fi

# Forget venvs of other keys that no run has used for a week (each is about 8 GB).
touch "$venv/.last-used"
for other in "$cache"/venv-*; do
  [ "$other" = "$venv" ] && continue
  if [ -z "$(find "$other/.last-used" -mtime -7 2>/dev/null)" ] && [ -z "$(find "$other" -maxdepth 0 -mtime -1 2>/dev/null)" ]; then
    echo "env.sh: removing unused $other" >&2
    rm -rf "$other"
  fi
done

# Go's text/template renders the emitted Ollama TEMPLATEs in tests (Debian's golang-go).
if ! command -v go >/dev/null 2>&1; then
  echo "env.sh: installing golang-go from Debian" >&2
  sudo_=""
  [ "$(id -u)" = "0" ] || sudo_="sudo"
  quiet $sudo_ apt-get update -qq
  quiet $sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go
fi

# The project itself, as a real (non-editable) install: the wheel is what users get,
# including the .pth hook at the site-packages root.
quiet "$venv/bin/python" -m pip install --no-deps --no-build-isolation --force-reinstall "$root"
echo "$venv"
