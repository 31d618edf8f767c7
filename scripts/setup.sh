#!/usr/bin/env bash
# Create .venv and install vosbench with its test, depth and sam extras (sam: transformers>=5, for hf: members and their tests).
# torch and torchvision are pinned as a pair: only a matching pair imports (timm needs torchvision).
#
# TORCH_INDEX picks the torch wheel (default: PyPI's, built for a recent CUDA, which needs a recent
# NVIDIA driver; on an older driver CUDA is unavailable and `--device auto` stops with an error):
#   TORCH_INDEX=cu121 bash scripts/setup.sh       # https://download.pytorch.org/whl/cu121
#   TORCH_INDEX=cpu bash scripts/setup.sh         # CPU-only wheel (smaller, no CUDA)
#   TORCH_INDEX=https://... bash scripts/setup.sh # any index URL (a mirror)
# `nvidia-smi` shows the highest CUDA version the driver supports; pick that one or older.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
TORCH_INDEX=${TORCH_INDEX:-}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
index_args=()
case "$TORCH_INDEX" in
  "") ;;
  http://*|https://*|file://*) index_args=(--index-url "$TORCH_INDEX") ;;
  cpu|cu[0-9]*|rocm[0-9]*) index_args=(--index-url "https://download.pytorch.org/whl/$TORCH_INDEX") ;;
  *) echo "error: TORCH_INDEX=$TORCH_INDEX: expected cpu, cuNNN (e.g. cu121), rocmX.Y or an index URL" >&2; exit 1 ;;
esac
.venv/bin/python -m pip install --quiet "${index_args[@]}" "torch==2.14.1" "torchvision==0.29.1"
.venv/bin/python -m pip install --quiet -e ".[test,depth,sam]"
