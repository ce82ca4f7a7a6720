// The Node half of scripts/bench-alb-compare.sh: verifies the tokens written by
// `ALB_COMPARE_MODE=gen` with aws-jwt-verify's AlbJwtVerifier.verifySync, one thread, the key
// preloaded into its cache (as after its first fetch), and prints verifies per second.
import { readFileSync } from "node:fs";
import { createPublicKey } from "node:crypto";
import { AlbJwtVerifier } from "aws-jwt-verify";

const dir = process.argv[2];
const secs = Number(process.env.ALB_COMPARE_SECS ?? 5);
const tokens = readFileSync(`${dir}/tokens.txt`, "utf8").split("\n").filter(Boolean);
const meta = JSON.parse(readFileSync(`${dir}/meta.json`, "utf8"));

const verifier = AlbJwtVerifier.create({
  albArn: meta.arn,
  issuer: meta.issuer,
  clientId: meta.client,
  jwksUri: "https://public-keys.auth.elb.eu-west-1.amazonaws.com",
});
const jwk = { ...createPublicKey(meta.pem).export({ format: "jwk" }), kid: meta.kid, use: "sig", alg: "ES256" };
verifier.cacheJwks({ keys: [jwk] });

for (const t of tokens.slice(0, 500)) verifier.verifySync(t);
const started = process.hrtime.bigint();
const deadline = started + BigInt(secs * 1e9);
let n = 0;
while (process.hrtime.bigint() < deadline) {
  for (const t of tokens.slice(0, 1000)) verifier.verifySync(t);
  n += Math.min(1000, tokens.length);
}
const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
console.log(JSON.stringify({ implementation: "aws-jwt-verify " + JSON.parse(readFileSync(new URL("./node_modules/aws-jwt-verify/package.json", import.meta.url))).version, verifies_per_sec: Math.round(n / elapsed) }));
