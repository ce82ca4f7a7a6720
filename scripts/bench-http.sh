#!/usr/bin/env bash
# HTTP benchmark of the release build, rerunnable:
#   ./scripts/bench-http.sh                  # SQLite and PostgreSQL
#   SEED=3000 DURATION=10 CONCURRENCY=32 ./scripts/bench-http.sh
# For each database it starts `players-api dev` (the same application as `serve`, with the
# local ALB's issuer as the bearer-token issuer, so every request is really authenticated),
# seeds SEED players, then measures GET /v1/players/{id} and GET /v1/players?limit=50 for
# DURATION seconds each with CONCURRENCY requests in flight (examples/loadgen.rs), printing
# req/s, p50 and p99. Load generator and server share this machine's cores; loopback only.
# PostgreSQL: a fresh database on 127.0.0.1:5432 (BENCH_PG_ADMIN_URL), dropped afterwards.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SEED="${SEED:-3000}" DURATION="${DURATION:-10}" CONCURRENCY="${CONCURRENCY:-32}"
PG_ADMIN="${BENCH_PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
cargo build --release --locked --bin players-api --example loadgen
BIN=target/release/players-api
LOADGEN=target/release/examples/loadgen
WORK="$(mktemp -d /tmp/players-bench.XXXXXX)"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    psql "$PG_ADMIN" -qc "drop database if exists players_bench with (force)" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

bench() {
    local label="$1" db_url="$2"
    local api_port alb_port
    api_port="$(free_port)" alb_port="$(free_port)"
    DEV_LISTEN_ADDR="127.0.0.1:$api_port" DEV_DATABASE_URL="$db_url" LOG_LEVEL=info \
        "$BIN" dev --alb-port "$alb_port" 2>"$WORK/$label.log" &
    local pid=$!
    PIDS+=("$pid")
    for _ in $(seq 1 100); do
        curl -fs "http://127.0.0.1:$api_port/health" >/dev/null 2>&1 && break
        kill -0 "$pid" 2>/dev/null || { cat "$WORK/$label.log" >&2; exit 1; }
        sleep 0.1
    done
    local token
    token="$("$BIN" token --issuer "http://127.0.0.1:$alb_port/issuer" --scope "players/read players/write")"
    PLAYERS_TOKEN="$token" "$LOADGEN" --base "http://127.0.0.1:$api_port" --seed "$SEED" \
        --duration "$DURATION" --concurrency "$CONCURRENCY" --label "$label"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
}

echo "players-api HTTP benchmark: $SEED players, ${DURATION}s per scenario, concurrency $CONCURRENCY, $(nproc) cores"
bench sqlite "sqlite:$WORK/bench.db"
if psql "$PG_ADMIN" -qc "drop database if exists players_bench with (force)" -c "create database players_bench" >/dev/null 2>&1; then
    bench postgres "${PG_ADMIN%/*}/players_bench"
else
    echo "PostgreSQL not reachable at $PG_ADMIN: skipped" >&2
fi
