//! The `ferrocast` binary: parses the command line, loads configuration and wires the roles
//! together. It holds no product logic of its own; that lives in the crates it calls.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use ferrocast_core::config::Roles;
use ferrocast_core::{Config, Db};

mod hls_connection;
mod hls_loops;
mod http_metrics;
mod http_server;
mod logging;
mod serve;
mod web;

/// Self-hosted live streaming: RTMP ingest, a GStreamer HLS ladder and an HTTP origin.
///
/// Settings come from defaults, then the TOML file given with --config, then FERROCAST_*
/// environment variables (see docs/operations.md for every key).
#[derive(Parser)]
#[command(name = "ferrocast", version, about)]
struct Cli {
    /// TOML configuration file.
    #[arg(long, short, global = true, env = "FERROCAST_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: by default every role in this process (the API and web UI, the RTMP
    /// ingest, the HLS origin and the transcode worker).
    Serve {
        /// The roles this process runs, comma-separated: api, ingest, origin, worker. Overrides
        /// `roles` in the configuration (env FERROCAST_ROLES).
        #[arg(long, value_name = "ROLES")]
        roles: Option<Roles>,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Print the effective configuration (secrets hidden) and exit.
    Config,
}

/// How many tasks a runtime worker runs between looks at the shared queue. With a thousand viewers'
/// connections, one poll for readiness can wake more tasks than a worker's own queue holds (256);
/// the rest wait in the shared queue, which tokio's self-tuned interval (about 200 µs of work:
/// dozens of our few-microsecond playlist answers) left waiting behind several rounds of others.
/// At 4, the 1,000-connection playlist p99 fell from 44–58 ms to 26–31 ms (nginx: 19–23 ms) and
/// requests per second rose (docs/performance.md §8). Viewers' connections have since moved to
/// viewer threads of their own (`hls_loops.rs`); the setting stays for the connections hyper
/// serves here (browsers after an API call, WebSockets), which can be as many.
const GLOBAL_QUEUE_INTERVAL: u32 = 4;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::load(cli.config.as_deref()).context("loading configuration")?;
    logging::init(config.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .global_queue_interval(GLOBAL_QUEUE_INTERVAL)
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve { roles } => {
                let mut config = config;
                config.roles = roles.unwrap_or(config.roles);
                serve::run(config).await
            }
            Command::Migrate => {
                let db = Db::connect(&config).await.with_context(|| format!("opening {}", config.database_description()))?;
                tracing::info!(database = %config.database_description(), "migrations applied");
                db.close().await;
                Ok(())
            }
            Command::Config => {
                println!("{config:#?}");
                Ok(())
            }
        }
    })
}
