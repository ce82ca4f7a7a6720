//! A small HTTP load generator for players-api (used by `scripts/bench-http.sh`).
//!
//! ```text
//! # bearer token (players-api dev), seeding first
//! loadgen --base http://127.0.0.1:8080 --token "$T" --seed 3000 --scenarios by-id,list
//! # ALB headers (players-api serve with ALB_KEY_ENDPOINT=http://127.0.0.1:9000)
//! loadgen --base http://127.0.0.1:8080 --alb-key-port 9000 --scenarios warm,cold,list,paced
//! ```
//! Scenarios, each for `--duration` seconds:
//! - `by-id`, `warm`: `GET /v1/players/{id}` with `--concurrency` requests in flight; `warm`
//!   cycles through `--alb-users` users' ALB tokens (the service has verified them before);
//! - `cold`: the same, every request with an ALB token never sent before (each verified from
//!   scratch: the signature check on every request);
//! - `list`: `GET /v1/players?limit=50`;
//! - `paced`: `GET /v1/players/{id}` at a fixed rate (`--rate`, or `--rate-of-peak` times the
//!   `by-id`/`warm` rate of the same run), wrk2-style: `--concurrency` keep-alive connections
//!   on a schedule, each latency counted from when the request was due, so a server falling
//!   behind shows its whole queue. Beside it a thread of the generator's own sleeps 1 ms at a
//!   time and reports how late it woke (the machine's stalls, not the server's); `--timeline`
//!   prints both second by second.
//!
//! With `--alb-key-port` it acts as the ALB: it generates a signing key, serves its public key
//! as the AWS key endpoint does (`GET /{kid}`, PEM) and mints the tokens. Loopback only.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use clap::Parser;
use players_api::local_alb::{AlbSigner, UserClaims};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The ALB identity `scripts/bench-http.sh` configures the service with.
const ALB_ARN: &str = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/players-bench/50dc6c495c0c9188";
const ALB_ISSUER: &str = "https://idp.bench.example";
const ALB_CLIENT: &str = "players-bench";

#[derive(Parser)]
struct Args {
    /// API base URL (must be a loopback address).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    base: String,
    /// Bearer token (e.g. from `players-api token`); not needed with `--alb-key-port`.
    #[arg(long, env = "PLAYERS_TOKEN", default_value = "")]
    token: String,
    /// Act as the ALB: serve its key endpoint on this loopback port and send ALB tokens.
    #[arg(long)]
    alb_key_port: Option<u16>,
    /// Distinct users whose tokens the warm scenarios cycle through.
    #[arg(long, default_value_t = 100)]
    alb_users: usize,
    /// Tokens minted for the cold scenario (each is sent once; more than it can send).
    #[arg(long, default_value_t = 150_000)]
    alb_cold_tokens: usize,
    /// Players to create before measuring.
    #[arg(long, default_value_t = 0)]
    seed: usize,
    #[arg(long, default_value_t = 10)]
    duration: u64,
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Comma-separated: by-id, warm, cold, list, paced.
    #[arg(long, default_value = "by-id,list")]
    scenarios: String,
    /// Requests per second of `paced`.
    #[arg(long)]
    rate: Option<f64>,
    /// `paced` at this fraction of the run's closed-loop by-id rate (when `--rate` is unset).
    #[arg(long, default_value_t = 0.5)]
    rate_of_peak: f64,
    /// Print `paced`'s latencies second by second, with a wake-up probe's worst delay.
    #[arg(long)]
    timeline: bool,
    /// Label printed with the results (e.g. the database).
    #[arg(long, default_value = "")]
    label: String,
}

/// How requests authenticate: one bearer token, or ALB tokens taken in turn.
#[derive(Clone)]
enum Credentials {
    Bearer(Arc<str>),
    Alb {
        tokens: Arc<Vec<String>>,
        next: Arc<AtomicUsize>,
    },
}

impl Credentials {
    fn apply(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Credentials::Bearer(token) => req.header("authorization", format!("Bearer {token}")),
            Credentials::Alb { tokens, next } => {
                let i = next.fetch_add(1, Ordering::Relaxed) % tokens.len();
                req.header("x-amzn-oidc-data", &tokens[i])
                    .header("sec-fetch-site", "same-origin")
            }
        }
    }

    /// The same headers as raw HTTP/1.1 lines, each ending in CRLF.
    fn header_lines(&self) -> String {
        match self {
            Credentials::Bearer(token) => format!("authorization: Bearer {token}\r\n"),
            Credentials::Alb { tokens, next } => {
                let i = next.fetch_add(1, Ordering::Relaxed) % tokens.len();
                format!(
                    "x-amzn-oidc-data: {}\r\nsec-fetch-site: same-origin\r\n",
                    tokens[i]
                )
            }
        }
    }

    fn alb(tokens: Vec<String>) -> Self {
        Credentials::Alb {
            tokens: Arc::new(tokens),
            next: Arc::new(AtomicUsize::new(0)),
        }
    }
}

/// The outcome of one scenario.
struct Measured {
    ok: Vec<Duration>,
    errors: u64,
    seconds: f64,
    /// `paced`'s wake-up probe, summed up.
    probe: Option<String>,
}

impl Measured {
    fn rate(&self) -> f64 {
        self.ok.len() as f64 / self.seconds
    }
    fn percentile_ms(&self, p: f64) -> f64 {
        percentile_ms(&self.ok, p)
    }
}

/// The `p` quantile of `sorted` latencies in milliseconds (NaN when there are none).
fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1));
    sorted.get(i).map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let host = url::Url::parse(&args.base)?;
    let loopback = matches!(host.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    anyhow::ensure!(loopback, "loadgen only targets loopback addresses");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency.max(256))
        .build()?;

    let (writer, warm, cold) = match args.alb_key_port {
        None => {
            anyhow::ensure!(!args.token.is_empty(), "give --token or --alb-key-port");
            let bearer = Credentials::Bearer(args.token.as_str().into());
            (bearer.clone(), bearer, None)
        }
        Some(port) => {
            let signer = AlbSigner::generate(ALB_ARN, ALB_ISSUER, ALB_CLIENT)?;
            serve_key_endpoint(port, signer.kid().to_owned(), signer.public_key_pem()?).await?;
            let started = Instant::now();
            let mint = |n: usize, offset: usize, group: &str| {
                (offset..offset + n)
                    .map(|i| signer.mint(&user(i, group), exp()))
                    .collect::<anyhow::Result<Vec<_>>>()
            };
            let writer = Credentials::alb(mint(1, 0, "players-editor")?);
            let warm = Credentials::alb(mint(args.alb_users, 1, "players-viewer")?);
            let wants_cold = args.scenarios.split(',').any(|s| s == "cold");
            let cold = wants_cold
                .then(|| mint(args.alb_cold_tokens, 1 + args.alb_users, "players-viewer"))
                .transpose()?
                .map(Credentials::alb);
            println!(
                "minted {} ALB tokens in {:.1}s",
                1 + args.alb_users + cold.as_ref().map_or(0, |_| args.alb_cold_tokens),
                started.elapsed().as_secs_f64()
            );
            (writer, warm, cold)
        }
    };

    if args.seed > 0 {
        seed(&client, &args, &writer).await?;
    }
    let ids = Arc::new(player_ids(&client, &args.base, &warm).await?);
    anyhow::ensure!(!ids.is_empty(), "no players to read: seed some with --seed");

    let mut peak = None;
    for scenario in args.scenarios.split(',') {
        let base = args.base.clone();
        let by_id = {
            let ids = ids.clone();
            move |i: usize| format!("{base}/v1/players/{}", ids[i % ids.len()])
        };
        let list_url = format!("{}/v1/players?limit=50", args.base);
        let list = move |_: usize| list_url.clone();
        let (name, measured) = match scenario {
            "by-id" | "warm" => {
                let m = closed_loop(&client, &args, &warm, by_id).await;
                peak = Some(m.rate());
                ("GET /v1/players/{id}", m)
            }
            "cold" => {
                let cold = cold
                    .as_ref()
                    .expect("cold tokens are minted when asked for");
                (
                    "GET /v1/players/{id} cold",
                    closed_loop(&client, &args, cold, by_id).await,
                )
            }
            "list" => (
                "GET /v1/players?limit=50",
                closed_loop(&client, &args, &warm, list).await,
            ),
            "paced" => {
                let rate = args
                    .rate
                    .or(peak.map(|p| p * args.rate_of_peak))
                    .ok_or_else(|| anyhow::anyhow!("paced needs --rate or an earlier by-id"))?;
                (
                    "GET /v1/players/{id} paced",
                    paced(&args, &warm, rate, by_id).await,
                )
            }
            other => anyhow::bail!("unknown scenario {other:?}"),
        };
        println!(
            "{:<10} {:<30} {:>9.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  ({} ok, {} errors)",
            args.label,
            name,
            measured.rate(),
            measured.percentile_ms(0.50),
            measured.percentile_ms(0.99),
            measured.ok.len(),
            measured.errors,
        );
        if let Some(probe) = measured.probe {
            println!("{probe}");
        }
    }
    Ok(())
}

fn user(i: usize, group: &str) -> UserClaims {
    UserClaims {
        sub: uuid::Uuid::from_u128(i as u128 + 1).to_string(),
        email: format!("user{i}@bench.example"),
        username: format!("user{i}"),
        name: format!("User {i}"),
        groups: Some(vec![group.to_owned()]),
    }
}

fn exp() -> i64 {
    chrono::Utc::now().timestamp() + 3600
}

/// The AWS ALB key endpoint's shape: `GET /{kid}` answers the PEM public key, 404 otherwise.
async fn serve_key_endpoint(port: u16, kid: String, pem: String) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let (kid, pem) = (kid.clone(), pem.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = socket.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]);
                let path = head.split_whitespace().nth(1).unwrap_or("");
                let (status, body) = if path.trim_start_matches('/') == kid {
                    ("200 OK", pem.as_str())
                } else {
                    ("404 Not Found", "")
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    Ok(())
}

async fn seed(client: &reqwest::Client, args: &Args, writer: &Credentials) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..args.concurrency {
        let (client, writer, base) = (client.clone(), writer.clone(), args.base.clone());
        let (count, workers) = (args.seed, args.concurrency);
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
                let req = client.post(format!("{base}/v1/players")).json(&body);
                let res = writer.apply(req).send().await?;
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
    let secs = started.elapsed().as_secs_f64();
    println!("seeded {} players in {secs:.1}s", args.seed);
    Ok(())
}

async fn player_ids(
    client: &reqwest::Client,
    base: &str,
    reader: &Credentials,
) -> anyhow::Result<Vec<String>> {
    let req = client.get(format!("{base}/v1/players?limit=200"));
    let page: Value = reader
        .apply(req)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(page["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default())
}

/// `--concurrency` workers, each sending its next request when the last one is answered.
async fn closed_loop(
    client: &reqwest::Client,
    args: &Args,
    credentials: &Credentials,
    url: impl Fn(usize) -> String + Clone + Send + 'static,
) -> Measured {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.duration);
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..args.concurrency {
        let (client, credentials, url) = (client.clone(), credentials.clone(), url.clone());
        tasks.spawn(async move {
            let (mut ok, mut errors, mut i) = (Vec::new(), 0u64, worker);
            while Instant::now() < deadline {
                i += 7;
                let t = Instant::now();
                match send(&client, &credentials, &url(i)).await {
                    true => ok.push(t.elapsed()),
                    false => errors += 1,
                }
            }
            (ok, errors)
        });
    }
    collect(tasks, started).await
}

/// Requests sent at a fixed rate whatever the answers' pace, as wrk2 sends them: `--concurrency`
/// keep-alive connections, each with its own evenly spaced schedule (together `rate` per
/// second), and each latency measured from when the request was due, not from when it went
/// out, so a server that falls behind cannot hide its queue by slowing the load down
/// (coordinated omission). The connections are plain HTTP/1.1 over TCP with the request
/// prepared up front, to keep the generator's own CPU out of the measurement.
async fn paced(
    args: &Args,
    credentials: &Credentials,
    rate: f64,
    url: impl Fn(usize) -> String + Clone + Send + 'static,
) -> Measured {
    let connections = args.concurrency.max(1);
    let started = Instant::now() + Duration::from_millis(20);
    let deadline = started + Duration::from_secs(args.duration);
    let interval = Duration::from_secs_f64(connections as f64 / rate);
    let address = url::Url::parse(&args.base)
        .ok()
        .and_then(|u| u.socket_addrs(|| None).ok())
        .and_then(|a| a.into_iter().next());
    let Some(address) = address else {
        return Measured {
            ok: vec![],
            errors: 1,
            seconds: 1.0,
            probe: None,
        };
    };
    let probe = wake_up_probe(started, deadline);
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..connections {
        let (credentials, url) = (credentials.clone(), url.clone());
        // Connection c's requests are due at started + (c / connections + k) * interval.
        let first = started + interval.mul_f64(c as f64 / connections as f64);
        tasks.spawn(async move {
            let (mut ok, mut errors) = (Vec::new(), 0u64);
            let Ok(mut stream) = tokio::net::TcpStream::connect(address).await else {
                return (ok, 1);
            };
            let _ = stream.set_nodelay(true);
            let mut buf = Vec::with_capacity(16 * 1024);
            let mut k = 0usize;
            loop {
                let due = first + interval.mul_f64(k as f64);
                if due >= deadline {
                    break;
                }
                let path = url(c + k * connections);
                let path = path.find("/v1/").map_or("/", |i| &path[i..]);
                let request = format!(
                    "GET {path} HTTP/1.1\r\nhost: {address}\r\n{}\r\n",
                    credentials.header_lines()
                );
                tokio::time::sleep_until(due.into()).await;
                match exchange(&mut stream, request.as_bytes(), &mut buf).await {
                    Ok(true) => ok.push((due - started, due.elapsed())),
                    Ok(false) => errors += 1,
                    Err(_) => {
                        errors += 1;
                        match tokio::net::TcpStream::connect(address).await {
                            Ok(s) => stream = s,
                            Err(_) => break,
                        }
                    }
                }
                k += 1;
            }
            (ok, errors)
        });
    }
    let (mut sent, errors) = join_all(tasks).await;
    let wake_up = probe.join().unwrap_or_default();
    if args.timeline {
        print_timeline(&mut sent, &wake_up);
    }
    let worst = wake_up.iter().max().copied().unwrap_or_default();
    let probe = format!(
        "  wake-up probe: worst delay {:.2} ms, {} of {} seconds with one over 2 ms",
        worst.as_secs_f64() * 1000.0,
        wake_up
            .iter()
            .filter(|d| **d > Duration::from_millis(2))
            .count(),
        wake_up.len(),
    );
    let mut ok: Vec<Duration> = sent.into_iter().map(|(_, latency)| latency).collect();
    ok.sort();
    Measured {
        ok,
        errors,
        seconds: args.duration as f64,
        probe: Some(probe),
    }
}

/// A thread of its own that sleeps 1 ms at a time until `deadline` and records how late each
/// wake-up was, by the second of the schedule. Nothing else runs on it, so a late wake-up while
/// the cores have idle time means the machine itself did not run this process (a virtual CPU
/// held back by its host, the kernel busy elsewhere), not that the server was slow.
fn wake_up_probe(started: Instant, deadline: Instant) -> std::thread::JoinHandle<Vec<Duration>> {
    std::thread::spawn(move || {
        let mut worst = Vec::new();
        while Instant::now() < deadline {
            let asleep = Instant::now();
            std::thread::sleep(Duration::from_millis(1));
            let late = asleep.elapsed().saturating_sub(Duration::from_millis(1));
            let Some(second) = asleep.checked_duration_since(started) else {
                continue;
            };
            let second = second.as_secs() as usize;
            if worst.len() <= second {
                worst.resize(second + 1, Duration::ZERO);
            }
            worst[second] = worst[second].max(late);
        }
        worst
    })
}

/// One line per second of the schedule: requests due in it, their p50, p99 and maximum latency,
/// and the worst wake-up delay of `wake_up_probe` in that second, so a tail can be told apart as
/// a few stalls or a slower machine throughout, and as the machine's or the server's.
fn print_timeline(sent: &mut [(Duration, Duration)], wake_up: &[Duration]) {
    sent.sort();
    for second in sent.chunk_by(|a, b| a.0.as_secs() == b.0.as_secs()) {
        let mut latencies: Vec<Duration> = second.iter().map(|(_, l)| *l).collect();
        latencies.sort();
        let at = |p: f64| percentile_ms(&latencies, p);
        let s = second[0].0.as_secs();
        let late = wake_up.get(s as usize).copied().unwrap_or_default();
        println!(
            "  second {s:>3}: {:>6} requests  p50 {:>6.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  \
             wake-up delay {:>6.2} ms",
            latencies.len(),
            at(0.5),
            at(0.99),
            at(1.0),
            late.as_secs_f64() * 1000.0,
        );
    }
}

/// Writes one request and reads its response (headers, then `content-length` bytes of
/// body); `Ok(true)` for a 2xx.
async fn exchange(
    stream: &mut tokio::net::TcpStream,
    request: &[u8],
    buf: &mut Vec<u8>,
) -> std::io::Result<bool> {
    stream.write_all(request).await?;
    buf.clear();
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let success = head.starts_with("http/1.1 2");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(success)
}

async fn send(client: &reqwest::Client, credentials: &Credentials, url: &str) -> bool {
    match credentials.apply(client.get(url)).send().await {
        Ok(res) if res.status().is_success() => res.bytes().await.is_ok(),
        _ => false,
    }
}

async fn collect(tasks: tokio::task::JoinSet<(Vec<Duration>, u64)>, started: Instant) -> Measured {
    let (mut ok, errors) = join_all(tasks).await;
    ok.sort();
    Measured {
        ok,
        errors,
        seconds: started.elapsed().as_secs_f64(),
        probe: None,
    }
}

/// The workers' measurements together, and their errors (a worker that panicked counts as one).
async fn join_all<T: 'static>(mut tasks: tokio::task::JoinSet<(Vec<T>, u64)>) -> (Vec<T>, u64) {
    let (mut all, mut errors) = (Vec::new(), 0);
    while let Some(result) = tasks.join_next().await {
        match result {
            Ok((measured, failed)) => {
                all.extend(measured);
                errors += failed;
            }
            Err(_) => errors += 1,
        }
    }
    (all, errors)
}
