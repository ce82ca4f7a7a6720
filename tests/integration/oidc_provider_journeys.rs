//! The local ALB against a certified OpenID Connect provider: the `oidc-provider` npm package
//! (tests/oidc-provider, installed by `scripts/oidc-provider-deps.sh`) on a free loopback port,
//! with a Cognito-shaped and an Okta-shaped claim profile, in front of the real
//! `players-api dev` binary configured the way `service.yaml` configures the service.
//!
//! The "browser" is an HTTP client with a cookie jar that fills in the provider's own login and
//! logout forms.

use crate::support::app::Exchange;
use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::support::oidc_flow::{Browser, Page};
use reqwest::StatusCode;
use serde_json::{Value, json};

const BROWSER_CLIENT: &str = "players-browser";
const BROWSER_SECRET: &str = "browser-secret";
const MACHINE_CLIENT: &str = "players-machine";
const MACHINE_SECRET: &str = "machine-secret";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Profile {
    Cognito,
    Okta,
}

impl Profile {
    fn name(self) -> &'static str {
        match self {
            Profile::Cognito => "cognito",
            Profile::Okta => "okta",
        }
    }
}

fn provider_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc-provider")
}

/// Reads lines of a child's pipe on a thread; `wait_for` returns the first line matching.
fn line_reader(pipe: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn wait_for(
    rx: &std::sync::mpsc::Receiver<String>,
    what: &str,
    pick: impl Fn(&str) -> Option<String>,
) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if let Some(v) = pick(&line) {
                    return v;
                }
            }
            Err(_) => panic!("{what} never appeared"),
        }
    }
}

/// The node provider, killed on drop.
struct Provider {
    child: Child,
    issuer: String,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Provider {
    fn start(profile: Profile) -> Provider {
        let dir = provider_dir();
        assert!(
            dir.join("node_modules/oidc-provider").exists(),
            "the test OIDC provider is not installed: run ./scripts/oidc-provider-deps.sh"
        );
        let mut child = Command::new("node")
            .current_dir(&dir)
            .args(["server.js", "--profile", profile.name(), "--port", "0"])
            .env("BROWSER_CLIENT_ID", BROWSER_CLIENT)
            .env("BROWSER_CLIENT_SECRET", BROWSER_SECRET)
            .env("MACHINE_CLIENT_ID", MACHINE_CLIENT)
            .env("MACHINE_CLIENT_SECRET", MACHINE_SECRET)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node runs (Node.js >= 20.19)");
        let rx = line_reader(child.stdout.take().unwrap());
        let issuer = wait_for(&rx, "the provider's issuer line", |line| {
            serde_json::from_str::<Value>(line)
                .ok()
                .and_then(|v| v["issuer"].as_str().map(str::to_owned))
        });
        Provider { child, issuer }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    async fn machine_token(&self, scope: &str, secret: &str) -> reqwest::Response {
        let discovery: Value =
            reqwest::get(format!("{}/.well-known/openid-configuration", self.issuer))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
        reqwest::Client::new()
            .post(discovery["token_endpoint"].as_str().unwrap())
            .basic_auth(MACHINE_CLIENT, Some(secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(crate::support::oidc_flow::form_body(&[
                ("grant_type", "client_credentials"),
                ("scope", scope),
            ]))
            .exchange()
            .await
    }
}

/// `players-api dev` in front of the provider, killed on drop.
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

/// The service's identity variables for `profile`, as an operator sets them for that IdP
/// (service.yaml for Cognito; the generic-OIDC settings of the README for Okta).
fn profile_env(profile: Profile) -> Vec<(&'static str, &'static str)> {
    match profile {
        // ALB_GROUPS_SOURCE left at its default: groups from the access token.
        Profile::Cognito => vec![("BEARER_CLIENT_IDS", MACHINE_CLIENT)],
        Profile::Okta => vec![
            ("ALB_GROUPS_SOURCE", "userinfo"),
            ("AUTH_GROUPS_CLAIM", "groups"),
            ("BEARER_AUDIENCES", "api://players"),
        ],
    }
}

fn start_dev(provider: &Provider, profile: Profile, secret: &str, extra: &[&str]) -> Dev {
    let dir = tempfile::tempdir().unwrap();
    let scope = match profile {
        Profile::Cognito => "openid email",
        Profile::Okta => "openid email profile groups",
    };
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_players-api"));
    cmd.args([
        "dev",
        "--listen-addr",
        "127.0.0.1:0",
        "--alb-port",
        "0",
        "--oidc-issuer",
        &provider.issuer,
        "--oidc-client-id",
        BROWSER_CLIENT,
        "--oidc-scope",
        scope,
        "--database-url",
    ])
    .arg(format!("sqlite:{}", dir.path().join("dev.db").display()))
    .args(extra)
    .env("DEV_OIDC_CLIENT_SECRET", secret)
    .env("LOG_LEVEL", "warn")
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    for name in [
        "ALB_GROUPS_SOURCE",
        "AUTH_GROUPS_CLAIM",
        "BEARER_CLIENT_IDS",
        "BEARER_AUDIENCES",
        "AUTH_GROUP_PERMISSIONS",
    ] {
        cmd.env_remove(name);
    }
    for (k, v) in profile_env(profile) {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let rx = line_reader(child.stderr.take().unwrap());
    let alb = wait_for(&rx, "dev's local ALB URL", |line| {
        line.strip_prefix("local ALB: open ").map(|rest| {
            rest.split_whitespace()
                .next()
                .unwrap_or("")
                .trim_end_matches('/')
                .to_owned()
        })
    });
    Dev {
        child,
        alb,
        _dir: dir,
    }
}

async fn wait_ready(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let client = reqwest::Client::new();
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

/// Visits `start` and logs in as `user` on the provider's own login page; returns every hop.
async fn login(browser: &Browser, start: &str, user: &str) -> Vec<Page> {
    let mut hops = browser.visit(start).await;
    let page = hops.pop().unwrap();
    assert_eq!(page.status, StatusCode::OK, "{}: {}", page.url, page.body);
    assert!(
        page.body.contains("name=\"login\""),
        "the provider's login page: {}",
        page.body
    );
    hops.push(page.clone());
    hops.extend(
        browser
            .submit(&page, &[("login", user), ("password", "any")])
            .await,
    );
    hops
}

fn permissions(me: &Value) -> Vec<String> {
    me["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_owned())
        .collect()
}

const PLAYER: &str = r#"{"name":"Ada Hegerberg","date_of_birth":"1995-07-10","country":"NOR","team":"Lyon","position":"forward"}"#;

async fn journeys(profile: Profile) {
    let provider = Provider::start(profile);
    let dev = start_dev(&provider, profile, BROWSER_SECRET, &[]);
    let base = dev.alb.clone();
    wait_ready(&format!("{base}/health")).await;

    // An editor: redirected to the provider, logs in there, lands on /v1/me.
    let editor = Browser::new();
    let hops = login(&editor, &format!("{base}/v1/me"), "editor").await;
    let first = hops[0].location.clone().unwrap();
    assert!(first.as_str().starts_with(&provider.issuer), "{first}");
    let q: std::collections::BTreeMap<String, String> = first.query_pairs().into_owned().collect();
    assert_eq!(q["client_id"], BROWSER_CLIENT);
    assert_eq!(q["redirect_uri"], format!("{base}/oauth2/idpresponse"));
    let last = hops.last().unwrap();
    assert_eq!(last.url.as_str(), format!("{base}/v1/me"));
    assert_eq!(last.status, StatusCode::OK, "{}", last.body);
    let me = last.json();
    assert_eq!(me["kind"], "user");
    assert_eq!(me["groups"], json!(["players-editor"]), "{me}");
    assert_eq!(
        permissions(&me),
        ["players:read", "players:write", "players:delete"],
        "{me}"
    );
    // Session shards: at most 4 KB each.
    let callback = hops
        .iter()
        .find(|p| p.url.path() == "/oauth2/idpresponse")
        .unwrap();
    assert!(
        callback
            .set_cookies
            .iter()
            .filter(|c| c.starts_with("AWSELBAuthSessionCookie-"))
            .all(|c| c.len() <= 4096)
    );

    // Create and read a player.
    let created = editor
        .http
        .post(format!("{base}/v1/players"))
        .header("origin", &base)
        .header("content-type", "application/json")
        .body(PLAYER)
        .exchange()
        .await;
    assert_eq!(created.status(), 201);
    let player: Value = created.json().await.unwrap();
    assert_eq!(
        player["created_by"],
        format!("user:{}", me["subject"].as_str().unwrap())
    );
    let id = player["id"].as_str().unwrap().to_owned();
    let got = editor.get(&format!("{base}/v1/players/{id}")).await;
    assert_eq!(got.status, StatusCode::OK);

    // A viewer reads, and is refused a write.
    let viewer = Browser::new();
    let hops = login(&viewer, &format!("{base}/v1/me"), "viewer").await;
    let me = hops.last().unwrap().json();
    assert_eq!(permissions(&me), ["players:read"], "{me}");
    assert_eq!(
        viewer.get(&format!("{base}/v1/players/{id}")).await.status,
        StatusCode::OK
    );
    let refused = viewer
        .http
        .post(format!("{base}/v1/players"))
        .header("origin", &base)
        .header("content-type", "application/json")
        .body(PLAYER)
        .exchange()
        .await;
    assert_eq!(refused.status(), 403);

    // A user in no group: authenticated, no permission.
    let nobody = Browser::new();
    let hops = login(&nobody, &format!("{base}/v1/players"), "nogroups").await;
    assert_eq!(hops.last().unwrap().status, StatusCode::FORBIDDEN);

    // Logout: every shard expired, then the provider's end-session endpoint, back to the
    // public signed-out page; the next visit asks for the login again.
    let out = editor.get(&format!("{base}/logout")).await;
    assert_eq!(out.status, StatusCode::FOUND);
    for i in 0..4 {
        let c = out
            .set_cookie(&format!("AWSELBAuthSessionCookie-{i}"))
            .unwrap_or_else(|| panic!("shard {i} expired: {:?}", out.set_cookies));
        assert!(c.contains("Max-Age=0") || c.contains("1970"), "{c}");
    }
    let end_session = out.location.clone().unwrap();
    assert!(
        end_session.as_str().starts_with(&provider.issuer),
        "{end_session}"
    );
    let mut hops = editor.follow(out).await;
    let confirm = hops.pop().unwrap();
    assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.body);
    let after = editor.submit(&confirm, &[("logout", "yes")]).await;
    let landed = after.last().unwrap();
    assert_eq!(
        landed.url.as_str(),
        format!("{base}/logged-out"),
        "{:?}",
        after.iter().map(|p| p.url.as_str()).collect::<Vec<_>>()
    );
    assert_eq!(landed.status, StatusCode::OK);
    assert!(
        editor
            .cookie_header(&base)
            .split("; ")
            .all(|c| !c.starts_with("AWSELBAuthSessionCookie-"))
    );
    let again = editor.visit(&format!("{base}/v1/me")).await;
    let page = again.last().unwrap();
    assert!(
        page.body.contains("name=\"login\""),
        "asked to log in again: {}",
        page.url
    );

    // A machine client: a client-credentials token from the same provider, straight to the API
    // through the stand-in's bearer path.
    let resp = provider
        .machine_token("players/read players/write", MACHINE_SECRET)
        .await;
    assert_eq!(resp.status(), 200);
    let token: Value = resp.json().await.unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();
    let service = reqwest::Client::new();
    let list = service
        .get(format!("{base}/v1/players"))
        .bearer_auth(&token)
        .exchange()
        .await;
    assert_eq!(list.status(), 200);
    let list: Value = list.json().await.unwrap();
    assert!(
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == id.as_str())
    );
    let created = service
        .post(format!("{base}/v1/players"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(PLAYER.replace("Ada Hegerberg", "Ada Stolsmo"))
        .exchange()
        .await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["created_by"], format!("service:{MACHINE_CLIENT}"));
}

#[tokio::test]
async fn cognito_shaped_provider_journeys() {
    journeys(Profile::Cognito).await;
}

#[tokio::test]
async fn okta_shaped_provider_journeys() {
    journeys(Profile::Okta).await;
}

/// Up to the provider's redirect back to the stand-in (not followed).
async fn up_to_callback(browser: &Browser, base: &str, user: &str) -> url::Url {
    let mut hops = browser.visit(&format!("{base}/v1/me")).await;
    let page = hops.pop().unwrap();
    let form = crate::support::oidc_flow::Form::parse(&page.body).unwrap();
    let mut values = form.inputs.clone();
    values.retain(|(k, _)| k != "login" && k != "password");
    values.push(("login".into(), user.into()));
    values.push(("password".into(), "any".into()));
    let action = page.url.join(&form.action).unwrap();
    let mut next = browser
        .post_form(
            action.as_str(),
            &values,
            &page.url.origin().ascii_serialization(),
        )
        .await;
    for _ in 0..10 {
        let location = next.location.clone().expect("a redirect");
        if location.path() == "/oauth2/idpresponse" {
            return location;
        }
        next = browser.get(location.as_str()).await;
    }
    panic!("the provider never sent the browser back");
}

#[tokio::test]
async fn provider_down_is_a_clear_error_page_not_a_hang() {
    let mut provider = Provider::start(Profile::Cognito);
    let dev = start_dev(&provider, Profile::Cognito, BROWSER_SECRET, &[]);
    wait_ready(&format!("{}/health", dev.alb)).await;
    let browser = Browser::new();
    let callback = up_to_callback(&browser, &dev.alb, "admin").await;
    provider.stop();
    let started = Instant::now();
    let page = browser.get(callback.as_str()).await;
    assert_eq!(page.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(page.body.contains("not reachable"), "{}", page.body);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(page.set_cookie("AWSELBAuthSessionCookie-0").is_none());

    // The next login attempt is sent to the provider, which the browser then cannot reach.
    let again = browser.get(&format!("{}/v1/me", dev.alb)).await;
    assert_eq!(again.status, StatusCode::FOUND);
    let started = Instant::now();
    let err = browser
        .http
        .get(again.location.unwrap())
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_wrong_client_secret_is_refused_at_the_code_exchange() {
    let provider = Provider::start(Profile::Cognito);
    let dev = start_dev(&provider, Profile::Cognito, "not-the-secret", &[]);
    wait_ready(&format!("{}/health", dev.alb)).await;
    let browser = Browser::new();
    let hops = login(&browser, &format!("{}/v1/me", dev.alb), "admin").await;
    let last = hops.last().unwrap();
    assert_eq!(last.url.path(), "/oauth2/idpresponse");
    assert_eq!(last.status, StatusCode::UNAUTHORIZED);
    assert!(last.body.contains("invalid_client"), "{}", last.body);
    assert!(last.set_cookie("AWSELBAuthSessionCookie-0").is_none());
    assert!(!last.body.contains("not-the-secret"));
}

#[tokio::test]
async fn a_state_mismatch_is_refused() {
    let provider = Provider::start(Profile::Cognito);
    let dev = start_dev(&provider, Profile::Cognito, BROWSER_SECRET, &[]);
    wait_ready(&format!("{}/health", dev.alb)).await;
    let browser = Browser::new();
    let callback = up_to_callback(&browser, &dev.alb, "admin").await;
    let mut tampered = callback.clone();
    let pairs: Vec<(String, String)> = callback.query_pairs().into_owned().collect();
    tampered.query_pairs_mut().clear();
    for (k, v) in &pairs {
        tampered
            .query_pairs_mut()
            .append_pair(k, if k == "state" { "forged-state" } else { v });
    }
    let page = browser.get(tampered.as_str()).await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert!(page.set_cookie("AWSELBAuthSessionCookie-0").is_none());
    // The untampered callback in another browser (no nonce cookie): refused as well.
    let page = Browser::new().get(callback.as_str()).await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_expired_session_authenticates_again() {
    let provider = Provider::start(Profile::Cognito);
    let dev = start_dev(
        &provider,
        Profile::Cognito,
        BROWSER_SECRET,
        &["--session-timeout-secs", "1"],
    );
    wait_ready(&format!("{}/health", dev.alb)).await;
    let browser = Browser::new();
    let hops = login(&browser, &format!("{}/v1/me", dev.alb), "viewer").await;
    assert_eq!(hops.last().unwrap().status, StatusCode::OK);
    // Poll until the session has expired: the stand-in sends the browser to the provider again.
    let deadline = Instant::now() + Duration::from_secs(15);
    let redirect = loop {
        let page = browser.get(&format!("{}/v1/me", dev.alb)).await;
        if page.status == StatusCode::FOUND {
            break page;
        }
        assert_eq!(page.status, StatusCode::OK);
        assert!(Instant::now() < deadline, "the session never expired");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        redirect
            .location
            .as_ref()
            .unwrap()
            .as_str()
            .starts_with(&provider.issuer)
    );
    // The provider still knows the browser: the re-authentication needs no form and ends with
    // a fresh session on the page asked for.
    let hops = browser.follow(redirect).await;
    let last = hops.last().unwrap();
    assert_eq!(last.url.path(), "/v1/me");
    assert_eq!(last.status, StatusCode::OK, "{}", last.body);
    assert_eq!(permissions(&last.json()), ["players:read"]);
}
