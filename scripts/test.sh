#!/usr/bin/env bash
# The whole test suite: formatting, lints, and every test of every crate,
# including the end-to-end tests that start the real `infera` binary.
# Needs the Rust toolchain, node + npm (the Solidity of the AI precompiles
# is compiled from source with a pinned npm solc; the client suite's ethers and
# viem) and python3 (web3.py and NVRTC, each in a venv); about 15 minutes on a fresh
# 2-core machine (almost all of it compiling the dependency tree once),
# seconds after that.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== solidity (precompiles/solidity -> out/, npm solc)"
./scripts/compile-solidity.sh

echo "== cargo clippy (deny warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== NVRTC (PyPI nvidia-cuda-nvrtc-cu12 in .venv-nvrtc/): every kernels/cuda/*.cu must compile"
nvrtc_dir="$(./scripts/nvrtc.sh | tail -n1)"

echo "== CUDA kernels emulated on the host (g++): every golden vector, byte for byte"
bash kernels/cuda/host/emulate.sh

echo "== cargo test"
LD_LIBRARY_PATH="$nvrtc_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" INFERA_REQUIRE_NVRTC=1 \
    cargo test --workspace --locked --features infera/test-hooks

echo "== client compatibility (ethers v6, viem, web3.py against fresh dev nodes)"
./tests/clients/run.sh
