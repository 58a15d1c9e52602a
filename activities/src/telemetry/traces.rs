//! Traces: OTLP export of the process's spans, and the W3C trace context that travels in queue
//! jobs.
//!
//! Export is on when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is
//! set and not empty: spans go over OTLP/gRPC in batches, sampled as `OTEL_TRACES_SAMPLER` and
//! `OTEL_TRACES_SAMPLER_ARG` say (default: every trace; `parentbased_traceidratio` with `0.1`
//! keeps one in ten, and a batch follows its request's decision). `BLOCKFILL_TRACE_FILTER` (an
//! `EnvFilter` directive) picks the spans exported. When export is off no layer is installed:
//! spans stay plain `tracing` spans, jobs carry no context, and nothing is slowed.
//!
//! A job carries its trace as a [`TraceContext`] (the `traceparent` and `tracestate` headers):
//! [`current`] takes it from the current span when the job is pushed, [`continue_trace`] makes
//! the span that runs the job its child, on any process.

use std::collections::HashMap;

use opentelemetry::{
    propagation::TextMapPropagator as _,
    trace::{TraceContextExt as _, TracerProvider as _},
};
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::{EnvFilter, Layer, registry::LookupSpan};

/// Whether this process exports spans (set once by [`Tracing::from_env`]).
static EXPORTING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether this process exports spans: callers skip work whose only use is a trace.
pub fn exporting() -> bool {
    EXPORTING.load(std::sync::atomic::Ordering::Relaxed)
}

/// A job's W3C trace context: `traceparent` (and `tracestate` when there is one).
pub type TraceContext = HashMap<String, String>;

/// Spans exported by default: ours and the HTTP server's at `info`, none of the libraries'
/// internals (the exporter's own gRPC calls among them).
/// The queue runner's `job` span is left out too: the span of the job's handler (a generation,
/// a batch) continues the trace the job carries instead.
const DEFAULT_TRACE_FILTER: &str = "info,blockfill::queue=off,h2=off,hyper=off,hyper_util=off,\
    tonic=off,tower=off,sqlx=off,apalis=off,apalis_core=off,apalis_redis=off,redis=off,\
    reqwest=off,opentelemetry=off,opentelemetry_sdk=off";

/// The process's trace export: on when an OTLP endpoint is configured.
#[derive(Debug, Default)]
pub struct Tracing {
    provider: Option<SdkTracerProvider>,
    filter: Option<String>,
}

impl Tracing {
    /// Reads the `OTEL_*` settings; `service` names the process unless `OTEL_SERVICE_NAME` does.
    /// Must run inside the tokio runtime (the gRPC exporter starts there).
    pub fn from_env(service: &str) -> Result<Self, String> {
        if !export_configured(|name| std::env::var(name).ok()) {
            return Ok(Self::default());
        }
        let filter = std::env::var("BLOCKFILL_TRACE_FILTER")
            .ok()
            .filter(|f| !f.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_TRACE_FILTER.to_owned());
        EnvFilter::try_new(&filter)
            .map_err(|e| format!("BLOCKFILL_TRACE_FILTER={filter:?}: {e}"))?;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build()
            .map_err(|e| format!("the OTLP trace exporter (OTEL_EXPORTER_OTLP_ENDPOINT): {e}"))?;
        let mut resource = Resource::builder();
        if std::env::var("OTEL_SERVICE_NAME").is_ok_and(|name| !name.trim().is_empty()) {
            // Resource::builder() has read it already.
        } else {
            resource = resource.with_service_name(service.to_owned());
        }
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource.build())
            .build();
        EXPORTING.store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(Self {
            provider: Some(provider),
            filter: Some(filter),
        })
    }

    /// Whether spans are exported.
    pub fn enabled(&self) -> bool {
        self.provider.is_some()
    }

    /// The layer that turns spans into OpenTelemetry spans (none when export is off).
    pub fn layer<S>(&self) -> Option<Box<dyn Layer<S> + Send + Sync + 'static>>
    where
        S: tracing::Subscriber + for<'span> LookupSpan<'span> + Send + Sync,
    {
        let provider = self.provider.as_ref()?;
        let filter = EnvFilter::try_new(self.filter.as_deref().unwrap_or(DEFAULT_TRACE_FILTER))
            .unwrap_or_else(|_| EnvFilter::new(DEFAULT_TRACE_FILTER));
        Some(
            tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("blockfill"))
                .with_threads(false)
                .with_filter(filter)
                .boxed(),
        )
    }

    /// Sends what is still buffered and stops the exporter (a no-op when export is off).
    pub fn shutdown(&self) {
        if let Some(provider) = &self.provider
            && let Err(e) = provider.shutdown()
        {
            tracing::warn!(target: "blockfill::telemetry", error = %e, "flushing the last spans failed");
        }
    }
}

/// Whether an OTLP endpoint for traces is set (and not empty).
fn export_configured(var: impl Fn(&str) -> Option<String>) -> bool {
    [
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ]
    .iter()
    .any(|name| var(name).is_some_and(|v| !v.trim().is_empty()))
}

/// The current span's trace context, for a job pushed now; `None` when it has none (export
/// off, or a span that is not traced).
pub fn current() -> Option<TraceContext> {
    of_span(&tracing::Span::current())
}

/// `span`'s trace context; `None` when it has none.
pub fn of_span(span: &tracing::Span) -> Option<TraceContext> {
    let context = span.context();
    if !context.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = TraceContext::new();
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    (!carrier.is_empty()).then_some(carrier)
}

/// Makes `span` a child of the trace in `parent` (a job's context, or a request's headers), and
/// records its `trace_id` field (declared `trace_id = tracing::field::Empty`) so log lines in it
/// carry the trace id. Without a parent the span starts its own trace.
pub fn continue_trace(span: &tracing::Span, parent: Option<&TraceContext>) {
    if let Some(parent) = parent {
        let context = TraceContextPropagator::new().extract(parent);
        if context.span().span_context().is_valid() && span.set_parent(context).is_err() {
            tracing::debug!(target: "blockfill::telemetry", "span already started; parent not set");
        }
    }
    record_trace_id(span);
}

/// Records `span`'s trace id in its `trace_id` field (when it has one).
pub fn record_trace_id(span: &tracing::Span) {
    let context = span.context();
    let span_context = context.span().span_context().clone();
    if span_context.is_valid() {
        span.record("trace_id", span_context.trace_id().to_string());
    }
}

/// The trace context in HTTP headers (`traceparent`, `tracestate`), for a request's span.
pub fn from_headers(headers: &axum::http::HeaderMap) -> Option<TraceContext> {
    let carrier: TraceContext = ["traceparent", "tracestate"]
        .iter()
        .filter_map(|name| {
            let value = headers.get(*name)?.to_str().ok()?;
            Some(((*name).to_owned(), value.to_owned()))
        })
        .collect();
    carrier.contains_key("traceparent").then_some(carrier)
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
    use tracing_subscriber::prelude::*;

    use super::*;

    #[test]
    fn export_is_on_only_with_an_endpoint() {
        let none = |_: &str| None;
        assert!(!export_configured(none));
        let empty = |_: &str| Some("  ".to_owned());
        assert!(!export_configured(empty));
        let general = |name: &str| {
            (name == "OTEL_EXPORTER_OTLP_ENDPOINT").then(|| "http://collector:4317".to_owned())
        };
        assert!(export_configured(general));
        let traces_only = |name: &str| {
            (name == "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").then(|| "http://c:4317".to_owned())
        };
        assert!(export_configured(traces_only));
    }

    #[test]
    fn without_a_tracing_layer_there_is_no_context_to_carry() {
        let span = tracing::info_span!("untraced", trace_id = tracing::field::Empty);
        assert_eq!(of_span(&span), None);
        // Continuing a trace without a layer does nothing, and does not panic.
        let parent = TraceContext::from([(
            "traceparent".to_owned(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned(),
        )]);
        continue_trace(&span, Some(&parent));
    }

    #[test]
    fn a_job_span_continues_the_trace_of_the_span_that_pushed_it() {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, || {
            let request = tracing::info_span!("http_request", trace_id = tracing::field::Empty);
            let carried = request
                .in_scope(current)
                .expect("a traced span has a context");
            assert!(carried["traceparent"].starts_with("00-"), "{carried:?}");
            // Carried through a job as JSON, as the queue does.
            let json = serde_json::to_string(&carried).expect("serialise");
            let arrived: TraceContext = serde_json::from_str(&json).expect("deserialise");
            let batch = tracing::info_span!("batch", trace_id = tracing::field::Empty);
            continue_trace(&batch, Some(&arrived));
            drop(batch);
            drop(request);
        });
        provider.force_flush().expect("flush");
        let spans = exporter.get_finished_spans().expect("spans");
        let find = |name: &str| {
            spans
                .iter()
                .find(|s| s.name == name)
                .unwrap_or_else(|| panic!("no {name} span in {spans:?}"))
        };
        let (request, batch) = (find("http_request"), find("batch"));
        assert_eq!(
            batch.span_context.trace_id(),
            request.span_context.trace_id()
        );
        assert_eq!(batch.parent_span_id, request.span_context.span_id());
    }

    #[test]
    fn request_headers_carry_a_trace_only_with_a_traceparent() {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("tracestate", axum::http::HeaderValue::from_static("k=v"));
        assert_eq!(from_headers(&headers), None);
        headers.insert(
            "traceparent",
            axum::http::HeaderValue::from_static(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
        );
        let carried = from_headers(&headers).expect("a traceparent");
        assert_eq!(carried.len(), 2);
    }
}
