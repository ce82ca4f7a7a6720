//! `/v1/me`, `/v1/admin/routes` and `/logout` through actix with the production authenticator.

use crate::support::identity::*;
use actix_web::{App, http::header, test, web};
use players_api::{
    auth::Authenticator,
    routes::{self, logout::LogoutConfig},
};

async fn call(
    ids: &Identities,
    logout: Option<LogoutConfig>,
    method: actix_web::http::Method,
    path: &str,
    persona: &Persona,
) -> actix_web::dev::ServiceResponse {
    let authenticator: web::Data<dyn Authenticator> =
        web::Data::from(ids.authenticator.clone() as std::sync::Arc<dyn Authenticator>);
    let mut app = App::new()
        .app_data(authenticator)
        .configure(routes::me::configure)
        .configure(routes::admin::configure)
        .configure(routes::logout::configure);
    if let Some(l) = logout {
        app = app.app_data(web::Data::new(l));
    }
    let app = test::init_service(app).await;
    let mut req = test::TestRequest::default().method(method).uri(path);
    for (k, v) in ids.headers(persona) {
        req = req.insert_header((k, v));
    }
    test::call_service(&app, req.to_request()).await
}

#[actix_web::test]
async fn me_shows_the_principal_never_the_token() {
    let ids = Identities::start().await;
    let anon = call(
        &ids,
        None,
        actix_web::http::Method::GET,
        "/v1/me",
        &Persona::Anonymous,
    )
    .await;
    assert_eq!(anon.status(), 401);
    // A user without any group can still ask who they are.
    let nobody = call(
        &ids,
        None,
        actix_web::http::Method::GET,
        "/v1/me",
        &Persona::User("u-0", vec![]),
    )
    .await;
    assert_eq!(nobody.status(), 200);
    let resp = call(
        &ids,
        None,
        actix_web::http::Method::GET,
        "/v1/me",
        &Persona::User("u-1", vec!["players-editor"]),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body = test::read_body(resp).await;
    let text = std::str::from_utf8(&body).unwrap();
    assert!(!text.contains("eyJ"), "no token in {text}");
    let me: serde_json::Value = serde_json::from_str(text).unwrap();
    assert_eq!(me["kind"], "user");
    assert_eq!(me["subject"], "u-1");
    assert_eq!(me["email"], "ada@example.com");
    assert_eq!(me["groups"], serde_json::json!(["players-editor"]));
    assert_eq!(
        me["permissions"],
        serde_json::json!(["players:read", "players:write", "players:delete"])
    );
    let svc = call(
        &ids,
        None,
        actix_web::http::Method::GET,
        "/v1/me",
        &Persona::Service(vec!["players/read"]),
    )
    .await;
    let me: serde_json::Value = test::read_body_json(svc).await;
    assert_eq!(
        (me["kind"].as_str(), me["subject"].as_str()),
        (Some("service"), Some(SERVICE_CLIENT))
    );
    assert_eq!(me["scopes"], serde_json::json!(["players/read"]));
}

#[actix_web::test]
async fn admin_routes_lists_the_enforced_table() {
    let ids = Identities::start().await;
    let get = actix_web::http::Method::GET;
    assert_eq!(
        call(
            &ids,
            None,
            get.clone(),
            "/v1/admin/routes",
            &Persona::Anonymous
        )
        .await
        .status(),
        401
    );
    let editor = call(
        &ids,
        None,
        get.clone(),
        "/v1/admin/routes",
        &Persona::User("e", vec!["players-editor"]),
    )
    .await;
    assert_eq!(editor.status(), 403);
    let problem: serde_json::Value = test::read_body_json(editor).await;
    assert_eq!(problem["code"], "forbidden");
    assert!(problem["detail"].as_str().unwrap().contains("admin"));
    let admin = call(
        &ids,
        None,
        get.clone(),
        "/v1/admin/routes",
        &Persona::User("a", vec!["players-admin"]),
    )
    .await;
    assert_eq!(admin.status(), 200);
    let listed: Vec<serde_json::Value> = test::read_body_json(admin).await;
    assert_eq!(listed.len(), routes::ROUTES.len());
    for (l, r) in listed.iter().zip(routes::ROUTES) {
        assert_eq!(l["method"], r.method.as_str());
        assert_eq!(l["path"], r.path);
        assert_eq!(
            l["permission"],
            serde_json::json!(r.permission.map(|p| p.as_str()))
        );
    }
    let svc = call(
        &ids,
        None,
        get,
        "/v1/admin/routes",
        &Persona::Service(vec!["players/admin"]),
    )
    .await;
    assert_eq!(svc.status(), 200);
}

#[actix_web::test]
async fn logout_expires_every_shard_and_redirects() {
    let ids = Identities::start().await;
    let config = LogoutConfig {
        cookie_name: "MySession".into(),
        logout_url: Some("https://auth.example.com/logout?client_id=abc&logout_uri=https%3A%2F%2Fplayers.example.com%2Fbye".into()),
    };
    let resp = call(
        &ids,
        Some(config.clone()),
        actix_web::http::Method::GET,
        "/logout",
        &Persona::Anonymous,
    )
    .await;
    assert_eq!(resp.status(), 302);
    assert_eq!(
        resp.headers().get(header::LOCATION).unwrap(),
        config.logout_url.as_deref().unwrap()
    );
    let cookies: Vec<String> = resp
        .headers()
        .get_all(header::SET_COOKIE)
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(cookies.len(), 4, "{cookies:?}");
    for (i, c) in cookies.iter().enumerate() {
        assert!(c.starts_with(&format!("MySession-{i}=;")), "{c}");
        assert!(c.contains("Expires=Thu, 01 Jan 1970 00:00:00 GMT"), "{c}");
        assert!(c.contains("Max-Age=0") && c.contains("Path=/"), "{c}");
    }
    // Default cookie name, no IdP logout URL configured: still public, still expires shards.
    let resp = call(
        &ids,
        None,
        actix_web::http::Method::GET,
        "/logout",
        &Persona::Anonymous,
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get_all(header::SET_COOKIE).any(|c| {
        c.to_str()
            .unwrap()
            .starts_with("AWSELBAuthSessionCookie-3=;")
    }));
}
