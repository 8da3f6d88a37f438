#!/usr/bin/env bash
# Benchmark the CPU reference against onnxruntime (single thread, int8 and f32),
# with infera's default kernels (the CPU's fast path, chosen by feature
# detection) and with the portable kernels forced, in one run:
#   bash kernels/bench.sh
# Creates kernels/.venv with pinned packages on first use. Prints the CPU and
# the load first: other work on the machine skews the figures.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bash "$here/scripts/venv.sh"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | xargs) ($(nproc) cores); load:$(uptime | sed 's/.*load average://')"
out="$(mktemp)"
cargo run --release -q -p infera-kernels --example bench | tee "$out"
cd "$here" && "$here/.venv/bin/python" scripts/bench_ort.py "$out"
rm -f "$out"
