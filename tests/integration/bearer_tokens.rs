//! Bearer tokens: every refused case with its reason, the JWKS penalty box and rotation, alg
//! confusion, and the combination rules with the ALB header.

use std::{sync::Arc, time::Duration};

use crate::support::identity::*;
use actix_web::{ResponseError, http::header, test::TestRequest};
use jsonwebtoken::{Algorithm, EncodingKey};
use players_api::{
    auth::{
        AuthError, Authenticator, IdentityAuthenticator, Permission, PrincipalKind, Scheme,
        alb::{AlbVerifier, AlbVerifierConfig, SignerArn},
        bearer::{BearerVerifier, BearerVerifierConfig},
        config::GroupsSource,
        policy::PermissionPolicy,
    },
    error::ApiError,
};
use serde_json::json;

const CLIENT_ID: &str = "reporting-service";

struct Fixture {
    issuer: Issuer,
    server: TestServer,
    verifier: Arc<BearerVerifier>,
    auth: IdentityAuthenticator,
}

async fn fixture_with(penalty: Duration) -> Fixture {
    let server = TestServer::start().await;
    let issuer = Issuer::new(&format!("{}/pool", server.base));
    server.set("/pool/.well-known/jwks.json", Reply::Ok(issuer.jwks()));
    let mut config = BearerVerifierConfig::new(issuer.issuer.clone());
    config.client_ids = vec![CLIENT_ID.into()];
    config.audiences = vec!["players-api".into()];
    config.penalty = penalty;
    let verifier = Arc::new(BearerVerifier::new(config).unwrap());
    let auth = IdentityAuthenticator::new(
        None,
        Some(verifier.clone()),
        PermissionPolicy::default(),
        GroupsSource::Userinfo,
        "cognito:groups",
        vec![],
    );
    Fixture {
        issuer,
        server,
        verifier,
        auth,
    }
}

async fn fixture() -> Fixture {
    fixture_with(Duration::from_secs(10)).await
}

fn bearer_req(token: &str) -> actix_web::HttpRequest {
    TestRequest::post()
        .insert_header((header::AUTHORIZATION, format!("Bearer {token}")))
        .to_http_request()
}

async fn reason(auth: &IdentityAuthenticator, token: &str) -> String {
    match auth.authenticate(&bearer_req(token)).await {
        Ok(p) => panic!("accepted as {}", p.subject),
        Err(e) => {
            let r = match &e {
                AuthError::InvalidToken {
                    scheme: Scheme::Bearer,
                    reason,
                } => reason.clone(),
                other => panic!("unexpected {other:?}"),
            };
            let resp = ApiError::from(e).error_response();
            assert_eq!(resp.status(), 401);
            assert_eq!(
                resp.headers().get(header::WWW_AUTHENTICATE).unwrap(),
                r#"Bearer error="invalid_token""#
            );
            r
        }
    }
}

#[tokio::test]
async fn valid_rs256_and_es256_tokens_are_accepted_and_scopes_map_to_permissions() {
    let f = fixture().await;
    for token in [
        f.issuer.sign_rs256(
            &f.issuer
                .access_claims(CLIENT_ID, "players/read players/write"),
        ),
        f.issuer.sign_es256(
            &f.issuer
                .access_claims(CLIENT_ID, "players/read players/write"),
        ),
    ] {
        let p = f.auth.authenticate(&bearer_req(&token)).await.unwrap();
        assert_eq!(p.kind, PrincipalKind::Service);
        assert_eq!(p.subject, CLIENT_ID);
        assert_eq!(p.scopes, ["players/read", "players/write"]);
        assert!(p.permissions.contains(Permission::PlayersWrite));
        assert!(!p.permissions.contains(Permission::PlayersDelete));
        // POST by a bearer client needs no Origin: bearer requests are CSRF-exempt.
    }
    assert_eq!(f.verifier.jwks().fetch_count(), 1);
}

#[tokio::test]
async fn missing_scope_is_403_naming_the_permission() {
    let f = fixture().await;
    let token = f
        .issuer
        .sign_rs256(&f.issuer.access_claims(CLIENT_ID, "players/read"));
    let p = f.auth.authenticate(&bearer_req(&token)).await.unwrap();
    let err = ApiError::from(p.require(Permission::PlayersDelete).unwrap_err());
    assert_eq!(err.status_code(), 403);
    assert_eq!(err.code(), "forbidden");
    assert!(err.problem().detail.contains("players:delete"));
}

#[tokio::test]
async fn audience_instead_of_client_id_is_accepted() {
    let f = fixture().await;
    let mut claims = f.issuer.access_claims("other", "players/read");
    claims.as_object_mut().unwrap().remove("client_id");
    claims["aud"] = json!(["something", "players-api"]);
    assert!(
        f.verifier
            .verify(&f.issuer.sign_rs256(&claims))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn wrong_issuer() {
    let f = fixture().await;
    let mut c = f.issuer.access_claims(CLIENT_ID, "players/read");
    c["iss"] = json!("https://evil.example.com");
    assert_eq!(
        reason(&f.auth, &f.issuer.sign_rs256(&c)).await,
        "wrong_issuer"
    );
    c.as_object_mut().unwrap().remove("iss");
    assert_eq!(
        reason(&f.auth, &f.issuer.sign_rs256(&c)).await,
        "wrong_issuer"
    );
}

#[tokio::test]
async fn wrong_client() {
    let f = fixture().await;
    let c = f.issuer.access_claims("someone-else", "players/read");
    assert_eq!(
        reason(&f.auth, &f.issuer.sign_rs256(&c)).await,
        "wrong_client"
    );
    let mut c = f.issuer.access_claims("someone-else", "players/read");
    c["aud"] = json!("not-us");
    assert_eq!(
        reason(&f.auth, &f.issuer.sign_rs256(&c)).await,
        "wrong_client"
    );
}

#[tokio::test]
async fn id_token_is_refused() {
    let f = fixture().await;
    let mut c = f.issuer.access_claims(CLIENT_ID, "players/read");
    c["token_use"] = json!("id");
    assert_eq!(
        reason(&f.auth, &f.issuer.sign_rs256(&c)).await,
        "token_use_not_access"
    );
}

#[tokio::test]
async fn expired_and_missing_exp() {
    let f = fixture().await;
    let mut c = f.issuer.access_claims(CLIENT_ID, "players/read");
    c["exp"] = json!(now() - 3600);
    assert_eq!(reason(&f.auth, &f.issuer.sign_rs256(&c)).await, "expired");
    c.as_object_mut().unwrap().remove("exp");
    assert_eq!(
        reason(&f.auth, &f.issuer.sign_rs256(&c)).await,
        "exp_missing"
    );
}

#[tokio::test]
async fn nbf_and_iat_in_the_future() {
    let f = fixture().await;
    let mut c = f.issuer.access_claims(CLIENT_ID, "players/read");
    c["nbf"] = json!(now() + 3600);
    assert_eq!(
        reason(&f.auth, &f.issuer.sign_rs256(&c)).await,
        "not_yet_valid"
    );
    let mut c = f.issuer.access_claims(CLIENT_ID, "players/read");
    c["iat"] = json!(now() + 3600);
    assert_eq!(
        reason(&f.auth, &f.issuer.sign_rs256(&c)).await,
        "iat_in_future"
    );
}

#[tokio::test]
async fn tampered_and_foreign_signatures() {
    let f = fixture().await;
    let token = f
        .issuer
        .sign_rs256(&f.issuer.access_claims(CLIENT_ID, "players/read"));
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let other = f
        .issuer
        .sign_rs256(&f.issuer.access_claims(CLIENT_ID, "players/admin"));
    parts[1] = other.split('.').nth(1).unwrap().to_owned();
    assert_eq!(reason(&f.auth, &parts.join(".")).await, "bad_signature");
    let foreign = EncodingKey::from_rsa_der(&fixture_bytes("rsa-test-key-2.pkcs1.der"));
    let forged = f.issuer.sign_with(
        Algorithm::RS256,
        &foreign,
        &f.issuer.rsa_kid,
        &f.issuer.access_claims(CLIENT_ID, "players/admin"),
    );
    assert_eq!(reason(&f.auth, &forged).await, "bad_signature");
}

#[tokio::test]
async fn alg_confusion_is_refused() {
    let f = fixture().await;
    let claims = f.issuer.access_claims(CLIENT_ID, "players/admin");
    // HS256 "signed" with the RSA public key as the secret: the classic confusion.
    let hs = f.issuer.sign_with(
        Algorithm::HS256,
        &EncodingKey::from_secret(&fixture_bytes("rsa-public.pem")),
        &f.issuer.rsa_kid,
        &claims,
    );
    assert_eq!(reason(&f.auth, &hs).await, "alg_not_allowed");
    // ES256 token naming the RSA key's kid, and RS256 naming the EC key's kid.
    let es_on_rsa = f
        .issuer
        .sign_with(Algorithm::ES256, &f.issuer.ec, &f.issuer.rsa_kid, &claims);
    assert_eq!(reason(&f.auth, &es_on_rsa).await, "alg_key_mismatch");
    let rs_on_ec = f
        .issuer
        .sign_with(Algorithm::RS256, &f.issuer.rsa, &f.issuer.ec_kid, &claims);
    assert_eq!(reason(&f.auth, &rs_on_ec).await, "alg_key_mismatch");
    // PS256 uses the RSA key but is not allowed.
    let ps = f
        .issuer
        .sign_with(Algorithm::PS256, &f.issuer.rsa, &f.issuer.rsa_kid, &claims);
    assert_eq!(reason(&f.auth, &ps).await, "alg_not_allowed");
    // alg none.
    let none = format!(
        "{}.{}.",
        base64_url(r#"{"alg":"none","kid":"rsa-1"}"#),
        base64_url(&claims.to_string())
    );
    assert_eq!(reason(&f.auth, &none).await, "malformed");
}

fn base64_url(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

#[tokio::test]
async fn malformed_and_other_schemes() {
    let f = fixture().await;
    assert_eq!(reason(&f.auth, "not-a-jwt").await, "malformed");
    let req = TestRequest::get()
        .insert_header((header::AUTHORIZATION, "Basic dXNlcjpwYXNz"))
        .to_http_request();
    assert!(matches!(
        f.auth.authenticate(&req).await,
        Err(AuthError::InvalidToken { reason, .. }) if reason == "unsupported_scheme"
    ));
}

#[tokio::test]
async fn unknown_kid_penalty_box_then_rotation_is_picked_up() {
    let f = fixture_with(Duration::from_millis(400)).await;
    let good = f
        .issuer
        .sign_rs256(&f.issuer.access_claims(CLIENT_ID, "players/read"));
    assert!(f.verifier.verify(&good).await.is_ok());
    assert_eq!(f.server.hits(), 1);

    // The issuer rotates: a new key "rsa-2" signs tokens the cache has not seen.
    let new_key = EncodingKey::from_rsa_der(&fixture_bytes("rsa-test-key-2.pkcs1.der"));
    let rotated = f.issuer.sign_with(
        Algorithm::RS256,
        &new_key,
        "rsa-2",
        &f.issuer.access_claims(CLIENT_ID, "players/read"),
    );
    // Within the window of the first fetch an unknown kid causes no refetch at all.
    assert_eq!(reason(&f.auth, &rotated).await, "unknown_kid");
    assert_eq!(f.server.hits(), 1);
    tokio::time::sleep(Duration::from_millis(450)).await;
    // After it, the unknown kid refetches (the JWKS does not have it yet): 401 unknown_kid.
    assert_eq!(reason(&f.auth, &rotated).await, "unknown_kid");
    assert_eq!(f.server.hits(), 2);
    // Now publish the new key. Within the window: no refetch, still refused, concurrently too.
    f.server.set(
        "/pool/.well-known/jwks.json",
        Reply::Ok(
            json!({"keys": [
                Issuer::jwk(&f.issuer.rsa, Algorithm::RS256, &f.issuer.rsa_kid),
                Issuer::jwk(&new_key, Algorithm::RS256, "rsa-2"),
            ]})
            .to_string()
            .into_bytes(),
        ),
    );
    let results =
        futures_util::future::join_all((0..20).map(|_| f.verifier.verify(&rotated))).await;
    assert!(
        results
            .iter()
            .all(|r| r.as_ref().unwrap_err().reason() == "unknown_kid")
    );
    assert_eq!(f.server.hits(), 2, "penalty box respected");
    // After the window, one refetch picks the rotation up, for all concurrent callers.
    tokio::time::sleep(Duration::from_millis(450)).await;
    let results =
        futures_util::future::join_all((0..20).map(|_| f.verifier.verify(&rotated))).await;
    assert!(results.iter().all(|r| r.is_ok()));
    assert_eq!(f.server.hits(), 3, "concurrent refetches merged");
    assert!(f.verifier.verify(&good).await.is_ok());
}

#[tokio::test]
async fn old_keys_are_kept_while_the_jwks_is_down() {
    let f = fixture_with(Duration::from_millis(50)).await;
    let good = f
        .issuer
        .sign_rs256(&f.issuer.access_claims(CLIENT_ID, "players/read"));
    assert!(f.verifier.verify(&good).await.is_ok());
    f.server
        .set("/pool/.well-known/jwks.json", Reply::Status(503));
    tokio::time::sleep(Duration::from_millis(60)).await;
    let unknown = f.issuer.sign_with(
        Algorithm::RS256,
        &f.issuer.rsa,
        "rsa-9",
        &f.issuer.access_claims(CLIENT_ID, "x"),
    );
    assert_eq!(reason(&f.auth, &unknown).await, "jwks_fetch_failed");
    assert!(
        f.verifier.verify(&good).await.is_ok(),
        "known key survives a failed refetch"
    );
    f.server
        .set("/pool/.well-known/jwks.json", Reply::Huge(10 * 1024 * 1024));
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(reason(&f.auth, &unknown).await, "jwks_too_large");
    f.server.set(
        "/pool/.well-known/jwks.json",
        Reply::Ok(b"{\"keys\": 5}".to_vec()),
    );
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(reason(&f.auth, &unknown).await, "jwks_invalid");
    assert!(f.verifier.verify(&good).await.is_ok());
}

// ---- both credential kinds ---------------------------------------------------------------

async fn combined() -> (Fixture, AlbKeyPair, IdentityAuthenticator, TestServer) {
    let f = fixture().await;
    let key = AlbKeyPair::generate();
    let keys = TestServer::start().await;
    keys.set(
        &format!("/{}", key.kid),
        Reply::Ok(key.public_pem().into_bytes()),
    );
    let mut c = AlbVerifierConfig::new(vec![SignerArn::parse(ARN).unwrap()]);
    c.key_endpoint = Some(keys.base.clone());
    let alb = Arc::new(AlbVerifier::new(c).unwrap());
    let auth = IdentityAuthenticator::new(
        Some(alb),
        Some(f.verifier.clone()),
        PermissionPolicy::default(),
        GroupsSource::Both,
        "cognito:groups",
        vec![],
    );
    (f, key, auth, keys)
}

#[tokio::test]
async fn mixed_credentials_are_refused_before_either_is_verified() {
    let (f, key, auth, keys) = combined().await;
    let mut expired = f.issuer.access_claims(CLIENT_ID, "players/admin");
    expired["exp"] = json!(now() - 3600);
    let valid = f.issuer.access_claims(CLIENT_ID, "players/read");
    // An invalid bearer token next to a valid ALB header, and an invalid ALB header (a kid
    // the key endpoint would have to be asked about) next to a valid bearer token.
    for (alb, bearer) in [
        (key.token(), f.issuer.sign_rs256(&expired)),
        (format!("{}x", key.token()), f.issuer.sign_rs256(&valid)),
    ] {
        let req = TestRequest::get()
            .insert_header(("x-amzn-oidc-data", alb))
            .insert_header((header::AUTHORIZATION, format!("Bearer {bearer}")))
            .to_http_request();
        let err = auth.authenticate(&req).await.unwrap_err();
        assert!(
            matches!(&err, AuthError::InvalidToken { reason, .. } if reason == "multiple_credentials"),
            "{err:?}"
        );
    }
    assert_eq!(keys.hits(), 0, "no key was fetched for a mixed request");
}

#[tokio::test]
async fn two_valid_credentials_are_refused() {
    let (f, key, auth, _keys) = combined().await;
    let req = TestRequest::get()
        .insert_header(("x-amzn-oidc-data", key.token()))
        .insert_header((
            header::AUTHORIZATION,
            format!(
                "Bearer {}",
                f.issuer
                    .sign_rs256(&f.issuer.access_claims(CLIENT_ID, "players/read"))
            ),
        ))
        .to_http_request();
    assert!(
        matches!(auth.authenticate(&req).await, Err(AuthError::InvalidToken { reason, .. }) if reason == "multiple_credentials")
    );
}

#[tokio::test]
async fn groups_come_from_the_verified_access_token() {
    let (f, key, auth, _keys) = combined().await;
    let auth = auth.with_access_token_verifier(f.verifier.clone());
    // The ALB's access token for user-123, carrying cognito:groups (Cognito's model).
    let mut at = f.issuer.access_claims(CLIENT_ID, "openid");
    at["sub"] = json!("user-123");
    at["cognito:groups"] = json!(["players-admin"]);
    let req = TestRequest::get()
        .insert_header(("x-amzn-oidc-data", key.token()))
        .insert_header(("x-amzn-oidc-accesstoken", f.issuer.sign_rs256(&at)))
        .to_http_request();
    let p = auth.authenticate(&req).await.unwrap();
    assert_eq!(p.kind, PrincipalKind::User);
    assert!(p.permissions.contains(Permission::Admin), "{:?}", p.groups);
    assert!(p.groups.contains(&"players-editor".to_owned()));
    // An access token about someone else, or an invalid one, fails the request.
    at["sub"] = json!("user-999");
    let req = TestRequest::get()
        .insert_header(("x-amzn-oidc-data", key.token()))
        .insert_header(("x-amzn-oidc-accesstoken", f.issuer.sign_rs256(&at)))
        .to_http_request();
    assert!(
        matches!(auth.authenticate(&req).await, Err(AuthError::InvalidToken { reason, .. }) if reason == "access_token_subject_mismatch")
    );
    let req = TestRequest::get()
        .insert_header(("x-amzn-oidc-data", key.token()))
        .insert_header(("x-amzn-oidc-accesstoken", "garbage"))
        .to_http_request();
    assert!(
        matches!(auth.authenticate(&req).await, Err(AuthError::InvalidToken { reason, .. }) if reason == "access_token_malformed")
    );
}
