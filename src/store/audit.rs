//! The audit trail: who changed which player, when, and how. Records are written by the store
//! in the transaction of the change, so there is never a change without its record or a
//! record without its change.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::{Actor, ActorKind, Player, PlayerInput};

/// What a write needs besides its data: the actor, and the ids that tie the record to the
/// request's log lines and trace.
#[derive(Clone, Debug)]
pub struct AuditContext {
    pub actor: Actor,
    pub request_id: String,
    /// The X-Ray trace id (`Root`), when the request carried one.
    pub trace_id: Option<String>,
    /// The client's own `x-request-id`, when it sent a usable one (never the id of record).
    pub client_request_id: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AuditAction {
    Create,
    Update,
    Delete,
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Create => "create",
            AuditAction::Update => "update",
            AuditAction::Delete => "delete",
        }
    }

    pub fn parse(s: &str) -> Option<AuditAction> {
        match s {
            "create" => Some(AuditAction::Create),
            "update" => Some(AuditAction::Update),
            "delete" => Some(AuditAction::Delete),
            _ => None,
        }
    }
}

/// The player fields an audit record compares: every field a client sets. Server-managed ones
/// (version, timestamps, created_by/updated_by) are implied by the record itself.
pub const AUDITED_FIELDS: &[&str] = PlayerInput::FIELDS;

/// The fields that differ between two states of a player, each as `{"before", "after"}`; a
/// missing side (before a create, after a delete) is `null`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes(Map<String, Value>);

impl Changes {
    pub fn between(before: Option<&Player>, after: Option<&Player>) -> Changes {
        let fields = |p: Option<&Player>| match p.map(serde_json::to_value) {
            Some(Ok(Value::Object(map))) => map,
            _ => Map::new(),
        };
        let (before, after) = (fields(before), fields(after));
        let mut changes = Map::new();
        for &field in AUDITED_FIELDS {
            let b = before.get(field).cloned().unwrap_or(Value::Null);
            let a = after.get(field).cloned().unwrap_or(Value::Null);
            if a != b {
                changes.insert(field.to_owned(), json!({ "before": b, "after": a }));
            }
        }
        Changes(changes)
    }

    /// The changed fields' names, for the `audit` log line (which carries no values).
    pub fn field_names(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }

    pub fn to_json_text(&self) -> String {
        Value::Object(self.0.clone()).to_string()
    }
}

/// One record of the audit trail, as `GET /v1/admin/audit` returns it.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct AuditRecord {
    /// UUID v7.
    pub id: Uuid,
    #[serde(serialize_with = "crate::domain::timestamp::serialize")]
    pub occurred_at: DateTime<Utc>,
    pub actor_kind: ActorKind,
    /// The user's `sub` or the service's client id.
    pub actor_id: String,
    pub action: AuditAction,
    pub player_id: Uuid,
    /// `{"<field>": {"before": .., "after": ..}}` for each changed field; `before` is `null`
    /// on create, `after` on delete.
    #[schema(value_type = Object)]
    pub changes: Value,
    pub request_id: String,
    /// The X-Ray trace id (`Root` of `X-Amzn-Trace-Id`), if the request carried one.
    pub trace_id: Option<String>,
    /// The client's own `x-request-id`, if it sent one; `request_id` is the id of record.
    pub client_request_id: Option<String>,
}

/// Filters of the audit listing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct AuditFilters {
    pub player_id: Option<Uuid>,
    pub actor_id: Option<String>,
    /// Inclusive.
    pub from: Option<DateTime<Utc>>,
    /// Exclusive.
    pub to: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug)]
pub struct AuditQuery {
    pub filters: AuditFilters,
    pub limit: u32,
    /// Continue after this record (newest first).
    pub after: Option<super::AuditCursor>,
}

#[derive(Debug)]
pub struct AuditPage {
    pub items: Vec<AuditRecord>,
    pub next: Option<super::AuditCursor>,
}

/// Fetched one row beyond the page size, to learn whether a next page exists.
pub(crate) fn split_audit_page(mut rows: Vec<AuditRecord>, query: &AuditQuery) -> AuditPage {
    let limit = query.limit as usize;
    let next = if rows.len() > limit {
        rows.truncate(limit);
        rows.last()
            .map(|last| super::AuditCursor::after(last, &query.filters))
    } else {
        None
    };
    AuditPage { items: rows, next }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Position;
    use chrono::NaiveDate;

    fn player() -> Player {
        let now = Utc::now();
        Player {
            id: Uuid::now_v7(),
            name: "Ada".into(),
            date_of_birth: NaiveDate::from_ymd_opt(2000, 1, 2).unwrap(),
            country: "ENG".into(),
            team: "T".into(),
            position: Position::Defender,
            club_number: Some(4),
            national_team_number: None,
            version: 1,
            created_at: now,
            updated_at: now,
            created_by: "user:x".into(),
            updated_by: "user:x".into(),
        }
    }

    #[test]
    fn create_lists_every_set_field_with_a_null_before() {
        let c = Changes::between(None, Some(&player()));
        assert_eq!(
            c.field_names(),
            [
                "club_number",
                "country",
                "date_of_birth",
                "name",
                "position",
                "team"
            ]
        );
        assert_eq!(
            c.0["date_of_birth"],
            json!({"before": null, "after": "2000-01-02"})
        );
        assert_eq!(
            c.0["position"],
            json!({"before": null, "after": "defender"})
        );
    }

    #[test]
    fn update_lists_only_what_changed_and_ignores_bookkeeping() {
        let before = player();
        let mut after = before.clone();
        after.team = "U".into();
        after.club_number = None;
        after.version = 2;
        after.updated_by = "service:y".into();
        let c = Changes::between(Some(&before), Some(&after));
        assert_eq!(c.field_names(), ["club_number", "team"]);
        assert_eq!(
            c.to_json_text(),
            r#"{"club_number":{"after":null,"before":4},"team":{"after":"U","before":"T"}}"#
        );
    }

    #[test]
    fn every_audited_field_is_a_member_of_a_stored_player() {
        let mut full = player();
        full.national_team_number = Some(9);
        let changes = Changes::between(None, Some(&full));
        let mut named = changes.field_names();
        let mut audited = AUDITED_FIELDS.to_vec();
        named.sort();
        audited.sort();
        assert_eq!(named, audited);
    }

    #[test]
    fn delete_has_a_null_after() {
        let c = Changes::between(Some(&player()), None);
        assert_eq!(c.0["name"], json!({"before": "Ada", "after": null}));
        assert!(!c.0.contains_key("national_team_number"));
    }
}
