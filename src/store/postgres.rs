//! PostgreSQL storage: production. The operations are shared (`shared::player_store!`); here
//! are the pool, row locking, the idempotency-key claim, timestamps and error codes.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::{
    Connection, Decode, Encode, PgConnection, Postgres, Transaction, Type,
    encode::IsNull,
    error::{BoxDynError, DatabaseError},
    postgres::{
        PgArgumentBuffer, PgConnectOptions, PgPool, PgPoolOptions, PgTypeInfo, PgValueFormat,
        PgValueRef,
    },
};

use super::{
    PoolSettings, StoreError, migrations,
    shared::{Backend, HeldKey, player_store},
    sql::{self, CLUB_NUMBER_CONSTRAINT, Dialect, StoredResponse, player_columns},
    warm::{Lease, Warm},
};
use crate::{secrets::CredentialRefresher, telemetry::metrics};

/// A pooled connection idle for longer than this is pinged before it is used (and a kept one
/// goes back to the pool).
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(1);

/// When a connection last failed in this process (I/O, TLS, protocol, SQLSTATE 08/57): a
/// failover or a network cut usually breaks every connection, so those idle since then are
/// pinged before use. (One for every store of the process: a failure in one only costs the
/// others a ping per idle connection.)
static LAST_FAILURE: Mutex<Option<Instant>> = Mutex::new(None);

/// Whether a connection idle in the pool for `idle_for` must be pinged before use: it sat
/// there longer than [`PING_IF_IDLE_FOR`], or since before a connection failed.
fn needs_ping(idle_for: Duration) -> bool {
    let last = *LAST_FAILURE.lock().unwrap_or_else(|p| p.into_inner());
    idle_for > PING_IF_IDLE_FOR || last.is_some_and(|at| at.elapsed() <= idle_for)
}

#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// Connections that just served a request, kept for the next without a ping (`warm`).
    warm: Arc<Warm<Postgres>>,
    /// Re-reads rotated credentials when the database refuses the current ones (28P01).
    refresher: Option<CredentialRefresher>,
}

impl PostgresStore {
    pub async fn connect(url: &str, settings: &PoolSettings) -> anyhow::Result<Self> {
        let options: PgConnectOptions = url
            .parse()
            .context("DATABASE_URL is not a valid PostgreSQL URL")?;
        Ok(Self::with_options(options, settings))
    }

    /// Connections are opened lazily, so the service starts (and `/ready` reports 503) while
    /// the database is still unreachable, and recovers without a restart.
    ///
    /// sqlx pings every connection it hands out by default: one more round trip to the
    /// database per request, a third of the database's work on a read by id. Here a
    /// connection is pinged before use only when it may have broken while idle
    /// ([`needs_ping`]); one that served a request a moment ago, with nothing failing since,
    /// is known to work. The pool pings again every connection that comes back to it, which
    /// sqlx 0.9 does not let us turn off: connections that just served a request are kept for
    /// the next one by the same rule instead ([`Warm`]).
    pub fn with_options(options: PgConnectOptions, settings: &PoolSettings) -> Self {
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .min_connections(settings.min_connections)
            .acquire_timeout(settings.acquire_timeout)
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if needs_ping(meta.idle_for) {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .connect_lazy_with(options);
        PostgresStore {
            warm: Arc::new(Warm::new(pool.clone(), needs_ping)),
            pool,
            refresher: None,
        }
    }

    /// Connections go through `refresher`, so a rotated password is picked up without a
    /// restart (see `secrets::CredentialRefresher`).
    pub fn with_refresher(mut self, refresher: CredentialRefresher) -> Self {
        self.refresher = Some(refresher);
        self
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Connections kept between requests, out of the pool ([`Warm`]).
    pub fn kept_connections(&self) -> usize {
        self.warm.len()
    }

    /// Every `every` until the task is aborted: returns to the pool the kept connections that
    /// nobody took, and samples the in-use and idle connections (kept ones count as idle) into
    /// `DbPoolInUse`/`DbPoolIdle` (a gauge: the last sample of an interval is emitted).
    pub fn spawn_pool_sampler(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let store = self.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                store.warm.expire();
                let idle = (store.pool.num_idle() + store.warm.len()) as u32;
                metrics::set_pool(store.pool.size().saturating_sub(idle), idle);
            }
        })
    }
}

/// A `timestamptz` as PostgreSQL sends it in binary: microseconds since 2000-01-01 UTC.
/// sqlx's chrono decoder goes from there through `NaiveDateTime` arithmetic and a fixed offset,
/// about 400 instructions a value; a page of players has a hundred timestamps. Here it is one
/// addition (and the conversion to `DateTime` in `decode_time`). Microseconds since the Unix
/// epoch inside.
pub struct PgTime(i64);

/// 2000-01-01T00:00:00Z in microseconds since the Unix epoch.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

impl Type<Postgres> for PgTime {
    fn type_info() -> PgTypeInfo {
        <DateTime<Utc> as Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <DateTime<Utc> as Type<Postgres>>::compatible(ty)
    }
}

impl Encode<'_, Postgres> for PgTime {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        let since_2000 = self
            .0
            .checked_sub(PG_EPOCH_MICROS)
            .ok_or("timestamp out of range")?;
        Encode::<Postgres>::encode(since_2000, buf)
    }
}

impl<'r> Decode<'r, Postgres> for PgTime {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        // Every statement here is prepared, and sqlx asks for prepared statements' results in
        // binary; the text format only comes back to unprepared ones.
        if value.format() != PgValueFormat::Binary {
            return Err("timestamptz in the text format".into());
        }
        let since_2000 = <i64 as Decode<Postgres>>::decode(value)?;
        // `infinity` is i64::MAX: out of range, as it is for chrono.
        let micros = since_2000
            .checked_add(PG_EPOCH_MICROS)
            .ok_or("timestamp out of range")?;
        Ok(PgTime(micros))
    }
}

impl Dialect for Postgres {
    type Time = PgTime;

    fn connection_failed() {
        *LAST_FAILURE.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    }

    fn encode_time(t: DateTime<Utc>) -> PgTime {
        PgTime(t.timestamp_micros())
    }

    fn decode_time(stored: PgTime) -> Result<DateTime<Utc>, sqlx::Error> {
        DateTime::from_timestamp_micros(stored.0).ok_or_else(|| sqlx::Error::ColumnDecode {
            index: "timestamp".into(),
            source: format!("timestamp out of range: {} µs", stored.0).into(),
        })
    }

    const SUBSTRING_POSITION: &'static str = "strpos";

    /// A result's row description gives each column's type.
    const TYPED_COLUMNS: bool = true;

    /// Rows another task's sweep has locked are left to it: sweeps never wait on each other.
    const PICK_EXPIRED: &'static str =
        "{time} < $1 order by {time} limit $2 for update skip locked";

    /// Concurrent writers of the row wait here until this transaction ends.
    const SELECT_FOR_WRITE: &'static str = concat!(
        "select ",
        player_columns!(),
        " from players where id = $1 for update"
    );

    fn begin_write(
        conn: &mut PgConnection,
    ) -> impl Future<Output = Result<Transaction<'_, Postgres>, sqlx::Error>> + Send + '_ {
        conn.begin()
    }

    /// PostgreSQL names the violated constraint.
    fn is_club_number_taken(e: &dyn DatabaseError) -> bool {
        e.constraint() == Some(CLUB_NUMBER_CONSTRAINT)
    }
}

/// Claims the key first, so a concurrent request with the same key waits on the insert until
/// the first commits, and then finds its response.
const CLAIM_KEY: &str = "insert into idempotency_keys (actor, key, request_hash, response, \
     created_at) values ($1, $2, $3, '', $4) on conflict do nothing";

const KEEP_RESPONSE: &str =
    "update idempotency_keys set response = $3 where actor = $1 and key = $2";

#[async_trait::async_trait]
impl Backend for PostgresStore {
    type Db = Postgres;

    /// With a refresher, a refused login re-reads the secret and retries. (Boxed, as every
    /// `async_trait` method: the refresher's future nests the AWS SDK's deep types.)
    async fn conn(&self) -> Result<Lease<Postgres>, StoreError> {
        // Made only when the pool is needed. The refresher's acquire is boxed: it nests the
        // AWS SDK's futures, kilobytes that every move of this one would copy (14k instructions
        // of memcpy per request in callgrind, for a future that, most often, never runs).
        let acquire = || async {
            match &self.refresher {
                Some(refresher) => Box::pin(refresher.acquire()).await,
                None => self.pool.acquire().await,
            }
        };
        self.warm
            .lease(acquire)
            .await
            .map_err(|e| Postgres::unavailable(e, "acquiring a database connection"))
    }

    fn done(&self, conn: Lease<Postgres>) {
        self.warm.keep(conn);
    }

    async fn run_migrations(&self) -> anyhow::Result<()> {
        migrations::postgres()
            .run(&self.pool)
            .await
            .context("applying PostgreSQL migrations")
    }

    async fn claim_key(
        conn: &mut PgConnection,
        key: &HeldKey<'_>,
    ) -> Result<Option<StoredResponse>, StoreError> {
        let claimed = sqlx::query(CLAIM_KEY)
            .bind(key.actor)
            .bind(&key.idem.key)
            .bind(&key.idem.request_hash)
            .bind(key.now)
            .execute(&mut *conn)
            .await
            .map_err(|e| Postgres::classify(e, "claiming an idempotency key"))?
            .rows_affected();
        if claimed != 0 {
            return Ok(None);
        }
        let earlier = sql::stored_response::<Postgres>(conn, key.actor, &key.idem.key).await?;
        earlier
            .context("an idempotency key held by another request has no row")
            .map(Some)
            .map_err(StoreError::Other)
    }

    async fn keep_response(
        conn: &mut PgConnection,
        key: &HeldKey<'_>,
        response: String,
    ) -> Result<(), StoreError> {
        sqlx::query(KEEP_RESPONSE)
            .bind(key.actor)
            .bind(&key.idem.key)
            .bind(response)
            .execute(conn)
            .await
            .map_err(|e| Postgres::classify(e, "recording an idempotent response"))?;
        Ok(())
    }
}

player_store!(PostgresStore);
