#!/usr/bin/env bash
# Host emulation check of kernels/cuda/*.cu (no GPU, no NVRTC): compile the
# kernels with g++ against shim.h into a shared library, then run every golden
# vector of kernels/vectors/ through the matching kernel (bytes must equal
# `expected`) and compare the __dp4a and plain paths of dense/conv on random
# extreme inputs against naive loops. Needs g++ and python3 (standard library).
#   bash kernels/cuda/host/emulate.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
for f in "$here"/../*.cu; do
    cat "$f"
    echo
done >"$tmp/all.cpp"
g++ -O1 -std=c++17 -shared -fPIC -Wall -Wextra -Werror -include "$here/shim.h" \
    -I"$here/.." "$tmp/all.cpp" -o "$tmp/libinfera_cuda_host.so"
python3 "$here/check.py" "$tmp/libinfera_cuda_host.so" "$root/kernels/vectors"
