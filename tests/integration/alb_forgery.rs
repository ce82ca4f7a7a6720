//! The forged-token corpus for `x-amzn-oidc-data`: every case is refused with 401 and the
//! expected reason, through the production authenticator. Key endpoint behaviour is tested
//! against a local HTTP server.

use std::{sync::Arc, time::Duration};

use crate::support::identity::*;
use actix_web::{ResponseError, http::Method, test::TestRequest};
use base64::{
    Engine,
    engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD},
};
use players_api::{
    auth::{
        AuthError, Authenticator, IdentityAuthenticator, Scheme,
        alb::{AlbVerifier, AlbVerifierConfig, KeyCacheConfig, SignerArn},
        config::GroupsSource,
        fetch::FetchLimits,
        policy::PermissionPolicy,
    },
    error::ApiError,
};
use serde_json::{Value, json};

struct Fixture {
    key: AlbKeyPair,
    server: TestServer,
    auth: IdentityAuthenticator,
    verifier: Arc<AlbVerifier>,
}

fn config(endpoint: &str) -> AlbVerifierConfig {
    let mut c = AlbVerifierConfig::new(vec![SignerArn::parse(ARN).unwrap()]);
    c.issuer = Some(ISSUER.into());
    c.client_id = Some(CLIENT.into());
    c.key_endpoint = Some(endpoint.into());
    c.keys = KeyCacheConfig {
        capacity: 100,
        penalty: Duration::from_secs(30),
        max_fetches_per_window: 5,
        limits: FetchLimits {
            connect_timeout: Duration::from_millis(300),
            timeout: Duration::from_millis(500),
            max_body_bytes: 4096,
        },
    };
    c
}

fn authenticator(verifier: Arc<AlbVerifier>) -> IdentityAuthenticator {
    IdentityAuthenticator::new(
        Some(verifier),
        None,
        PermissionPolicy::default(),
        GroupsSource::Userinfo,
        "cognito:groups",
        vec![],
    )
}

async fn fixture() -> Fixture {
    let key = AlbKeyPair::generate();
    let server = TestServer::start().await;
    server.set(
        &format!("/{}", key.kid),
        Reply::Ok(key.public_pem().into_bytes()),
    );
    let verifier = Arc::new(AlbVerifier::new(config(&server.base)).unwrap());
    Fixture {
        auth: authenticator(verifier.clone()),
        key,
        server,
        verifier,
    }
}

/// The header and payload of a valid token, `exp` consistent.
fn parts(k: &AlbKeyPair) -> (Value, Value) {
    let exp = now() + 120;
    let mut h = k.header();
    h["exp"] = json!(exp);
    (h, k.claims(exp))
}

async fn outcome(auth: &IdentityAuthenticator, token: &str) -> Result<String, String> {
    let req = TestRequest::default()
        .insert_header(("x-amzn-oidc-data", token))
        .to_http_request();
    match auth.authenticate(&req).await {
        Ok(p) => Ok(p.subject),
        Err(e) => {
            let reason = match &e {
                AuthError::InvalidToken {
                    scheme: Scheme::Alb,
                    reason,
                } => reason.clone(),
                other => format!("unexpected error {other:?}"),
            };
            let api: ApiError = e.into();
            assert_eq!(api.status_code(), 401, "{reason}");
            assert_eq!(api.code(), "invalid_token");
            Err(reason)
        }
    }
}

async fn assert_rejected(auth: &IdentityAuthenticator, token: &str, reason: &str) {
    assert_eq!(outcome(auth, token).await, Err(reason.to_owned()));
}

macro_rules! case {
    ($name:ident, |$f:ident| $token:expr, $reason:expr) => {
        #[tokio::test]
        async fn $name() {
            let $f = fixture().await;
            let token: String = $token;
            assert_rejected(&$f.auth, &token, $reason).await;
        }
    };
}

#[tokio::test]
async fn valid_padded_token_is_accepted() {
    let f = fixture().await;
    let token = f.key.token();
    assert!(
        token.split('.').any(|s| s.ends_with('=')),
        "ALB tokens are padded"
    );
    assert_eq!(outcome(&f.auth, &token).await, Ok("user-123".into()));
    let claims = f.verifier.verify(&token).await.unwrap();
    assert_eq!(
        claims.email_verified(),
        Some(true),
        "email_verified as the string \"true\""
    );
}

#[tokio::test]
async fn valid_unpadded_token_is_accepted() {
    let f = fixture().await;
    let (h, p) = parts(&f.key);
    let token = f.key.sign(&h, &p, false);
    assert!(!token.contains('='));
    assert_eq!(outcome(&f.auth, &token).await, Ok("user-123".into()));
}

#[tokio::test]
async fn email_verified_as_bool_is_accepted() {
    let f = fixture().await;
    let (h, mut p) = parts(&f.key);
    p["email_verified"] = json!(true);
    let claims = f.verifier.verify(&f.key.sign(&h, &p, true)).await.unwrap();
    assert_eq!(claims.email_verified(), Some(true));
}

case!(
    padding_stripped_in_transit,
    |f| {
        let (mut h, p) = parts(&f.key);
        // Make sure the header and payload both need padding.
        h["pad"] = json!("x");
        let token = f.key.sign(&h, &p, true);
        let stripped: Vec<String> = token
            .split('.')
            .map(|s| s.trim_end_matches('=').to_owned())
            .collect();
        assert_ne!(stripped.join("."), token);
        stripped.join(".")
    },
    "bad_signature"
);

case!(
    signer_not_allowed,
    |f| {
        let (mut h, p) = parts(&f.key);
        h["signer"] = json!(OTHER_ARN);
        f.key.sign(&h, &p, true)
    },
    "signer_not_allowed"
);

case!(
    signer_missing,
    |f| {
        let (mut h, p) = parts(&f.key);
        h.as_object_mut().unwrap().remove("signer");
        f.key.sign(&h, &p, true)
    },
    "signer_missing"
);

case!(
    alg_none,
    |f| {
        let (mut h, p) = parts(&f.key);
        h["alg"] = json!("none");
        let t = f.key.sign(&h, &p, true);
        // `none` tokens usually come with an empty signature; both forms are refused.
        format!("{}.{}", t.rsplit_once('.').unwrap().0, "AA")
    },
    "alg_not_allowed"
);

case!(
    alg_hs256,
    |f| {
        let (mut h, p) = parts(&f.key);
        h["alg"] = json!("HS256");
        f.key.sign(&h, &p, true)
    },
    "alg_not_allowed"
);

case!(
    alg_rs256,
    |f| {
        let (mut h, p) = parts(&f.key);
        h["alg"] = json!("RS256");
        f.key.sign(&h, &p, true)
    },
    "alg_not_allowed"
);

case!(
    alg_lowercase,
    |f| {
        let (mut h, p) = parts(&f.key);
        h["alg"] = json!("es256");
        f.key.sign(&h, &p, true)
    },
    "alg_not_allowed"
);

case!(
    alg_missing,
    |f| {
        let (mut h, p) = parts(&f.key);
        h.as_object_mut().unwrap().remove("alg");
        f.key.sign(&h, &p, true)
    },
    "alg_missing"
);

case!(
    kid_missing,
    |f| {
        let (mut h, p) = parts(&f.key);
        h.as_object_mut().unwrap().remove("kid");
        f.key.sign(&h, &p, true)
    },
    "kid_missing"
);

case!(
    kid_not_a_uuid,
    |f| {
        let (mut h, p) = parts(&f.key);
        h["kid"] = json!("my-key");
        f.key.sign(&h, &p, true)
    },
    "kid_not_uuid"
);

case!(
    kid_path_traversal,
    |f| {
        let (mut h, p) = parts(&f.key);
        h["kid"] = json!(format!("../../{}", &f.key.kid[6..]));
        f.key.sign(&h, &p, true)
    },
    "kid_not_uuid"
);

case!(
    kid_ssrf_url,
    |f| {
        let (mut h, p) = parts(&f.key);
        h["kid"] = json!("@169.254.169.254/latest/meta-data/iam");
        f.key.sign(&h, &p, true)
    },
    "kid_not_uuid"
);

case!(
    kid_oversized,
    |f| {
        let (mut h, p) = parts(&f.key);
        h["kid"] = json!(format!("{}{}", f.key.kid, "0".repeat(2000)));
        f.key.sign(&h, &p, true)
    },
    "kid_not_uuid"
);

case!(
    kid_not_a_string,
    |f| {
        let (mut h, p) = parts(&f.key);
        h["kid"] = json!(12345);
        f.key.sign(&h, &p, true)
    },
    "kid_not_uuid"
);

case!(
    tampered_header,
    |f| {
        let token = f.key.token();
        let (h, rest) = token.split_once('.').unwrap();
        let mut header: Value = serde_json::from_slice(&URL_SAFE.decode(h).unwrap()).unwrap();
        header["typ"] = json!("JWS");
        format!("{}.{rest}", URL_SAFE.encode(header.to_string()))
    },
    "bad_signature"
);

case!(
    tampered_payload,
    |f| {
        let token = f.key.token();
        let mut it = token.split('.');
        let (h, p, s) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
        let mut claims: Value = serde_json::from_slice(&URL_SAFE.decode(p).unwrap()).unwrap();
        claims["sub"] = json!("admin");
        format!("{h}.{}.{s}", URL_SAFE.encode(claims.to_string()))
    },
    "bad_signature"
);

case!(
    signed_by_another_key,
    |f| {
        let other = AlbKeyPair {
            kid: f.key.kid.clone(),
            ..AlbKeyPair::generate()
        };
        other.token()
    },
    "bad_signature"
);

case!(
    expired,
    |f| {
        let exp = now() - 3600;
        let mut h = f.key.header();
        h["exp"] = json!(exp);
        f.key.sign(&h, &f.key.claims(exp), true)
    },
    "expired"
);

case!(
    expired_just_beyond_skew,
    |f| {
        let exp = now() - 61 - 2;
        let mut h = f.key.header();
        h["exp"] = json!(exp);
        f.key.sign(&h, &f.key.claims(exp), true)
    },
    "expired"
);

case!(
    exp_missing,
    |f| {
        let (mut h, mut p) = parts(&f.key);
        h.as_object_mut().unwrap().remove("exp");
        p.as_object_mut().unwrap().remove("exp");
        f.key.sign(&h, &p, true)
    },
    "exp_missing"
);

case!(
    exp_not_a_number,
    |f| {
        let (mut h, mut p) = parts(&f.key);
        h.as_object_mut().unwrap().remove("exp");
        p["exp"] = json!("9999999999");
        f.key.sign(&h, &p, true)
    },
    "exp_invalid"
);

case!(
    header_payload_exp_mismatch,
    |f| {
        let (mut h, p) = parts(&f.key);
        h["exp"] = json!(now() + 100_000);
        f.key.sign(&h, &p, true)
    },
    "exp_mismatch"
);

case!(
    header_payload_iss_mismatch,
    |f| {
        let (mut h, p) = parts(&f.key);
        h["iss"] = json!("https://evil.example.com");
        f.key.sign(&h, &p, true)
    },
    "iss_mismatch"
);

case!(
    wrong_issuer,
    |f| {
        let (mut h, mut p) = parts(&f.key);
        h["iss"] = json!("https://evil.example.com");
        p["iss"] = json!("https://evil.example.com");
        f.key.sign(&h, &p, true)
    },
    "wrong_issuer"
);

case!(
    wrong_client,
    |f| {
        let (mut h, p) = parts(&f.key);
        h["client"] = json!("someone-elses-client");
        f.key.sign(&h, &p, true)
    },
    "wrong_client"
);

case!(
    der_encoded_signature,
    |f| {
        let (h, p) = parts(&f.key);
        f.key.der_signature_token(&h, &p)
    },
    "signature_length"
);

case!(
    truncated_signature,
    |f| {
        let token = f.key.token();
        let (signed, sig) = token.rsplit_once('.').unwrap();
        let sig = URL_SAFE.decode(sig).unwrap();
        format!("{signed}.{}", URL_SAFE.encode(&sig[..63]))
    },
    "signature_length"
);

case!(
    empty_signature,
    |f| {
        let token = f.key.token();
        format!("{}.", token.rsplit_once('.').unwrap().0)
    },
    "empty_segment"
);

case!(
    two_segments,
    |f| f.key.token().rsplit_once('.').unwrap().0.to_owned(),
    "segment_count"
);

case!(
    four_segments,
    |f| format!("{}.AAAA", f.key.token()),
    "segment_count"
);

case!(
    standard_base64_characters,
    |f| {
        let (h, p) = parts(&f.key);
        let token = f.key.sign(&h, &p, true);
        let (signed, sig) = token.rsplit_once('.').unwrap();
        let raw = URL_SAFE.decode(sig).unwrap();
        let std = base64::engine::general_purpose::STANDARD.encode(raw);
        // Force at least one character outside the URL-safe alphabet.
        format!("{signed}.{}+/", &std[..std.len() - 4])
    },
    "invalid_base64"
);

case!(
    whitespace_inside,
    |f| f.key.token().replacen('.', ". ", 1),
    "invalid_base64"
);

case!(
    header_not_json,
    |f| f.key.sign_bytes(b"not json", br#"{"exp":1}"#, true),
    "header_not_json"
);

case!(
    payload_not_an_object,
    |f| {
        let (h, _) = parts(&f.key);
        f.key.sign_bytes(h.to_string().as_bytes(), b"[1,2,3]", true)
    },
    "payload_not_json"
);

case!(
    oversized_header,
    |f| {
        let (h, mut p) = parts(&f.key);
        p["padding"] = json!("x".repeat(20_000));
        f.key.sign(&h, &p, true)
    },
    "oversized"
);

case!(
    sub_missing,
    |f| {
        let (h, mut p) = parts(&f.key);
        p.as_object_mut().unwrap().remove("sub");
        f.key.sign(&h, &p, true)
    },
    "sub_missing"
);

#[tokio::test]
async fn identity_header_alone_is_never_trusted() {
    let f = fixture().await;
    let req = TestRequest::default()
        .insert_header(("x-amzn-oidc-identity", "user-123"))
        .to_http_request();
    assert!(matches!(
        f.auth.authenticate(&req).await,
        Err(AuthError::Missing)
    ));
}

#[tokio::test]
async fn verified_result_cache_hits_and_never_outlives_exp() {
    let f = fixture().await;
    let token = f.key.token();
    f.verifier.verify(&token).await.unwrap();
    let hits = f.server.hits();
    let claims = f.verifier.cached(&token, now()).expect("cached");
    // Judged after exp + skew, the cached entry is not used and the token is refused.
    assert!(f.verifier.cached(&token, claims.exp + 61).is_none());
    let err = f
        .verifier
        .verify_at(&token, claims.exp + 61)
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "expired");
    assert_eq!(f.server.hits(), hits);
    // A token that expires in 1 s leaves the cache on its own.
    let exp = now() + 1;
    let mut h = f.key.header();
    h["exp"] = json!(exp);
    let short = f.key.sign(&h, &f.key.claims(exp), true);
    f.verifier.verify(&short).await.unwrap();
    assert!(f.verifier.cached(&short, now()).is_some());
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert!(
        f.verifier.cached(&short, exp).is_none(),
        "entry outlived exp"
    );
}

// ---- key endpoint behaviour ------------------------------------------------------------

#[tokio::test]
async fn endpoint_down_known_kid_still_works_unknown_kid_is_401() {
    let f = fixture().await;
    assert!(outcome(&f.auth, &f.key.token()).await.is_ok());
    // Take the endpoint down: point a second verifier sharing nothing at a dead port...
    let dead = dead_endpoint().await;
    let v = Arc::new(AlbVerifier::new(config(&dead)).unwrap());
    let auth = authenticator(v);
    assert_rejected(&auth, &f.key.token(), "key_fetch_failed").await;
    assert_rejected(&auth, &f.key.token(), "key_penalty").await;
    // ...and for the first verifier, drop every route: the cached key keeps working.
    f.server.routes.lock().unwrap().clear();
    let fresh = f.key.token();
    assert!(outcome(&f.auth, &fresh).await.is_ok());
    let unknown = AlbKeyPair::generate();
    assert_rejected(&f.auth, &unknown.token(), "key_fetch_status").await;
}

#[tokio::test]
async fn endpoint_returning_garbage() {
    let f = fixture().await;
    let k = AlbKeyPair::generate();
    f.server.set(
        &format!("/{}", k.kid),
        Reply::Ok(b"<html>hello</html>".to_vec()),
    );
    assert_rejected(&f.auth, &k.token(), "key_invalid").await;
}

#[tokio::test]
async fn endpoint_returning_a_p384_key() {
    let f = fixture().await;
    let k = AlbKeyPair::generate();
    f.server.set(
        &format!("/{}", k.kid),
        Reply::Ok(fixture_pem("p384-public.pem")),
    );
    assert_rejected(&f.auth, &k.token(), "key_invalid").await;
}

#[tokio::test]
async fn endpoint_returning_an_rsa_key() {
    let f = fixture().await;
    let k = AlbKeyPair::generate();
    f.server.set(
        &format!("/{}", k.kid),
        Reply::Ok(fixture_pem("rsa-public.pem")),
    );
    assert_rejected(&f.auth, &k.token(), "key_invalid").await;
}

fn fixture_pem(name: &str) -> Vec<u8> {
    crate::support::identity::fixture(name).into_bytes()
}

#[tokio::test]
async fn endpoint_returning_a_huge_body() {
    let f = fixture().await;
    let k = AlbKeyPair::generate();
    f.server
        .set(&format!("/{}", k.kid), Reply::Huge(10 * 1024 * 1024));
    assert_rejected(&f.auth, &k.token(), "key_too_large").await;
}

#[tokio::test]
async fn endpoint_answering_slowly() {
    let f = fixture().await;
    let k = AlbKeyPair::generate();
    f.server.set(
        &format!("/{}", k.kid),
        Reply::Slow(Duration::from_secs(5), k.public_pem().into_bytes()),
    );
    let started = std::time::Instant::now();
    assert_rejected(&f.auth, &k.token(), "key_fetch_timeout").await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "timeout not enforced"
    );
}

#[tokio::test]
async fn unknown_kid_flood_makes_a_bounded_number_of_fetches() {
    let f = fixture().await;
    // 1. The same unknown kid, 50 times concurrently, then 50 more: one fetch.
    let k = AlbKeyPair::generate();
    let tokens: Vec<String> = (0..50).map(|_| k.token()).collect();
    let results = futures_util::future::join_all(tokens.iter().map(|t| f.verifier.verify(t))).await;
    assert!(results.iter().all(|r| r.is_err()));
    for t in &tokens {
        assert!(f.verifier.verify(t).await.is_err());
    }
    assert_eq!(f.server.hits(), 1, "one fetch per kid per window");
    // 2. 200 distinct random kids: at most the window budget (5) in total.
    let flood: Vec<String> = (0..200).map(|_| AlbKeyPair::generate().token()).collect();
    let results = futures_util::future::join_all(flood.iter().map(|t| f.verifier.verify(t))).await;
    assert!(results.iter().all(|r| r.is_err()));
    let reasons: std::collections::HashSet<&str> = results
        .iter()
        .map(|r| r.as_ref().unwrap_err().reason())
        .collect();
    assert!(reasons.contains("key_fetch_budget"), "{reasons:?}");
    assert!(f.server.hits() <= 5, "{} fetches", f.server.hits());
    assert_eq!(
        f.verifier.key_cache().unwrap().fetch_count() as usize,
        f.server.hits()
    );
}

#[tokio::test]
async fn concurrent_first_use_of_a_known_kid_fetches_once() {
    let f = fixture().await;
    let tokens: Vec<String> = (0..20)
        .map(|i| {
            let (h, mut p) = parts(&f.key);
            p["n"] = json!(i);
            f.key.sign(&h, &p, true)
        })
        .collect();
    let results = futures_util::future::join_all(tokens.iter().map(|t| f.verifier.verify(t))).await;
    assert!(results.iter().all(|r| r.is_ok()));
    assert_eq!(f.server.hits(), 1);
}

#[tokio::test]
async fn csrf_unsafe_alb_requests_must_be_same_origin() {
    let f = fixture().await;
    let v = f.verifier.clone();
    let auth = IdentityAuthenticator::new(
        Some(v),
        None,
        PermissionPolicy::default(),
        GroupsSource::Userinfo,
        "cognito:groups",
        vec!["https://players.example.com".into()],
    );
    let token = f.key.token();
    let run = |method: Method, headers: Vec<(&'static str, &'static str)>| {
        let mut req = TestRequest::default()
            .method(method)
            .insert_header(("x-amzn-oidc-data", token.clone()));
        for h in headers {
            req = req.insert_header(h);
        }
        let req = req.to_http_request();
        let auth = &auth;
        async move { auth.authenticate(&req).await }
    };
    assert!(run(Method::GET, vec![]).await.is_ok());
    assert!(
        run(
            Method::POST,
            vec![("origin", "https://players.example.com")]
        )
        .await
        .is_ok()
    );
    assert!(
        run(Method::DELETE, vec![("sec-fetch-site", "same-origin")])
            .await
            .is_ok()
    );
    for (method, headers) in [
        (Method::POST, vec![]),
        (Method::POST, vec![("origin", "https://evil.example.com")]),
        (Method::PATCH, vec![("origin", "null")]),
        (Method::DELETE, vec![("sec-fetch-site", "cross-site")]),
        (
            Method::POST,
            vec![
                ("origin", "https://evil.example.com"),
                ("sec-fetch-site", "same-origin"),
            ],
        ),
    ] {
        let err = run(method.clone(), headers.clone()).await.unwrap_err();
        assert!(
            matches!(err, AuthError::CsrfRejected { .. }),
            "{method} {headers:?}"
        );
        let api: ApiError = err.into();
        assert_eq!(
            (api.status_code().as_u16(), api.code()),
            (403, "csrf_rejected")
        );
    }
}

#[test]
fn unpadded_encoding_differs_from_padded() {
    // Guard for the padded/unpadded cases above: the encodings really differ.
    assert_ne!(URL_SAFE.encode(b"ab"), URL_SAFE_NO_PAD.encode(b"ab"));
}
