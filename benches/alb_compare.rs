//! The Rust half of `scripts/bench-alb-compare.sh` (not a criterion bench).
//!
//! `ALB_COMPARE_MODE=gen ALB_COMPARE_DIR=d`: writes `d/tokens.txt` (distinct valid headers,
//! padded like the ALB's) and `d/meta.json` (ARN, issuer, client, kid, PEM key).
//! `ALB_COMPARE_MODE=verify ALB_COMPARE_DIR=d`: verifies them all, round robin, on one thread
//! for `ALB_COMPARE_SECS` seconds (default 5) and prints `{"verifies_per_sec": ...}`.

mod bench_support;

use std::time::{Duration, Instant};

use base64::{Engine, engine::general_purpose::URL_SAFE};
use bench_support::auth_support::*;
use players_api::auth::alb::{AlbVerifier, AlbVerifierConfig, SignerArn};

fn main() {
    let mode = std::env::var("ALB_COMPARE_MODE").unwrap_or_default();
    let Ok(dir) = std::env::var("ALB_COMPARE_DIR") else {
        eprintln!(
            "alb_compare: set ALB_COMPARE_MODE=gen|verify and ALB_COMPARE_DIR (see scripts/bench-alb-compare.sh)"
        );
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    match mode.as_str() {
        "gen" => {
            let n: usize = std::env::var("ALB_COMPARE_TOKENS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(5000);
            let key = AlbKeyPair::generate();
            let tokens = bench_support::alb_tokens(&key, n);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("tokens.txt"), tokens.join("\n")).unwrap();
            let meta = serde_json::json!({
                "arn": ARN, "issuer": ISSUER, "client": CLIENT, "kid": key.kid, "pem": key.public_pem(),
            });
            std::fs::write(dir.join("meta.json"), meta.to_string()).unwrap();
            println!("wrote {n} tokens to {}", dir.display());
        }
        "verify" => {
            let secs: u64 = std::env::var("ALB_COMPARE_SECS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(5);
            let tokens: Vec<String> = std::fs::read_to_string(dir.join("tokens.txt"))
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect();
            let meta: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(dir.join("meta.json")).unwrap())
                    .unwrap();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let (ours, raw_lc, raw_p256) = rt.block_on(async {
                // The key comes from a local key endpoint, cached like in production.
                let server = TestServer::start().await;
                server.set(
                    &format!("/{}", meta["kid"].as_str().unwrap()),
                    Reply::Ok(meta["pem"].as_str().unwrap().as_bytes().to_vec()),
                );
                let mut c = AlbVerifierConfig::new(vec![
                    SignerArn::parse(meta["arn"].as_str().unwrap()).unwrap(),
                ]);
                c.issuer = meta["issuer"].as_str().map(str::to_owned);
                c.client_id = meta["client"].as_str().map(str::to_owned);
                c.key_endpoint = Some(server.base.clone());
                let v = AlbVerifier::new(c).unwrap();
                let now = now();
                v.verify_uncached(&tokens[0], now).await.unwrap(); // fetches and caches the key

                // The raw backends get the same (message, signature) pairs, already decoded.
                let pem = meta["pem"].as_str().unwrap();
                let pk =
                    <p256::PublicKey as p256::pkcs8::DecodePublicKey>::from_public_key_pem(pem)
                        .unwrap();
                let lc = aws_lc_rs::signature::ParsedPublicKey::new(
                    &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED,
                    pk.to_sec1_bytes(),
                )
                .unwrap();
                let vk = p256::ecdsa::VerifyingKey::from(&pk);
                let pairs: Vec<(Vec<u8>, Vec<u8>)> = tokens
                    .iter()
                    .map(|t| {
                        let (m, s) = t.rsplit_once('.').unwrap();
                        (m.as_bytes().to_vec(), URL_SAFE.decode(s).unwrap())
                    })
                    .collect();

                // Interleave the three in short rounds so load changes on this shared machine
                // hit all of them alike.
                let (mut t_ours, mut t_lc, mut t_p256) =
                    (Duration::ZERO, Duration::ZERO, Duration::ZERO);
                let (mut n_ours, mut n_lc, mut n_p256) = (0u64, 0u64, 0u64);
                let started = Instant::now();
                let mut k = 0usize;
                while started.elapsed() < Duration::from_secs(secs) {
                    let t0 = Instant::now();
                    for _ in 0..200 {
                        k = (k + 1) % tokens.len();
                        std::hint::black_box(v.verify_uncached(&tokens[k], now).await.unwrap());
                    }
                    t_ours += t0.elapsed();
                    n_ours += 200;
                    let t0 = Instant::now();
                    for _ in 0..200 {
                        k = (k + 1) % tokens.len();
                        lc.verify_sig(&pairs[k].0, &pairs[k].1).unwrap();
                    }
                    t_lc += t0.elapsed();
                    n_lc += 200;
                    let t0 = Instant::now();
                    for _ in 0..50 {
                        k = (k + 1) % tokens.len();
                        let sig = p256::ecdsa::Signature::from_slice(&pairs[k].1).unwrap();
                        p256::ecdsa::signature::Verifier::verify(&vk, &pairs[k].0, &sig).unwrap();
                    }
                    t_p256 += t0.elapsed();
                    n_p256 += 50;
                }
                let rate = |n: u64, t: Duration| n as f64 / t.as_secs_f64();
                (rate(n_ours, t_ours), rate(n_lc, t_lc), rate(n_p256, t_p256))
            });
            println!(
                "{{\"implementation\": \"players-api (aws-lc-rs)\", \"verifies_per_sec\": {ours:.0}, \"raw_aws_lc_rs_per_sec\": {raw_lc:.0}, \"raw_p256_per_sec\": {raw_p256:.0}}}"
            );
        }
        _ => eprintln!("alb_compare: ALB_COMPARE_MODE must be gen or verify"),
    }
}
