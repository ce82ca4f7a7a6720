#!/usr/bin/env bash
# Side by side: ALB header (x-amzn-oidc-data) verification rate per core, players-api vs
# aws-jwt-verify's AlbJwtVerifier.verifySync, on the same tokens and key.
# Usage: scripts/bench-alb-compare.sh   (env: ALB_COMPARE_SECS=5, ALB_COMPARE_TOKENS=5000)
set -euo pipefail
cd "$(dirname "$0")/.."
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
export ALB_COMPARE_DIR="$dir" ALB_COMPARE_SECS="${ALB_COMPARE_SECS:-5}"

(cd bench/alb-compare && { [ -d node_modules/aws-jwt-verify ] || npm ci --no-audit --no-fund >/dev/null; })
cargo build --release --bench alb_compare --locked >/dev/null 2>&1 || cargo build --release --bench alb_compare
bin="$(ls -t target/release/deps/alb_compare-* | grep -v '\.d$' | head -1)"

ALB_COMPARE_MODE=gen "$bin" >/dev/null
node_json="$(node bench/alb-compare/verify.mjs "$dir")"
rust_json="$(ALB_COMPARE_MODE=verify "$bin")"
echo "$node_json"
echo "$rust_json"
node -e '
const a = JSON.parse(process.argv[1]), b = JSON.parse(process.argv[2]);
console.log(`aws-jwt-verify: ${a.verifies_per_sec} verifies/s/core (${(1e6 / a.verifies_per_sec).toFixed(1)} µs)`);
console.log(`players-api:    ${b.verifies_per_sec} verifies/s/core (${(1e6 / b.verifies_per_sec).toFixed(1)} µs)`);
console.log(`raw aws-lc-rs:  ${b.raw_aws_lc_rs_per_sec} verifies/s/core   raw p256: ${b.raw_p256_per_sec} verifies/s/core`);
console.log(`ratio players-api / aws-jwt-verify: ${(b.verifies_per_sec / a.verifies_per_sec).toFixed(2)}x (target >= 1.3x)`);
const fastest = Math.max(b.raw_aws_lc_rs_per_sec, b.raw_p256_per_sec);
console.log(`ratio players-api / fastest raw backend: ${(b.verifies_per_sec / fastest).toFixed(2)}x (target >= 0.9x)`);
' "$node_json" "$rust_json"
