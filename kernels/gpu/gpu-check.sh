#!/usr/bin/env bash
# The one check to run on a machine with an NVIDIA GPU (from the repository root):
#
#   bash kernels/gpu/gpu-check.sh
#
# 1. installs NVRTC 12.8 (scripts/nvrtc.sh, into .venv-nvrtc/) and puts it on
#    LD_LIBRARY_PATH (libcuda comes from the machine's driver);
# 2. builds infera-gpu in release;
# 3. runs the GPU parity suite with INFERA_REQUIRE_GPU=1 (a missing GPU is a
#    failure, not a skip) and INFERA_REQUIRE_NVRTC=1;
# 4. runs gpu-bench (GPU vs CPU latency, batch, int8 GEMM TOPS).
# Output goes to stdout and, when $OUT is set, to $OUT/gpu-check.log,
# $OUT/parity.log and $OUT/bench.log. Exit status: 0 only if every step passed.
# Options: --quick (smaller GEMM shapes in the bench).
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
quick=()
[ "${1:-}" = "--quick" ] && quick=(--quick)

out="${OUT:-}"
[ -n "$out" ] && mkdir -p "$out"
log() { if [ -n "$out" ]; then tee -a "$out/$1"; else cat; fi; }

{
    echo "# infera GPU check $(date -u +%Y-%m-%dT%H:%M:%SZ) at $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 || echo "nvidia-smi not available"
} | log gpu-check.log

# NVRTC: $INFERA_NVRTC_DIR if set, else one the loader already finds (a CUDA
# toolkit), else scripts/nvrtc.sh (pip; reuses an existing .venv-nvrtc/ offline).
if [ -n "${INFERA_NVRTC_DIR:-}" ]; then
    dir="$INFERA_NVRTC_DIR"
elif ldconfig -p 2>/dev/null | grep -q 'libnvrtc\.so'; then
    dir="(system)"
else
    dir="$(bash scripts/nvrtc.sh | tail -n1)" || { echo "FAILED: scripts/nvrtc.sh" | log gpu-check.log; exit 1; }
fi
[ "$dir" != "(system)" ] && export LD_LIBRARY_PATH="$dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
echo "NVRTC: $dir" | log gpu-check.log

status=0
echo "## build (release)" | log gpu-check.log
if ! cargo build --release -p infera-gpu --tests --bins 2>&1 | tail -n 5 | log gpu-check.log; then
    echo "FAILED: build" | log gpu-check.log
    exit 1
fi

echo "## parity suite (INFERA_REQUIRE_GPU=1)" | log gpu-check.log
INFERA_REQUIRE_GPU=1 INFERA_REQUIRE_NVRTC=1 \
    cargo test --release -p infera-gpu -- --test-threads=1 --nocapture 2>&1 | log parity.log
rc=${PIPESTATUS[0]}
if [ "$rc" -eq 0 ]; then
    echo "PARITY: PASSED (every case byte-identical on the GPU)" | log gpu-check.log
else
    echo "PARITY: FAILED (rc $rc; MISMATCH lines above name case and seed)" | log gpu-check.log
    status=1
fi

echo "## gpu-bench" | log gpu-check.log
cargo run --release -q -p infera-gpu --bin gpu-bench -- "${quick[@]}" 2>&1 | log bench.log
rc=${PIPESTATUS[0]}
if [ "$rc" -eq 0 ]; then
    echo "BENCH: done" | log gpu-check.log
else
    echo "BENCH: FAILED (rc $rc)" | log gpu-check.log
    status=1
fi

echo "RESULT: $([ $status -eq 0 ] && echo PASSED || echo FAILED)" | log gpu-check.log
exit $status
