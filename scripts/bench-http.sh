#!/usr/bin/env bash
# HTTP benchmark of the release build, rerunnable:
#   ./scripts/bench-http.sh                  # SQLite and PostgreSQL, bearer and ALB
#   SEED=3000 DURATION=10 CONCURRENCY=32 ./scripts/bench-http.sh
# 1. For each database it starts `players-api dev` (the same application as `serve`, with the
#    local ALB's issuer as the bearer-token issuer, so every request is really authenticated),
#    seeds SEED players, then measures GET /v1/players/{id} and GET /v1/players?limit=50.
# 2. On PostgreSQL it then starts `players-api serve` as production runs it behind the ALB
#    (ALB_* settings, groups from the user claims) with the load generator acting as the ALB
#    (its key endpoint, its signed x-amzn-oidc-data tokens), and measures: warm (100 users'
#    tokens, verified before) and the list, alternating, three rounds each; cold (a token never
#    seen before on every request); and three rounds of paced: GET by id at a fixed rate of
#    PACED_FRACTION (0.5) of the warm rate, for p99. Then it prints the medians: warm, list and
#    their ratio, cold, the paced p99 (ALB_SCENARIOS changes the rounds).
# Every scenario runs DURATION seconds with CONCURRENCY requests in flight (examples/loadgen.rs)
# and prints req/s, p50 and p99. Load generator, server and PostgreSQL share this machine's
# cores; loopback only. PostgreSQL: a fresh database on 127.0.0.1:5432 (BENCH_PG_ADMIN_URL),
# dropped afterwards.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SEED="${SEED:-3000}" DURATION="${DURATION:-10}" CONCURRENCY="${CONCURRENCY:-32}"
# Behind the ALB: warm and list alternating, three rounds each, then cold, then three paced
# rounds at PACED_FRACTION of the last warm rate; the medians are printed after the rounds.
ALB_SCENARIOS="${ALB_SCENARIOS:-warm,list,warm,list,warm,list,cold,paced,paced,paced}"
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

# Waits for the server on port $1 (pid $2, log $WORK/$3.log) to answer /health.
wait_healthy() {
    for _ in $(seq 1 100); do
        curl -fs "http://127.0.0.1:$1/health" >/dev/null 2>&1 && return 0
        kill -0 "$2" 2>/dev/null || { cat "$WORK/$3.log" >&2; exit 1; }
        sleep 0.1
    done
}

bench() {
    local label="$1" db_url="$2"
    local api_port alb_port
    api_port="$(free_port)" alb_port="$(free_port)"
    DEV_LISTEN_ADDR="127.0.0.1:$api_port" DEV_DATABASE_URL="$db_url" LOG_LEVEL=info \
        "$BIN" dev --alb-port "$alb_port" 2>"$WORK/$label.log" &
    local pid=$!
    PIDS+=("$pid")
    wait_healthy "$api_port" "$pid" "$label"
    local token
    token="$("$BIN" token --issuer "http://127.0.0.1:$alb_port/issuer" --scope "players/read players/write")"
    PLAYERS_TOKEN="$token" "$LOADGEN" --base "http://127.0.0.1:$api_port" --seed "$SEED" \
        --duration "$DURATION" --concurrency "$CONCURRENCY" --label "$label"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
}

# The medians of the rounds in loadgen's output $1: warm and list req/s (and list / warm), cold
# req/s, and the paced p99.
summarise() {
    awk '
        function median(a, n,   i, j, t) {
            for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
            return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
        }
        function before(word,   i) { for (i = 1; i < NF; i++) if ($(i+1) == word) return $i }
        function after(word,   i) { for (i = 1; i < NF; i++) if ($i == word) return $(i+1) }
        / GET \/v1\/players\/\{id\} +[0-9]/ { warm[++w] = before("req/s") }
        /limit=50 / { list[++l] = before("req/s") }
        / cold / { cold[++c] = before("req/s") }
        / paced / { p99[++p] = after("p99") }
        END {
            if (w) printf "medians: warm %.0f req/s (%d rounds)", median(warm, w), w
            if (l && w) printf ", list %.0f req/s (%d), list/warm %.2f", median(list, l), l, median(list, l) / median(warm, w)
            if (c) printf ", cold %.0f req/s (%d)", median(cold, c), c
            if (p) printf ", paced p99 %.2f ms (%d)", median(p99, p), p
            print ""
        }' "$1"
}

# `serve` behind the ALB, the load generator being the ALB (see examples/loadgen.rs for the
# identity it signs with), on the database `bench` seeded.
bench_alb() {
    local label="$1" db_url="$2"
    local api_port key_port
    api_port="$(free_port)" key_port="$(free_port)"
    LISTEN_ADDR="127.0.0.1:$api_port" DATABASE_URL="$db_url" LOG_LEVEL=info \
        ALB_SIGNER_ARNS="arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/players-bench/50dc6c495c0c9188" \
        ALB_ISSUER="https://idp.bench.example" ALB_CLIENT_ID="players-bench" ALB_GROUPS_SOURCE=userinfo \
        ALB_KEY_ENDPOINT="http://127.0.0.1:$key_port" AWS_REGION=eu-west-1 \
        "$BIN" serve >"$WORK/$label.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    wait_healthy "$api_port" "$pid" "$label"
    "$LOADGEN" --base "http://127.0.0.1:$api_port" --alb-key-port "$key_port" \
        --duration "$DURATION" --concurrency "$CONCURRENCY" --label "$label" \
        --scenarios "$ALB_SCENARIOS" --rate-of-peak "${PACED_FRACTION:-0.5}" | tee "$WORK/$label.rounds"
    summarise "$WORK/$label.rounds"
    echo "$label: server RSS after the run $(($(ps -o rss= -p "$pid") / 1024)) MB"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
}

echo "players-api HTTP benchmark: $SEED players, ${DURATION}s per scenario, concurrency $CONCURRENCY, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
bench sqlite "sqlite:$WORK/bench.db"
if psql "$PG_ADMIN" -qc "drop database if exists players_bench with (force)" -c "create database players_bench" >/dev/null 2>&1; then
    # Loopback: no TLS to the database (a URL's own sslmode wins over DB_SSLMODE, and without
    # one the driver would prefer TLS, which the side-by-side harness does not use either).
    bench postgres "${PG_ADMIN%/*}/players_bench?sslmode=disable"
    bench_alb postgres-alb "${PG_ADMIN%/*}/players_bench?sslmode=disable"
else
    echo "PostgreSQL not reachable at $PG_ADMIN: skipped" >&2
fi
