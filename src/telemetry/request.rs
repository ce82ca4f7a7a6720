//! The per-request context: a request id (a valid incoming `x-request-id` or a new UUID),
//! a span every log line of the request inherits, the `x-request-id` response header, and one
//! access line per request.

use std::time::Instant;

use actix_web::{
    Error,
    body::{BodySize, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::header::{HeaderName, HeaderValue},
    middleware::Next,
};
use tracing::{Instrument, field::Empty};

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");
const MAX_REQUEST_ID_LEN: usize = 128;

/// An incoming request id is kept only if it is short and made of safe characters, so it can
/// go into logs and headers verbatim.
pub fn valid_request_id(raw: &str) -> Option<&str> {
    let ok = !raw.is_empty()
        && raw.len() <= MAX_REQUEST_ID_LEN
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    ok.then_some(raw)
}

pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, Error> {
    let started = Instant::now();
    let request_id = req
        .headers()
        .get(&REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(valid_request_id)
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let trace_id = super::trace_id_from_request(req.headers());
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        trace_id = trace_id.as_deref().unwrap_or(""),
        method = %req.method(),
        route = %route,
        principal_kind = Empty,
        principal_id = Empty,
    );
    if super::otel::enabled() {
        // Continue the ALB's trace (it sends Root without Parent; see otel::parent_context).
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        let header = req
            .headers()
            .get("x-amzn-trace-id")
            .and_then(|v| v.to_str().ok())
            .and_then(super::xray::TraceHeader::parse);
        if let Some(header) = header {
            let _ = span.set_parent(super::otel::parent_context(&header));
        }
    }
    // Handlers and extractors turn their errors into responses inside `next`, within the
    // request-id scope, so problem bodies carry the id. (Cloning the request here would
    // break routing, which needs sole ownership of it.)
    let mut res = super::with_request_id(request_id.clone(), next.call(req))
        .instrument(span.clone())
        .await?;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        res.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    let status = res.status().as_u16();
    let latency = started.elapsed();
    let bytes = match res.response().body().size() {
        BodySize::Sized(n) => n,
        _ => 0,
    };
    super::metrics_hook(&route, status, latency);
    span.in_scope(|| {
        tracing::info!(
            event = "access",
            status,
            latency_ms = latency.as_secs_f64() * 1000.0,
            bytes,
            "request completed"
        );
    });
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_bounded_and_safe() {
        assert_eq!(valid_request_id("abc-123_x.y:z"), Some("abc-123_x.y:z"));
        assert_eq!(valid_request_id(""), None);
        assert_eq!(valid_request_id(&"a".repeat(129)), None);
        assert!(valid_request_id(&"a".repeat(128)).is_some());
        for bad in ["a b", "a\nb", "<script>", "a\"b", "é"] {
            assert_eq!(valid_request_id(bad), None, "{bad}");
        }
    }
}
