//! What each process reports about itself: logs, traces and metrics.
//!
//! - [`init`] installs the global subscriber: logs filtered by `RUST_LOG` (default `info`), as
//!   JSON lines when `BLOCKFILL_LOG_FORMAT=json` or, unset, when stdout is not a terminal (else
//!   compact text); and, when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) is set,
//!   spans exported over OTLP/gRPC ([`traces`]). Log lines inside a traced span carry its
//!   `trace_id`.
//! - [`traces`]: the W3C trace context that travels inside queue jobs, so one trace runs from an
//!   API request through the scheduler to each batch on a worker.
//! - [`metrics`]: the Prometheus recorder every process installs, and the `/metrics` answer.

pub mod metrics;
pub mod traces;

use std::io::IsTerminal as _;

use tracing_subscriber::{EnvFilter, Layer as _, fmt, prelude::*};

pub use traces::{TraceContext, Tracing};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line (span fields, the trace id among them, included).
    Json,
    /// Compact text for a terminal.
    Text,
}

impl LogFormat {
    /// `BLOCKFILL_LOG_FORMAT` (`json` or `text`); unset or empty: JSON unless stdout is a
    /// terminal. Anything else is an error naming the accepted values.
    pub fn from_env() -> Result<Self, String> {
        Self::choose(
            std::env::var("BLOCKFILL_LOG_FORMAT").ok().as_deref(),
            std::io::stdout().is_terminal(),
        )
    }

    fn choose(setting: Option<&str>, terminal: bool) -> Result<Self, String> {
        match setting.map(str::trim).filter(|s| !s.is_empty()) {
            None if terminal => Ok(Self::Text),
            None => Ok(Self::Json),
            Some(s) if s.eq_ignore_ascii_case("json") => Ok(Self::Json),
            Some(s) if s.eq_ignore_ascii_case("text") => Ok(Self::Text),
            Some(other) => Err(format!(
                "BLOCKFILL_LOG_FORMAT={other:?}: expected json or text"
            )),
        }
    }
}

/// Installs the global subscriber for the process named `service` (`blockfill-orchestrator`,
/// `blockfill-worker`; `OTEL_SERVICE_NAME` overrides it in traces). Keep the answer alive
/// until the process ends and call [`Tracing::shutdown`] then, so the last spans are sent.
///
/// Fails on a bad `BLOCKFILL_LOG_FORMAT` or OTLP setting; a second call installs nothing.
pub fn init(service: &str) -> Result<Tracing, String> {
    let format = LogFormat::from_env()?;
    let log_filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,apalis=warn"));
    let logs = match format {
        LogFormat::Json => fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_filter(log_filter)
            .boxed(),
        LogFormat::Text => fmt::layer().compact().with_filter(log_filter).boxed(),
    };
    let tracing = Tracing::from_env(service)?;
    let _ = tracing_subscriber::registry()
        .with(logs)
        .with(tracing.layer())
        .try_init();
    Ok(tracing)
}

/// [`init`] for tools and tests that do not export traces: logs only, never failing (a bad
/// `BLOCKFILL_LOG_FORMAT` falls back to text).
pub fn init_logging() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,apalis=warn"));
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match LogFormat::from_env() {
        Ok(LogFormat::Json) => registry
            .with(fmt::layer().json().with_current_span(true))
            .try_init(),
        _ => registry.with(fmt::layer().compact()).try_init(),
    };
}

/// Cancels `token` on SIGTERM or Ctrl-C.
pub async fn cancel_on_signal(token: tokio_util::sync::CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGTERM");
                    let _ = ctrl_c.await;
                    token.cancel();
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutdown requested; finishing in-flight work");
    token.cancel();
}

/// One line for an error and its causes, skipping causes already spelled out by the message
/// before them (our error types include their source in their own message).
pub fn error_line(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut cause = error.source();
    while let Some(current) = cause {
        let text = current.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = current.source();
    }
    line
}

/// This machine's host name (`/proc/sys/kernel/hostname`, else `$HOSTNAME`, else `localhost`).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

#[cfg(test)]
mod tests {
    use super::LogFormat;

    #[test]
    fn log_format_is_json_off_a_terminal_unless_told_otherwise() {
        assert_eq!(LogFormat::choose(None, false), Ok(LogFormat::Json));
        assert_eq!(LogFormat::choose(None, true), Ok(LogFormat::Text));
        assert_eq!(LogFormat::choose(Some(""), true), Ok(LogFormat::Text));
        assert_eq!(LogFormat::choose(Some("JSON"), true), Ok(LogFormat::Json));
        assert_eq!(LogFormat::choose(Some("text"), false), Ok(LogFormat::Text));
        let bad = LogFormat::choose(Some("yaml"), false).expect_err("not a format");
        assert!(bad.contains("json or text"), "{bad}");
    }
}
