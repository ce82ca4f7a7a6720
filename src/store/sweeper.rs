//! Expiry: a background task that deletes idempotency records past their window and, with
//! `AUDIT_RETENTION_DAYS`, audit records past the retention. Safe with many tasks sweeping the
//! same database: each statement deletes one small batch (oldest first) and returns, so no lock
//! is held for long, and on PostgreSQL a batch skips rows another task's sweep holds.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};

use super::{Expiring, IDEMPOTENCY_TTL_HOURS, PlayerStore, StoreError};

/// `AUDIT_RETENTION_DAYS`, `SWEEP_INTERVAL_SECS`, `SWEEP_BATCH_SIZE`.
#[derive(Clone, Debug, clap::Args)]
pub struct SweepSettings {
    /// Days audit records are kept; unset keeps them forever.
    #[arg(long, env = "AUDIT_RETENTION_DAYS", value_parser = clap::value_parser!(u32).range(1..))]
    pub audit_retention_days: Option<u32>,

    /// Seconds between sweeps of expired records.
    #[arg(long, env = "SWEEP_INTERVAL_SECS", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..))]
    pub sweep_interval_secs: u64,

    /// Rows one delete statement removes at most.
    #[arg(long, env = "SWEEP_BATCH_SIZE", default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..))]
    pub sweep_batch_size: u32,
}

/// What one sweep deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub idempotency_keys: u64,
    pub audit_records: u64,
}

/// Deletes everything expired at `now`, batch by batch.
pub async fn sweep(
    store: &dyn PlayerStore,
    now: DateTime<Utc>,
    settings: &SweepSettings,
) -> Result<Swept, StoreError> {
    let idempotency_cutoff = now - chrono::Duration::hours(IDEMPOTENCY_TTL_HOURS);
    let mut swept = Swept {
        idempotency_keys: drain(
            store,
            Expiring::IdempotencyKeys,
            idempotency_cutoff,
            settings,
        )
        .await?,
        ..Swept::default()
    };
    if let Some(days) = settings.audit_retention_days {
        let cutoff = now - chrono::Duration::days(i64::from(days));
        swept.audit_records = drain(store, Expiring::AuditRecords, cutoff, settings).await?;
    }
    Ok(swept)
}

async fn drain(
    store: &dyn PlayerStore,
    what: Expiring,
    before: DateTime<Utc>,
    settings: &SweepSettings,
) -> Result<u64, StoreError> {
    let mut total = 0;
    loop {
        let deleted = store
            .delete_expired(what, before, settings.sweep_batch_size)
            .await?;
        total += deleted;
        if deleted < u64::from(settings.sweep_batch_size) {
            return Ok(total);
        }
    }
}

/// Sweeps every `SWEEP_INTERVAL_SECS` (the first one an interval after start, so a deployment's
/// new tasks do not all sweep at once) until the task is aborted. A failed sweep is logged and
/// tried again at the next interval.
pub fn spawn(store: Arc<dyn PlayerStore>, settings: SweepSettings) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let every = Duration::from_secs(settings.sweep_interval_secs);
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match sweep(&*store, Utc::now(), &settings).await {
                Ok(s) if s == Swept::default() => {}
                Ok(s) => tracing::info!(
                    event = "sweep",
                    idempotency_keys = s.idempotency_keys,
                    audit_records = s.audit_records,
                    "expired records deleted"
                ),
                Err(e) => {
                    tracing::warn!(event = "sweep", error = %e, "sweep failed; retrying at the next interval")
                }
            }
        }
    })
}
