//! Following the rotation of the database secret without a restart.
//!
//! RDS rotates its managed secret every 7 days: the role's password changes, then the secret
//! does. Connections already open keep working (PostgreSQL checks passwords only at log-in),
//! so only new connections fail, with SQLSTATE 28P01. The refresher then re-reads the secret
//! (also on a schedule) and hands the pool the new credentials with `set_connect_options`,
//! which affects only connections opened afterwards: requests in flight are untouched.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::PgPool;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, Postgres};
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
    /// After a 28P01, how long to keep re-reading an unchanged secret: during a rotation the
    /// password changes moments before the secret does.
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
    current: Mutex<DbCredentials>,
    /// Bumped whenever the pool gets new credentials.
    generation: AtomicU64,
    /// Bumped after every completed fetch; lets waiters reuse a fetch that ran while they
    /// queued instead of starting another.
    fetches: AtomicU64,
    /// Held during a fetch: one fetch in flight, whatever the number of callers.
    in_flight: tokio::sync::Mutex<()>,
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
                current: Mutex::new(initial),
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
        let mut current = self
            .inner
            .current
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if *current != creds {
            self.inner
                .pool
                .set_connect_options(creds.apply_to(&self.inner.base));
            *current = creds;
            self.inner.generation.fetch_add(1, Ordering::AcqRel);
            tracing::info!(
                secret_id = %self.inner.secret_id,
                "database credentials changed; new connections use them"
            );
        }
        Ok(())
    }

    /// After a 28P01 on a connection opened with generation `seen`: re-read until the
    /// credentials differ from those (bounded by `rotation_wait`). `true` if they changed.
    pub async fn refresh_after_auth_failure(&self, seen: u64) -> bool {
        let until = Instant::now() + self.inner.timing.rotation_wait;
        loop {
            if self.generation() != seen {
                return true;
            }
            // Errors are logged and counted inside; the loop's bound still applies.
            let _ = self.refresh_now().await;
            if self.generation() != seen {
                return true;
            }
            if Instant::now() + self.inner.timing.poll_interval > until {
                return false;
            }
            tokio::time::sleep(self.inner.timing.poll_interval).await;
        }
    }

    /// Runs `op` (a query on the pool) and, if it failed because the password was rotated,
    /// refreshes the credentials and runs it once more. Safe to retry: a 28P01 is raised while
    /// logging in, before any statement of `op` reached the database.
    pub async fn with_auth_retry<T, F, Fut>(&self, mut op: F) -> Result<T, sqlx::Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, sqlx::Error>>,
    {
        let seen = self.generation();
        match op().await {
            Err(e) if is_auth_failure(&e) => {
                tracing::warn!("database refused the credentials (28P01); re-reading the secret");
                if self.refresh_after_auth_failure(seen).await {
                    op().await
                } else {
                    Err(e)
                }
            }
            other => other,
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
