#!/usr/bin/env bash
# Retrain the demo model, re-export ONNX and the data files, then re-import it.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
bash "$here/scripts/venv.sh"
cd "$here/models/digits"
"$here/.venv/bin/python" train.py | tee train_report.json
