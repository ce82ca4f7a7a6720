//! A small HTTP load generator for players-api (used by `scripts/bench-http.sh`).
//!
//! ```text
//! cargo run --release --example loadgen -- --base http://127.0.0.1:8080 --token "$T" \
//!     --seed 3000 --duration 10 --concurrency 32
//! ```
//! Seeds players (optional), then measures `GET /v1/players/{id}` (random seeded ids) and
//! `GET /v1/players?limit=50` for `--duration` seconds each with `--concurrency` requests in
//! flight, and prints requests/s, p50 and p99. Bounded in time and count; loopback only.

use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::{Value, json};

#[derive(Parser)]
struct Args {
    /// API base URL (must be a loopback address).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    base: String,
    /// Bearer token (e.g. from `players-api token`).
    #[arg(long, env = "PLAYERS_TOKEN")]
    token: String,
    /// Players to create before measuring.
    #[arg(long, default_value_t = 0)]
    seed: usize,
    #[arg(long, default_value_t = 10)]
    duration: u64,
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Label printed with the results (e.g. the database).
    #[arg(long, default_value = "")]
    label: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let host = url::Url::parse(&args.base)?;
    let loopback = matches!(host.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    anyhow::ensure!(loopback, "loadgen only targets loopback addresses");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let auth = format!("Bearer {}", args.token);

    if args.seed > 0 {
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for worker in 0..args.concurrency {
            let (client, auth, base) = (client.clone(), auth.clone(), args.base.clone());
            let count = args.seed;
            let workers = args.concurrency;
            tasks.spawn(async move {
                for n in (worker..count).step_by(workers) {
                    let country = ["ENG", "BRA", "FRA", "ESP", "GER"][n % 5];
                    let position = ["goalkeeper", "defender", "midfielder", "forward"][n % 4];
                    let body = json!({
                        "name": format!("Bench Player {n}"),
                        "date_of_birth": "1996-03-04",
                        "country": country,
                        "team": format!("Bench Club {}", n / 90),
                        "position": position,
                        "club_number": n % 90 + 1,
                    });
                    let res = client
                        .post(format!("{base}/v1/players"))
                        .header("authorization", &auth)
                        .json(&body)
                        .send()
                        .await?;
                    anyhow::ensure!(
                        res.status().is_success() || res.status() == 409,
                        "seed: {}",
                        res.status()
                    );
                }
                Ok(())
            });
        }
        while let Some(r) = tasks.join_next().await {
            r??;
        }
        println!(
            "seeded {} players in {:.1}s",
            args.seed,
            started.elapsed().as_secs_f64()
        );
    }

    let page: Value = client
        .get(format!("{}/v1/players?limit=200", args.base))
        .header("authorization", &auth)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let ids: Vec<String> = page["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    anyhow::ensure!(!ids.is_empty(), "no players to read: seed some with --seed");

    for scenario in ["GET /v1/players/{id}", "GET /v1/players?limit=50"] {
        let deadline = Instant::now() + Duration::from_secs(args.duration);
        let mut tasks = tokio::task::JoinSet::new();
        for worker in 0..args.concurrency {
            let (client, auth, base, ids) =
                (client.clone(), auth.clone(), args.base.clone(), ids.clone());
            tasks.spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0u64;
                let mut i = worker;
                while Instant::now() < deadline {
                    let url = if scenario.contains("{id}") {
                        format!("{base}/v1/players/{}", ids[i % ids.len()])
                    } else {
                        format!("{base}/v1/players?limit=50")
                    };
                    i += 7;
                    let t = Instant::now();
                    match client.get(&url).header("authorization", &auth).send().await {
                        Ok(res) if res.status().is_success() => {
                            let _ = res.bytes().await;
                            latencies.push(t.elapsed());
                        }
                        _ => errors += 1,
                    }
                }
                (latencies, errors)
            });
        }
        let mut all = Vec::new();
        let mut errors = 0;
        while let Some(r) = tasks.join_next().await {
            let (l, e) = r?;
            all.extend(l);
            errors += e;
        }
        all.sort();
        let pct = |p: f64| {
            all[((all.len() as f64 * p) as usize).min(all.len() - 1)].as_secs_f64() * 1000.0
        };
        println!(
            "{:<10} {:<26} {:>9.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  ({} ok, {} errors, concurrency {})",
            args.label,
            scenario,
            all.len() as f64 / args.duration as f64,
            pct(0.50),
            pct(0.99),
            all.len(),
            errors,
            args.concurrency
        );
    }
    Ok(())
}
