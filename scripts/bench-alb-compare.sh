#!/usr/bin/env bash
# Side by side: ALB header (x-amzn-oidc-data) verification rate per core, players-api vs
# aws-jwt-verify's AlbJwtVerifier.verifySync, on the same tokens and key, plus the raw ES256
# verify rate of aws-lc-rs and p256 on the same (message, signature) pairs.
#
# Both sides run single-threaded, key already cached, a distinct token (signature) on every
# call. The machine may be shared, so the two implementations run alternately for ROUNDS
# rounds and the median of each is reported; the raw backends are interleaved with ours
# inside the Rust process.
#
# Usage: scripts/bench-alb-compare.sh   (env: ROUNDS=3, ALB_COMPARE_SECS=4, ALB_COMPARE_TOKENS=5000)
set -euo pipefail
cd "$(dirname "$0")/.."
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
export ALB_COMPARE_DIR="$dir" ALB_COMPARE_SECS="${ALB_COMPARE_SECS:-4}"
rounds="${ROUNDS:-3}"

(cd bench/alb-compare && { [ -d node_modules/aws-jwt-verify ] || npm ci --no-audit --no-fund >/dev/null; })
cargo bench --bench alb_compare --no-run >/dev/null 2>&1 || cargo bench --bench alb_compare --no-run
bin="$(ls -t target/release/deps/alb_compare-* | grep -v '\.d$' | head -1)"

ALB_COMPARE_MODE=gen "$bin" >/dev/null
results="$dir/results.jsonl"
for r in $(seq "$rounds"); do
  node bench/alb-compare/verify.mjs "$dir" | tee -a "$results"
  ALB_COMPARE_MODE=verify "$bin" | tee -a "$results"
done
node -e '
const lines = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const node = median(lines.filter(l => l.implementation.startsWith("aws-jwt-verify")).map(l => l.verifies_per_sec));
const rust = lines.filter(l => l.implementation.startsWith("players-api"));
const ours = median(rust.map(l => l.verifies_per_sec));
const lc = median(rust.map(l => l.raw_aws_lc_rs_per_sec));
const p256 = median(rust.map(l => l.raw_p256_per_sec));
const us = (r) => (1e6 / r).toFixed(1);
console.log(`\nmedian of ${rust.length} rounds, per core:`);
console.log(`  aws-jwt-verify AlbJwtVerifier.verifySync: ${node} verifies/s (${us(node)} µs)`);
console.log(`  players-api AlbVerifier (aws-lc-rs):      ${ours} verifies/s (${us(ours)} µs)`);
console.log(`  raw aws-lc-rs ES256 verify:               ${lc} verifies/s (${us(lc)} µs)`);
console.log(`  raw p256 ES256 verify:                    ${p256} verifies/s (${us(p256)} µs)`);
console.log(`ratio players-api / aws-jwt-verify:   ${(ours / node).toFixed(2)}x (target >= 1.3x)`);
console.log(`ratio players-api / fastest raw:      ${(ours / Math.max(lc, p256)).toFixed(2)}x (target >= 0.9x)`);
' "$results"
