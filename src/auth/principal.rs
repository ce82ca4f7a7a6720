//! The authenticated caller, as handlers see it.

use std::rc::Rc;

use actix_web::{FromRequest, HttpMessage, HttpRequest, dev::Payload, web};
use futures_util::future::LocalBoxFuture;
use serde::Serialize;

use super::{Authenticator, Permission, PermissionSet};
use crate::error::ApiError;

/// How the caller proved who they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    /// A browser user, logged in by the ALB (`x-amzn-oidc-data`).
    User,
    /// An internal service, with a client-credentials bearer token.
    Service,
}

impl PrincipalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::User => "user",
            PrincipalKind::Service => "service",
        }
    }
}

/// A verified identity and what it may do. Never holds a token.
#[derive(Clone, Debug, Serialize)]
pub struct Principal {
    pub kind: PrincipalKind,
    /// The user's `sub`, or the service's client id.
    pub subject: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub groups: Vec<String>,
    pub scopes: Vec<String>,
    pub permissions: PermissionSet,
}

impl Principal {
    /// The id recorded in `created_by` / `updated_by` and in logs: `user:<sub>` or
    /// `service:<client id>`, so the two namespaces can never collide.
    pub fn actor_id(&self) -> String {
        format!("{}:{}", self.kind.as_str(), self.subject)
    }

    pub fn require(&self, permission: Permission) -> Result<(), ApiError> {
        if self.permissions.contains(permission) {
            Ok(())
        } else {
            Err(ApiError::Forbidden { permission })
        }
    }
}

/// Extracting a `Principal` authenticates the request and enforces the permission that the
/// route table (`crate::routes::ROUTES`) names for the matched route, so a handler that takes a
/// `Principal` can only run for a caller allowed on it. A route missing from the table is
/// refused (fail closed).
impl FromRequest for Principal {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            if let Some(principal) = req.extensions().get::<Rc<Principal>>() {
                return Ok(Principal::clone(principal));
            }
            let authenticator = req
                .app_data::<web::Data<dyn Authenticator>>()
                .cloned()
                .ok_or_else(|| ApiError::internal_msg("no authenticator registered"))?;
            let principal = authenticator
                .authenticate(&req)
                .await
                .map_err(ApiError::from)?;
            crate::telemetry::record_principal(&principal);
            let route = crate::routes::route_spec(&req)
                .filter(|r| !r.public)
                .ok_or_else(|| {
                    tracing::error!(
                        route = req.match_pattern().as_deref().unwrap_or("?"),
                        "route requires a principal but is missing from the route table"
                    );
                    ApiError::Forbidden {
                        permission: Permission::Admin,
                    }
                })?;
            if let Some(required) = route.permission {
                principal.require(required)?;
            }
            req.extensions_mut().insert(Rc::new(principal.clone()));
            Ok(principal)
        })
    }
}
