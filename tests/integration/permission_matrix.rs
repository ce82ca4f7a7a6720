//! Permission matrix: every route of `ROUTES` × {anonymous, reader, editor, admin, a user
//! without groups, a service with each scope} → the expected status, through the real HTTP
//! application (`Application::build` on port 0, SQLite store) with the production
//! authenticator and tokens signed here. Driven by the route table, so a new route is covered
//! the moment it is added.

use crate::support::app::Exchange;
use std::net::TcpListener;

use crate::support::identity::*;
use players_api::{
    auth::{PermissionSet, policy::PermissionPolicy},
    routes::{ROUTES, logout::LogoutConfig},
    shutdown::ShutdownFlag,
    startup::{AppState, Application},
    store::{self, PoolSettings},
};

fn personas() -> Vec<(&'static str, Persona)> {
    vec![
        ("anonymous", Persona::Anonymous),
        ("user without groups", Persona::User("u-none", vec![])),
        ("reader", Persona::User("u-reader", vec!["players-viewer"])),
        ("editor", Persona::User("u-editor", vec!["players-editor"])),
        ("admin", Persona::User("u-admin", vec!["players-admin"])),
        (
            "service players/read",
            Persona::Service(vec!["players/read"]),
        ),
        (
            "service players/write",
            Persona::Service(vec!["players/write"]),
        ),
        (
            "service players/delete",
            Persona::Service(vec!["players/delete"]),
        ),
        (
            "service players/admin",
            Persona::Service(vec!["players/admin"]),
        ),
    ]
}

/// What `persona` holds under the default policy (the contract's table).
fn permissions(persona: &Persona) -> Option<PermissionSet> {
    let policy = PermissionPolicy::default();
    match persona {
        Persona::Anonymous => None,
        Persona::User(_, groups) => {
            Some(policy.for_groups(&groups.iter().map(|g| g.to_string()).collect::<Vec<_>>()))
        }
        Persona::Service(scopes) => {
            Some(policy.for_scopes(&scopes.iter().map(|s| s.to_string()).collect::<Vec<_>>()))
        }
    }
}

async fn spawn_app(ids: &Identities) -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("matrix.db").display());
    let pool = PoolSettings {
        max_connections: 2,
        min_connections: 0,
        acquire_timeout: std::time::Duration::from_secs(3),
    };
    let store = store::connect(&url, &pool).await.unwrap();
    store.migrate().await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let app = Application::build(
        listener,
        AppState {
            store,
            authenticator: ids.authenticator.clone(),
            logout: LogoutConfig::default(),
            ready_timeout: std::time::Duration::from_secs(1),
            shutdown: ShutdownFlag::default(),
            http: Default::default(),
        },
    )
    .unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    (base, dir)
}

const PLAYER: &str = r#"{"name":"Ada Hegerberg","date_of_birth":"1995-07-10","country":"NOR","team":"Lyon","position":"forward","club_number":14}"#;

#[tokio::test]
async fn every_route_for_every_kind_of_caller() {
    let ids = Identities::start().await;
    let (base, _db) = spawn_app(&ids).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let missing_id = uuid::Uuid::new_v4();
    let mut failures = Vec::new();
    let mut checked = 0;

    for route in ROUTES {
        for (label, persona) in personas() {
            let path = route.path.replace("{id}", &missing_id.to_string());
            let method = reqwest::Method::from_bytes(route.method.as_str().as_bytes()).unwrap();
            let mut req = client.request(method.clone(), format!("{base}{path}"));
            for (k, v) in ids.headers(&persona) {
                req = req.header(k, v);
            }
            if method == reqwest::Method::POST {
                req = req.header("content-type", "application/json").body(PLAYER);
            }
            if method == reqwest::Method::PATCH {
                req = req
                    .header("content-type", "application/merge-patch+json")
                    .header("if-match", "\"x\"")
                    .body(r#"{"team":"Chelsea"}"#);
            }
            let status = req.exchange().await.status().as_u16();
            checked += 1;

            let held = permissions(&persona);
            let expected_denial = if route.public {
                None
            } else {
                match (&held, route.permission) {
                    (None, _) => Some(401),
                    (Some(_), None) => None,
                    (Some(set), Some(p)) if set.contains(p) => None,
                    (Some(_), Some(_)) => Some(403),
                }
            };
            let ok = match expected_denial {
                Some(code) => status == code,
                None => status != 401 && status != 403 && status < 500,
            };
            if !ok {
                failures.push(format!(
                    "{} {} as {label}: got {status}, expected {}",
                    route.method,
                    route.path,
                    expected_denial
                        .map_or("allowed (not 401/403/5xx)".to_owned(), |c| c.to_string())
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} cases wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(checked, ROUTES.len() * personas().len());
}

#[tokio::test]
async fn the_acting_principal_is_recorded_and_csrf_applies_over_http() {
    let ids = Identities::start().await;
    let (base, _db) = spawn_app(&ids).await;
    let client = reqwest::Client::new();
    let alb = ids.alb_header("u-editor", &["players-editor"]);

    // Cross-site POST from a browser session: 403 csrf_rejected.
    let resp = client
        .post(format!("{base}/v1/players"))
        .header("x-amzn-oidc-data", &alb)
        .header("origin", "https://evil.example.com")
        .header("content-type", "application/json")
        .body(PLAYER)
        .exchange()
        .await;
    assert_eq!(resp.status(), 403);
    let problem: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(problem["code"], "csrf_rejected");

    // Same-origin: created, by the user.
    let resp = client
        .post(format!("{base}/v1/players"))
        .header("x-amzn-oidc-data", &alb)
        .header("origin", PUBLIC_ORIGIN)
        .header("content-type", "application/json")
        .body(PLAYER)
        .exchange()
        .await;
    assert_eq!(resp.status(), 201);
    let player: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(player["created_by"], "user:u-editor");

    // A service creates without Origin (bearer requests are CSRF-exempt); recorded as service.
    let resp = client
        .post(format!("{base}/v1/players"))
        .bearer_auth(ids.service_token(&["players/write"]))
        .header("content-type", "application/json")
        .body(PLAYER.replace("\"club_number\":14", "\"club_number\":15"))
        .exchange()
        .await;
    assert_eq!(resp.status(), 201);
    let player: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(player["created_by"], format!("service:{SERVICE_CLIENT}"));

    // Invalid token: 401 invalid_token with WWW-Authenticate, never a 500.
    let resp = client
        .get(format!("{base}/v1/players"))
        .bearer_auth("eyJhbGciOiJub25lIn0.e30.")
        .exchange()
        .await;
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.headers()["www-authenticate"],
        r#"Bearer error="invalid_token""#
    );
    let problem: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(problem["code"], "invalid_token");
}
