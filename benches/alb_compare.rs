//! The Rust half of `scripts/bench-alb-compare.sh` (not a criterion bench).
//!
//! `ALB_COMPARE_MODE=gen ALB_COMPARE_DIR=d`: writes `d/tokens.txt` (distinct valid headers,
//! padded like the ALB's) and `d/meta.json` (ARN, issuer, client, kid, PEM key).
//! `ALB_COMPARE_MODE=verify ALB_COMPARE_DIR=d`: verifies them all, round robin, on one thread
//! for `ALB_COMPARE_SECS` seconds (default 5) and prints `{"verifies_per_sec": ...}`.

mod bench_support;

use std::time::{Duration, Instant};

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
            let rate = rt.block_on(async {
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
                v.verify_uncached(&tokens[0], now).await.unwrap();
                // Warm up, then measure.
                for t in tokens.iter().take(500) {
                    v.verify_uncached(t, now).await.unwrap();
                }
                let started = Instant::now();
                let mut n = 0u64;
                while started.elapsed() < Duration::from_secs(secs) {
                    for t in tokens.iter().take(1000) {
                        std::hint::black_box(v.verify_uncached(t, now).await.unwrap());
                    }
                    n += 1000.min(tokens.len() as u64);
                }
                n as f64 / started.elapsed().as_secs_f64()
            });
            println!(
                "{{\"implementation\": \"players-api (aws-lc-rs)\", \"verifies_per_sec\": {rate:.0}}}"
            );
        }
        _ => eprintln!("alb_compare: ALB_COMPARE_MODE must be gen or verify"),
    }
}
