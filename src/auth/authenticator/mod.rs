//! The production `Authenticator`: ALB user claims and/or bearer tokens → `Principal`.
//!
//! Rules (the order matters and is tested):
//! 1. `x-amzn-oidc-identity` is never read: anyone who reaches the target can set it.
//! 2. Every credential present is verified. An invalid one fails the request (401) even if
//!    another valid credential is present: an invalid bearer token next to a valid ALB header
//!    is refused, and vice versa.
//! 3. A request carrying BOTH `Authorization` and `x-amzn-oidc-data` is refused (401, reason
//!    `multiple_credentials`) before anything is verified: a browser session and a service
//!    identity are never merged, neither silently wins, and junk headers next to a valid
//!    token cannot spend the key-fetch budget that browser users depend on. (The ALB adds
//!    `x-amzn-oidc-data` only on its OIDC rule; service traffic is routed past that rule by
//!    `Authorization: Bearer *`.)
//! 4. A credential kind that is not configured counts as invalid, not as absent.
//! 5. ALB-authenticated requests with an unsafe method must be same-origin: `Origin` in
//!    `AUTH_PUBLIC_ORIGINS`, or no `Origin` and `Sec-Fetch-Site: same-origin`; otherwise
//!    `csrf_rejected`. Bearer requests are exempt (no ambient cookie).
//! 6. With `ALB_GROUPS_SOURCE` `accesstoken`/`both`, `x-amzn-oidc-accesstoken` is verified by
//!    its own verifier, never by the service-bearer one: `ALB_ISSUER`'s JWKS, `token_use`
//!    `access` when present, `client_id` equal to `ALB_CLIENT_ID` (the browser client, which
//!    `BEARER_CLIENT_IDS` does not list), and the same `sub` as the user claims; any failure is
//!    a 401. Its groups claim is then used; without the header there are none. With
//!    `userinfo` it is not read at all (some IdPs issue opaque ones). This is how Cognito
//!    works: its userinfo has no groups.

use std::sync::Arc;

use actix_web::HttpRequest;

mod from_settings;

pub use from_settings::{validate, warn_weak_settings};

use super::{
    AuthError, Authenticator, Principal, PrincipalKind, Scheme,
    alb::AlbVerifier,
    bearer::BearerVerifier,
    config::GroupsSource,
    csrf::{check_same_origin, normalise_origin},
    policy::PermissionPolicy,
};

pub const ALB_DATA_HEADER: &str = "x-amzn-oidc-data";
pub const ALB_ACCESS_TOKEN_HEADER: &str = "x-amzn-oidc-accesstoken";

pub struct IdentityAuthenticator {
    alb: Option<Arc<AlbVerifier>>,
    bearer: Option<Arc<BearerVerifier>>,
    /// Verifies `x-amzn-oidc-accesstoken` (issuer `ALB_ISSUER`, client `ALB_CLIENT_ID`).
    access_token: Option<Arc<BearerVerifier>>,
    policy: PermissionPolicy,
    groups_source: GroupsSource,
    groups_claim: String,
    public_origins: Vec<String>,
}

fn invalid(scheme: Scheme, reason: &str) -> AuthError {
    AuthError::InvalidToken {
        scheme,
        reason: reason.to_owned(),
    }
}

impl IdentityAuthenticator {
    pub fn new(
        alb: Option<Arc<AlbVerifier>>,
        bearer: Option<Arc<BearerVerifier>>,
        policy: PermissionPolicy,
        groups_source: GroupsSource,
        groups_claim: impl Into<String>,
        public_origins: Vec<String>,
    ) -> Self {
        IdentityAuthenticator {
            alb,
            bearer,
            access_token: None,
            policy,
            groups_source,
            groups_claim: groups_claim.into(),
            public_origins: public_origins
                .iter()
                .filter_map(|o| normalise_origin(o))
                .collect(),
        }
    }

    /// The verifier of `x-amzn-oidc-accesstoken` (groups source `accesstoken` or `both`):
    /// `ALB_ISSUER`'s JWKS and `ALB_CLIENT_ID`, independent of the service-bearer verifier.
    pub fn with_access_token_verifier(mut self, verifier: Arc<BearerVerifier>) -> Self {
        self.access_token = Some(verifier);
        self
    }

    pub fn alb(&self) -> Option<&Arc<AlbVerifier>> {
        self.alb.as_ref()
    }

    pub fn bearer(&self) -> Option<&Arc<BearerVerifier>> {
        self.bearer.as_ref()
    }

    async fn bearer_principal(&self, value: &[u8]) -> Result<Principal, AuthError> {
        let value = std::str::from_utf8(value).map_err(|_| invalid(Scheme::Bearer, "malformed"))?;
        let token = match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => return Err(invalid(Scheme::Bearer, "unsupported_scheme")),
        };
        let verifier = self
            .bearer
            .as_ref()
            .ok_or_else(|| invalid(Scheme::Bearer, "bearer_not_configured"))?;
        let claims = verifier
            .verify(token)
            .await
            .map_err(|e| invalid(Scheme::Bearer, e.reason()))?;
        let subject = claims
            .client_id()
            .or_else(|| claims.subject())
            .ok_or_else(|| invalid(Scheme::Bearer, "subject_missing"))?
            .to_owned();
        let scopes = claims.scopes();
        Ok(Principal {
            kind: PrincipalKind::Service,
            subject,
            name: None,
            email: None,
            groups: Vec::new(),
            permissions: self.policy.for_scopes(&scopes),
            scopes,
        })
    }

    async fn alb_principal(&self, req: &HttpRequest, value: &[u8]) -> Result<Principal, AuthError> {
        let value =
            std::str::from_utf8(value).map_err(|_| invalid(Scheme::Alb, "invalid_base64"))?;
        let verifier = self
            .alb
            .as_ref()
            .ok_or_else(|| invalid(Scheme::Alb, "alb_not_configured"))?;
        let claims = verifier
            .verify(value)
            .await
            .map_err(|e| invalid(Scheme::Alb, e.reason()))?;
        let subject = claims
            .subject()
            .ok_or_else(|| invalid(Scheme::Alb, "sub_missing"))?
            .to_owned();

        let mut groups = Vec::new();
        if matches!(
            self.groups_source,
            GroupsSource::Userinfo | GroupsSource::Both
        ) {
            groups.extend(claims.string_list(&self.groups_claim));
        }
        if matches!(
            self.groups_source,
            GroupsSource::Accesstoken | GroupsSource::Both
        ) {
            for g in self.access_token_groups(req, &subject).await? {
                if !groups.contains(&g) {
                    groups.push(g);
                }
            }
        }
        Ok(Principal {
            kind: PrincipalKind::User,
            subject,
            name: claims.name().map(str::to_owned),
            email: claims.email().map(str::to_owned),
            permissions: self.policy.for_groups(&groups),
            groups,
            scopes: Vec::new(),
        })
    }

    /// The groups of the verified `x-amzn-oidc-accesstoken`, which must be about `subject`.
    async fn access_token_groups(
        &self,
        req: &HttpRequest,
        subject: &str,
    ) -> Result<Vec<String>, AuthError> {
        // The ALB always forwards it; without it there are no groups to grant anything.
        let Some(header) = req.headers().get(ALB_ACCESS_TOKEN_HEADER) else {
            return Ok(Vec::new());
        };
        let verifier = self
            .access_token
            .as_ref()
            .ok_or_else(|| invalid(Scheme::Alb, "access_token_not_configured"))?;
        let token = header
            .to_str()
            .map_err(|_| invalid(Scheme::Alb, "access_token_malformed"))?;
        let claims = verifier
            .verify(token)
            .await
            .map_err(|e| invalid(Scheme::Alb, &format!("access_token_{}", e.reason())))?;
        if claims.subject() != Some(subject) {
            return Err(invalid(Scheme::Alb, "access_token_subject_mismatch"));
        }
        Ok(claims.string_list(&self.groups_claim))
    }
}

#[async_trait::async_trait(?Send)]
impl Authenticator for IdentityAuthenticator {
    async fn authenticate(&self, req: &HttpRequest) -> Result<Principal, AuthError> {
        let headers = req.headers();
        let mut bearer_values = headers.get_all(actix_web::http::header::AUTHORIZATION);
        let mut alb_values = headers.get_all(ALB_DATA_HEADER);
        let bearer_header = bearer_values.next();
        let alb_header = alb_values.next();
        if bearer_values.next().is_some() {
            return Err(invalid(Scheme::Bearer, "multiple_credentials"));
        }
        if alb_values.next().is_some() {
            return Err(invalid(Scheme::Alb, "multiple_credentials"));
        }

        match (alb_header, bearer_header) {
            (None, None) => Err(AuthError::Missing),
            (Some(_), Some(_)) => Err(invalid(Scheme::Bearer, "multiple_credentials")),
            (None, Some(v)) => self.bearer_principal(v.as_bytes()).await,
            (Some(v), None) => {
                let user = self.alb_principal(req, v.as_bytes()).await?;
                check_same_origin(req, &self.public_origins)?;
                Ok(user)
            }
        }
    }
}
