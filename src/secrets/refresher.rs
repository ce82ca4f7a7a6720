//! Following the rotation of the database secret without a restart.
//!
//! Secrets Manager rotates in steps: `createSecret` stores the new version as `AWSPENDING`,
//! `setSecret` changes the password in the database, `finishSecret` moves `AWSCURRENT` to the
//! new version. Between the last two, the database refuses the current version's password
//! and the new one is only in `AWSPENDING`. Connections already open keep working (PostgreSQL
//! checks passwords only at log-in), so only new connections fail, with SQLSTATE 28P01.
//!
//! On a 28P01 the refresher re-reads `AWSCURRENT`; if it has not moved, it tries `AWSPENDING`
//! with one test log-in; it repeats that, within a bounded wait, until the database accepts
//! one. Concurrent callers share one attempt. The credentials (username and password, so the
//! alternating-users strategy works too) go to the pool with `set_connect_options`, which
//! affects only connections opened afterwards: requests in flight are untouched. A scheduled
//! re-read (`SECRET_REFRESH_INTERVAL_SECS`) follows rotations before any log-in fails; it
//! never goes back to credentials the database has already refused.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, Postgres};
use sqlx::{ConnectOptions, Connection, PgPool};
use tokio::time::Instant;

use super::{DbCredentials, SecretError, SecretsClient};
use crate::telemetry::metrics::{self, Counter};

/// SQLSTATE 28P01 `invalid_password`: the credentials the pool used are no longer valid.
pub fn is_auth_failure(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("28P01"))
}

/// How long and how often the refresher tries.
#[derive(Clone, Copy, Debug)]
pub struct RefreshTiming {
    /// Deadline of one re-read of the secret, retries included.
    pub fetch_deadline: Duration,
    /// After a 28P01, how long to keep looking for credentials the database accepts (the
    /// request waits that long at most).
    pub rotation_wait: Duration,
    /// Pause between such re-reads.
    pub poll_interval: Duration,
}

impl Default for RefreshTiming {
    fn default() -> Self {
        RefreshTiming {
            fetch_deadline: Duration::from_secs(10),
            rotation_wait: Duration::from_secs(5),
            poll_interval: Duration::from_millis(250),
        }
    }
}

struct Inner {
    client: SecretsClient,
    secret_id: String,
    pool: PgPool,
    base: PgConnectOptions,
    timing: RefreshTiming,
    current: Mutex<Credentials>,
    /// Bumped whenever the pool gets new credentials.
    generation: AtomicU64,
    /// Bumped after every completed fetch; lets waiters reuse a fetch that ran while they
    /// queued instead of starting another.
    fetches: AtomicU64,
    /// Held during a fetch: one fetch in flight, whatever the number of callers.
    in_flight: tokio::sync::Mutex<()>,
}

/// What the pool uses, and what the database refused last (a scheduled re-read of a secret
/// whose `AWSCURRENT` has not moved yet must not go back to it).
struct Credentials {
    applied: DbCredentials,
    refused: Option<DbCredentials>,
}

/// Cheap to clone; all clones share one state.
#[derive(Clone)]
pub struct CredentialRefresher {
    inner: Arc<Inner>,
}

impl CredentialRefresher {
    /// `base` carries host, port, database and TLS; `initial` are the credentials the pool was
    /// created with (from the start-up read of `secret_id`).
    pub fn new(
        client: SecretsClient,
        secret_id: impl Into<String>,
        pool: PgPool,
        base: PgConnectOptions,
        initial: DbCredentials,
    ) -> Self {
        Self::with_timing(
            client,
            secret_id,
            pool,
            base,
            initial,
            RefreshTiming::default(),
        )
    }

    pub fn with_timing(
        client: SecretsClient,
        secret_id: impl Into<String>,
        pool: PgPool,
        base: PgConnectOptions,
        initial: DbCredentials,
        timing: RefreshTiming,
    ) -> Self {
        CredentialRefresher {
            inner: Arc::new(Inner {
                client,
                secret_id: secret_id.into(),
                pool,
                base,
                timing,
                current: Mutex::new(Credentials {
                    applied: initial,
                    refused: None,
                }),
                generation: AtomicU64::new(0),
                fetches: AtomicU64::new(0),
                in_flight: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// How many times the pool got new credentials.
    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }

    /// Completed reads of the secret (successful or not).
    pub fn fetches(&self) -> u64 {
        self.inner.fetches.load(Ordering::Acquire)
    }

    /// Re-reads the secret now; if the credentials changed, new connections use them.
    /// Concurrent calls share one fetch. Returns whether the credentials changed since the call.
    pub async fn refresh_now(&self) -> Result<bool, SecretError> {
        let generation = self.generation();
        let fetches = self.fetches();
        let _guard = self.inner.in_flight.lock().await;
        if self.fetches() != fetches {
            // A fetch completed while this call queued: its answer is fresh enough.
            return Ok(self.generation() != generation);
        }
        let result = self.fetch_and_apply().await;
        self.inner.fetches.fetch_add(1, Ordering::AcqRel);
        result.map(|_| self.generation() != generation)
    }

    async fn fetch_and_apply(&self) -> Result<(), SecretError> {
        let deadline = Instant::now() + self.inner.timing.fetch_deadline;
        let fetched = self
            .inner
            .client
            .db_credentials(&self.inner.secret_id, "DB_SECRET_ARN", deadline)
            .await;
        let creds = match fetched {
            Ok(c) => c,
            Err(e) => {
                metrics::incr(Counter::SecretRefreshErrors);
                tracing::error!(error = %e, "refreshing database credentials failed");
                return Err(e);
            }
        };
        metrics::incr(Counter::SecretRefreshes);
        let mut current = self.lock_current();
        if current.refused.as_ref() == Some(&creds) {
            // AWSCURRENT still holds what the database refused: the rotation has not finished.
            return Ok(());
        }
        current.refused = None;
        if current.applied != creds {
            self.apply(&mut current, creds, "AWSCURRENT");
        }
        Ok(())
    }

    fn lock_current(&self) -> std::sync::MutexGuard<'_, Credentials> {
        self.inner
            .current
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn apply(&self, current: &mut Credentials, creds: DbCredentials, stage: &'static str) {
        self.inner
            .pool
            .set_connect_options(creds.apply_to(&self.inner.base));
        current.applied = creds;
        self.inner.generation.fetch_add(1, Ordering::AcqRel);
        tracing::info!(
            secret_id = %self.inner.secret_id,
            stage,
            "database credentials changed; new connections use them"
        );
    }

    /// During a rotation's `setSecret`..`finishSecret` window: the `AWSPENDING` credentials,
    /// if the database accepts them (one test log-in). `true` if the pool got them.
    async fn try_pending(&self) -> bool {
        let deadline = Instant::now() + self.inner.timing.fetch_deadline;
        let pending = match self
            .inner
            .client
            .pending_db_credentials(&self.inner.secret_id, "DB_SECRET_ARN", deadline)
            .await
        {
            Ok(Some(p)) => p,
            Ok(None) => return false,
            Err(e) => {
                metrics::incr(Counter::SecretRefreshErrors);
                tracing::error!(error = %e, "reading the pending database credentials failed");
                return false;
            }
        };
        if self.lock_current().applied == pending {
            return false;
        }
        let options = pending
            .apply_to(&self.inner.base)
            .disable_statement_logging();
        let login = tokio::time::timeout_at(deadline, options.connect()).await;
        match login {
            Ok(Ok(conn)) => {
                let _ = conn.close().await;
                let mut current = self.lock_current();
                let refused = current.applied.clone();
                current.refused = Some(refused);
                self.apply(&mut current, pending, "AWSPENDING");
                true
            }
            Ok(Err(e)) if is_auth_failure(&e) => false,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "test log-in with the pending credentials failed");
                false
            }
            Err(_) => false,
        }
    }

    /// One attempt, shared by concurrent callers, to replace credentials opened as generation
    /// `seen` that the database refused: `AWSCURRENT`, then `AWSPENDING`.
    async fn recover(&self, seen: u64) {
        let _guard = self.inner.in_flight.lock().await;
        if self.generation() != seen {
            return; // another caller replaced them while this one queued
        }
        let result = self.fetch_and_apply().await;
        self.inner.fetches.fetch_add(1, Ordering::AcqRel);
        if result.is_ok() && self.generation() == seen {
            self.try_pending().await;
        }
    }

    /// After a 28P01 on a connection opened with generation `seen`: looks for credentials the
    /// database accepts until `rotation_wait` has passed. `true` if the pool got new ones.
    pub async fn refresh_after_auth_failure(&self, seen: u64) -> bool {
        let until = Instant::now() + self.inner.timing.rotation_wait;
        loop {
            if self.generation() != seen {
                return true;
            }
            // Errors are logged and counted inside; the loop's bound still applies.
            self.recover(seen).await;
            if self.generation() != seen {
                return true;
            }
            if Instant::now() + self.inner.timing.poll_interval > until {
                return false;
            }
            tokio::time::sleep(self.inner.timing.poll_interval).await;
        }
    }

    /// Runs `op` (a query on the pool) and, each time it fails because the password was
    /// rotated, finds the new credentials and runs it again, until `rotation_wait` has passed.
    /// Safe to retry: a 28P01 is raised while logging in, before any statement of `op`
    /// reached the database.
    pub async fn with_auth_retry<T, F, Fut>(&self, mut op: F) -> Result<T, sqlx::Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, sqlx::Error>>,
    {
        let until = Instant::now() + self.inner.timing.rotation_wait;
        loop {
            let seen = self.generation();
            match op().await {
                Err(e) if is_auth_failure(&e) => {
                    tracing::warn!(
                        "database refused the credentials (28P01); looking for the rotated ones"
                    );
                    if Instant::now() >= until || !self.refresh_after_auth_failure(seen).await {
                        return Err(e);
                    }
                }
                other => return other,
            }
        }
    }

    /// `pool.acquire()` with the 28P01 retry of [`with_auth_retry`](Self::with_auth_retry).
    pub async fn acquire(&self) -> Result<PoolConnection<Postgres>, sqlx::Error> {
        let pool = self.inner.pool.clone();
        self.with_auth_retry(|| pool.acquire()).await
    }

    /// Spawns the scheduled re-read if `SECRET_REFRESH_INTERVAL_SECS` is not 0.
    pub fn spawn_schedule_from(
        &self,
        settings: &super::SecretsSettings,
    ) -> Option<tokio::task::JoinHandle<()>> {
        settings
            .refresh_interval()
            .map(|every| self.spawn_schedule(every))
    }

    /// Re-reads the secret every `interval` until the task is aborted.
    pub fn spawn_schedule(&self, interval: Duration) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                let _ = this.refresh_now().await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_28p01_is_an_auth_failure() {
        assert!(!is_auth_failure(&sqlx::Error::PoolTimedOut));
        assert!(!is_auth_failure(&sqlx::Error::RowNotFound));
    }
}
