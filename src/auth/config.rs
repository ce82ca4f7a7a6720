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

use std::time::Duration;

use super::{
    alb::{AlbConfigError, AlbVerifier, AlbVerifierConfig, InvalidArn, SignerArn},
    bearer::{BearerConfigError, BearerVerifier, BearerVerifierConfig},
    policy::{MappingError, PermissionPolicy},
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

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            alb_signer_arns: Vec::new(),
            alb_issuer: None,
            alb_client_id: None,
            alb_key_endpoint: None,
            alb_exp_skew_secs: 60,
            alb_groups_source: GroupsSource::Both,
            auth_groups_claim: "cognito:groups".into(),
            auth_group_permissions: None,
            auth_scope_prefix: "players".into(),
            auth_scope_permissions: None,
            auth_public_origins: Vec::new(),
            auth_logout_url: None,
            auth_session_cookie_name: "AWSELBAuthSessionCookie".into(),
            bearer_issuer: None,
            bearer_jwks_url: None,
            bearer_client_ids: Vec::new(),
            bearer_audiences: Vec::new(),
        }
    }
}

/// The verifiers the settings call for.
pub struct Verifiers {
    pub alb: Option<AlbVerifier>,
    pub bearer: Option<BearerVerifier>,
    pub access_token: Option<BearerVerifier>,
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

/// A required identity value: `Some(value)`, or `None` for the explicit opt-out.
fn required(
    value: &Option<String>,
    variable: &'static str,
    what: &'static str,
) -> Result<Option<String>, AuthConfigError> {
    match value.as_deref().map(str::trim) {
        None | Some("") => Err(AuthConfigError::AlbIdentityRequired(variable, what)),
        Some(UNCHECKED) => Ok(None),
        Some(v) => Ok(Some(v.to_owned())),
    }
}

/// Normalised origin (`scheme://host[:port]`, lower case, no trailing slash), or `None`.
pub(crate) fn normalise_origin(o: &str) -> Option<String> {
    let url = url::Url::parse(o.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https")
        || url.host_str().is_none()
        || url.path() != "/" && !url.path().is_empty()
    {
        return None;
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return None;
    }
    Some(url.origin().ascii_serialization())
}

impl AuthSettings {
    /// Settings from `(VARIABLE, value)` pairs named as in the contract (e.g. the local ALB's
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

    /// Checks everything that can be checked without the network and warns about weak
    /// settings. `serve` calls this before binding.
    pub fn validate(&self) -> Result<(), AuthConfigError> {
        self.build_alb_config()?;
        self.build_bearer_config()?;
        self.policy()?;
        self.public_origins()?;
        Ok(())
    }

    pub fn policy(&self) -> Result<PermissionPolicy, AuthConfigError> {
        Ok(PermissionPolicy::new(
            self.auth_group_permissions.as_deref(),
            &self.auth_scope_prefix,
            self.auth_scope_permissions.as_deref(),
        )?)
    }

    pub fn public_origins(&self) -> Result<Vec<String>, AuthConfigError> {
        self.auth_public_origins
            .iter()
            .filter(|o| !o.trim().is_empty())
            .map(|o| normalise_origin(o).ok_or_else(|| AuthConfigError::BadOrigin(o.clone())))
            .collect()
    }

    pub fn build_alb_config(&self) -> Result<Option<AlbVerifierConfig>, AuthConfigError> {
        if !self.alb_enabled() && !self.bearer_enabled() {
            return Err(AuthConfigError::NothingConfigured);
        }
        if !self.alb_enabled() {
            return Ok(None);
        }
        let signers = self
            .alb_signer_arns
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(SignerArn::parse)
            .collect::<Result<Vec<_>, _>>()?;
        let mut config = AlbVerifierConfig::new(signers);
        config.issuer = required(&self.alb_issuer, "ALB_ISSUER", "issuer URL")?;
        config.client_id = required(&self.alb_client_id, "ALB_CLIENT_ID", "browser client id")?;
        config.key_endpoint = self.alb_key_endpoint.clone().filter(|s| !s.is_empty());
        config.exp_skew = Duration::from_secs(self.alb_exp_skew_secs);
        if self.alb_groups_source == GroupsSource::Accesstoken && !self.access_token_checkable() {
            return Err(AuthConfigError::AccessTokenNeedsIssuer);
        }
        Ok(Some(config))
    }

    fn access_token_checkable(&self) -> bool {
        let checked = |v: &Option<String>| {
            v.as_deref()
                .is_some_and(|s| !s.trim().is_empty() && s != UNCHECKED)
        };
        checked(&self.alb_issuer) && checked(&self.alb_client_id)
    }

    /// The verifier of `x-amzn-oidc-accesstoken` (groups source `accesstoken`/`both`): a bearer
    /// verifier for the ALB's IdP (`ALB_ISSUER`, JWKS `{issuer}/.well-known/jwks.json`, or
    /// `BEARER_JWKS_URL` when `BEARER_ISSUER` is the same issuer) that accepts only tokens
    /// issued to the ALB's own client (`ALB_CLIENT_ID`), independent of `BEARER_CLIENT_IDS`.
    pub fn build_access_token_config(
        &self,
    ) -> Result<Option<BearerVerifierConfig>, AuthConfigError> {
        if !self.alb_enabled()
            || self.alb_groups_source == GroupsSource::Userinfo
            || !self.access_token_checkable()
        {
            return Ok(None);
        }
        let issuer = self.alb_issuer.clone().unwrap_or_default();
        let mut config = BearerVerifierConfig::new(issuer.clone());
        if self.bearer_issuer.as_deref() == Some(issuer.as_str()) {
            config.jwks_url = self.bearer_jwks_url.clone().filter(|s| !s.is_empty());
        }
        config.client_ids = self.alb_client_id.iter().cloned().collect();
        Ok(Some(config))
    }

    pub fn build_bearer_config(&self) -> Result<Option<BearerVerifierConfig>, AuthConfigError> {
        let Some(issuer) = self.bearer_issuer.clone().filter(|s| !s.trim().is_empty()) else {
            return Ok(None);
        };
        let mut config = BearerVerifierConfig::new(issuer);
        config.jwks_url = self.bearer_jwks_url.clone().filter(|s| !s.is_empty());
        config.client_ids = self
            .bearer_client_ids
            .iter()
            .filter(|s| !s.is_empty())
            .cloned()
            .collect();
        config.audiences = self
            .bearer_audiences
            .iter()
            .filter(|s| !s.is_empty())
            .cloned()
            .collect();
        if config.client_ids.is_empty() && config.audiences.is_empty() {
            return Err(BearerConfigError::NoClients.into());
        }
        Ok(Some(config))
    }

    /// Start-up warnings for settings that are legal but weaker than they should be.
    pub fn warn_weak_settings(&self) {
        if self.alb_enabled() {
            if self.alb_issuer.as_deref() == Some(UNCHECKED) {
                tracing::warn!(
                    "ALB_ISSUER=unchecked: the issuer of ALB user claims is not checked"
                );
            }
            if self.alb_client_id.as_deref() == Some(UNCHECKED) {
                tracing::warn!(
                    "ALB_CLIENT_ID=unchecked: the IdP client of ALB user claims is not checked"
                );
            }
            if self.auth_public_origins.is_empty() {
                tracing::warn!(
                    "AUTH_PUBLIC_ORIGINS is unset: unsafe browser requests need Sec-Fetch-Site: same-origin"
                );
            }
            if self.alb_groups_source == GroupsSource::Both && !self.access_token_checkable() {
                tracing::warn!(
                    "ALB_GROUPS_SOURCE=both with ALB_ISSUER or ALB_CLIENT_ID unchecked: groups are read from x-amzn-oidc-data only"
                );
            }
        }
    }

    /// What `GET /logout` needs.
    pub fn logout_config(&self) -> crate::routes::logout::LogoutConfig {
        crate::routes::logout::LogoutConfig {
            cookie_name: self.auth_session_cookie_name.clone(),
            logout_url: self.auth_logout_url.clone().filter(|u| !u.is_empty()),
        }
    }

    /// Builds the verifiers (no network I/O happens here): ALB header, bearer tokens, and the
    /// ALB's access token.
    pub fn build_verifiers(&self) -> Result<Verifiers, AuthConfigError> {
        let alb = self.build_alb_config()?.map(AlbVerifier::new).transpose()?;
        let bearer = self
            .build_bearer_config()?
            .map(BearerVerifier::new)
            .transpose()?;
        let access_token = self
            .build_access_token_config()?
            .map(BearerVerifier::new)
            .transpose()?;
        Ok(Verifiers {
            alb,
            bearer,
            access_token,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        auth: AuthSettings,
    }

    const ARN: &str = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/players/50dc6c495c0c9188";

    #[test]
    fn refuses_to_start_with_nothing_configured() {
        let s = Cli::parse_from(["x"]).auth;
        let err = s.validate().unwrap_err();
        assert!(err.to_string().contains("ALB_SIGNER_ARNS"), "{err}");
        assert!(err.to_string().contains("BEARER_ISSUER"), "{err}");
    }

    fn alb_only(extra: &[&str]) -> AuthSettings {
        let mut argv = vec!["x", "--alb-signer-arns", ARN];
        argv.extend_from_slice(extra);
        Cli::parse_from(argv).auth
    }

    #[test]
    fn alb_only_is_fine_and_bad_arns_are_named() {
        alb_only(&["--alb-issuer", "https://idp", "--alb-client-id", "browser"])
            .validate()
            .unwrap();
        let s = Cli::parse_from([
            "x",
            "--alb-signer-arns",
            "arn:aws:s3:::b",
            "--alb-issuer",
            "https://idp",
            "--alb-client-id",
            "browser",
        ])
        .auth;
        assert!(
            s.validate()
                .unwrap_err()
                .to_string()
                .starts_with("ALB_SIGNER_ARNS")
        );
    }

    #[test]
    fn bearer_needs_a_client_allow_list() {
        let s = Cli::parse_from(["x", "--bearer-issuer", "https://idp"]).auth;
        assert!(matches!(s.validate(), Err(AuthConfigError::Bearer(_))));
        let s = Cli::parse_from([
            "x",
            "--bearer-issuer",
            "https://idp",
            "--bearer-client-ids",
            "a,b",
        ])
        .auth;
        s.validate().unwrap();
        assert_eq!(s.bearer_client_ids, ["a", "b"]);
    }

    #[test]
    fn access_token_is_checked_against_the_alb_issuer_and_client() {
        // The Cognito deployment: machine clients in BEARER_CLIENT_IDS, the browser client
        // (whose access tokens the ALB forwards) in ALB_CLIENT_ID.
        let s = Cli::parse_from([
            "x",
            "--alb-signer-arns",
            ARN,
            "--alb-issuer",
            "https://idp",
            "--alb-client-id",
            "browser",
            "--bearer-issuer",
            "https://idp",
            "--bearer-client-ids",
            "machine",
        ])
        .auth;
        s.validate().unwrap();
        let at = s.build_access_token_config().unwrap().unwrap();
        assert_eq!(at.issuer, "https://idp");
        assert_eq!(at.client_ids, ["browser"]);
        assert_eq!(at.jwks_url(), "https://idp/.well-known/jwks.json");
        // userinfo: the access token is not read.
        let s = alb_only(&[
            "--alb-issuer",
            "https://idp",
            "--alb-client-id",
            "browser",
            "--alb-groups-source",
            "userinfo",
        ]);
        assert!(s.build_access_token_config().unwrap().is_none());
    }

    #[test]
    fn alb_issuer_and_client_are_required_unless_explicitly_unchecked() {
        let err = alb_only(&["--alb-client-id", "browser"])
            .validate()
            .unwrap_err();
        assert_eq!(err.variable(), "ALB_ISSUER");
        assert!(err.to_string().contains("unchecked"), "{err}");
        let err = alb_only(&["--alb-issuer", "https://idp"])
            .validate()
            .unwrap_err();
        assert_eq!(err.variable(), "ALB_CLIENT_ID");
        let err = alb_only(&["--alb-issuer", " ", "--alb-client-id", "b"])
            .validate()
            .unwrap_err();
        assert_eq!(err.variable(), "ALB_ISSUER");

        let s = alb_only(&["--alb-issuer", "unchecked", "--alb-client-id", "unchecked"]);
        let config = s.build_alb_config().unwrap().unwrap();
        assert_eq!((config.issuer, config.client_id), (None, None));
        // Nothing to check the access token against: `both` falls back to userinfo...
        assert!(s.build_access_token_config().unwrap().is_none());
        // ...and `accesstoken` refuses to start.
        let s = alb_only(&[
            "--alb-issuer",
            "unchecked",
            "--alb-client-id",
            "browser",
            "--alb-groups-source",
            "accesstoken",
        ]);
        assert_eq!(s.validate().unwrap_err().variable(), "ALB_GROUPS_SOURCE");
    }

    #[test]
    fn origins_are_normalised() {
        assert_eq!(
            normalise_origin("https://Players.Example.com/").as_deref(),
            Some("https://players.example.com")
        );
        assert_eq!(
            normalise_origin("http://localhost:8081").as_deref(),
            Some("http://localhost:8081")
        );
        assert_eq!(normalise_origin("https://x.com/path"), None);
        assert_eq!(normalise_origin("null"), None);
    }
}
