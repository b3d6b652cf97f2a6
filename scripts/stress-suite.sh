#!/usr/bin/env bash
# Runs the whole test suite (scripts/test.sh) ROUNDS times in a row (default 5) while `stress`
# keeps every core busy, and reports each round's result and duration: timing-sensitive tests
# must pass on a loaded machine. The load is bounded: `stress` is killed when the rounds end.
# Needs Debian's `stress` (installed when missing).
set -uo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-5}"
if ! command -v stress >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq stress >/dev/null
fi
cargo test --locked --workspace --all-targets --no-run -q >/dev/null 2>&1   # build once, unloaded
stress --cpu "$(nproc)" --timeout 7200 >/dev/null 2>&1 &
load=$!
trap 'kill "$load" 2>/dev/null' EXIT
failed=0
for i in $(seq 1 "$rounds"); do
  start=$(date +%s)
  if ./scripts/test.sh >"target/stress-round-$i.log" 2>&1; then verdict=passed; else verdict=FAILED; failed=$((failed+1)); fi
  echo "round $i/$rounds: $verdict in $(( $(date +%s) - start )) s (load: $(cut -d' ' -f1-3 /proc/loadavg)); log: target/stress-round-$i.log"
done
echo "$((rounds-failed)) passed, $failed failed"
[ "$failed" -eq 0 ]
