//! End to end with the real binary: `players-api dev` (API + local ALB), a browser user logging
//! in over HTTP through the whole `authenticate-oidc` flow at the built-in provider, CRUD,
//! `created_by`, logout; then a service token from the local issuer doing the same through the
//! bearer path.

use crate::support::app::Exchange;
use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

struct Dev {
    child: Child,
    alb: String,
    _dir: tempfile::TempDir,
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_dev() -> Dev {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_players-api"))
        .args([
            "dev",
            "--listen-addr",
            "127.0.0.1:0",
            "--alb-port",
            "0",
            "--database-url",
        ])
        .arg(format!("sqlite:{}", dir.path().join("dev.db").display()))
        .env("LOG_LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("local ALB: open ") {
                let url = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .trim_end_matches('/')
                    .to_owned();
                let _ = tx.send(url);
            }
        }
    });
    let alb = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("dev printed the local ALB URL");
    Dev {
        child,
        alb,
        _dir: dir,
    }
}

async fn wait_ready(client: &reqwest::Client, url: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = client.get(url).send().await
            && r.status().is_success()
        {
            return;
        }
        assert!(Instant::now() < deadline, "{url} never became ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const PLAYER: &str = r#"{"name":"Ada Hegerberg","date_of_birth":"1995-07-10","country":"NOR","team":"Lyon","position":"forward"}"#;

#[tokio::test]
async fn browser_user_and_service_through_the_local_alb() {
    let dev = start_dev();
    let base = dev.alb.clone();
    let b = crate::support::oidc_flow::Browser::new();
    let browser = &b.http;
    wait_ready(browser, &format!("{base}/health")).await;

    // Not logged in: the stand-in sends the browser to the provider, never to the API.
    let resp = browser.get(format!("{base}/v1/me")).exchange().await;
    assert_eq!(resp.status(), 302);

    // Log in at the built-in provider as the default admin; the flow lands on /v1/me.
    let hops =
        crate::support::oidc_flow::login_built_in(&b, &format!("{base}/v1/me"), "user=admin").await;
    let me = hops.last().unwrap().json();
    assert_eq!(me["kind"], "user");
    assert!(
        me["permissions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "players:write"),
        "{me}"
    );
    assert_eq!(me["groups"], serde_json::json!(["players-admin"]), "{me}");
    let sub = me["subject"].as_str().unwrap().to_owned();

    // CRUD as the user (same-origin, like a browser page served by the ALB).
    let created = browser
        .post(format!("{base}/v1/players"))
        .header("origin", &base)
        .header("content-type", "application/json")
        .body(PLAYER)
        .exchange()
        .await;
    assert_eq!(created.status(), 201);
    let player: serde_json::Value = created.json().await.unwrap();
    assert_eq!(player["created_by"], format!("user:{sub}"));
    let id = player["id"].as_str().unwrap().to_owned();
    let got = browser
        .get(format!("{base}/v1/players/{id}"))
        .exchange()
        .await;
    assert_eq!(got.status(), 200);
    let etag = got.headers()["etag"].to_str().unwrap().to_owned();
    let patched = browser
        .patch(format!("{base}/v1/players/{id}"))
        .header("origin", &base)
        .header("if-match", etag)
        .header("content-type", "application/merge-patch+json")
        .body(r#"{"team":"Barcelona"}"#)
        .exchange()
        .await;
    assert_eq!(patched.status(), 200);
    // Cross-site unsafe request with the same session: refused.
    let csrf = browser
        .delete(format!("{base}/v1/players/{id}"))
        .header("origin", "https://evil.example.com")
        .exchange()
        .await;
    assert_eq!(csrf.status(), 403);
    let deleted = browser
        .delete(format!("{base}/v1/players/{id}"))
        .header("origin", &base)
        .exchange()
        .await;
    assert_eq!(deleted.status(), 204);

    // Log out: every shard expired, redirected to the IdP logout.
    let out = browser.get(format!("{base}/logout")).exchange().await;
    assert_eq!(out.status(), 302);
    assert_eq!(out.headers().get_all("set-cookie").iter().count(), 4);

    // A service: client-credentials token from the local issuer, then CRUD by bearer.
    let service = reqwest::Client::new();
    let token: serde_json::Value = service
        .post(format!("{base}/issuer/oauth2/token"))
        .basic_auth("local-service", Some("local-secret"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&scope=players%2Fread+players%2Fwrite+players%2Fdelete")
        .exchange()
        .await
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();
    let created = service
        .post(format!("{base}/v1/players"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(PLAYER)
        .exchange()
        .await;
    assert_eq!(created.status(), 201);
    let player: serde_json::Value = created.json().await.unwrap();
    assert_eq!(player["created_by"], "service:local-service");
    let id = player["id"].as_str().unwrap();
    let del = service
        .delete(format!("{base}/v1/players/{id}"))
        .bearer_auth(&token)
        .exchange()
        .await;
    assert_eq!(del.status(), 204);
    // A forged bearer token is refused with 401, never a 500.
    let forged = service
        .get(format!("{base}/v1/players"))
        .bearer_auth(format!("{}x", token))
        .exchange()
        .await;
    assert_eq!(forged.status(), 401);
}
