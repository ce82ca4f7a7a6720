//! The real binary as a child process (`players-api serve` or any subcommand) with its output
//! captured line by line, the local ALB stand-in as its identity provider, and the scan for
//! secrets in everything the children wrote.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use players_api::local_alb::{self, LocalAlb, LocalAlbConfig, UserClaims};
use serde_json::Value;

use super::{DEADLINE, free_port};

pub const BIN: &str = env!("CARGO_BIN_EXE_players-api");
/// The local issuer's default service client.
pub const CLIENT_ID: &str = "local-service";
pub const CLIENT_SECRET: &str = "local-secret";
pub const PLAYER: &str = r#"{"name":"Ada Hegerberg","date_of_birth":"1995-07-10","country":"NOR","team":"Lyon","position":"forward"}"#;

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
