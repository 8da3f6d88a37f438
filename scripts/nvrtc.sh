#!/usr/bin/env bash
# Install NVRTC (the CUDA runtime compiler, PyPI `nvidia-cuda-nvrtc-cu12`) into
# .venv-nvrtc/ at the repository root and print the directory that holds
# libnvrtc.so* as the last line of stdout. No GPU, driver or CUDA toolkit is
# needed: NVRTC only compiles CUDA C to PTX.
#
#   dir="$(bash scripts/nvrtc.sh | tail -n1)"
#   LD_LIBRARY_PATH="$dir" INFERA_REQUIRE_NVRTC=1 cargo test -p infera-gpu --test nvrtc
#
# Idempotent: an existing .venv-nvrtc/ holding libnvrtc is reused without
# network access. Needs python3 with the venv module; never reads stdin.
# The 12.8 wheels match cudarc's `cuda-12080` feature; cudarc's dynamic loader
# tries libnvrtc.so and libnvrtc.so.12, and the wheel ships libnvrtc.so.12
# (plus libnvrtc-builtins.so.12.8, which libnvrtc loads from the same folder).
# Override the pip requirement with INFERA_NVRTC_SPEC.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv-nvrtc"
spec="${INFERA_NVRTC_SPEC:-nvidia-cuda-nvrtc-cu12==12.8.*}"

find_lib() {
    [ -d "$venv" ] || return 0
    find "$venv" \( -name 'libnvrtc.so' -o -name 'libnvrtc.so.*' \) \
        ! -name '*builtins*' -print 2>/dev/null | sort | head -n1
}

lib="$(find_lib)"
if [ -z "$lib" ]; then
    if [ ! -x "$venv/bin/python" ]; then
        echo "nvrtc.sh: creating $venv" >&2
        python3 -m venv "$venv" </dev/null >&2
    fi
    # Keep the environment out of git without touching the root .gitignore.
    printf '*\n' >"$venv/.gitignore"
    echo "nvrtc.sh: installing $spec" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        --no-input "$spec" </dev/null >&2
    lib="$(find_lib)"
fi
if [ -z "$lib" ]; then
    echo "nvrtc.sh: no libnvrtc.so* under $venv after installing $spec" >&2
    exit 1
fi
[ -f "$venv/.gitignore" ] || printf '*\n' >"$venv/.gitignore"
dirname "$lib"
