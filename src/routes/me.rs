//! `GET /v1/me`: who the caller is, as the server sees it (never the token).

use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Principal;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(me);
}

/// The authenticated caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// `user` (browser, through the ALB) or `service` (bearer token).
    pub kind: String,
    /// The user's `sub`, or the service's client id.
    pub subject: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub groups: Vec<String>,
    pub scopes: Vec<String>,
    /// Derived from the groups or scopes: `players:read`, `players:write`, `players:delete`, `admin`.
    pub permissions: Vec<String>,
}

impl From<&Principal> for Me {
    fn from(p: &Principal) -> Self {
        Me {
            kind: p.kind.as_str().to_owned(),
            subject: p.subject.clone(),
            name: p.name.clone(),
            email: p.email.clone(),
            groups: p.groups.clone(),
            scopes: p.scopes.clone(),
            permissions: p
                .permissions
                .iter()
                .map(|p| p.as_str().to_owned())
                .collect(),
        }
    }
}

/// Who am I: kind, subject, name/email, groups, scopes and the derived permissions. Any
/// authenticated caller may ask, including one without permissions (that is when it helps).
#[utoipa::path(
    get,
    path = "/v1/me",
    tag = "identity",
    responses(
        (status = 200, description = "The caller", body = Me),
        (status = 401, description = "`unauthenticated` or `invalid_token`", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "`csrf_rejected`", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 500, description = "`internal`", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("alb" = []), ("bearer" = []))
)]
#[get("/v1/me")]
pub async fn me(principal: Principal) -> HttpResponse {
    HttpResponse::Ok().json(Me::from(&principal))
}
