#!/usr/bin/env bash
# Starts a local proof-of-authority network on loopback: three authorities
# (the testnet signers of genesis/testnet.json) and one follower, each with a
# fresh datadir, and prints their JSON-RPC endpoints. Stop it with
# testnet/stop.sh.
#
#   testnet/start.sh                 # build (debug) and start
#   INFERA_BIN=target/release/infera testnet/start.sh
#   TESTNET_DIR=/tmp/tn BASE_PORT=9000 testnet/start.sh
#
# Ports: node i (1..4) serves HTTP JSON-RPC on BASE_PORT + 10*(i-1)
# (default 8545, 8555, 8565, 8575) and peer-to-peer on P2P_BASE_PORT + i - 1
# (default 30303..30306). Logs: $TESTNET_DIR/node<i>.log.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${TESTNET_DIR:-$root/testnet/.data}"
base_port="${BASE_PORT:-8545}"
p2p_base_port="${P2P_BASE_PORT:-30303}"
genesis="${TESTNET_GENESIS:-$root/genesis/testnet.json}"

if [[ -z "${INFERA_BIN:-}" ]]; then
  (cd "$root" && cargo build --locked -q -p infera)
  INFERA_BIN="$root/target/debug/infera"
fi

if [[ -f "$dir/pids" ]] && xargs -r kill -0 < "$dir/pids" 2>/dev/null; then
  echo "a testnet is already running from $dir; stop it with testnet/stop.sh" >&2
  exit 1
fi
rm -rf "$dir"
mkdir -p "$dir"

# The testnet authorities are anvil's well-known test accounts #7, #8, #9:
# public keys for a local network only, never for anything of value.
keys=(
  4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356
  dbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97
  2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6
)

start_node() { # index, bootnodes, [key]
  local i="$1" boot="$2" key="${3:-}"
  local args=(node --chain "$genesis" --datadir "$dir/node$i" --http
    --http.port $((base_port + 10 * (i - 1))) --p2p.addr 127.0.0.1
    --port $((p2p_base_port + i - 1)))
  [[ -n "$boot" ]] && args+=(--bootnodes "$boot")
  if [[ -n "$key" ]]; then
    INFERA_AUTHORITY_KEY="$key" RUST_LOG="${RUST_LOG:-info}" \
      "$INFERA_BIN" "${args[@]}" --authority.key env:INFERA_AUTHORITY_KEY \
      > "$dir/node$i.log" 2>&1 < /dev/null &
  else
    RUST_LOG="${RUST_LOG:-info}" "$INFERA_BIN" "${args[@]}" \
      > "$dir/node$i.log" 2>&1 < /dev/null &
  fi
  echo $! >> "$dir/pids"
}

address_of() { # index -> first p2p multiaddr, once the node wrote it
  local file="$dir/node$1/p2p-addresses"
  for _ in $(seq 1 200); do
    if [[ -s "$file" ]]; then head -n 1 "$file"; return 0; fi
    sleep 0.1
  done
  echo "node $1 did not start; see $dir/node$1.log" >&2
  tail -n 20 "$dir/node$1.log" >&2 || true
  return 1
}

start_node 1 "" "${keys[0]}"
boot1="$(address_of 1)"
start_node 2 "$boot1" "${keys[1]}"
boot2="$(address_of 2)"
start_node 3 "$boot1,$boot2" "${keys[2]}"
boot3="$(address_of 3)"
start_node 4 "$boot1,$boot2,$boot3"
address_of 4 > /dev/null

echo "testnet running from $dir (chain $(basename "$genesis"))"
for i in 1 2 3 4; do
  role="authority"; [[ $i == 4 ]] && role="follower"
  echo "  node$i ($role): http://127.0.0.1:$((base_port + 10 * (i - 1)))  p2p $(head -n 1 "$dir/node$i/p2p-addresses")"
done
echo "stop it with: testnet/stop.sh"
