//! End-to-end tests through the real HTTP server (port 0) on both database backends.

use std::collections::HashSet;

use crate::support::app::{Exchange, TestApp, assert_problem, player_body};
use crate::support::db::{Backend, TestDb};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn crud_cycle(app: &TestApp) {
    // Create.
    let res = app
        .admin(Method::POST, "/v1/players")
        .json(
            &json!({"name": " Kevin De Bruyne ", "date_of_birth": "1991-06-28",
                      "country": "bel", "team": "Napoli", "position": "midfielder",
                      "club_number": 11, "national_team_number": 7}),
        )
        .exchange()
        .await;
    assert_eq!(res.status(), 201);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let etag = res.headers()["etag"].to_str().unwrap().to_owned();
    let created: Value = res.json().await.unwrap();
    let id = created["id"].as_str().unwrap();
    assert_eq!(location, format!("/v1/players/{id}"));
    assert_eq!(etag, "\"1\"");
    assert_eq!(created["name"], "Kevin De Bruyne");
    assert_eq!(created["country"], "BEL");
    assert_eq!(created["created_by"], "user:test-admin");

    // Read.
    let res = app.admin(Method::GET, &location).exchange().await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["etag"], etag.as_str());
    assert_eq!(res.json::<Value>().await.unwrap(), created);

    // Patch (merge patch): change one field, remove an optional one.
    let res = app
        .as_role("editor", Method::PATCH, &location)
        .header("content-type", "application/merge-patch+json")
        .header("if-match", &etag)
        .body(r#"{"team": "Manchester City", "national_team_number": null}"#)
        .exchange()
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["etag"], "\"2\"");
    let updated: Value = res.json().await.unwrap();
    assert_eq!(updated["team"], "Manchester City");
    assert_eq!(updated["national_team_number"], Value::Null);
    assert_eq!(updated["name"], "Kevin De Bruyne");
    assert_eq!(updated["version"], 2);
    assert_eq!(updated["updated_by"], "user:test-editor");
    assert_eq!(updated["created_by"], "user:test-admin");
    assert_eq!(updated["created_at"], created["created_at"]);

    // Delete.
    let res = app
        .admin(Method::DELETE, &location)
        .header("if-match", "\"2\"")
        .exchange()
        .await;
    assert_eq!(res.status(), 204);
    let res = app.admin(Method::GET, &location).exchange().await;
    assert_problem(res, 404, "not_found").await;
    let res = app.admin(Method::DELETE, &location).exchange().await;
    assert_problem(res, 404, "not_found").await;
}

async fn etags_and_preconditions(app: &TestApp) {
    let p = app.create(&player_body(1)).await;
    let path = format!("/v1/players/{}", p["id"].as_str().unwrap());
    let res = app
        .admin(Method::GET, &path)
        .header("if-none-match", "\"1\"")
        .exchange()
        .await;
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(res.headers()["etag"], "\"1\"");
    let res = app
        .admin(Method::GET, &path)
        .header("if-none-match", "\"0\"")
        .exchange()
        .await;
    assert_eq!(res.status(), 200);
    let res = app
        .admin(Method::GET, &path)
        .header("if-none-match", "*")
        .exchange()
        .await;
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);

    let patch = |etag: &'static str| {
        app.admin(Method::PATCH, &path)
            .header("content-type", "application/json")
            .header("if-match", etag)
            .body(r#"{"name": "Renamed"}"#)
    };
    assert_eq!(patch("\"1\"").exchange().await.status(), 200);
    // The same precondition again is now stale, and nothing changes.
    assert_problem(patch("\"1\"").exchange().await, 412, "precondition_failed").await;
    // The precondition is evaluated before the content (RFC 9110, 13.2.2): an invalid patch
    // with another version's tag is a 412, the same patch with the current one a 422.
    let invalid = |etag: &'static str| {
        app.admin(Method::PATCH, &path)
            .header("content-type", "application/json")
            .header("if-match", etag)
            .body(r#"{"position": "__not_in_enum__"}"#)
    };
    assert_problem(
        invalid("\"1\"").exchange().await,
        412,
        "precondition_failed",
    )
    .await;
    assert_problem(invalid("\"2\"").exchange().await, 422, "validation_failed").await;
    let res = app
        .admin(Method::DELETE, &path)
        .header("if-match", "\"1\"")
        .exchange()
        .await;
    assert_problem(res, 412, "precondition_failed").await;
    let now: Value = app
        .admin(Method::GET, &path)
        .exchange()
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(now["version"], 2);
    assert_eq!(now["name"], "Renamed");
}

async fn club_number_conflicts(app: &TestApp) {
    app.create(
        &json!({"name": "A", "date_of_birth": "2000-01-01", "country": "ENG",
                       "team": "Arsenal", "position": "forward", "club_number": 7}),
    )
    .await;
    let res = app
        .admin(Method::POST, "/v1/players")
        .json(
            &json!({"name": "B", "date_of_birth": "2000-01-01", "country": "ENG",
                      "team": "Arsenal", "position": "forward", "club_number": 7}),
        )
        .exchange()
        .await;
    assert_problem(res, 409, "club_number_taken").await;
    let b = app
        .create(
            &json!({"name": "B", "date_of_birth": "2000-01-01", "country": "ENG",
                               "team": "Arsenal", "position": "forward", "club_number": 8}),
        )
        .await;
    let res = app
        .admin(
            Method::PATCH,
            &format!("/v1/players/{}", b["id"].as_str().unwrap()),
        )
        .header("content-type", "application/merge-patch+json")
        .body(r#"{"club_number": 7}"#)
        .exchange()
        .await;
    assert_problem(res, 409, "club_number_taken").await;
}

async fn idempotent_retries(app: &TestApp) {
    let body = player_body(5);
    let post = |key: &'static str, body: &Value| {
        app.admin(Method::POST, "/v1/players")
            .header("idempotency-key", key)
            .json(body)
    };
    let first = post("retry-1", &body).exchange().await;
    assert_eq!(first.status(), 201);
    let first_location = first.headers()["location"].clone();
    let first_body: Value = first.json().await.unwrap();
    // The same request again (members reordered): the original response, nothing created.
    let reordered: Value = serde_json::from_str(&format!(
        r#"{{"position":"midfielder","team":{},"country":"eng","date_of_birth":"1995-06-15","name":{},"club_number":{}}}"#,
        body["team"], body["name"], body["club_number"]
    ))
    .unwrap();
    let again = post("retry-1", &reordered).exchange().await;
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["location"], first_location);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap(), first_body);
    let list: Value = app
        .admin(Method::GET, "/v1/players")
        .exchange()
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    // Same key, different body.
    let res = post("retry-1", &player_body(6)).exchange().await;
    assert_problem(res, 409, "idempotency_key_reused").await;
    let res = post("", &player_body(6)).exchange().await;
    assert_problem(res, 400, "invalid_idempotency_key").await;
}

/// Every page of a listing, following `next_cursor`.
async fn all_pages(app: &TestApp, query: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut url = format!("/v1/players?{query}");
    loop {
        let res = app.admin(Method::GET, &url).exchange().await;
        assert_eq!(res.status(), 200, "{url}");
        let page: Value = res.json().await.unwrap();
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => url = format!("/v1/players?{query}&cursor={c}"),
            None => return items,
        }
    }
}

async fn pagination_is_stable_under_concurrent_inserts(app: &TestApp) {
    let mut seeded = HashSet::new();
    for n in 0..500 {
        let p = app.create(&player_body(n)).await;
        seeded.insert(p["id"].as_str().unwrap().to_owned());
    }
    for sort in ["created_at", "-created_at", "name", "-name"] {
        let writer = {
            let client = app.client.clone();
            let url = app.url("/v1/players");
            let sort = sort.to_owned();
            tokio::spawn(async move {
                for n in 0..60 {
                    let mut body = player_body(10_000 + n);
                    body["team"] = json!(format!("Concurrent {sort}"));
                    body["club_number"] = json!(n + 1);
                    let res = client
                        .post(&url)
                        .header("x-test-role", "admin")
                        .json(&body)
                        .exchange()
                        .await;
                    assert_eq!(res.status(), 201);
                }
            })
        };
        let items = all_pages(app, &format!("limit=37&sort={sort}")).await;
        writer.await.unwrap();
        let ids: Vec<_> = items
            .iter()
            .map(|p| p["id"].as_str().unwrap().to_owned())
            .collect();
        let unique: HashSet<_> = ids.iter().cloned().collect();
        assert_eq!(unique.len(), ids.len(), "duplicates with sort={sort}");
        assert!(seeded.is_subset(&unique), "gaps with sort={sort}");
        // Timestamps are compared as instants (their text drops trailing zeros).
        let keys: Vec<(String, String)> = items
            .iter()
            .map(|p| {
                let raw = p[sort.trim_start_matches('-')].as_str().unwrap();
                let key = match chrono::DateTime::parse_from_rfc3339(raw) {
                    Ok(t) => format!("{:020}", t.timestamp_micros()),
                    Err(_) => raw.to_owned(),
                };
                (key, p["id"].as_str().unwrap().to_owned())
            })
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        if sort.starts_with('-') {
            sorted.reverse();
        }
        assert!(keys == sorted, "order for sort={sort}");
    }
}

async fn filters_and_sorts(app: &TestApp) {
    let players = [
        (
            "Zinedine Zidane",
            "1972-06-23",
            "fra",
            "Juventus",
            "midfielder",
        ),
        (
            "Gianluigi Buffon",
            "1978-01-28",
            "ITA",
            "Juventus",
            "goalkeeper",
        ),
        ("Thierry Henry", "1977-08-17", "FRA", "Arsenal", "forward"),
        (
            "Patrick Vieira",
            "1976-06-23",
            "Fra",
            "Arsenal",
            "midfielder",
        ),
    ];
    for (name, dob, country, team, position) in players {
        app.create(
            &json!({"name": name, "date_of_birth": dob, "country": country,
                           "team": team, "position": position}),
        )
        .await;
    }
    let names = |items: Vec<Value>| -> Vec<String> {
        items
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        names(all_pages(app, "team=Juventus&sort=name").await),
        ["Gianluigi Buffon", "Zinedine Zidane"]
    );
    assert_eq!(
        names(all_pages(app, "country=fra&sort=-name").await),
        ["Zinedine Zidane", "Thierry Henry", "Patrick Vieira"]
    );
    assert_eq!(
        names(all_pages(app, "position=midfielder&sort=date_of_birth").await),
        ["Zinedine Zidane", "Patrick Vieira"]
    );
    assert_eq!(names(all_pages(app, "name=HENRY").await), ["Thierry Henry"]);
    assert_eq!(
        names(all_pages(app, "sort=-date_of_birth&limit=1").await),
        [
            "Gianluigi Buffon",
            "Thierry Henry",
            "Patrick Vieira",
            "Zinedine Zidane"
        ]
    );
    assert_eq!(
        names(all_pages(app, "sort=created_at").await),
        [
            "Zinedine Zidane",
            "Gianluigi Buffon",
            "Thierry Henry",
            "Patrick Vieira"
        ]
    );
    assert_eq!(
        names(all_pages(app, "team=Arsenal&country=FRA&position=forward&name=thi").await),
        ["Thierry Henry"]
    );

    let get = |q: &str| app.admin(Method::GET, &format!("/v1/players?{q}")).send();
    for (q, code) in [
        ("limit=0", "validation_failed"),
        ("limit=201", "validation_failed"),
        ("sort=team", "validation_failed"),
        ("country=XYZ", "validation_failed"),
        ("name=", "validation_failed"),
    ] {
        let body = assert_problem(get(q).await.unwrap(), 422, code).await;
        assert!(
            body["errors"].as_array().is_some_and(|e| !e.is_empty()),
            "{q}: {body}"
        );
    }
    for q in ["limit=abc", "position=striker", "colour=red"] {
        assert_problem(get(q).await.unwrap(), 400, "invalid_query").await;
    }
    let page: Value = get("limit=1&sort=name")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cursor = page["next_cursor"].as_str().unwrap();
    assert_problem(
        get(&format!("limit=1&sort=-name&cursor={cursor}"))
            .await
            .unwrap(),
        400,
        "invalid_cursor",
    )
    .await;
    assert_problem(
        get(&format!("limit=1&sort=name&team=Arsenal&cursor={cursor}"))
            .await
            .unwrap(),
        400,
        "invalid_cursor",
    )
    .await;
    assert_problem(get("cursor=garbage").await.unwrap(), 400, "invalid_cursor").await;
}

async fn error_classes_render_as_problems(app: &TestApp) {
    let post = || app.admin(Method::POST, "/v1/players");
    // Malformed JSON.
    let res = post()
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .exchange()
        .await;
    assert_problem(res, 400, "malformed_json").await;
    // Wrong or missing content type.
    let res = post()
        .header("content-type", "text/plain")
        .body("{}")
        .exchange()
        .await;
    assert_problem(res, 415, "unsupported_media_type").await;
    let res = post().body("{}").exchange().await;
    assert_problem(res, 415, "unsupported_media_type").await;
    let res = app
        .admin(
            Method::PATCH,
            &format!("/v1/players/{}", uuid::Uuid::now_v7()),
        )
        .header("content-type", "text/plain")
        .body("{}")
        .exchange()
        .await;
    assert_problem(res, 415, "unsupported_media_type").await;
    // Too large, declared or streamed.
    let big = format!("{{\"name\": \"{}\"}}", "x".repeat(70 * 1024));
    let res = post()
        .header("content-type", "application/json")
        .body(big.clone())
        .exchange()
        .await;
    assert_problem(res, 413, "payload_too_large").await;
    // Without a Content-Length (chunked), the cap applies while reading.
    let status = chunked_post(app, big.as_bytes()).await;
    assert!(status.starts_with("HTTP/1.1 413"), "{status}");
    // Invalid fields, each reported.
    let res = post()
        .json(
            &json!({"name": "", "date_of_birth": "2999-01-01", "country": "GBR", "team": "T",
                      "position": "forward", "club_number": 100}),
        )
        .exchange()
        .await;
    let body = assert_problem(res, 422, "validation_failed").await;
    let mut fields: Vec<_> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["field"].as_str().unwrap().to_owned(),
                e["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    fields.sort();
    assert_eq!(
        fields,
        [
            ("club_number".into(), "out_of_range".into()),
            ("country".into(), "invalid_country".into()),
            ("date_of_birth".into(), "in_future".into()),
            ("name".into(), "empty".into())
        ]
    );
    // Unknown fields are rejected, on create and on patch.
    let mut with_extra = player_body(1);
    with_extra["shoe_size"] = json!(44);
    let body = assert_problem(
        post().json(&with_extra).exchange().await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "shoe_size");
    assert_eq!(body["errors"][0]["code"], "unknown_field");
    let p = app.create(&player_body(2)).await;
    let path = format!("/v1/players/{}", p["id"].as_str().unwrap());
    let patch = |body: &'static str| {
        app.admin(Method::PATCH, &path)
            .header("content-type", "application/merge-patch+json")
            .body(body)
    };
    let body = assert_problem(
        patch(r#"{"shoe_size": 44}"#).exchange().await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(body["errors"][0]["code"], "unknown_field");
    // Set to null, an unknown member would be dropped by the merge itself: it is refused too.
    for unknown in [r#"{"shoe_size": null}"#, r#"{"": null}"#] {
        let body = assert_problem(patch(unknown).exchange().await, 422, "validation_failed").await;
        assert_eq!(body["errors"][0]["code"], "unknown_field", "{unknown}");
    }
    for read_only in [
        r#"{"id": "x"}"#,
        r#"{"created_at": "2020-01-01T00:00:00Z"}"#,
        r#"{"version": 9}"#,
    ] {
        let body =
            assert_problem(patch(read_only).exchange().await, 422, "validation_failed").await;
        assert_eq!(body["errors"][0]["code"], "read_only", "{read_only}");
    }
    let body = assert_problem(
        patch(r#"{"name": null}"#).exchange().await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(body["errors"][0]["code"], "required");
    assert_problem(
        patch(r#"{"country": "XXX"}"#).exchange().await,
        422,
        "validation_failed",
    )
    .await;
    assert_problem(patch("[1]").exchange().await, 422, "validation_failed").await;
    // Nothing stored was lost by any of the refused requests.
    let now: Value = app
        .admin(Method::GET, &path)
        .exchange()
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(now, p);
    // Bad ids in the path, unknown routes, wrong methods.
    let res = app
        .admin(Method::GET, "/v1/players/not-a-uuid")
        .exchange()
        .await;
    assert_problem(res, 404, "not_found").await;
    let res = app.admin(Method::GET, "/v1/nothing-here").exchange().await;
    assert_problem(res, 404, "route_not_found").await;
    // 405 names the methods the path has (RFC 9110 requires `Allow`), on every kind of path:
    // a resource with several methods, a single-method one, a public one, a page.
    for (method, path, allow) in [
        (Method::PUT, "/v1/players", "GET, POST"),
        (
            Method::TRACE,
            "/v1/players/0190a3b4-0000-7000-8000-000000000000",
            "GET, PATCH, DELETE",
        ),
        (Method::POST, "/v1/me", "GET"),
        (Method::TRACE, "/logout", "GET"),
        (Method::DELETE, "/ready", "GET"),
        (Method::POST, "/index.html", "GET"),
    ] {
        let res = app.admin(method.clone(), path).exchange().await;
        assert_eq!(res.headers()["allow"], allow, "{method} {path}");
        assert_problem(res, 405, "method_not_allowed").await;
    }
}

async fn identity_seam_is_enforced(app: &TestApp) {
    let anonymous = app.client.get(app.url("/v1/players")).exchange().await;
    assert_eq!(anonymous.headers()["www-authenticate"], "Bearer");
    assert_problem(anonymous, 401, "unauthenticated").await;
    let res = app
        .as_role("forged", Method::GET, "/v1/players")
        .exchange()
        .await;
    assert_problem(res, 401, "invalid_token").await;
    let res = app
        .as_role("nobody", Method::GET, "/v1/players")
        .exchange()
        .await;
    let body = assert_problem(res, 403, "forbidden").await;
    assert!(body["detail"].as_str().unwrap().contains("players:read"));
    let res = app
        .as_role("viewer", Method::POST, "/v1/players")
        .json(&player_body(1))
        .exchange()
        .await;
    let body = assert_problem(res, 403, "forbidden").await;
    assert!(body["detail"].as_str().unwrap().contains("players:write"));
    // Authorization comes before validation: a viewer learns nothing about the body.
    let res = app
        .as_role("viewer", Method::POST, "/v1/players")
        .body("{")
        .exchange()
        .await;
    assert_problem(res, 403, "forbidden").await;
    // Public routes need no identity.
    for path in ["/health", "/ready", "/openapi.json"] {
        let res = app.client.get(app.url(path)).exchange().await;
        assert_eq!(res.status(), 200, "{path}");
    }
}

async fn request_ids_are_generated_not_taken_from_the_client(app: &TestApp) {
    let res = app
        .admin(Method::GET, "/v1/players/nope")
        .header("x-request-id", "abc-123")
        .exchange()
        .await;
    let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["request_id"], id.as_str());
    // An unsafe incoming id is not reflected either.
    let res = app
        .admin(Method::GET, "/health")
        .header("x-request-id", "a b<c>")
        .exchange()
        .await;
    let id = res.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
}

/// Sends a chunked POST over a raw connection and returns the status line.
async fn chunked_post(app: &TestApp, body: &[u8]) -> String {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let addr = app.base.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /v1/players HTTP/1.1\r\nhost: {addr}\r\nx-test-role: admin\r\n\
         content-type: application/json\r\ntransfer-encoding: chunked\r\n\
         connection: close\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    for chunk in body.chunks(4096) {
        let sent = conn
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await
            .and(conn.write_all(chunk).await)
            .and(conn.write_all(b"\r\n").await);
        if sent.is_err() {
            break; // the server may answer and close before the whole body is sent
        }
    }
    let _ = conn.write_all(b"0\r\n\r\n").await;
    let mut line = String::new();
    BufReader::new(conn).read_line(&mut line).await.unwrap();
    line
}

macro_rules! e2e {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let db = TestDb::new(Backend::Postgres).await;
                    let app = TestApp::spawn(db.store().await).await;
                    super::$name(&app).await;
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
                    super::$name(&app).await;
                }
            )*
        }
    };
}

e2e!(
    crud_cycle,
    etags_and_preconditions,
    club_number_conflicts,
    idempotent_retries,
    pagination_is_stable_under_concurrent_inserts,
    filters_and_sorts,
    error_classes_render_as_problems,
    identity_seam_is_enforced,
    request_ids_are_generated_not_taken_from_the_client,
);

/// `/ready` follows the database: 503 while it is unreachable, 200 again once it returns,
/// without restarting the service. Liveness never depends on it.
#[tokio::test]
async fn readiness_follows_the_database() {
    let db = TestDb::new(Backend::Postgres).await;
    let (store, proxy) = crate::support::db::postgres_behind_proxy(&db).await;
    let app = TestApp::spawn(store).await;
    let ready = || app.client.get(app.url("/ready")).send();
    assert_eq!(ready().await.unwrap().status(), 200);
    proxy.disable();
    assert_problem(ready().await.unwrap(), 503, "not_ready").await;
    assert_eq!(
        app.client.get(app.url("/health")).exchange().await.status(),
        200
    );
    // Requests needing the database fail cleanly meanwhile: 503, which a client may retry.
    let body = app.admin(Method::GET, "/v1/players").json_with(503).await;
    assert_eq!(body["code"], "not_ready");
    assert!(
        !body["detail"].as_str().unwrap().contains("select"),
        "no SQL leaks: {body}"
    );
    proxy.enable();
    // The pool reconnects on demand; poll with a deadline rather than sleep.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if ready().await.unwrap().status() == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "/ready did not recover"
        );
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn readiness_is_off_when_shutting_down() {
    let db = TestDb::sqlite();
    let app = TestApp::spawn(db.store().await).await;
    assert_eq!(
        app.client.get(app.url("/ready")).exchange().await.status(),
        200
    );
    app.shutdown.trip();
    assert_problem(
        app.client.get(app.url("/ready")).exchange().await,
        503,
        "not_ready",
    )
    .await;
}
