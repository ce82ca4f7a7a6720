#!/usr/bin/env bash
# The test OpenID Connect provider (tests/oidc-provider: the `oidc-provider` npm package) needs
# Node.js >= 20.19 and its dependencies installed from the lockfile. Idempotent: `npm ci` runs
# only when the lockfile changed since the last install.
#   ./scripts/oidc-provider-deps.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="$ROOT/tests/oidc-provider"
STAMP="$DIR/node_modules/.installed-from-lockfile"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
        apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
    else
        echo "Node.js and npm are needed for the OIDC provider tests (Debian: apt-get install nodejs npm)." >&2
        exit 1
    fi
fi
if ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a==20&&b>=19)?0:1)'; then
    echo "Node.js >= 20.19 is needed for oidc-provider (found $(node --version))." >&2
    exit 1
fi

want="$(sha256sum "$DIR/package-lock.json" | cut -d' ' -f1)"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
    exit 0
fi
(cd "$DIR" && npm ci --no-audit --no-fund --loglevel=error)
echo "$want" > "$STAMP"
