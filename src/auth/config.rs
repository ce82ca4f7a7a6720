//! Identity settings, read by `players-api serve` from the environment (see the README's
//! configuration table). None of them is a secret, so `Debug` is derived.
//!
//! | variable | default | meaning |
//! | --- | --- | --- |
//! | `ALB_SIGNER_ARNS` | unset | comma list of ALB ARNs allowed to sign `x-amzn-oidc-data`; setting it enables ALB auth |
//! | `ALB_ISSUER` | required with ALB auth | expected `iss` of the user claims and of the ALB's access token; `unchecked` opts out |
//! | `ALB_CLIENT_ID` | required with ALB auth | expected `client` in the header and `client_id` of the ALB's access token (the browser client); `unchecked` opts out |
//! | `ALB_KEY_ENDPOINT` | from the ARN's partition/region | public-key endpoint override (China, tests, local ALB) |
//! | `ALB_EXP_SKEW_SECS` | 60 | clock skew tolerated after `exp` |
//! | `ALB_GROUPS_SOURCE` | both | where user groups come from: `userinfo` (x-amzn-oidc-data), `accesstoken` (x-amzn-oidc-accesstoken, verified against `ALB_ISSUER`'s JWKS and required to be issued to `ALB_CLIENT_ID`), `both` (union; the access token part needs `ALB_ISSUER` and `ALB_CLIENT_ID`) |
//! | `AUTH_GROUPS_CLAIM` | cognito:groups | claim holding the groups |
//! | `AUTH_GROUP_PERMISSIONS` | see `policy` | group → permissions |
//! | `AUTH_SCOPE_PREFIX` | players | resource-server identifier of the scopes |
//! | `AUTH_SCOPE_PERMISSIONS` | see `policy` | scope → permissions |
//! | `AUTH_PUBLIC_ORIGINS` | unset | comma list of origins (`https://players.example.com`) accepted for unsafe ALB-session requests |
//! | `AUTH_LOGOUT_URL` | unset | where `GET /logout` redirects (the IdP's logout endpoint) |
//! | `AUTH_SESSION_COOKIE_NAME` | AWSELBAuthSessionCookie | ALB session cookie name (shards -0..-3 expired on logout) |
//! | `BEARER_ISSUER` | unset | issuer of service tokens; setting it enables bearer auth |
//! | `BEARER_JWKS_URL` | `{issuer}/.well-known/jwks.json` | JWKS location |
//! | `BEARER_CLIENT_IDS` | unset | comma list of accepted `client_id`s of services (the ALB's access token is checked against `ALB_CLIENT_ID` instead) |
//! | `BEARER_AUDIENCES` | unset | comma list of accepted `aud`s (one of the two lists is required) |

use super::{
    alb::{AlbConfigError, InvalidArn},
    bearer::BearerConfigError,
    policy::MappingError,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum GroupsSource {
    /// The verified `x-amzn-oidc-data` (IdPs that put groups in userinfo).
    Userinfo,
    /// The verified `x-amzn-oidc-accesstoken` (Cognito: userinfo has no groups).
    Accesstoken,
    /// The union of both.
    #[default]
    Both,
}

#[derive(Clone, Debug, clap::Args)]
pub struct AuthSettings {
    /// ALB ARNs allowed to sign x-amzn-oidc-data (comma list); enables ALB authentication.
    #[arg(long, env = "ALB_SIGNER_ARNS", value_delimiter = ',')]
    pub alb_signer_arns: Vec<String>,
    /// Expected `iss` of the ALB user claims.
    #[arg(long, env = "ALB_ISSUER")]
    pub alb_issuer: Option<String>,
    /// Expected `client` of the ALB user claims.
    #[arg(long, env = "ALB_CLIENT_ID")]
    pub alb_client_id: Option<String>,
    /// Override of the ALB public-key endpoint.
    #[arg(long, env = "ALB_KEY_ENDPOINT")]
    pub alb_key_endpoint: Option<String>,
    /// Seconds of clock skew tolerated after `exp`.
    #[arg(long, env = "ALB_EXP_SKEW_SECS", default_value_t = 60)]
    pub alb_exp_skew_secs: u64,
    /// Where browser users' groups come from.
    #[arg(long, env = "ALB_GROUPS_SOURCE", value_enum, default_value_t = GroupsSource::Both)]
    pub alb_groups_source: GroupsSource,
    /// Claim holding the groups.
    #[arg(long, env = "AUTH_GROUPS_CLAIM", default_value = "cognito:groups")]
    pub auth_groups_claim: String,
    /// Group → permissions (`group=perm,perm;group=perm`); unset: the documented defaults.
    #[arg(long, env = "AUTH_GROUP_PERMISSIONS")]
    pub auth_group_permissions: Option<String>,
    /// Resource-server identifier prefixed to scopes.
    #[arg(long, env = "AUTH_SCOPE_PREFIX", default_value = "players")]
    pub auth_scope_prefix: String,
    /// Scope (without prefix) → permissions (`read=players:read;...`).
    #[arg(long, env = "AUTH_SCOPE_PERMISSIONS")]
    pub auth_scope_permissions: Option<String>,
    /// Origins accepted for unsafe requests of ALB-session users (comma list).
    #[arg(long, env = "AUTH_PUBLIC_ORIGINS", value_delimiter = ',')]
    pub auth_public_origins: Vec<String>,
    /// Where `GET /logout` redirects (the IdP's logout endpoint).
    #[arg(long, env = "AUTH_LOGOUT_URL")]
    pub auth_logout_url: Option<String>,
    /// ALB session cookie name; shards `-0`..`-3` are expired on logout.
    #[arg(
        long,
        env = "AUTH_SESSION_COOKIE_NAME",
        default_value = "AWSELBAuthSessionCookie"
    )]
    pub auth_session_cookie_name: String,
    /// Issuer of service bearer tokens; enables bearer authentication.
    #[arg(long, env = "BEARER_ISSUER")]
    pub bearer_issuer: Option<String>,
    /// JWKS URL (default `{issuer}/.well-known/jwks.json`).
    #[arg(long, env = "BEARER_JWKS_URL")]
    pub bearer_jwks_url: Option<String>,
    /// Accepted `client_id`s (comma list).
    #[arg(long, env = "BEARER_CLIENT_IDS", value_delimiter = ',')]
    pub bearer_client_ids: Vec<String>,
    /// Accepted `aud`s (comma list).
    #[arg(long, env = "BEARER_AUDIENCES", value_delimiter = ',')]
    pub bearer_audiences: Vec<String>,
}

/// Why `serve` refuses to start. Each message names the variable to fix.
#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    #[error(
        "no authentication configured: set ALB_SIGNER_ARNS (browser users through the ALB) and/or BEARER_ISSUER (service tokens)"
    )]
    NothingConfigured,
    #[error("ALB_SIGNER_ARNS: {0}")]
    Arn(#[from] InvalidArn),
    #[error("ALB_SIGNER_ARNS / ALB_KEY_ENDPOINT: {0}")]
    Alb(#[from] AlbConfigError),
    #[error("BEARER_ISSUER: {0}")]
    Bearer(#[from] BearerConfigError),
    #[error("AUTH_GROUP_PERMISSIONS / AUTH_SCOPE_PERMISSIONS: {0}")]
    Mapping(#[from] MappingError),
    #[error(
        "ALB_GROUPS_SOURCE=accesstoken needs ALB_ISSUER and ALB_CLIENT_ID, not `unchecked` (x-amzn-oidc-accesstoken is verified against that issuer's JWKS and must be issued to that client)"
    )]
    AccessTokenNeedsIssuer,
    #[error("AUTH_PUBLIC_ORIGINS: {0:?} is not an origin (scheme://host[:port], no path)")]
    BadOrigin(String),
    #[error(
        "{0} is required when ALB authentication is on (ALB_SIGNER_ARNS is set): set it to the IdP's {1}, or to `unchecked` to accept any (not recommended)"
    )]
    AlbIdentityRequired(&'static str, &'static str),
}

impl AuthConfigError {
    /// The environment variable to fix.
    pub fn variable(&self) -> &'static str {
        match self {
            AuthConfigError::NothingConfigured | AuthConfigError::Arn(_) => "ALB_SIGNER_ARNS",
            AuthConfigError::Alb(AlbConfigError::NoSigners) => "ALB_SIGNER_ARNS",
            AuthConfigError::Alb(AlbConfigError::NoEndpoint(_)) => "ALB_KEY_ENDPOINT",
            AuthConfigError::Bearer(_) => "BEARER_CLIENT_IDS",
            AuthConfigError::Mapping(_) => "AUTH_GROUP_PERMISSIONS",
            AuthConfigError::AccessTokenNeedsIssuer => "ALB_GROUPS_SOURCE",
            AuthConfigError::BadOrigin(_) => "AUTH_PUBLIC_ORIGINS",
            AuthConfigError::AlbIdentityRequired(variable, _) => variable,
        }
    }
}

/// The value of `ALB_ISSUER` / `ALB_CLIENT_ID` that explicitly turns that check off.
pub const UNCHECKED: &str = "unchecked";

impl AuthSettings {
    /// Settings from `(VARIABLE, value)` pairs named as the environment names them (e.g. the local ALB's
    /// `api_env()` for `players-api dev`), through the same clap definitions `serve` uses.
    pub fn from_pairs(pairs: &[(&str, String)]) -> Result<Self, clap::Error> {
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            auth: AuthSettings,
        }
        let mut argv = vec!["players-api".to_owned()];
        for (name, value) in pairs {
            argv.push(format!("--{}", name.to_ascii_lowercase().replace('_', "-")));
            argv.push(value.clone());
        }
        <Wrapper as clap::Parser>::try_parse_from(argv).map(|w| w.auth)
    }

    pub fn alb_enabled(&self) -> bool {
        self.alb_signer_arns.iter().any(|s| !s.trim().is_empty())
    }

    pub fn bearer_enabled(&self) -> bool {
        self.bearer_issuer
            .as_deref()
            .is_some_and(|s| !s.trim().is_empty())
    }
}
