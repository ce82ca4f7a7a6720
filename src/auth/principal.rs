//! The authenticated caller, as handlers see it.

use serde::Serialize;

use super::{Permission, PermissionSet};
use crate::domain::{Actor, ActorKind};

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
        self.actor().qualified()
    }

    /// The principal as the audit trail records it.
    pub fn actor(&self) -> Actor {
        Actor {
            kind: match self.kind {
                PrincipalKind::User => ActorKind::User,
                PrincipalKind::Service => ActorKind::Service,
            },
            id: self.subject.clone(),
        }
    }

    /// Ok when the principal holds `permission`; otherwise the refusal names it.
    pub fn require(&self, permission: Permission) -> Result<(), Forbidden> {
        if self.permissions.contains(permission) {
            Ok(())
        } else {
            Err(Forbidden { permission })
        }
    }

    /// Adds the principal to the current request span: its kind and id, never its email, name
    /// or any token.
    pub fn record_in_span(&self) {
        let span = tracing::Span::current();
        span.record("principal_kind", self.kind.as_str());
        span.record("principal_id", self.subject.as_str());
    }
}

/// A principal lacks the permission a route needs (403 `forbidden`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Forbidden {
    pub permission: Permission,
}
