#!/usr/bin/env bash
# Soak: a mixed read/write load (scripts/soak/mixed.lua: reads, list pages, creates, patches)
# on `players-api dev` against a fresh PostgreSQL database, printing one line per minute:
# requests, errors (non-2xx/3xx and socket errors), p99, the server's RSS, and its open
# connections (clients, database). Not part of the test command.
#   scripts/soak.sh [MINUTES]          default 10
#   SOAK_CONNECTIONS                   wrk connections (default 16; 2 threads)
#   PLAYERS_API_BIN                    default target/release/players-api, else target/debug
#   TEST_DATABASE_URL                  the server (default postgres://postgres@127.0.0.1:5432/postgres)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MINUTES="${1:-10}"
CONNECTIONS="${SOAK_CONNECTIONS:-16}"
ADMIN_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
BIN="${PLAYERS_API_BIN:-}"
if [[ -z "$BIN" ]]; then
    BIN="$ROOT/target/release/players-api"
    [[ -x "$BIN" ]] || BIN="$ROOT/target/debug/players-api"
fi
command -v wrk >/dev/null || { echo "soak: needs wrk (apt-get install wrk)" >&2; exit 1; }

WORK="$(mktemp -d /tmp/players-soak.XXXXXX)"
DB="soak_$(date +%s)_$$"
psql "$ADMIN_URL" -qc "create database $DB" >/dev/null
DB_URL="${ADMIN_URL%/*}/$DB"
read -r API ALB < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))')
"$BIN" dev --listen-addr "127.0.0.1:$API" --alb-port "$ALB" --database-url "$DB_URL" \
    >"$WORK/dev.log" 2>&1 &
PID=$!
cleanup() {
    kill "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
    psql "$ADMIN_URL" -qc "drop database if exists $DB with (force)" >/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
for _ in $(seq 1 600); do
    (exec 3<>"/dev/tcp/127.0.0.1/$API") 2>/dev/null && (exec 3<>"/dev/tcp/127.0.0.1/$ALB") 2>/dev/null && break
    sleep 0.1
done

export SOAK_TOKEN SOAK_IDS="$WORK/ids"
SOAK_TOKEN="$("$BIN" token --issuer "http://127.0.0.1:$ALB/issuer")"
for i in $(seq 1 200); do
    curl -fsS -H "Authorization: Bearer $SOAK_TOKEN" -H 'content-type: application/json' \
        -d "{\"name\":\"Seed $i\",\"date_of_birth\":\"1998-03-0$((1 + i % 9))\",\"country\":\"FRA\",\"team\":\"Seed $((i % 20))\",\"position\":\"defender\"}" \
        "http://127.0.0.1:$API/v1/players" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'
done >"$SOAK_IDS"

rss_mb() { awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/$PID/status"; }
conns() {
    local clients db
    clients="$(ss -Htn state established "( sport = :$API )" | wc -l)"
    db="$(ss -Htnp state established "( dport = :${DB_PORT:-5432} )" | grep -c "pid=$PID," || true)"
    echo "$clients $db"
}

echo "soak: $MINUTES min, $CONNECTIONS connections, $BIN ($(nproc) cores)"
printf '| minute | requests | req/s | errors | p99 ms | RSS MB | client conns | db conns |\n'
printf '| --- | --- | --- | --- | --- | --- | --- | --- |\n'
total_errors=0
for minute in $(seq 1 "$MINUTES"); do
    wrk -t2 -c"$CONNECTIONS" -d60s -s "$ROOT/scripts/soak/mixed.lua" "http://127.0.0.1:$API" \
        >"$WORK/wrk.out" &
    load=$!
    # Connections are counted mid-minute, while the load runs.
    sleep 30
    read -r clients db < <(conns)
    wait "$load"
    read -r _ requests errors p99 < <(grep '^SOAK ' "$WORK/wrk.out")
    total_errors=$((total_errors + errors))
    printf '| %d | %d | %d | %d | %s | %s | %s | %s |\n' "$minute" "$requests" "$((requests / 60))" \
        "$errors" "$p99" "$(rss_mb)" "$clients" "$db"
done
echo "soak: $total_errors errors in all"
[[ "$total_errors" == 0 ]]
