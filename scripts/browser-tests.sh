#!/usr/bin/env bash
# The web app's browser tests: headless Debian chromium driven over WebDriver (chromium-driver)
# by pytest + selenium, against `players-api dev` (one per test, own ports and SQLite file).
#
# Idempotent on a fresh machine: installs chromium and chromium-driver with apt when missing
# (as root), the Python packages into .tools/browser-venv (only when
# tests/browser/requirements.txt changed), builds the debug binary, runs the tests.
# Screenshots, dev logs and chromedriver logs go to tests/browser/artifacts/ (git-ignored).
# Extra arguments go to pytest (e.g. `-k conflict -x`).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

CHROMIUM_BIN="${CHROMIUM_BIN:-/usr/bin/chromium}"
CHROMEDRIVER_BIN="${CHROMEDRIVER_BIN:-/usr/bin/chromedriver}"
if [[ ! -x "$CHROMIUM_BIN" || ! -x "$CHROMEDRIVER_BIN" ]]; then
    if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null; then
        echo "browser-tests: install Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)" >&2
        exit 1
    fi
    echo "browser-tests: installing chromium and chromium-driver with apt" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends chromium chromium-driver >/dev/null ||
        { apt-get update >/dev/null && apt-get install -y --no-install-recommends chromium chromium-driver >/dev/null; }
fi
export CHROMIUM_BIN CHROMEDRIVER_BIN

VENV="$ROOT/.tools/browser-venv"
REQ="$ROOT/tests/browser/requirements.txt"
STAMP="$VENV/.requirements.sha256"
WANT="$(sha256sum "$REQ" | cut -d' ' -f1)"
if [[ ! -x "$VENV/bin/python" || ! -f "$STAMP" || "$(cat "$STAMP")" != "$WANT" ]]; then
    echo "browser-tests: installing $REQ into $VENV" >&2
    [[ -x "$VENV/bin/python" ]] || { rm -rf "$VENV"; mkdir -p "$ROOT/.tools"; "${PYTHON:-python3}" -m venv "$VENV"; }
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQ" >&2
    echo "$WANT" >"$STAMP"
fi

if [[ -z "${PLAYERS_API_BIN:-}" ]]; then
    cargo build --quiet --locked --bin players-api
    export PLAYERS_API_BIN="$ROOT/target/debug/players-api"
fi

mkdir -p tests/browser/artifacts
# Selenium must use the driver given, never fetch one.
export SE_OFFLINE=true
exec "$VENV/bin/python" -m pytest tests/browser -p no:cacheprovider -q "$@"
