//! The storage contract, run against PostgreSQL (a fresh database per test) and SQLite (a
//! fresh file per test). Each test body is written once and instantiated for both backends.

use crate::support::db::{Backend, TestDb, ctx};
use chrono::NaiveDate;
use players_api::{
    domain::{NewPlayer, PlayerInput, Position},
    store::{
        AuditFilters, AuditQuery, Created, Filters, Idempotency, ListQuery, PlayerStore, Sort,
        StoreError,
        sweeper::{SweepSettings, Swept, sweep},
    },
};

fn new_player(name: &str, team: &str, number: Option<i64>) -> NewPlayer {
    let input = PlayerInput {
        name: name.into(),
        date_of_birth: "1990-01-01".into(),
        country: "sco".into(),
        team: team.into(),
        position: Position::Defender,
        club_number: number,
        national_team_number: None,
    };
    NewPlayer::parse(&input, NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()).unwrap()
}

fn created(c: Created) -> players_api::domain::Player {
    match c {
        Created::New(p) => p,
        Created::Replayed(_) => panic!("expected a new player"),
    }
}

async fn create_then_get_round_trips(store: &dyn PlayerStore) {
    let p = created(
        store
            .create(
                &new_player("Andy Robertson", "Liverpool", Some(26)),
                &ctx("user:a"),
                None,
            )
            .await
            .unwrap(),
    );
    assert_eq!(p.version, 1);
    assert_eq!(p.country, "SCO");
    assert_eq!(p.created_by, "user:a");
    assert_eq!(p.created_at, p.updated_at);
    assert_eq!(p.id.get_version_num(), 7, "ids are UUID v7");
    let got = store.get(p.id).await.unwrap();
    assert_eq!(got, p);
    assert!(matches!(
        store.get(uuid::Uuid::now_v7()).await,
        Err(StoreError::NotFound)
    ));
}

async fn club_numbers_are_unique_per_team(store: &dyn PlayerStore) {
    store
        .create(&new_player("A", "Celtic", Some(9)), &ctx("user:a"), None)
        .await
        .unwrap();
    let dup = store
        .create(&new_player("B", "Celtic", Some(9)), &ctx("user:a"), None)
        .await;
    assert!(matches!(dup, Err(StoreError::ClubNumberTaken)), "{dup:?}");
    // Same number in another team, and players without numbers, are fine.
    store
        .create(&new_player("C", "Rangers", Some(9)), &ctx("user:a"), None)
        .await
        .unwrap();
    store
        .create(&new_player("D", "Celtic", None), &ctx("user:a"), None)
        .await
        .unwrap();
    store
        .create(&new_player("E", "Celtic", None), &ctx("user:a"), None)
        .await
        .unwrap();
    // An update into a taken number is refused too, and changes nothing.
    let e = created(
        store
            .create(&new_player("F", "Celtic", Some(10)), &ctx("user:a"), None)
            .await
            .unwrap(),
    );
    let clash = store
        .update(
            e.id,
            &new_player("F", "Celtic", Some(9)),
            None,
            &ctx("user:b"),
        )
        .await;
    assert!(
        matches!(clash, Err(StoreError::ClubNumberTaken)),
        "{clash:?}"
    );
    assert_eq!(store.get(e.id).await.unwrap(), e);
}

async fn idempotent_creates_replay_and_refuse_reuse(store: &dyn PlayerStore) {
    let idem = Idempotency {
        key: "k-1".into(),
        request_hash: "h1".into(),
    };
    let first = created(
        store
            .create(&new_player("A", "T", Some(1)), &ctx("user:a"), Some(&idem))
            .await
            .unwrap(),
    );
    match store
        .create(&new_player("A", "T", Some(1)), &ctx("user:a"), Some(&idem))
        .await
        .unwrap()
    {
        Created::Replayed(p) => assert_eq!(p, first),
        Created::New(_) => panic!("a retry must not create"),
    }
    let other_body = Idempotency {
        key: "k-1".into(),
        request_hash: "h2".into(),
    };
    let reused = store
        .create(
            &new_player("B", "T", Some(2)),
            &ctx("user:a"),
            Some(&other_body),
        )
        .await;
    assert!(
        matches!(reused, Err(StoreError::IdempotencyKeyReused)),
        "{reused:?}"
    );
    // Keys are per principal: another caller's same key is a new request.
    let theirs = store
        .create(&new_player("B", "T", Some(2)), &ctx("user:b"), Some(&idem))
        .await
        .unwrap();
    assert!(matches!(theirs, Created::New(_)));
    let page = store.list(&list(Sort::default(), 50)).await.unwrap();
    assert_eq!(page.items.len(), 2);
}

async fn a_failed_create_leaves_no_idempotency_record(store: &dyn PlayerStore) {
    store
        .create(&new_player("A", "T", Some(1)), &ctx("user:a"), None)
        .await
        .unwrap();
    let idem = Idempotency {
        key: "k".into(),
        request_hash: "h".into(),
    };
    let clash = store
        .create(&new_player("B", "T", Some(1)), &ctx("user:a"), Some(&idem))
        .await;
    assert!(matches!(clash, Err(StoreError::ClubNumberTaken)));
    // The key was not consumed by the failure: a corrected retry with it succeeds.
    let retry = store
        .create(&new_player("B", "T", Some(2)), &ctx("user:a"), Some(&idem))
        .await
        .unwrap();
    assert!(matches!(retry, Created::New(_)));
}

async fn updates_bump_the_version_and_honour_expectations(store: &dyn PlayerStore) {
    let p = created(
        store
            .create(&new_player("A", "T", Some(1)), &ctx("user:a"), None)
            .await
            .unwrap(),
    );
    let u = store
        .update(
            p.id,
            &new_player("A2", "T", Some(2)),
            Some(1),
            &ctx("service:b"),
        )
        .await
        .unwrap();
    assert_eq!(
        (u.version, u.name.as_str(), u.updated_by.as_str()),
        (2, "A2", "service:b")
    );
    assert_eq!(u.created_at, p.created_at);
    assert_eq!(u.created_by, "user:a");
    assert!(u.updated_at >= p.updated_at);
    let stale = store
        .update(p.id, &new_player("A3", "T", None), Some(1), &ctx("user:a"))
        .await;
    assert!(matches!(stale, Err(StoreError::VersionMismatch)));
    let missing = store
        .update(
            uuid::Uuid::now_v7(),
            &new_player("X", "T", None),
            None,
            &ctx("user:a"),
        )
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound)));
}

async fn deletes_honour_expectations(store: &dyn PlayerStore) {
    let p = created(
        store
            .create(&new_player("A", "T", None), &ctx("user:a"), None)
            .await
            .unwrap(),
    );
    assert!(matches!(
        store.delete(p.id, Some(7), &ctx("user:a")).await,
        Err(StoreError::VersionMismatch)
    ));
    store.delete(p.id, Some(1), &ctx("user:a")).await.unwrap();
    assert!(matches!(
        store.delete(p.id, None, &ctx("user:a")).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(store.get(p.id).await, Err(StoreError::NotFound)));
}

fn list(sort: Sort, limit: u32) -> ListQuery {
    ListQuery {
        filters: Filters::default(),
        sort,
        limit,
        after: None,
    }
}

async fn pages_cover_everything_once_in_order(store: &dyn PlayerStore) {
    let names = ["delta", "Alpha", "charlie", "bravo", "Echo", "alpha"];
    for (i, n) in names.iter().enumerate() {
        store
            .create(
                &new_player(n, "T", Some(i as i64 + 1)),
                &ctx("user:a"),
                None,
            )
            .await
            .unwrap();
    }
    for sort in [
        "name",
        "-name",
        "created_at",
        "-created_at",
        "date_of_birth",
        "-date_of_birth",
    ] {
        let sort = Sort::parse(sort).unwrap();
        let mut query = list(sort, 4);
        let mut seen = Vec::new();
        loop {
            let page = store.list(&query).await.unwrap();
            seen.extend(page.items.to_vec());
            match page.next {
                Some(c) => query.after = Some(c),
                None => break,
            }
        }
        assert_eq!(seen.len(), names.len(), "{sort:?}");
        let mut ids: Vec<_> = seen.iter().map(|p| p.id).collect();
        ids.dedup();
        assert_eq!(ids.len(), names.len(), "no duplicates for {sort:?}");
        if sort.key == players_api::store::SortKey::Name {
            let got: Vec<_> = seen.iter().map(|p| p.name.as_str()).collect();
            let mut want: Vec<_> = names.to_vec();
            want.sort();
            if sort.descending {
                want.reverse();
            }
            assert_eq!(got, want, "byte order on both backends");
        }
    }
}

async fn filters_narrow_the_listing(store: &dyn PlayerStore) {
    store
        .create(
            &new_player("Éder Militão", "Real Madrid", Some(3)),
            &ctx("user:a"),
            None,
        )
        .await
        .unwrap();
    store
        .create(
            &new_player("Vinícius Júnior", "Real Madrid", Some(7)),
            &ctx("user:a"),
            None,
        )
        .await
        .unwrap();
    store
        .create(&new_player("Eder", "Lazio", Some(9)), &ctx("user:a"), None)
        .await
        .unwrap();
    let mut q = list(Sort::default(), 50);
    q.filters.name_contains = Some("éder".into());
    let names: Vec<_> = store
        .list(&q)
        .await
        .unwrap()
        .items
        .iter()
        .map(|p| p.name.to_owned())
        .collect();
    assert_eq!(
        names,
        ["Éder Militão"],
        "case-insensitive, accent-sensitive substring"
    );
    q.filters.name_contains = Some("der".into());
    assert_eq!(store.list(&q).await.unwrap().items.len(), 2);
    q.filters.team = Some("Lazio".into());
    assert_eq!(store.list(&q).await.unwrap().items.len(), 1);
    let mut q = list(Sort::default(), 50);
    q.filters.country = Some("BRA".into());
    assert_eq!(store.list(&q).await.unwrap().items.len(), 0);
    q.filters.country = Some("SCO".into());
    q.filters.position = Some(Position::Defender);
    assert_eq!(store.list(&q).await.unwrap().items.len(), 3);
    q.filters.position = Some(Position::Goalkeeper);
    assert_eq!(store.list(&q).await.unwrap().items.len(), 0);
}

async fn name_filter_treats_wildcards_literally(store: &dyn PlayerStore) {
    store
        .create(&new_player("100% Pure", "T", None), &ctx("user:a"), None)
        .await
        .unwrap();
    store
        .create(&new_player("Plain", "T", None), &ctx("user:a"), None)
        .await
        .unwrap();
    let mut q = list(Sort::default(), 50);
    q.filters.name_contains = Some("%".into());
    assert_eq!(store.list(&q).await.unwrap().items.len(), 1);
    q.filters.name_contains = Some("_".into());
    assert_eq!(store.list(&q).await.unwrap().items.len(), 0);
}

async fn ping_answers(store: &dyn PlayerStore) {
    store.ping().await.unwrap();
}

fn sweeping(audit_retention_days: Option<u32>, sweep_batch_size: u32) -> SweepSettings {
    SweepSettings {
        audit_retention_days,
        sweep_interval_secs: 600,
        sweep_batch_size,
    }
}

async fn audit_count(store: &dyn PlayerStore) -> usize {
    let query = AuditQuery {
        filters: AuditFilters {
            player_id: None,
            actor_id: None,
            from: None,
            to: None,
        },
        limit: 200,
        after: None,
    };
    store.list_audit(&query).await.unwrap().items.len()
}

async fn expired_idempotency_records_are_swept_in_batches(store: &dyn PlayerStore) {
    let key = |i: usize, hash: &str| Idempotency {
        key: format!("k-{i}"),
        request_hash: hash.into(),
    };
    for i in 0..5 {
        let p = new_player(&format!("Player {i}"), "Hibernian", None);
        store
            .create(&p, &ctx("service:s"), Some(&key(i, "h")))
            .await
            .unwrap();
    }
    let now = chrono::Utc::now();
    // Inside the 24 h window nothing goes, and a retry still replays.
    let inside = sweep(store, now + chrono::Duration::hours(23), &sweeping(None, 2)).await;
    assert_eq!(inside.unwrap(), Swept::default());
    let retry = store
        .create(
            &new_player("Player 0", "Hibernian", None),
            &ctx("service:s"),
            Some(&key(0, "h")),
        )
        .await
        .unwrap();
    assert!(matches!(retry, Created::Replayed(_)));
    // Past it, all five go, two rows per statement; the players stay.
    let past = sweep(store, now + chrono::Duration::hours(25), &sweeping(None, 2)).await;
    assert_eq!(past.unwrap().idempotency_keys, 5);
    // The key is free again: a different request under it creates instead of being refused.
    let reused = store
        .create(
            &new_player("Someone Else", "Hibernian", None),
            &ctx("service:s"),
            Some(&key(0, "other")),
        )
        .await
        .unwrap();
    assert!(matches!(reused, Created::New(_)));
    let all = ListQuery {
        filters: Filters::default(),
        sort: Sort::default(),
        limit: 50,
        after: None,
    };
    assert_eq!(store.list(&all).await.unwrap().items.len(), 6);
}

async fn audit_records_past_the_retention_are_swept(store: &dyn PlayerStore) {
    let mut ids = Vec::new();
    for i in 0..3 {
        let p = new_player(&format!("Player {i}"), "Hearts", None);
        ids.push(created(store.create(&p, &ctx("user:a"), None).await.unwrap()).id);
    }
    let now = chrono::Utc::now();
    let in_days = |d: i64| now + chrono::Duration::days(d);
    // Without a retention the trail is kept forever.
    let kept = sweep(store, in_days(4000), &sweeping(None, 2))
        .await
        .unwrap();
    assert_eq!(kept.audit_records, 0);
    // Inside the retention it is kept; past it, every record goes (two per statement).
    let inside = sweep(store, in_days(29), &sweeping(Some(30), 2))
        .await
        .unwrap();
    assert_eq!(inside.audit_records, 0);
    assert_eq!(audit_count(store).await, 3);
    let past = sweep(store, in_days(31), &sweeping(Some(30), 2))
        .await
        .unwrap();
    assert_eq!(past.audit_records, 3);
    assert_eq!(audit_count(store).await, 0);
    for id in ids {
        store.get(id).await.expect("players are never swept");
    }
}

#[tokio::test]
async fn concurrent_sweeps_on_postgres_share_the_work_and_never_fail() {
    // Many tasks sweep one database: batches skip the rows another sweep holds, so together
    // they delete each expired row once, and none of them waits for or fails on the others.
    let db = TestDb::new(Backend::Postgres).await;
    let store = db.store().await;
    for i in 0..60 {
        let p = new_player(&format!("Player {i}"), &format!("Team {}", i % 7), None);
        let idem = Idempotency {
            key: format!("k-{i}"),
            request_hash: "h".into(),
        };
        store
            .create(&p, &ctx("service:s"), Some(&idem))
            .await
            .unwrap();
    }
    let later = chrono::Utc::now() + chrono::Duration::hours(25);
    let settings = sweeping(Some(1), 5);
    let sweeps = (0..4).map(|_| {
        let store = store.clone();
        let settings = settings.clone();
        tokio::spawn(async move { sweep(&*store, later, &settings).await })
    });
    let mut idempotency = 0;
    let mut audit = 0;
    for s in futures_util::future::join_all(sweeps).await {
        let swept = s.unwrap().expect("a sweep never fails on another's locks");
        idempotency += swept.idempotency_keys;
        audit += swept.audit_records;
    }
    assert_eq!((idempotency, audit), (60, 60));
    assert_eq!(audit_count(&*store).await, 0);
}

/// Runs `sql` on the test database, outside any store.
async fn run_sql(db: &TestDb, sql: &str) {
    let TestDb::Postgres { url, .. } = db else {
        panic!("a PostgreSQL test database")
    };
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
}

#[tokio::test]
async fn postgres_refuses_a_column_of_another_type_rather_than_misread_it() {
    // The listing checks the columns' types once, on its first row, and decodes the rest
    // unchecked. The first player's club number is NULL, so a check of the first row's values
    // would let the second player's, now text, be read as a number.
    let db = TestDb::new(Backend::Postgres).await;
    let store = db.store().await;
    for (name, number) in [("First", None), ("Second", Some(7))] {
        store
            .create(&new_player(name, "Team", number), &ctx("user:a"), None)
            .await
            .unwrap();
    }
    let query = list(Sort::default(), 50);
    assert_eq!(store.list(&query).await.unwrap().items.len(), 2);
    run_sql(
        &db,
        "alter table players drop constraint players_club_number_check, \
         alter column club_number type text using club_number::text",
    )
    .await;
    // A new store: the first one's prepared statements would fail on the changed table anyway.
    let store = db.store().await;
    let err = store
        .list(&query)
        .await
        .expect_err("a text column is not a number");
    assert!(matches!(err, StoreError::Other(_)), "{err:?}");
    assert!(format!("{err:#}").contains("club_number"), "{err:#}");
}

#[tokio::test]
async fn postgres_timestamps_read_back_to_the_microsecond_and_infinity_is_an_error() {
    let db = TestDb::new(Backend::Postgres).await;
    let store = db.store().await;
    let p = created(
        store
            .create(&new_player("Old", "Team", None), &ctx("user:a"), None)
            .await
            .unwrap(),
    );
    // Before PostgreSQL's own epoch (2000-01-01), where its microsecond count is negative.
    run_sql(
        &db,
        "update players set created_at = '1999-12-31 23:59:59.999999+00', \
         updated_at = '2038-01-19 03:14:08.000001+00'",
    )
    .await;
    let got = store.get(p.id).await.unwrap();
    assert_eq!(
        got.created_at.to_rfc3339(),
        "1999-12-31T23:59:59.999999+00:00"
    );
    assert_eq!(
        got.updated_at.to_rfc3339(),
        "2038-01-19T03:14:08.000001+00:00"
    );
    let query = list(Sort::default(), 50);
    assert_eq!(store.list(&query).await.unwrap().items.to_vec(), vec![got]);
    run_sql(&db, "update players set updated_at = 'infinity'").await;
    let err = store.get(p.id).await.expect_err("infinity is no DateTime");
    assert!(matches!(err, StoreError::Other(_)), "{err:?}");
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let db = TestDb::new(Backend::Postgres).await;
                    super::$name(&*db.store().await).await;
                }
            )*
        }
        mod sqlite {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let db = TestDb::new(Backend::Sqlite).await;
                    super::$name(&*db.store().await).await;
                }
            )*
        }
    };
}

contract!(
    expired_idempotency_records_are_swept_in_batches,
    audit_records_past_the_retention_are_swept,
    create_then_get_round_trips,
    club_numbers_are_unique_per_team,
    idempotent_creates_replay_and_refuse_reuse,
    a_failed_create_leaves_no_idempotency_record,
    updates_bump_the_version_and_honour_expectations,
    deletes_honour_expectations,
    pages_cover_everything_once_in_order,
    filters_narrow_the_listing,
    name_filter_treats_wildcards_literally,
    ping_answers,
);

/// Moves every remembered Idempotency-Key `hours` into the past.
async fn age_idempotency_keys(db: &TestDb, hours: i64) {
    match db {
        TestDb::Postgres { url, .. } => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            sqlx::query(
                "update idempotency_keys set created_at = created_at - make_interval(hours => $1)",
            )
            .bind(hours as i32)
            .execute(&pool)
            .await
            .unwrap();
            pool.close().await;
        }
        TestDb::Sqlite { url, .. } => {
            let pool = sqlx::SqlitePool::connect(url).await.unwrap();
            sqlx::query("update idempotency_keys set created_at = created_at - ?1")
                .bind(hours * 3_600_000_000)
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
    }
}

/// A key is remembered for 24 hours: a retry at 23 h replays, after 25 h the key is free
/// again (a new request, even with another body).
async fn idempotency_keys_expire_after_24_hours(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let idem = Idempotency {
        key: "k".into(),
        request_hash: "h1".into(),
    };
    let first = created(
        store
            .create(&new_player("A", "T", Some(1)), &ctx("user:a"), Some(&idem))
            .await
            .unwrap(),
    );
    age_idempotency_keys(&db, 23).await;
    match store
        .create(&new_player("A", "T", Some(1)), &ctx("user:a"), Some(&idem))
        .await
        .unwrap()
    {
        Created::Replayed(p) => assert_eq!(p.id, first.id),
        Created::New(_) => panic!("a retry within 24 h must replay"),
    }
    age_idempotency_keys(&db, 2).await;
    let other_body = Idempotency {
        key: "k".into(),
        request_hash: "h2".into(),
    };
    let again = store
        .create(
            &new_player("B", "T", Some(2)),
            &ctx("user:a"),
            Some(&other_body),
        )
        .await
        .unwrap();
    assert!(
        matches!(again, Created::New(_)),
        "an expired key is free again"
    );
}

#[tokio::test]
async fn idempotency_keys_expire_after_24_hours_postgres() {
    idempotency_keys_expire_after_24_hours(Backend::Postgres).await;
}

#[tokio::test]
async fn idempotency_keys_expire_after_24_hours_sqlite() {
    idempotency_keys_expire_after_24_hours(Backend::Sqlite).await;
}
