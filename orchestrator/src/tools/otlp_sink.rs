//! An OTLP/gRPC trace receiver on loopback: the real protocol the binaries export with
//! (`OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:<port>`). It counts every span it receives
//! and keeps the first ones (up to a limit) with the service that sent them: the benchmark's
//! collector for the cost of tracing, and the tests' for what is traced.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::{AnyValue, any_value::Value as ProtoValue},
};
use tokio_util::sync::CancellationToken;

/// One span as received.
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    /// `service.name` of the process that sent it.
    pub service: String,
    /// Its name.
    pub name: String,
    /// Trace id, lowercase hex.
    pub trace_id: String,
    /// Span id, lowercase hex.
    pub span_id: String,
    /// Parent span id, lowercase hex (empty for a root span).
    pub parent_span_id: String,
    /// Attributes as strings.
    pub attributes: Vec<(String, String)>,
}

impl ReceivedSpan {
    /// The attribute `key`, as a string.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Clone)]
struct Received {
    kept: Arc<Mutex<Vec<ReceivedSpan>>>,
    keep: usize,
    count: Arc<AtomicU64>,
}

#[tonic::async_trait]
impl TraceService for Received {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut kept = self
            .kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for resource_spans in request.into_inner().resource_spans {
            let service = resource_spans
                .resource
                .iter()
                .flat_map(|r| r.attributes.iter())
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref().map(text))
                .unwrap_or_default();
            for span in resource_spans.scope_spans.into_iter().flat_map(|s| s.spans) {
                self.count.fetch_add(1, Ordering::Relaxed);
                if kept.len() >= self.keep {
                    continue;
                }
                kept.push(ReceivedSpan {
                    service: service.clone(),
                    name: span.name,
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    attributes: span
                        .attributes
                        .into_iter()
                        .map(|kv| {
                            let value = kv.value.as_ref().map(text).unwrap_or_default();
                            (kv.key, value)
                        })
                        .collect(),
                });
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn text(value: &AnyValue) -> String {
    match &value.value {
        Some(ProtoValue::StringValue(s)) => s.clone(),
        Some(ProtoValue::IntValue(i)) => i.to_string(),
        Some(ProtoValue::BoolValue(b)) => b.to_string(),
        Some(ProtoValue::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

/// A running receiver; stops when dropped.
pub struct OtlpSink {
    /// Where it listens.
    pub addr: SocketAddr,
    received: Received,
    stop: CancellationToken,
}

impl OtlpSink {
    /// Listens on a free loopback port, keeping the first `keep` spans (counting all).
    pub async fn start(keep: usize) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let received = Received {
            kept: Arc::default(),
            keep,
            count: Arc::default(),
        };
        let stop = CancellationToken::new();
        let service = TraceServiceServer::new(received.clone());
        let stopped = stop.clone();
        tokio::spawn(async move {
            let incoming = tokio_stream_of(listener);
            if let Err(e) = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(incoming, stopped.cancelled_owned())
                .await
            {
                tracing::warn!(target: "blockfill::bench", error = %e, "the OTLP sink stopped");
            }
        });
        Ok(Self {
            addr,
            received,
            stop,
        })
    }

    /// The endpoint for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The spans kept so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.received
            .kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// How many spans were received, kept or not.
    pub fn count(&self) -> u64 {
        self.received.count.load(Ordering::Relaxed)
    }
}

impl Drop for OtlpSink {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The accepted connections of `listener`, as tonic's server takes them.
fn tokio_stream_of(
    listener: tokio::net::TcpListener,
) -> impl futures::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures::stream::unfold(listener, |listener| async move {
        let accepted = listener.accept().await.map(|(stream, _)| stream);
        Some((accepted, listener))
    })
}
