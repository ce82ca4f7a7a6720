//! The PostgreSQL pool without sqlx's ping before every use (`PostgresStore::with_options`)
//! nor the one on every return (connections kept between operations, `store::warm`): a
//! connection that just served a read serves the next without a round trip in between; after
//! a connection fails, the idle and kept ones are checked before use, so one cut does not fail
//! a request per pooled connection; a connection whose operation was cancelled mid-statement
//! serves the next operation correctly; more operations than connections all get one.

use std::time::Duration;

use chrono::NaiveDate;
use players_api::{
    domain::{NewPlayer, PlayerInput, Position},
    store::{
        Created, Filters, ListQuery, PlayerStore, PoolSettings, PostgresStore, Sort, StoreError,
    },
};

use crate::support::{
    db::{TestDb, ctx, postgres_behind_proxy},
    proxy::Proxy,
};

fn player(name: &str, number: i64) -> NewPlayer {
    let input = PlayerInput {
        name: name.into(),
        date_of_birth: "1995-06-01".into(),
        country: "eng".into(),
        team: "Warm FC".into(),
        position: Position::Midfielder,
        club_number: Some(number),
        national_team_number: None,
    };
    NewPlayer::parse(&input, NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()).unwrap()
}

async fn create(store: &dyn PlayerStore, name: &str, number: i64) -> players_api::domain::Player {
    match store
        .create(&player(name, number), &ctx("user:w"), None)
        .await
    {
        Ok(Created::New(p)) => p,
        other => panic!("create {name}: {other:?}"),
    }
}

/// Reads one after another, on a pool of one connection reached through a proxy that counts
/// what the service sends: one batch per read (its statement, prepared on the first), where
/// returning the connection to sqlx's pool would add a ping after each. Between reads the
/// connection stays out of the pool, kept.
#[tokio::test]
async fn a_connection_that_just_served_a_read_serves_the_next_without_a_ping() {
    let db = TestDb::postgres().await;
    let proxy = Proxy::start("127.0.0.1:5432").await;
    let url = db
        .url()
        .replace("127.0.0.1:5432", &format!("127.0.0.1:{}", proxy.port()));
    let one = PoolSettings {
        max_connections: 1,
        min_connections: 0,
        acquire_timeout: Duration::from_secs(30),
    };
    let store = PostgresStore::with_options(url.parse().unwrap(), &one);
    store.migrate().await.unwrap();
    let p = create(&store, "Kept Connection", 6).await;
    store.get(p.id).await.unwrap();

    let before = proxy.sent();
    for _ in 0..20 {
        assert_eq!(store.get(p.id).await.unwrap().id, p.id);
    }
    assert_eq!(
        proxy.sent() - before,
        20,
        "batches sent for 20 reads on a kept connection"
    );
    assert_eq!((store.kept_connections(), store.pool().num_idle()), (1, 0));
}

/// Every connection is cut (as a failover or a proxy would) a moment after use, so none is
/// pinged for being idle long. The next read may fail, as 503 `Unavailable`; every read
/// after that must succeed: the failure makes the pool ping the other idle connections instead
/// of failing a request on each.
#[tokio::test]
async fn after_a_connection_fails_the_idle_ones_are_checked_before_use() {
    let db = TestDb::postgres().await;
    let (store, proxy) = postgres_behind_proxy(&db).await;
    let p = create(&*store, "Cut Once", 1).await;
    // Several connections in the pool, all idle a moment later.
    let reads = futures_util::future::join_all((0..4).map(|_| store.get(p.id))).await;
    assert!(
        reads.iter().all(Result::is_ok),
        "reads before the cut: {reads:?}"
    );

    proxy.cut_all().await;
    match store.get(p.id).await {
        Ok(read) => assert_eq!(read.id, p.id),
        Err(StoreError::Unavailable(_)) => {}
        Err(other) => panic!("a cut connection should be Unavailable, got {other:?}"),
    }
    for attempt in 0..20 {
        let read = store.get(p.id).await;
        assert!(
            matches!(&read, Ok(r) if r.id == p.id),
            "read {attempt} after the cut: {read:?}"
        );
    }
}

/// An update blocked on a row lock is cancelled (its future dropped, as when a client goes
/// away). With one connection in the pool, the next operations run on that same connection:
/// they must see their own answers, not the cancelled statement's, and the cancelled update
/// must have changed nothing.
#[tokio::test]
async fn an_operation_cancelled_mid_statement_leaves_its_connection_correct() {
    let db = TestDb::postgres().await;
    let options: sqlx::postgres::PgConnectOptions = db.url().parse().unwrap();
    let one = PoolSettings {
        max_connections: 1,
        min_connections: 0,
        acquire_timeout: Duration::from_secs(30),
    };
    let store = PostgresStore::with_options(options.clone(), &one);
    store.migrate().await.unwrap();
    let locked = create(&store, "Locked Row", 2).await;
    let other = create(&store, "Other Row", 3).await;

    let mut holder = sqlx::PgConnection::connect_with(&options).await.unwrap();
    use sqlx::{Connection, Executor};
    holder.execute("begin").await.unwrap();
    sqlx::query("select id from players where id = $1 for update")
        .bind(locked.id)
        .fetch_one(&mut holder)
        .await
        .unwrap();

    let (renamed, who) = (player("Renamed", 2), ctx("user:w"));
    let blocked = store.update(locked.id, &renamed, None, &who);
    let cancelled = tokio::time::timeout(Duration::from_millis(300), blocked).await;
    assert!(
        cancelled.is_err(),
        "the update should wait on the lock: {cancelled:?}"
    );
    holder.execute("rollback").await.unwrap();

    let read = store.get(other.id).await.expect("read after the cancel");
    assert_eq!((read.id, read.name.as_str()), (other.id, "Other Row"));
    let read = store.get(locked.id).await.expect("read of the locked row");
    assert_eq!(
        (read.name.as_str(), read.version),
        ("Locked Row", locked.version)
    );
    let page = store
        .list(&ListQuery {
            filters: Filters::default(),
            sort: Sort::default(),
            limit: 10,
            after: None,
        })
        .await
        .expect("a list after the cancel");
    assert_eq!(page.items.len(), 2);
}

/// Many more concurrent operations than connections: the operations waiting get connections
/// as others finish (handed over, or from the pool), not a timeout, and the pool never opens
/// more than its maximum. (How far it grows depends on how many ran at once, which a busy
/// machine decides; that a lease opens a connection while the pool has room is
/// `store::warm`'s `the_pool_grows_first_and_failed_waits_leave_nothing_queued`.)
#[tokio::test]
async fn more_operations_than_connections_all_get_one_within_the_pool_maximum() {
    let db = TestDb::postgres().await;
    let options: sqlx::postgres::PgConnectOptions = db.url().parse().unwrap();
    let four = PoolSettings {
        max_connections: 4,
        min_connections: 0,
        acquire_timeout: Duration::from_secs(5),
    };
    let store = std::sync::Arc::new(PostgresStore::with_options(options, &four));
    store.migrate().await.unwrap();
    let p = create(&*store, "Busy Player", 4).await;
    for round in 0..4 {
        let reads: Vec<_> = (0..64)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.get(p.id).await })
            })
            .collect();
        for (i, read) in reads.into_iter().enumerate() {
            let read = read.await.unwrap();
            assert!(
                matches!(&read, Ok(r) if r.id == p.id),
                "round {round}, read {i}: {read:?}"
            );
        }
    }
    let opened = store.pool().size();
    assert!(
        (1..=4).contains(&opened),
        "{opened} connections open, the maximum is 4"
    );
}
