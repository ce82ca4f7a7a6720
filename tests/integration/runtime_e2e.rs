//! End to end against the real binary, `players-api serve`, for the AWS runtime:
//! request and trace ids in the JSON log lines, EMF metrics on stdout, graceful shutdown on
//! SIGTERM, database credentials and settings from Secrets Manager (moto), and no secret in
//! anything a child process wrote.
//!
//! Identity comes from the local ALB stand-in started in this process (its `api_env()` is the
//! child's identity configuration); PostgreSQL is the machine's cluster on 127.0.0.1:5432 (a
//! fresh database per test, dropped afterwards); moto is `moto_server` from
//! `$PLAYERS_TOOLS_VENV` or `.tools/venv`. Every test ends by scanning all its children's stdout
//! and stderr for the secrets it handled (`assert_no_secret_in_output`).

use crate::support::app::Exchange;
use std::time::{Duration, Instant};

use crate::support::DEADLINE;
use crate::support::aws::{Moto, aws_env, refusing_secrets_manager};
use crate::support::db::TestDb;
use crate::support::emf_spec::emf_violations;
use crate::support::process::*;
use players_api::local_alb::UserClaims;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TRACE_HEADER: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1";
const TRACE_ID: &str = "1-5759e988-bd862e3fe1be46a994272793";

fn sqlite_env(
    identity: &Identity,
    dir: &tempfile::TempDir,
) -> std::collections::BTreeMap<String, String> {
    let mut env = identity.base_env();
    env.insert(
        "DATABASE_URL".into(),
        format!("sqlite:{}", dir.path().join("x.db").display()),
    );
    env
}

/// The log lines of one request id.
fn lines_of<'a>(lines: &'a [Value], request_id: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|l| l["request_id"] == request_id)
        .collect()
}

fn access_lines<'a>(lines: &'a [Value], request_id: &str) -> Vec<&'a Value> {
    lines_of(lines, request_id)
        .into_iter()
        .filter(|l| l["event"] == "access")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_and_trace_ids_tie_every_log_line_of_a_request() {
    let mut identity = Identity::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut env = sqlite_env(&identity, &dir);
    // Debug lines too: more lines emitted while serving, each of which must carry the ids.
    env.insert("LOG_LEVEL".into(), "debug".into());
    let mut svc = Service::serve(&env);
    svc.wait_healthy().await;
    let client = http();
    let token = identity.bearer_token("players/read players/write").await;

    // An error: the problem body and the header carry the id the service generated; the
    // client's own id is kept beside it.
    let resp = client
        .get(svc.url("/v1/players/not-a-uuid"))
        .bearer_auth(&token)
        .header("x-amzn-trace-id", TRACE_HEADER)
        .header("x-request-id", "rid-123")
        .exchange()
        .await;
    assert_eq!(resp.status(), 404);
    let rid_error = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&rid_error).is_ok(), "{rid_error}");
    assert_eq!(
        resp.headers()["content-type"],
        "application/problem+json",
        "problem body"
    );
    let problem: Value = resp.json().await.unwrap();
    assert_eq!(problem["request_id"], rid_error.as_str(), "{problem}");

    // A success, authenticated by an ALB user header: the principal is the subject.
    let sub = "b0000000-0000-4000-8000-00000000beef";
    let email = "ursula.user@players.example";
    let alb = identity.alb_header(&UserClaims {
        sub: sub.into(),
        email: email.into(),
        username: "ursula".into(),
        name: "Ursula User".into(),
        groups: None,
    });
    let resp = client
        .get(svc.url("/v1/me"))
        .header("x-amzn-oidc-data", &alb)
        .header("x-amzn-trace-id", "Root=1-5759e988-000000000000000000000abc;Parent=53995c3f42cd8ad8;Sampled=0;Lineage=a87bd80c:0")
        .header("x-request-id", "rid-user")
        .exchange().await;
    assert_eq!(resp.status(), 200);
    let rid_user = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_ne!(rid_user, "rid-user");

    // An unusable incoming id is replaced, a malformed trace header ignored.
    let resp = client
        .get(svc.url("/v1/players"))
        .bearer_auth(&token)
        .header("x-amzn-trace-id", "Root=not-a-trace-id")
        .header("x-request-id", "bad id <with> spaces")
        .exchange()
        .await;
    assert_eq!(resp.status(), 200);
    let fresh_id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&fresh_id).is_ok(), "{fresh_id}");

    let lines = svc
        .wait_for_stdout("the access lines of the three requests", |lines| {
            [&rid_error, &rid_user, &fresh_id]
                .iter()
                .all(|id| !access_lines(lines, id).is_empty())
                .then(|| lines.to_vec())
        })
        .await;

    // The error: every line carries the ids, route and method, and the service principal;
    // the client's id is beside the id of record.
    let of_error = lines_of(&lines, &rid_error);
    for line in &of_error {
        assert_eq!(line["trace_id"], TRACE_ID, "{line}");
        assert_eq!(line["route"], "/v1/players/{id}", "{line}");
        assert_eq!(line["method"], "GET", "{line}");
        assert_eq!(line["client_request_id"], "rid-123", "{line}");
        for field in ["timestamp", "level", "target"] {
            assert!(line[field].is_string(), "{field} missing: {line}");
        }
    }
    let access = access_lines(&lines, &rid_error);
    assert_eq!(access.len(), 1, "one access line per request: {access:?}");
    let access = access[0];
    assert_eq!(access["status"], 404, "{access}");
    assert!(
        access["latency_ms"].as_f64().is_some_and(|l| l >= 0.0),
        "{access}"
    );
    assert!(access["bytes"].as_u64().is_some_and(|b| b > 0), "{access}");
    assert_eq!(access["principal_kind"], "service", "{access}");
    assert_eq!(access["principal_id"], CLIENT_ID, "{access}");
    // Lines that mention the id or the trace belong to the request and say so.
    for line in &lines {
        let text = line.to_string();
        if text.contains("rid-123") || text.contains("bd862e3fe1be46a994272793") {
            assert_eq!(line["request_id"], rid_error.as_str(), "{line}");
            assert_eq!(line["trace_id"], TRACE_ID, "{line}");
        }
    }

    // rid-user: the user's subject, never the email.
    let of_user = lines_of(&lines, &rid_user);
    let access = access_lines(&lines, &rid_user);
    assert_eq!(access.len(), 1, "{access:?}");
    assert_eq!(access[0]["status"], 200);
    assert_eq!(access[0]["route"], "/v1/me");
    assert_eq!(access[0]["trace_id"], "1-5759e988-000000000000000000000abc");
    assert_eq!(access[0]["principal_kind"], "user", "{}", access[0]);
    assert_eq!(access[0]["principal_id"], sub, "{}", access[0]);
    for line in &of_user {
        assert_eq!(
            line["trace_id"], "1-5759e988-000000000000000000000abc",
            "{line}"
        );
        assert_eq!(line["route"], "/v1/me", "{line}");
    }
    for line in &lines {
        assert!(
            !line.to_string().contains(email),
            "an email in a log line: {line}"
        );
    }

    // The replaced id: one access line under the new id, no trace id.
    let access = access_lines(&lines, &fresh_id);
    assert_eq!(access.len(), 1, "{access:?}");
    assert_eq!(access[0]["route"], "/v1/players");
    assert!(
        access[0]["trace_id"].as_str().is_none_or(str::is_empty),
        "{}",
        access[0]
    );
    // The handler's own lines (its database query) carry the principal.
    let queries: Vec<_> = lines_of(&lines, &fresh_id)
        .into_iter()
        .filter(|l| l["target"] == "sqlx::query")
        .collect();
    assert!(!queries.is_empty(), "no database line for the listing");
    for q in queries {
        assert_eq!(q["principal_kind"], "service", "{q}");
        assert_eq!(q["principal_id"], CLIENT_ID, "{q}");
        assert_eq!(q["route"], "/v1/players", "{q}");
    }
    assert!(
        !lines.iter().any(|l| l.to_string().contains("bad id")),
        "the refused request id reached the logs"
    );

    let secrets = identity.issued.clone();
    assert_no_secret_in_output(&mut [&mut svc], &secrets);
}

// ---------------------------------------------------------------------------------------------
// EMF metrics

/// The EMF documents among the stdout lines, each checked against the specification's rules.
fn emf_documents(lines: &[Value]) -> Vec<Value> {
    let docs: Vec<Value> = lines
        .iter()
        .filter(|l| l.get("_aws").is_some())
        .cloned()
        .collect();
    for doc in &docs {
        let violations = emf_violations(doc);
        assert!(violations.is_empty(), "{violations:?} in {doc}");
        assert_eq!(doc["Service"], "players-api", "{doc}");
        for directive in doc["_aws"]["CloudWatchMetrics"].as_array().unwrap() {
            assert_eq!(directive["Namespace"], "PlayersApi", "{doc}");
        }
    }
    docs
}

/// The total `RequestCount` of `route` and `class` over `docs`.
fn request_count(docs: &[Value], route: &str, class: &str) -> u64 {
    docs.iter()
        .filter(|d| d["Route"] == route && d["StatusClass"] == class)
        .filter_map(|d| d["RequestCount"].as_u64())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emf_documents_are_valid_and_count_every_request_once() {
    let mut identity = Identity::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut env = sqlite_env(&identity, &dir);
    env.insert("SHUTDOWN_DELAY_SECS".into(), "0".into());
    let mut svc = Service::serve(&env);
    svc.wait_healthy().await;
    let client = http();
    let token = identity.bearer_token("players/read").await;
    for _ in 0..5 {
        let resp = client
            .get(svc.url("/v1/players"))
            .bearer_auth(&token)
            .exchange()
            .await;
        assert_eq!(resp.status(), 200);
    }
    let forged = "not.a-valid.token";
    for _ in 0..2 {
        let resp = client
            .get(svc.url("/v1/players"))
            .bearer_auth(forged)
            .exchange()
            .await;
        assert_eq!(resp.status(), 401);
    }

    // Aggregated per interval (1 s here): the totals add up to the requests made.
    let docs = svc
        .wait_for_stdout("RequestCount of /v1/players", |lines| {
            let docs = emf_documents(lines);
            (request_count(&docs, "/v1/players", "2xx") >= 5
                && request_count(&docs, "/v1/players", "4xx") >= 2)
                .then_some(docs)
        })
        .await;
    assert_eq!(request_count(&docs, "/v1/players", "2xx"), 5);
    assert_eq!(request_count(&docs, "/v1/players", "4xx"), 2);
    let route_docs: Vec<_> = docs
        .iter()
        .filter(|d| d["Route"] == "/v1/players")
        .collect();
    for doc in &route_docs {
        let latency = &doc["Latency"];
        assert!(latency["Count"].as_u64().is_some_and(|c| c > 0), "{doc}");
        assert!(
            latency["Values"].is_array() && latency["Counts"].is_array(),
            "{doc}"
        );
    }
    let failures: u64 = docs
        .iter()
        .filter(|d| d["Reason"].is_string())
        .filter_map(|d| d["AuthFailures"].as_u64())
        .sum();
    assert_eq!(failures, 2, "AuthFailures by reason: {docs:?}");
    // The service-wide counters go out every interval (zeros included, so alarms see data).
    assert!(
        docs.iter()
            .any(|d| d["SecretRefreshes"].is_u64() && d["JwksRefreshes"].is_u64()),
        "{docs:?}"
    );

    svc.sigterm();
    assert!(svc.wait_exit(Duration::from_secs(20)).await.success());
    let mut secrets = identity.issued.clone();
    secrets.push(forged.into());
    assert_no_secret_in_output(&mut [&mut svc], &secrets);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_metrics_interval_is_flushed_at_sigterm() {
    let mut identity = Identity::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut env = sqlite_env(&identity, &dir);
    // No periodic flush during the test: whatever is written comes from the shutdown.
    env.insert("METRICS_INTERVAL_SECS".into(), "3600".into());
    env.insert("SHUTDOWN_DELAY_SECS".into(), "0".into());
    env.insert("SHUTDOWN_TIMEOUT_SECS".into(), "5".into());
    let mut svc = Service::serve(&env);
    svc.wait_healthy().await;
    let client = http();
    let token = identity.bearer_token("players/read").await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let resp = client
            .get(svc.url("/v1/players"))
            .bearer_auth(&token)
            .exchange()
            .await;
        assert_eq!(resp.status(), 200);
        ids.push(resp.headers()["x-request-id"].to_str().unwrap().to_owned());
    }
    svc.wait_for_stdout("the access lines", |lines| {
        ids.iter()
            .all(|id| !access_lines(lines, id).is_empty())
            .then_some(())
    })
    .await;
    let before = emf_documents(&json_lines(&svc.stdout.snapshot()));
    assert_eq!(
        request_count(&before, "/v1/players", "2xx"),
        0,
        "{before:?}"
    );

    svc.sigterm();
    let exit = svc.wait_exit(Duration::from_secs(20)).await;
    assert!(exit.success(), "{exit}");
    let lines = json_lines(&svc.stdout.snapshot());
    let docs = emf_documents(&lines);
    assert_eq!(request_count(&docs, "/v1/players", "2xx"), 3, "{docs:?}");
    assert_eq!(request_count(&docs, "/health", "2xx") as usize, {
        // Every /health probe of wait_healthy that got an answer was logged.
        lines
            .iter()
            .filter(|l| l["event"] == "access" && l["route"] == "/health")
            .count()
    });
    let secrets = identity.issued.clone();
    assert_no_secret_in_output(&mut [&mut svc], &secrets);
}

// ---------------------------------------------------------------------------------------------
// Graceful shutdown

/// A POST /v1/players whose body is sent in `chunks` pieces, one every `every`, over a raw
/// connection: a request that stays in flight for as long as the test wants.
struct Trickle {
    stream: tokio::net::TcpStream,
    body: Vec<u8>,
}

impl Trickle {
    /// Sends the head with `Expect: 100-continue` and waits for the server's `100 Continue`:
    /// from then on a worker owns the request.
    async fn start(port: u16, token: &str, request_id: &str) -> Trickle {
        let body = PLAYER.replace("Ada Hegerberg", request_id).into_bytes();
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let head = format!(
            "POST /v1/players HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nauthorization: Bearer {token}\r\n\
             content-type: application/json\r\ncontent-length: {}\r\nexpect: 100-continue\r\n\
             x-request-id: {request_id}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut got = Vec::new();
        let continued = tokio::time::timeout(DEADLINE, async {
            let mut buf = [0u8; 256];
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = stream.read(&mut buf).await.unwrap();
                assert!(n > 0, "connection closed before 100 Continue");
                got.extend_from_slice(&buf[..n]);
            }
        })
        .await;
        assert!(continued.is_ok(), "no 100 Continue");
        let interim = String::from_utf8_lossy(&got);
        assert!(interim.starts_with("HTTP/1.1 100"), "{interim}");
        Trickle { stream, body }
    }

    /// Sends the body over `over`, then reads the whole response; returns its status.
    async fn finish(mut self, chunks: usize, over: Duration) -> u16 {
        let size = self.body.len().div_ceil(chunks);
        let every = over / chunks as u32;
        for chunk in self.body.chunks(size) {
            self.stream.write_all(chunk).await.unwrap();
            tokio::time::sleep(every).await;
        }
        let mut response = Vec::new();
        tokio::time::timeout(DEADLINE, self.stream.read_to_end(&mut response))
            .await
            .expect("the response came")
            .expect("reading the response");
        let text = String::from_utf8_lossy(&response);
        text.split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status in {text:?}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_turns_ready_off_then_drains_in_flight_requests_and_exits_zero() {
    const DELAY: Duration = Duration::from_secs(2);
    const TIMEOUT: Duration = Duration::from_secs(10);
    let mut identity = Identity::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut env = sqlite_env(&identity, &dir);
    env.insert("SHUTDOWN_DELAY_SECS".into(), DELAY.as_secs().to_string());
    env.insert(
        "SHUTDOWN_TIMEOUT_SECS".into(),
        TIMEOUT.as_secs().to_string(),
    );
    let mut svc = Service::serve(&env);
    svc.wait_for("/ready", 200).await;
    let token = identity.bearer_token("players/read players/write").await;
    let client = http();

    // In flight before the signal, and still sending its body well after the delay.
    let early = Trickle::start(svc.port, &token, "trickle-early").await;
    let early = tokio::spawn(early.finish(10, Duration::from_secs(5)));

    let signalled = Instant::now();
    svc.sigterm();

    // /ready goes 503 at once; new connections are still served during the delay.
    loop {
        let status = client.get(svc.url("/ready")).exchange().await.status();
        if status == 503 {
            break;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(1),
            "/ready still {status} after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let health = client.get(svc.url("/health")).exchange().await;
    assert_eq!(health.status(), 200, "/health during the delay");
    assert!(
        signalled.elapsed() < DELAY,
        "the checks above ran during the delay"
    );
    // A request accepted during the delay completes too.
    let late = Trickle::start(svc.port, &token, "trickle-late").await;
    let late = tokio::spawn(late.finish(5, Duration::from_secs(2)));

    // After the delay, no new connection is accepted while the requests still drain.
    let refused_after = loop {
        if std::net::TcpStream::connect(("127.0.0.1", svc.port)).is_err() {
            break signalled.elapsed();
        }
        assert!(
            signalled.elapsed() < DELAY + Duration::from_secs(2),
            "still accepting connections {:?} after SIGTERM",
            signalled.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        refused_after >= DELAY - Duration::from_millis(100),
        "stopped accepting after {refused_after:?}, before the delay of {DELAY:?}"
    );
    assert!(svc.exited().is_none(), "exited before draining");
    assert!(
        !early.is_finished(),
        "the early request should still be in flight"
    );

    assert_eq!(
        early.await.unwrap(),
        201,
        "the request in flight at SIGTERM"
    );
    assert_eq!(
        late.await.unwrap(),
        201,
        "the request accepted during the delay"
    );
    let exit = svc
        .wait_exit((DELAY + TIMEOUT + Duration::from_secs(5)).saturating_sub(signalled.elapsed()))
        .await;
    assert!(exit.success(), "exit status {exit}");
    assert!(
        signalled.elapsed() < DELAY + TIMEOUT,
        "{:?}",
        signalled.elapsed()
    );

    let lines = json_lines(&svc.stdout.snapshot());
    for id in ["trickle-early", "trickle-late"] {
        let access: Vec<_> = lines
            .iter()
            .filter(|l| l["event"] == "access" && l["client_request_id"] == id)
            .collect();
        assert_eq!(access.len(), 1, "{id}: {access:?}");
        assert_eq!(access[0]["status"], 201, "{}", access[0]);
    }
    let shutdown: Vec<&str> = lines
        .iter()
        .filter(|l| l["event"] == "shutdown")
        .filter_map(|l| l["message"].as_str())
        .collect();
    assert!(
        shutdown.iter().any(|m| m.starts_with("drained")),
        "{shutdown:?}"
    );
    assert!(
        !shutdown.iter().any(|m| m.contains("timed out")),
        "{shutdown:?}"
    );
    let secrets = identity.issued.clone();
    assert_no_secret_in_output(&mut [&mut svc], &secrets);
}

// ---------------------------------------------------------------------------------------------
// Secrets Manager (moto)

/// PostgreSQL settings without credentials: they come from DB_SECRET_ARN.
fn pg_env(identity: &Identity, db: &TestDb) -> std::collections::BTreeMap<String, String> {
    let mut env = identity.base_env();
    let at = db.pg_location();
    let port = at.port.to_string();
    for (k, v) in [
        ("DB_HOST", at.host.as_str()),
        ("DB_PORT", port.as_str()),
        ("DB_NAME", at.name.as_str()),
        ("DB_SSLMODE", "disable"),
        ("STARTUP_DEADLINE_SECS", "20"),
        ("SHUTDOWN_DELAY_SECS", "0"),
    ] {
        env.insert(k.into(), v.into());
    }
    env
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_takes_db_credentials_and_settings_from_secrets_manager() {
    let mut identity = Identity::start().await;
    let moto = Moto::start();
    let db = TestDb::postgres().await;
    let password = unique("Pw-e2e");
    let ignored_value = unique("Not-a-setting-value");
    let db_arn = moto
        .create_secret(
            "players/e2e/db",
            &serde_json::json!({"username": db.pg_location().user, "password": password})
                .to_string(),
        )
        .await;
    // Overlaid on the environment, which allows local-service: after the overlay it may not.
    let app_arn = moto
        .create_secret(
            "players/e2e/app",
            &serde_json::json!({
                "BEARER_CLIENT_IDS": "some-other-client",
                "NOT_A_SETTING": ignored_value,
            })
            .to_string(),
        )
        .await;
    let mut env = pg_env(&identity, &db);
    moto.env(&mut env);
    env.insert("DB_SECRET_ARN".into(), db_arn.clone());
    env.insert("APP_SECRET_ARN".into(), app_arn.clone());
    env.insert("LOG_LEVEL".into(), "debug".into());
    let mut svc = Service::serve(&env);
    svc.wait_for("/ready", 200).await;

    let client = http();
    let token = identity.bearer_token("players/read").await;
    let resp = client
        .get(svc.url("/v1/players"))
        .bearer_auth(&token)
        .exchange()
        .await;
    assert_eq!(resp.status(), 401, "BEARER_CLIENT_IDS from the secret");
    // The database works with the secret's credentials, for a caller still allowed.
    let alb = identity.alb_header(&UserClaims {
        sub: "b0000000-0000-4000-8000-00000000cafe".into(),
        email: "someone@players.example".into(),
        username: "someone".into(),
        name: "Some One".into(),
        groups: None,
    });
    let resp = client
        .get(svc.url("/v1/me"))
        .header("x-amzn-oidc-data", &alb)
        .exchange()
        .await;
    assert_eq!(resp.status(), 200);

    // An unknown key is ignored, and said so by name only.
    let warning = svc
        .wait_for_stdout("the warning about the unknown key", |lines| {
            lines
                .iter()
                .find(|l| l["level"] == "WARN" && l.to_string().contains("NOT_A_SETTING"))
                .cloned()
        })
        .await;
    assert!(warning.to_string().contains("players/e2e/app"), "{warning}");
    // The pool gauges of the PostgreSQL store reach the metrics.
    svc.wait_for_stdout("DbPoolIdle in an EMF document", |lines| {
        emf_documents(lines)
            .into_iter()
            .find(|d| d["DbPoolIdle"].is_u64() && d["DbPoolInUse"].is_u64())
    })
    .await;

    svc.sigterm();
    assert!(svc.wait_exit(Duration::from_secs(20)).await.success());
    let mut secrets = identity.issued.clone();
    secrets.extend([password, ignored_value]);
    assert_no_secret_in_output(&mut [&mut svc], &secrets);
}

/// Starts serve with `env` and expects it to fail at start-up: a non-zero exit within
/// the deadline and one stderr line, returned.
async fn start_up_failure(env: &std::collections::BTreeMap<String, String>) -> (Service, String) {
    let mut svc = Service::serve(env);
    let started = Instant::now();
    let exit = svc.wait_exit(Duration::from_secs(40)).await;
    assert!(!exit.success(), "started despite the bad secret");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    let lines = svc.stderr_lines();
    assert_eq!(lines.len(), 1, "one stderr line: {lines:?}");
    json_lines(&svc.stdout.snapshot());
    let line = lines[0].clone();
    (svc, line)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_secrets_stop_start_up_with_one_clear_line_and_no_value() {
    let identity = Identity::start().await;
    let moto = Moto::start();
    let db = TestDb::postgres().await;
    let leaky = unique("Leaky-value");
    let mut base = pg_env(&identity, &db);
    moto.env(&mut base);
    let good_db = moto
        .create_secret(
            "players/e2e/good-db",
            &serde_json::json!({"username": db.pg_location().user, "password": leaky}).to_string(),
        )
        .await;
    let mut services = Vec::new();

    // Missing: the id, the AWS code, the setting and what to check.
    let absent = "arn:aws:secretsmanager:us-east-1:123456789012:secret:players/absent-AbCdEf";
    let mut env = base.clone();
    env.insert("DB_SECRET_ARN".into(), absent.into());
    let (svc, line) = start_up_failure(&env).await;
    services.push(svc);
    for part in [
        absent,
        "ResourceNotFoundException",
        "DB_SECRET_ARN",
        "AWS_REGION",
    ] {
        assert!(line.contains(part), "{part} missing from: {line}");
    }

    // Access denied (moto does not enforce IAM: a stand-in answers as Secrets Manager would).
    let mut env = base.clone();
    let refusing = refusing_secrets_manager("AccessDeniedException");
    aws_env(&mut env, &refusing);
    env.insert("DB_SECRET_ARN".into(), "players/e2e/denied".into());
    let (svc, line) = start_up_failure(&env).await;
    services.push(svc);
    for part in ["players/e2e/denied", "AccessDeniedException", "task role"] {
        assert!(line.contains(part), "{part} missing from: {line}");
    }

    // Malformed database secrets: named, explained, never quoted.
    for (name, value) in [
        (
            "players/e2e/not-json",
            format!("username=postgres password={leaky}"),
        ),
        (
            "players/e2e/no-password",
            serde_json::json!({"username": "postgres", "pass": leaky}).to_string(),
        ),
    ] {
        let arn = moto.create_secret(name, &value).await;
        let mut env = base.clone();
        env.insert("DB_SECRET_ARN".into(), arn.clone());
        let (svc, line) = start_up_failure(&env).await;
        services.push(svc);
        assert!(line.contains(name), "{line}");
        assert!(line.contains("malformed"), "{line}");
        assert!(line.contains("DB_SECRET_ARN"), "{line}");
    }

    // Settings secret: a value of the wrong type, and a value the setting refuses.
    for (name, value, key) in [
        (
            "players/e2e/app-not-scalar",
            serde_json::json!({"BEARER_CLIENT_IDS": [leaky]}),
            "BEARER_CLIENT_IDS",
        ),
        (
            "players/e2e/app-bad-port",
            serde_json::json!({"DB_PORT": leaky}),
            "DB_PORT",
        ),
    ] {
        let arn = moto.create_secret(name, &value.to_string()).await;
        let mut env = base.clone();
        env.insert("DB_SECRET_ARN".into(), good_db.clone());
        env.insert("APP_SECRET_ARN".into(), arn);
        let (svc, line) = start_up_failure(&env).await;
        services.push(svc);
        assert!(line.contains("APP_SECRET_ARN"), "{line}");
        assert!(line.contains(key), "{key} missing from: {line}");
    }

    let mut refs: Vec<&mut Service> = services.iter_mut().collect();
    assert_no_secret_in_output(&mut refs, &[leaky]);
}

/// A stand-in OTLP/HTTP collector: keeps the body of every `POST /v1/traces`.
struct Collector {
    port: u16,
    bodies: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl Collector {
    async fn start() -> Collector {
        use actix_web::{App, HttpResponse, HttpServer, web};
        let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = bodies.clone();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = HttpServer::new(move || {
            let sink = sink.clone();
            App::new().route(
                "/v1/traces",
                web::post().to(move |body: web::Bytes| {
                    let sink = sink.clone();
                    async move {
                        sink.lock().unwrap().extend_from_slice(&body);
                        HttpResponse::Ok()
                            .content_type("application/x-protobuf")
                            .finish()
                    }
                }),
            )
        })
        .listen(listener)
        .unwrap()
        .disable_signals()
        .workers(1)
        .run();
        tokio::spawn(server);
        Collector { port, bodies }
    }

    fn received(&self) -> Vec<u8> {
        self.bodies.lock().unwrap().clone()
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// With OTEL_EXPORTER_OTLP_ENDPOINT set, spans of the request, the handler and the database
/// call are exported over OTLP/HTTP under the ALB's trace id (Root without Parent), and the
/// last batch is flushed at SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_are_exported_over_otlp_under_the_alb_trace_id() {
    let collector = Collector::start().await;
    let mut identity = Identity::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut env = sqlite_env(&identity, &dir);
    env.insert(
        "OTEL_EXPORTER_OTLP_ENDPOINT".into(),
        format!("http://127.0.0.1:{}", collector.port),
    );
    env.insert("SHUTDOWN_DELAY_SECS".into(), "0".into());
    let mut svc = Service::serve(&env);
    svc.wait_healthy().await;
    let token = identity.bearer_token("players/read players/write").await;
    let client = http();
    // The ALB sends Root without Parent.
    let alb_trace = "Root=1-5759e988-bd862e3fe1be46a994272793";
    let created: Value = client
        .post(svc.url("/v1/players"))
        .bearer_auth(&token)
        .header("x-amzn-trace-id", alb_trace)
        .header("content-type", "application/json")
        .body(PLAYER)
        .exchange()
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    let resp = client
        .get(svc.url(&format!("/v1/players/{id}")))
        .bearer_auth(&token)
        .header("x-amzn-trace-id", alb_trace)
        .exchange()
        .await;
    assert_eq!(resp.status(), 200);
    svc.sigterm();
    assert!(svc.wait_exit(DEADLINE).await.success());

    let exported = collector.received();
    assert!(!exported.is_empty(), "nothing was exported");
    let trace_id: Vec<u8> = (0..16)
        .map(|i| {
            u8::from_str_radix(&"5759e988bd862e3fe1be46a994272793"[2 * i..2 * i + 2], 16).unwrap()
        })
        .collect();
    assert!(
        contains(&exported, &trace_id),
        "spans carry the ALB's trace id"
    );
    for span in [
        "request",
        "handler.create_player",
        "db.create_player",
        "handler.get_player",
        "db.get_player",
    ] {
        assert!(contains(&exported, span.as_bytes()), "span {span} exported");
    }
    assert!(contains(&exported, b"players-api"), "service name");
    assert_no_secret_in_output(&mut [&mut svc], &identity.issued.clone());
}

/// Without the variable nothing is exported (the collector stays silent).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_otlp_endpoint_nothing_is_exported() {
    let collector = Collector::start().await;
    let mut identity = Identity::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut env = sqlite_env(&identity, &dir);
    env.insert("SHUTDOWN_DELAY_SECS".into(), "0".into());
    let mut svc = Service::serve(&env);
    svc.wait_healthy().await;
    let token = identity.bearer_token("players/read").await;
    let resp = http()
        .get(svc.url("/v1/players"))
        .bearer_auth(&token)
        .header("x-amzn-trace-id", TRACE_HEADER)
        .exchange()
        .await;
    assert_eq!(resp.status(), 200);
    svc.sigterm();
    assert!(svc.wait_exit(DEADLINE).await.success());
    assert!(collector.received().is_empty());
}
