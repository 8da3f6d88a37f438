#!/usr/bin/env bash
# Create kernels/.venv with the pinned Python packages used for training,
# regeneration of test models and the onnxruntime benchmark (never by Rust tests).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
if [ ! -x "$here/.venv/bin/python" ]; then
  python3 -m venv "$here/.venv"
fi
"$here/.venv/bin/pip" install -q numpy==2.4.4 scikit-learn==1.9.1 onnx==1.23.2 onnxruntime==1.31.1
