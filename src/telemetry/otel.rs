//! OpenTelemetry traces over OTLP/HTTP, for an ADOT collector sidecar that forwards to X-Ray.
//!
//! Off unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set: then no layer is installed and requests pay
//! nothing. When on, trace ids are X-Ray-compatible (epoch-prefixed) and the ALB's trace
//! continues into the service through [`parent_context_from_alb`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use opentelemetry::Context;
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider as _,
};
use opentelemetry_aws::trace::{XrayIdGenerator, XrayPropagator};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

use super::xray::TraceHeader;

static ENABLED: AtomicBool = AtomicBool::new(false);

/// `OTEL_*` settings.
#[derive(Clone, Debug, clap::Args)]
pub struct OtelSettings {
    /// OTLP/HTTP base URL of the collector (`http://localhost:4318`); unset = no export.
    #[arg(
        long = "otel-exporter-otlp-endpoint",
        env = "OTEL_EXPORTER_OTLP_ENDPOINT"
    )]
    pub endpoint: Option<String>,
    /// `service.name` of the exported spans.
    #[arg(
        long = "otel-service-name",
        env = "OTEL_SERVICE_NAME",
        default_value = "players-api"
    )]
    pub service_name: String,
}

/// Owns the tracer provider; [`OtelGuard::shutdown`] flushes buffered spans.
#[derive(Clone)]
pub struct OtelGuard {
    provider: SdkTracerProvider,
}

impl OtelGuard {
    /// Exports what is buffered and stops the exporter (at shutdown, bounded by `timeout`).
    /// Blocking: the exporter runs on the tokio runtime, so call this off the runtime's
    /// threads (`shutdown::flush_telemetry` does).
    pub fn shutdown(&self, timeout: Duration) {
        if let Err(e) = self.provider.force_flush() {
            tracing::warn!(error = %e, "flushing traces failed");
        }
        if let Err(e) = self.provider.shutdown_with_timeout(timeout) {
            tracing::warn!(error = %e, "stopping the trace exporter failed");
        }
    }
}

/// The layer to add to the subscriber, if export is configured. Must be called inside the
/// tokio runtime (the batch exporter runs on it).
pub fn init<S>(
    settings: &OtelSettings,
) -> anyhow::Result<
    Option<(
        tracing_opentelemetry::OpenTelemetryLayer<S, SdkTracer>,
        OtelGuard,
    )>,
>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let Some(endpoint) = settings
        .endpoint
        .as_deref()
        .filter(|e| !e.trim().is_empty())
    else {
        return Ok(None);
    };
    // The variable names the collector's base URL; the traces path is the OTLP default.
    let traces_url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(traces_url)
        .with_timeout(Duration::from_secs(5))
        .build()
        .context("building the OTLP span exporter")?;
    let processor =
        opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor::builder(
            exporter,
            opentelemetry_sdk::runtime::Tokio,
        )
        .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_id_generator(XrayIdGenerator::default())
        .with_resource(
            Resource::builder()
                .with_service_name(settings.service_name.clone())
                .build(),
        )
        .build();
    opentelemetry::global::set_text_map_propagator(XrayPropagator::default());
    opentelemetry::global::set_tracer_provider(provider.clone());
    let tracer = provider.tracer("players-api");
    ENABLED.store(true, Ordering::Relaxed);
    let layer = tracing_opentelemetry::layer().with_tracer(tracer);
    Ok(Some((layer, OtelGuard { provider })))
}

/// Whether spans are exported; the request middleware skips building parent contexts if not.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The remote parent a request span continues: the ALB's trace (its Root) and, if the caller
/// sent one, its `Parent` segment.
///
/// The ALB sends `Root=` without `Parent=`, and the SDK's X-Ray propagator then starts a new
/// trace (an invalid span id makes the parent invalid). So the parent is built here: the Root
/// as trace id and, lacking a Parent, a random span id standing for the ALB hop, so the
/// service's spans land in the ALB's trace. `Sampled=0` is honoured; absent or `?` means
/// "sampled" (the sampler of this service decides what a parent-based sampler would).
pub fn parent_context(header: &TraceHeader) -> Context {
    let trace_id = TraceId::from_bytes(header.root.to_bytes());
    let span_id = header
        .parent
        .as_deref()
        .and_then(|p| u64::from_str_radix(p, 16).ok())
        .filter(|p| *p != 0)
        .map(|p| SpanId::from_bytes(p.to_be_bytes()))
        .unwrap_or_else(random_span_id);
    let flags = if header.sampled == Some(false) {
        TraceFlags::default()
    } else {
        TraceFlags::SAMPLED
    };
    let span_context = SpanContext::new(trace_id, span_id, flags, true, TraceState::default());
    Context::new().with_remote_span_context(span_context)
}

/// [`parent_context`] straight from the header value; a malformed or missing header gives an
/// empty context (the span starts a new trace).
pub fn parent_context_from_alb(trace_header: &str) -> Context {
    match TraceHeader::parse(trace_header) {
        Some(h) => parent_context(&h),
        None => Context::new(),
    }
}

fn random_span_id() -> SpanId {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let mut id = [0u8; 8];
    id.copy_from_slice(&bytes[..8]);
    if id == [0; 8] {
        id[7] = 1;
    }
    SpanId::from_bytes(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = "1-5759e988-bd862e3fe1be46a994272793";

    #[test]
    fn root_without_parent_continues_the_alb_trace() {
        let cx = parent_context_from_alb(&format!("Root={ROOT}"));
        let span = cx.span();
        let sc = span.span_context();
        assert!(sc.is_valid());
        assert!(sc.is_remote());
        assert!(sc.is_sampled());
        assert_eq!(
            format!("{}", sc.trace_id()),
            "5759e988bd862e3fe1be46a994272793"
        );
    }

    #[test]
    fn parent_and_sampled_are_honoured() {
        let cx = parent_context_from_alb(&format!("Root={ROOT};Parent=53995c3f42cd8ad8;Sampled=0"));
        let span = cx.span();
        let sc = span.span_context();
        assert_eq!(format!("{}", sc.span_id()), "53995c3f42cd8ad8");
        assert!(!sc.is_sampled());
    }

    #[test]
    fn malformed_header_starts_a_new_trace() {
        let cx = parent_context_from_alb("Root=nonsense");
        assert!(!cx.span().span_context().is_valid());
    }

    #[tokio::test]
    async fn unset_endpoint_installs_nothing() {
        let settings = OtelSettings {
            endpoint: None,
            service_name: "players-api".into(),
        };
        let layer = init::<tracing_subscriber::Registry>(&settings).unwrap();
        assert!(layer.is_none());
        assert!(!enabled());
    }

    #[derive(Clone, Debug, Default)]
    struct Capture(std::sync::Arc<std::sync::Mutex<Vec<opentelemetry_sdk::trace::SpanData>>>);

    impl opentelemetry_sdk::trace::SpanExporter for Capture {
        async fn export(
            &self,
            batch: Vec<opentelemetry_sdk::trace::SpanData>,
        ) -> opentelemetry_sdk::error::OTelSdkResult {
            self.0.lock().unwrap().extend(batch);
            Ok(())
        }
    }

    #[tokio::test]
    async fn spans_under_the_alb_parent_keep_its_trace_id() {
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        use tracing_subscriber::layer::SubscriberExt;

        // A capturing exporter stands in for OTLP; the layer is the same kind.
        let exporter = Capture::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .with_id_generator(XrayIdGenerator::default())
            .build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("request");
            let _ = span.set_parent(parent_context_from_alb(&format!("Root={ROOT}")));
            span.in_scope(|| tracing::info_span!("db").in_scope(|| {}));
        });
        provider.force_flush().unwrap();
        let spans = exporter.0.lock().unwrap().clone();
        assert_eq!(spans.len(), 2);
        for s in &spans {
            assert_eq!(
                format!("{}", s.span_context.trace_id()),
                "5759e988bd862e3fe1be46a994272793"
            );
        }
    }
}
