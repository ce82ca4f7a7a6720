//! Test support: fresh databases per test, the application on port 0, a test authenticator,
//! and a TCP proxy that can cut the application off from its database.
#![allow(dead_code)]

pub mod proxy;

use std::{net::TcpListener, sync::Arc, time::Duration};

use actix_web::HttpRequest;
use players_api::{
    auth::{AuthError, Authenticator, Permission, PermissionSet, Principal, PrincipalKind},
    routes::health::ShutdownFlag,
    startup::{AppState, Application},
    store::{self, Actor, ActorKind, AuditContext, PlayerStore, PoolSettings, PostgresStore},
};
use serde_json::{Value, json};

/// The server's own PostgreSQL (trust auth). Override with TEST_DATABASE_URL.
pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn pool_settings() -> PoolSettings {
    PoolSettings {
        max_connections: 5,
        min_connections: 0,
        acquire_timeout: Duration::from_secs(5),
    }
}

/// The audit context of a direct store call by `actor` (`user:<sub>` or `service:<id>`).
pub fn ctx(actor: &str) -> AuditContext {
    let (kind, id) = actor.split_once(':').expect("kind:id");
    AuditContext {
        actor: Actor {
            kind: ActorKind::parse(kind).expect("user or service"),
            id: id.to_owned(),
        },
        request_id: format!("req-{id}"),
        trace_id: None,
        client_request_id: None,
    }
}

/// A database that exists for one test and is dropped when the guard goes.
pub enum TestDb {
    Postgres {
        name: String,
        url: String,
    },
    Sqlite {
        _dir: tempfile::TempDir,
        url: String,
    },
}

impl TestDb {
    pub async fn postgres() -> TestDb {
        let name = format!("players_test_{}", uuid::Uuid::new_v4().simple());
        let admin = sqlx::PgPool::connect(&admin_url())
            .await
            .expect("PostgreSQL must be reachable (see README: ./scripts/test.sh starts one)");
        sqlx::query(sqlx::AssertSqlSafe(format!("create database {name}")))
            .execute(&admin)
            .await
            .expect("create test database");
        admin.close().await;
        let base = admin_url();
        let url = match base.rfind('/') {
            Some(i) => format!("{}/{name}", &base[..i]),
            None => panic!("TEST_DATABASE_URL has no database part"),
        };
        TestDb::Postgres { name, url }
    }

    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite:{}", dir.path().join("players.db").display());
        TestDb::Sqlite { _dir: dir, url }
    }

    pub async fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Postgres => TestDb::postgres().await,
            Backend::Sqlite => TestDb::sqlite(),
        }
    }

    pub fn url(&self) -> &str {
        match self {
            TestDb::Postgres { url, .. } | TestDb::Sqlite { url, .. } => url,
        }
    }

    pub async fn store(&self) -> Arc<dyn PlayerStore> {
        let store = store::connect(self.url(), &pool_settings())
            .await
            .expect("connect");
        store.migrate().await.expect("migrate");
        store
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let TestDb::Postgres { name, .. } = self {
            let name = name.clone();
            // Drop runs inside the test's runtime; do the async cleanup on a thread of its own.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async {
                    if let Ok(admin) = sqlx::PgPool::connect(&admin_url()).await {
                        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                            "drop database if exists {name} with (force)"
                        )))
                        .execute(&admin)
                        .await;
                        admin.close().await;
                    }
                });
            })
            .join();
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// Test double for the identity layer: `x-test-role: admin | editor | viewer | nobody`.
/// It exists only in tests; the binary has no such path.
pub struct TestAuthenticator;

#[async_trait::async_trait(?Send)]
impl Authenticator for TestAuthenticator {
    async fn authenticate(&self, req: &HttpRequest) -> Result<Principal, AuthError> {
        let role = req
            .headers()
            .get("x-test-role")
            .and_then(|v| v.to_str().ok())
            .ok_or(AuthError::Missing)?;
        use Permission::*;
        let permissions: PermissionSet = match role {
            "admin" => PermissionSet::all(),
            "editor" => [PlayersRead, PlayersWrite, PlayersDelete]
                .into_iter()
                .collect(),
            "viewer" => [PlayersRead].into_iter().collect(),
            "nobody" => PermissionSet::empty(),
            _ => {
                return Err(AuthError::InvalidToken {
                    scheme: players_api::auth::Scheme::Bearer,
                    reason: "unknown test role".into(),
                });
            }
        };
        Ok(Principal {
            kind: PrincipalKind::User,
            subject: format!("test-{role}"),
            name: None,
            email: None,
            groups: vec![],
            scopes: vec![],
            permissions,
        })
    }
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub store: Arc<dyn PlayerStore>,
    pub shutdown: ShutdownFlag,
}

impl TestApp {
    /// Serves `store` on 127.0.0.1, port 0, with the test authenticator.
    pub async fn spawn(store: Arc<dyn PlayerStore>) -> TestApp {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let shutdown = ShutdownFlag::default();
        let app = Application::build(
            listener,
            AppState {
                store: store.clone(),
                authenticator: Arc::new(TestAuthenticator),
                logout: Default::default(),
                ready_timeout: Duration::from_millis(500),
                shutdown: shutdown.clone(),
                http: Default::default(),
            },
        )
        .expect("build app");
        let base = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        TestApp {
            base,
            client: reqwest::Client::new(),
            store,
            shutdown,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request as `role`.
    pub fn as_role(
        &self,
        role: &str,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .header("x-test-role", role)
    }

    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.as_role("admin", method, path)
    }

    /// Creates a player and returns its JSON.
    pub async fn create(&self, body: &Value) -> Value {
        let res = self
            .admin(reqwest::Method::POST, "/v1/players")
            .json(body)
            .send()
            .await
            .expect("POST");
        assert_eq!(res.status(), 201, "{:?}", res.text().await);
        res.json().await.expect("json")
    }
}

/// A valid player body; `n` makes names and club numbers distinct.
pub fn player_body(n: usize) -> Value {
    json!({
        "name": format!("Player {n:04}"),
        "date_of_birth": "1995-06-15",
        "country": "eng",
        "team": format!("Team {}", n / 90),
        "position": "midfielder",
        "club_number": (n % 90) + 1,
    })
}

/// Asserts a problem+json response and returns its body.
pub async fn assert_problem(res: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(res.status().as_u16(), status, "status");
    let content_type = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let header_id = res
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .expect("x-request-id header");
    let body: Value = res.json().await.expect("problem body");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["request_id"], header_id.as_str(), "{body}");
    assert_eq!(
        body["type"],
        format!("https://players-api.dev/problems/{code}").as_str()
    );
    assert!(
        body["title"].is_string() && body["detail"].is_string(),
        "{body}"
    );
    body
}

/// PostgreSQL behind a switchable proxy, for outage tests.
pub async fn postgres_behind_proxy(db: &TestDb) -> (Arc<dyn PlayerStore>, proxy::Proxy) {
    let proxy = proxy::Proxy::start("127.0.0.1:5432").await;
    let url = db
        .url()
        .replace("127.0.0.1:5432", &format!("127.0.0.1:{}", proxy.port()));
    let options: sqlx::postgres::PgConnectOptions = url.parse().expect("url");
    let store = PostgresStore::with_options(options, &pool_settings());
    store.migrate().await.expect("migrate");
    (Arc::new(store), proxy)
}
