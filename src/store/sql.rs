//! SQL shared by both backends. Only the parts that differ between PostgreSQL and SQLite are
//! behind `Dialect`.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{Database, Encode, QueryBuilder, Type};
use uuid::Uuid;

use super::{AuditAction, AuditQuery, AuditRecord, ListQuery, StoreError, cursor::SortValue};
use crate::domain::ActorKind;

pub const COLUMNS: &str = "id, name, date_of_birth, country, team, position, club_number, \
     national_team_number, version, created_at, updated_at, created_by, updated_by";

pub const AUDIT_COLUMNS: &str = "id, occurred_at, actor_kind, actor_id, action, player_id, \
     changes, request_id, trace_id, client_request_id";

/// The unique constraint behind `club_number_taken`.
pub const CLUB_NUMBER_CONSTRAINT: &str = "players_team_club_number_key";

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    Sqlite,
}

/// Builds the keyset-paginated listing query: filters, the position after the cursor, the
/// order, and a limit one above the page size.
pub fn list_query<DB>(dialect: Dialect, q: &ListQuery) -> QueryBuilder<DB>
where
    DB: Database,
    String: for<'t> Encode<'t, DB> + Type<DB>,
    Uuid: for<'t> Encode<'t, DB> + Type<DB>,
    NaiveDate: for<'t> Encode<'t, DB> + Type<DB>,
    DateTime<Utc>: for<'t> Encode<'t, DB> + Type<DB>,
    i64: for<'t> Encode<'t, DB> + Type<DB>,
{
    let mut qb = QueryBuilder::new(format!("select {COLUMNS} from players where true"));
    let f = &q.filters;
    if let Some(team) = &f.team {
        qb.push(" and team = ").push_bind(team.clone());
    }
    if let Some(country) = &f.country {
        qb.push(" and country = ").push_bind(country.clone());
    }
    if let Some(position) = f.position {
        qb.push(" and position = ")
            .push_bind(position.as_str().to_owned());
    }
    if let Some(needle) = &f.name_contains {
        qb.push(match dialect {
            Dialect::Postgres => " and strpos(name_folded, ",
            Dialect::Sqlite => " and instr(name_folded, ",
        });
        qb.push_bind(needle.clone()).push(") > 0");
    }
    let column = q.sort.key.column();
    let (cmp, dir) = if q.sort.descending {
        ("<", "desc")
    } else {
        (">", "asc")
    };
    if let Some(after) = &q.after {
        qb.push(format!(" and ({column}, id) {cmp} ("));
        match after.value() {
            SortValue::Text(s) => qb.push_bind(s.clone()),
            SortValue::Date(d) => qb.push_bind(*d),
            SortValue::Time(t) => match dialect {
                Dialect::Postgres => qb.push_bind(*t),
                Dialect::Sqlite => qb.push_bind(t.timestamp_micros()),
            },
        };
        qb.push(", ").push_bind(after.id()).push(")");
    }
    qb.push(format!(" order by {column} {dir}, id {dir} limit "))
        .push_bind(i64::from(q.limit) + 1);
    qb
}

/// Builds the audit listing: filters, the position after the cursor, newest first, and a
/// limit one above the page size.
pub fn audit_query<DB>(dialect: Dialect, q: &AuditQuery) -> QueryBuilder<DB>
where
    DB: Database,
    String: for<'t> Encode<'t, DB> + Type<DB>,
    Uuid: for<'t> Encode<'t, DB> + Type<DB>,
    DateTime<Utc>: for<'t> Encode<'t, DB> + Type<DB>,
    i64: for<'t> Encode<'t, DB> + Type<DB>,
{
    fn push_time<DB>(qb: &mut QueryBuilder<DB>, dialect: Dialect, t: DateTime<Utc>)
    where
        DB: Database,
        DateTime<Utc>: for<'t> Encode<'t, DB> + Type<DB>,
        i64: for<'t> Encode<'t, DB> + Type<DB>,
    {
        match dialect {
            Dialect::Postgres => qb.push_bind(t),
            Dialect::Sqlite => qb.push_bind(t.timestamp_micros()),
        };
    }
    let mut qb = QueryBuilder::new(format!("select {AUDIT_COLUMNS} from audit_log where true"));
    let f = &q.filters;
    if let Some(player_id) = f.player_id {
        qb.push(" and player_id = ").push_bind(player_id);
    }
    if let Some(actor_id) = &f.actor_id {
        qb.push(" and actor_id = ").push_bind(actor_id.clone());
    }
    if let Some(from) = f.from {
        qb.push(" and occurred_at >= ");
        push_time(&mut qb, dialect, from);
    }
    if let Some(to) = f.to {
        qb.push(" and occurred_at < ");
        push_time(&mut qb, dialect, to);
    }
    if let Some(after) = &q.after {
        qb.push(" and (occurred_at, id) < (");
        push_time(&mut qb, dialect, after.occurred_at());
        qb.push(", ").push_bind(after.id()).push(")");
    }
    qb.push(" order by occurred_at desc, id desc limit ")
        .push_bind(i64::from(q.limit) + 1);
    qb
}

/// An `audit_log` row as both backends read it, before the text columns are parsed.
pub struct AuditRow {
    pub id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub actor_kind: String,
    pub actor_id: String,
    pub action: String,
    pub player_id: Uuid,
    pub changes: String,
    pub request_id: String,
    pub trace_id: Option<String>,
    pub client_request_id: Option<String>,
}

impl AuditRow {
    pub fn into_record(self) -> Result<AuditRecord, sqlx::Error> {
        let decode = |column: &str, source: String| sqlx::Error::ColumnDecode {
            index: column.into(),
            source: source.into(),
        };
        Ok(AuditRecord {
            id: self.id,
            occurred_at: self.occurred_at,
            actor_kind: ActorKind::parse(&self.actor_kind).ok_or_else(|| {
                decode("actor_kind", format!("unknown kind {:?}", self.actor_kind))
            })?,
            actor_id: self.actor_id,
            action: AuditAction::parse(&self.action)
                .ok_or_else(|| decode("action", format!("unknown action {:?}", self.action)))?,
            player_id: self.player_id,
            changes: serde_json::from_str(&self.changes)
                .map_err(|e| decode("changes", e.to_string()))?,
            request_id: self.request_id,
            trace_id: self.trace_id,
            client_request_id: self.client_request_id,
        })
    }
}

/// Maps the errors storage callers must distinguish; everything else is internal.
pub fn classify(e: sqlx::Error, context: &'static str) -> StoreError {
    if let Some(db) = e.as_database_error()
        && db.is_unique_violation()
    {
        // PostgreSQL names the constraint; SQLite names the columns in its message.
        let named = db.constraint() == Some(CLUB_NUMBER_CONSTRAINT);
        let sqlite_cols = db.message().contains("players.team, players.club_number");
        if named || sqlite_cols {
            return StoreError::ClubNumberTaken;
        }
    }
    StoreError::Other(anyhow::Error::new(e).context(context))
}
