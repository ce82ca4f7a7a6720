//! Who made a change: a user (by the IdP's `sub`) or a service (by its OAuth client id), as
//! the audit trail, `created_by`/`updated_by` and idempotency scopes record it.

use serde::Serialize;
use utoipa::ToSchema;

/// How the actor authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ActorKind {
    User,
    Service,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::User => "user",
            ActorKind::Service => "service",
        }
    }

    pub fn parse(s: &str) -> Option<ActorKind> {
        match s {
            "user" => Some(ActorKind::User),
            "service" => Some(ActorKind::Service),
            _ => None,
        }
    }
}

/// Who made a change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub kind: ActorKind,
    /// The user's `sub` or the service's client id.
    pub id: String,
}

impl Actor {
    /// `user:<sub>` or `service:<client id>`: what `created_by`/`updated_by` record and what
    /// idempotency keys are scoped to.
    pub fn qualified(&self) -> String {
        format!("{}:{}", self.kind.as_str(), self.id)
    }
}
