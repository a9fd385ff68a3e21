#!/usr/bin/env bash
# Runs bench.mjs (or the bench script given) in a loopback-only network namespace against a release build.
set -euo pipefail
cd "$(dirname "$0")"
(cd ../.. && cargo build --release -p stoa --bin stoa)
export STOA_BIN=$(cd ../.. && pwd)/target/release/stoa
NS=stoa-bench-$$
ip netns add "$NS"
trap 'ip netns del "$NS" 2>/dev/null || true' EXIT
ip netns exec "$NS" ip link set lo up
ip netns exec "$NS" node "${1:-bench.mjs}"
