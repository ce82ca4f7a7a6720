//! Test support shared by every suite:
//! - `db`: a fresh PostgreSQL database or SQLite file per test, store settings, audit contexts;
//! - `app`: the application in-process on port 0, problem+json assertions, request bodies;
//! - `identity`: ALB-signed headers, bearer tokens, a programmable key/JWKS server (also used
//!   by the benches);
//! - `aws`: moto standing in for Secrets Manager, and a stand-in that refuses every call;
//! - `emf_spec`: the EMF specification's rules, checked on captured metrics documents (also
//!   included by the unit tests of `src/telemetry/metrics`);
//! - `process`: the real binary as a child process with its output captured;
//! - `proxy`: a TCP proxy that can cut the application off from its database;
//! - `oidc_flow`: a cookie-keeping HTTP "browser" for the `authenticate-oidc` flow.

pub mod app;
pub mod aws;
pub mod db;
pub mod emf_spec;
pub mod identity;
pub mod oidc_flow;
pub mod process;
pub mod proxy;

use std::time::Duration;

/// How long any start-up, exit or readiness wait may take on a loaded machine.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// A loopback port that was free a moment ago (for children that must be told their port).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind 127.0.0.1:0")
        .local_addr()
        .expect("local addr")
        .port()
}

/// Waits until `cond` holds, polling; panics with `what` after `timeout`.
pub async fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
