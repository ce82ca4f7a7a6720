//! The `PlayerStore` operations, written once for both backends: `player_store!(Store)`
//! implements the trait for a store that is a `Backend`, on the statements of `sql`. A backend
//! supplies only what it does its own way: its connections, its idempotency-key claim and its
//! migrations (here), and its database's `Dialect` (time encoding, locking, error codes).
//!
//! A macro, not a generic `impl<B: Backend> PlayerStore for B`: generic code would have to
//! state, on the impl and again on every helper it calls, the executor bound of the database's
//! connection and the encode/decode bounds of each column type. Expanded for one backend, the
//! same code works on concrete types and needs none of them.

use chrono::{DateTime, Utc};
use sqlx::Database;

use super::{
    Idempotency, StoreError,
    sql::{Dialect, StoredResponse},
    warm::Lease,
};

/// An idempotency key as the create that presents it holds it.
pub struct HeldKey<'a> {
    /// The acting principal, qualified (`user:<sub>`): keys are scoped to it.
    pub actor: &'a str,
    pub idem: &'a Idempotency,
    /// The create's time, which is also the key's.
    pub now: DateTime<Utc>,
}

/// What a store does its own way; `player_store!` does the rest.
#[async_trait::async_trait]
pub trait Backend: Send + Sync + 'static {
    type Db: Dialect;

    /// A connection for one operation.
    async fn conn(&self) -> Result<Lease<Self::Db>, StoreError>;

    /// `conn`'s operation is done, and cleanly: the store may keep it for the next one
    /// (`warm::Warm`). An operation that fails drops its connection instead, which returns it
    /// to the pool.
    fn done(&self, conn: Lease<Self::Db>) {
        drop(conn);
    }

    /// Applies pending migrations.
    async fn run_migrations(&self) -> anyhow::Result<()>;

    /// Claims the key for the create whose transaction `conn` is in (the expired key is gone
    /// already). `Some` is the earlier request that holds it: its hash and response.
    async fn claim_key(
        conn: &mut <Self::Db as Database>::Connection,
        key: &HeldKey<'_>,
    ) -> Result<Option<StoredResponse>, StoreError>;

    /// Keeps the response of the create that claimed the key, in its transaction.
    async fn keep_response(
        conn: &mut <Self::Db as Database>::Connection,
        key: &HeldKey<'_>,
        response: String,
    ) -> Result<(), StoreError>;
}

/// Implements `PlayerStore` for `$store`, a `Backend`. The items live in an anonymous `const`
/// so that its imports stay out of the backend's module.
macro_rules! player_store {
    ($store:ty) => {
        const _: () = {
            use anyhow::Context as _;
            use chrono::{DateTime, Duration, Utc};
            use sqlx::Database;
            use uuid::Uuid;

            use $crate::domain::{NewPlayer, Player};
            use $crate::store::{
                AuditAction, AuditContext, AuditPage, AuditQuery, Changes, Created,
                IDEMPOTENCY_TTL_HOURS, Idempotency, ListQuery, Page, PlayerStore, StoreError,
                audit::split_audit_page,
                now_micros, replay,
                shared::{Backend, HeldKey},
                split_page,
                sql::{self, Dialect, ReadRow},
            };

            type Db = <$store as Backend>::Db;
            type Conn = <Db as Database>::Connection;
            type Row = <Db as Database>::Row;
            type Tx<'c> = sqlx::Transaction<'c, Db>;

            /// Writes the audit record of a change, inside the change's transaction.
            async fn insert_audit(
                conn: &mut Conn,
                ctx: &AuditContext,
                action: AuditAction,
                player_id: Uuid,
                changes: &Changes,
                at: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                sqlx::query(sql::INSERT_AUDIT)
                    .bind(Uuid::now_v7())
                    .bind(Db::encode_time(at))
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
                    .map_err(|e| Db::classify(e, "recording an audit record"))?;
                Ok(())
            }

            /// Reads the row a conditional write is about to change, held until the
            /// transaction ends (`Dialect::SELECT_FOR_WRITE`), so the audit record's "before"
            /// is exactly what the write replaced: missing is `NotFound`, another version
            /// `VersionMismatch`.
            async fn current(
                conn: &mut Conn,
                id: Uuid,
                expected_version: Option<i64>,
            ) -> Result<Player, StoreError> {
                let row = sqlx::query(Db::SELECT_FOR_WRITE)
                    .bind(id)
                    .fetch_optional(conn)
                    .await
                    .map_err(|e| Db::classify(e, "reading a player"))?
                    .ok_or(StoreError::NotFound)?;
                let current = decoded(row.player(), "decoding a player")?;
                if expected_version.is_some_and(|v| v != current.version) {
                    return Err(StoreError::VersionMismatch);
                }
                Ok(current)
            }

            fn decoded<T>(
                decoded: Result<T, sqlx::Error>,
                context: &'static str,
            ) -> Result<T, StoreError> {
                decoded.map_err(|e| Db::classify(e, context))
            }

            async fn fetch_all(
                conn: &mut Conn,
                mut query: sqlx::QueryBuilder<Db>,
                context: &'static str,
            ) -> Result<Vec<Row>, StoreError> {
                query
                    .build()
                    .fetch_all(conn)
                    .await
                    .map_err(|e| Db::classify(e, context))
            }

            async fn begin_write(conn: &mut Conn) -> Result<Tx<'_>, StoreError> {
                Db::begin_write(conn)
                    .await
                    .map_err(|e| Db::classify(e, "starting a transaction"))
            }

            async fn commit(tx: Tx<'_>, context: &'static str) -> Result<(), StoreError> {
                tx.commit().await.map_err(|e| Db::classify(e, context))
            }

            #[async_trait::async_trait]
            impl PlayerStore for $store {
                #[tracing::instrument(name = "db.create_player", skip_all)]
                async fn create(
                    &self,
                    player: &NewPlayer,
                    ctx: &AuditContext,
                    idempotency: Option<&Idempotency>,
                ) -> Result<Created, StoreError> {
                    let now = now_micros();
                    let actor = ctx.actor.qualified();
                    let mut conn = self.conn().await?;
                    let mut tx = begin_write(&mut conn).await?;
                    let key = idempotency.map(|idem| HeldKey {
                        actor: &actor,
                        idem,
                        now,
                    });
                    if let Some(key) = &key {
                        sqlx::query(sql::EXPIRE_IDEMPOTENCY_KEY)
                            .bind(key.actor)
                            .bind(&key.idem.key)
                            .bind(Db::encode_time(
                                now - Duration::hours(IDEMPOTENCY_TTL_HOURS),
                            ))
                            .execute(&mut *tx)
                            .await
                            .map_err(|e| Db::classify(e, "expiring an idempotency key"))?;
                        if let Some(earlier) = <$store>::claim_key(&mut tx, key).await? {
                            return replay(earlier.request_hash, earlier.response, key.idem);
                        }
                    }
                    let row = sql::bind_new_player(
                        sqlx::query(sql::INSERT_PLAYER).bind(Uuid::now_v7()),
                        player,
                        now,
                        &actor,
                    )
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|e| Db::classify(e, "inserting a player"))?;
                    let created = decoded(row.player(), "decoding a player")?;
                    let changes = Changes::between(None, Some(&created));
                    insert_audit(&mut tx, ctx, AuditAction::Create, created.id, &changes, now)
                        .await?;
                    if let Some(key) = &key {
                        let response =
                            serde_json::to_string(&created).context("encoding the response")?;
                        <$store>::keep_response(&mut tx, key, response).await?;
                    }
                    commit(tx, "committing a new player").await?;
                    self.done(conn);
                    Ok(Created::New(created))
                }

                #[tracing::instrument(name = "db.get_player", skip(self))]
                async fn get(&self, id: Uuid) -> Result<Player, StoreError> {
                    let mut conn = self.conn().await?;
                    let row = sqlx::query(sql::SELECT_PLAYER)
                        .bind(id)
                        .fetch_optional(&mut *conn)
                        .await
                        .map_err(|e| Db::classify(e, "reading a player"))?;
                    self.done(conn);
                    decoded(
                        row.ok_or(StoreError::NotFound)?.player(),
                        "decoding a player",
                    )
                }

                #[tracing::instrument(name = "db.list_players", skip_all)]
                async fn list(&self, query: &ListQuery) -> Result<Page, StoreError> {
                    let mut conn = self.conn().await?;
                    let rows =
                        fetch_all(&mut conn, sql::list_query(query), "listing players").await?;
                    self.done(conn);
                    let players = ReadRow::players(&rows);
                    Ok(split_page(decoded(players, "decoding players")?, query))
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
                    let mut tx = begin_write(&mut conn).await?;
                    let before = current(&mut tx, id, expected_version).await?;
                    let actor = ctx.actor.qualified();
                    let row = sql::bind_new_player(
                        sqlx::query(sql::UPDATE_PLAYER).bind(id),
                        player,
                        now,
                        &actor,
                    )
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|e| Db::classify(e, "updating a player"))?;
                    let after = decoded(row.player(), "decoding a player")?;
                    let changes = Changes::between(Some(&before), Some(&after));
                    insert_audit(&mut tx, ctx, AuditAction::Update, id, &changes, now).await?;
                    commit(tx, "committing a player update").await?;
                    self.done(conn);
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
                    let mut tx = begin_write(&mut conn).await?;
                    let before = current(&mut tx, id, expected_version).await?;
                    sqlx::query(sql::DELETE_PLAYER)
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| Db::classify(e, "deleting a player"))?;
                    let changes = Changes::between(Some(&before), None);
                    let now = now_micros();
                    insert_audit(&mut tx, ctx, AuditAction::Delete, id, &changes, now).await?;
                    commit(tx, "committing a player deletion").await?;
                    self.done(conn);
                    Ok(before)
                }

                #[tracing::instrument(name = "db.list_audit", skip_all)]
                async fn list_audit(&self, query: &AuditQuery) -> Result<AuditPage, StoreError> {
                    let mut conn = self.conn().await?;
                    let listing = sql::audit_query(query);
                    let rows = fetch_all(&mut conn, listing, "listing the audit trail").await?;
                    self.done(conn);
                    let records = rows.iter().map(ReadRow::audit_record).collect();
                    Ok(split_audit_page(
                        decoded(records, "decoding audit records")?,
                        query,
                    ))
                }

                async fn delete_expired(
                    &self,
                    what: $crate::store::Expiring,
                    before: DateTime<Utc>,
                    batch: u32,
                ) -> Result<u64, StoreError> {
                    let statement = sql::delete_expired::<Db>(what);
                    let mut conn = self.conn().await?;
                    let deleted = sqlx::query(sqlx::AssertSqlSafe(statement))
                        .bind(Db::encode_time(before))
                        .bind(i64::from(batch))
                        .execute(&mut *conn)
                        .await
                        .map_err(|e| Db::classify(e, "deleting expired rows"))?;
                    self.done(conn);
                    Ok(deleted.rows_affected())
                }

                async fn ping(&self) -> Result<(), StoreError> {
                    let mut conn = self.conn().await?;
                    sqlx::query("select 1")
                        .execute(&mut *conn)
                        .await
                        .map_err(|e| Db::classify(e, "pinging the database"))?;
                    self.done(conn);
                    Ok(())
                }

                async fn migrate(&self) -> anyhow::Result<()> {
                    self.run_migrations().await
                }
            }
        };
    };
}
pub(super) use player_store;
