//! PostgreSQL connections handed from one request to the next without going back through
//! sqlx's pool.
//!
//! Why: sqlx's pool pings every connection returned to it (sqlx 0.9, not configurable), so a
//! read by id cost the database two round trips, the query and that ping. Measured on the
//! project's HTTP benchmark, handing connections on directly served about 30 % more reads per
//! second per CPU (docs/benchmarks.md). Dropping the ping is safe for PostgreSQL: the driver
//! finishes whatever a cancelled request left on a connection (unread results, a transaction's
//! rollback) before it runs the next statement.
//!
//! What sqlx's pool still does: it opens every connection (with the credentials in force, so
//! rotation works as before), bounds their number, and ages them out. A connection goes back
//! to it, and through its checks, when it sat parked longer than [`PARK_AT_MOST`] (it may
//! have been cut while idle: sqlx pings it on the way out), when it has been out of the pool
//! for [`RETURN_AFTER`], or when any connection failed while it was out or parked (a
//! failover usually breaks them all; see [`connection_failed`]). Connections idle in the pool
//! itself are pinged before use when [`needs_ping`] says so.

use std::{
    collections::VecDeque,
    ops::{Deref, DerefMut},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use sqlx::{PgConnection, Postgres, pool::PoolConnection};
use tokio::sync::oneshot;

/// A connection parked longer than this goes back to the pool, which pings it before reuse.
pub const PARK_AT_MOST: Duration = Duration::from_secs(1);
/// A connection out of the pool this long goes back to it (lifetime and idle limits apply).
pub const RETURN_AFTER: Duration = Duration::from_secs(60);

/// Connection failures seen in this process (I/O, protocol, SQLSTATE 08/57). A connection
/// out of the pool or parked while the count moved may be broken too (a failover breaks them
/// all), so it is not handed on. (One count for every store of the process: a failure in one
/// only sends the others' connections through the pool's checks once more.)
static FAILURES: AtomicU64 = AtomicU64::new(0);
/// When the last failure happened.
static LAST_FAILURE: Mutex<Option<Instant>> = Mutex::new(None);

/// Records that a connection failed (called by the error classification).
pub fn connection_failed() {
    FAILURES.fetch_add(1, Ordering::AcqRel);
    *LAST_FAILURE.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
}

/// Whether a connection idle in the pool for `idle_for` must be pinged before use: it sat
/// there longer than [`PARK_AT_MOST`], or since before a connection failed.
pub fn needs_ping(idle_for: Duration) -> bool {
    let last = *LAST_FAILURE.lock().unwrap_or_else(|p| p.into_inner());
    idle_for > PARK_AT_MOST || last.is_some_and(|at| at.elapsed() <= idle_for)
}

pub struct Parked {
    conn: PoolConnection<Postgres>,
    taken_at: Instant,
    parked_at: Instant,
    /// `FAILURES` when it was handed out (and so when it was parked).
    failures: u64,
}

#[derive(Default)]
struct State {
    /// Most recently parked last (so the older ones are at least as stale as the newest, and
    /// all go when it does).
    parked: Vec<Parked>,
    /// Operations waiting for a connection, oldest first. A connection handed back goes to
    /// the first one still waiting rather than to the pool, whose own waiters would never see
    /// it: with every connection out of the pool, they would time out beside connections
    /// that are free.
    waiting: VecDeque<oneshot::Sender<Parked>>,
}

/// The parked connections and the operations waiting for one.
#[derive(Clone, Default)]
pub struct WarmConnections {
    state: Arc<Mutex<State>>,
}

impl WarmConnections {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The most recently parked connection if it is still warm (parked connections that are
    /// not go back to the pool); otherwise a place in the queue for the next connection
    /// handed back, to await alongside the pool.
    pub fn take_or_wait(&self) -> Result<WarmConn, oneshot::Receiver<Parked>> {
        let mut state = self.lock();
        let failures = FAILURES.load(Ordering::Acquire);
        if let Some(newest) = state.parked.pop() {
            if newest.parked_at.elapsed() <= PARK_AT_MOST && newest.failures == failures {
                return Ok(self.resume(newest));
            }
            state.parked.clear();
        }
        let (handed, waiting) = oneshot::channel();
        state.waiting.push_back(handed);
        Err(waiting)
    }

    /// A connection parked or handed over, in use again.
    pub fn resume(&self, parked: Parked) -> WarmConn {
        WarmConn {
            conn: Some(parked.conn),
            home: self.clone(),
            taken_at: parked.taken_at,
            failures: parked.failures,
        }
    }

    /// A connection just acquired from the pool, to be parked here when dropped.
    pub fn adopt(&self, conn: PoolConnection<Postgres>) -> WarmConn {
        WarmConn {
            conn: Some(conn),
            home: self.clone(),
            taken_at: Instant::now(),
            failures: FAILURES.load(Ordering::Acquire),
        }
    }

    /// How many connections are parked (idle, though the pool counts them in use).
    pub fn parked(&self) -> usize {
        self.lock().parked.len()
    }

    /// To the first operation still waiting, or parked.
    fn hand_back(&self, mut parked: Parked) {
        let mut state = self.lock();
        while let Some(waiter) = state.waiting.pop_front() {
            match waiter.send(parked) {
                Ok(()) => return,
                Err(returned) => parked = returned, // it got one from the pool, or gave up
            }
        }
        state.parked.push(parked);
    }
}

/// A connection in use; dropped, it is parked for the next request or returned to the pool.
pub struct WarmConn {
    conn: Option<PoolConnection<Postgres>>,
    home: WarmConnections,
    taken_at: Instant,
    /// `FAILURES` when it was handed out.
    failures: u64,
}

impl Deref for WarmConn {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        self.conn
            .as_deref()
            .expect("a WarmConn holds its connection until dropped")
    }
}

impl DerefMut for WarmConn {
    fn deref_mut(&mut self) -> &mut PgConnection {
        self.conn
            .as_deref_mut()
            .expect("a WarmConn holds its connection until dropped")
    }
}

impl Drop for WarmConn {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        let healthy = FAILURES.load(Ordering::Acquire) == self.failures
            && self.taken_at.elapsed() < RETURN_AFTER
            && !std::thread::panicking();
        if healthy {
            self.home.hand_back(Parked {
                conn,
                taken_at: self.taken_at,
                parked_at: Instant::now(),
                failures: self.failures,
            });
        }
        // Otherwise `conn` drops here: back to the pool, which pings it and applies its limits.
    }
}
