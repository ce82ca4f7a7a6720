//! The OpenAPI document is the route table: same routes, each really served, each protected
//! route declaring its security and every error response documented as problem+json.
//! (`./scripts/test.sh` also validates the document with openapi-spec-validator.)

use std::collections::BTreeSet;

use crate::support::app::TestApp;
use crate::support::db::TestDb;
use players_api::routes::{ROUTES, docs::ApiDoc};
use serde_json::Value;
use utoipa::OpenApi;

const METHODS: &[&str] = &["get", "post", "put", "patch", "delete", "head", "options"];

fn spec() -> Value {
    serde_json::to_value(ApiDoc::openapi()).unwrap()
}

fn operations(spec: &Value) -> Vec<(String, String, Value)> {
    let mut ops = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if METHODS.contains(&method.as_str()) {
                ops.push((method.to_uppercase(), path.clone(), op.clone()));
            }
        }
    }
    ops
}

#[test]
fn spec_is_openapi_3_1_with_both_security_schemes() {
    let spec = spec();
    assert!(
        spec["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        spec["openapi"]
    );
    let schemes = &spec["components"]["securitySchemes"];
    assert_eq!(schemes["alb"]["type"], "apiKey");
    assert_eq!(schemes["alb"]["in"], "header");
    assert_eq!(schemes["alb"]["name"], "x-amzn-oidc-data");
    assert_eq!(schemes["bearer"]["type"], "http");
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
}

#[test]
fn spec_and_route_table_name_the_same_routes() {
    let in_spec: BTreeSet<(String, String)> = operations(&spec())
        .into_iter()
        .map(|(m, p, _)| (m, p))
        .collect();
    let in_table: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.as_str().to_owned(), r.path.to_owned()))
        .collect();
    assert_eq!(in_spec, in_table);
}

#[test]
fn protected_routes_declare_security_and_errors_are_problems() {
    let spec = spec();
    for (method, path, op) in operations(&spec) {
        let route = ROUTES
            .iter()
            .find(|r| r.method.as_str() == method && r.path == path)
            .unwrap();
        // `[{}]` is OpenAPI's explicit "no authentication".
        let has_security = op["security"].as_array().is_some_and(|s| {
            s.iter()
                .any(|req| req.as_object().is_some_and(|o| !o.is_empty()))
        });
        assert_eq!(has_security, !route.public, "{method} {path}");
        if !route.public {
            for status in ["401", "403", "500"] {
                assert!(
                    op["responses"][status].is_object(),
                    "{method} {path} documents {status}"
                );
            }
        }
        for (status, response) in op["responses"].as_object().unwrap() {
            if status.starts_with('4') || status.starts_with('5') {
                assert!(
                    response["content"]["application/problem+json"].is_object(),
                    "{method} {path} {status} is documented as problem+json"
                );
            }
        }
    }
    let input = &spec["components"]["schemas"]["PlayerInput"];
    assert_eq!(
        input["additionalProperties"], false,
        "unknown fields are rejected"
    );
    assert_eq!(input["properties"]["name"]["maxLength"], 100);
    assert_eq!(input["properties"]["club_number"]["maximum"], 99);
}

/// Every route of the table is answered by the router (not a routing 404 or a 405).
#[tokio::test]
async fn the_router_serves_every_route_of_the_table() {
    let db = TestDb::sqlite();
    let app = TestApp::spawn(db.store().await).await;
    let id = uuid::Uuid::now_v7().to_string();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for route in ROUTES {
        let path = route.path.replace("{id}", &id);
        let res = client
            .request(route.method.as_str().parse().unwrap(), app.url(&path))
            .header("x-test-role", "admin")
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        assert_ne!(body["code"], "route_not_found", "{} {path}", route.method);
        assert_ne!(status, 405, "{} {path}", route.method);
    }
}
