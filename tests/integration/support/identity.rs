//! Test support for identity: signing ALB headers and bearer tokens, and a tiny programmable
//! HTTP server on 127.0.0.1:0 standing in for the AWS key endpoint and the JWKS.
#![allow(dead_code)]

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use base64::{
    Engine,
    engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD},
};
use p256::{
    ecdsa::{Signature, SigningKey, signature::Signer},
    pkcs8::{EncodePublicKey, LineEnding},
};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

pub const ARN: &str =
    "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/players/50dc6c495c0c9188";
pub const OTHER_ARN: &str =
    "arn:aws:elasticloadbalancing:eu-west-1:999999999999:loadbalancer/app/evil/0123456789abcdef";
pub const ISSUER: &str = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_TEST";
pub const CLIENT: &str = "alb-client-id";

pub fn now() -> i64 {
    players_api::auth::alb::unix_now()
}

/// A P-256 key as the ALB holds one.
pub struct AlbKeyPair {
    pub sk: SigningKey,
    pub kid: String,
}

impl AlbKeyPair {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        loop {
            aws_lc_rs::rand::fill(&mut bytes).unwrap();
            if let Ok(sk) = SigningKey::from_slice(&bytes) {
                return AlbKeyPair {
                    sk,
                    kid: uuid::Uuid::new_v4().to_string(),
                };
            }
        }
    }

    pub fn public_pem(&self) -> String {
        self.sk
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap()
    }

    pub fn header(&self) -> Value {
        json!({
            "typ": "JWT", "kid": self.kid, "alg": "ES256", "iss": ISSUER,
            "client": CLIENT, "signer": ARN, "exp": now() + 120
        })
    }

    pub fn claims(&self, exp: i64) -> Value {
        json!({
            "sub": "user-123", "email": "ada@example.com", "email_verified": "true",
            "username": "ada", "exp": exp, "iss": ISSUER,
            "cognito:groups": ["players-editor"]
        })
    }

    /// A valid header value exactly as the ALB produces it (padded segments).
    pub fn token(&self) -> String {
        let exp = now() + 120;
        let mut h = self.header();
        h["exp"] = json!(exp);
        self.sign(&h, &self.claims(exp), true)
    }

    pub fn sign(&self, header: &Value, payload: &Value, padded: bool) -> String {
        self.sign_bytes(
            header.to_string().as_bytes(),
            payload.to_string().as_bytes(),
            padded,
        )
    }

    pub fn sign_bytes(&self, header: &[u8], payload: &[u8], padded: bool) -> String {
        let enc = |b: &[u8]| {
            if padded {
                URL_SAFE.encode(b)
            } else {
                URL_SAFE_NO_PAD.encode(b)
            }
        };
        let signed = format!("{}.{}", enc(header), enc(payload));
        let sig: Signature = self.sk.sign(signed.as_bytes());
        format!("{signed}.{}", enc(&sig.to_bytes()))
    }

    pub fn der_signature_token(&self, header: &Value, payload: &Value) -> String {
        let signed = format!(
            "{}.{}",
            URL_SAFE.encode(header.to_string()),
            URL_SAFE.encode(payload.to_string())
        );
        let sig: Signature = self.sk.sign(signed.as_bytes());
        format!("{signed}.{}", URL_SAFE.encode(sig.to_der().as_bytes()))
    }
}

/// What the test server answers.
#[derive(Clone)]
pub enum Reply {
    Ok(Vec<u8>),
    Status(u16),
    /// Body streamed without Content-Length until `n` bytes were sent.
    Huge(usize),
    Slow(Duration, Vec<u8>),
}

pub type Routes = Arc<Mutex<HashMap<String, Reply>>>;

/// A tiny HTTP/1.1 server: path → reply; counts requests.
pub struct TestServer {
    pub base: String,
    pub routes: Routes,
    pub hits: Arc<AtomicUsize>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let routes: Routes = Arc::default();
        let hits = Arc::new(AtomicUsize::new(0));
        let (r, h) = (routes.clone(), hits.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let (r, h) = (r.clone(), h.clone());
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 8192];
                    let mut n = 0;
                    while !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                        match sock.read(&mut buf[n..]).await {
                            Ok(0) | Err(_) => return,
                            Ok(k) => n += k,
                        }
                        if n == buf.len() {
                            return;
                        }
                    }
                    h.fetch_add(1, Ordering::SeqCst);
                    let req = String::from_utf8_lossy(&buf[..n]).to_string();
                    let path = req.split_whitespace().nth(1).unwrap_or("/").to_owned();
                    let reply = r
                        .lock()
                        .unwrap()
                        .get(&path)
                        .cloned()
                        .unwrap_or(Reply::Status(404));
                    let write_ok = |body: &[u8]| {
                        let mut out = format!(
                            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                            body.len()
                        )
                        .into_bytes();
                        out.extend_from_slice(body);
                        out
                    };
                    match reply {
                        Reply::Ok(body) => {
                            let _ = sock.write_all(&write_ok(&body)).await;
                        }
                        Reply::Status(code) => {
                            let _ = sock
                                .write_all(format!("HTTP/1.1 {code} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").as_bytes())
                                .await;
                        }
                        Reply::Slow(d, body) => {
                            tokio::time::sleep(d).await;
                            let _ = sock.write_all(&write_ok(&body)).await;
                        }
                        Reply::Huge(total) => {
                            let _ = sock
                                .write_all(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n")
                                .await;
                            let chunk = vec![b'A'; 16 * 1024];
                            let mut sent = 0;
                            while sent < total {
                                if sock.write_all(&chunk).await.is_err() {
                                    break;
                                }
                                sent += chunk.len();
                            }
                        }
                    }
                    let _ = sock.shutdown().await;
                });
            }
        });
        TestServer { base, routes, hits }
    }

    pub fn set(&self, path: &str, reply: Reply) {
        self.routes.lock().unwrap().insert(path.to_owned(), reply);
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// A base URL where nothing listens.
pub async fn dead_endpoint() -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    base
}

pub fn fixture_bytes(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// Bearer-token issuer for tests: RS256 and ES256 keys, a JWKS document.
pub struct Issuer {
    pub issuer: String,
    pub rsa: jsonwebtoken::EncodingKey,
    pub rsa_kid: String,
    pub ec: jsonwebtoken::EncodingKey,
    pub ec_kid: String,
}

impl Issuer {
    pub fn new(issuer: &str) -> Self {
        Issuer {
            issuer: issuer.to_owned(),
            rsa: jsonwebtoken::EncodingKey::from_rsa_der(&fixture_bytes("rsa-test-key.pkcs1.der")),
            rsa_kid: "rsa-1".into(),
            ec: jsonwebtoken::EncodingKey::from_ec_der(&fixture_bytes("ec-test-key.pkcs8.der")),
            ec_kid: "ec-1".into(),
        }
    }

    pub fn jwk(key: &jsonwebtoken::EncodingKey, alg: jsonwebtoken::Algorithm, kid: &str) -> Value {
        let mut jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(key, alg).unwrap();
        jwk.common.key_id = Some(kid.to_owned());
        serde_json::to_value(jwk).unwrap()
    }

    pub fn jwks(&self) -> Vec<u8> {
        json!({ "keys": [
            Self::jwk(&self.rsa, jsonwebtoken::Algorithm::RS256, &self.rsa_kid),
            Self::jwk(&self.ec, jsonwebtoken::Algorithm::ES256, &self.ec_kid),
        ]})
        .to_string()
        .into_bytes()
    }

    pub fn access_claims(&self, client: &str, scope: &str) -> Value {
        json!({
            "iss": self.issuer, "sub": client, "client_id": client, "token_use": "access",
            "scope": scope, "iat": now(), "exp": now() + 600, "jti": uuid::Uuid::new_v4().to_string()
        })
    }

    pub fn sign_rs256(&self, claims: &Value) -> String {
        self.sign_with(
            jsonwebtoken::Algorithm::RS256,
            &self.rsa,
            &self.rsa_kid,
            claims,
        )
    }

    pub fn sign_es256(&self, claims: &Value) -> String {
        self.sign_with(
            jsonwebtoken::Algorithm::ES256,
            &self.ec,
            &self.ec_kid,
            claims,
        )
    }

    pub fn sign_with(
        &self,
        alg: jsonwebtoken::Algorithm,
        key: &jsonwebtoken::EncodingKey,
        kid: &str,
        claims: &Value,
    ) -> String {
        let mut header = jsonwebtoken::Header::new(alg);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, claims, key).unwrap()
    }
}

/// Everything needed to authenticate as each kind of caller against a real authenticator:
/// an ALB key endpoint and a JWKS served locally, and headers for each persona.
pub struct Identities {
    pub alb_key: AlbKeyPair,
    pub issuer: Issuer,
    pub server: TestServer,
    pub authenticator: std::sync::Arc<players_api::auth::IdentityAuthenticator>,
}

pub const PUBLIC_ORIGIN: &str = "https://players.example.com";
pub const SERVICE_CLIENT: &str = "svc-client";

#[derive(Clone, Debug)]
pub enum Persona {
    Anonymous,
    /// A browser user in these Cognito groups.
    User(&'static str, Vec<&'static str>),
    /// A service with these scopes.
    Service(Vec<&'static str>),
}

impl Identities {
    pub async fn start() -> Identities {
        use players_api::auth::{
            IdentityAuthenticator,
            alb::{AlbVerifier, AlbVerifierConfig, SignerArn},
            bearer::{BearerVerifier, BearerVerifierConfig},
            config::GroupsSource,
            policy::PermissionPolicy,
        };
        let server = TestServer::start().await;
        let alb_key = AlbKeyPair::generate();
        server.set(
            &format!("/alb/{}", alb_key.kid),
            Reply::Ok(alb_key.public_pem().into_bytes()),
        );
        let issuer = Issuer::new(&format!("{}/idp", server.base));
        server.set("/idp/.well-known/jwks.json", Reply::Ok(issuer.jwks()));
        let mut ac = AlbVerifierConfig::new(vec![SignerArn::parse(ARN).unwrap()]);
        ac.issuer = Some(ISSUER.into());
        ac.client_id = Some(CLIENT.into());
        ac.key_endpoint = Some(format!("{}/alb", server.base));
        let mut bc = BearerVerifierConfig::new(issuer.issuer.clone());
        bc.client_ids = vec![SERVICE_CLIENT.into()];
        let authenticator = IdentityAuthenticator::new(
            Some(std::sync::Arc::new(AlbVerifier::new(ac).unwrap())),
            Some(std::sync::Arc::new(BearerVerifier::new(bc).unwrap())),
            PermissionPolicy::default(),
            GroupsSource::Both,
            "cognito:groups",
            vec![PUBLIC_ORIGIN.into()],
        );
        Identities {
            alb_key,
            issuer,
            server,
            authenticator: std::sync::Arc::new(authenticator),
        }
    }

    /// An ALB header for `sub` in `groups`.
    pub fn alb_header(&self, sub: &str, groups: &[&str]) -> String {
        let exp = now() + 600;
        let mut h = self.alb_key.header();
        h["exp"] = json!(exp);
        let mut c = self.alb_key.claims(exp);
        c["sub"] = json!(sub);
        c["cognito:groups"] = json!(groups);
        self.alb_key.sign(&h, &c, true)
    }

    pub fn service_token(&self, scopes: &[&str]) -> String {
        self.issuer
            .sign_rs256(&self.issuer.access_claims(SERVICE_CLIENT, &scopes.join(" ")))
    }

    /// Headers that authenticate as `persona` (same-origin, as a browser would send them).
    pub fn headers(&self, persona: &Persona) -> Vec<(String, String)> {
        match persona {
            Persona::Anonymous => vec![],
            Persona::User(sub, groups) => vec![
                ("x-amzn-oidc-data".into(), self.alb_header(sub, groups)),
                ("origin".into(), PUBLIC_ORIGIN.into()),
            ],
            Persona::Service(scopes) => vec![(
                "authorization".into(),
                format!("Bearer {}", self.service_token(scopes)),
            )],
        }
    }
}
