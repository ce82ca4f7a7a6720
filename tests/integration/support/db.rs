//! Databases for tests: a fresh PostgreSQL database (on `TEST_DATABASE_URL`'s server) or a
//! fresh SQLite file per test, dropped with its guard; the store's test settings; audit
//! contexts for direct store calls; PostgreSQL behind a switchable proxy for outage tests.

use std::{sync::Arc, time::Duration};

use players_api::domain::{Actor, ActorKind};
use players_api::store::{self, AuditContext, PlayerStore, PoolSettings, PostgresStore};

use super::proxy::Proxy;

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

    /// The PostgreSQL database's name (None for SQLite).
    pub fn pg_name(&self) -> Option<&str> {
        match self {
            TestDb::Postgres { name, .. } => Some(name),
            TestDb::Sqlite { .. } => None,
        }
    }

    /// Where the PostgreSQL database is, for a child configured with `DB_HOST` and friends.
    pub fn pg_location(&self) -> PgLocation {
        let name = self
            .pg_name()
            .expect("a PostgreSQL test database")
            .to_owned();
        let url = url::Url::parse(self.url()).expect("TEST_DATABASE_URL is a URL");
        PgLocation {
            host: url.host_str().unwrap_or("127.0.0.1").to_owned(),
            port: url.port().unwrap_or(5432),
            user: match url.username() {
                "" => "postgres".to_owned(),
                user => user.to_owned(),
            },
            name,
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

/// A PostgreSQL test database's address, user and name.
pub struct PgLocation {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub name: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// PostgreSQL behind a switchable proxy, for outage tests.
pub async fn postgres_behind_proxy(db: &TestDb) -> (Arc<dyn PlayerStore>, Proxy) {
    let proxy = Proxy::start("127.0.0.1:5432").await;
    let url = db
        .url()
        .replace("127.0.0.1:5432", &format!("127.0.0.1:{}", proxy.port()));
    let options: sqlx::postgres::PgConnectOptions = url.parse().expect("url");
    let store = PostgresStore::with_options(options, &pool_settings());
    store.migrate().await.expect("migrate");
    (Arc::new(store), proxy)
}
