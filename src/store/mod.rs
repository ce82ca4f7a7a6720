//! Storage of players. `PlayerStore` is the contract; `postgres` (production) and `sqlite`
//! (embedded, the zero-configuration default) implement it, and the same test suite runs
//! against both (`tests/integration/store_contract.rs`). Every change writes its audit record (`audit`) in
//! the same transaction. The operations (`shared`) and their SQL (`sql`) are written once;
//! each backend holds only what its database does its own way.

mod audit;
mod cursor;
pub mod grants;
mod migrations;
mod postgres;
mod shared;
mod sql;
mod sqlite;
pub mod sweeper;
mod warm;

use std::sync::Arc;

use anyhow::Context;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{
    config::DatabaseSettings,
    domain::{NewPlayer, Player, PlayerList, Position},
};

pub use audit::{
    AUDITED_FIELDS, AuditAction, AuditContext, AuditFilters, AuditPage, AuditQuery, AuditRecord,
    Changes,
};
pub use cursor::{AuditCursor, Cursor, CursorError};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// How long an `Idempotency-Key` is remembered.
pub const IDEMPOTENCY_TTL_HOURS: i64 = 24;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("player not found")]
    NotFound,
    #[error("club number already taken in this team")]
    ClubNumberTaken,
    #[error("version mismatch")]
    VersionMismatch,
    #[error("idempotency key reused with a different request")]
    IdempotencyKeyReused,
    /// The database cannot be reached (no connection within the acquire timeout, the
    /// connection lost, the server shutting down): the request may succeed later.
    #[error(transparent)]
    Unavailable(anyhow::Error),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// A create request's `Idempotency-Key`, scoped to the acting principal.
#[derive(Clone, Debug)]
pub struct Idempotency {
    pub key: String,
    /// SHA-256 of the normalised request, hex.
    pub request_hash: String,
}

/// What `create` did.
#[derive(Debug)]
pub enum Created {
    /// A new player.
    New(Player),
    /// A retry of an earlier request with the same key and body: the player as first returned.
    Replayed(Player),
}

/// Which column a listing is ordered by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortKey {
    Name,
    DateOfBirth,
    CreatedAt,
}

impl SortKey {
    pub fn column(self) -> &'static str {
        match self {
            SortKey::Name => "name",
            SortKey::DateOfBirth => "date_of_birth",
            SortKey::CreatedAt => "created_at",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sort {
    pub key: SortKey,
    pub descending: bool,
}

impl Sort {
    /// Parses `name`, `-name`, `date_of_birth`, `created_at`, ...
    pub fn parse(s: &str) -> Option<Sort> {
        let (descending, name) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let key = match name {
            "name" => SortKey::Name,
            "date_of_birth" => SortKey::DateOfBirth,
            "created_at" => SortKey::CreatedAt,
            _ => return None,
        };
        Some(Sort { key, descending })
    }
}

impl Default for Sort {
    fn default() -> Self {
        Sort {
            key: SortKey::CreatedAt,
            descending: false,
        }
    }
}

/// Filters of a listing. Values are already normalised (country upper case, name folded).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Filters {
    pub team: Option<String>,
    pub country: Option<String>,
    pub position: Option<Position>,
    /// Lower-cased substring of the name.
    pub name_contains: Option<String>,
}

#[derive(Clone, Debug)]
pub struct ListQuery {
    pub filters: Filters,
    pub sort: Sort,
    pub limit: u32,
    /// Continue after this position (from a cursor).
    pub after: Option<Cursor>,
}

#[derive(Debug)]
pub struct Page {
    pub items: PlayerList,
    /// Where the next page starts, if there are more items.
    pub next: Option<Cursor>,
}

#[async_trait::async_trait]
pub trait PlayerStore: Send + Sync + 'static {
    /// Creates a player and its `create` audit record. A replayed idempotent request changes
    /// nothing and records nothing.
    async fn create(
        &self,
        player: &NewPlayer,
        ctx: &AuditContext,
        idempotency: Option<&Idempotency>,
    ) -> Result<Created, StoreError>;

    async fn get(&self, id: Uuid) -> Result<Player, StoreError>;

    async fn list(&self, query: &ListQuery) -> Result<Page, StoreError>;

    /// Replaces the player's fields; with `expected_version`, only if it still matches.
    /// Records an `update` with the fields that changed.
    async fn update(
        &self,
        id: Uuid,
        player: &NewPlayer,
        expected_version: Option<i64>,
        ctx: &AuditContext,
    ) -> Result<Player, StoreError>;

    /// Deletes the player (with `expected_version`, only if it still matches), records a
    /// `delete`, and returns the player as it was.
    async fn delete(
        &self,
        id: Uuid,
        expected_version: Option<i64>,
        ctx: &AuditContext,
    ) -> Result<Player, StoreError>;

    /// The audit trail, newest first.
    async fn list_audit(&self, query: &AuditQuery) -> Result<AuditPage, StoreError>;

    /// Deletes at most `batch` rows of `what` older than `before`, oldest first, in one short
    /// statement; returns how many went. The sweeper repeats it until a batch comes back short.
    async fn delete_expired(
        &self,
        what: Expiring,
        before: DateTime<Utc>,
        batch: u32,
    ) -> Result<u64, StoreError>;

    /// Cheap round trip to the database, for readiness.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Applies pending migrations.
    async fn migrate(&self) -> anyhow::Result<()>;
}

/// What expires: idempotency records after their 24 h window, audit records after the
/// retention (`AUDIT_RETENTION_DAYS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiring {
    IdempotencyKeys,
    AuditRecords,
}

/// Database connection settings shared by both backends.
#[derive(Clone, Debug)]
pub struct PoolSettings {
    pub max_connections: u32,
    pub min_connections: u32,
    pub acquire_timeout: std::time::Duration,
}

impl From<&DatabaseSettings> for PoolSettings {
    fn from(db: &DatabaseSettings) -> Self {
        PoolSettings {
            max_connections: db.max_connections,
            min_connections: db.min_connections,
            acquire_timeout: db.acquire_timeout(),
        }
    }
}

/// Opens the store the URL's scheme names: `postgres://`/`postgresql://` or `sqlite:`.
pub async fn connect(url: &str, pool: &PoolSettings) -> anyhow::Result<Arc<dyn PlayerStore>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::connect(url, pool).await?))
    } else if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url, pool).await?))
    } else {
        anyhow::bail!("DATABASE_URL must start with postgres://, postgresql:// or sqlite:")
    }
}

/// Timestamps are kept to the microsecond, the precision both databases store, so a value
/// read back equals the value written.
pub(crate) fn now_micros() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

/// The page size actually fetched: one more than asked, to learn whether a next page exists.
pub(crate) fn split_page(mut rows: PlayerList, query: &ListQuery) -> Page {
    let limit = query.limit as usize;
    let next = if rows.len() > limit {
        rows.truncate(limit);
        rows.last()
            .map(|last| Cursor::after(last, query.sort, &query.filters))
    } else {
        None
    };
    Page { items: rows, next }
}

/// The answer to a retried create: the original response if the request is the same.
pub(crate) fn replay(
    stored_hash: String,
    response: String,
    idem: &Idempotency,
) -> Result<Created, StoreError> {
    if stored_hash != idem.request_hash {
        return Err(StoreError::IdempotencyKeyReused);
    }
    let player: Player =
        serde_json::from_str(&response).context("decoding a stored idempotent response")?;
    Ok(Created::Replayed(player))
}
