//! The real `serve` binary configured exactly as `cloudformation/service.yaml` configures it for
//! a Cognito deployment (`tests/fixtures/service-env-cognito.json`, kept in step with the
//! template by `tests/infra/test_rendered_env.py`), with tokens shaped as Cognito issues them:
//! a browser app client and a machine client on one user pool, userinfo without groups, the
//! groups only in the browser client's access token. Only the values a deployment imports are
//! replaced by local stand-ins, plus the database location (SQLite instead of RDS: identity
//! does not depend on it) and the listen address.

#[allow(dead_code)]
use crate::support::app::Exchange;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::support::DEADLINE;
use crate::support::identity::{ARN, AlbKeyPair, Issuer, Reply, TestServer, now};
use crate::support::process::{Service, http};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BROWSER_CLIENT: &str = "cognito-browser-client";
const MACHINE_CLIENT: &str = "cognito-machine-client";
const PUBLIC_HOST: &str = "players.example.com";

/// The identity provider and the ALB's key endpoint, served locally.
struct Cognito {
    server: TestServer,
    alb_key: AlbKeyPair,
    issuer: Issuer,
}

impl Cognito {
    async fn start() -> Cognito {
        let server = TestServer::start().await;
        let alb_key = AlbKeyPair::generate();
        server.set(
            &format!("/alb/{}", alb_key.kid),
            Reply::Ok(alb_key.public_pem().into_bytes()),
        );
        let issuer = Issuer::new(&format!("{}/pool", server.base));
        server.set("/pool/.well-known/jwks.json", Reply::Ok(issuer.jwks()));
        Cognito {
            server,
            alb_key,
            issuer,
        }
    }

    /// The template's rendering with the deployment's imports replaced by these stand-ins.
    fn service_env(&self, dir: &tempfile::TempDir) -> BTreeMap<String, String> {
        let fixture = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/service-env-cognito.json"
        ))
        .unwrap();
        let rendered: BTreeMap<String, String> = serde_json::from_str(&fixture).unwrap();
        let stand_ins = [
            ("{{ref:LoadBalancer}}", ARN.to_owned()),
            ("{{ref:IssuerUrl}}", self.issuer.issuer.clone()),
            ("{{ref:BrowserClientId}}", BROWSER_CLIENT.to_owned()),
            // The runbook passes the identity stack's machine client (docs/deploy.md).
            ("{{ref:BearerClientIds}}", MACHINE_CLIENT.to_owned()),
            ("{{ref:LogoutUrl}}", format!("{}/logout", self.server.base)),
            ("{{ref:DbPoolSize}}", "4".to_owned()),
            ("{{ref:PublicHostName}}", PUBLIC_HOST.to_owned()),
            ("{{ref:LogLevel}}", "info".to_owned()),
            ("{{ref:AWS::Region}}", "eu-west-1".to_owned()),
        ];
        // Where the database is, where to listen and export: not identity, and not reachable
        // here. Everything else is exactly what the template sets.
        let replaced = [
            "DB_HOST",
            "DB_PORT",
            "DB_NAME",
            "DB_SSLMODE",
            "DB_SSLROOTCERT",
            "DB_SECRET_ARN",
            "RUN_MIGRATIONS",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        ];
        let mut env = BTreeMap::new();
        for (name, value) in rendered {
            if replaced.contains(&name.as_str()) {
                continue;
            }
            let mut value = value;
            for (placeholder, stand_in) in &stand_ins {
                value = value.replace(placeholder, stand_in);
            }
            assert!(
                !value.contains("{{"),
                "{name}={value}: a new import or parameter in service.yaml needs a stand-in here"
            );
            env.insert(name, value);
        }
        let db = dir.path().join("players.db");
        env.insert(
            "DATABASE_URL".into(),
            format!("sqlite://{}?mode=rwc", db.display()),
        );
        env.insert("RUN_MIGRATIONS".into(), "true".into());
        // The ALB's regional key endpoint, here a local one (the template leaves it derived
        // from the load balancer's ARN).
        env.insert(
            "ALB_KEY_ENDPOINT".into(),
            format!("{}/alb", self.server.base),
        );
        env.insert("AWS_EC2_METADATA_DISABLED".into(), "true".into());
        env
    }

    /// `x-amzn-oidc-data` as the ALB signs Cognito's userinfo: no groups.
    fn userinfo(&self, key: &AlbKeyPair, sub: &str) -> String {
        let exp = now() + 600;
        let header = json!({
            "typ": "JWT", "kid": key.kid, "alg": "ES256", "iss": self.issuer.issuer,
            "client": BROWSER_CLIENT, "signer": ARN, "exp": exp
        });
        let payload = json!({
            "sub": sub, "email_verified": "true", "email": "ada@example.com",
            "username": "ada", "exp": exp, "iss": self.issuer.issuer
        });
        key.sign(&header, &payload, true)
    }

    /// An access token as Cognito issues it to `client` for user `sub` (`cognito:groups` only
    /// when the user is in a group).
    fn user_access_token(&self, client: &str, sub: &str, groups: &[&str]) -> String {
        let mut claims = json!({
            "sub": sub, "iss": self.issuer.issuer, "version": 2, "client_id": client,
            "origin_jti": uuid::Uuid::new_v4().to_string(), "token_use": "access",
            "scope": "openid email", "auth_time": now(), "exp": now() + 600, "iat": now(),
            "jti": uuid::Uuid::new_v4().to_string(), "username": "ada"
        });
        if !groups.is_empty() {
            claims["cognito:groups"] = json!(groups);
        }
        self.issuer.sign_rs256(&claims)
    }

    /// A client-credentials token of `client`.
    fn service_token(&self, client: &str, scope: &str) -> String {
        self.issuer
            .sign_rs256(&self.issuer.access_claims(client, scope))
    }
}

async fn start() -> (Cognito, Service, tempfile::TempDir) {
    let cognito = Cognito::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut svc = Service::serve(&cognito.service_env(&dir));
    svc.wait_healthy().await;
    (cognito, svc, dir)
}

fn browser_headers(userinfo: &str, access_token: &str) -> reqwest::header::HeaderMap {
    let mut h = reqwest::header::HeaderMap::new();
    h.insert("x-amzn-oidc-data", userinfo.parse().unwrap());
    h.insert("x-amzn-oidc-accesstoken", access_token.parse().unwrap());
    h.insert("x-amzn-oidc-identity", "user-1".parse().unwrap());
    h
}

async fn problem_code(res: reqwest::Response) -> (u16, String) {
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap();
    (status, body["code"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cognito_browser_users_get_their_groups_from_the_browser_clients_access_token() {
    let (cognito, svc, _dir) = start().await;
    let client = http();
    let userinfo = cognito.userinfo(&cognito.alb_key, "user-1");

    let viewer = browser_headers(
        &userinfo,
        &cognito.user_access_token(BROWSER_CLIENT, "user-1", &["players-viewer"]),
    );
    let res = client
        .get(svc.url("/v1/players"))
        .headers(viewer.clone())
        .exchange()
        .await;
    assert_eq!(res.status(), 200, "{}", svc.stderr.text());
    let me: Value = client
        .get(svc.url("/v1/me"))
        .headers(viewer)
        .exchange()
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["groups"], json!(["players-viewer"]), "{me}");
    assert_eq!(me["permissions"], json!(["players:read"]), "{me}");

    // Next to this user's claims, the access token must be the browser client's, about this
    // user; without groups (Cognito omits the claim) the user is known but may do nothing.
    let cases = [
        (
            "in no group",
            BROWSER_CLIENT,
            "user-1",
            &[][..],
            (403, "forbidden"),
        ),
        (
            "machine client's token",
            MACHINE_CLIENT,
            "user-1",
            &["players-admin"][..],
            (401, "invalid_token"),
        ),
        (
            "another user's token",
            BROWSER_CLIENT,
            "user-2",
            &["players-admin"][..],
            (401, "invalid_token"),
        ),
    ];
    for (case, token_client, token_sub, groups, (status, code)) in cases {
        let headers = browser_headers(
            &userinfo,
            &cognito.user_access_token(token_client, token_sub, groups),
        );
        let res = client
            .get(svc.url("/v1/players"))
            .headers(headers)
            .exchange()
            .await;
        assert_eq!(problem_code(res).await, (status, code.to_owned()), "{case}");
    }

    // The browser client's access token is not a service credential.
    let res = client
        .get(svc.url("/v1/players"))
        .bearer_auth(cognito.user_access_token(BROWSER_CLIENT, "user-1", &["players-admin"]))
        .exchange()
        .await;
    assert_eq!(problem_code(res).await, (401, "invalid_token".into()));

    // The machine client is.
    let res = client
        .get(svc.url("/v1/players"))
        .bearer_auth(cognito.service_token(MACHINE_CLIENT, "players/read"))
        .exchange()
        .await;
    assert_eq!(res.status(), 200);

    for reason in [
        "access_token_wrong_client",
        "access_token_subject_mismatch",
        "wrong_client",
    ] {
        svc.wait_for_stdout(reason, |lines| {
            lines
                .iter()
                .find(|l| l["event"] == "auth_failure" && l["reason"] == reason)
                .map(|_| ())
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_credentials_are_refused_before_any_key_is_fetched() {
    let (cognito, svc, _dir) = start().await;
    let client = http();
    let service_token = cognito.service_token(MACHINE_CLIENT, "players/read");
    // Warm: the JWKS is fetched once by a valid service call.
    let res = client
        .get(svc.url("/v1/players"))
        .bearer_auth(&service_token)
        .exchange()
        .await;
    assert_eq!(res.status(), 200);
    let fetches = cognito.server.hits();

    for _ in 0..30 {
        let junk_key = AlbKeyPair::generate(); // a fresh kid the key endpoint does not know
        let junk = cognito.userinfo(&junk_key, "attacker");
        let res = client
            .get(svc.url("/v1/players"))
            .bearer_auth(&service_token)
            .header("x-amzn-oidc-data", junk)
            .header("x-amzn-oidc-accesstoken", "junk")
            .exchange()
            .await;
        assert_eq!(problem_code(res).await, (401, "invalid_token".into()));
    }
    assert_eq!(
        cognito.server.hits(),
        fetches,
        "a mixed request fetched a key"
    );
    svc.wait_for_stdout("30 refusals for multiple credentials", |lines| {
        let n = lines
            .iter()
            .filter(|l| l["event"] == "auth_failure" && l["reason"] == "multiple_credentials")
            .count();
        (n == 30).then_some(())
    })
    .await;

    // The key budget is intact: a browser user signed with a key rotated in just now verifies.
    let rotated = AlbKeyPair::generate();
    cognito.server.set(
        &format!("/alb/{}", rotated.kid),
        Reply::Ok(rotated.public_pem().into_bytes()),
    );
    let res = client
        .get(svc.url("/v1/players"))
        .headers(browser_headers(
            &cognito.userinfo(&rotated, "user-1"),
            &cognito.user_access_token(BROWSER_CLIENT, "user-1", &["players-viewer"]),
        ))
        .exchange()
        .await;
    assert_eq!(res.status(), 200, "{}", svc.stdout.text());
}

/// Reads from `stream` until the peer closes it; returns everything read.
async fn read_until_closed(stream: &mut tokio::net::TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(DEADLINE, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return all,
            Ok(Ok(n)) => all.extend_from_slice(&buf[..n]),
            Err(_) => panic!("the server kept the connection open past {DEADLINE:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_close_after_the_configured_time() {
    const KEEP_ALIVE: u64 = 3;
    let cognito = Cognito::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut env = cognito.service_env(&dir);
    env.insert("HTTP_KEEP_ALIVE_SECS".into(), KEEP_ALIVE.to_string());
    let mut svc = Service::serve(&env);
    svc.wait_healthy().await;

    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", svc.port))
        .await
        .unwrap();
    let request = format!(
        "GET /health HTTP/1.1\r\nhost: 127.0.0.1:{}\r\n\r\n",
        svc.port
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&got).contains("\r\n\r\n") {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before the response");
        got.extend_from_slice(&buf[..n]);
    }
    let answered = Instant::now();
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"));
    let rest = read_until_closed(&mut stream).await;
    let idle = answered.elapsed();
    assert!(rest.len() < 1024, "unexpected bytes after the response");
    // Open at N-1 s, closed by N+1 s.
    assert!(
        idle >= Duration::from_secs(KEEP_ALIVE - 1) && idle <= Duration::from_secs(KEEP_ALIVE + 1),
        "idle connection closed after {idle:?}, keep-alive {KEEP_ALIVE} s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_request_heads_and_bodies_are_cut_off_with_408() {
    const HEAD: u64 = 2;
    const BODY: u64 = 2;
    let cognito = Cognito::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut env = cognito.service_env(&dir);
    env.insert("HTTP_REQUEST_HEAD_TIMEOUT_SECS".into(), HEAD.to_string());
    env.insert("HTTP_BODY_TIMEOUT_SECS".into(), BODY.to_string());
    let mut svc = Service::serve(&env);
    svc.wait_healthy().await;

    // A head that never ends.
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", svc.port))
        .await
        .unwrap();
    let started = Instant::now();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut stream).await;
    let waited = started.elapsed();
    assert!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 408"),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
    assert!(
        waited >= Duration::from_secs(HEAD - 1) && waited <= Duration::from_secs(HEAD + 2),
        "head timeout after {waited:?}"
    );

    // A body that stops halfway.
    let token = cognito.service_token(MACHINE_CLIENT, "players/write");
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", svc.port))
        .await
        .unwrap();
    let head = format!(
        "POST /v1/players HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"name\":"
    );
    let started = Instant::now();
    stream.write_all(head.as_bytes()).await.unwrap();
    let answer = read_until_closed(&mut stream).await;
    let waited = started.elapsed();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("\"code\":\"request_timeout\""), "{text}");
    assert!(text.contains("\"request_id\":"), "{text}");
    assert!(
        waited >= Duration::from_secs(BODY - 1) && waited <= Duration::from_secs(BODY + 2),
        "body timeout after {waited:?}"
    );
    // Nothing half-written was stored.
    let list: Value = http()
        .get(svc.url("/v1/players"))
        .bearer_auth(cognito.service_token(MACHINE_CLIENT, "players/read"))
        .exchange()
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"], json!([]), "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_generates_the_request_id_of_record_and_keeps_the_clients_beside_it() {
    let (cognito, svc, _dir) = start().await;
    let client = http();
    let admin = cognito.service_token(MACHINE_CLIENT, "players/write players/admin");
    let res = client
        .post(svc.url("/v1/players"))
        .bearer_auth(&admin)
        .header("x-request-id", "client-chosen-1")
        .json(&json!({
            "name": "Ada Hegerberg", "date_of_birth": "1995-07-10", "country": "NOR",
            "team": "Lyon", "position": "forward"
        }))
        .exchange()
        .await;
    assert_eq!(res.status(), 201);
    let id_of_record = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_ne!(id_of_record, "client-chosen-1");
    assert!(
        uuid::Uuid::parse_str(&id_of_record).is_ok(),
        "{id_of_record}"
    );

    // The access line carries both, under their own names.
    let line = svc
        .wait_for_stdout("the access line", |lines| {
            lines
                .iter()
                .find(|l| l["event"] == "access" && l["request_id"] == id_of_record.as_str())
                .cloned()
        })
        .await;
    assert_eq!(line["client_request_id"], "client-chosen-1", "{line}");

    // So does the audit record.
    let audit: Value = client
        .get(svc.url("/v1/admin/audit"))
        .bearer_auth(&admin)
        .exchange()
        .await
        .json()
        .await
        .unwrap();
    let record = &audit["items"][0];
    assert_eq!(record["request_id"], id_of_record.as_str(), "{audit}");
    assert_eq!(record["client_request_id"], "client-chosen-1", "{audit}");

    // A second request reusing the client's id still gets an id of its own.
    let res = client
        .get(svc.url("/v1/players"))
        .bearer_auth(&admin)
        .header("x-request-id", "client-chosen-1")
        .exchange()
        .await;
    let second = res.headers()["x-request-id"].to_str().unwrap();
    assert_ne!(second, id_of_record);
    assert_ne!(second, "client-chosen-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alb_only_deployments_read_groups_from_the_access_token_too() {
    let cognito = Cognito::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut env = cognito.service_env(&dir);
    env.remove("BEARER_ISSUER");
    env.remove("BEARER_CLIENT_IDS");
    let mut svc = Service::serve(&env);
    svc.wait_healthy().await;
    let client = http();
    let editor = browser_headers(
        &cognito.userinfo(&cognito.alb_key, "user-1"),
        &cognito.user_access_token(BROWSER_CLIENT, "user-1", &["players-editor"]),
    );
    let me: Value = client
        .get(svc.url("/v1/me"))
        .headers(editor)
        .exchange()
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        me["permissions"],
        json!(["players:read", "players:write", "players:delete"]),
        "{me}"
    );
    // No service credentials in this deployment.
    let res = client
        .get(svc.url("/v1/players"))
        .bearer_auth(cognito.service_token(MACHINE_CLIENT, "players/read"))
        .exchange()
        .await;
    assert_eq!(problem_code(res).await, (401, "invalid_token".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_to_start_without_alb_issuer_or_client_naming_the_variable() {
    let cognito = Cognito::start().await;
    let dir = tempfile::tempdir().unwrap();
    for variable in ["ALB_ISSUER", "ALB_CLIENT_ID"] {
        let mut env = cognito.service_env(&dir);
        env.remove(variable);
        let mut svc = Service::serve(&env);
        let status = svc.wait_exit(DEADLINE).await;
        assert!(!status.success());
        let stderr = svc.stderr.text();
        assert!(stderr.contains(variable), "{stderr}");
        assert!(stderr.contains("unchecked"), "{stderr}");
    }
    // The explicit opt-out starts (and says so).
    let mut env = cognito.service_env(&dir);
    env.insert("ALB_CLIENT_ID".into(), "unchecked".into());
    let mut svc = Service::serve(&env);
    svc.wait_healthy().await;
    svc.wait_for_stdout("the opt-out warning", |lines| {
        lines
            .iter()
            .find(|l| l.to_string().contains("ALB_CLIENT_ID=unchecked"))
            .map(|_| ())
    })
    .await;
}
