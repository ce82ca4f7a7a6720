//! Logs, request ids and (later) metrics and traces.

pub mod metrics;
pub mod otel;
pub mod xray;

use crate::auth::Principal;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being served on this task, or `"-"` outside a request.
pub fn current_request_id() -> String {
    REQUEST_ID
        .try_with(|id| id.clone())
        .unwrap_or_else(|_| "-".to_owned())
}

/// Runs `fut` with `id` as the current request id.
pub async fn with_request_id<F: std::future::Future>(id: String, fut: F) -> F::Output {
    REQUEST_ID.scope(id, fut).await
}

/// Adds the principal to the current request span (kind and id; never email or token).
pub fn record_principal(principal: &Principal) {
    let span = tracing::Span::current();
    span.record("principal_kind", principal.kind.as_str());
    span.record("principal_id", principal.subject.as_str());
}
