//! Building the production authenticator from `AuthSettings`: which verifiers the settings
//! call for and their configuration, the permission policy and the public origins, checked
//! without any network I/O (`serve` refuses to start on the first error, naming the variable).

use std::{sync::Arc, time::Duration};

use super::IdentityAuthenticator;
use crate::auth::{
    alb::{AlbVerifier, AlbVerifierConfig, SignerArn},
    bearer::{BearerConfigError, BearerVerifier, BearerVerifierConfig},
    config::{AuthConfigError, AuthSettings, GroupsSource, UNCHECKED},
    csrf::normalise_origin,
    policy::PermissionPolicy,
};

impl IdentityAuthenticator {
    /// Builds everything from the settings (validated again here).
    pub fn from_settings(settings: &AuthSettings) -> Result<Self, AuthConfigError> {
        validate(settings)?;
        let v = build_verifiers(settings)?;
        let authenticator = Self::new(
            v.alb.map(Arc::new),
            v.bearer.map(Arc::new),
            policy(settings)?,
            settings.alb_groups_source,
            settings.auth_groups_claim.clone(),
            public_origins(settings)?,
        );
        Ok(match v.access_token {
            Some(at) => authenticator.with_access_token_verifier(Arc::new(at)),
            None => authenticator,
        })
    }
}

/// The verifiers the settings call for.
struct Verifiers {
    alb: Option<AlbVerifier>,
    bearer: Option<BearerVerifier>,
    access_token: Option<BearerVerifier>,
}

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

/// Checks everything that can be checked without the network. `from_settings` calls it, so
/// `serve` refuses to start before binding.
pub fn validate(s: &AuthSettings) -> Result<(), AuthConfigError> {
    build_alb_config(s)?;
    build_bearer_config(s)?;
    policy(s)?;
    public_origins(s)?;
    Ok(())
}

fn policy(s: &AuthSettings) -> Result<PermissionPolicy, AuthConfigError> {
    Ok(PermissionPolicy::new(
        s.auth_group_permissions.as_deref(),
        &s.auth_scope_prefix,
        s.auth_scope_permissions.as_deref(),
    )?)
}

fn public_origins(s: &AuthSettings) -> Result<Vec<String>, AuthConfigError> {
    s.auth_public_origins
        .iter()
        .filter(|o| !o.trim().is_empty())
        .map(|o| normalise_origin(o).ok_or_else(|| AuthConfigError::BadOrigin(o.clone())))
        .collect()
}

fn build_alb_config(s: &AuthSettings) -> Result<Option<AlbVerifierConfig>, AuthConfigError> {
    if !s.alb_enabled() && !s.bearer_enabled() {
        return Err(AuthConfigError::NothingConfigured);
    }
    if !s.alb_enabled() {
        return Ok(None);
    }
    let signers = s
        .alb_signer_arns
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(SignerArn::parse)
        .collect::<Result<Vec<_>, _>>()?;
    let mut config = AlbVerifierConfig::new(signers);
    config.issuer = required(&s.alb_issuer, "ALB_ISSUER", "issuer URL")?;
    config.client_id = required(&s.alb_client_id, "ALB_CLIENT_ID", "browser client id")?;
    config.key_endpoint = s.alb_key_endpoint.clone().filter(|s| !s.is_empty());
    config.exp_skew = Duration::from_secs(s.alb_exp_skew_secs);
    if s.alb_groups_source == GroupsSource::Accesstoken && !access_token_checkable(s) {
        return Err(AuthConfigError::AccessTokenNeedsIssuer);
    }
    Ok(Some(config))
}

fn access_token_checkable(s: &AuthSettings) -> bool {
    let checked = |v: &Option<String>| {
        v.as_deref()
            .is_some_and(|s| !s.trim().is_empty() && s != UNCHECKED)
    };
    checked(&s.alb_issuer) && checked(&s.alb_client_id)
}

/// The verifier of `x-amzn-oidc-accesstoken` (groups source `accesstoken`/`both`): a bearer
/// verifier for the ALB's IdP (`ALB_ISSUER`, JWKS `{issuer}/.well-known/jwks.json`, or
/// `BEARER_JWKS_URL` when `BEARER_ISSUER` is the same issuer) that accepts only tokens
/// issued to the ALB's own client (`ALB_CLIENT_ID`), independent of `BEARER_CLIENT_IDS`.
fn build_access_token_config(
    s: &AuthSettings,
) -> Result<Option<BearerVerifierConfig>, AuthConfigError> {
    if !s.alb_enabled()
        || s.alb_groups_source == GroupsSource::Userinfo
        || !access_token_checkable(s)
    {
        return Ok(None);
    }
    let issuer = s.alb_issuer.clone().unwrap_or_default();
    let mut config = BearerVerifierConfig::new(issuer.clone());
    if s.bearer_issuer.as_deref() == Some(issuer.as_str()) {
        config.jwks_url = s.bearer_jwks_url.clone().filter(|s| !s.is_empty());
    }
    config.client_ids = s.alb_client_id.iter().cloned().collect();
    Ok(Some(config))
}

fn build_bearer_config(s: &AuthSettings) -> Result<Option<BearerVerifierConfig>, AuthConfigError> {
    let Some(issuer) = s.bearer_issuer.clone().filter(|s| !s.trim().is_empty()) else {
        return Ok(None);
    };
    let mut config = BearerVerifierConfig::new(issuer);
    config.jwks_url = s.bearer_jwks_url.clone().filter(|s| !s.is_empty());
    config.client_ids = s
        .bearer_client_ids
        .iter()
        .filter(|s| !s.is_empty())
        .cloned()
        .collect();
    config.audiences = s
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
pub fn warn_weak_settings(s: &AuthSettings) {
    if s.alb_enabled() {
        if s.alb_issuer.as_deref() == Some(UNCHECKED) {
            tracing::warn!("ALB_ISSUER=unchecked: the issuer of ALB user claims is not checked");
        }
        if s.alb_client_id.as_deref() == Some(UNCHECKED) {
            tracing::warn!(
                "ALB_CLIENT_ID=unchecked: the IdP client of ALB user claims is not checked"
            );
        }
        if s.auth_public_origins.is_empty() {
            tracing::warn!(
                "AUTH_PUBLIC_ORIGINS is unset: unsafe browser requests need Sec-Fetch-Site: same-origin"
            );
        }
        if s.alb_groups_source == GroupsSource::Both && !access_token_checkable(s) {
            tracing::warn!(
                "ALB_GROUPS_SOURCE=both with ALB_ISSUER or ALB_CLIENT_ID unchecked: groups are read from x-amzn-oidc-data only"
            );
        }
    }
}

/// Builds the verifiers (no network I/O happens here): ALB header, bearer tokens, and the
/// ALB's access token.
fn build_verifiers(s: &AuthSettings) -> Result<Verifiers, AuthConfigError> {
    let alb = build_alb_config(s)?.map(AlbVerifier::new).transpose()?;
    let bearer = build_bearer_config(s)?
        .map(BearerVerifier::new)
        .transpose()?;
    let access_token = build_access_token_config(s)?
        .map(BearerVerifier::new)
        .transpose()?;
    Ok(Verifiers {
        alb,
        bearer,
        access_token,
    })
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
        let err = validate(&s).unwrap_err();
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
        validate(&alb_only(&[
            "--alb-issuer",
            "https://idp",
            "--alb-client-id",
            "browser",
        ]))
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
            validate(&s)
                .unwrap_err()
                .to_string()
                .starts_with("ALB_SIGNER_ARNS")
        );
    }

    #[test]
    fn bearer_needs_a_client_allow_list() {
        let s = Cli::parse_from(["x", "--bearer-issuer", "https://idp"]).auth;
        assert!(matches!(validate(&s), Err(AuthConfigError::Bearer(_))));
        let s = Cli::parse_from([
            "x",
            "--bearer-issuer",
            "https://idp",
            "--bearer-client-ids",
            "a,b",
        ])
        .auth;
        validate(&s).unwrap();
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
        validate(&s).unwrap();
        let at = build_access_token_config(&s).unwrap().unwrap();
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
        assert!(build_access_token_config(&s).unwrap().is_none());
    }

    #[test]
    fn alb_issuer_and_client_are_required_unless_explicitly_unchecked() {
        let err = validate(&alb_only(&["--alb-client-id", "browser"])).unwrap_err();
        assert_eq!(err.variable(), "ALB_ISSUER");
        assert!(err.to_string().contains("unchecked"), "{err}");
        let err = validate(&alb_only(&["--alb-issuer", "https://idp"])).unwrap_err();
        assert_eq!(err.variable(), "ALB_CLIENT_ID");
        let err = validate(&alb_only(&["--alb-issuer", " ", "--alb-client-id", "b"])).unwrap_err();
        assert_eq!(err.variable(), "ALB_ISSUER");

        let s = alb_only(&["--alb-issuer", "unchecked", "--alb-client-id", "unchecked"]);
        let config = build_alb_config(&s).unwrap().unwrap();
        assert_eq!((config.issuer, config.client_id), (None, None));
        // Nothing to check the access token against: `both` falls back to userinfo...
        assert!(build_access_token_config(&s).unwrap().is_none());
        // ...and `accesstoken` refuses to start.
        let s = alb_only(&[
            "--alb-issuer",
            "unchecked",
            "--alb-client-id",
            "browser",
            "--alb-groups-source",
            "accesstoken",
        ]);
        assert_eq!(validate(&s).unwrap_err().variable(), "ALB_GROUPS_SOURCE");
    }
}
