#!/usr/bin/env bash
# Client-compatibility suite: ethers v6, viem and web3.py, each against its own
# freshly started `infera node --dev` (temp datadir, free ports).
#
#   tests/clients/run.sh                 # all three
#   tests/clients/run.sh ethers viem     # a subset (ethers | viem | web3py)
#
# Installs its own dependencies into git-ignored caches next to this script:
# node_modules/ (npm ci from package-lock.json) and .venv/ (pip, exact pins in
# requirements.txt); both are reused while the lock files are unchanged.
# The node binary: $INFERA_BIN, else target/debug/infera (built with cargo if missing
# or stale; scripts/test.sh has just built it).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$here"

log() { echo "[clients] $*"; }

for tool in node npm python3 curl; do
  command -v "$tool" >/dev/null || { echo "error: $tool is required (node >= 18, python >= 3.10)" >&2; exit 1; }
done

# --- dependencies -----------------------------------------------------------
if [ ! -f node_modules/.package-lock.json ] || ! cmp -s package-lock.json node_modules/.installed-lock.json; then
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json node_modules/.installed-lock.json
fi
if [ ! -x .venv/bin/python ] || ! cmp -s requirements.txt .venv/.installed-requirements.txt; then
  log "python venv (requirements.txt)"
  rm -rf .venv
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
    || { echo "error: web3.py needs python >= 3.10" >&2; exit 1; }
  python3 -m venv .venv \
    || { echo "error: python3 -m venv failed (on Debian/Ubuntu: apt-get install python3-venv)" >&2; exit 1; }
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-input -r requirements.txt
  cp requirements.txt .venv/.installed-requirements.txt
fi

# --- contracts (compiled from source with the pinned npm solc) -------------
mkdir -p build
node compile.mjs > build/contracts.json.tmp
mv build/contracts.json.tmp build/contracts.json
export INFERA_CONTRACTS="$here/build/contracts.json"

# --- node binary ------------------------------------------------------------
bin="${INFERA_BIN:-}"
if [ -z "$bin" ]; then
  log "cargo build -p infera (debug)"
  (cd "$repo" && cargo build --locked --quiet -p infera)
  bin="$repo/target/debug/infera"
fi
[ -x "$bin" ] || { echo "error: no infera binary at $bin" >&2; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

node_pid=""
workdir="$(mktemp -d "${TMPDIR:-/tmp}/infera-clients-XXXXXX")"
stop_node() {
  if [ -n "$node_pid" ] && kill -0 "$node_pid" 2>/dev/null; then
    kill -TERM "$node_pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$node_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$node_pid" 2>/dev/null || true
    wait "$node_pid" 2>/dev/null || true
  fi
  node_pid=""
}
cleanup() { stop_node; rm -rf "$workdir"; }
trap cleanup EXIT

# Starts a fresh dev node in $workdir/$1; sets HTTP_PORT, WS_PORT, node_pid, node_log.
start_node() {
  local name="$1" attempt
  for attempt in 1 2 3; do
    HTTP_PORT="$(free_port)"; WS_PORT="$(free_port)"
    node_log="$workdir/$name-node.log"
    rm -rf "$workdir/$name-data"
    RUST_LOG="${RUST_LOG:-info}" "$bin" node --dev --datadir "$workdir/$name-data" \
      --http --http.addr 127.0.0.1 --http.port "$HTTP_PORT" \
      --ws --ws.addr 127.0.0.1 --ws.port "$WS_PORT" --dev.block-time 0 \
      </dev/null >"$node_log" 2>&1 &
    node_pid=$!
    for _ in $(seq 300); do
      if ! kill -0 "$node_pid" 2>/dev/null; then break; fi
      if curl -sf -m 2 -H 'content-type: application/json' \
          --data '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}' \
          "http://127.0.0.1:$HTTP_PORT" 2>/dev/null | grep -q '"0x181e"'; then
        return 0
      fi
      sleep 0.1
    done
    stop_node
    if [ "$attempt" -lt 3 ] && grep -qi "in use" "$node_log"; then continue; fi
    echo "error: the infera node for $name did not start; its log:" >&2
    tail -n 60 "$node_log" >&2
    return 1
  done
}

run_client() {
  local name="$1"; shift
  start_node "$name"
  log "$name: node pid $node_pid, http :$HTTP_PORT, ws :$WS_PORT"
  local start=$SECONDS rc=0
  INFERA_HTTP="http://127.0.0.1:$HTTP_PORT" INFERA_WS="ws://127.0.0.1:$WS_PORT" "$@" || rc=$?
  stop_node
  if [ "$rc" -ne 0 ]; then
    echo "FAIL: $name client checks (exit $rc); the node's log:" >&2
    tail -n 80 "$node_log" >&2
    return "$rc"
  fi
  log "$name: ok ($((SECONDS - start)) s)"
}

clients=("$@")
[ ${#clients[@]} -gt 0 ] || clients=(ethers viem web3py)
for c in "${clients[@]}"; do
  case "$c" in
    ethers) run_client ethers node ethers.mjs ;;
    viem) run_client viem node viem.mjs ;;
    web3py) run_client web3py .venv/bin/python web3py.py ;;
    *) echo "error: unknown client '$c' (ethers | viem | web3py)" >&2; exit 2 ;;
  esac
done
log "all client checks passed: ${clients[*]}"
