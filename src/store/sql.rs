//! The SQL both backends run, written once: the statements (with `$n` placeholders, which
//! SQLite accepts as well as PostgreSQL), the binding of a `NewPlayer`, the decoding of player
//! and audit rows, and the listing queries. What a database does its own way is behind
//! `Dialect`, implemented next to each backend.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{
    Column, ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, QueryBuilder, Row,
    Transaction, Type, error::DatabaseError,
};
use uuid::Uuid;

use super::{
    AuditAction, AuditQuery, AuditRecord, Expiring, ListQuery, StoreError, cursor::SortValue,
};
use crate::domain::{ActorKind, NewPlayer, Player, PlayerList, PlayerRef, Position};

/// The columns of a player row, as every statement that returns one lists them. A macro, not a
/// `const`, so the statements below can be `concat!`ed into `&'static str`s.
macro_rules! player_columns {
    () => {
        "id, name, date_of_birth, country, team, position, club_number, national_team_number, \
         version, created_at, updated_at, created_by, updated_by"
    };
}
pub(super) use player_columns;

pub const SELECT_PLAYER: &str =
    concat!("select ", player_columns!(), " from players where id = $1");

/// `$2`..`$11` are bound by `bind_new_player`; `$10` and `$11` stand twice (a new player was
/// created and last updated at the same time, by the same actor).
pub const INSERT_PLAYER: &str = concat!(
    "insert into players (id, name, name_folded, date_of_birth, country, team, position, \
     club_number, national_team_number, version, created_at, updated_at, created_by, \
     updated_by) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, $10, $10, $11, $11) returning ",
    player_columns!()
);

/// `$2`..`$11` are bound by `bind_new_player`.
pub const UPDATE_PLAYER: &str = concat!(
    "update players set name = $2, name_folded = $3, date_of_birth = $4, country = $5, \
     team = $6, position = $7, club_number = $8, national_team_number = $9, \
     version = version + 1, updated_at = $10, updated_by = $11 where id = $1 returning ",
    player_columns!()
);

pub const DELETE_PLAYER: &str = "delete from players where id = $1";

pub const INSERT_AUDIT: &str = "insert into audit_log (id, occurred_at, actor_kind, actor_id, \
     action, player_id, changes, request_id, trace_id, client_request_id) \
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

const AUDIT_COLUMNS: &str = "id, occurred_at, actor_kind, actor_id, action, player_id, \
     changes, request_id, trace_id, client_request_id";

/// Forgets the actor's key if it is older than its time to live (`$3`).
pub const EXPIRE_IDEMPOTENCY_KEY: &str =
    "delete from idempotency_keys where actor = $1 and key = $2 and created_at < $3";

pub const SELECT_IDEMPOTENT_RESPONSE: &str =
    "select request_hash, response from idempotency_keys where actor = $1 and key = $2";

/// The unique constraint behind `club_number_taken`.
pub const CLUB_NUMBER_CONSTRAINT: &str = "players_team_club_number_key";

/// Deletes one batch of expired rows of `what`, picked by the dialect's `PICK_EXPIRED`.
pub fn delete_expired<DB: Dialect>(what: Expiring) -> String {
    let (table, key, columns, time) = match what {
        Expiring::IdempotencyKeys => (
            "idempotency_keys",
            "(actor, key)",
            "actor, key",
            "created_at",
        ),
        Expiring::AuditRecords => ("audit_log", "id", "id", "occurred_at"),
    };
    let pick = DB::PICK_EXPIRED.replace("{time}", time);
    format!("delete from {table} where {key} in (select {columns} from {table} where {pick})")
}

/// A Rust type the database both encodes and decodes; a bound `T: ColumnType<DB>` stands for
/// the three sqlx bounds it implies.
pub trait ColumnType<DB: Database>:
    for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB> + Type<DB> + Send
{
}

impl<DB: Database, T> ColumnType<DB> for T where
    T: for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB> + Type<DB> + Send
{
}

/// What the shared statements leave to the database they run on.
pub trait Dialect: Database {
    /// How a timestamp column is stored (see the migrations).
    type Time: ColumnType<Self> + 'static;
    fn encode_time(t: DateTime<Utc>) -> Self::Time;
    fn decode_time(stored: Self::Time) -> Result<DateTime<Utc>, sqlx::Error>;
    /// Whether every value in a result column has the column's type (PostgreSQL), so that
    /// checking the column once stands for checking each value; SQLite types values, not
    /// columns.
    const TYPED_COLUMNS: bool;
    /// The function giving the 1-based position of a substring, 0 when it is absent.
    const SUBSTRING_POSITION: &'static str;
    /// `SELECT_PLAYER`, made to keep the row from changing until the transaction ends.
    const SELECT_FOR_WRITE: &'static str;
    /// Opens a transaction that will write.
    fn begin_write(
        conn: &mut Self::Connection,
    ) -> impl Future<Output = Result<Transaction<'_, Self>, sqlx::Error>> + Send + '_;
    /// Whether a unique violation is of the `(team, club_number)` constraint.
    fn is_club_number_taken(e: &dyn DatabaseError) -> bool;
    /// How a batch of expired rows is picked (`$1` the cut-off, `$2` the batch size): oldest
    /// first, and, where the database can, skipping rows another task's sweep holds.
    const PICK_EXPIRED: &'static str;

    /// Told of every error that may have broken the connection it happened on.
    fn connection_failed() {}

    /// No connection could be had: whatever the cause (refused, timed out, a handshake cut
    /// short), the database is out of reach for now, never the request's fault.
    fn unavailable(e: sqlx::Error, context: &'static str) -> StoreError {
        if breaks_connections(&e) {
            Self::connection_failed();
        }
        StoreError::Unavailable(anyhow::Error::new(e).context(context))
    }

    /// Maps the errors storage callers must distinguish; everything else is internal.
    fn classify(e: sqlx::Error, context: &'static str) -> StoreError {
        if breaks_connections(&e) {
            Self::connection_failed();
        }
        if let Some(db) = e.as_database_error()
            && db.is_unique_violation()
            && Self::is_club_number_taken(db)
        {
            return StoreError::ClubNumberTaken;
        }
        if is_unavailable(&e) {
            return StoreError::Unavailable(anyhow::Error::new(e).context(context));
        }
        StoreError::Other(anyhow::Error::new(e).context(context))
    }
}

/// Whether `e` says the database is out of reach rather than that the request is wrong: no
/// pooled connection in time, a connection that broke, or the server refusing connections
/// (SQLSTATE classes 08 connection exception and 57 operator intervention, e.g. a shutdown).
fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => true,
        // The driver and the server disagree: a bug to look at (500), not an outage.
        sqlx::Error::Protocol(_) => false,
        other => breaks_connections(other),
    }
}

/// Whether `e` may have broken the connection it happened on, and likely its siblings (the
/// server or the network went away): I/O, TLS and protocol errors, SQLSTATE 08 and 57. A
/// pool timeout says nothing about the connections themselves.
fn breaks_connections(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57")),
        _ => false,
    }
}

/// Binds `$2`..`$11` of `INSERT_PLAYER` and `UPDATE_PLAYER` (`$1` is the player's id).
pub fn bind_new_player<'q, DB>(
    query: sqlx::query::Query<'q, DB, DB::Arguments>,
    player: &NewPlayer,
    at: DateTime<Utc>,
    actor: &str,
) -> sqlx::query::Query<'q, DB, DB::Arguments>
where
    DB: Dialect,
    for<'s> &'s str: Encode<'s, DB> + Type<DB>,
    String: ColumnType<DB>,
    NaiveDate: ColumnType<DB>,
    Option<i32>: ColumnType<DB>,
{
    query
        .bind(player.name().as_str())
        .bind(player.name().folded())
        .bind(player.date_of_birth())
        .bind(player.country().code())
        .bind(player.team().as_str())
        .bind(player.position().as_str())
        .bind(player.club_number())
        .bind(player.national_team_number())
        .bind(DB::encode_time(at))
        .bind(actor)
}

fn bad_column(column: &str, problem: String) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: column.into(),
        source: problem.into(),
    }
}

/// How a value is checked to have the type it is decoded as.
#[derive(Clone, Copy)]
enum TypeCheck {
    /// Each value's own type (sqlx's `try_get`).
    EachValue,
    /// The column's type, whether this row's value is NULL or not.
    Column,
    /// Checked already: every row of a result has its columns' types.
    Done,
}

impl TypeCheck {
    /// For the first row of a result.
    fn first<DB: Dialect>() -> Self {
        if DB::TYPED_COLUMNS {
            TypeCheck::Column
        } else {
            TypeCheck::EachValue
        }
    }

    /// For the rows after the first.
    fn rest<DB: Dialect>() -> Self {
        if DB::TYPED_COLUMNS {
            TypeCheck::Done
        } else {
            TypeCheck::EachValue
        }
    }
}

/// Column `index` of `row` as a `T`, checked as `check` says.
fn get<'r, R, T>(row: &'r R, index: usize, check: TypeCheck) -> Result<T, sqlx::Error>
where
    R: Row,
    usize: ColumnIndex<R>,
    T: Decode<'r, R::Database> + Type<R::Database>,
{
    match check {
        TypeCheck::EachValue => row.try_get(index),
        TypeCheck::Column => {
            let column = row.try_column(index)?;
            let ty = column.type_info();
            if !T::compatible(ty) {
                let problem = format!("{} cannot be read as {}", ty, std::any::type_name::<T>());
                return Err(bad_column(column.name(), problem));
            }
            row.try_get_unchecked(index)
        }
        TypeCheck::Done => row.try_get_unchecked(index),
    }
}

/// The one decoder of each row shape the statements return, for a row of either database.
pub trait ReadRow: Row {
    /// A row of `player_columns!()`.
    fn player(&self) -> Result<Player, sqlx::Error>;
    /// Rows of `player_columns!()`, one result's, their text copied into one buffer. On
    /// PostgreSQL the column types are checked on the first row only: sqlx checks every value's,
    /// which was 7 % of serving a page of 50.
    fn players(rows: &[Self]) -> Result<PlayerList, sqlx::Error>
    where
        Self: Sized;
    /// A row of `AUDIT_COLUMNS`.
    fn audit_record(&self) -> Result<AuditRecord, sqlx::Error>;
}

/// A row of `player_columns!()`, by position (every statement reading players selects exactly
/// that list): looking each column up by name cost a listing of 50 players 650 name lookups.
/// The text is borrowed from the row.
fn decode_player<DB, R>(row: &R, check: TypeCheck) -> Result<PlayerRef<'_>, sqlx::Error>
where
    DB: Dialect,
    R: Row<Database = DB>,
    usize: ColumnIndex<R>,
    Uuid: ColumnType<DB>,
    NaiveDate: ColumnType<DB>,
    Option<i32>: ColumnType<DB>,
    i64: ColumnType<DB>,
    for<'r> &'r str: Decode<'r, DB> + Type<DB>,
{
    let position: &str = get(row, 5, check)?;
    Ok(PlayerRef {
        id: get(row, 0, check)?,
        name: get(row, 1, check)?,
        date_of_birth: get(row, 2, check)?,
        country: get(row, 3, check)?,
        team: get(row, 4, check)?,
        position: Position::parse(position)
            .ok_or_else(|| bad_column("position", format!("unknown position {position:?}")))?,
        club_number: get(row, 6, check)?,
        national_team_number: get(row, 7, check)?,
        version: get(row, 8, check)?,
        created_at: DB::decode_time(get(row, 9, check)?)?,
        updated_at: DB::decode_time(get(row, 10, check)?)?,
        created_by: get(row, 11, check)?,
        updated_by: get(row, 12, check)?,
    })
}

impl<DB, R> ReadRow for R
where
    DB: Dialect,
    R: Row<Database = DB>,
    &'static str: ColumnIndex<R>,
    usize: ColumnIndex<R>,
    Uuid: ColumnType<DB>,
    String: ColumnType<DB>,
    Option<String>: ColumnType<DB>,
    NaiveDate: ColumnType<DB>,
    Option<i32>: ColumnType<DB>,
    i64: ColumnType<DB>,
    for<'r> &'r str: Decode<'r, DB> + Type<DB>,
{
    fn player(&self) -> Result<Player, sqlx::Error> {
        decode_player(self, TypeCheck::first::<DB>()).map(|p| p.to_player())
    }

    fn players(rows: &[Self]) -> Result<PlayerList, sqlx::Error> {
        let mut players = PlayerList::with_capacity(rows.len());
        let mut check = TypeCheck::first::<DB>();
        for row in rows {
            players.push(decode_player(row, check)?);
            check = TypeCheck::rest::<DB>();
        }
        Ok(players)
    }

    fn audit_record(&self) -> Result<AuditRecord, sqlx::Error> {
        let actor_kind: String = self.try_get("actor_kind")?;
        let action: String = self.try_get("action")?;
        let changes: String = self.try_get("changes")?;
        Ok(AuditRecord {
            id: self.try_get("id")?,
            occurred_at: DB::decode_time(self.try_get("occurred_at")?)?,
            actor_kind: ActorKind::parse(&actor_kind)
                .ok_or_else(|| bad_column("actor_kind", format!("unknown kind {actor_kind:?}")))?,
            actor_id: self.try_get("actor_id")?,
            action: AuditAction::parse(&action)
                .ok_or_else(|| bad_column("action", format!("unknown action {action:?}")))?,
            player_id: self.try_get("player_id")?,
            changes: serde_json::from_str(&changes)
                .map_err(|e| bad_column("changes", e.to_string()))?,
            request_id: self.try_get("request_id")?,
            trace_id: self.try_get("trace_id")?,
            client_request_id: self.try_get("client_request_id")?,
        })
    }
}

/// What an earlier request left under an idempotency key.
pub struct StoredResponse {
    pub request_hash: String,
    /// The body first returned, replayed verbatim.
    pub response: String,
}

/// The request hash and response kept under the actor's key, if any.
pub async fn stored_response<DB>(
    conn: &mut DB::Connection,
    actor: &str,
    key: &str,
) -> Result<Option<StoredResponse>, StoreError>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    &'static str: ColumnIndex<DB::Row>,
    for<'s> &'s str: Encode<'s, DB> + Type<DB>,
    String: ColumnType<DB>,
{
    let row = sqlx::query(SELECT_IDEMPOTENT_RESPONSE)
        .bind(actor)
        .bind(key)
        .fetch_optional(conn)
        .await
        .map_err(|e| DB::classify(e, "reading an idempotency key"))?;
    row.map(|row| {
        Ok(StoredResponse {
            request_hash: row.try_get("request_hash")?,
            response: row.try_get("response")?,
        })
    })
    .transpose()
    .map_err(|e| DB::classify(e, "reading an idempotency key"))
}

/// Builds the keyset-paginated listing query: filters, the position after the cursor, the
/// order, and a limit one above the page size.
pub fn list_query<DB>(q: &ListQuery) -> QueryBuilder<DB>
where
    DB: Dialect,
    String: ColumnType<DB>,
    Uuid: ColumnType<DB>,
    NaiveDate: ColumnType<DB>,
{
    let mut qb = QueryBuilder::new(concat!(
        "select ",
        player_columns!(),
        " from players where true"
    ));
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
        qb.push(format!(" and {}(name_folded, ", DB::SUBSTRING_POSITION));
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
            SortValue::Time(t) => qb.push_bind(DB::encode_time(*t)),
        };
        qb.push(", ").push_bind(after.id()).push(")");
    }
    // The limit is written into the text, not bound: a bound limit makes PostgreSQL plan the
    // statement again on every execution (a generic plan cannot know how many rows are wanted,
    // so it is never preferred), which cost more than the scan itself. It is a number the
    // query validated (1-200); each page size a client uses is one more statement text, and
    // the driver's per-connection statement cache evicts the least used.
    qb.push(format!(
        " order by {column} {dir}, id {dir} limit {}",
        q.limit + 1
    ));
    qb
}

/// Builds the audit listing: filters, the position after the cursor, newest first, and a
/// limit one above the page size.
pub fn audit_query<DB>(q: &AuditQuery) -> QueryBuilder<DB>
where
    DB: Dialect,
    String: ColumnType<DB>,
    Uuid: ColumnType<DB>,
{
    let mut qb = QueryBuilder::new(format!("select {AUDIT_COLUMNS} from audit_log where true"));
    let f = &q.filters;
    if let Some(player_id) = f.player_id {
        qb.push(" and player_id = ").push_bind(player_id);
    }
    if let Some(actor_id) = &f.actor_id {
        qb.push(" and actor_id = ").push_bind(actor_id.clone());
    }
    if let Some(from) = f.from {
        qb.push(" and occurred_at >= ")
            .push_bind(DB::encode_time(from));
    }
    if let Some(to) = f.to {
        qb.push(" and occurred_at < ")
            .push_bind(DB::encode_time(to));
    }
    if let Some(after) = &q.after {
        qb.push(" and (occurred_at, id) < (")
            .push_bind(DB::encode_time(after.occurred_at()))
            .push(", ")
            .push_bind(after.id())
            .push(")");
    }
    // Written into the text for the reason `list_query` gives.
    qb.push(format!(
        " order by occurred_at desc, id desc limit {}",
        q.limit + 1
    ));
    qb
}

#[cfg(test)]
mod tests {
    use sqlx::{Connection, Row, SqliteConnection};

    /// The statements reuse `$10` and `$11`, and SQLite may meet `$n` out of order: the driver
    /// binds a `$n` to the n-th value wherever, and however often, it stands.
    #[tokio::test]
    async fn sqlite_binds_a_dollar_placeholder_by_its_number() {
        let mut conn = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        let row = sqlx::query("select $2 as a, $1 as b, $2 as c")
            .bind(1_i64)
            .bind(2_i64)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        let got: (i64, i64, i64) = (row.get("a"), row.get("b"), row.get("c"));
        assert_eq!(got, (2, 1, 2));
    }
}
