//! The audit trail through the real HTTP server on both database backends: a record per
//! create, update and delete with actor, before/after values and request/trace ids; nothing
//! recorded for a failed write; the change rolled back when its record cannot be written; the
//! listing admin-only, filtered and paginated.

use crate::support::app::{Exchange, TestApp, assert_problem, player_body};
use crate::support::db::{Backend, TestDb};
use reqwest::Method;
use serde_json::{Value, json};

const TRACE_HEADER: &str =
    "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
const TRACE_ID: &str = "1-5759e988-bd862e3fe1be46a994272793";

/// `/v1/admin/audit` with `query`, percent-encoded.
fn audit_path(query: &[(&str, &str)]) -> String {
    let url = url::Url::parse_with_params("http://x/v1/admin/audit", query).unwrap();
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    }
}

/// The audit listing as admin, with `query` parameters; asserts 200.
async fn audit(app: &TestApp, query: &[(&str, &str)]) -> Value {
    let res = app.admin(Method::GET, &audit_path(query)).exchange().await;
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
    res.json().await.unwrap()
}

async fn items(app: &TestApp, query: &[(&str, &str)]) -> Vec<Value> {
    audit(app, query).await["items"].as_array().unwrap().clone()
}

/// Runs `statements` on the test database over a connection of its own.
async fn exec(db: &TestDb, backend: Backend, statements: &[&'static str]) {
    match backend {
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(db.url()).await.unwrap();
            for s in statements {
                sqlx::query(*s).execute(&pool).await.unwrap();
            }
            pool.close().await;
        }
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(db.url()).await.unwrap();
            for s in statements {
                sqlx::query(*s).execute(&pool).await.unwrap();
            }
            pool.close().await;
        }
    }
}

/// Makes every insert into audit_log fail.
async fn break_the_audit_log(db: &TestDb, backend: Backend) {
    match backend {
        Backend::Postgres => {
            exec(
                db,
                backend,
                &[
                    "create function audit_log_refuse() returns trigger language plpgsql as \
                     $$ begin raise exception 'audit log unavailable'; end $$",
                    "create trigger audit_log_refuse before insert on audit_log \
                     for each row execute function audit_log_refuse()",
                ],
            )
            .await
        }
        Backend::Sqlite => {
            exec(
                db,
                backend,
                &[
                    "create trigger audit_log_refuse before insert on audit_log \
                   begin select raise(abort, 'audit log unavailable'); end",
                ],
            )
            .await
        }
    }
}

async fn repair_the_audit_log(db: &TestDb, backend: Backend) {
    exec(
        db,
        backend,
        &[match backend {
            Backend::Postgres => "drop trigger audit_log_refuse on audit_log",
            Backend::Sqlite => "drop trigger audit_log_refuse",
        }],
    )
    .await;
}

/// The request id the service generated for a response.
fn request_id(res: &reqwest::Response) -> String {
    res.headers()["x-request-id"].to_str().unwrap().to_owned()
}

async fn create_update_delete_are_recorded(app: &TestApp, _: &TestDb, _: Backend) {
    let res = app
        .admin(Method::POST, "/v1/players")
        .header("x-request-id", "req-create-1")
        .header("x-amzn-trace-id", TRACE_HEADER)
        .json(
            &json!({"name": "Kevin De Bruyne", "date_of_birth": "1991-06-28",
                      "country": "bel", "team": "Napoli", "position": "midfielder",
                      "club_number": 11, "national_team_number": 7}),
        )
        .exchange()
        .await;
    assert_eq!(res.status(), 201);
    let create_id = request_id(&res);
    let created: Value = res.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/players/{id}");

    let res = app
        .as_role("editor", Method::PATCH, &path)
        .header("content-type", "application/merge-patch+json")
        .header("x-request-id", "req-update-1")
        .header("x-amzn-trace-id", TRACE_HEADER)
        .body(r#"{"team": "Manchester City", "national_team_number": null}"#)
        .exchange()
        .await;
    assert_eq!(res.status(), 200);
    let update_id = request_id(&res);

    let res = app
        .as_role("editor", Method::DELETE, &path)
        .header("x-request-id", "req-delete-1")
        .exchange()
        .await;
    assert_eq!(res.status(), 204);
    let delete_id = request_id(&res);

    let records = items(app, &[("player_id", id.as_str())]).await;
    assert_eq!(records.len(), 3, "{records:?}");
    let (delete, update, create) = (&records[0], &records[1], &records[2]);

    assert_eq!(create["action"], "create");
    assert_eq!(create["player_id"], id.as_str());
    assert_eq!(create["actor_kind"], "user");
    assert_eq!(create["actor_id"], "test-admin");
    // The id of record is the service's own; the client's is kept beside it.
    assert_eq!(create["request_id"], create_id.as_str());
    assert_eq!(create["client_request_id"], "req-create-1");
    assert_eq!(create["trace_id"], TRACE_ID);
    assert_eq!(
        create["changes"],
        json!({
            "name": {"before": null, "after": "Kevin De Bruyne"},
            "date_of_birth": {"before": null, "after": "1991-06-28"},
            "country": {"before": null, "after": "BEL"},
            "team": {"before": null, "after": "Napoli"},
            "position": {"before": null, "after": "midfielder"},
            "club_number": {"before": null, "after": 11},
            "national_team_number": {"before": null, "after": 7},
        })
    );
    assert_eq!(create["occurred_at"], created["created_at"]);

    assert_eq!(update["action"], "update");
    assert_eq!(update["actor_id"], "test-editor");
    // The id of record is the service's own; the client's is kept beside it.
    assert_eq!(update["request_id"], update_id.as_str());
    assert_eq!(update["client_request_id"], "req-update-1");
    assert_eq!(update["trace_id"], TRACE_ID);
    assert_eq!(
        update["changes"],
        json!({
            "team": {"before": "Napoli", "after": "Manchester City"},
            "national_team_number": {"before": 7, "after": null},
        }),
        "only the fields that changed"
    );

    assert_eq!(delete["action"], "delete");
    assert_eq!(delete["actor_id"], "test-editor");
    // The id of record is the service's own; the client's is kept beside it.
    assert_eq!(delete["request_id"], delete_id.as_str());
    assert_eq!(delete["client_request_id"], "req-delete-1");
    assert_eq!(delete["trace_id"], Value::Null);
    assert_eq!(
        delete["changes"]["team"],
        json!({"before": "Manchester City", "after": null})
    );
    assert!(delete["changes"].get("national_team_number").is_none());
    for r in &records {
        assert_eq!(
            uuid::Uuid::parse_str(r["id"].as_str().unwrap())
                .unwrap()
                .get_version_num(),
            7
        );
    }
}

async fn failed_writes_record_nothing(app: &TestApp, _: &TestDb, _: Backend) {
    let a = app.create(&player_body(1)).await;
    let b = app.create(&player_body(2)).await;
    let b_path = format!("/v1/players/{}", b["id"].as_str().unwrap());

    // 409: a taken club number, on create and on update.
    let res = app
        .admin(Method::POST, "/v1/players")
        .json(
            &json!({"name": "Clash", "date_of_birth": "2000-01-01", "country": "ENG",
                      "team": a["team"], "position": "forward", "club_number": a["club_number"]}),
        )
        .exchange()
        .await;
    assert_problem(res, 409, "club_number_taken").await;
    let res = app
        .admin(Method::PATCH, &b_path)
        .header("content-type", "application/merge-patch+json")
        .body(json!({"club_number": a["club_number"]}).to_string())
        .exchange()
        .await;
    assert_problem(res, 409, "club_number_taken").await;

    // 412: stale If-Match on update and delete.
    let res = app
        .admin(Method::PATCH, &b_path)
        .header("content-type", "application/merge-patch+json")
        .header("if-match", "\"7\"")
        .body(r#"{"name": "Renamed"}"#)
        .exchange()
        .await;
    assert_problem(res, 412, "precondition_failed").await;
    let res = app
        .admin(Method::DELETE, &b_path)
        .header("if-match", "\"7\"")
        .exchange()
        .await;
    assert_problem(res, 412, "precondition_failed").await;

    // A replayed idempotent create changes nothing and records nothing.
    for _ in 0..2 {
        let res = app
            .admin(Method::POST, "/v1/players")
            .header("idempotency-key", "k-1")
            .json(&player_body(3))
            .exchange()
            .await;
        assert_eq!(res.status(), 201);
    }

    let records = items(app, &[]).await;
    let actions: Vec<_> = records.iter().map(|r| r["action"].clone()).collect();
    assert_eq!(actions, ["create", "create", "create"], "{records:?}");
}

async fn a_failed_audit_insert_rolls_the_change_back(app: &TestApp, db: &TestDb, backend: Backend) {
    let p = app.create(&player_body(1)).await;
    let path = format!("/v1/players/{}", p["id"].as_str().unwrap());
    break_the_audit_log(db, backend).await;

    let res = app
        .admin(Method::POST, "/v1/players")
        .json(&player_body(2))
        .exchange()
        .await;
    assert_problem(res, 500, "internal").await;
    let res = app
        .admin(Method::PATCH, &path)
        .header("content-type", "application/merge-patch+json")
        .body(r#"{"name": "Renamed"}"#)
        .exchange()
        .await;
    assert_problem(res, 500, "internal").await;
    let res = app.admin(Method::DELETE, &path).exchange().await;
    assert_problem(res, 500, "internal").await;

    repair_the_audit_log(db, backend).await;
    let players: Value = app
        .admin(Method::GET, "/v1/players")
        .exchange()
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        players["items"],
        json!([p]),
        "no new player, no update, no delete"
    );
    let records = items(app, &[]).await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["action"], "create");

    // Repaired, the same writes go through and are recorded.
    let res = app.admin(Method::DELETE, &path).exchange().await;
    assert_eq!(res.status(), 204);
    assert_eq!(items(app, &[]).await[0]["action"], "delete");
}

async fn the_listing_is_admin_only(app: &TestApp, _: &TestDb, _: Backend) {
    for role in ["editor", "viewer", "nobody"] {
        let res = app
            .as_role(role, Method::GET, "/v1/admin/audit")
            .exchange()
            .await;
        assert_problem(res, 403, "forbidden").await;
    }
    let res = app.client.get(app.url("/v1/admin/audit")).exchange().await;
    assert_problem(res, 401, "unauthenticated").await;
    let res = app.admin(Method::POST, "/v1/admin/audit").exchange().await;
    assert_eq!(res.status(), 405);
}

async fn filters_and_pages(app: &TestApp, _: &TestDb, _: Backend) {
    let mut ids = Vec::new();
    for n in 1..=5 {
        ids.push(
            app.create(&player_body(n)).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    for id in &ids[..2] {
        let res = app
            .as_role("editor", Method::PATCH, &format!("/v1/players/{id}"))
            .header("content-type", "application/json")
            .body(r#"{"position": "defender"}"#)
            .exchange()
            .await;
        assert_eq!(res.status(), 200);
    }

    // Everything, newest first.
    let all = items(app, &[]).await;
    assert_eq!(all.len(), 7);
    let stamps: Vec<(String, String)> = all
        .iter()
        .map(|r| {
            (
                r["occurred_at"].as_str().unwrap().to_owned(),
                r["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut sorted = stamps.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(stamps, sorted, "newest first");

    // Filters.
    let by_editor = items(app, &[("actor_id", "test-editor")]).await;
    assert_eq!(by_editor.len(), 2);
    assert!(by_editor.iter().all(|r| r["action"] == "update"));
    let one = items(app, &[("player_id", ids[0].as_str())]).await;
    let actions: Vec<_> = one.iter().map(|r| r["action"].clone()).collect();
    assert_eq!(actions, ["update", "create"]);
    assert!(
        items(app, &[("actor_id", "nobody-at-all")])
            .await
            .is_empty()
    );
    // `from` is inclusive and `to` exclusive, so the two halves split the trail exactly.
    let pivot = all[3]["occurred_at"].as_str().unwrap();
    let newer = items(app, &[("from", pivot)]).await;
    let older = items(app, &[("to", pivot)]).await;
    assert_eq!(newer.len() + older.len(), 7);
    assert!(newer.iter().any(|r| r["id"] == all[3]["id"]));
    assert!(
        items(app, &[("from", "2999-01-01T00:00:00Z")])
            .await
            .is_empty()
    );
    assert_eq!(
        items(app, &[("from", "2000-01-01T00:00:00+02:00")])
            .await
            .len(),
        7
    );

    // Pages of 3 cover everything once, in order.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![("limit", "3".to_owned())];
        if let Some(c) = &cursor {
            query.push(("cursor", c.clone()));
        }
        let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let page = audit(app, &query).await;
        seen.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, all);

    // Bad requests.
    let page = audit(app, &[("limit", "2")]).await;
    let cursor = page["next_cursor"].as_str().unwrap();
    let bad = |query: Vec<(&'static str, String)>| {
        let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        app.admin(Method::GET, &audit_path(&query)).send()
    };
    assert_problem(
        bad(vec![("cursor", cursor.into()), ("actor_id", "x".into())])
            .await
            .unwrap(),
        400,
        "invalid_cursor",
    )
    .await;
    assert_problem(
        bad(vec![("cursor", "garbage".into())]).await.unwrap(),
        400,
        "invalid_cursor",
    )
    .await;
    assert_problem(
        bad(vec![("actor", "x".into())]).await.unwrap(),
        400,
        "invalid_query",
    )
    .await;
    for (k, v) in [
        ("limit", "0"),
        ("limit", "201"),
        ("from", "yesterday"),
        ("to", "2026-13-01T00:00:00Z"),
        ("player_id", "42"),
    ] {
        let body = assert_problem(
            bad(vec![(k, v.into())]).await.unwrap(),
            422,
            "validation_failed",
        )
        .await;
        assert_eq!(body["errors"][0]["field"], k, "{body}");
    }
}

async fn a_patch_that_changes_nothing_records_nothing(app: &TestApp, _: &TestDb, _: Backend) {
    let created = app.create(&player_body(7)).await;
    let id = created["id"].as_str().unwrap();
    let path = format!("/v1/players/{id}");
    // The same values, some only after normalisation: upper-cased country, trimmed name.
    let same = json!({
        "team": created["team"],
        "country": created["country"].as_str().unwrap().to_lowercase(),
        "name": format!("  {}  ", created["name"].as_str().unwrap()),
    });
    for if_match in [None, Some("\"1\"")] {
        let mut req = app
            .as_role("editor", Method::PATCH, &path)
            .header("content-type", "application/merge-patch+json")
            .body(same.to_string());
        if let Some(tag) = if_match {
            req = req.header("if-match", tag);
        }
        let res = req.exchange().await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["etag"], "\"1\"");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body, created, "the player as it was");
    }
    let records = items(app, &[("player_id", id)]).await;
    assert_eq!(records.len(), 1, "only the create: {records:?}");
    assert_eq!(records[0]["action"], "create");

    // A patch that does change something still writes a version and a record.
    let res = app
        .as_role("editor", Method::PATCH, &path)
        .header("content-type", "application/merge-patch+json")
        .body(r#"{"team": "Somewhere Else"}"#)
        .exchange()
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["etag"], "\"2\"");
    assert_eq!(items(app, &[("player_id", id)]).await.len(), 2);
}

macro_rules! audit_tests {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let db = TestDb::new(Backend::Postgres).await;
                    let app = TestApp::spawn(db.store().await).await;
                    super::$name(&app, &db, Backend::Postgres).await;
                }
            )*
        }
        mod sqlite {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let db = TestDb::new(Backend::Sqlite).await;
                    let app = TestApp::spawn(db.store().await).await;
                    super::$name(&app, &db, Backend::Sqlite).await;
                }
            )*
        }
    };
}

audit_tests!(
    create_update_delete_are_recorded,
    failed_writes_record_nothing,
    a_failed_audit_insert_rolls_the_change_back,
    the_listing_is_admin_only,
    filters_and_pages,
    a_patch_that_changes_nothing_records_nothing,
);
