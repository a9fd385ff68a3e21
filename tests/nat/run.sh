#!/usr/bin/env bash
# Runs the NAT and TURN interop tests: builds the NAT lab (lab.sh), runs the tests, tears it
# down. Needs root, iptables, coturn's turnutils_* clients and Chromium.
set -euo pipefail
cd "$(dirname "$0")"
export STOA_BIN=${STOA_BIN:-$(cd ../.. && pwd)/target/release/stoa}
[ -x "$STOA_BIN" ] || { echo "error: $STOA_BIN not built (cargo build --release -p stoa)" >&2; exit 1; }
for tool in turnutils_uclient turnutils_stunclient turnutils_natdiscovery turnutils_peer iptables chromium; do
  command -v "$tool" >/dev/null || { echo "error: $tool is not installed (scripts/install-test-deps)" >&2; exit 1; }
done
export LAB_PREFIX=stoa$$
trap './lab.sh down' EXIT
./lab.sh up
# The test runner lives on the public side, next to the server; it starts tools and browsers
# in the other namespaces. Nothing in the lab has a route off this machine.
ip netns exec "$LAB_PREFIX-pub" node --test --test-concurrency=1 "$@" ./*.test.js
