//! The local ALB stand-in end to end: a real `LocalAlb` on port 0 in front of a tiny echo
//! server that reports back the request it received; browser logins run the whole
//! `authenticate-oidc` flow against the built-in provider.

use crate::support::app::Exchange;
use std::collections::BTreeMap;

use crate::support::oidc_flow::{Browser, login_built_in};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, dev::ServerHandle, web};
use base64::{Engine, engine::general_purpose::URL_SAFE};
use p256::{
    ecdsa::{Signature, VerifyingKey, signature::Verifier},
    pkcs8::DecodePublicKey,
};
use players_api::local_alb::{
    self, DevUser, LocalAlb, LocalAlbConfig, OnUnauthenticated, TokenArgs,
};
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
        Stand::start_with(LocalAlbConfig::default()).await
    }

    async fn start_with(cfg: LocalAlbConfig) -> Stand {
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
            ..cfg
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

    /// Logs in at the built-in provider with the login form's user part (`user=admin&…`);
    /// returns the `Cookie` header value to send afterwards.
    async fn login(&self, form: &str) -> String {
        let browser = Browser::new();
        let hops = login_built_in(&browser, &self.url("/login?next=%2Fhealth"), form).await;
        let last = hops.last().unwrap();
        assert_eq!(last.url.path(), "/health", "landed on the page asked for");
        browser.cookie_header(&self.url("/"))
    }

    /// Sends `req` through the proxy and returns what the echo server saw.
    async fn echoed(&self, req: reqwest::RequestBuilder) -> Value {
        let resp = req.exchange().await;
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
        .exchange()
        .await
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
        .exchange()
        .await
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
        .exchange()
        .await;
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
async fn the_site_root_is_the_apps_own_page_behind_the_login() {
    // Like a real ALB, the stand-in keeps no page of its own at `/`: a logged-in browser gets
    // the application's `/` (the web app), one without a session is sent to log in first.
    let stand = Stand::start().await;
    let cookie = stand.login("user=viewer").await;
    let echoed = stand
        .echoed(
            stand
                .http
                .get(stand.url("/"))
                .header(header::COOKIE, &cookie),
        )
        .await;
    assert_eq!(echoed["path"], "/");
    assert!(header(&echoed, "x-amzn-oidc-data").is_some());

    let anonymous = stand.http.get(stand.url("/")).exchange().await;
    assert_eq!(anonymous.status(), StatusCode::FOUND);
    let location = anonymous.headers()[header::LOCATION].to_str().unwrap();
    assert!(
        location.starts_with(&stand.alb.provider().authorization_endpoint),
        "{location}"
    );
    stand.stop().await;
}

#[tokio::test]
async fn unauthenticated_browser_requests_are_sent_to_the_idp_with_state_and_nonce() {
    let stand = Stand::start().await;
    let browser = Browser::new();
    let resp = spoofed(browser.http.get(stand.url("/v1/players?page=2")))
        .exchange()
        .await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    assert!(resp.headers().get("x-echo").is_none());
    let location = url::Url::parse(resp.headers()[header::LOCATION].to_str().unwrap()).unwrap();
    assert_eq!(
        location.as_str().split('?').next().unwrap(),
        stand.alb.provider().authorization_endpoint
    );
    let q: BTreeMap<String, String> = location.query_pairs().into_owned().collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], "local-browser");
    assert_eq!(q["redirect_uri"], stand.url("/oauth2/idpresponse"));
    assert_eq!(q["scope"], "openid email");
    assert!(q["state"].len() >= 32 && q["nonce"].len() >= 32);
    let nonce_cookie = resp.headers()[header::SET_COOKIE].to_str().unwrap();
    assert!(
        nonce_cookie.starts_with("AWSALBAuthNonce="),
        "{nonce_cookie}"
    );
    assert!(nonce_cookie.contains("HttpOnly") && nonce_cookie.contains("SameSite=Lax"));

    // An unknown or forged session counts as no session.
    for forged in [
        "AWSELBAuthSessionCookie-0=00ff",
        "AWSELBAuthSessionCookie-0=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let resp = stand
            .http
            .get(stand.url("/docs"))
            .header(header::COOKIE, forged)
            .exchange()
            .await;
        assert_eq!(resp.status(), StatusCode::FOUND);
    }

    // The provider's login page offers the users and groups, and no script.
    let page = browser.get(location.as_str()).await;
    assert_eq!(page.status, StatusCode::OK);
    for user in ["admin", "editor", "viewer"] {
        assert!(
            page.body.contains(&format!("value=\"{user}\"")),
            "{user} offered"
        );
    }
    for group in ["players-admin", "players-editor", "players-viewer"] {
        assert!(
            page.body.contains(&format!("value=\"{group}\"")),
            "{group} offered"
        );
    }
    assert!(!page.body.contains("<script"));
    stand.stop().await;
}

#[tokio::test]
async fn on_unauthenticated_deny_answers_401_and_allow_forwards_without_identity() {
    let stand = Stand::start_with(LocalAlbConfig {
        on_unauthenticated: OnUnauthenticated::Deny,
        ..Default::default()
    })
    .await;
    let resp = stand.http.get(stand.url("/v1/me")).exchange().await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.headers().get("x-echo").is_none());
    // Public paths and a session still work.
    let _ = stand.echoed(stand.http.get(stand.url("/health"))).await;
    let cookie = stand.login("user=viewer").await;
    let echoed = stand
        .echoed(
            stand
                .http
                .get(stand.url("/v1/me"))
                .header(header::COOKIE, &cookie),
        )
        .await;
    assert_eq!(oidc_headers(&echoed).len(), 3);
    stand.stop().await;

    let stand = Stand::start_with(LocalAlbConfig {
        on_unauthenticated: OnUnauthenticated::Allow,
        ..Default::default()
    })
    .await;
    let echoed = stand
        .echoed(spoofed(stand.http.get(stand.url("/v1/me"))))
        .await;
    assert!(oidc_headers(&echoed).is_empty(), "{echoed}");
    stand.stop().await;
}

#[tokio::test]
async fn login_sets_the_alb_session_cookie_and_returns_to_the_page_asked_for() {
    let stand = Stand::start().await;
    let browser = Browser::new();
    let hops = login_built_in(&browser, &stand.url("/v1/players?page=2"), "user=admin").await;
    let urls: Vec<&str> = hops.iter().map(|p| p.url.path()).collect();
    assert_eq!(
        urls,
        [
            "/v1/players",
            "/issuer/oauth2/authorize",
            "/issuer/login",
            "/oauth2/idpresponse",
            "/v1/players"
        ]
    );
    let callback = &hops[3];
    assert_eq!(
        callback.location.as_ref().unwrap().as_str(),
        stand.url("/v1/players?page=2")
    );
    let shard = callback.set_cookie("AWSELBAuthSessionCookie-0").unwrap();
    assert!(
        shard.contains("HttpOnly") && shard.contains("SameSite=Lax") && shard.contains("Path=/"),
        "{shard}"
    );
    // The nonce cookie is spent, the unused shards are cleared.
    assert!(
        callback
            .set_cookie("AWSALBAuthNonce")
            .unwrap()
            .contains("Max-Age=0")
    );
    for i in 1..4 {
        let c = callback
            .set_cookie(&format!("AWSELBAuthSessionCookie-{i}"))
            .unwrap();
        assert!(c.contains("Max-Age=0"), "{c}");
    }
    assert_eq!(hops.last().unwrap().status, StatusCode::OK);

    // Without `next`, the site's root (the web app); a `next` pointing elsewhere is ignored.
    let hops = login_built_in(
        &Browser::new(),
        &stand.url("/login?next=%2F%2Fevil.example%2F"),
        "user=viewer",
    )
    .await;
    assert_eq!(hops.last().unwrap().url.as_str(), stand.url("/"));

    // An unknown user gets no code.
    let browser = Browser::new();
    let mut hops = browser.visit(&stand.url("/login")).await;
    let page = hops.pop().unwrap();
    let after = browser.submit(&page, &[("user", "root")]).await;
    assert_eq!(after[0].status, StatusCode::BAD_REQUEST);
    assert!(after[0].location.is_none());

    // A cross-site form post cannot log the browser in as someone.
    let form = crate::support::oidc_flow::Form::parse(&page.body).unwrap();
    let mut values = form.inputs.clone();
    values.push(("user".into(), "admin".into()));
    let resp = browser
        .post_form(&stand.url("/issuer/login"), &values, "http://evil.example")
        .await;
    assert_eq!(resp.status, StatusCode::FORBIDDEN);

    // A login request for another client or callback is refused at the provider.
    let authorize = &stand.alb.provider().authorization_endpoint;
    for query in [
        "response_type=code&client_id=someone-else&redirect_uri=http%3A%2F%2F127.0.0.1%3A1%2Foauth2%2Fidpresponse&scope=openid",
        "response_type=code&client_id=local-browser&redirect_uri=https%3A%2F%2Fevil.example%2Foauth2%2Fidpresponse&scope=openid",
    ] {
        let page = browser.get(&format!("{authorize}?{query}")).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{query}");
        assert!(page.location.is_none());
    }
    stand.stop().await;
}

#[tokio::test]
async fn a_state_that_is_not_this_browsers_is_refused() {
    let stand = Stand::start().await;
    let browser = Browser::new();
    let mut hops = browser.visit(&stand.url("/v1/me")).await;
    let page = hops.pop().unwrap();
    let form = crate::support::oidc_flow::Form::parse(&page.body).unwrap();
    let mut values = form.inputs.clone();
    values.push(("user".into(), "admin".into()));
    let to_callback = browser
        .post_form(&stand.url("/issuer/login"), &values, &stand.url(""))
        .await;
    let callback = to_callback.location.clone().unwrap();
    assert_eq!(callback.path(), "/oauth2/idpresponse");

    // The state changed on the way: 401, no session.
    let mut tampered = callback.clone();
    let pairs: Vec<(String, String)> = callback.query_pairs().into_owned().collect();
    tampered.query_pairs_mut().clear();
    for (k, v) in &pairs {
        tampered
            .query_pairs_mut()
            .append_pair(k, if k == "state" { "0123456789abcdef" } else { v });
    }
    let page = browser.get(tampered.as_str()).await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert!(page.set_cookie("AWSELBAuthSessionCookie-0").is_none());
    assert!(page.body.contains("state"), "{}", page.body);

    // Another browser (no nonce cookie) cannot use this browser's callback.
    let other = Browser::new();
    let page = other.get(callback.as_str()).await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert!(page.set_cookie("AWSELBAuthSessionCookie-0").is_none());
    stand.stop().await;
}

#[tokio::test]
async fn a_code_is_exchanged_once() {
    let stand = Stand::start().await;
    let browser = Browser::new();
    let mut hops = browser.visit(&stand.url("/v1/me")).await;
    let page = hops.pop().unwrap();
    let after = browser.submit(&page, &[("user", "admin")]).await;
    let callback = after
        .iter()
        .find(|p| p.url.path() == "/oauth2/idpresponse")
        .unwrap();
    assert!(callback.is_redirect());
    let code: String = callback
        .url
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    // The same code again at the token endpoint (even with the right client): invalid_grant.
    let resp = stand
        .http
        .post(stand.alb.token_url())
        .basic_auth("local-browser", Some("whatever"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(crate::support::oidc_flow::form_body(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
        ]))
        .exchange()
        .await;
    assert_eq!(
        resp.status(),
        StatusCode::UNAUTHORIZED,
        "the browser client's secret is not public"
    );
    // The callback replayed: the nonce cookie is spent.
    let page = browser.get(callback.url.as_str()).await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    stand.stop().await;
}

#[tokio::test]
async fn userinfo_claims_plus_access_token_over_11k_are_the_albs_500() {
    let stand = Stand::start_with(LocalAlbConfig {
        users: vec![
            DevUser::new(
                "big",
                "b0000000-0000-4000-8000-000000000009",
                &"x".repeat(11 * 1024),
                &["players-viewer"],
            ),
            DevUser::new(
                "wide",
                "b0000000-0000-4000-8000-00000000000a",
                &"y".repeat(6000),
                &["players-viewer"],
            ),
        ],
        ..Default::default()
    })
    .await;
    let hops = login_built_in(&Browser::new(), &stand.url("/v1/me"), "user=big").await;
    let last = hops.last().unwrap();
    assert_eq!(last.url.path(), "/oauth2/idpresponse");
    assert_eq!(last.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(last.body.contains("11 KB"), "{}", last.body);

    // A big session under the limit is sharded (each shard at most 4000 bytes) and works.
    let browser = Browser::new();
    let hops = login_built_in(&browser, &stand.url("/login?next=%2Fhealth"), "user=wide").await;
    let callback = hops
        .iter()
        .find(|p| p.url.path() == "/oauth2/idpresponse")
        .unwrap();
    let shards: Vec<&String> = callback
        .set_cookies
        .iter()
        .filter(|c| c.starts_with("AWSELBAuthSessionCookie-") && !c.contains("Max-Age=0"))
        .collect();
    assert!(shards.len() >= 3, "{}", shards.len());
    assert!(shards.iter().all(|c| c.len() <= 4096));
    let echoed = stand.echoed(browser.http.get(stand.url("/v1/me"))).await;
    let data = header(&echoed, "x-amzn-oidc-data").unwrap();
    let p: Value =
        serde_json::from_slice(&URL_SAFE.decode(data.split('.').nth(1).unwrap()).unwrap()).unwrap();
    assert_eq!(p["name"].as_str().unwrap().len(), 6000);
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
        .exchange()
        .await;
    // The API's redirect and every Set-Cookie arrive unchanged.
    assert_eq!(resp.status(), StatusCode::FOUND);
    assert_eq!(
        resp.headers()[header::LOCATION],
        stand.alb.logout_url().as_str()
    );
    assert_eq!(resp.headers().get_all(header::SET_COOKIE).iter().count(), 4);
    // And without a session it is not sent to the login page.
    let resp = stand.http.get(stand.url("/logout")).exchange().await;
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
        .exchange()
        .await;
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    stand.stop().await;
}

#[tokio::test]
async fn an_expired_session_logs_in_again() {
    let stand = Stand::start_with(LocalAlbConfig {
        session_ttl: std::time::Duration::ZERO,
        ..Default::default()
    })
    .await;
    let browser = Browser::new();
    let hops = login_built_in(&browser, &stand.url("/v1/me"), "user=admin").await;
    // The session expired as it was made: the page asked for sends the browser to the IdP again.
    let last = hops.last().unwrap();
    assert_eq!(
        last.url.path(),
        "/issuer/oauth2/authorize",
        "{:?}",
        hops.iter().map(|p| p.url.as_str()).collect::<Vec<_>>()
    );
    assert!(
        hops.iter()
            .filter(|p| p.url.path() == "/oauth2/idpresponse")
            .count()
            == 1
    );
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
async fn idp_logout_returns_to_a_public_signed_out_page() {
    let stand = Stand::start().await;
    let logout = url::Url::parse(&stand.alb.logout_url()).unwrap();
    assert_eq!(logout.path(), "/issuer/logout");
    let q: BTreeMap<String, String> = logout.query_pairs().into_owned().collect();
    assert_eq!(q["client_id"], "local-browser");
    assert_eq!(q["logout_uri"], stand.alb.logged_out_url());

    let browser = Browser::new();
    let hops = browser.visit(&stand.alb.logout_url()).await;
    let last = hops.last().unwrap();
    assert_eq!(last.url.as_str(), stand.alb.logged_out_url());
    assert_eq!(last.status, StatusCode::OK, "no login needed");
    assert!(last.body.contains("Signed out"));

    // The provider only returns to registered logout URLs.
    let page = browser
        .get(&format!(
            "{}/issuer/logout?client_id=local-browser&logout_uri=https%3A%2F%2Fevil.example%2F",
            stand.alb.base_url()
        ))
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.location.is_none());
    stand.stop().await;
}

#[tokio::test]
async fn the_built_in_provider_is_cognito_shaped() {
    let stand = Stand::start().await;
    let browser = Browser::new();
    let discovery: Value = browser
        .get(&format!(
            "{}/.well-known/openid-configuration",
            stand.alb.issuer_url()
        ))
        .await
        .json();
    assert_eq!(discovery["issuer"], stand.alb.issuer_url());
    assert_eq!(
        discovery["jwks_uri"],
        format!("{}/.well-known/jwks.json", stand.alb.issuer_url())
    );
    assert_eq!(
        discovery["userinfo_endpoint"],
        format!("{}/oauth2/userInfo", stand.alb.issuer_url())
    );

    // Userinfo answers for the session's access token, without groups.
    let cookie = stand.login("user=editor").await;
    let echoed = stand
        .echoed(
            stand
                .http
                .get(stand.url("/v1/me"))
                .header(header::COOKIE, &cookie),
        )
        .await;
    let access = header(&echoed, "x-amzn-oidc-accesstoken").unwrap();
    let userinfo: Value = stand
        .http
        .get(&stand.alb.provider().userinfo_endpoint)
        .bearer_auth(access)
        .exchange()
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(userinfo["username"], "editor");
    assert_eq!(userinfo["email_verified"], "true");
    assert!(userinfo.get("cognito:groups").is_none() && userinfo.get("groups").is_none());
    // x-amzn-oidc-data carries exactly the userinfo claims, plus exp and iss.
    let data = header(&echoed, "x-amzn-oidc-data").unwrap();
    let mut p: Value =
        serde_json::from_slice(&URL_SAFE.decode(data.split('.').nth(1).unwrap()).unwrap()).unwrap();
    let p = p.as_object_mut().unwrap();
    assert!(p.remove("exp").is_some() && p.remove("iss").is_some());
    assert_eq!(Value::Object(p.clone()), userinfo);
    // A service token is no user token at userinfo.
    let resp = token_request(
        &stand,
        Some(("local-service", "local-secret")),
        "grant_type=client_credentials",
    )
    .await;
    let token: Value = resp.json().await.unwrap();
    let resp = stand
        .http
        .get(&stand.alb.provider().userinfo_endpoint)
        .bearer_auth(token["access_token"].as_str().unwrap())
        .exchange()
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
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
        .exchange()
        .await;
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
    req.exchange().await
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
async fn api_env_names_the_contract_variables_in_the_templates_client_layout() {
    let stand = Stand::start().await;
    let env: BTreeMap<_, _> = stand.alb.api_env().into_iter().collect();
    assert_eq!(env["ALB_SIGNER_ARNS"], local_alb::DEV_SIGNER_ARN);
    assert_eq!(
        env["ALB_KEY_ENDPOINT"],
        format!("{}/alb-keys", stand.alb.base_url())
    );
    // One issuer; the browser client in ALB_CLIENT_ID only, machine clients in BEARER_CLIENT_IDS.
    assert_eq!(env["ALB_ISSUER"], stand.alb.issuer_url());
    assert_eq!(env["BEARER_ISSUER"], stand.alb.issuer_url());
    assert_eq!(env["ALB_CLIENT_ID"], "local-browser");
    assert_eq!(env["BEARER_CLIENT_IDS"], "local-service");
    assert_eq!(env["BEARER_JWKS_URL"], stand.alb.jwks_url());
    assert_eq!(env["AUTH_LOGOUT_URL"], stand.alb.logout_url());
    // Groups source left at its default, as service.yaml leaves it.
    assert!(!env.contains_key("ALB_GROUPS_SOURCE"));
    stand.stop().await;
}
