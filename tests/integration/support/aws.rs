//! AWS stand-ins: moto (`moto_server` from `$PLAYERS_TOOLS_VENV` or `.tools/venv`) for
//! Secrets Manager, the environment a child needs to reach it, and a stand-in that refuses
//! every call with an error moto cannot produce.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::config::{Credentials, Region};

use super::{DEADLINE, free_port};

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

    /// The SDK configuration of a client talking to this moto (region us-east-1, static
    /// test credentials).
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        sdk_config(&self.url).await
    }

    /// A Secrets Manager client on this moto.
    pub async fn client(&self) -> aws_sdk_secretsmanager::Client {
        aws_sdk_secretsmanager::Client::new(&self.sdk_config().await)
    }

    /// Creates a secret holding `value`; returns its ARN.
    pub async fn create_secret(&self, name: &str, value: &str) -> String {
        let out = self
            .client()
            .await
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

/// The SDK configuration of a client talking to `endpoint` (moto or a stand-in).
pub async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .endpoint_url(endpoint)
        .load()
        .await
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
