//! Every way a bearer token can fail, one variant per check.

use crate::auth::fetch::FetchError;

#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum BearerError {
    #[error("token exceeds {max} bytes")]
    Oversized { max: usize },
    #[error("token is not a well-formed JWT")]
    Malformed,
    #[error("alg {0} not allowed (RS256, ES256)")]
    AlgNotAllowed(String),
    #[error("kid missing")]
    KidMissing,
    #[error("no key with this kid in the JWKS")]
    UnknownKid,
    #[error("token alg does not match the key's algorithm")]
    AlgKeyMismatch,
    #[error("signature does not verify")]
    BadSignature,
    #[error("exp missing")]
    ExpMissing,
    #[error("token expired")]
    Expired,
    #[error("token not valid yet (nbf)")]
    NotYetValid,
    #[error("iat is in the future")]
    IatInFuture,
    #[error("iss is not the configured issuer")]
    WrongIssuer,
    #[error("token_use is not access")]
    NotAccessToken,
    #[error("neither client_id nor aud is in the allow-list")]
    WrongClient,
    #[error("JWKS unavailable: {0}")]
    JwksFetch(FetchError),
    #[error("JWKS document is not valid")]
    JwksInvalid,
}

impl BearerError {
    pub fn reason(&self) -> &'static str {
        match self {
            BearerError::Oversized { .. } => "oversized",
            BearerError::Malformed => "malformed",
            BearerError::AlgNotAllowed(_) => "alg_not_allowed",
            BearerError::KidMissing => "kid_missing",
            BearerError::UnknownKid => "unknown_kid",
            BearerError::AlgKeyMismatch => "alg_key_mismatch",
            BearerError::BadSignature => "bad_signature",
            BearerError::ExpMissing => "exp_missing",
            BearerError::Expired => "expired",
            BearerError::NotYetValid => "not_yet_valid",
            BearerError::IatInFuture => "iat_in_future",
            BearerError::WrongIssuer => "wrong_issuer",
            BearerError::NotAccessToken => "token_use_not_access",
            BearerError::WrongClient => "wrong_client",
            BearerError::JwksFetch(e) => match e {
                FetchError::TooLarge(_) => "jwks_too_large",
                FetchError::Timeout => "jwks_fetch_timeout",
                _ => "jwks_fetch_failed",
            },
            BearerError::JwksInvalid => "jwks_invalid",
        }
    }
}
