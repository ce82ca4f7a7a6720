//! The per-request context: a request id this service generates for every request (the id of
//! record), the client's own `x-request-id` kept beside it as `client_request_id` when it is
//! safe to log, a span every log line of the request inherits, the `x-request-id` response
//! header, and one access line per request.
//!
//! Why this middleware rather than `tracing-actix-web`: its root span names its fields its own
//! way (`http.route`, `http.method`) and adds a dozen more to every log line of a request,
//! among them the client IP, the user agent and the raw query string. It writes no access line,
//! sets no response header, and has no place for the request-id scope that problem documents
//! and audit rows read or for the ALB's trace-parent rule (`otel::parent_context`); its
//! OpenTelemetry support also ends a version short of ours. So all of that would stay here and
//! only the `info_span!` below would move, into a root-span builder no shorter than it.

use std::{borrow::Cow, time::Instant};

use actix_web::{
    Error,
    body::{BodySize, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::header::{HeaderName, HeaderValue},
    middleware::Next,
};
use tracing::{Instrument, field::Empty};

use super::xray::{self, TraceHeader};

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// App data naming a request's route from its path without the router (the route table's
/// own matcher, `routes::pattern_of`). Paths it does not know are named by the router's
/// `match_pattern`, which runs the registered patterns' regexes again, so this keeps that
/// cost off the API's routes.
#[derive(Clone, Copy)]
pub struct RouteNames(pub fn(&str) -> Option<&'static str>);

fn route_name(req: &ServiceRequest) -> Cow<'static, str> {
    req.app_data::<RouteNames>()
        .and_then(|names| (names.0)(req.path()))
        .map(Cow::Borrowed)
        .or_else(|| req.match_pattern().map(Cow::Owned))
        .unwrap_or(Cow::Borrowed(super::metrics::UNMATCHED_ROUTE))
}
const TRACE_HEADER: &str = "x-amzn-trace-id";

pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, Error> {
    let started = Instant::now();
    let request_id = xray::new_request_id();
    let client_request_id = req
        .headers()
        .get(&REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(xray::request_id_from_header);
    // Malformed trace headers are ignored: they are for correlation only.
    let trace = req
        .headers()
        .get(TRACE_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(TraceHeader::parse);
    let route = route_name(&req);
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        client_request_id = client_request_id.as_deref(),
        trace_id = trace.as_ref().map_or("", |t| t.root.as_str()),
        method = %req.method(),
        route = %route,
        principal_kind = Empty,
        principal_id = Empty,
    );
    if super::otel::enabled()
        && let Some(header) = &trace
    {
        // Continue the ALB's trace (it sends Root without Parent; see otel::parent_context).
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        let _ = span.set_parent(super::otel::parent_context(header));
    }
    // Handlers and extractors turn their errors into responses inside `next`, within the
    // request-id scope, so problem bodies carry the id. (Cloning the request here would
    // break routing, which needs sole ownership of it.)
    let ids = super::RequestIds {
        id: request_id.clone(),
        client: client_request_id,
    };
    let mut res = super::with_request_ids(ids, next.call(req))
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
