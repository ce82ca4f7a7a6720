//! PostgreSQL storage: production.

use super::replay;
use anyhow::Context;
use chrono::Duration;
use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use sqlx::{
    Acquire, PgConnection, Postgres, Row,
    pool::PoolConnection,
    postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow},
};
use uuid::Uuid;

use super::{
    AuditAction, AuditContext, AuditPage, AuditQuery, AuditRecord, Changes, Created,
    IDEMPOTENCY_TTL_HOURS, Idempotency, ListQuery, Page, PlayerStore, PoolSettings, StoreError,
    audit::split_audit_page,
    migrations, now_micros, split_page,
    sql::{self, AuditRow, COLUMNS, Dialect, classify},
};
use crate::{
    domain::{NewPlayer, Player, Position},
    secrets::CredentialRefresher,
    telemetry::metrics,
};

#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
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
    pub fn with_options(options: PgConnectOptions, settings: &PoolSettings) -> Self {
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .min_connections(settings.min_connections)
            .acquire_timeout(settings.acquire_timeout)
            .connect_lazy_with(options);
        PostgresStore {
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

    /// Samples the pool's in-use and idle connections into `DbPoolInUse`/`DbPoolIdle` every
    /// `every` until the task is aborted (a gauge: the last sample of an interval is emitted).
    pub fn spawn_pool_sampler(&self, every: std::time::Duration) -> tokio::task::JoinHandle<()> {
        let pool = self.pool.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let idle = pool.num_idle() as u32;
                metrics::set_pool(pool.size().saturating_sub(idle), idle);
            }
        })
    }

    /// A pooled connection; with a refresher, a refused login re-reads the secret and retries.
    /// (Boxed: the refresher's future nests the AWS SDK's deep types into every query.)
    fn conn(&self) -> BoxFuture<'_, Result<PoolConnection<Postgres>, StoreError>> {
        Box::pin(async move {
            let conn = match &self.refresher {
                Some(refresher) => refresher.acquire().await,
                None => self.pool.acquire().await,
            };
            conn.map_err(|e| classify(e, "acquiring a database connection"))
        })
    }
}

fn player_from_row(row: &PgRow) -> Result<Player, sqlx::Error> {
    let position: String = row.try_get("position")?;
    Ok(Player {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        date_of_birth: row.try_get("date_of_birth")?,
        country: row.try_get("country")?,
        team: row.try_get("team")?,
        position: Position::parse(&position).ok_or_else(|| sqlx::Error::ColumnDecode {
            index: "position".into(),
            source: format!("unknown position {position:?}").into(),
        })?,
        club_number: row.try_get("club_number")?,
        national_team_number: row.try_get("national_team_number")?,
        version: row.try_get("version")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        created_by: row.try_get("created_by")?,
        updated_by: row.try_get("updated_by")?,
    })
}

const INSERT: &str = "insert into players (id, name, name_folded, date_of_birth, country, team, \
     position, club_number, national_team_number, version, created_at, updated_at, created_by, \
     updated_by) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, $10, $10, $11, $11) \
     returning id, name, date_of_birth, country, team, position, club_number, \
     national_team_number, version, created_at, updated_at, created_by, updated_by";

const UPDATE: &str = "update players set name = $2, name_folded = $3, date_of_birth = $4, \
     country = $5, team = $6, position = $7, club_number = $8, national_team_number = $9, \
     version = version + 1, updated_at = $10, updated_by = $11 \
     where id = $1 \
     returning id, name, date_of_birth, country, team, position, club_number, \
     national_team_number, version, created_at, updated_at, created_by, updated_by";

const INSERT_AUDIT: &str = "insert into audit_log (id, occurred_at, actor_kind, actor_id, \
     action, player_id, changes, request_id, trace_id, client_request_id) \
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

fn audit_from_row(row: &PgRow) -> Result<AuditRecord, sqlx::Error> {
    AuditRow {
        id: row.try_get("id")?,
        occurred_at: row.try_get("occurred_at")?,
        actor_kind: row.try_get("actor_kind")?,
        actor_id: row.try_get("actor_id")?,
        action: row.try_get("action")?,
        player_id: row.try_get("player_id")?,
        changes: row.try_get("changes")?,
        request_id: row.try_get("request_id")?,
        trace_id: row.try_get("trace_id")?,
        client_request_id: row.try_get("client_request_id")?,
    }
    .into_record()
}

/// Writes the audit record of a change, inside the change's transaction.
async fn insert_audit(
    conn: &mut PgConnection,
    ctx: &AuditContext,
    action: AuditAction,
    player_id: Uuid,
    changes: &Changes,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(INSERT_AUDIT)
        .bind(Uuid::now_v7())
        .bind(at)
        .bind(ctx.actor.kind.as_str())
        .bind(&ctx.actor.id)
        .bind(action.as_str())
        .bind(player_id)
        .bind(changes.to_json_text())
        .bind(&ctx.request_id)
        .bind(ctx.trace_id.as_deref())
        .bind(ctx.client_request_id.as_deref())
        .execute(conn)
        .await
        .map_err(|e| classify(e, "recording an audit record"))?;
    Ok(())
}

/// Reads and locks the row a conditional write is about to change, so the audit record's
/// "before" is exactly what the write replaced: missing is `NotFound`, another version
/// `VersionMismatch`.
async fn lock_current(
    conn: &mut PgConnection,
    id: Uuid,
    expected_version: Option<i64>,
) -> Result<Player, StoreError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from players where id = $1 for update"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
    .map_err(|e| classify(e, "locking a player"))?
    .ok_or(StoreError::NotFound)?;
    let current = player_from_row(&row).map_err(|e| classify(e, "decoding a player"))?;
    if expected_version.is_some_and(|v| v != current.version) {
        return Err(StoreError::VersionMismatch);
    }
    Ok(current)
}

#[async_trait::async_trait]
impl PlayerStore for PostgresStore {
    #[tracing::instrument(name = "db.create_player", skip_all)]
    async fn create(
        &self,
        player: &NewPlayer,
        ctx: &AuditContext,
        idempotency: Option<&Idempotency>,
    ) -> Result<Created, StoreError> {
        let now = now_micros();
        let actor = ctx.actor.qualified();
        let actor = actor.as_str();
        let mut conn = self.conn().await?;
        let mut tx = conn
            .begin()
            .await
            .map_err(|e| classify(e, "starting a transaction"))?;
        if let Some(idem) = idempotency {
            sqlx::query(
                "delete from idempotency_keys where actor = $1 and key = $2 and created_at < $3",
            )
            .bind(actor)
            .bind(&idem.key)
            .bind(now - Duration::hours(IDEMPOTENCY_TTL_HOURS))
            .execute(&mut *tx)
            .await
            .map_err(|e| classify(e, "expiring an idempotency key"))?;
            // A concurrent request with the same key waits here until the first commits.
            let claimed = sqlx::query(
                "insert into idempotency_keys (actor, key, request_hash, response, created_at) \
                 values ($1, $2, $3, '', $4) on conflict do nothing",
            )
            .bind(actor)
            .bind(&idem.key)
            .bind(&idem.request_hash)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(|e| classify(e, "claiming an idempotency key"))?
            .rows_affected();
            if claimed == 0 {
                let row = sqlx::query(
                    "select request_hash, response from idempotency_keys \
                     where actor = $1 and key = $2",
                )
                .bind(actor)
                .bind(&idem.key)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| classify(e, "reading an idempotency key"))?;
                return replay(row.get("request_hash"), row.get("response"), idem);
            }
        }
        let created = sqlx::query(INSERT)
            .bind(Uuid::now_v7())
            .bind(player.name().as_str())
            .bind(player.name().folded())
            .bind(player.date_of_birth())
            .bind(player.country().code())
            .bind(player.team().as_str())
            .bind(player.position().as_str())
            .bind(player.club_number())
            .bind(player.national_team_number())
            .bind(now)
            .bind(actor)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| classify(e, "inserting a player"))?;
        let created = player_from_row(&created).map_err(|e| classify(e, "decoding a player"))?;
        let changes = Changes::between(None, Some(&created));
        insert_audit(&mut tx, ctx, AuditAction::Create, created.id, &changes, now).await?;
        if let Some(idem) = idempotency {
            sqlx::query("update idempotency_keys set response = $3 where actor = $1 and key = $2")
                .bind(actor)
                .bind(&idem.key)
                .bind(serde_json::to_string(&created).context("encoding the response")?)
                .execute(&mut *tx)
                .await
                .map_err(|e| classify(e, "recording an idempotent response"))?;
        }
        tx.commit()
            .await
            .map_err(|e| classify(e, "committing a new player"))?;
        Ok(Created::New(created))
    }

    #[tracing::instrument(name = "db.get_player", skip(self))]
    async fn get(&self, id: Uuid) -> Result<Player, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "select {COLUMNS} from players where id = $1"
        )))
        .bind(id)
        .fetch_optional(&mut *self.conn().await?)
        .await
        .map_err(|e| classify(e, "reading a player"))?
        .ok_or(StoreError::NotFound)?;
        player_from_row(&row).map_err(|e| classify(e, "decoding a player"))
    }

    #[tracing::instrument(name = "db.list_players", skip_all)]
    async fn list(&self, query: &ListQuery) -> Result<Page, StoreError> {
        let mut qb = sql::list_query(Dialect::Postgres, query);
        let rows = qb
            .build()
            .fetch_all(&mut *self.conn().await?)
            .await
            .map_err(|e| classify(e, "listing players"))?;
        let players = rows
            .iter()
            .map(player_from_row)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| classify(e, "decoding players"))?;
        Ok(split_page(players, query))
    }

    #[tracing::instrument(name = "db.update_player", skip(self, player, ctx))]
    async fn update(
        &self,
        id: Uuid,
        player: &NewPlayer,
        expected_version: Option<i64>,
        ctx: &AuditContext,
    ) -> Result<Player, StoreError> {
        let now = now_micros();
        let mut conn = self.conn().await?;
        let mut tx = conn
            .begin()
            .await
            .map_err(|e| classify(e, "starting a transaction"))?;
        let before = lock_current(&mut tx, id, expected_version).await?;
        let row = sqlx::query(UPDATE)
            .bind(id)
            .bind(player.name().as_str())
            .bind(player.name().folded())
            .bind(player.date_of_birth())
            .bind(player.country().code())
            .bind(player.team().as_str())
            .bind(player.position().as_str())
            .bind(player.club_number())
            .bind(player.national_team_number())
            .bind(now)
            .bind(ctx.actor.qualified())
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| classify(e, "updating a player"))?;
        let after = player_from_row(&row).map_err(|e| classify(e, "decoding a player"))?;
        let changes = Changes::between(Some(&before), Some(&after));
        insert_audit(&mut tx, ctx, AuditAction::Update, id, &changes, now).await?;
        tx.commit()
            .await
            .map_err(|e| classify(e, "committing a player update"))?;
        Ok(after)
    }

    #[tracing::instrument(name = "db.delete_player", skip(self, ctx))]
    async fn delete(
        &self,
        id: Uuid,
        expected_version: Option<i64>,
        ctx: &AuditContext,
    ) -> Result<Player, StoreError> {
        let mut conn = self.conn().await?;
        let mut tx = conn
            .begin()
            .await
            .map_err(|e| classify(e, "starting a transaction"))?;
        let before = lock_current(&mut tx, id, expected_version).await?;
        sqlx::query("delete from players where id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(|e| classify(e, "deleting a player"))?;
        let changes = Changes::between(Some(&before), None);
        insert_audit(
            &mut tx,
            ctx,
            AuditAction::Delete,
            id,
            &changes,
            now_micros(),
        )
        .await?;
        tx.commit()
            .await
            .map_err(|e| classify(e, "committing a player deletion"))?;
        Ok(before)
    }

    #[tracing::instrument(name = "db.list_audit", skip_all)]
    async fn list_audit(&self, query: &AuditQuery) -> Result<AuditPage, StoreError> {
        let mut qb = sql::audit_query(Dialect::Postgres, query);
        let rows = qb
            .build()
            .fetch_all(&mut *self.conn().await?)
            .await
            .map_err(|e| classify(e, "listing the audit trail"))?;
        let records = rows
            .iter()
            .map(audit_from_row)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| classify(e, "decoding audit records"))?;
        Ok(split_audit_page(records, query))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("select 1")
            .execute(&mut *self.conn().await?)
            .await
            .map_err(|e| classify(e, "pinging the database"))?;
        Ok(())
    }

    async fn migrate(&self) -> anyhow::Result<()> {
        migrations::postgres()
            .run(&self.pool)
            .await
            .context("applying PostgreSQL migrations")
    }
}
