//! Logs, request ids, and the hooks that metrics and traces attach to.

pub mod line_buffer;
pub mod logging;
pub mod request;

use std::time::Duration;

use actix_web::http::header::HeaderMap;

pub mod metrics;
pub mod otel;
pub mod xray;

/// The ids of the request being served: the one this service generated (the id of record in
/// logs, problem documents and audit rows) and the client's own `x-request-id`, if it sent a
/// usable one (kept beside it, never instead of it: a client could reuse or forge ids).
#[derive(Clone, Debug)]
pub struct RequestIds {
    pub id: String,
    pub client: Option<String>,
}

tokio::task_local! {
    static REQUEST_IDS: RequestIds;
}

/// The id of the request being served on this task, or `"-"` outside a request.
pub fn current_request_id() -> String {
    REQUEST_IDS
        .try_with(|ids| ids.id.clone())
        .unwrap_or_else(|_| "-".to_owned())
}

/// The client's `x-request-id` of the request being served, if it sent one.
pub fn current_client_request_id() -> Option<String> {
    REQUEST_IDS
        .try_with(|ids| ids.client.clone())
        .ok()
        .flatten()
}

/// Runs `fut` with `ids` as the current request's ids.
pub async fn with_request_ids<F: std::future::Future>(ids: RequestIds, fut: F) -> F::Output {
    REQUEST_IDS.scope(ids, fut).await
}

/// The X-Ray trace id (`Root`) of the ALB's `X-Amzn-Trace-Id`, if well formed.
pub fn trace_id_from_request(headers: &HeaderMap) -> Option<String> {
    let raw = headers.get("x-amzn-trace-id")?.to_str().ok()?;
    xray::TraceHeader::parse(raw).map(|t| t.root.as_str().to_owned())
}

/// Called once per request with its outcome (metrics attach here).
pub fn metrics_hook(route: &str, status: u16, latency: Duration) {
    metrics::record_request(route, status, latency);
}
