//! The `ferrocast` binary: parses the command line, loads configuration and wires the roles
//! together. It holds no product logic of its own; that lives in the crates it calls.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use ferrocast_core::{Config, Db};

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
    /// Run every role in this process: the HTTP server (API, origin, web UI) and the RTMP listener.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Print the effective configuration (secrets hidden) and exit.
    Config,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::load(cli.config.as_deref()).context("loading configuration")?;
    logging::init(config.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve => serve::run(config).await,
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
