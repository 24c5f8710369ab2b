//! Structured logs through `tracing`: JSON in Lambda (CloudWatch parses it), compact
//! text elsewhere. `RUST_LOG` filters, `info` by default.

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    // `try_init` so that tests, which may call this repeatedly, do not panic.
    let _ = if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_ansi(false)
            .without_time()
            .try_init()
    } else {
        builder.compact().try_init()
    };
}
