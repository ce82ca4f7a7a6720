//! Identity: who is calling (`Principal`) and what they may do (`Permission`).
//!
//! The server depends only on the `Authenticator` trait; `startup` is handed the
//! implementation, so production verifiers and test doubles plug in the same way.
//!
//! - `alb/`: verifies the ALB's `x-amzn-oidc-data` header (ES256).
//! - `bearer/`: verifies `Authorization: Bearer` JWTs against the issuer's JWKS.
//! - `authenticator`: the production `Authenticator`, combining both (rules documented there),
//!   and its construction from the settings (`authenticator::from_settings`).
//! - `csrf`: the same-origin rule for unsafe requests on an ALB session.
//! - `policy`: groups and scopes → permissions. `config`: the identity settings (clap).
//! - `cli`: `players-api verify-alb-header`.

pub mod alb;
pub mod authenticator;
pub mod bearer;
pub mod cli;
pub mod config;
pub mod csrf;
pub mod fetch;
mod permission;
pub mod policy;
mod principal;

pub use authenticator::IdentityAuthenticator;
pub use config::AuthSettings;
pub use permission::{Permission, PermissionSet};
pub use principal::{Forbidden, Principal, PrincipalKind};

use actix_web::HttpRequest;

/// Why a request carries no usable identity. The client sees only a stable code; `reason`
/// goes to the log with the request id, and never contains a token.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No credential at all.
    #[error("no credentials")]
    Missing,
    /// A credential was present and failed verification.
    #[error("invalid {scheme:?} credential: {reason}")]
    InvalidToken { scheme: Scheme, reason: String },
    /// A cookie-authenticated unsafe request that is not same-origin.
    #[error("cross-site request refused: {reason}")]
    CsrfRejected { reason: String },
}

/// Which kind of credential a failure is about (bearer failures get a `WWW-Authenticate`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Alb,
    Bearer,
}

/// Turns a request's credentials into a `Principal`. Implementations must verify every
/// credential they read; the trait has no way to say "trust this header".
#[async_trait::async_trait(?Send)]
pub trait Authenticator: 'static {
    async fn authenticate(&self, req: &HttpRequest) -> Result<Principal, AuthError>;
}
