#!/usr/bin/env bash
# Relays the same load through coturn and through Stoa's TURN server, one after the other on
# this machine, and prints relayed packets per CPU-second of each server process.
#
#   bench/turn-vs-coturn.sh [clients=50] [messages=2000] [bytes=1000] [interval_ms=5]
#
# Load: coturn's turnutils_uclient (long-term credentials, UDP, channels, -c: no RTCP pair)
# echoing through turnutils_peer; every message is relayed twice (client->peer, peer->client).
# Everything runs in a loopback-only network namespace. Needs root and Debian's coturn.
# (Background processes are started with `ip netns exec` directly, which execs, so $! is the
# server's own PID.)
set -euo pipefail
cd "$(dirname "$0")/.."
CLIENTS=${1:-50}; MESSAGES=${2:-2000}; BYTES=${3:-1000}; INTERVAL=${4:-5}
cargo build --release -q -p stoa --bin stoa
STOA=$PWD/target/release/stoa
NS=stoa-turnbench-$$
WORK=$(mktemp -d)
ip netns add "$NS"
cleanup() { ip netns pids "$NS" 2>/dev/null | xargs -r kill 2>/dev/null || true; sleep 0.3; ip netns del "$NS"; rm -rf "$WORK"; }
trap cleanup EXIT
x() { ip netns exec "$NS" "$@"; }
x ip link set lo up

cpu_seconds() { # utime + stime of a process, in seconds
  awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print ($12 + $13) / hz }' "/proc/$1/stat"
}

ip netns exec "$NS" turnutils_peer -L 127.0.0.1 -p 3480 >/dev/null 2>&1 &

run_load() { # $1 = server pid; prints "relayed cpu lost"
  local before after out sent recv
  before=$(cpu_seconds "$1")
  out=$(x timeout 600 turnutils_uclient -u test -w test -e 127.0.0.1 -r 3480 -c \
        -m "$CLIENTS" -n "$MESSAGES" -l "$BYTES" -z "$INTERVAL" 127.0.0.1 2>&1)
  after=$(cpu_seconds "$1")
  sent=$(echo "$out" | grep -o 'tot_send_msgs=[0-9]*' | tail -1 | cut -d= -f2 || true)
  recv=$(echo "$out" | grep -o 'tot_recv_msgs=[0-9]*' | tail -1 | cut -d= -f2 || true)
  if [ -z "$sent" ] || [ -z "$recv" ]; then
    echo "error: the load generator reported nothing; its output:" >&2
    echo "$out" | tail -20 >&2
    exit 1
  fi
  echo "$((sent + recv)) $(echo "$after - $before" | bc -l) $((sent - recv))"
}

report() { # name relayed cpu lost
  printf '%-8s relayed %8d packets, server CPU %6.2f s, %9.0f packets per CPU-second, lost %d\n' \
    "$1" "$2" "$3" "$(echo "$2 / $3" | bc -l)" "$4"
}

ip netns exec "$NS" turnserver -n --no-tls --no-dtls --no-cli --log-file=stdout --listening-ip=127.0.0.1 \
  --relay-ip=127.0.0.1 --listening-port=3478 --min-port=49152 --max-port=65535 \
  --realm=stoa --lt-cred-mech --user=test:test --fingerprint --allow-loopback-peers \
  >"$WORK/coturn.log" 2>&1 &
COTURN=$!; sleep 1
read -r c_relayed c_cpu c_lost < <(run_load "$COTURN")
kill "$COTURN"; wait "$COTURN" 2>/dev/null || true; sleep 0.5

ip netns exec "$NS" "$STOA" serve --data-dir "$WORK/stoa" --log warn --turn-addr 127.0.0.1:3478 \
  --turn-user test:test --turn-allow-peer 127.0.0.0/8 --turn-max-allocations 100000 >"$WORK/stoa.log" 2>&1 &
STOA_PID=$!; sleep 1
read -r s_relayed s_cpu s_lost < <(run_load "$STOA_PID")
kill "$STOA_PID"; wait "$STOA_PID" 2>/dev/null || true

echo "load: $CLIENTS clients x $MESSAGES messages of $BYTES bytes every ${INTERVAL} ms"
report coturn "$c_relayed" "$c_cpu" "$c_lost"
report stoa "$s_relayed" "$s_cpu" "$s_lost"
printf 'Stoa relays %.2fx as many packets per CPU-second as coturn\n' \
  "$(echo "($s_relayed / $s_cpu) / ($c_relayed / $c_cpu)" | bc -l)"
