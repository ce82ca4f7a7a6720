//! Connections that have just done an operation's work cleanly, handed to the next operation
//! instead of going back through the pool.
//!
//! sqlx pings every connection that comes back to its pool, and sqlx 0.9 does not let a caller
//! turn that off: on a read by id, a round trip to the database for every request, as many as
//! the read itself, and the connection is busy for both. Here a connection whose work is done
//! goes to the operation that has waited longest for one, or, with none waiting, is kept for
//! the next; either way without a ping, by the rule the pool's `before_acquire` already
//! follows: a connection that served a request a moment ago, with no connection failing since,
//! is known to work. An operation that finds none kept gets one from the pool while the pool
//! has room for more (so it grows with the load, as before); when it is at its maximum, it
//! waits both for one handed over and for one back in the pool, whichever comes first.
//! Everything else goes back through the pool as before:
//! - a connection whose work failed or was cancelled (its state is unknown; the pool's ping
//!   clears what is left on it, or finds it broken);
//! - one kept for longer than the store's freshness rule allows (a second for PostgreSQL), or
//!   since a connection failed: taken by nobody, it goes back to the pool (`expire`, or the
//!   next operation, which then uses the pool);
//! - one that has gone [`BACK_TO_POOL_EVERY`] without passing through the pool, so that the
//!   pool's checks on return (its maximum lifetime) still apply to it;
//! - any, while an operation waits in the pool alone: it found the pool with room, which
//!   others took before it, and only a connection back in the pool serves it (without this, a
//!   burst of requests meeting a pool short of its maximum left some waiting until their
//!   acquire timed out, 503, while the connections went from one later request to the next).
//!
//! The last-kept connection is taken first (its socket and the server process behind it are
//! the most likely to be warm), so the connections kept are only as many as operations needed
//! at once a moment ago.

use std::{
    collections::VecDeque,
    ops::{Deref, DerefMut},
    pin::pin,
    sync::{Mutex, MutexGuard},
    time::{Duration, Instant},
};

use sqlx::{Database, Pool, pool::PoolConnection};
use tokio::sync::oneshot;

/// How long a connection may go from one operation to the next without passing through the
/// pool.
pub const BACK_TO_POOL_EVERY: Duration = Duration::from_secs(60);

/// A connection leased to one operation. It derefs to the database connection; handed to
/// [`Warm::keep`] when its work is done cleanly, or dropped (back to the pool, with its ping).
pub struct Lease<DB: Database> {
    conn: PoolConnection<DB>,
    /// When it last came out of the pool.
    from_pool_at: Instant,
}

impl<DB: Database> Lease<DB> {
    /// A connection just acquired from the pool.
    pub fn from_pool(conn: PoolConnection<DB>) -> Self {
        Lease {
            conn,
            from_pool_at: Instant::now(),
        }
    }
}

impl<DB: Database> Deref for Lease<DB> {
    type Target = DB::Connection;

    fn deref(&self) -> &DB::Connection {
        &self.conn
    }
}

impl<DB: Database> DerefMut for Lease<DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        &mut self.conn
    }
}

struct Kept<DB: Database> {
    lease: Lease<DB>,
    kept_at: Instant,
}

struct State<DB: Database> {
    /// Newest last.
    kept: Vec<Kept<DB>>,
    /// Operations waiting for a connection, longest first. Some have gone away (their
    /// operation got one from the pool, or was cancelled): a send to them fails.
    waiting: VecDeque<oneshot::Sender<Lease<DB>>>,
    /// Operations that went to the pool alone, while it had room, and have not got a
    /// connection yet. Others may have taken the room meanwhile: then only a connection back
    /// in the pool serves them.
    in_pool: usize,
}

/// The connections passed from one operation to the next, for one pool.
pub struct Warm<DB: Database> {
    pool: Pool<DB>,
    state: Mutex<State<DB>>,
    /// Whether a connection kept for this long must go back to the pool before use.
    stale: fn(Duration) -> bool,
}

impl<DB: Database> Warm<DB> {
    pub fn new(pool: Pool<DB>, stale: fn(Duration) -> bool) -> Self {
        Warm {
            pool,
            state: Mutex::new(State {
                kept: Vec::new(),
                waiting: VecDeque::new(),
                in_pool: 0,
            }),
            stale,
        }
    }

    fn state(&self) -> MutexGuard<'_, State<DB>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A kept connection if there is a fresh one; else one from `acquire()` (the pool's) if
    /// the pool has room for more; else the first of one handed over by an operation that
    /// finishes and one from `acquire()`.
    pub async fn lease<A, E>(&self, acquire: impl FnOnce() -> A) -> Result<Lease<DB>, E>
    where
        A: Future<Output = Result<PoolConnection<DB>, E>>,
    {
        let handed = {
            let mut state = self.state();
            if let Some(lease) = self.take(&mut state) {
                return Ok(lease);
            }
            // Not raced with a hand-over, which would cancel the new connection being opened.
            if self.pool.size() < self.pool.options().get_max_connections() {
                state.in_pool += 1;
                None
            } else {
                let (hand, handed) = oneshot::channel();
                state.waiting.push_back(hand);
                Some(handed)
            }
        };
        let Some(mut handed) = handed else {
            let _waiting = InPool(self);
            return acquire().await.map(Lease::from_pool);
        };
        let from_pool = tokio::select! {
            biased;
            Ok(lease) = &mut handed => return Ok(lease),
            conn = pin!(acquire()) => conn,
        };
        // No longer waiting: a connection handed over meanwhile goes back to the pool with
        // `handed`, and the queue forgets this operation and any others gone (an outage
        // fails every acquire, and nothing finishes to clear the queue).
        drop(handed);
        self.state().waiting.retain(|w| !w.is_closed());
        from_pool.map(Lease::from_pool)
    }

    /// The newest kept connection if it is fresh; if it is not, it and all the older ones go
    /// back to the pool.
    fn take(&self, state: &mut State<DB>) -> Option<Lease<DB>> {
        let newest = state.kept.pop()?;
        if !(self.stale)(newest.kept_at.elapsed()) {
            return Some(newest.lease);
        }
        state.kept.clear();
        None
    }

    /// `lease`'s work is done cleanly: it goes to the operation waiting longest, or is kept for
    /// the next, unless it is due back in the pool (see the module's documentation). While an
    /// operation waits in the pool alone, it goes back to the pool: kept or handed over, it
    /// would pass from one operation to the next while that one waited until its acquire
    /// timed out (a burst of requests meeting a pool with room for only some of them).
    pub fn keep(&self, mut lease: Lease<DB>) {
        if lease.from_pool_at.elapsed() >= BACK_TO_POOL_EVERY {
            return;
        }
        let mut state = self.state();
        if state.in_pool > 0 {
            return;
        }
        while let Some(waiting) = state.waiting.pop_front() {
            match waiting.send(lease) {
                Ok(()) => return,
                Err(unsent) => lease = unsent,
            }
        }
        state.kept.push(Kept {
            lease,
            kept_at: Instant::now(),
        });
    }

    /// Returns to the pool the connections that have become stale (run now and then, so that
    /// none stays out of the pool while no requests come).
    pub fn expire(&self) {
        let mut state = self.state();
        let fresh_from = state
            .kept
            .iter()
            .position(|k| !(self.stale)(k.kept_at.elapsed()))
            .unwrap_or(state.kept.len());
        state.kept.drain(..fresh_from);
    }

    /// How many connections are kept.
    pub fn len(&self) -> usize {
        self.state().kept.len()
    }
}

/// An operation waiting in the pool alone, counted in `State::in_pool` until it has a
/// connection or is cancelled.
struct InPool<'a, DB: Database>(&'a Warm<DB>);

impl<DB: Database> Drop for InPool<'_, DB> {
    fn drop(&mut self) {
        self.0.state().in_pool -= 1;
    }
}

impl<DB: Database> Drop for Warm<DB> {
    /// A pooled connection's drop hands it to the pool in a task of the current runtime; with
    /// none left (the process ending), the kept ones are closed where they are.
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        let kept = std::mem::take(&mut state.kept);
        if tokio::runtime::Handle::try_current().is_err() {
            kept.into_iter().for_each(|k| drop(k.lease.conn.leak()));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{
        future::{Pending, pending},
        sync::{
            Arc,
            atomic::{AtomicUsize, Ordering},
        },
    };

    use sqlx::{Sqlite, SqlitePool, sqlite::SqlitePoolOptions};

    use super::*;

    async fn pool(max: u32) -> SqlitePool {
        SqlitePoolOptions::new()
            .max_connections(max)
            .connect("sqlite::memory:")
            .await
            .unwrap()
    }

    /// A connection's identity: each in-memory SQLite connection is its own database.
    async fn mark(lease: &mut Lease<Sqlite>, value: i64) {
        sqlx::query("create table mark (v integer)")
            .execute(&mut **lease)
            .await
            .unwrap();
        sqlx::query("insert into mark values ($1)")
            .bind(value)
            .execute(&mut **lease)
            .await
            .unwrap();
    }

    async fn marked(lease: &mut Lease<Sqlite>) -> Option<i64> {
        sqlx::query_scalar("select v from mark")
            .fetch_one(&mut **lease)
            .await
            .ok()
    }

    fn never_stale(_: Duration) -> bool {
        false
    }

    fn always_stale(_: Duration) -> bool {
        true
    }

    /// The pool back to having every connection it opened idle (a dropped connection reaches
    /// it through a task).
    async fn all_idle(pool: &SqlitePool) {
        while pool.num_idle() < pool.size() as usize {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn a_kept_connection_serves_the_next_lease_without_the_pool() {
        let pool = pool(1).await;
        let warm = Warm::new(pool.clone(), never_stale);
        let mut first = warm.lease(|| pool.acquire()).await.unwrap();
        mark(&mut first, 7).await;
        warm.keep(first);
        assert_eq!((warm.len(), pool.num_idle()), (1, 0));

        // The pool is not asked: the kept one is leased.
        let mut next = warm
            .lease(|| -> Pending<Result<_, sqlx::Error>> { panic!("the pool was asked") })
            .await
            .unwrap();
        assert_eq!(marked(&mut next).await, Some(7));
        assert_eq!(warm.len(), 0);
    }

    #[tokio::test]
    async fn stale_kept_connections_go_back_to_the_pool() {
        let pool = pool(2).await;
        let warm = Warm::new(pool.clone(), always_stale);
        let mut a = warm.lease(|| pool.acquire()).await.unwrap();
        let b = warm.lease(|| pool.acquire()).await.unwrap();
        mark(&mut a, 1).await;
        warm.keep(a);
        warm.keep(b);
        assert_eq!(warm.len(), 2);
        warm.expire();
        assert_eq!(warm.len(), 0);
        all_idle(&pool).await;
        assert_eq!(pool.num_idle(), 2);

        // A lease that finds only stale ones gets its connection from the pool instead.
        let warm = Warm::new(pool.clone(), always_stale);
        warm.keep(warm.lease(|| pool.acquire()).await.unwrap());
        let acquired = Arc::new(AtomicUsize::new(0));
        let counted = acquired.clone();
        let lease = warm.lease(|| async {
            counted.fetch_add(1, Ordering::SeqCst);
            pool.acquire().await
        });
        drop(lease.await.unwrap());
        assert_eq!((acquired.load(Ordering::SeqCst), warm.len()), (1, 0));
    }

    #[tokio::test]
    async fn expire_keeps_the_fresh_ones() {
        let pool = pool(1).await;
        let warm = Warm::new(pool.clone(), never_stale);
        warm.keep(warm.lease(|| pool.acquire()).await.unwrap());
        warm.expire();
        assert_eq!(warm.len(), 1);
    }

    /// With one connection and a second operation waiting for it, the first one's connection
    /// is handed to the waiting operation, without the pool (whose acquire never finishes).
    #[tokio::test]
    async fn a_finished_connection_goes_to_the_operation_waiting_for_one() {
        let pool = pool(1).await;
        let warm = Arc::new(Warm::new(pool.clone(), never_stale));
        let mut first = warm.lease(|| pool.acquire()).await.unwrap();
        mark(&mut first, 3).await;
        let waiter = {
            let warm = warm.clone();
            tokio::spawn(async move {
                let mut lease = warm.lease(pending::<Result<_, sqlx::Error>>).await?;
                Ok::<_, sqlx::Error>(marked(&mut lease).await)
            })
        };
        while warm.state().waiting.is_empty() {
            tokio::task::yield_now().await;
        }
        warm.keep(first);
        assert_eq!(waiter.await.unwrap().unwrap(), Some(3));
        assert_eq!(warm.len(), 0, "handed over, not kept");
    }

    /// While the pool has room, a lease opens a connection rather than wait for one handed
    /// over (the pool grows with the load); at its maximum, an operation whose acquire from the
    /// pool fails (an outage) leaves nothing behind in the queue of those waiting.
    #[tokio::test]
    async fn the_pool_grows_first_and_failed_waits_leave_nothing_queued() {
        let pool = pool(2).await;
        let warm = Warm::new(pool.clone(), never_stale);
        let first = warm.lease(|| pool.acquire()).await.unwrap();
        let second = warm.lease(|| pool.acquire()).await.unwrap();
        assert_eq!(pool.size(), 2);
        for _ in 0..3 {
            let failed = warm.lease(|| async { Err::<PoolConnection<Sqlite>, _>("down") });
            assert!(failed.await.is_err());
        }
        assert!(warm.state().waiting.is_empty());
        warm.keep(first);
        warm.keep(second);
        assert_eq!(warm.len(), 2);
    }

    /// Two operations that find the pool with room for one more each go to the pool alone; the
    /// one that does not get the connection waits there, and gets it when the other's work is
    /// done. (Kept instead, it would wait until its acquire timed out: nothing else returns it
    /// to the pool while operations keep coming.)
    #[tokio::test]
    async fn an_operation_waiting_in_the_pool_gets_the_next_connection_to_finish() {
        // Empty, and, starved, the waiting one fails rather than hang.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(20))
            .connect_lazy("sqlite::memory:")
            .unwrap();
        let warm = Arc::new(Warm::new(pool.clone(), never_stale));
        // Holds both operations between their look at the pool's size and their acquire.
        let gate = Arc::new(tokio::sync::RwLock::new(()));
        let closed = gate.clone().write_owned().await;
        let operations: Vec<_> = (0..2)
            .map(|_| {
                let (warm, pool, gate) = (warm.clone(), pool.clone(), gate.clone());
                tokio::spawn(async move {
                    let acquire = || async {
                        let _open = gate.read().await;
                        pool.acquire().await
                    };
                    let lease = warm.lease(acquire).await?;
                    warm.keep(lease);
                    Ok::<_, sqlx::Error>(())
                })
            })
            .collect();
        while warm.state().in_pool < 2 {
            tokio::task::yield_now().await;
        }
        drop(closed);
        for operation in operations {
            operation.await.unwrap().unwrap();
        }
        assert_eq!(warm.state().in_pool, 0);
        assert_eq!(pool.size(), 1);
    }

    /// Dropped where no runtime is left (the process ending), the kept connections are closed
    /// in place: handed to the pool, each would need a task of a runtime to return in, and
    /// sqlx panics without one.
    #[test]
    fn kept_connections_are_dropped_safely_after_the_runtime_is_gone() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let warm = runtime.block_on(async {
            let pool = pool(1).await;
            let warm = Warm::new(pool.clone(), never_stale);
            warm.keep(warm.lease(|| pool.acquire()).await.unwrap());
            warm
        });
        drop(runtime);
        assert_eq!(warm.len(), 1);
        drop(warm);
    }

    /// One that has gone `BACK_TO_POOL_EVERY` without the pool goes back to it.
    #[tokio::test]
    async fn a_connection_long_out_of_the_pool_goes_back_to_it() {
        let pool = pool(1).await;
        let warm = Warm::new(pool.clone(), never_stale);
        let mut lease = warm.lease(|| pool.acquire()).await.unwrap();
        lease.from_pool_at = Instant::now()
            .checked_sub(BACK_TO_POOL_EVERY)
            .expect("an instant a minute ago");
        warm.keep(lease);
        assert_eq!(warm.len(), 0);
        all_idle(&pool).await;
        assert_eq!(pool.num_idle(), 1);
    }
}
