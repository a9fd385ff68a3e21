#!/usr/bin/env bash
# Runs the README's "Run it" command exactly as written, from the repository root, inside a
# network namespace with only loopback, and checks that the server it starts answers /healthz
# on the address the README tells people to open. Needs root (ip netns).
set -euo pipefail
cd "$(dirname "$0")/../.."

cmd=$(awk '/^## Run it/{found=1} found && /^```/{n++; next} found && n==1 {print; exit}' README.md)
[ -n "$cmd" ] || { echo "error: no command in the README's \"Run it\" block" >&2; exit 1; }
url=$(grep -oE 'http://127\.0\.0\.1:[0-9]+/' README.md | head -1)
[ -n "$url" ] || { echo "error: the README names no http://127.0.0.1:PORT/ to open" >&2; exit 1; }
echo "README command: $cmd (then open $url)"

NS=stoa-readme-$$
LOG=$(mktemp)
ip netns add "$NS"
pid=
cleanup() {
  # The server was asked to stop: its exit status (143) is not this test's.
  if [ -n "$pid" ]; then
    kill -TERM -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  ip netns del "$NS" 2>/dev/null || true
  rm -f "$LOG"
}
trap cleanup EXIT
ip netns exec "$NS" ip link set lo up
setsid ip netns exec "$NS" bash -c "$cmd" >"$LOG" 2>&1 &
pid=$!
for _ in $(seq 1 600); do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "error: the README command exited:" >&2; cat "$LOG" >&2; exit 1
  fi
  if ip netns exec "$NS" curl -fsS "${url}healthz" >/dev/null 2>&1; then
    body=$(ip netns exec "$NS" curl -fsS "${url}healthz")
    grep -q '"status":"ok"' <<<"$body" || { echo "error: /healthz said $body" >&2; exit 1; }
    page=$(ip netns exec "$NS" curl -fsS "$url")
    grep -qi '<html' <<<"$page" || { echo "error: $url did not serve the web app" >&2; exit 1; }
    echo "ok: the README command serves $url and /healthz says $body"
    exit 0
  fi
  sleep 0.5
done
echo "error: no answer from ${url}healthz within 300 s:" >&2; cat "$LOG" >&2; exit 1
