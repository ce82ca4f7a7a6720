//! Faults under load: a bounded load (a request every 4 ms, at most 32 in flight: a few hundred
//! per second on this machine) on the real HTTP server while a dependency fails.
//! - The database cut off mid-load (the TCP proxy): every request is answered, quickly, with
//!   its normal status or 503; never a 500 and never a hang; `/ready` is 503; once the database
//!   is back everything recovers without a restart, and no write is half-applied (every player
//!   row has its audit record and the reverse).
//! - SIGTERM mid-load on the real binary: no request the service took fails; exit 0 in time.
//! - The ALB key endpoint and the JWKS down with the keys cached: no effect on traffic.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use players_api::store::{AuditFilters, AuditQuery, Filters, ListQuery, Sort};
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::support::app::{Exchange, TestApp, player_body};
use crate::support::db::{TestDb, pool_settings, postgres_behind_proxy};

/// One answered request of the load.
#[derive(Clone, Debug)]
struct Outcome {
    write: bool,
    status: u16,
    code: Option<String>,
    took: Duration,
}

/// Requests at a fixed pace until stopped: creates and listings, alternately.
struct Load {
    outcomes: Arc<Mutex<Vec<Outcome>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Load {
    fn start(app: &TestApp) -> Load {
        let outcomes = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let client = app.client.clone();
        let base = app.base.clone();
        let (out, halt) = (outcomes.clone(), stop.clone());
        let task = tokio::spawn(async move {
            let in_flight = Arc::new(Semaphore::new(32));
            let mut tick = tokio::time::interval(Duration::from_millis(4));
            let mut n = 0usize;
            let mut requests = Vec::new();
            while !halt.load(std::sync::atomic::Ordering::SeqCst) {
                tick.tick().await;
                let Ok(permit) = in_flight.clone().acquire_owned().await else {
                    break;
                };
                n += 1;
                let write = n.is_multiple_of(2);
                let req = if write {
                    client
                        .post(format!("{base}/v1/players"))
                        .header("x-test-role", "admin")
                        .json(&player_body(n))
                } else {
                    client
                        .get(format!("{base}/v1/players?limit=5"))
                        .header("x-test-role", "admin")
                };
                let out = out.clone();
                requests.push(tokio::spawn(async move {
                    let started = Instant::now();
                    let res = req.timeout(Duration::from_secs(30)).send().await;
                    let took = started.elapsed();
                    let (status, code) = match res {
                        Ok(res) => {
                            let status = res.status().as_u16();
                            let body: Value = res.json().await.unwrap_or(Value::Null);
                            (status, body["code"].as_str().map(str::to_owned))
                        }
                        Err(e) => panic!("a request got no answer: {e}"),
                    };
                    out.lock().unwrap().push(Outcome {
                        write,
                        status,
                        code,
                        took,
                    });
                    drop(permit);
                }));
            }
            for r in requests {
                r.await.expect("a load request panicked");
            }
        });
        Load {
            outcomes,
            stop,
            task,
        }
    }

    fn answered(&self) -> Vec<Outcome> {
        self.outcomes.lock().unwrap().clone()
    }

    /// Waits (polling, with a deadline) until `cond` holds for the outcomes so far.
    async fn until(&self, what: &str, cond: impl Fn(&[Outcome]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !cond(&self.answered()) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn stop(self) -> Vec<Outcome> {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.task.await.expect("the load panicked");
        self.outcomes.lock().unwrap().clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_under_load_is_fast_503s_and_recovers_with_nothing_half_written() {
    let db = TestDb::postgres().await;
    let (store, proxy) = postgres_behind_proxy(&db).await;
    let app = TestApp::spawn(store.clone()).await;
    let load = Load::start(&app);
    let ok = |o: &Outcome| o.status < 300;
    load.until("traffic before the outage", |o| {
        o.iter().filter(|o| ok(o)).count() >= 100
    })
    .await;

    proxy.disable();
    let cut = load.answered().len();
    load.until("answers during the outage", |o| {
        o[cut..].iter().filter(|o| o.status == 503).count() >= 50
    })
    .await;
    let ready = app.client.get(app.url("/ready")).exchange().await;
    assert_eq!(ready.status(), 503, "/ready during the outage");

    proxy.enable();
    let back = load.answered().len();
    load.until("recovery", |o| {
        o[back..]
            .iter()
            .filter(|o| o.write && o.status == 201)
            .count()
            >= 50
    })
    .await;
    let outcomes = load.stop().await;
    let ready = app.client.get(app.url("/ready")).exchange().await;
    assert_eq!(ready.status(), 200, "/ready after the outage");

    // Every answer is the normal one or a 503 problem, within the acquire timeout (and a
    // margin for a loaded machine); none is a 500.
    let limit = pool_settings().acquire_timeout + Duration::from_secs(5);
    for o in &outcomes {
        match o.status {
            200 | 201 => {}
            503 => assert_eq!(o.code.as_deref(), Some("not_ready"), "{o:?}"),
            _ => panic!("unexpected answer under the outage: {o:?}"),
        }
        assert!(o.took < limit, "an answer took {:?}: {o:?}", o.took);
    }
    let unavailable = outcomes.iter().filter(|o| o.status == 503).count();
    assert!(unavailable >= 50, "the outage was seen: {unavailable} 503s");

    // Nothing half-applied: each player has its create record and each record its player.
    // (A create whose answer was lost with the connection may have committed: there can be
    // more players than 201s, never fewer, and never more than 201s plus failed writes.)
    let players = store
        .list(&ListQuery {
            filters: Filters::default(),
            sort: Sort::default(),
            limit: 200,
            after: None,
        })
        .await
        .unwrap();
    let mut player_count = players.items.len();
    let mut next = players.next;
    while let Some(after) = next {
        let page = store
            .list(&ListQuery {
                filters: Filters::default(),
                sort: Sort::default(),
                limit: 200,
                after: Some(after),
            })
            .await
            .unwrap();
        player_count += page.items.len();
        next = page.next;
    }
    let mut records = 0;
    let mut after = None;
    loop {
        let page = store
            .list_audit(&AuditQuery {
                filters: AuditFilters::default(),
                limit: 200,
                after,
            })
            .await
            .unwrap();
        records += page.items.len();
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(
        player_count, records,
        "a player row without its audit record, or the reverse"
    );
    let created = outcomes.iter().filter(|o| o.status == 201).count();
    let failed_writes = outcomes
        .iter()
        .filter(|o| o.write && o.status == 503)
        .count();
    assert!(
        (created..=created + failed_writes).contains(&player_count),
        "{player_count} players for {created} 201s and {failed_writes} failed writes"
    );
}

/// SIGTERM in the middle of a paced load on the real binary: every request the server took
/// (it answered) is answered 2xx; after the shutdown delay new connections are refused, which
/// is the only failure allowed; the process exits 0 within delay + timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_fails_no_accepted_request_and_exits_zero() {
    use crate::support::process::{Identity, Service, http};
    const DELAY: Duration = Duration::from_secs(2);
    const TIMEOUT: Duration = Duration::from_secs(10);
    let mut identity = Identity::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut env = identity.base_env();
    env.insert(
        "DATABASE_URL".into(),
        format!("sqlite:{}", dir.path().join("p.db").display()),
    );
    env.insert("SHUTDOWN_DELAY_SECS".into(), DELAY.as_secs().to_string());
    env.insert(
        "SHUTDOWN_TIMEOUT_SECS".into(),
        TIMEOUT.as_secs().to_string(),
    );
    let mut svc = Service::serve(&env);
    svc.wait_for("/ready", 200).await;
    let token = identity.bearer_token("players/read players/write").await;

    // A new connection per request (as the ALB opens them), a request every 4 ms.
    let client = http();
    let answered = Arc::new(Mutex::new(Vec::<(u16, Duration)>::new()));
    let refused = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let signalled_at = Arc::new(Mutex::new(None::<Instant>));
    let load = {
        let (answered, refused, stop, signalled_at) = (
            answered.clone(),
            refused.clone(),
            stop.clone(),
            signalled_at.clone(),
        );
        let base = svc.url("");
        tokio::spawn(async move {
            let in_flight = Arc::new(Semaphore::new(32));
            let mut tick = tokio::time::interval(Duration::from_millis(4));
            let mut tasks = Vec::new();
            let mut n = 0usize;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                tick.tick().await;
                let permit = in_flight.clone().acquire_owned().await.unwrap();
                n += 1;
                let req = if n.is_multiple_of(3) {
                    client
                        .post(format!("{base}/v1/players"))
                        .json(&player_body(n))
                } else {
                    client.get(format!("{base}/v1/players?limit=5"))
                };
                let req = req.bearer_auth(&token);
                let (answered, refused, signalled_at) =
                    (answered.clone(), refused.clone(), signalled_at.clone());
                tasks.push(tokio::spawn(async move {
                    let started = Instant::now();
                    match req.send().await {
                        Ok(res) => answered.lock().unwrap().push((res.status().as_u16(), started.elapsed())),
                        Err(e) => {
                            // Only once the delay is over and the listener closes: a refused
                            // connection, or one the kernel had completed in the listener's
                            // backlog and resets unread when it closes. Neither request was
                            // ever taken by the service.
                            let since = signalled_at.lock().unwrap().map(|t| t.elapsed());
                            assert!(
                                since.is_some_and(|s| s >= DELAY - Duration::from_millis(200))
                                    && !e.is_timeout()
                                    && !e.is_status(),
                                "a request failed before the listener closed: {e} ({since:?} after SIGTERM)"
                            );
                            refused.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                    }
                    drop(permit);
                }));
            }
            for t in tasks {
                t.await.expect("a load request failed");
            }
        })
    };
    let enough = |n: usize| {
        let answered = answered.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            while answered.lock().unwrap().len() < n {
                assert!(
                    Instant::now() < deadline,
                    "the load did not get {n} answers"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    enough(200).await;
    *signalled_at.lock().unwrap() = Some(Instant::now());
    let signalled = Instant::now();
    svc.sigterm();
    // Keep the load on through the delay and until connections are refused.
    let refused_deadline = Instant::now() + DELAY + Duration::from_secs(20);
    while refused.load(std::sync::atomic::Ordering::SeqCst) < 20 {
        assert!(
            Instant::now() < refused_deadline,
            "connections were never refused"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    load.await.expect("the load panicked");
    let exit = svc
        .wait_exit(DELAY + TIMEOUT + Duration::from_secs(5))
        .await;
    assert!(exit.success(), "exit status {exit}");
    assert!(signalled.elapsed() < DELAY + TIMEOUT + Duration::from_secs(2));

    let answered = answered.lock().unwrap().clone();
    let bad: Vec<_> = answered
        .iter()
        .filter(|(s, _)| !(200..300).contains(s))
        .collect();
    assert!(bad.is_empty(), "accepted requests that failed: {bad:?}");
    assert!(answered.len() >= 200, "{} answered", answered.len());
}

/// The ALB key endpoint and the IdP's JWKS both failing while their keys are cached: traffic
/// (every request with a new ALB header or a new bearer token, so each is verified in full)
/// goes on unaffected, and nothing is fetched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_endpoints_down_with_keys_cached_change_nothing_for_traffic() {
    use crate::support::identity::{Identities, Persona, Reply};
    use players_api::{
        routes::logout::LogoutConfig,
        shutdown::ShutdownFlag,
        startup::{AppState, Application},
    };
    let ids = Arc::new(Identities::start().await);
    let db = TestDb::sqlite();
    let app = Application::build(
        std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
        AppState {
            store: db.store().await,
            authenticator: ids.authenticator.clone(),
            logout: LogoutConfig::default(),
            ready_timeout: Duration::from_secs(1),
            shutdown: ShutdownFlag::default(),
            http: Default::default(),
        },
    )
    .unwrap();
    let url = format!("http://127.0.0.1:{}/v1/players?limit=5", app.port());
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();
    let user = Persona::User("sub-viewer", vec!["players-viewer"]);
    let service = Persona::Service(vec!["players/read"]);
    let get = |persona: &Persona| {
        let mut req = client.get(&url);
        for (name, value) in ids.headers(persona) {
            req = req.header(name, value);
        }
        req
    };
    // Both keys fetched once and cached.
    for persona in [&user, &service] {
        assert_eq!(get(persona).exchange().await.status(), 200);
    }
    let fetched = ids.server.hits();
    ids.server
        .set(&format!("/alb/{}", ids.alb_key.kid), Reply::Status(503));
    ids.server
        .set("/idp/.well-known/jwks.json", Reply::Status(503));

    let in_flight = Arc::new(Semaphore::new(32));
    let mut tick = tokio::time::interval(Duration::from_millis(4));
    let mut requests = Vec::new();
    for n in 0..600u32 {
        tick.tick().await;
        let permit = in_flight.clone().acquire_owned().await.unwrap();
        let req = get(if n.is_multiple_of(2) { &user } else { &service });
        requests.push(tokio::spawn(async move {
            let status = req.exchange().await.status().as_u16();
            drop(permit);
            status
        }));
    }
    let mut statuses = std::collections::BTreeMap::new();
    for r in requests {
        *statuses.entry(r.await.unwrap()).or_insert(0) += 1;
    }
    assert_eq!(
        statuses,
        [(200, 600)].into(),
        "every request served as before"
    );
    assert_eq!(
        ids.server.hits(),
        fetched,
        "nothing was fetched while the keys were cached"
    );
}
