#!/usr/bin/env bash
# Retrain the demo CNN (JAX on the CPU), re-export ONNX and the data files.
# Re-import with the command in kernels/models/digits_cnn/README.md.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
bash "$here/scripts/venv.sh"
"$here/.venv/bin/pip" install -q jax==0.10.2 jaxlib==0.10.2
cd "$here/models/digits_cnn"
"$here/.venv/bin/python" train.py | tee train_report.json
