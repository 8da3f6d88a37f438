#!/usr/bin/env bash
# Stops the network testnet/start.sh started (SIGTERM, then SIGKILL after 10 s).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${TESTNET_DIR:-$root/testnet/.data}"
if [[ ! -f "$dir/pids" ]]; then
  echo "no testnet running from $dir" >&2
  exit 0
fi
mapfile -t pids < "$dir/pids"
kill "${pids[@]}" 2>/dev/null || true
for _ in $(seq 1 100); do
  alive=0
  for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
  [[ $alive == 0 ]] && break
  sleep 0.1
done
for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
rm -f "$dir/pids"
echo "testnet stopped (datadirs kept in $dir)"
