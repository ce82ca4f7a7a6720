//! Opaque keyset-pagination cursors: the sort, the last row's sort value and id, and a
//! fingerprint of the filters, so a cursor cannot be replayed against another query.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{AuditFilters, AuditRecord, Filters, Sort, SortKey};
use crate::domain::PlayerRef;

/// The sort value of the last row of a page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SortValue {
    Date(NaiveDate),
    Time(DateTime<Utc>),
    Text(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Sort key and direction, as in the `sort` parameter (`-name`).
    s: String,
    v: SortValue,
    id: Uuid,
    /// Fingerprint of the filters the cursor was issued for.
    f: u64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CursorError {
    #[error("cursor is not valid")]
    Malformed,
    #[error("cursor was issued for another sort or filter")]
    Mismatch,
}

fn sort_name(sort: Sort) -> String {
    format!(
        "{}{}",
        if sort.descending { "-" } else { "" },
        sort.key.column()
    )
}

fn fingerprint(filters: &Filters) -> u64 {
    fnv1a(&format!(
        "{:?}|{:?}|{:?}|{:?}",
        filters.team, filters.country, filters.position, filters.name_contains
    ))
}

/// FNV-1a: stable across builds and releases, unlike `DefaultHasher`.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

const MAX_CURSOR_LEN: usize = 1024;

fn encode_json<T: Serialize>(value: &T) -> String {
    // Serialising a plain struct of strings, dates and numbers cannot fail.
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap_or_default())
}

fn decode_json<T: for<'de> Deserialize<'de>>(s: &str) -> Result<T, CursorError> {
    if s.len() > MAX_CURSOR_LEN {
        return Err(CursorError::Malformed);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| CursorError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| CursorError::Malformed)
}

impl Cursor {
    pub fn after(last: PlayerRef<'_>, sort: Sort, filters: &Filters) -> Cursor {
        let v = match sort.key {
            SortKey::Name => SortValue::Text(last.name.to_owned()),
            SortKey::DateOfBirth => SortValue::Date(last.date_of_birth),
            SortKey::CreatedAt => SortValue::Time(last.created_at),
        };
        Cursor {
            s: sort_name(sort),
            v,
            id: last.id,
            f: fingerprint(filters),
        }
    }

    pub fn encode(&self) -> String {
        encode_json(self)
    }

    /// Decodes a cursor and checks it belongs to this sort and these filters.
    pub fn decode(s: &str, sort: Sort, filters: &Filters) -> Result<Cursor, CursorError> {
        let cursor: Cursor = decode_json(s)?;
        if cursor.s != sort_name(sort) || cursor.f != fingerprint(filters) {
            return Err(CursorError::Mismatch);
        }
        let value_fits = matches!(
            (&cursor.v, sort.key),
            (SortValue::Text(_), SortKey::Name)
                | (SortValue::Date(_), SortKey::DateOfBirth)
                | (SortValue::Time(_), SortKey::CreatedAt)
        );
        if !value_fits {
            return Err(CursorError::Malformed);
        }
        Ok(cursor)
    }

    pub fn value(&self) -> &SortValue {
        &self.v
    }

    pub fn id(&self) -> Uuid {
        self.id
    }
}

/// Where the next page of the audit listing (newest first) starts: the last record's time and
/// id, and a fingerprint of the filters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditCursor {
    t: DateTime<Utc>,
    id: Uuid,
    f: u64,
}

fn audit_fingerprint(filters: &AuditFilters) -> u64 {
    fnv1a(&format!(
        "audit|{:?}|{:?}|{:?}|{:?}",
        filters.player_id,
        filters.actor_id,
        filters.from.map(|t| t.timestamp_micros()),
        filters.to.map(|t| t.timestamp_micros()),
    ))
}

impl AuditCursor {
    pub fn after(last: &AuditRecord, filters: &AuditFilters) -> AuditCursor {
        AuditCursor {
            t: last.occurred_at,
            id: last.id,
            f: audit_fingerprint(filters),
        }
    }

    pub fn encode(&self) -> String {
        encode_json(self)
    }

    /// Decodes a cursor and checks it belongs to these filters.
    pub fn decode(s: &str, filters: &AuditFilters) -> Result<AuditCursor, CursorError> {
        let cursor: AuditCursor = decode_json(s)?;
        if cursor.f != audit_fingerprint(filters) {
            return Err(CursorError::Mismatch);
        }
        Ok(cursor)
    }

    pub fn occurred_at(&self) -> DateTime<Utc> {
        self.t
    }

    pub fn id(&self) -> Uuid {
        self.id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Player, Position};

    fn player() -> Player {
        let now = Utc::now();
        Player {
            id: Uuid::now_v7(),
            name: "Ada".into(),
            date_of_birth: NaiveDate::from_ymd_opt(2000, 1, 2).unwrap(),
            country: "ENG".into(),
            team: "T".into(),
            position: Position::Defender,
            club_number: None,
            national_team_number: None,
            version: 1,
            created_at: now,
            updated_at: now,
            created_by: "user:x".into(),
            updated_by: "user:x".into(),
        }
    }

    #[test]
    fn round_trips_for_every_sort() {
        let filters = Filters::default();
        for s in [
            "name",
            "-name",
            "date_of_birth",
            "-date_of_birth",
            "created_at",
            "-created_at",
        ] {
            let sort = Sort::parse(s).unwrap();
            let c = Cursor::after(player().borrowed(), sort, &filters);
            assert_eq!(
                Cursor::decode(&c.encode(), sort, &filters).unwrap(),
                c,
                "{s}"
            );
        }
    }

    #[test]
    fn rejects_other_sort_other_filters_and_garbage() {
        let filters = Filters::default();
        let sort = Sort::parse("name").unwrap();
        let c = Cursor::after(player().borrowed(), sort, &filters).encode();
        let other_sort = Sort::parse("-name").unwrap();
        assert_eq!(
            Cursor::decode(&c, other_sort, &filters),
            Err(CursorError::Mismatch)
        );
        let other_filters = Filters {
            team: Some("X".into()),
            ..Filters::default()
        };
        assert_eq!(
            Cursor::decode(&c, sort, &other_filters),
            Err(CursorError::Mismatch)
        );
        for junk in ["", "!!!", "e30", &"A".repeat(2000)] {
            assert_eq!(
                Cursor::decode(junk, sort, &filters),
                Err(CursorError::Malformed)
            );
        }
    }

    #[test]
    fn audit_cursors_round_trip_and_are_bound_to_their_filters() {
        use crate::{domain::ActorKind, store::AuditAction};
        let record = AuditRecord {
            id: Uuid::now_v7(),
            occurred_at: Utc::now(),
            actor_kind: ActorKind::User,
            actor_id: "x".into(),
            action: AuditAction::Create,
            player_id: Uuid::now_v7(),
            changes: serde_json::json!({}),
            request_id: "r".into(),
            client_request_id: None,
            trace_id: None,
        };
        let filters = AuditFilters {
            actor_id: Some("x".into()),
            ..AuditFilters::default()
        };
        let c = AuditCursor::after(&record, &filters);
        assert_eq!(AuditCursor::decode(&c.encode(), &filters).unwrap(), c);
        assert_eq!(
            AuditCursor::decode(&c.encode(), &AuditFilters::default()),
            Err(CursorError::Mismatch)
        );
        // A players cursor is not an audit cursor.
        let players =
            Cursor::after(player().borrowed(), Sort::default(), &Filters::default()).encode();
        assert_eq!(
            AuditCursor::decode(&players, &filters),
            Err(CursorError::Malformed)
        );
    }
}
