//! Interim local identity for `players-api dev` only: every request acts as a fixed local
//! administrator. `dev` refuses to bind anything but a loopback address while it is in use.

use actix_web::HttpRequest;

use super::{AuthError, Authenticator, PermissionSet, Principal, PrincipalKind};

pub struct LocalDeveloper;

#[async_trait::async_trait(?Send)]
impl Authenticator for LocalDeveloper {
    async fn authenticate(&self, _req: &HttpRequest) -> Result<Principal, AuthError> {
        Ok(Principal {
            kind: PrincipalKind::User,
            subject: "local-developer".into(),
            name: Some("Local Developer".into()),
            email: None,
            groups: vec!["players-admin".into()],
            scopes: vec![],
            permissions: PermissionSet::all(),
        })
    }
}
