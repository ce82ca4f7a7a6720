//! Graceful shutdown for ECS, and the container health probe.
//!
//! ECS sends SIGTERM at every deployment and scale-in, then SIGKILL after `stopTimeout`. On
//! SIGTERM (or SIGINT) `/ready` answers 503 at once so the ALB deregisters the target; the
//! server keeps accepting for `SHUTDOWN_DELAY_SECS` (the ALB still routes new requests until
//! deregistration is under way), then stops accepting and drains in-flight requests within
//! `SHUTDOWN_TIMEOUT_SECS`. Delay + timeout stay below `stopTimeout` (40 s in the task
//! definition), so no request is cut off.

use std::future::Future;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

/// Tripped at SIGTERM: from then on `/ready` answers 503 (before the server stops accepting).
#[derive(Clone, Debug, Default)]
pub struct ShutdownFlag(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl ShutdownFlag {
    pub fn trip(&self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    pub fn is_set(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// `SHUTDOWN_DELAY_SECS`, `SHUTDOWN_TIMEOUT_SECS`.
#[derive(Clone, Debug, clap::Args)]
pub struct ShutdownSettings {
    /// Seconds to keep accepting after SIGTERM while `/ready` already answers 503.
    #[arg(
        long = "shutdown-delay-secs",
        env = "SHUTDOWN_DELAY_SECS",
        default_value_t = 5
    )]
    pub delay_secs: u64,
    /// Seconds allowed for in-flight requests to finish once accepting stopped.
    #[arg(
        long = "shutdown-timeout-secs",
        env = "SHUTDOWN_TIMEOUT_SECS",
        default_value_t = 25
    )]
    pub timeout_secs: u64,
}

/// Resolves on SIGTERM or SIGINT, returning the signal's name.
pub async fn termination_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            },
            _ => {
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    }
}

/// Runs `server` until `signal` resolves, then shuts down in the order described in the module
/// docs. The server must be built with `.disable_signals()` (else actix stops on SIGTERM by
/// itself, at once) and `.shutdown_timeout(settings.timeout_secs)` (actix bounds the drain).
/// Metrics and traces are flushed by the caller after this returns.
///
/// `start_draining` runs the moment the signal arrives: it makes `/ready` answer 503 (e.g.
/// `|| flag.trip()` with the routes' `ShutdownFlag`).
pub async fn run_until_stopped<S>(
    server: actix_web::dev::Server,
    start_draining: impl FnOnce(),
    settings: &ShutdownSettings,
    signal: S,
) -> std::io::Result<()>
where
    S: Future<Output = &'static str>,
{
    let handle = server.handle();
    let mut server = std::pin::pin!(server);
    let name = tokio::select! {
        res = &mut server => return res,
        name = signal => name,
    };
    start_draining();
    tracing::info!(
        event = "shutdown",
        signal = name,
        delay_secs = settings.delay_secs,
        timeout_secs = settings.timeout_secs,
        "shutdown requested: /ready answers 503; still accepting during the delay"
    );
    tokio::select! {
        res = &mut server => return res,
        _ = tokio::time::sleep(Duration::from_secs(settings.delay_secs)) => {}
    }
    tracing::info!(
        event = "shutdown",
        "no longer accepting; draining in-flight requests"
    );
    // `stop(true)` is graceful: listeners close, requests in flight finish (bounded by the
    // server's own shutdown_timeout). The server future must keep being polled meanwhile.
    let drained = tokio::time::timeout(Duration::from_secs(settings.timeout_secs + 1), async {
        let (_, res) = tokio::join!(handle.stop(true), &mut server);
        res
    })
    .await;
    match drained {
        Ok(res) => {
            tracing::info!(event = "shutdown", "drained");
            res
        }
        Err(_) => {
            tracing::warn!(
                event = "shutdown",
                "drain timed out; remaining requests were cut"
            );
            Ok(())
        }
    }
}

/// Writes the last metrics interval and exports buffered spans; call after
/// [`run_until_stopped`] returned, before exiting 0.
///
/// The span exporter's batch task runs on this runtime, so the blocking flush goes to a
/// blocking thread while the runtime keeps polling that task (flushing on the runtime's own
/// thread would wait for itself forever).
pub async fn flush_telemetry(otel: Option<crate::telemetry::otel::OtelGuard>, timeout: Duration) {
    crate::telemetry::metrics::flush();
    if let Some(guard) = otel {
        let flush = tokio::task::spawn_blocking(move || guard.shutdown(timeout));
        if tokio::time::timeout(timeout + Duration::from_secs(1), flush)
            .await
            .is_err()
        {
            tracing::warn!(event = "shutdown", "flushing traces timed out");
        }
    }
}

/// `players-api healthcheck`: GET `/health` on the local listener; `Ok` on 200. For the
/// container health check of a distroless image (no curl). An unspecified listen address
/// (`0.0.0.0`, `::`) is probed on loopback.
pub fn healthcheck(listen_addr: &str, timeout: Duration) -> Result<(), String> {
    let addr: SocketAddr = listen_addr
        .parse()
        .map_err(|e| format!("LISTEN_ADDR {listen_addr:?} is not an address: {e}"))?;
    let ip = match addr.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let target = SocketAddr::new(ip, addr.port());
    let mut stream = TcpStream::connect_timeout(&target, timeout)
        .map_err(|e| format!("cannot connect to {target}: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("cannot send to {target}: {e}"))?;
    let mut head = [0u8; 64];
    let mut len = 0;
    while len < 12 {
        match stream.read(&mut head[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) => return Err(format!("no answer from {target}: {e}")),
        }
    }
    let status_line = String::from_utf8_lossy(&head[..len]);
    match status_line.split_whitespace().nth(1) {
        Some("200") => Ok(()),
        Some(code) => Err(format!("/health answered {code}")),
        None => Err("/health gave no HTTP status".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::{App, HttpResponse, HttpServer, web};
    use std::sync::atomic::{AtomicUsize, Ordering};

    async fn ready(draining: web::Data<ShutdownFlag>) -> HttpResponse {
        if draining.is_set() {
            HttpResponse::ServiceUnavailable().finish()
        } else {
            HttpResponse::Ok().finish()
        }
    }

    async fn slow(started: web::Data<AtomicUsize>) -> HttpResponse {
        started.fetch_add(1, Ordering::SeqCst);
        // Longer than the delay: these finish while the server drains.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        HttpResponse::Ok().body("done")
    }

    #[actix_web::test]
    async fn sigterm_sequence_drains_in_flight_requests() {
        let draining = ShutdownFlag::default();
        let started = web::Data::new(AtomicUsize::new(0));
        let settings = ShutdownSettings {
            delay_secs: 1,
            timeout_secs: 5,
        };
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (d, s) = (web::Data::new(draining.clone()), started.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(d.clone())
                .app_data(s.clone())
                .route("/health", web::get().to(HttpResponse::Ok))
                .route("/ready", web::get().to(ready))
                .route("/slow", web::get().to(slow))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(settings.timeout_secs)
        .listen(listener)
        .unwrap()
        .run();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let signal = async move {
            let _ = rx.await;
            "SIGTERM"
        };
        let srv = tokio::spawn({
            let draining = draining.clone();
            let settings = settings.clone();
            async move { run_until_stopped(server, || draining.trip(), &settings, signal).await }
        });

        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        // The probe works while serving.
        let addr = format!("0.0.0.0:{port}");
        assert_eq!(
            tokio::task::spawn_blocking(move || healthcheck(&addr, Duration::from_secs(2)))
                .await
                .unwrap(),
            Ok(())
        );
        assert_eq!(
            client
                .get(format!("{base}/ready"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );

        let in_flight: Vec<_> = (0..3)
            .map(|_| tokio::spawn(reqwest::get(format!("{base}/slow"))))
            .collect();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while started.load(Ordering::SeqCst) < 3 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "requests never started"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let signalled = tokio::time::Instant::now();
        tx.send(()).unwrap();

        // /ready flips at once, and new connections are still accepted during the delay.
        let deadline = signalled + Duration::from_millis(500);
        loop {
            let fresh = reqwest::Client::new();
            let status = fresh
                .get(format!("{base}/ready"))
                .send()
                .await
                .unwrap()
                .status();
            if status == 503 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "/ready did not go 503"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(signalled.elapsed() < Duration::from_secs(1));

        for r in in_flight {
            let resp = r.await.unwrap().expect("in-flight request completed");
            assert_eq!(resp.status(), 200);
            assert_eq!(resp.text().await.unwrap(), "done");
        }
        srv.await.unwrap().unwrap();
        let took = signalled.elapsed();
        assert!(took >= Duration::from_secs(settings.delay_secs), "{took:?}");
        assert!(
            took < Duration::from_secs(settings.delay_secs + settings.timeout_secs),
            "{took:?}"
        );
        // Stopped: nothing listens any more, and the probe says so.
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
        let addr = format!("127.0.0.1:{port}");
        assert!(healthcheck(&addr, Duration::from_millis(500)).is_err());
    }

    #[test]
    fn healthcheck_rejects_bad_addresses() {
        assert!(healthcheck("not an address", Duration::from_millis(100)).is_err());
    }
}
