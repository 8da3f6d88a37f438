#!/usr/bin/env bash
# Benchmark the CPU reference against onnxruntime (single thread, int8 and f32):
#   bash kernels/bench.sh
# Creates kernels/.venv with pinned packages on first use.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bash "$here/scripts/venv.sh"
out="$(mktemp)"
cargo run --release -q -p infera-kernels --example bench | tee "$out"
cd "$here" && "$here/.venv/bin/python" scripts/bench_ort.py "$out"
