//! The local ALB stand-in end to end: a real `LocalAlb` on port 0 in front of a tiny echo
//! server that reports back the request it received.

use std::collections::BTreeMap;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, dev::ServerHandle, web};
use base64::{Engine, engine::general_purpose::URL_SAFE};
use p256::{
    ecdsa::{Signature, VerifyingKey, signature::Verifier},
    pkcs8::DecodePublicKey,
};
use players_api::local_alb::{self, LocalAlb, LocalAlbConfig, TokenArgs};
use reqwest::{StatusCode, header};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

const ADMIN_SUB: &str = "a0000000-0000-4000-8000-000000000001";

async fn echo(req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in req.headers() {
        headers
            .entry(k.as_str().to_owned())
            .or_default()
            .push(String::from_utf8_lossy(v.as_bytes()).into_owned());
    }
    HttpResponse::Ok()
        .insert_header(("x-echo", "1"))
        .json(json!({
            "method": req.method().as_str(),
            "path": req.path(),
            "query": req.query_string(),
            "headers": headers,
            "body": String::from_utf8_lossy(&body),
        }))
}

/// What the API's `GET /logout` does: expire every cookie shard, redirect to the IdP logout.
fn api_logout(logout_url: &str) -> HttpResponse {
    let mut resp = HttpResponse::Found();
    resp.insert_header(("location", logout_url));
    for i in 0..4 {
        resp.append_header((
            "set-cookie",
            format!("AWSELBAuthSessionCookie-{i}=; Path=/; Max-Age=0; HttpOnly"),
        ));
    }
    resp.finish()
}

struct Stand {
    alb: LocalAlb,
    echo: ServerHandle,
    http: reqwest::Client,
}

impl Stand {
    async fn start() -> Stand {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let echo_port = listener.local_addr().unwrap().port();
        // The IdP logout URL is only known once the local ALB is up; the echo server reads it late.
        let logout_url_slot = std::sync::Arc::new(std::sync::OnceLock::<String>::new());
        let slot = logout_url_slot.clone();
        let server = HttpServer::new(move || {
            let slot = slot.clone();
            App::new()
                .route(
                    "/logout",
                    web::get().to(move || {
                        let resp = api_logout(slot.get().map_or("", String::as_str));
                        async move { resp }
                    }),
                )
                .default_service(web::to(echo))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        let echo = server.handle();
        tokio::spawn(server);
        let alb = local_alb::start(LocalAlbConfig {
            port: 0,
            upstream: format!("http://127.0.0.1:{echo_port}"),
            ..Default::default()
        })
        .await
        .unwrap();
        logout_url_slot.set(alb.logout_url()).unwrap();
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Stand { alb, echo, http }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.alb.base_url())
    }

    /// Logs in through the form; returns the `Cookie` header value to send afterwards.
    async fn login(&self, form: &str) -> String {
        let resp = self
            .http
            .post(self.url("/login"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form.to_owned())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        let set_cookie = resp.headers()[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .to_owned();
        set_cookie.split(';').next().unwrap().to_owned()
    }

    /// Sends `req` through the proxy and returns what the echo server saw.
    async fn echoed(&self, req: reqwest::RequestBuilder) -> Value {
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["x-echo"], "1");
        resp.json().await.unwrap()
    }

    async fn stop(self) {
        self.alb.stop().await;
        self.echo.stop(true).await;
    }
}

fn header<'a>(echoed: &'a Value, name: &str) -> Option<&'a str> {
    echoed["headers"][name][0].as_str()
}

fn oidc_headers(echoed: &Value) -> Vec<String> {
    echoed["headers"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.starts_with("x-amzn-oidc-"))
        .cloned()
        .collect()
}

fn spoofed(req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    req.header("x-amzn-oidc-data", "forged.forged.forged")
        .header("x-amzn-oidc-identity", "intruder")
        .header("x-amzn-oidc-accesstoken", "forged")
        .header("x-amzn-oidc-extra", "forged")
}

async fn jwks_claims(stand: &Stand, token: &str) -> Value {
    let jwks: jsonwebtoken::jwk::JwkSet = stand
        .http
        .get(stand.alb.jwks_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    let jwk = jwks.find(header.kid.as_deref().unwrap()).unwrap();
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    // Cognito access tokens carry no `aud`.
    validation.validate_aud = false;
    validation.set_issuer(&[stand.alb.issuer_url()]);
    validation.set_required_spec_claims(&["exp", "iss"]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap()
        .claims
}

#[tokio::test]
async fn minted_user_claims_have_the_alb_shape_and_verify_against_the_key_endpoint() {
    let stand = Stand::start().await;
    let cookie = stand.login("user=admin").await;
    let echoed = stand
        .echoed(
            stand
                .http
                .get(stand.url("/v1/me"))
                .header(header::COOKIE, &cookie),
        )
        .await;
    let token = header(&echoed, "x-amzn-oidc-data").unwrap();

    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let h: Value = serde_json::from_slice(&URL_SAFE.decode(parts[0]).unwrap()).unwrap();
    let p: Value = serde_json::from_slice(&URL_SAFE.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(h["typ"], "JWT");
    assert_eq!(h["alg"], "ES256");
    let kid = h["kid"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(kid).is_ok());
    assert_eq!(kid, stand.alb.alb_kid());
    assert_eq!(h["signer"], stand.alb.signer_arn());
    assert_eq!(h["iss"], stand.alb.alb_issuer());
    assert_eq!(h["client"], stand.alb.alb_client_id());
    let exp = h["exp"].as_i64().unwrap();
    let now = chrono::Utc::now().timestamp();
    assert!(exp > now && exp <= now + 180, "short expiry");
    assert_eq!(p["exp"], exp);
    assert_eq!(p["iss"], stand.alb.alb_issuer());
    assert_eq!(p["sub"], ADMIN_SUB);
    assert_eq!(p["email"], "admin@players.local");
    assert_eq!(p["username"], "admin");
    assert_eq!(p["name"], "Ada Admin");
    assert_eq!(p["email_verified"], "true");

    // Padded like the ALB: the 64-byte signature always ends in `=`.
    assert!(parts[2].ends_with('='));
    let sig = URL_SAFE.decode(parts[2]).unwrap();
    assert_eq!(sig.len(), 64);

    // The key as the API would fetch it: `GET {endpoint}/{kid}`, PEM SPKI.
    let pem = stand
        .http
        .get(format!("{}/{kid}", stand.alb.key_endpoint()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"));
    let key = VerifyingKey::from_public_key_pem(&pem).unwrap();
    let sig = Signature::from_slice(&sig).unwrap();
    let signed = &token[..token.rfind('.').unwrap()];
    key.verify(signed.as_bytes(), &sig).unwrap();

    assert_eq!(header(&echoed, "x-amzn-oidc-identity"), Some(ADMIN_SUB));
    stand.stop().await;
}

#[tokio::test]
async fn key_endpoint_answers_404_for_an_unknown_kid() {
    let stand = Stand::start().await;
    let resp = stand
        .http
        .get(format!(
            "{}/{}",
            stand.alb.key_endpoint(),
            uuid::Uuid::new_v4()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    stand.stop().await;
}

#[tokio::test]
async fn access_token_for_a_session_is_cognito_shaped_and_carries_the_groups() {
    let stand = Stand::start().await;
    let cookie = stand.login("user=editor").await;
    let echoed = stand
        .echoed(
            stand
                .http
                .get(stand.url("/v1/players"))
                .header(header::COOKIE, &cookie),
        )
        .await;
    let claims = jwks_claims(&stand, header(&echoed, "x-amzn-oidc-accesstoken").unwrap()).await;
    assert_eq!(claims["cognito:groups"], json!(["players-editor"]));
    assert_eq!(claims["token_use"], "access");
    assert_eq!(claims["client_id"], stand.alb.alb_client_id());
    assert_eq!(claims["scope"], "openid email");
    assert_eq!(claims["username"], "editor");
    assert_eq!(claims["iss"], stand.alb.issuer_url());
    assert!(claims["iat"].is_i64() && claims["exp"].is_i64());
    stand.stop().await;
}

#[tokio::test]
async fn ticked_groups_replace_the_users_own() {
    let stand = Stand::start().await;
    let cookie = stand
        .login(
            "user=viewer&override_groups=1&group=players-editor&group=players-admin&group=made-up",
        )
        .await;
    let echoed = stand
        .echoed(
            stand
                .http
                .get(stand.url("/v1/players"))
                .header(header::COOKIE, &cookie),
        )
        .await;
    let claims = jwks_claims(&stand, header(&echoed, "x-amzn-oidc-accesstoken").unwrap()).await;
    // In the page's order, and only groups the page offered.
    assert_eq!(
        claims["cognito:groups"],
        json!(["players-admin", "players-editor"])
    );

    let cookie = stand.login("user=viewer&override_groups=1").await;
    let echoed = stand
        .echoed(
            stand
                .http
                .get(stand.url("/v1/players"))
                .header(header::COOKIE, &cookie),
        )
        .await;
    let claims = jwks_claims(&stand, header(&echoed, "x-amzn-oidc-accesstoken").unwrap()).await;
    assert!(claims.get("cognito:groups").is_none());
    stand.stop().await;
}

#[tokio::test]
async fn proxy_replaces_spoofed_oidc_headers_for_a_session() {
    let stand = Stand::start().await;
    let cookie = stand.login("user=admin").await;
    let echoed = stand
        .echoed(spoofed(
            stand
                .http
                .post(stand.url("/v1/players?team=7&x=%20y"))
                .header(header::COOKIE, &cookie)
                .header(header::CONTENT_TYPE, "application/json")
                .header("x-forwarded-for", "203.0.113.9")
                .body(r#"{"name":"Pelé"}"#),
        ))
        .await;
    let mut names = oidc_headers(&echoed);
    names.sort();
    assert_eq!(
        names,
        [
            "x-amzn-oidc-accesstoken",
            "x-amzn-oidc-data",
            "x-amzn-oidc-identity"
        ]
    );
    for name in &names {
        assert_eq!(
            echoed["headers"][name].as_array().unwrap().len(),
            1,
            "{name} once"
        );
    }
    assert_ne!(
        header(&echoed, "x-amzn-oidc-data"),
        Some("forged.forged.forged")
    );
    assert_eq!(header(&echoed, "x-amzn-oidc-identity"), Some(ADMIN_SUB));

    // Method, path, query and body arrive unchanged.
    assert_eq!(echoed["method"], "POST");
    assert_eq!(echoed["path"], "/v1/players");
    assert_eq!(echoed["query"], "team=7&x=%20y");
    assert_eq!(echoed["body"], r#"{"name":"Pelé"}"#);
    assert_eq!(header(&echoed, "content-type"), Some("application/json"));

    // What the ALB adds.
    assert_eq!(
        header(&echoed, "x-forwarded-for"),
        Some("203.0.113.9, 127.0.0.1")
    );
    assert_eq!(header(&echoed, "x-forwarded-proto"), Some("http"));
    let trace = header(&echoed, "x-amzn-trace-id").unwrap();
    let (epoch, random) = trace
        .strip_prefix("Root=1-")
        .unwrap()
        .split_once('-')
        .unwrap();
    assert_eq!((epoch.len(), random.len()), (8, 24));
    // The browser's Host reaches the API, as through the ALB.
    assert_eq!(
        header(&echoed, "host"),
        Some(&stand.url("")["http://".len()..])
    );
    stand.stop().await;
}

#[tokio::test]
async fn unauthenticated_browser_requests_are_sent_to_the_login_page() {
    let stand = Stand::start().await;
    let resp = spoofed(stand.http.get(stand.url("/v1/players?page=2")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);
    assert_eq!(
        resp.headers()[header::LOCATION],
        "/login?next=%2Fv1%2Fplayers%3Fpage%3D2"
    );
    assert!(resp.headers().get("x-echo").is_none());

    // An unknown session id counts as no session.
    let resp = stand
        .http
        .get(stand.url("/docs"))
        .header(header::COOKIE, "AWSELBAuthSessionCookie-0=00ff")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);

    let page = stand
        .http
        .get(stand.url("/login?next=%2Fv1%2Fplayers%3Fpage%3D2"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    for user in ["admin", "editor", "viewer"] {
        assert!(
            html.contains(&format!("value=\"{user}\"")),
            "{user} offered"
        );
    }
    for group in ["players-admin", "players-editor", "players-viewer"] {
        assert!(
            html.contains(&format!("value=\"{group}\"")),
            "{group} offered"
        );
    }
    assert!(html.contains("value=\"/v1/players?page=2\""));
    assert!(!html.contains("<script"));
    stand.stop().await;
}

#[tokio::test]
async fn login_sets_the_alb_session_cookie_and_returns_to_the_page_asked_for() {
    let stand = Stand::start().await;
    let resp = stand
        .http
        .post(stand.url("/login"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body("user=admin&next=%2Fv1%2Fplayers%3Fpage%3D2")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()[header::LOCATION], "/v1/players?page=2");
    let set_cookie = resp.headers()[header::SET_COOKIE].to_str().unwrap();
    assert!(set_cookie.starts_with("AWSELBAuthSessionCookie-0="));
    assert!(set_cookie.contains("HttpOnly"));
    assert!(set_cookie.contains("SameSite=Lax"));
    assert!(set_cookie.contains("Path=/"));

    // Without `next`, the docs; a `next` pointing elsewhere is ignored.
    let resp = stand
        .http
        .post(stand.url("/login"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body("user=viewer&next=%2F%2Fevil.example%2F")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()[header::LOCATION], "/docs");

    let resp = stand
        .http
        .post(stand.url("/login"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body("user=root")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.headers().get(header::SET_COOKIE).is_none());

    // A cross-site form post cannot log the browser in as someone.
    let resp = stand
        .http
        .post(stand.url("/login"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ORIGIN, "http://evil.example")
        .body("user=admin")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    stand.stop().await;
}

#[tokio::test]
async fn public_paths_pass_without_login_and_without_identity() {
    let stand = Stand::start().await;
    for path in ["/health", "/ready"] {
        let echoed = stand.echoed(spoofed(stand.http.get(stand.url(path)))).await;
        assert_eq!(echoed["path"], path);
        assert!(oidc_headers(&echoed).is_empty(), "{path}: {echoed}");
    }
    // Even with a session, a public path carries no identity.
    let cookie = stand.login("user=admin").await;
    let echoed = stand
        .echoed(
            stand
                .http
                .get(stand.url("/health"))
                .header(header::COOKIE, &cookie),
        )
        .await;
    assert!(oidc_headers(&echoed).is_empty());
    stand.stop().await;
}

#[tokio::test]
async fn api_logout_passes_through_and_its_response_reaches_the_browser() {
    let stand = Stand::start().await;
    let cookie = stand.login("user=admin").await;
    let resp = stand
        .http
        .get(stand.url("/logout"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    // The API's redirect and every Set-Cookie arrive unchanged.
    assert_eq!(resp.status(), StatusCode::FOUND);
    assert_eq!(
        resp.headers()[header::LOCATION],
        stand.alb.logout_url().as_str()
    );
    assert_eq!(resp.headers().get_all(header::SET_COOKIE).iter().count(), 4);
    // And without a session it is not sent to the login page.
    let resp = stand.http.get(stand.url("/logout")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);
    assert_eq!(
        resp.headers()[header::LOCATION],
        stand.alb.logout_url().as_str()
    );
    stand.stop().await;
}

#[tokio::test]
async fn a_well_formed_trace_header_is_kept_and_bodies_over_the_cap_refused() {
    let stand = Stand::start().await;
    let echoed = stand
        .echoed(stand.http.get(stand.url("/health")).header(
            "x-amzn-trace-id",
            "Root=1-5759e988-bd862e3fe1be46a994272793",
        ))
        .await;
    assert_eq!(
        header(&echoed, "x-amzn-trace-id"),
        Some("Root=1-5759e988-bd862e3fe1be46a994272793")
    );
    let echoed = stand
        .echoed(
            stand
                .http
                .get(stand.url("/health"))
                .header("x-amzn-trace-id", "garbage"),
        )
        .await;
    assert!(
        header(&echoed, "x-amzn-trace-id")
            .unwrap()
            .starts_with("Root=1-")
    );

    let resp = stand
        .http
        .post(stand.url("/health"))
        .body(vec![b'x'; 16 * 1024 * 1024 + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    stand.stop().await;
}

#[tokio::test]
async fn an_expired_session_logs_in_again() {
    let stand = Stand::start().await;
    let alb = local_alb::start(LocalAlbConfig {
        port: 0,
        upstream: "http://127.0.0.1:9".into(),
        session_ttl: std::time::Duration::ZERO,
        ..Default::default()
    })
    .await
    .unwrap();
    let resp = stand
        .http
        .post(format!("{}/login", alb.base_url()))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body("user=admin")
        .send()
        .await
        .unwrap();
    let cookie = resp.headers()[header::SET_COOKIE].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let resp = stand
        .http
        .get(format!("{}/v1/me", alb.base_url()))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);
    alb.stop().await;
    stand.stop().await;
}

#[tokio::test]
async fn bearer_requests_pass_through_without_oidc_headers() {
    let stand = Stand::start().await;
    let cookie = stand.login("user=admin").await;
    for with_cookie in [false, true] {
        let mut req = spoofed(
            stand
                .http
                .delete(stand.url("/v1/players/42"))
                .header(header::AUTHORIZATION, "Bearer some.service.token"),
        );
        if with_cookie {
            req = req.header(header::COOKIE, &cookie);
        }
        let echoed = stand.echoed(req).await;
        assert_eq!(echoed["method"], "DELETE");
        assert_eq!(
            header(&echoed, "authorization"),
            Some("Bearer some.service.token")
        );
        assert!(oidc_headers(&echoed).is_empty(), "{echoed}");
        assert!(header(&echoed, "x-amzn-trace-id").is_some());
    }
    stand.stop().await;
}

#[tokio::test]
async fn logout_page_needs_no_login_and_ends_the_session() {
    let stand = Stand::start().await;
    let resp = stand.http.get(stand.alb.logout_url()).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let expired: Vec<String> = resp
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(expired.len(), 4);
    for (i, c) in expired.iter().enumerate() {
        assert!(
            c.starts_with(&format!("AWSELBAuthSessionCookie-{i}=;")),
            "{c}"
        );
        assert!(c.contains("Max-Age=0"), "{c}");
    }
    assert!(resp.text().await.unwrap().contains("Logged out"));

    let cookie = stand.login("user=admin").await;
    let resp = stand
        .http
        .get(stand.alb.logout_url())
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = stand
        .http
        .get(stand.url("/v1/me"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::FOUND,
        "the old cookie no longer logs in"
    );
    stand.stop().await;
}

#[tokio::test]
async fn upstream_down_is_a_bad_gateway() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = listener.local_addr().unwrap().port();
    drop(listener);
    let alb = local_alb::start(LocalAlbConfig {
        port: 0,
        upstream: format!("http://127.0.0.1:{dead}"),
        ..Default::default()
    })
    .await
    .unwrap();
    let resp = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{}/health", alb.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    alb.stop().await;
}

async fn token_request(
    stand: &Stand,
    basic: Option<(&str, &str)>,
    form: &str,
) -> reqwest::Response {
    let mut req = stand
        .http
        .post(stand.alb.token_url())
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form.to_owned());
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn token_endpoint_issues_cognito_shaped_service_tokens() {
    let stand = Stand::start().await;
    let resp = token_request(
        &stand,
        Some(("local-service", "local-secret")),
        "grant_type=client_credentials&scope=players%2Fread+players%2Fwrite",
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[header::CACHE_CONTROL], "no-store");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    let claims = jwks_claims(&stand, body["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["iss"], stand.alb.issuer_url());
    assert_eq!(claims["token_use"], "access");
    assert_eq!(claims["client_id"], "local-service");
    assert_eq!(claims["sub"], "local-service");
    assert_eq!(claims["scope"], "players/read players/write");
    assert!(claims["jti"].is_string());
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert_eq!(exp - iat, 3600);
    assert!(claims.get("aud").is_none());

    // Credentials in the form work too; no scope means every allowed scope.
    let resp = token_request(
        &stand,
        None,
        "grant_type=client_credentials&client_id=local-service&client_secret=local-secret",
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    let claims = jwks_claims(&stand, body["access_token"].as_str().unwrap()).await;
    assert_eq!(
        claims["scope"],
        "players/read players/write players/delete players/admin"
    );
    stand.stop().await;
}

#[tokio::test]
async fn token_endpoint_refuses_bad_clients_scopes_and_grants() {
    let stand = Stand::start().await;
    let cases = [
        (
            Some(("local-service", "wrong")),
            "grant_type=client_credentials",
            401,
            "invalid_client",
        ),
        (
            Some(("nobody", "local-secret")),
            "grant_type=client_credentials",
            401,
            "invalid_client",
        ),
        (None, "grant_type=client_credentials", 401, "invalid_client"),
        (
            Some(("local-service", "local-secret")),
            "grant_type=client_credentials&scope=players%2Fread+players%2Fsuperuser",
            400,
            "invalid_scope",
        ),
        (
            Some(("local-service", "local-secret")),
            "grant_type=password&username=a&password=b",
            400,
            "unsupported_grant_type",
        ),
    ];
    for (basic, form, status, error) in cases {
        let resp = token_request(&stand, basic, form).await;
        assert_eq!(resp.status().as_u16(), status, "{form}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], error, "{form}");
        assert!(body.get("access_token").is_none());
    }
    stand.stop().await;
}

#[tokio::test]
async fn token_command_fetches_a_token_from_the_local_issuer() {
    let stand = Stand::start().await;
    let mut args = TokenArgs {
        client: "local-service".into(),
        secret: SecretString::from("local-secret"),
        scope: Some("players/read".into()),
        issuer: stand.alb.issuer_url().to_owned(),
    };
    let token = local_alb::token_cmd::fetch_token(&args).await.unwrap();
    let claims = jwks_claims(&stand, token.expose_secret()).await;
    assert_eq!(claims["scope"], "players/read");

    args.secret = SecretString::from("s3cr3t-typo");
    let err = local_alb::token_cmd::fetch_token(&args).await.unwrap_err();
    assert!(format!("{err:#}").contains("invalid_client"), "{err:#}");
    assert!(
        !format!("{err:#}").contains("s3cr3t-typo"),
        "the secret never appears in errors"
    );
    stand.stop().await;
}

#[test]
fn token_command_defaults_target_the_dev_stand_in() {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        token: TokenArgs,
    }
    let cli = Cli::parse_from(["token", "--scope", "players/read players/write"]);
    assert_eq!(cli.token.client, "local-service");
    assert_eq!(cli.token.secret.expose_secret(), "local-secret");
    assert_eq!(cli.token.issuer, "http://127.0.0.1:8081/issuer");
    assert_eq!(
        cli.token.scope.as_deref(),
        Some("players/read players/write")
    );
}

#[tokio::test]
async fn api_env_names_the_contract_variables() {
    let stand = Stand::start().await;
    let env: BTreeMap<_, _> = stand.alb.api_env().into_iter().collect();
    assert_eq!(env["ALB_SIGNER_ARNS"], local_alb::DEV_SIGNER_ARN);
    assert_eq!(
        env["ALB_KEY_ENDPOINT"],
        format!("{}/alb-keys", stand.alb.base_url())
    );
    assert_eq!(env["BEARER_ISSUER"], stand.alb.issuer_url());
    assert_eq!(env["BEARER_CLIENT_IDS"], "local-browser,local-service");
    assert_eq!(env["AUTH_LOGOUT_URL"], stand.alb.logout_url());
    assert_eq!(env["ALB_GROUPS_SOURCE"], "accesstoken");
    stand.stop().await;
}
