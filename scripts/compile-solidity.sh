#!/usr/bin/env bash
# Compiles the AI precompiles' Solidity (precompiles/solidity: IInfera.sol,
# Infera.sol, examples/*.sol) from source into precompiles/solidity/out/
# (git-ignored), with the solc pinned in package.json + package-lock.json.
# scripts/test.sh runs it before the Rust tests, which deploy the examples.
# `npm ci` runs only when node_modules is missing or older than the lockfile.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$repo_root/precompiles/solidity"

command -v node >/dev/null || { echo "error: node (>= 18) is required to compile precompiles/solidity" >&2; exit 1; }
command -v npm >/dev/null || { echo "error: npm is required to compile precompiles/solidity" >&2; exit 1; }

cd "$dir"
if [ ! -f node_modules/solc/package.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
node compile.js
