#!/usr/bin/env bash
# Profiles the server under one load-test scenario with `perf` (CPU clock sampling, call
# graphs) and prints where its time goes: shares by DSO, then the hottest symbols.
#
#   bench/profile.sh [publishers=6] [subscribers=0] [seconds=15] [load-test flags...]
#   SERVER_BIN=/path/to/stoa bench/profile.sh 12 0   # profile another build
#
# Runs in a loopback-only network namespace (needs root and `perf`). Release build.
set -euo pipefail
cd "$(dirname "$0")/.."
PUBS=${1:-6}; SUBS=${2:-0}; SECS=${3:-15}; shift $(( $# < 3 ? $# : 3 ))
cargo build -q --release -p stoa --bin stoa
SERVER_BIN=${SERVER_BIN:-target/release/stoa}
NS=stoa-profile-$$
WORK=$(mktemp -d)
ip netns add "$NS"
cleanup() { ip netns pids "$NS" 2>/dev/null | xargs -r kill 2>/dev/null || true; sleep 0.3; ip netns del "$NS"; rm -rf "$WORK"; }
trap cleanup EXIT
[ -n "${KEEP:-}" ] && trap 'cp "$WORK/perf.data" "$KEEP"; cleanup' EXIT
ip netns exec "$NS" ip link set lo up
ip netns exec "$NS" "$SERVER_BIN" serve --data-dir "$WORK/data" --no-turn --log warn >"$WORK/stoa.log" 2>&1 &
SERVER=$!
for _ in $(seq 50); do ip netns exec "$NS" curl -sf http://127.0.0.1:8800/healthz >/dev/null 2>&1 && break; sleep 0.1; done
ip netns exec "$NS" target/release/stoa load-test --url http://127.0.0.1:8800 \
  --publishers "$PUBS" --subscribers "$SUBS" --duration "$((SECS + 8))s" --ramp-rate 20 "$@" >"$WORK/load.txt" 2>&1 &
LOAD=$!
sleep 5
perf record -q -e cpu-clock -F 999 -g -p "$SERVER" -o "$WORK/perf.data" -- sleep "$SECS" 2>/dev/null
wait "$LOAD" || true
tail -n 20 "$WORK/load.txt"
echo "== by DSO"
perf report -q -i "$WORK/perf.data" --no-children -g none --sort dso 2>/dev/null | head -8
echo "== hottest symbols"
perf report -q -i "$WORK/perf.data" --no-children -g none --sort dso,symbol 2>/dev/null | head -${TOP:-40}
