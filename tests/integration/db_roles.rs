//! The two database roles against the real PostgreSQL: migrations run as an owner (CREATEROLE,
//! not a superuser, like the RDS master user), `store::grants` creates the runtime role and
//! grants it exactly the DML the service needs; the service then runs as that role. And an
//! alternating-users rotation (user A -> A_clone, the way Secrets Manager's PostgreSQL
//! multi-user function does it) under HTTP load, with moto as Secrets Manager.
//!
//! Roles are global to the cluster, so every test uses its own role names and its own database,
//! and drops them afterwards.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::app::{TestApp, player_body};
use crate::support::aws::Moto;
use crate::support::db::{admin_url, pool_settings};
use crate::support::wait_until;
use players_api::secrets::{CredentialRefresher, RefreshTiming, SecretsClient};
use players_api::store::{PlayerStore, PostgresStore, grants};
use reqwest::Method;
use secrecy::SecretString;
use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use tokio::time::Instant;

// ---------------------------------------------------------------------------------------------
// A database owned by a fresh owner role, and the runtime role's name.

struct RoleDb {
    db: String,
    owner: String,
    app: String,
    admin: PgPool,
}

fn admin_options() -> PgConnectOptions {
    admin_url().parse().expect("TEST_DATABASE_URL")
}

impl RoleDb {
    async fn new() -> RoleDb {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let (db, owner, app) = (
            format!("players_roles_{id}"),
            format!("own_{}", &id[..12]),
            format!("app_{}", &id[..12]),
        );
        let admin = PgPoolOptions::new()
            .max_connections(2)
            .connect_with(admin_options())
            .await
            .expect("PostgreSQL must be reachable (TEST_DATABASE_URL)");
        for sql in [
            // Like the RDS master user: may create roles, is not a superuser.
            format!("create role {owner} login createrole nosuperuser"),
            format!("create database {db} owner {owner}"),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&admin)
                .await
                .unwrap();
        }
        RoleDb {
            db,
            owner,
            app,
            admin,
        }
    }

    fn options(&self, user: &str) -> PgConnectOptions {
        admin_options().username(user).database(&self.db)
    }

    fn clone_role(&self) -> String {
        format!("{}{}", self.app, grants::CLONE_SUFFIX)
    }

    /// The owner's store: applies the migrations.
    async fn migrate_as_owner(&self) -> PgPool {
        let owner = PostgresStore::with_options(self.options(&self.owner), &pool_settings());
        owner.migrate().await.expect("migrations as the owner");
        owner.pool().clone()
    }

    fn store_as(&self, user: &str) -> PostgresStore {
        PostgresStore::with_options(self.options(user), &pool_settings())
    }

    async fn privileges(&self, role: &str) -> Vec<(String, String)> {
        let db = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(admin_options().database(&self.db))
            .await
            .unwrap();
        let mut rows: Vec<(String, String)> = sqlx::query_as(
            "select table_name::text, privilege_type::text from information_schema.role_table_grants \
             where grantee = $1 order by 1, 2",
        )
        .bind(role)
        .fetch_all(&db)
        .await
        .unwrap();
        db.close().await;
        rows.sort();
        rows
    }

    async fn password_hash(&self, role: &str) -> Option<String> {
        sqlx::query_scalar("select rolpassword from pg_authid where rolname = $1")
            .bind(role)
            .fetch_one(&self.admin)
            .await
            .unwrap()
    }
}

impl Drop for RoleDb {
    fn drop(&mut self) {
        let (db, roles) = (
            self.db.clone(),
            [self.clone_role(), self.app.clone(), self.owner.clone()],
        );
        // Drop runs inside the test's runtime; do the async cleanup on a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                if let Ok(admin) = sqlx::PgPool::connect_with(admin_options()).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "drop database if exists {db} with (force)"
                    )))
                    .execute(&admin)
                    .await;
                    for role in roles {
                        let _ =
                            sqlx::query(sqlx::AssertSqlSafe(format!("drop role if exists {role}")))
                                .execute(&admin)
                                .await;
                    }
                    admin.close().await;
                }
            });
        })
        .join();
    }
}

fn sqlstate(e: &sqlx::Error) -> Option<String> {
    e.as_database_error()
        .and_then(|d| d.code())
        .map(|c| c.into_owned())
}

/// Everything the runtime role must not do: change the schema, touch the migrations table,
/// rewrite or erase the audit trail.
async fn assert_no_ddl(pool: &PgPool, who: &str) {
    for sql in [
        "alter table players add column nickname text",
        "alter table audit_log drop column trace_id",
        "drop table players",
        "drop table audit_log",
        "create table intruder (x int)",
        "create index players_team_idx on players (team)",
        "truncate players",
        "update audit_log set actor_id = 'someone else'",
        "delete from audit_log",
        "select count(*) from _sqlx_migrations",
    ] {
        let err = sqlx::raw_sql(sql)
            .execute(pool)
            .await
            .expect_err(&format!("{who} must not run: {sql}"));
        assert_eq!(
            sqlstate(&err).as_deref(),
            Some("42501"),
            "{who}: {sql}: expected insufficient_privilege, got {err}"
        );
    }
}

/// Every endpoint that reaches the database, through the real HTTP server.
async fn exercise_every_endpoint(app: &TestApp, n: usize) {
    // Create, with an Idempotency-Key, and its replay.
    let key = format!("roles-{n}");
    let body = player_body(n);
    let first = app
        .admin(Method::POST, "/v1/players")
        .header("Idempotency-Key", &key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 201, "{:?}", first.text().await);
    let player: Value = first.json().await.unwrap();
    let replay = app
        .admin(Method::POST, "/v1/players")
        .header("Idempotency-Key", &key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 201);
    assert_eq!(replay.json::<Value>().await.unwrap()["id"], player["id"]);
    let id = player["id"].as_str().unwrap();
    // Read, list (filters, sort, cursor), update, audit, delete, readiness.
    let got = app
        .admin(Method::GET, &format!("/v1/players/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    let list = app
        .admin(
            Method::GET,
            "/v1/players?country=ENG&sort=-date_of_birth&limit=1&name=player",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 200);
    let patched = app
        .admin(Method::PATCH, &format!("/v1/players/{id}"))
        .header("content-type", "application/merge-patch+json")
        .header("If-Match", "\"1\"")
        .json(&json!({"national_team_number": 10}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200, "{:?}", patched.text().await);
    let audit = app
        .admin(Method::GET, &format!("/v1/admin/audit?player_id={id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(audit.status(), 200);
    let audit: Value = audit.json().await.unwrap();
    assert_eq!(audit["items"].as_array().unwrap().len(), 2, "{audit}");
    let deleted = app
        .admin(Method::DELETE, &format!("/v1/players/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let ready = app.client.get(app.url("/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn runtime_role_serves_every_endpoint_and_cannot_change_the_schema() {
    let db = RoleDb::new().await;
    let owner = db.migrate_as_owner().await;
    let report = grants::ensure_runtime_role(&owner, &db.app, None)
        .await
        .expect("grants as the owner");
    assert!(report.created && !report.clone_present, "{report:?}");

    let store = db.store_as(&db.app);
    let as_app = store.pool().clone();
    let user: String = sqlx::query_scalar("select current_user::text")
        .fetch_one(&as_app)
        .await
        .unwrap();
    assert_eq!(user, db.app);
    let app = TestApp::spawn(Arc::new(store)).await;
    exercise_every_endpoint(&app, 1).await;
    assert_no_ddl(&as_app, "the runtime role").await;

    // Not a superuser, cannot create roles or databases.
    let (superuser, createrole, createdb): (bool, bool, bool) = sqlx::query_as(
        "select rolsuper, rolcreaterole, rolcreatedb from pg_roles where rolname = current_user",
    )
    .fetch_one(&as_app)
    .await
    .unwrap();
    assert!(!superuser && !createrole && !createdb);
    // The owner still can change the schema (migrations keep working).
    sqlx::raw_sql("alter table players add column owner_can int")
        .execute(&owner)
        .await
        .expect("the owner alters tables");
}

#[tokio::test]
async fn grants_are_idempotent_converge_and_leave_the_password_alone() {
    let db = RoleDb::new().await;
    let owner = db.migrate_as_owner().await;
    let first_pw = SecretString::from("Initial-Pw-1".to_owned());
    let first = grants::ensure_runtime_role(&owner, &db.app, Some(&first_pw))
        .await
        .unwrap();
    assert!(first.created);
    let privileges = db.privileges(&db.app).await;
    let expected: Vec<(String, String)> = grants::TABLE_GRANTS
        .iter()
        .flat_map(|(t, ps)| ps.iter().map(move |p| (t.to_string(), p.to_uppercase())))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(privileges, expected);
    let hash = db.password_hash(&db.app).await;
    assert!(hash.is_some(), "created with the secret's password");

    // A stray privilege, then the step again (with another password): same result as before.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "grant truncate, update on audit_log to {}",
        db.app
    )))
    .execute(&owner)
    .await
    .unwrap();
    let other_pw = SecretString::from("Other-Pw-2".to_owned());
    let second = grants::ensure_runtime_role(&owner, &db.app, Some(&other_pw))
        .await
        .unwrap();
    assert!(!second.created);
    assert_eq!(db.privileges(&db.app).await, privileges, "converged");
    assert_eq!(
        db.password_hash(&db.app).await,
        hash,
        "the rotation owns the password"
    );
    // Concurrent runs serialise on the advisory lock.
    let (a, b) = tokio::join!(
        grants::ensure_runtime_role(&owner, &db.app, None),
        grants::ensure_runtime_role(&owner, &db.app, None)
    );
    a.unwrap();
    b.unwrap();
    assert_eq!(db.privileges(&db.app).await, privileges);
}

#[tokio::test]
async fn a_table_without_a_grants_entry_fails_the_step() {
    let db = RoleDb::new().await;
    let owner = db.migrate_as_owner().await;
    sqlx::raw_sql("create table forgotten (x int)")
        .execute(&owner)
        .await
        .unwrap();
    let err = grants::ensure_runtime_role(&owner, &db.app, None)
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("forgotten"), "{err:#}");
    // Nothing half-done: the role was not created either (one transaction).
    let exists: bool =
        sqlx::query_scalar("select exists (select 1 from pg_roles where rolname = $1)")
            .bind(&db.app)
            .fetch_one(&db.admin)
            .await
            .unwrap();
    assert!(!exists);
}

// ---------------------------------------------------------------------------------------------
// Alternating-users rotation under load. moto stands in for Secrets Manager.

/// The runtime secret as database.yaml shapes it (the rotation function's fields).
fn secret_json(user: &str, password: &str) -> String {
    json!({
        "engine": "postgres", "host": "127.0.0.1", "port": "5432", "dbname": "players",
        "username": user, "password": password,
        "masterarn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-x"
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alternating_user_rotation_under_load_fails_no_request() {
    let db = RoleDb::new().await;
    let owner = db.migrate_as_owner().await;
    grants::ensure_runtime_role(&owner, &db.app, None)
        .await
        .unwrap();
    let clone = db.clone_role();

    let moto = Moto::start();
    let conf = moto.sdk_config().await;
    let sm = aws_sdk_secretsmanager::Client::new(&conf);
    let arn = sm
        .create_secret()
        .name(format!("players/{}", db.app))
        .secret_string(secret_json(&db.app, "Pw-A-1"))
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_owned();

    // The service's wiring (app::serve_store): credentials from the secret, a refresher that
    // follows the secret's username and password. Pool of 6 for up to 6 requests in flight.
    let client = SecretsClient::from_sdk_config(&conf);
    let creds = client
        .db_credentials(
            &arn,
            "DB_SECRET_ARN",
            Instant::now() + Duration::from_secs(20),
        )
        .await
        .unwrap();
    assert_eq!(creds.username, db.app);
    let base = db.options(&db.owner); // host, port, database; the user comes from the secret
    let mut settings = pool_settings();
    settings.max_connections = 6;
    let store = PostgresStore::with_options(creds.apply_to(&base), &settings);
    let pool = store.pool().clone();
    let refresher = CredentialRefresher::with_timing(
        client,
        arn.clone(),
        pool.clone(),
        base,
        creds,
        RefreshTiming {
            fetch_deadline: Duration::from_secs(5),
            rotation_wait: Duration::from_secs(5),
            poll_interval: Duration::from_millis(50),
        },
    );
    let store = store.with_refresher(refresher.clone());
    let app = Arc::new(TestApp::spawn(Arc::new(store)).await);
    let seed = app.create(&player_body(0)).await;
    let seed_id = seed["id"].as_str().unwrap().to_owned();

    // Load: each worker reads, lists and creates players through HTTP, non-stop.
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let spawn_worker = |w: usize| {
        let (app, ok, failed, stop, seed_id) = (
            app.clone(),
            ok.clone(),
            failed.clone(),
            stop.clone(),
            seed_id.clone(),
        );
        tokio::spawn(async move {
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let req = match i % 3 {
                    0 => app.admin(Method::GET, &format!("/v1/players/{seed_id}")),
                    1 => app.admin(Method::GET, "/v1/players?limit=20"),
                    _ => app
                        .admin(Method::POST, "/v1/players")
                        .json(&player_body(1 + w * 10_000 + i)),
                };
                match req.send().await {
                    Ok(r) if r.status().is_success() => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(r) => {
                        let status = r.status();
                        let body = r.text().await.unwrap_or_default();
                        failed.lock().unwrap().push(format!("{status} {body}"));
                    }
                    Err(e) => failed.lock().unwrap().push(e.to_string()),
                }
            }
        })
    };
    let mut workers: Vec<_> = (0..2).map(spawn_worker).collect();
    let schedule = refresher.spawn_schedule(Duration::from_millis(100));
    wait_until("steady traffic as user A", Duration::from_secs(30), || {
        ok.load(Ordering::Relaxed) >= 60
    })
    .await;

    // The rotation function's first run: setSecret creates the clone the way it does (as the
    // master user: CREATE ROLE ... WITH LOGIN PASSWORD, GRANT <current> TO <clone>), then
    // finishSecret moves AWSCURRENT to the clone. User A's password stays valid.
    for sql in [
        format!("create role {clone} with login password 'Pw-B-1'"),
        format!("grant {} to {clone}", db.app),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&owner)
            .await
            .expect("the owner (CREATEROLE, admin of the runtime role) creates the clone");
    }
    sm.put_secret_value()
        .secret_id(&arn)
        .secret_string(secret_json(&clone, "Pw-B-1"))
        .send()
        .await
        .unwrap();
    let before = ok.load(Ordering::Relaxed);
    wait_until(
        "the refresher to follow the username",
        Duration::from_secs(30),
        || refresher.generation() == 1 && ok.load(Ordering::Relaxed) >= before + 60,
    )
    .await;
    assert_eq!(pool.connect_options().get_username(), clone);

    // More requests in flight than open connections: the pool opens new ones, as the clone.
    workers.extend((2..6).map(spawn_worker));
    let mut clone_sessions = 0i64;
    let deadline = Instant::now() + Duration::from_secs(30);
    while clone_sessions == 0 {
        assert!(Instant::now() < deadline, "no connection as {clone}");
        clone_sessions = sqlx::query_scalar(
            "select count(*) from pg_stat_activity where datname = $1 and usename = $2",
        )
        .bind(&db.db)
        .bind(&clone)
        .fetch_one(&db.admin)
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = ok.load(Ordering::Relaxed);
    wait_until(
        "traffic with clone sessions",
        Duration::from_secs(30),
        || ok.load(Ordering::Relaxed) >= before + 100,
    )
    .await;

    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    schedule.abort();
    let failed = failed.lock().unwrap().clone();
    assert!(
        failed.is_empty(),
        "{} failed requests: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );

    // The clone holds exactly what the runtime role was granted (inherited), no DDL.
    let as_clone = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(db.options(&clone))
        .await
        .unwrap();
    assert_no_ddl(&as_clone, "the clone").await;
    as_clone.close().await;
    // The grants step run again after a rotation leaves the clone a member (and changes nothing).
    let report = grants::ensure_runtime_role(&owner, &db.app, None)
        .await
        .unwrap();
    assert!(!report.created && report.clone_present);
    assert!(db.privileges(&clone).await.is_empty(), "only inherited");
}
