//! SQLite storage: the embedded, zero-configuration default (one process per file). The
//! operations are shared (`shared::player_store!`); here are the pool, the write lock, the
//! idempotency-key claim, timestamps and error messages.

use std::{str::FromStr, time::Duration as StdDuration};

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::{
    Connection, Sqlite, SqliteConnection, Transaction,
    error::DatabaseError,
    sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
    },
};

use super::{
    PoolSettings, StoreError, migrations,
    shared::{Backend, HeldKey, player_store},
    sql::{self, Dialect, StoredResponse},
    warm::Lease,
};

#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
}

/// Writers wait for each other instead of failing with SQLITE_BUSY.
const BUSY_TIMEOUT: StdDuration = StdDuration::from_secs(5);

impl SqliteStore {
    pub async fn connect(url: &str, settings: &PoolSettings) -> anyhow::Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .context("DATABASE_URL is not a valid SQLite URL")?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(settings.max_connections)
            .min_connections(settings.min_connections)
            .acquire_timeout(settings.acquire_timeout)
            .connect_with(options)
            .await
            .context("opening the SQLite database")?;
        Ok(SqliteStore { pool })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

/// Times are integer microseconds since the epoch (see the migrations).
impl Dialect for Sqlite {
    type Time = i64;

    fn encode_time(t: DateTime<Utc>) -> i64 {
        t.timestamp_micros()
    }

    fn decode_time(micros: i64) -> Result<DateTime<Utc>, sqlx::Error> {
        DateTime::from_timestamp_micros(micros).ok_or_else(|| sqlx::Error::ColumnDecode {
            index: "timestamp".into(),
            source: format!("timestamp out of range: {micros}").into(),
        })
    }

    const SUBSTRING_POSITION: &'static str = "instr";

    /// A column's declared type says nothing of what a value holds.
    const TYPED_COLUMNS: bool = false;

    /// One writer at a time: a batch is short and nothing else can hold these rows.
    const PICK_EXPIRED: &'static str = "{time} < $1 order by {time} limit $2";

    /// A plain read: the transaction holds the database's write lock already.
    const SELECT_FOR_WRITE: &'static str = sql::SELECT_PLAYER;

    /// IMMEDIATE takes the write lock up front, so concurrent writers queue on the busy
    /// timeout instead of failing to upgrade a read lock.
    fn begin_write(
        conn: &mut SqliteConnection,
    ) -> impl Future<Output = Result<Transaction<'_, Sqlite>, sqlx::Error>> + Send + '_ {
        conn.begin_with("begin immediate")
    }

    /// SQLite names the constraint's columns in its message, not the constraint.
    fn is_club_number_taken(e: &dyn DatabaseError) -> bool {
        e.message().contains("players.team, players.club_number")
    }
}

/// Written with the response, at the end of the create: writers are serialised by the write
/// lock, so no other request can claim the key in between.
const KEEP_KEY: &str = "insert into idempotency_keys (actor, key, request_hash, response, \
     created_at) values ($1, $2, $3, $4, $5)";

#[async_trait::async_trait]
impl Backend for SqliteStore {
    type Db = Sqlite;

    async fn conn(&self) -> Result<Lease<Sqlite>, StoreError> {
        self.pool
            .acquire()
            .await
            .map(Lease::from_pool)
            .map_err(|e| Sqlite::unavailable(e, "acquiring a database connection"))
    }

    async fn run_migrations(&self) -> anyhow::Result<()> {
        migrations::sqlite()
            .run(&self.pool)
            .await
            .context("applying SQLite migrations")
    }

    /// Nothing to claim before the end (see `KEEP_KEY`): only an earlier request to look for.
    async fn claim_key(
        conn: &mut SqliteConnection,
        key: &HeldKey<'_>,
    ) -> Result<Option<StoredResponse>, StoreError> {
        sql::stored_response::<Sqlite>(conn, key.actor, &key.idem.key).await
    }

    async fn keep_response(
        conn: &mut SqliteConnection,
        key: &HeldKey<'_>,
        response: String,
    ) -> Result<(), StoreError> {
        sqlx::query(KEEP_KEY)
            .bind(key.actor)
            .bind(&key.idem.key)
            .bind(&key.idem.request_hash)
            .bind(response)
            .bind(Sqlite::encode_time(key.now))
            .execute(conn)
            .await
            .map_err(|e| Sqlite::classify(e, "recording an idempotent response"))?;
        Ok(())
    }
}

player_store!(SqliteStore);
