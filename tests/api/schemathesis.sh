#!/usr/bin/env bash
# Fuzzes the REST API from its own OpenAPI document with schemathesis (signed in as a fresh
# user) and fails on any server error (5xx) or a panic in the server's log, and on any answer
# the document does not describe: an undocumented status code or response shape, an accepted
# request the schema forbids, an operation that ignores a missing or wrong credential.
# Not checked: that every request the schema allows is accepted, because some are refused by
# rules a schema cannot state (blocking yourself, locking a meeting while creating it); nor
# that a deleted resource is gone, because `DELETE /meetings/{id}` cancels a meeting, which
# stays readable, marked cancelled, for its invitees and the history.
# Env: STOA_BIN (default target/debug/stoa), SCHEMATHESIS_SECONDS (default 90),
#      SCHEMATHESIS_VENV (default target/schemathesis-venv, made by scripts/install-test-deps).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${STOA_BIN:-target/debug/stoa}
VENV=${SCHEMATHESIS_VENV:-target/schemathesis-venv}
SECONDS_BUDGET=${SCHEMATHESIS_SECONDS:-90}
[ -x "$BIN" ] || { echo "error: $BIN not built (cargo build -p stoa)" >&2; exit 1; }
[ -x "$VENV/bin/st" ] || { echo "error: schemathesis missing in $VENV (scripts/install-test-deps)" >&2; exit 1; }

DIR=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE=http://127.0.0.1:$PORT
"$BIN" serve --data-dir "$DIR/data" --http-addr "127.0.0.1:$PORT" --media-udp-addr 127.0.0.1:0 \
  --media-tcp-addr 127.0.0.1:0 --turn-addr 127.0.0.1:0 --turn-tls-addr 127.0.0.1:0 --log warn >"$DIR/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true; rm -rf "$DIR"' EXIT
for _ in $(seq 100); do curl -sf "$BASE/healthz" >/dev/null && break; sleep 0.2; done
curl -sf "$BASE/healthz" >/dev/null || { echo "error: the server did not start" >&2; cat "$DIR/server.log" >&2; exit 1; }

TOKEN=$(curl -sf -X POST "$BASE/api/v1/auth/signup" -H 'content-type: application/json' \
  -d '{"email":"fuzz@example.org","password":"fuzz password","display_name":"Fuzz"}' |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')

# Log-out would end the session the run signs in with, leaving only 401s to test.
# Run from the temp dir: schemathesis leaves a cache directory where it runs.
ST=$(cd "$(dirname "$VENV/bin/st")" && pwd)/st
(cd "$DIR" && "$ST" run "$BASE/api/v1/openapi.json" -H "Authorization: Bearer $TOKEN" \
  --checks all --exclude-checks positive_data_acceptance,use_after_free --exclude-path /api/v1/auth/logout \
  --max-time "$SECONDS_BUDGET" --workers 2 --suppress-health-check all)

if grep -n "panicked" "$DIR/server.log"; then
  echo "error: the server panicked during the run" >&2
  exit 1
fi
if ! kill -0 $SERVER 2>/dev/null; then
  echo "error: the server died during the run" >&2
  exit 1
fi
echo "schemathesis: no server errors, every answer as documented"
