//! Every way an `x-amzn-oidc-data` header can fail verification, one variant per check.

use crate::auth::fetch::FetchError;

/// A failed check. `reason()` is the stable code written to the log (`event="auth_failure"`);
/// the client only ever sees `invalid_token`. No variant carries token bytes.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum AlbError {
    #[error("header exceeds {max} bytes")]
    Oversized { max: usize },
    #[error("expected 3 dot-separated segments, got {0}")]
    SegmentCount(usize),
    #[error("a segment is empty")]
    EmptySegment,
    #[error("a segment is not base64url")]
    InvalidBase64,
    #[error("JWT header is not a JSON object")]
    HeaderNotJson,
    #[error("JWT payload is not a JSON object")]
    PayloadNotJson,
    #[error("alg missing")]
    AlgMissing,
    #[error("alg {0:?} not allowed (only ES256)")]
    AlgNotAllowed(String),
    #[error("kid missing")]
    KidMissing,
    #[error("kid is not a UUID")]
    KidNotUuid,
    #[error("signer missing")]
    SignerMissing,
    #[error("signer {0:?} not in the allow-list")]
    SignerNotAllowed(String),
    #[error("exp missing from the payload")]
    ExpMissing,
    #[error("exp is not a number")]
    ExpInvalid,
    #[error("token expired at {exp} (now {now})")]
    Expired { exp: i64, now: i64 },
    #[error("header exp and payload exp differ")]
    ExpMismatch,
    #[error("header iss and payload iss differ")]
    IssMismatch,
    #[error("iss missing or not the configured issuer")]
    WrongIssuer,
    #[error("client missing or not the configured client id")]
    WrongClient,
    #[error("signature is {0} bytes, expected 64 (raw r||s)")]
    SignatureLength(usize),
    #[error("signature does not verify")]
    BadSignature,
    #[error("public key for this kid unavailable: {0}")]
    KeyFetch(FetchError),
    #[error("public key for this kid is not a P-256 SubjectPublicKeyInfo PEM")]
    KeyInvalid,
    #[error("key fetch for this kid failed recently; not retrying yet")]
    KeyPenalty,
    #[error("too many key fetches in this window")]
    KeyFetchBudget,
}

impl AlbError {
    /// Stable code for logs and metrics (`AuthFailures` by `Reason`).
    pub fn reason(&self) -> &'static str {
        match self {
            AlbError::Oversized { .. } => "oversized",
            AlbError::SegmentCount(_) => "segment_count",
            AlbError::EmptySegment => "empty_segment",
            AlbError::InvalidBase64 => "invalid_base64",
            AlbError::HeaderNotJson => "header_not_json",
            AlbError::PayloadNotJson => "payload_not_json",
            AlbError::AlgMissing => "alg_missing",
            AlbError::AlgNotAllowed(_) => "alg_not_allowed",
            AlbError::KidMissing => "kid_missing",
            AlbError::KidNotUuid => "kid_not_uuid",
            AlbError::SignerMissing => "signer_missing",
            AlbError::SignerNotAllowed(_) => "signer_not_allowed",
            AlbError::ExpMissing => "exp_missing",
            AlbError::ExpInvalid => "exp_invalid",
            AlbError::Expired { .. } => "expired",
            AlbError::ExpMismatch => "exp_mismatch",
            AlbError::IssMismatch => "iss_mismatch",
            AlbError::WrongIssuer => "wrong_issuer",
            AlbError::WrongClient => "wrong_client",
            AlbError::SignatureLength(_) => "signature_length",
            AlbError::BadSignature => "bad_signature",
            AlbError::KeyFetch(e) => e.reason(),
            AlbError::KeyInvalid => "key_invalid",
            AlbError::KeyPenalty => "key_penalty",
            AlbError::KeyFetchBudget => "key_fetch_budget",
        }
    }
}
