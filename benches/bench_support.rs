//! Shared by the benches: a warmed ALB verifier and bearer verifier backed by local servers.
#![allow(dead_code)]

#[path = "../tests/integration/support/identity.rs"]
pub mod auth_support;

use std::sync::Arc;

use auth_support::*;
use players_api::auth::{
    alb::{AlbVerifier, AlbVerifierConfig, SignerArn},
    bearer::{BearerVerifier, BearerVerifierConfig},
};

pub struct Setup {
    pub rt: tokio::runtime::Runtime,
    pub key: AlbKeyPair,
    pub alb: Arc<AlbVerifier>,
    pub issuer: Issuer,
    pub bearer: Arc<BearerVerifier>,
    _server: TestServer,
}

pub fn setup() -> Setup {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let key = AlbKeyPair::generate();
    let (server, alb, issuer, bearer) = rt.block_on(async {
        let server = TestServer::start().await;
        server.set(
            &format!("/{}", key.kid),
            Reply::Ok(key.public_pem().into_bytes()),
        );
        let mut c = AlbVerifierConfig::new(vec![SignerArn::parse(ARN).unwrap()]);
        c.issuer = Some(ISSUER.into());
        c.client_id = Some(CLIENT.into());
        c.key_endpoint = Some(server.base.clone());
        let alb = Arc::new(AlbVerifier::new(c).unwrap());
        alb.verify(&key.token()).await.unwrap(); // warms the key cache
        let issuer = Issuer::new(&format!("{}/pool", server.base));
        server.set("/pool/.well-known/jwks.json", Reply::Ok(issuer.jwks()));
        let mut bc = BearerVerifierConfig::new(issuer.issuer.clone());
        bc.client_ids = vec!["svc".into()];
        let bearer = Arc::new(BearerVerifier::new(bc).unwrap());
        bearer
            .verify(&issuer.sign_rs256(&issuer.access_claims("svc", "players/read")))
            .await
            .unwrap(); // warms the JWKS
        (server, alb, issuer, bearer)
    });
    Setup {
        rt,
        key,
        alb,
        issuer,
        bearer,
        _server: server,
    }
}

/// `n` distinct valid ALB tokens (distinct signatures), valid for an hour.
pub fn alb_tokens(key: &AlbKeyPair, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let exp = now() + 3600;
            let mut h = key.header();
            h["exp"] = serde_json::json!(exp);
            let mut c = key.claims(exp);
            c["n"] = serde_json::json!(i);
            key.sign(&h, &c, true)
        })
        .collect()
}
