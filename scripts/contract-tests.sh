#!/usr/bin/env bash
# The API contract: schemathesis against `players-api dev`, every check (`--checks all`) in
# every phase (examples, coverage, fuzzing, stateful), a fixed seed and a time budget:
#   1. as a service, with a bearer token from the local issuer holding every scope;
#   2. as a browser user (admin), through the local ALB with its session cookie.
# Zero failures are allowed. tests/contract/hooks.py drops only the refusals no schema can rule
# out (state and today's date), each with its reason; the one check left out of run 2 is named
# below with its reason.
#   CONTRACT_SECONDS   time budget of each run (default 75)
#   PLAYERS_API_BIN    the binary (default target/debug/players-api, built when missing)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BIN="${PLAYERS_API_BIN:-$ROOT/target/debug/players-api}"
BUDGET="${CONTRACT_SECONDS:-75}"
SEED=20261201
bash scripts/tools-venv.sh >/dev/null
ST="$ROOT/.tools/schemathesis-venv/bin/schemathesis"
[[ -x "$BIN" ]] || cargo build --locked

WORK="$(mktemp -d /tmp/players-contract.XXXXXX)"
read -r API ALB < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))')
"$BIN" dev --listen-addr "127.0.0.1:$API" --alb-port "$ALB" \
    --database-url "sqlite:$WORK/contract.db" >"$WORK/dev.log" 2>&1 &
DEV=$!
trap 'kill "$DEV" 2>/dev/null || true; wait "$DEV" 2>/dev/null || true; rm -rf "$WORK"' EXIT

python3 - "$API" "$ALB" <<'PY'
import socket, sys, time
deadline = time.monotonic() + 60
for port in map(int, sys.argv[1:]):
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                sys.exit(f"players-api dev did not listen on {port} within 60 s")
            time.sleep(0.1)
PY

export PYTHONPATH="$ROOT/tests/contract" SCHEMATHESIS_HOOKS=hooks
run() {
    (cd "$WORK" && "$ST" run --checks all --phases examples,coverage,fuzzing,stateful \
        --seed "$SEED" --max-time "$BUDGET" --workers 2 --continue-on-failure \
        --report junit --report-dir "$WORK/report" "$@")
}

echo "contract: as a service (bearer token, every scope)"
TOKEN="$("$BIN" token --issuer "http://127.0.0.1:$ALB/issuer")"
run "http://127.0.0.1:$API/openapi.json" -H "Authorization: Bearer $TOKEN"

echo "contract: as a browser user (admin) through the local ALB"
COOKIE="$(python3 tests/contract/browser_session.py "http://127.0.0.1:$ALB" admin)"
# ignored_auth removes the credentials the document names (x-amzn-oidc-data, Authorization)
# and expects a 401; behind the ALB the credential is the session cookie, which the ALB (not
# the service) reads, so removing those headers does not log the user out. Run 1 checks it.
run "http://127.0.0.1:$ALB/openapi.json" -H "Cookie: $COOKIE" -H "Origin: http://127.0.0.1:$ALB" \
    --exclude-checks ignored_auth
