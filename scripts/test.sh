#!/usr/bin/env bash
# The whole test suite, in one command, on a fresh machine:
#   ./scripts/test.sh
# 1. Python tools into .tools/ (cfn-lint, checkov, hadolint, moto, pytest, openapi-spec-validator).
# 2. PostgreSQL on 127.0.0.1:5432: used if reachable; otherwise a throwaway cluster is started
#    from the installed PostgreSQL binaries (and stopped at exit).
# 3. The import-direction check of src/, cargo fmt --check, cargo clippy --all-targets
#    -D warnings.
# 4. The offline deployment checks (scripts/check-infra.sh), which include the Dockerfile's
#    release build.
# 5. The test OIDC provider's npm packages, then every Rust test (nextest), then the API
#    contract (schemathesis, scripts/contract-tests.sh), then the web app in headless Chromium
#    (scripts/browser-tests.sh installs chromium and chromedriver).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
step() { printf '\n==> %s\n' "$*"; }

step "the machine (a full disk or too little memory shows up here first)"
echo "cores: $(nproc); memory: $(free -g | awk '/^Mem:/ {print $2 " GiB, " $7 " GiB available"}')"
df -h "$ROOT" | tail -n 1 | awk '{print "disk: " $4 " free of " $2 " on " $6}'

step "Python tool venvs"
bash scripts/tools-venv.sh
export PLAYERS_TOOLS_VENV="$ROOT/.tools/venv"

step "PostgreSQL"
PG_HOST=127.0.0.1 PG_PORT=5432
pg_ready() { (exec 3<>"/dev/tcp/$PG_HOST/$PG_PORT") 2>/dev/null; }
if pg_ready; then
    echo "using the PostgreSQL server on $PG_HOST:$PG_PORT"
else
    PG_BIN="${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}"
    if [[ -z "$PG_BIN" || ! -x "$PG_BIN/initdb" ]]; then
        echo "PostgreSQL is not reachable on $PG_HOST:$PG_PORT and no server binaries were found." >&2
        echo "Install them (Debian: apt-get install postgresql) or start a server there with" >&2
        echo "trust authentication for the 'postgres' role, then rerun ./scripts/test.sh." >&2
        exit 1
    fi
    PG_DIR="$(mktemp -d /tmp/players-pg.XXXXXX)"
    RUN_AS=()
    if [[ "$(id -u)" == 0 ]]; then
        chown postgres "$PG_DIR" 2>/dev/null && RUN_AS=(runuser -u postgres --)
    fi
    echo "starting a throwaway cluster in $PG_DIR with $PG_BIN"
    "${RUN_AS[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust >/dev/null
    "${RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -w -l "$PG_DIR/log" \
        -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=$PG_HOST" start >/dev/null
    trap '"${RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast stop >/dev/null 2>&1; rm -rf "$PG_DIR"' EXIT
fi
export TEST_DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres@$PG_HOST:$PG_PORT/postgres}"

step "import direction between the modules of src/ (scripts/check-layers.py)"
python3 scripts/check-layers.py

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --locked -- -D warnings

step "OpenAPI document validates as OpenAPI 3.1"
cargo run --quiet --locked -- openapi > target/openapi.json
"$PLAYERS_TOOLS_VENV/bin/openapi-spec-validator" target/openapi.json

step "deployment files (cfn-lint, checkov, hadolint, pytest, Dockerfile build)"
bash scripts/check-infra.sh

step "the test OpenID Connect provider (tests/oidc-provider, npm ci from its lockfile)"
bash scripts/oidc-provider-deps.sh

step "Rust tests"
if ! command -v cargo-nextest >/dev/null; then
    cargo install cargo-nextest --locked
fi
cargo nextest run --locked --no-fail-fast

step "the API contract: schemathesis against players-api dev (scripts/contract-tests.sh)"
bash scripts/contract-tests.sh

step "web app in headless Chromium (scripts/browser-tests.sh)"
bash scripts/browser-tests.sh
