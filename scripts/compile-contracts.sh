#!/usr/bin/env bash
# Regenerates the committed contract artifacts used by the infera end-to-end tests:
#   bin/infera/tests/contracts/src/*.sol  ->  bin/infera/tests/contracts/out/<Contract>.json
# Uses the solc version pinned in bin/infera/tests/contracts/package.json (+ package-lock.json),
# installed into a local, git-ignored node_modules. The tests themselves never run npm.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
contracts_dir="$repo_root/bin/infera/tests/contracts"

command -v node >/dev/null || { echo "error: node (>= 18) is required" >&2; exit 1; }
command -v npm >/dev/null || { echo "error: npm is required" >&2; exit 1; }

cd "$contracts_dir"
if [ ! -x node_modules/.bin/solcjs ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
node compile.js
