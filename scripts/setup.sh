#!/usr/bin/env bash
# Create .venv and install vosbench with its test, depth and sam extras (sam: transformers>=5, for hf: members and their tests).
# torch and torchvision are pinned as a pair: only a matching pair imports (timm needs torchvision).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "torch==2.14.1" "torchvision==0.29.1"
.venv/bin/python -m pip install --quiet -e ".[test,depth,sam]"
