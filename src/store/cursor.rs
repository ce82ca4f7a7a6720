//! Opaque keyset-pagination cursors: the sort, the last row's sort value and id, and a
//! fingerprint of the filters, so a cursor cannot be replayed against another query.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Filters, Sort, SortKey};
use crate::domain::Player;

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

/// FNV-1a: stable across builds and releases, unlike `DefaultHasher`.
fn fingerprint(filters: &Filters) -> u64 {
    let text = format!(
        "{:?}|{:?}|{:?}|{:?}",
        filters.team, filters.country, filters.position, filters.name_contains
    );
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Cursor {
    pub fn after(last: &Player, sort: Sort, filters: &Filters) -> Cursor {
        let v = match sort.key {
            SortKey::Name => SortValue::Text(last.name.clone()),
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
        // Serialising a plain struct of strings, dates and numbers cannot fail.
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    /// Decodes a cursor and checks it belongs to this sort and these filters.
    pub fn decode(s: &str, sort: Sort, filters: &Filters) -> Result<Cursor, CursorError> {
        if s.len() > 1024 {
            return Err(CursorError::Malformed);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| CursorError::Malformed)?;
        let cursor: Cursor = serde_json::from_slice(&bytes).map_err(|_| CursorError::Malformed)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Position;

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
            let c = Cursor::after(&player(), sort, &filters);
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
        let c = Cursor::after(&player(), sort, &filters).encode();
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
}
