//! Structured JSON logs (one object a line) with the request id of the current request.

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
