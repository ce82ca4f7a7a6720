//! What the end-to-end tests of `players-api serve` share: the child process with its output
//! captured line by line, the local ALB stand-in as identity provider, moto, a fresh
//! PostgreSQL database, and the scan for secrets in everything the children wrote.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use players_api::local_alb::{self, LocalAlb, LocalAlbConfig, UserClaims};
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_players-api");
/// The local issuer's default service client.
pub const CLIENT_ID: &str = "local-service";
pub const CLIENT_SECRET: &str = "local-secret";
/// How long any start-up, exit or log line may take on a loaded machine.
pub const DEADLINE: Duration = Duration::from_secs(60);
pub const PLAYER: &str = r#"{"name":"Ada Hegerberg","date_of_birth":"1995-07-10","country":"NOR","team":"Lyon","position":"forward"}"#;

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An HTTP client that opens a new connection for every request, so that a probe after the
/// listener closed is not answered on an old keep-alive connection.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Captured output

/// Lines a child wrote on one stream, appended by a reader thread as they arrive.
#[derive(Clone, Default)]
pub struct Lines(Arc<Mutex<Vec<String>>>);

impl Lines {
    fn follow(&self, stream: impl Read + Send + 'static) -> JoinHandle<()> {
        let lines = self.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stream);
            let mut buf = Vec::new();
            while matches!(reader.read_until(b'\n', &mut buf), Ok(n) if n > 0) {
                let line = String::from_utf8_lossy(&buf)
                    .trim_end_matches(['\n', '\r'])
                    .to_owned();
                lines.0.lock().unwrap().push(line);
                buf.clear();
            }
        })
    }

    pub fn snapshot(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    pub fn text(&self) -> String {
        self.snapshot().join("\n")
    }
}

/// Every stdout line as JSON; panics on a line that is not one JSON object.
pub fn json_lines(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .map(|l| match serde_json::from_str::<Value>(l) {
            Ok(v) if v.is_object() => v,
            _ => panic!("stdout line is not a JSON object: {l:?}"),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The child process

/// `players-api serve` (or any subcommand), killed on drop; its stdout and stderr captured.
pub struct Service {
    child: Child,
    pub port: u16,
    pub base: String,
    pub stdout: Lines,
    pub stderr: Lines,
    readers: Vec<JoinHandle<()>>,
    exit: Option<ExitStatus>,
}

impl Service {
    /// Starts `players-api serve` with exactly `env` (nothing inherited) on a free port.
    pub fn serve(env: &BTreeMap<String, String>) -> Service {
        let port = free_port();
        let mut env = env.clone();
        env.insert("LISTEN_ADDR".into(), format!("127.0.0.1:{port}"));
        let mut child = Command::new(BIN)
            .arg("serve")
            .env_clear()
            .envs(&env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning players-api serve");
        let (stdout, stderr) = (Lines::default(), Lines::default());
        let readers = vec![
            stdout.follow(child.stdout.take().unwrap()),
            stderr.follow(child.stderr.take().unwrap()),
        ];
        Service {
            child,
            port,
            base: format!("http://127.0.0.1:{port}"),
            stdout,
            stderr,
            readers,
            exit: None,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The exit status if the process has ended.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().unwrap();
        }
        self.exit
    }

    /// Polls `path` until it answers `status`, failing with the child's output if it exits or
    /// the deadline passes.
    pub async fn wait_for(&mut self, path: &str, status: u16) {
        let client = http();
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Ok(r) = client.get(self.url(path)).send().await
                && r.status() == status
            {
                return;
            }
            if let Some(exit) = self.exited() {
                panic!(
                    "players-api exited ({exit}) before {path} answered {status}\nstderr:\n{}\nstdout:\n{}",
                    self.stderr.text(),
                    self.stdout.text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{path} never answered {status}\nstderr:\n{}",
                self.stderr.text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn wait_healthy(&mut self) {
        self.wait_for("/health", 200).await;
    }

    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits for the process to exit on its own, at most `limit`; then waits for the readers,
    /// so the captured output is complete.
    pub async fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(exit) = self.exited() {
                self.join_readers();
                return exit;
            }
            assert!(
                Instant::now() < deadline,
                "players-api did not exit within {limit:?}\nstderr:\n{}",
                self.stderr.text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Kills the process (if still running) and waits for all its output.
    pub fn stop(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
            self.exit = self.child.wait().ok();
        }
        self.join_readers();
    }

    fn join_readers(&mut self) {
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
    }

    /// Polls the captured stdout until `pred` holds for the parsed lines.
    pub async fn wait_for_stdout<T>(
        &self,
        what: &str,
        mut pred: impl FnMut(&[Value]) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(found) = pred(&json_lines(&self.stdout.snapshot())) {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "never logged: {what}\nstdout:\n{}",
                self.stdout.text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The stderr lines that are not blank.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr
            .snapshot()
            .into_iter()
            .filter(|l| !l.trim().is_empty())
            .collect()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if self.exit.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Stops every service, then checks what they wrote: every stdout line is a JSON object, and
/// neither stream contains a secret the test handled (DB password, bearer token, ALB header,
/// client secret) nor anything shaped like a JWT (`eyJ`: base64 of `{"`).
pub fn assert_no_secret_in_output(services: &mut [&mut Service], secrets: &[String]) {
    let mut forbidden: Vec<&str> = vec![CLIENT_SECRET, "eyJ"];
    forbidden.extend(secrets.iter().map(String::as_str));
    for svc in services.iter_mut() {
        svc.stop();
        json_lines(&svc.stdout.snapshot());
        for (name, lines) in [("stdout", &svc.stdout), ("stderr", &svc.stderr)] {
            for line in lines.snapshot() {
                for secret in &forbidden {
                    assert!(
                        !line.contains(secret),
                        "a secret ({}...) leaked into {name}: {line}",
                        secret.chars().take(6).collect::<String>()
                    );
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Identity: the local ALB stand-in, in process

pub struct Identity {
    pub alb: LocalAlb,
    /// Every credential handed out, for the leak scan.
    pub issued: Vec<String>,
}

impl Identity {
    pub async fn start() -> Identity {
        let alb = local_alb::start(LocalAlbConfig {
            port: 0,
            // The tests call the API directly; the proxy is not used.
            upstream: "http://127.0.0.1:9".into(),
            ..LocalAlbConfig::default()
        })
        .await
        .expect("starting the local ALB");
        Identity {
            alb,
            issued: Vec::new(),
        }
    }

    /// The child environment: identity settings trusting this stand-in, JSON logs, 1 s metrics.
    pub fn base_env(&self) -> BTreeMap<String, String> {
        let mut env: BTreeMap<String, String> = self
            .alb
            .api_env()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        env.insert("LOG_FORMAT".into(), "json".into());
        env.insert("METRICS_INTERVAL_SECS".into(), "1".into());
        // No AWS calls unless a test configures a secret; never the machine's own profile.
        env.insert("AWS_EC2_METADATA_DISABLED".into(), "true".into());
        env
    }

    /// A client-credentials token of `local-service` from the local issuer.
    pub async fn bearer_token(&mut self, scope: &str) -> String {
        let resp = http()
            .post(self.alb.token_url())
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "grant_type=client_credentials&scope={}",
                scope.replace('/', "%2F").replace(' ', "+")
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "token endpoint");
        let body: Value = resp.json().await.unwrap();
        let token = body["access_token"].as_str().unwrap().to_owned();
        self.issued.push(token.clone());
        token
    }

    /// An `x-amzn-oidc-data` value for `claims`, as the ALB would send it.
    pub fn alb_header(&mut self, claims: &UserClaims) -> String {
        let exp = chrono::Utc::now().timestamp() + 120;
        let header = self.alb.mint_user_claims(claims, exp).unwrap();
        self.issued.push(header.clone());
        header
    }
}

// ---------------------------------------------------------------------------------------------
// moto

fn tools_venv() -> PathBuf {
    std::env::var_os("PLAYERS_TOOLS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/venv"))
}

/// A moto server on a free loopback port, killed on drop.
pub struct Moto {
    child: Child,
    pub url: String,
}

impl Moto {
    pub fn start() -> Moto {
        let bin = tools_venv().join("bin/moto_server");
        assert!(
            bin.exists(),
            "{} not found: run ./scripts/test.sh, or `python3 -m venv .tools/venv && .tools/venv/bin/pip install 'moto[server]'`",
            bin.display()
        );
        let port = free_port();
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting moto_server");
        let mut moto = Moto {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + DEADLINE;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = moto.child.try_wait() {
                panic!("moto_server exited early: {status}");
            }
            assert!(Instant::now() < deadline, "moto_server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        moto
    }

    /// Creates a secret holding `value`; returns its ARN.
    pub async fn create_secret(&self, name: &str, value: &str) -> String {
        use aws_sdk_secretsmanager::config::{Credentials, Region};
        let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .endpoint_url(&self.url)
            .load()
            .await;
        let out = aws_sdk_secretsmanager::Client::new(&conf)
            .create_secret()
            .name(name)
            .secret_string(value)
            .send()
            .await
            .expect("create_secret on moto");
        out.arn().unwrap().to_owned()
    }

    /// What the child needs to reach this moto with the SDK's default chain.
    pub fn env(&self, env: &mut BTreeMap<String, String>) {
        aws_env(env, &self.url);
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn aws_env(env: &mut BTreeMap<String, String>, endpoint: &str) {
    for (k, v) in [
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
    ] {
        env.insert(k.into(), v.into());
    }
}

/// A stand-in for Secrets Manager that refuses every call with `code` (moto does not enforce
/// IAM, so it cannot answer AccessDenied). Serves until the process ends.
pub fn refusing_secrets_manager(code: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                use std::io::Write;
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut length = 0usize;
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                    let l = line.trim_end().to_ascii_lowercase();
                    if l.is_empty() {
                        break;
                    }
                    if let Some(v) = l.strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    line.clear();
                }
                let mut body = vec![0u8; length];
                let _ = reader.read_exact(&mut body);
                let answer = format!(
                    r#"{{"__type":"{code}","message":"User: arn:aws:sts::123456789012:assumed-role/players-task is not authorized to perform: secretsmanager:GetSecretValue"}}"#
                );
                let _ = write!(
                    stream,
                    "HTTP/1.1 400 Bad Request\r\ncontent-type: application/x-amz-json-1.1\r\nx-amzn-errortype: {code}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                    answer.len()
                );
            });
        }
    });
    url
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL: a fresh database on the machine's cluster (trust auth on 127.0.0.1:5432)

pub struct FreshDb {
    pub name: String,
}

const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

impl FreshDb {
    pub async fn create() -> FreshDb {
        use sqlx::Connection;
        let name = format!("rt_e2e_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(ADMIN_URL)
            .await
            .expect("PostgreSQL on 127.0.0.1:5432 (trust auth) is needed");
        sqlx::query(sqlx::AssertSqlSafe(format!(r#"create database "{name}""#)))
            .execute(&mut conn)
            .await
            .unwrap();
        FreshDb { name }
    }
}

impl Drop for FreshDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs inside the test's runtime: use a runtime of our own on another thread.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                use sqlx::Connection;
                if let Ok(mut conn) = sqlx::PgConnection::connect(ADMIN_URL).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        r#"drop database if exists "{name}" with (force)"#
                    )))
                    .execute(&mut conn)
                    .await;
                }
            });
        })
        .join();
    }
}
