#!/usr/bin/env bash
# Create .venv and install gplinker with its test tools. Safe to run again.
# torch is installed first and alone: any package that needs torch, installed before it,
# makes pip fetch a multi-GB CUDA build (SPEC §10). Set GPLINKER_TORCH to choose another
# build, e.g. GPLINKER_TORCH="torch --index-url https://download.pytorch.org/whl/cu124".
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
export PIP_DISABLE_PIP_VERSION_CHECK=1
python -m pip install -q --upgrade pip 2>&1 | grep -v "is ignored" || true
# numpy with it: torch imported without numpy warns "Failed to initialize NumPy" (twice)
# shellcheck disable=SC2086
python -m pip install -q ${GPLINKER_TORCH:-torch==2.13.0} numpy 2>&1 | grep -v "is ignored" || true
python -c "import torch" || { echo "error: torch did not install" >&2; exit 1; }
pin=$(python -c 'import torch; print("torch==" + torch.__version__.split("+")[0])')
python -m pip install -q -e ".[dev]" "$pin" 2>&1 | grep -v "is ignored" || true
python -c "import gplinker, transformers, accelerate, networkx" || { echo "error: install failed" >&2; exit 1; }
# tcmalloc: training's peak memory about a third lower and its steps faster than under
# glibc's malloc (gplinker/allocator.py). Optional: without it gplinker runs on glibc.
if ! ldconfig -p 2>/dev/null | grep -q libtcmalloc; then
  if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q libtcmalloc-minimal4 > /dev/null 2>&1 \
      || echo "note: could not install libtcmalloc-minimal4; gplinker uses glibc's malloc" >&2
  else
    echo "note: install libtcmalloc-minimal4 (gperftools) for less training memory" >&2
  fi
fi
