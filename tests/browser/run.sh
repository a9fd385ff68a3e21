#!/usr/bin/env bash
# Runs the browser tests inside a fresh network namespace that has only loopback, so the
# server and the browsers can reach nothing but each other. Needs root (ip netns).
set -euo pipefail
cd "$(dirname "$0")"
export STOA_BIN=${STOA_BIN:-$(cd ../.. && pwd)/target/release/stoa}
[ -x "$STOA_BIN" ] || { echo "error: $STOA_BIN not built (cargo build --release -p stoa)" >&2; exit 1; }
for cmd in chromium firefox-esr Xvfb; do
  command -v $cmd >/dev/null || { echo "error: $cmd is not installed (scripts/install-test-deps)" >&2; exit 1; }
done
NS=stoa-e2e-$$
ip netns add "$NS"
trap 'ip netns del "$NS" 2>/dev/null || true' EXIT
ip netns exec "$NS" ip link set lo up
# Test files given as arguments run alone; other arguments (node flags) apply to all files.
has_files=0
for a in "$@"; do [[ $a == *.js ]] && has_files=1; done
[ "$has_files" = 1 ] || set -- "$@" ./*.test.js
ip netns exec "$NS" node --test --test-concurrency=1 "$@"
