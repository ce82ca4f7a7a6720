//! Secrets Manager through the real AWS SDK: against a local moto server (`moto_server` from
//! `$PLAYERS_TOOLS_VENV` or `.tools/venv`), against a stub answering AWS error shapes moto
//! cannot produce, and rotation against a throwaway PostgreSQL cluster that checks passwords
//! (scram-sha-256; started as the `postgres` OS user with `runuser` when run as root).

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::aws::{Moto, sdk_config};
use crate::support::{free_port, wait_until};
use players_api::secrets::{
    CredentialRefresher, RefreshTiming, RetryPolicy, SecretError, SecretsClient, SecretsSettings,
    load_startup_secrets_with,
};
use secrecy::ExposeSecret;
use sqlx::ConnectOptions;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

// ---------------------------------------------------------------------------------------------
// Log capture: no secret value may appear in any log line.

#[derive(Clone, Default)]
struct LogBuf(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogBuf {
    /// Captures every log line of this (current-thread) test.
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        let buf = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || buf.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn assert_free_of(&self, values: &[&str]) {
        let text = String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned();
        for v in values {
            assert!(
                !text.contains(v),
                "a secret value leaked into the logs:\n{text}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// moto

async fn create_secret(conf: &aws_config::SdkConfig, name: &str, value: &str) -> String {
    let sm = aws_sdk_secretsmanager::Client::new(conf);
    let out = sm
        .create_secret()
        .name(name)
        .secret_string(value)
        .send()
        .await
        .expect("create_secret on moto");
    out.arn().unwrap().to_owned()
}

fn settings(db: Option<&str>, app: Option<&str>, deadline_secs: u64) -> SecretsSettings {
    SecretsSettings {
        db_secret_arn: db.map(str::to_owned),
        app_secret_arn: app.map(str::to_owned),
        refresh_interval_secs: 3600,
        startup_deadline_secs: deadline_secs,
    }
}

#[tokio::test(flavor = "current_thread")]
async fn credentials_and_settings_load_from_moto() {
    let logs = LogBuf::default();
    let _g = logs.install();
    let moto = Moto::start();
    let conf = sdk_config(&moto.url).await;
    let db_arn = create_secret(
        &conf,
        "players/db",
        r#"{"username":"players_app","password":"Pw-from-moto-1"}"#,
    )
    .await;
    let app_arn = create_secret(
        &conf,
        "players/app",
        r#"{"ALB_CLIENT_ID":"client-abc","DB_PORT":6432,"NOT_OURS":"x"}"#,
    )
    .await;
    let client = SecretsClient::from_sdk_config(&conf);
    let loaded = load_startup_secrets_with(&client, &settings(Some(&db_arn), Some(&app_arn), 20))
        .await
        .expect("secrets load");
    let db = loaded.db.expect("db credentials");
    assert_eq!(db.username, "players_app");
    assert_eq!(db.password.expose_secret(), "Pw-from-moto-1");
    assert!(!format!("{db:?}").contains("Pw-from-moto-1"));
    assert_eq!(
        loaded.app.get("ALB_CLIENT_ID").unwrap().expose_secret(),
        "client-abc"
    );
    assert_eq!(loaded.app.get("DB_PORT").unwrap().expose_secret(), "6432");
    assert!(loaded.app.get("NOT_OURS").is_none());
    // By name as well as by ARN.
    let by_name = client
        .db_credentials(
            "players/db",
            "DB_SECRET_ARN",
            Instant::now() + Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert_eq!(by_name.username, "players_app");
    logs.assert_free_of(&["Pw-from-moto-1", "client-abc"]);
}

#[tokio::test(flavor = "current_thread")]
async fn missing_secret_names_the_id_and_the_aws_code() {
    let logs = LogBuf::default();
    let _g = logs.install();
    let moto = Moto::start();
    let conf = sdk_config(&moto.url).await;
    let id = "arn:aws:secretsmanager:us-east-1:123456789012:secret:players/absent-AbCdEf";
    let err = load_startup_secrets_with(
        &SecretsClient::from_sdk_config(&conf),
        &settings(Some(id), None, 20),
    )
    .await
    .unwrap_err();
    let line = err.to_string();
    assert!(
        matches!(err, SecretError::Aws { attempts: 1, .. }),
        "not retried: {line}"
    );
    assert_eq!(err.code(), "ResourceNotFoundException");
    assert!(line.contains(id), "{line}");
    assert!(line.contains("ResourceNotFoundException"), "{line}");
    assert!(
        line.contains("DB_SECRET_ARN") && line.contains("AWS_REGION"),
        "{line}"
    );
    assert!(!line.contains('\n'));
}

#[tokio::test(flavor = "current_thread")]
async fn malformed_secret_is_reported_without_its_content() {
    let logs = LogBuf::default();
    let _g = logs.install();
    let moto = Moto::start();
    let conf = sdk_config(&moto.url).await;
    let client = SecretsClient::from_sdk_config(&conf);
    for (name, value) in [
        ("players/not-json", "username=app password=Leaky-Value-7"),
        (
            "players/no-password",
            r#"{"username":"app","pass":"Leaky-Value-7"}"#,
        ),
        (
            "players/wrong-type",
            r#"{"username":"app","password":["Leaky-Value-7"]}"#,
        ),
    ] {
        let arn = create_secret(&conf, name, value).await;
        let err = load_startup_secrets_with(&client, &settings(Some(&arn), None, 20))
            .await
            .unwrap_err();
        let line = err.to_string();
        assert_eq!(err.code(), "Malformed", "{line}");
        assert!(line.contains(&arn) && line.contains("malformed"), "{line}");
        assert!(!line.contains("Leaky-Value-7"), "{line}");
    }
    logs.assert_free_of(&["Leaky-Value-7"]);
}

// ---------------------------------------------------------------------------------------------
// A stub Secrets Manager for answers moto does not give (IAM denials, throttling).

struct Stub {
    url: String,
    requests: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Answers the n-th request (0-based) with `respond(n)` = (status, JSON body).
async fn stub(respond: fn(u64) -> (u16, String)) -> Stub {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicU64::new(0));
    let counter = requests.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Read headers, then the body by Content-Length.
                let body_start = loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..body_start]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                while buf.len() < body_start + len {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let (status, body) = respond(n);
                let reason = if status == 200 { "OK" } else { "Bad Request" };
                let resp = format!(
                    "HTTP/1.1 {status} {reason}\r\ncontent-type: application/x-amz-json-1.1\r\nx-amzn-requestid: stub-{n}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    Stub {
        url,
        requests,
        task,
    }
}

fn aws_error(code: &str, message: &str) -> (u16, String) {
    (
        400,
        serde_json::json!({"__type": code, "message": message}).to_string(),
    )
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 5,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
    }
}

#[tokio::test(flavor = "current_thread")]
async fn access_denied_is_one_clear_line_and_not_retried() {
    let stub = stub(|_| {
        aws_error(
            "AccessDeniedException",
            "User: arn:aws:sts::123456789012:assumed-role/players-task/x is not authorized to perform: secretsmanager:GetSecretValue",
        )
    })
    .await;
    let conf = sdk_config(&stub.url).await;
    let id = "arn:aws:secretsmanager:us-east-1:123456789012:secret:players/db-AbCdEf";
    let err = load_startup_secrets_with(
        &SecretsClient::from_sdk_config(&conf).with_retry(fast_retry()),
        &settings(Some(id), None, 20),
    )
    .await
    .unwrap_err();
    let line = err.to_string();
    assert_eq!(err.code(), "AccessDeniedException", "{line}");
    assert!(line.contains(id), "{line}");
    assert!(
        line.contains("secretsmanager:GetSecretValue") && line.contains("task role"),
        "{line}"
    );
    assert!(!line.contains('\n'));
    assert_eq!(
        stub.requests.load(Ordering::SeqCst),
        1,
        "a denial is not retried"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn throttling_is_retried_with_backoff() {
    let stub = stub(|n| {
        if n < 2 {
            aws_error("ThrottlingException", "Rate exceeded")
        } else {
            (
                200,
                serde_json::json!({
                    "ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:players/db-AbCdEf",
                    "Name": "players/db",
                    "VersionId": "v1",
                    "SecretString": r#"{"username":"u","password":"Pw-after-throttle"}"#,
                })
                .to_string(),
            )
        }
    })
    .await;
    let conf = sdk_config(&stub.url).await;
    let creds = SecretsClient::from_sdk_config(&conf)
        .with_retry(fast_retry())
        .db_credentials(
            "players/db",
            "DB_SECRET_ARN",
            Instant::now() + Duration::from_secs(20),
        )
        .await
        .expect("third attempt succeeds");
    assert_eq!(creds.password.expose_secret(), "Pw-after-throttle");
    assert_eq!(stub.requests.load(Ordering::SeqCst), 3);
}

#[tokio::test(flavor = "current_thread")]
async fn retries_stop_at_the_attempt_bound_and_the_deadline() {
    let stub = stub(|_| aws_error("ThrottlingException", "Rate exceeded")).await;
    let conf = sdk_config(&stub.url).await;
    let client = SecretsClient::from_sdk_config(&conf).with_retry(fast_retry());
    let err = client
        .db_credentials(
            "players/db",
            "DB_SECRET_ARN",
            Instant::now() + Duration::from_secs(20),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, SecretError::Aws { attempts: 5, .. }), "{err}");
    assert!(err.to_string().contains("ThrottlingException"));

    let slow = SecretsClient::from_sdk_config(&conf).with_retry(RetryPolicy {
        max_attempts: 1000,
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
    });
    let started = std::time::Instant::now();
    let err = load_startup_secrets_with(&slow, &settings(Some("players/db"), None, 1))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let line = err.to_string();
    assert!(matches!(err, SecretError::Deadline { .. }), "{line}");
    assert!(
        line.contains("players/db") && line.contains("ThrottlingException"),
        "{line}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn unreachable_endpoint_names_the_network() {
    let port = free_port(); // nothing listens there any more
    let conf = sdk_config(&format!("http://127.0.0.1:{port}")).await;
    let err = SecretsClient::from_sdk_config(&conf)
        .with_retry(fast_retry())
        .db_credentials(
            "players/db",
            "DB_SECRET_ARN",
            Instant::now() + Duration::from_secs(20),
        )
        .await
        .unwrap_err();
    let line = err.to_string();
    assert_eq!(err.code(), "DispatchFailure", "{line}");
    assert!(line.contains("VPC endpoint"), "{line}");
}

// ---------------------------------------------------------------------------------------------
// Rotation against a PostgreSQL that checks passwords.

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A throwaway scram-sha-256 cluster; stopped and deleted on drop.
struct PgCluster {
    dir: tempfile::TempDir,
    port: u16,
}

fn as_postgres(program: &Path) -> Command {
    // PostgreSQL refuses to run as root; run its tools as the `postgres` OS user then.
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false);
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn run(mut cmd: Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

const SUPERUSER_PW: &str = "Super-Pw-0";

impl PgCluster {
    fn start() -> PgCluster {
        let bin = Path::new(std::env::var("PG_BIN").as_deref().unwrap_or(PG_BIN)).to_owned();
        assert!(
            bin.join("initdb").exists(),
            "PostgreSQL binaries not found in {}",
            bin.display()
        );
        let dir = tempfile::Builder::new()
            .prefix("players-pg-")
            .tempdir()
            .unwrap();
        std::fs::write(dir.path().join("pw"), SUPERUSER_PW).unwrap();
        let mut chown = Command::new("chown");
        chown.args(["-R", "postgres:postgres"]).arg(dir.path());
        // Only needed (and only possible) as root.
        let _ = chown.output();
        let port = free_port();
        let cluster = PgCluster { dir, port };
        let data = cluster.dir.path().join("data");
        let mut initdb = as_postgres(&bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args([
                "--auth=scram-sha-256",
                "--username=postgres",
                "-E",
                "UTF8",
                "--no-sync",
            ])
            .arg(format!(
                "--pwfile={}",
                cluster.dir.path().join("pw").display()
            ));
        run(initdb, "initdb");
        let mut start = as_postgres(&bin.join("pg_ctl"));
        start
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(cluster.dir.path().join("log"))
            .arg("-o")
            .arg(format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
                port,
                cluster.dir.path().display()
            ))
            .args(["-w", "-t", "60", "start"]);
        run(start, "pg_ctl start");
        cluster
    }

    fn options(&self, user: &str, password: &str) -> PgConnectOptions {
        self.base().username(user).password(password)
    }

    fn base(&self) -> PgConnectOptions {
        PgConnectOptions::new()
            .host("127.0.0.1")
            .port(self.port)
            .database("postgres")
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let bin = Path::new(std::env::var("PG_BIN").as_deref().unwrap_or(PG_BIN)).join("pg_ctl");
        let mut stop = as_postgres(&bin);
        stop.arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"]);
        let _ = stop.output();
        // TempDir removes the directory.
    }
}

async fn stage_pending(sm: &aws_sdk_secretsmanager::Client, arn: &str, value: &str) -> String {
    sm.put_secret_value()
        .secret_id(arn)
        .secret_string(value)
        .version_stages("AWSPENDING")
        .send()
        .await
        .unwrap()
        .version_id
        .unwrap()
}

/// Secrets Manager's `finishSecret` step: `AWSCURRENT` moves to `version`.
async fn finish_rotation(sm: &aws_sdk_secretsmanager::Client, arn: &str, version: &str) {
    let described = sm.describe_secret().secret_id(arn).send().await.unwrap();
    let current = described
        .version_ids_to_stages
        .unwrap_or_default()
        .into_iter()
        .find(|(_, stages)| stages.iter().any(|s| s == "AWSCURRENT"))
        .map(|(id, _)| id)
        .unwrap();
    sm.update_secret_version_stage()
        .secret_id(arn)
        .version_stage("AWSCURRENT")
        .move_to_version_id(version)
        .remove_from_version_id(current)
        .send()
        .await
        .unwrap();
    sm.update_secret_version_stage()
        .secret_id(arn)
        .version_stage("AWSPENDING")
        .remove_from_version_id(version)
        .send()
        .await
        .unwrap();
}

/// The load: `workers` tasks querying through the refresher's retry until stopped, counting
/// the successes per database user they ran as and keeping every failure.
struct Load {
    ok: Arc<AtomicU64>,
    users: Arc<Mutex<std::collections::HashMap<String, u64>>>,
    failed: Arc<Mutex<Vec<String>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(pool: &sqlx::PgPool, refresher: &CredentialRefresher, workers: usize) -> Load {
        let mut load = Load {
            ok: Arc::default(),
            users: Arc::default(),
            failed: Arc::default(),
            stop: Arc::default(),
            workers: Vec::new(),
        };
        for _ in 0..workers {
            let (pool, refresher) = (pool.clone(), refresher.clone());
            let (ok, users, failed, stop) = (
                load.ok.clone(),
                load.users.clone(),
                load.failed.clone(),
                load.stop.clone(),
            );
            load.workers.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let res = refresher
                        .with_auth_retry(|| {
                            let pool = pool.clone();
                            async move {
                                sqlx::query_scalar::<_, String>("select current_user::text")
                                    .fetch_one(&pool)
                                    .await
                            }
                        })
                        .await;
                    match res {
                        Ok(user) => {
                            ok.fetch_add(1, Ordering::Relaxed);
                            *users.lock().unwrap().entry(user).or_default() += 1;
                        }
                        Err(e) => failed.lock().unwrap().push(e.to_string()),
                    }
                }
            }));
        }
        load
    }

    fn ok(&self) -> u64 {
        self.ok.load(Ordering::Relaxed)
    }

    fn served_as(&self, user: &str) -> u64 {
        self.users.lock().unwrap().get(user).copied().unwrap_or(0)
    }

    async fn stop(self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        for w in self.workers {
            w.await.unwrap();
        }
        self.failed.lock().unwrap().clone()
    }
}

/// Rotation as Secrets Manager runs it, under load: every step is awaited as a condition, never
/// as a time, so the outcome does not depend on how busy the machine is.
#[tokio::test(flavor = "current_thread")]
async fn rotation_under_load_drops_no_request() {
    let logs = LogBuf::default();
    let _g = logs.install();
    let moto = Moto::start();
    let pg = PgCluster::start();
    let conf = sdk_config(&moto.url).await;
    let sm = aws_sdk_secretsmanager::Client::new(&conf);

    let admin = PgPoolOptions::new()
        .max_connections(1)
        // The test's own ALTER ROLE statements carry passwords: keep them out of the log.
        .connect_with(
            pg.options("postgres", SUPERUSER_PW)
                .disable_statement_logging(),
        )
        .await
        .expect("superuser connects with its password");
    let sql = |statement: &'static str| {
        let admin = admin.clone();
        async move { sqlx::query(statement).execute(&admin).await.unwrap() }
    };
    sql("create role players_app login password 'Rotating-Pw-1'").await;
    // The cluster really checks passwords.
    let wrong = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(pg.options("players_app", "wrong"))
        .await
        .unwrap_err();
    assert!(players_api::secrets::is_auth_failure(&wrong), "{wrong}");

    let arn = create_secret(
        &conf,
        "players/rds",
        r#"{"username":"players_app","password":"Rotating-Pw-1"}"#,
    )
    .await;
    let client = SecretsClient::from_sdk_config(&conf);
    let creds = client
        .db_credentials(
            &arn,
            "DB_SECRET_ARN",
            Instant::now() + Duration::from_secs(20),
        )
        .await
        .unwrap();
    // Short-lived connections, so new log-ins happen all the time during the test.
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .max_lifetime(Duration::from_millis(200))
        .connect_with(creds.apply_to(&pg.base()))
        .await
        .unwrap();
    let refresher = CredentialRefresher::with_timing(
        client.clone(),
        arn.clone(),
        pool.clone(),
        pg.base(),
        creds,
        RefreshTiming {
            fetch_deadline: Duration::from_secs(10),
            rotation_wait: Duration::from_secs(20),
            poll_interval: Duration::from_millis(50),
        },
    );
    let load = Load::start(&pool, &refresher, 4);
    let patience = Duration::from_secs(60);
    wait_until("steady traffic", patience, || load.ok() >= 50).await;

    // 1. Single user: between setSecret and finishSecret the database refuses AWSCURRENT's
    //    password, and the new one is only in AWSPENDING.
    let v2 = stage_pending(
        &sm,
        &arn,
        r#"{"username":"players_app","password":"Rotating-Pw-2"}"#,
    )
    .await;
    sql("alter role players_app password 'Rotating-Pw-2'").await;
    let before = load.ok();
    wait_until("the pool to take AWSPENDING", patience, || {
        refresher.generation() == 1 && load.ok() >= before + 100
    })
    .await;
    let still_current = client
        .db_credentials(&arn, "DB_SECRET_ARN", Instant::now() + patience)
        .await
        .unwrap();
    assert_eq!(
        still_current.password.expose_secret(),
        "Rotating-Pw-1",
        "AWSCURRENT had not moved: the window was real"
    );
    // Scheduled re-reads during the window do not go back to the refused password.
    let schedule = refresher.spawn_schedule(Duration::from_millis(100));
    let fetches = refresher.fetches();
    wait_until("three scheduled re-reads", patience, || {
        refresher.fetches() >= fetches + 3
    })
    .await;
    assert_eq!(refresher.generation(), 1, "went back to a refused password");
    finish_rotation(&sm, &arn, &v2).await;
    let (fetches, before) = (refresher.fetches(), load.ok());
    wait_until("re-reads after finishSecret", patience, || {
        refresher.fetches() >= fetches + 3 && load.ok() >= before + 100
    })
    .await;
    assert_eq!(refresher.generation(), 1, "AWSCURRENT is what the pool has");

    // 2. Alternating users: the clone user gets its password while the current one still
    //    works; the pool follows the username when AWSCURRENT moves.
    let v3 = stage_pending(
        &sm,
        &arn,
        r#"{"username":"players_app_clone","password":"Rotating-Pw-3"}"#,
    )
    .await;
    sql("create role players_app_clone login password 'Rotating-Pw-3' in role players_app").await;
    finish_rotation(&sm, &arn, &v3).await;
    wait_until("the pool to log in as the clone user", patience, || {
        refresher.generation() == 2 && load.served_as("players_app_clone") >= 50
    })
    .await;
    // The next rotation changes the other user's password, then moves back to it.
    let v4 = stage_pending(
        &sm,
        &arn,
        r#"{"username":"players_app","password":"Rotating-Pw-4"}"#,
    )
    .await;
    sql("alter role players_app password 'Rotating-Pw-4'").await;
    let served = load.served_as("players_app");
    finish_rotation(&sm, &arn, &v4).await;
    wait_until(
        "the pool to log in as the first user again",
        patience,
        || refresher.generation() == 3 && load.served_as("players_app") >= served + 50,
    )
    .await;
    schedule.abort();

    let failed = load.stop().await;
    assert!(
        failed.is_empty(),
        "{} failed requests: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    pool.close().await;
    admin.close().await;
    logs.assert_free_of(&[
        "Rotating-Pw-1",
        "Rotating-Pw-2",
        "Rotating-Pw-3",
        "Rotating-Pw-4",
        SUPERUSER_PW,
    ]);
}

// ---------------------------------------------------------------------------------------------
// The production path: settings and endpoint from the environment, default credential chain.
// Environment variables are process-wide, so the check runs in a child process (this test
// binary re-run on this one test).

#[derive(clap::Parser)]
struct EnvCli {
    #[command(flatten)]
    secrets: SecretsSettings,
}

const CHILD_FLAG: &str = "PLAYERS_SECRETS_TEST_CHILD";

#[tokio::test(flavor = "current_thread")]
async fn default_chain_reads_settings_and_endpoint_from_the_environment() {
    if std::env::var_os(CHILD_FLAG).is_some() {
        use clap::Parser;
        let cli = EnvCli::parse_from(["players-api"]);
        let (loaded, client) = players_api::secrets::load_startup_secrets(&cli.secrets)
            .await
            .expect("loads through the default chain");
        assert!(client.is_some());
        let db = loaded.db.expect("DB_SECRET_ARN was read");
        assert_eq!(db.username, "env_app");
        assert_eq!(db.password.expose_secret(), "Env-Pw-9");
        assert_eq!(cli.secrets.startup_deadline_secs, 15);
        assert_eq!(
            cli.secrets.refresh_interval(),
            Some(Duration::from_secs(120))
        );
        return;
    }
    let moto = Moto::start();
    let conf = sdk_config(&moto.url).await;
    let arn = create_secret(
        &conf,
        "players/env",
        r#"{"username":"env_app","password":"Env-Pw-9"}"#,
    )
    .await;
    for endpoint_var in ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SECRETS_MANAGER"] {
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                "secrets::default_chain_reads_settings_and_endpoint_from_the_environment",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_FLAG, "1")
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("AWS_ENDPOINT_URL_SECRETS_MANAGER")
            .env_remove("AWS_PROFILE")
            .env(endpoint_var, &moto.url)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("DB_SECRET_ARN", &arn)
            .env("STARTUP_DEADLINE_SECS", "15")
            .env("SECRET_REFRESH_INTERVAL_SECS", "120")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "child with {endpoint_var} failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
