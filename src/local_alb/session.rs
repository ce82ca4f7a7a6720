//! What the "ALB" remembers about a browser, kept in the browser as the ALB keeps it: the
//! session (the IdP's userinfo response and access token) encrypted into
//! `<name>-0`..`<name>-3` cookie shards of at most 4 KB each, and, while a login is under way,
//! the `AWSALBAuthNonce` cookie that binds the `state` and `nonce` of the authorisation request
//! to this browser.
//!
//! Both are AES-256-GCM with a key generated at start (a restart logs everybody out, as a new
//! ALB key would). Nothing here is logged.

use actix_web::{
    HttpRequest,
    cookie::{Cookie, SameSite, time::Duration as CookieDuration},
};
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// Value bytes per shard: with the name and attributes a `Set-Cookie` stays under 4096 bytes.
pub const SHARD_BYTES: usize = 4000;
/// The ALB splits its session into at most four shards (16 KB); `/logout` expires all four.
pub const MAX_SHARDS: usize = 4;
/// Userinfo claims plus access token above this: the ALB answers 500 itself.
pub const MAX_CLAIMS_BYTES: usize = 11 * 1024;
/// The cookie that carries `state` and `nonce` between the redirect and the callback.
pub const NONCE_COOKIE: &str = "AWSALBAuthNonce";
/// How long a login may take between the redirect and the callback.
pub const LOGIN_TTL_SECS: i64 = 900;

/// A logged-in browser.
#[derive(Clone, Serialize, Deserialize)]
pub struct Session {
    /// The IdP's userinfo response, exactly as received (signed into `x-amzn-oidc-data`).
    pub userinfo: serde_json::Map<String, serde_json::Value>,
    /// The IdP's access token (`x-amzn-oidc-accesstoken`).
    pub access_token: String,
    pub sub: String,
    /// Unix seconds; after this the browser logs in again.
    pub expires_at: i64,
}

// Tokens are credentials: `Debug` shows neither the access token nor the claims.
impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A login under way: what the callback must find again.
#[derive(Serialize, Deserialize)]
pub struct PendingLogin {
    pub state: String,
    pub nonce: String,
    /// Where the browser was going (path and query on this host).
    pub target: String,
    pub expires_at: i64,
}

/// The sealing key of sessions and pending logins.
pub struct CookieSealer {
    key: LessSafeKey,
}

impl std::fmt::Debug for CookieSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CookieSealer([REDACTED])")
    }
}

/// Which cookie a sealed value belongs to (bound as associated data, so one cannot stand in
/// for the other).
#[derive(Clone, Copy)]
enum Purpose {
    Session,
    Nonce,
}

impl Purpose {
    fn aad(self) -> &'static [u8] {
        match self {
            Purpose::Session => b"players-local-alb session v1",
            Purpose::Nonce => b"players-local-alb nonce v1",
        }
    }
}

impl CookieSealer {
    pub fn generate() -> anyhow::Result<Self> {
        let mut bytes = [0u8; 32];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| anyhow::anyhow!("system RNG failed"))?;
        let key = UnboundKey::new(&AES_256_GCM, &bytes)
            .map_err(|_| anyhow::anyhow!("building the session key"))?;
        Ok(CookieSealer {
            key: LessSafeKey::new(key),
        })
    }

    fn seal<T: Serialize>(&self, value: &T, purpose: Purpose) -> anyhow::Result<String> {
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| anyhow::anyhow!("system RNG failed"))?;
        let mut data = serde_json::to_vec(value)?;
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(purpose.aad()),
                &mut data,
            )
            .map_err(|_| anyhow::anyhow!("sealing a cookie failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Ok(URL_SAFE_NO_PAD.encode(out))
    }

    fn open<T: DeserializeOwned>(&self, sealed: &str, purpose: Purpose) -> Option<T> {
        let bytes = URL_SAFE_NO_PAD.decode(sealed).ok()?;
        if bytes.len() < NONCE_LEN {
            return None;
        }
        let (nonce, data) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut data = data.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(purpose.aad()), &mut data)
            .ok()?;
        serde_json::from_slice(plain).ok()
    }

    /// The session as shard values (`-0`, `-1`, …), each at most [`SHARD_BYTES`].
    pub fn seal_session(&self, session: &Session) -> anyhow::Result<Vec<String>> {
        let sealed = self.seal(session, Purpose::Session)?;
        let shards: Vec<String> = sealed
            .as_bytes()
            .chunks(SHARD_BYTES)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        anyhow::ensure!(
            shards.len() <= MAX_SHARDS,
            "the session needs {} cookie shards (at most {MAX_SHARDS})",
            shards.len()
        );
        Ok(shards)
    }

    /// The live session in the request's shards, if any: shards are read from `-0` up to the
    /// first missing one; anything that does not open (tampered, another key, expired) is no
    /// session.
    pub fn session(&self, req: &HttpRequest, cookie_name: &str, now: i64) -> Option<Session> {
        let mut sealed = String::new();
        for i in 0..MAX_SHARDS {
            match req.cookie(&format!("{cookie_name}-{i}")) {
                Some(c) if !c.value().is_empty() => sealed.push_str(c.value()),
                _ => break,
            }
        }
        if sealed.is_empty() {
            return None;
        }
        let session: Session = self.open(&sealed, Purpose::Session)?;
        (session.expires_at > now).then_some(session)
    }

    pub fn seal_pending(&self, pending: &PendingLogin) -> anyhow::Result<String> {
        self.seal(pending, Purpose::Nonce)
    }

    pub fn pending(&self, req: &HttpRequest) -> Option<PendingLogin> {
        let cookie = req.cookie(NONCE_COOKIE)?;
        self.open(cookie.value(), Purpose::Nonce)
    }
}

fn base_cookie(name: String, value: String) -> Cookie<'static> {
    Cookie::build(name, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .finish()
}

/// `Set-Cookie`s for a new session: its shards, and removals of the shards it does not use
/// (a smaller session must not be glued to the tail of a bigger one).
pub fn session_cookies(
    cookie_name: &str,
    shards: &[String],
    max_age_secs: i64,
) -> Vec<Cookie<'static>> {
    (0..MAX_SHARDS)
        .map(|i| match shards.get(i) {
            Some(value) => {
                let mut c = base_cookie(format!("{cookie_name}-{i}"), value.clone());
                c.set_max_age(CookieDuration::seconds(max_age_secs.max(0)));
                c
            }
            None => removal(format!("{cookie_name}-{i}")),
        })
        .collect()
}

/// `Set-Cookie`s that expire every shard.
pub fn expired_shards(cookie_name: &str) -> Vec<Cookie<'static>> {
    (0..MAX_SHARDS)
        .map(|i| removal(format!("{cookie_name}-{i}")))
        .collect()
}

pub fn nonce_cookie(sealed: String) -> Cookie<'static> {
    let mut c = base_cookie(NONCE_COOKIE.to_owned(), sealed);
    c.set_max_age(CookieDuration::seconds(LOGIN_TTL_SECS));
    c
}

pub fn nonce_removal() -> Cookie<'static> {
    removal(NONCE_COOKIE.to_owned())
}

fn removal(name: String) -> Cookie<'static> {
    let mut c = base_cookie(name, String::new());
    c.make_removal();
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(token_len: usize) -> Session {
        let mut userinfo = serde_json::Map::new();
        userinfo.insert("sub".into(), "s-1".into());
        Session {
            userinfo,
            access_token: "a".repeat(token_len),
            sub: "s-1".into(),
            expires_at: 2_000_000_000,
        }
    }

    fn request_with(cookies: &[(String, String)]) -> HttpRequest {
        let mut req = actix_web::test::TestRequest::default();
        for (k, v) in cookies {
            req = req.cookie(Cookie::new(k.clone(), v.clone()));
        }
        req.to_http_request()
    }

    #[test]
    fn a_session_round_trips_through_its_shards() {
        let sealer = CookieSealer::generate().unwrap();
        let shards = sealer.seal_session(&session(9000)).unwrap();
        assert!(shards.len() == 4 || shards.len() == 3, "{}", shards.len());
        assert!(shards.iter().all(|s| s.len() <= SHARD_BYTES));
        let cookies: Vec<_> = shards
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("AWSELBAuthSessionCookie-{i}"), s.clone()))
            .collect();
        let got = sealer
            .session(&request_with(&cookies), "AWSELBAuthSessionCookie", 1)
            .unwrap();
        assert_eq!(got.access_token.len(), 9000);
        // Expired, or a shard missing, or another key: no session.
        assert!(
            sealer
                .session(
                    &request_with(&cookies),
                    "AWSELBAuthSessionCookie",
                    2_000_000_000
                )
                .is_none()
        );
        assert!(
            sealer
                .session(&request_with(&cookies[1..]), "AWSELBAuthSessionCookie", 1)
                .is_none()
        );
        let other = CookieSealer::generate().unwrap();
        assert!(
            other
                .session(&request_with(&cookies), "AWSELBAuthSessionCookie", 1)
                .is_none()
        );
    }

    #[test]
    fn a_nonce_cookie_cannot_stand_in_for_a_session() {
        let sealer = CookieSealer::generate().unwrap();
        let sealed = sealer
            .seal_pending(&PendingLogin {
                state: "s".into(),
                nonce: "n".into(),
                target: "/".into(),
                expires_at: 2_000_000_000,
            })
            .unwrap();
        let req = request_with(&[("AWSELBAuthSessionCookie-0".into(), sealed)]);
        assert!(sealer.session(&req, "AWSELBAuthSessionCookie", 1).is_none());
    }

    #[test]
    fn the_largest_allowed_session_fits_in_four_shards() {
        let sealer = CookieSealer::generate().unwrap();
        assert!(
            sealer
                .seal_session(&session(MAX_CLAIMS_BYTES))
                .unwrap()
                .len()
                <= MAX_SHARDS
        );
    }

    #[test]
    fn new_sessions_clear_unused_shards() {
        let cookies = session_cookies("C", &["x".into()], 60);
        assert_eq!(cookies.len(), 4);
        assert_eq!(cookies[0].value(), "x");
        assert!(
            cookies[1..]
                .iter()
                .all(|c| c.max_age() == Some(CookieDuration::ZERO))
        );
    }
}
