//! Synth's telemetry: structured JSON logs (one object a line) in which every line carries
//! the id of the request or event it belongs to. Its own crate so that every binary (the
//! HTTP API, the event functions, the trainer, `synth serve`) logs alike without linking
//! the HTTP stack.

use tracing_subscriber::EnvFilter;

/// Install the global subscriber; `RUST_LOG` overrides `level`. Safe to call twice.
pub fn init(level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!(
            "{level},aws_smithy_runtime=warn,aws_config=warn,hyper=warn"
        ))
    });
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(true)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The header that carries a request's id: set on every request that lacks one, echoed on
/// every response, and recorded as `request_id` on its log lines.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The span of one HTTP request: every line logged inside it carries these fields.
pub fn request_span(request_id: &str, method: &str, path: &str) -> tracing::Span {
    tracing::info_span!("request", request_id = %request_id, method = %method, path = %path)
}

/// The span of one event an event function handles (an SQS message, an S3 notification, a
/// trainer job): its id is the `request_id` of every line logged inside it.
pub fn event_span(kind: &'static str, id: &str) -> tracing::Span {
    tracing::info_span!("event", request_id = %id, kind)
}
