//! Minting `x-amzn-oidc-data` exactly as the real ALB shapes it:
//! ES256 over the *padded* `header.payload` bytes, base64url segments WITH `=` padding, a raw
//! 64-byte `r||s` signature, and a header carrying `kid`, `signer`, `iss`, `client` and `exp`.

use base64::{
    Engine,
    engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD},
};
use p256::{
    ecdsa::{Signature, SigningKey, signature::Signer},
    pkcs8::{EncodePublicKey, LineEnding},
};
use serde::Serialize;

/// The claims the ALB copies from the IdP's userinfo response into the payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserClaims {
    pub sub: String,
    pub email: String,
    pub username: String,
    pub name: String,
    /// Some IdPs put groups in userinfo; Cognito does not (then this stays `None`).
    pub groups: Option<Vec<String>>,
}

#[derive(Serialize)]
struct AlbHeader<'a> {
    typ: &'static str,
    kid: &'a str,
    alg: &'static str,
    iss: &'a str,
    client: &'a str,
    signer: &'a str,
    exp: i64,
}

/// The local ALB's signing identity: a P-256 key generated at start, addressed by a UUID `kid`.
pub struct AlbSigner {
    key: SigningKey,
    kid: String,
    signer_arn: String,
    issuer: String,
    client_id: String,
}

// Key material never reaches a log line, not even through `{:?}`.
impl std::fmt::Debug for AlbSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlbSigner")
            .field("kid", &self.kid)
            .field("signer_arn", &self.signer_arn)
            .field("key", &"[REDACTED]")
            .finish()
    }
}

impl AlbSigner {
    /// Generates a fresh key and a random `kid`.
    pub fn generate(signer_arn: &str, issuer: &str, client_id: &str) -> anyhow::Result<Self> {
        Ok(AlbSigner {
            key: generate_p256_key()?,
            kid: uuid::Uuid::new_v4().to_string(),
            signer_arn: signer_arn.to_owned(),
            issuer: issuer.to_owned(),
            client_id: client_id.to_owned(),
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn signer_arn(&self) -> &str {
        &self.signer_arn
    }

    /// The public key as the AWS key endpoint serves it: PEM SubjectPublicKeyInfo.
    pub fn public_key_pem(&self) -> anyhow::Result<String> {
        self.key
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| anyhow::anyhow!("encoding the ALB public key as PEM: {e}"))
    }

    /// An ALB-format user-claims token for `claims` expiring at `exp` (unix seconds), with the
    /// claims a Cognito userinfo response has for them.
    pub fn mint(&self, claims: &UserClaims, exp: i64) -> anyhow::Result<String> {
        let mut userinfo = serde_json::Map::new();
        userinfo.insert("sub".into(), claims.sub.clone().into());
        userinfo.insert("email_verified".into(), "true".into());
        userinfo.insert("email".into(), claims.email.clone().into());
        userinfo.insert("username".into(), claims.username.clone().into());
        userinfo.insert("name".into(), claims.name.clone().into());
        if let Some(groups) = &claims.groups {
            userinfo.insert("cognito:groups".into(), serde_json::json!(groups));
        }
        self.mint_userinfo(&userinfo, exp)
    }

    /// An ALB-format token over an IdP's userinfo response, as the ALB builds it: the userinfo
    /// claims as they came, then `exp` and `iss`.
    pub fn mint_userinfo(
        &self,
        userinfo: &serde_json::Map<String, serde_json::Value>,
        exp: i64,
    ) -> anyhow::Result<String> {
        let header = AlbHeader {
            typ: "JWT",
            kid: &self.kid,
            alg: "ES256",
            iss: &self.issuer,
            client: &self.client_id,
            signer: &self.signer_arn,
            exp,
        };
        let mut payload = userinfo.clone();
        payload.insert("exp".into(), exp.into());
        payload.insert("iss".into(), self.issuer.clone().into());
        let mut token = URL_SAFE.encode(serde_json::to_vec(&header)?);
        token.push('.');
        token.push_str(&URL_SAFE.encode(serde_json::to_vec(&payload)?));
        // Signed over the padded bytes, padding included, like the ALB.
        let signature: Signature = self.key.sign(token.as_bytes());
        token.push('.');
        token.push_str(&URL_SAFE.encode(signature.to_bytes()));
        Ok(token)
    }
}

/// `GET {key_endpoint}/{kid}`: the PEM SPKI for a known `kid`, 404 otherwise (like AWS).
pub(crate) async fn public_key(
    kid: actix_web::web::Path<String>,
    signer: actix_web::web::Data<AlbSigner>,
) -> actix_web::HttpResponse {
    use actix_web::{HttpResponse, http::header};
    if kid.as_str() != signer.kid() {
        return HttpResponse::NotFound().finish();
    }
    match signer.public_key_pem() {
        Ok(pem) => HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, "application/x-pem-file"))
            .insert_header((header::CACHE_CONTROL, "public, max-age=86400"))
            .body(pem),
        Err(e) => {
            tracing::error!(error = ?e, "local ALB: encoding the public key failed");
            HttpResponse::InternalServerError().finish()
        }
    }
}

/// A P-256 private key from the operating system's CSPRNG (via aws-lc-rs). A random 32-byte
/// string is a valid scalar with overwhelming probability; the loop covers the rest.
pub(crate) fn generate_p256_key() -> anyhow::Result<SigningKey> {
    for _ in 0..16 {
        let mut bytes = [0u8; 32];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| anyhow::anyhow!("system RNG failed"))?;
        if let Ok(key) = SigningKey::from_slice(&bytes) {
            return Ok(key);
        }
    }
    anyhow::bail!("could not generate a P-256 key")
}

/// base64url without padding, as standard JWTs (the local issuer's tokens) use it.
pub(crate) fn b64url_nopad(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Random bytes as lowercase hex (session ids, trace ids, `jti`s).
pub(crate) fn random_hex(n_bytes: usize) -> anyhow::Result<String> {
    let mut bytes = vec![0u8; n_bytes];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| anyhow::anyhow!("system RNG failed"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::{
        ecdsa::{VerifyingKey, signature::Verifier},
        pkcs8::DecodePublicKey,
    };

    fn signer() -> AlbSigner {
        AlbSigner::generate(
            "arn:aws:elasticloadbalancing:local-1:000000000000:loadbalancer/app/players-local/0123456789abcdef",
            "http://127.0.0.1:1/issuer",
            "local-browser",
        )
        .unwrap()
    }

    fn claims() -> UserClaims {
        UserClaims {
            sub: "a0000000-0000-4000-8000-000000000001".into(),
            email: "admin@players.local".into(),
            username: "admin".into(),
            name: "Ada Admin".into(),
            groups: None,
        }
    }

    fn decode_json(segment: &str) -> serde_json::Value {
        serde_json::from_slice(&URL_SAFE.decode(segment).unwrap()).unwrap()
    }

    #[test]
    fn token_has_the_alb_shape() {
        let s = signer();
        let token = s.mint(&claims(), 1_900_000_000).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);

        let header = decode_json(parts[0]);
        assert_eq!(header["typ"], "JWT");
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["kid"], s.kid());
        assert!(uuid::Uuid::parse_str(header["kid"].as_str().unwrap()).is_ok());
        assert_eq!(header["signer"], s.signer_arn());
        assert_eq!(header["iss"], "http://127.0.0.1:1/issuer");
        assert_eq!(header["client"], "local-browser");
        assert_eq!(header["exp"], 1_900_000_000);
        assert_eq!(header.as_object().unwrap().len(), 7);

        let payload = decode_json(parts[1]);
        assert_eq!(payload["sub"], "a0000000-0000-4000-8000-000000000001");
        assert_eq!(payload["email"], "admin@players.local");
        assert_eq!(payload["username"], "admin");
        assert_eq!(payload["name"], "Ada Admin");
        assert_eq!(payload["email_verified"], "true");
        assert_eq!(payload["exp"], 1_900_000_000);
        assert_eq!(payload["iss"], "http://127.0.0.1:1/issuer");
        assert!(payload.get("cognito:groups").is_none());
        assert!(payload.get("iat").is_none() && payload.get("aud").is_none());

        let sig = URL_SAFE.decode(parts[2]).unwrap();
        assert_eq!(sig.len(), 64, "raw r||s, not DER");
    }

    #[test]
    fn signature_covers_the_padded_bytes() {
        let s = signer();
        let token = s.mint(&claims(), 1_900_000_000).unwrap();
        let (signed, sig) = token.rsplit_once('.').unwrap();
        // The signature segment (64 bytes) always needs padding.
        assert!(sig.ends_with('='));
        let key = VerifyingKey::from_public_key_pem(&s.public_key_pem().unwrap()).unwrap();
        let sig = Signature::from_slice(&URL_SAFE.decode(sig).unwrap()).unwrap();
        key.verify(signed.as_bytes(), &sig).unwrap();
        let unpadded = signed.replace('=', "");
        if unpadded != signed {
            assert!(key.verify(unpadded.as_bytes(), &sig).is_err());
        }
    }

    #[test]
    fn groups_appear_in_the_payload_only_when_asked() {
        let mut c = claims();
        c.groups = Some(vec!["players-admin".into()]);
        let token = signer().mint(&c, 1).unwrap();
        let payload = decode_json(token.split('.').nth(1).unwrap());
        assert_eq!(
            payload["cognito:groups"],
            serde_json::json!(["players-admin"])
        );
    }

    #[test]
    fn debug_hides_the_key() {
        let dbg = format!("{:?}", signer());
        assert!(dbg.contains("[REDACTED]"));
    }
}
