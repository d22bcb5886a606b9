//! Structured logs through `tracing`: human-readable text by default, JSON lines for collectors.
//! The filter comes from `FERROCAST_LOG` (same syntax as `RUST_LOG`), default `info`.

use ferrocast_core::config::LogFormat;
use tracing_subscriber::EnvFilter;

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_env("FERROCAST_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}
