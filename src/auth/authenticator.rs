//! The production `Authenticator`: ALB user claims and/or bearer tokens → `Principal`.
//!
//! Rules (the order matters and is tested):
//! 1. `x-amzn-oidc-identity` is never read: anyone who reaches the target can set it.
//! 2. Every credential present is verified. An invalid one fails the request (401) even if
//!    another valid credential is present: an invalid bearer token next to a valid ALB header
//!    is refused, and vice versa.
//! 3. A request carrying BOTH a valid ALB header and a valid bearer token is refused (401,
//!    reason `multiple_credentials`): a browser session and a service identity are never
//!    merged, and neither silently wins. (The ALB adds `x-amzn-oidc-data` only on its OIDC
//!    rule; service traffic is routed past that rule by `Authorization: Bearer *`.)
//! 4. A credential kind that is not configured counts as invalid, not as absent.
//! 5. ALB-authenticated requests with an unsafe method must be same-origin: `Origin` in
//!    `AUTH_PUBLIC_ORIGINS`, or no `Origin` and `Sec-Fetch-Site: same-origin`; otherwise
//!    `csrf_rejected`. Bearer requests are exempt (no ambient cookie).
//! 6. With `ALB_GROUPS_SOURCE` `accesstoken`/`both` (and `ALB_ISSUER` + `ALB_CLIENT_ID`), a
//!    present `x-amzn-oidc-accesstoken` is verified like a bearer token against the ALB IdP's
//!    JWKS, must be issued to `ALB_CLIENT_ID` (failure → 401) and must be about the same `sub`
//!    as the user claims; its groups claim is then used. With `userinfo` the access token is
//!    not read at all (some IdPs issue opaque ones).

use std::sync::Arc;

use actix_web::{HttpRequest, http::Method};

use super::{
    AuthError, Authenticator, Principal, PrincipalKind, Scheme,
    alb::AlbVerifier,
    bearer::BearerVerifier,
    config::{AuthConfigError, AuthSettings, GroupsSource, normalise_origin},
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

    /// Builds everything from the settings (validated again here).
    pub fn from_settings(settings: &AuthSettings) -> Result<Self, AuthConfigError> {
        settings.validate()?;
        let v = settings.build_verifiers()?;
        let authenticator = Self::new(
            v.alb.map(Arc::new),
            v.bearer.map(Arc::new),
            settings.policy()?,
            settings.alb_groups_source,
            settings.auth_groups_claim.clone(),
            settings.public_origins()?,
        );
        Ok(match v.access_token {
            Some(at) => authenticator.with_access_token_verifier(Arc::new(at)),
            None => authenticator,
        })
    }

    /// Groups are also read from `x-amzn-oidc-accesstoken`, verified with `verifier` (when the
    /// groups source is `accesstoken` or `both`).
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
        ) && let Some(bearer) = &self.bearer
            && let Some(at) = req.headers().get(ALB_ACCESS_TOKEN_HEADER)
        {
            let at = at
                .to_str()
                .map_err(|_| invalid(Scheme::Alb, "access_token_malformed"))?;
            let at_claims = bearer
                .verify(at)
                .await
                .map_err(|e| invalid(Scheme::Alb, &format!("access_token_{}", e.reason())))?;
            if at_claims.subject() != Some(subject.as_str()) {
                return Err(invalid(Scheme::Alb, "access_token_subject_mismatch"));
            }
            for g in at_claims.string_list(&self.groups_claim) {
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

    fn check_same_origin(&self, req: &HttpRequest) -> Result<(), AuthError> {
        if matches!(
            *req.method(),
            Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
        ) {
            return Ok(());
        }
        let headers = req.headers();
        if let Some(origin) = headers.get("origin") {
            let ok = origin
                .to_str()
                .ok()
                .and_then(normalise_origin)
                .is_some_and(|o| self.public_origins.contains(&o));
            return if ok {
                Ok(())
            } else {
                Err(AuthError::CsrfRejected {
                    reason: "origin_not_allowed".into(),
                })
            };
        }
        match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
            Some("same-origin") => Ok(()),
            Some(_) => Err(AuthError::CsrfRejected {
                reason: "cross_site".into(),
            }),
            None => Err(AuthError::CsrfRejected {
                reason: "no_origin".into(),
            }),
        }
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

        let bearer = match bearer_header {
            Some(v) => Some(self.bearer_principal(v.as_bytes()).await?),
            None => None,
        };
        let alb = match alb_header {
            Some(v) => Some(self.alb_principal(req, v.as_bytes()).await?),
            None => None,
        };
        match (alb, bearer) {
            (None, None) => Err(AuthError::Missing),
            (Some(_), Some(_)) => Err(invalid(Scheme::Bearer, "multiple_credentials")),
            (None, Some(service)) => Ok(service),
            (Some(user), None) => {
                self.check_same_origin(req)?;
                Ok(user)
            }
        }
    }
}
