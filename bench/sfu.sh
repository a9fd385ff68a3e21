#!/usr/bin/env bash
# Runs Stoa's SFU and `stoa load-test` side by side for fixed scenarios, plus a bare UDP
# forwarder as this machine's limit, and prints per scenario: forwarded packets per server
# CPU-second, that as a fraction of the bare forwarder's, one-way latency, loss, and server
# memory per participant.
#
#   bench/sfu.sh [seconds per scenario=20]
#   SMOKE=1 bench/sfu.sh   # a tiny run that only checks the report is produced (used in CI)
#   SCENARIOS='video-meeting 12 0;livestream 1 100' bench/sfu.sh   # other scenarios
#   SERVER_BIN=/path/to/other/stoa bench/sfu.sh   # measure another server build (A/B)
#
# Everything runs in a loopback-only network namespace (needs root). Release builds.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER=${1:-20}
if [ -n "${SMOKE:-}" ]; then
  SCENARIOS=("smoke 2 2 --audio-only")
  SECONDS_PER=3
  PROFILE=dev; BIN=target/debug
else
  # name publishers subscribers [flags]
  PROFILE=release; BIN=target/release
  IFS=';' read -r -a SCENARIOS <<<"${SCENARIOS:-audio-room 10 40 --audio-only;video-meeting 6 0;video-meeting-12 12 0;livestream 1 60}"
fi
SERVER_BIN=${SERVER_BIN:-$BIN/stoa}
cargo build -q --profile "$PROFILE" -p stoa --bin stoa
cargo build -q --profile "$PROFILE" -p stoa-bench-forwarder
NS=stoa-sfubench-$$
WORK=$(mktemp -d)
ip netns add "$NS"
# A process that exits between the listing and the kill is no failure of the run.
cleanup() { ip netns pids "$NS" 2>/dev/null | xargs -r kill 2>/dev/null || true; sleep 0.3; ip netns del "$NS"; rm -rf "$WORK"; }
trap cleanup EXIT
ip netns exec "$NS" ip link set lo up

cpu_seconds() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print ($12 + $13) / hz }' "/proc/$1/stat"; }
rss_kib() { awk '/VmRSS/ { print $2 }' "/proc/$1/status"; }

LIMIT_LINE=$(ip netns exec "$NS" "$BIN/stoa-bench-forwarder" 20 5000 "$([ -n "${SMOKE:-}" ] && echo 1 || echo 10)")
LIMIT=$(echo "$LIMIT_LINE" | grep -o '[0-9]* forwarded packets per CPU-second' | cut -d' ' -f1)
echo "$LIMIT_LINE"

ip netns exec "$NS" "$SERVER_BIN" serve --data-dir "$WORK/data" --no-turn --log warn >"$WORK/stoa.log" 2>&1 &
SERVER=$!
for _ in $(seq 50); do ip netns exec "$NS" curl -sf http://127.0.0.1:8800/healthz >/dev/null 2>&1 && break; sleep 0.1; done

printf '%-14s %5s %5s %12s %9s %8s %8s %8s %10s\n' scenario pub sub "pkts/CPU-s" "of limit" "p50 ms" "p99 ms" loss "KiB/part"
for scenario in "${SCENARIOS[@]}"; do
  read -r name pubs subs flags <<<"$scenario"
  base_rss=$(rss_kib "$SERVER"); max_rss=$base_rss
  cpu0=$(cpu_seconds "$SERVER")
  ip netns exec "$NS" "$BIN/stoa" load-test --url http://127.0.0.1:8800 \
    --publishers "$pubs" --subscribers "$subs" --duration "${SECONDS_PER}s" --ramp-rate 20 --json $flags \
    >"$WORK/$name.json" 2>"$WORK/$name.err" &
  LOAD=$!
  while kill -0 "$LOAD" 2>/dev/null; do
    rss=$(rss_kib "$SERVER"); [ "$rss" -gt "$max_rss" ] && max_rss=$rss
    sleep 0.5
  done
  wait "$LOAD" || echo "warning: load-test for $name reported errors (see below)" >&2
  cpu1=$(cpu_seconds "$SERVER")
  python3 - "$WORK/$name.json" "$name" "$pubs" "$subs" "$(echo "$cpu1 - $cpu0" | bc -l)" "$LIMIT" "$((max_rss - base_rss))" <<'PY'
import json, sys
report, name, pubs, subs, cpu, limit, rss = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6]), int(sys.argv[7])
r = json.load(open(report))
forwarded = r["packets_expected"] or r["packets_received"]
pps = forwarded / cpu if cpu > 0 else float("nan")
lat = r["latency_ms"]
fmt = lambda v: "-" if v is None else f"{v:.2f}"
print(f"{name:<14} {pubs:>5} {subs:>5} {pps:>12.0f} {pps / limit:>9.2f} {fmt(lat['p50']):>8} {fmt(lat['p99']):>8} "
      f"{100 * r['packet_loss']:>7.3f}% {rss / max(1, pubs + subs):>10.0f}")
if r["errors"]:
    print(f"  errors: {r['errors']}: {r['error_messages'][:3]}")
PY
done
kill "$SERVER"
