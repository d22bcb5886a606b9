//! `ferrocast serve`: opens the database, binds the listeners, runs until SIGINT/SIGTERM, then
//! drains: stops accepting, lets in-flight requests finish, closes the pool.

use std::net::SocketAddr;

use anyhow::Context;
use ferrocast_core::shutdown::Shutdown;
use ferrocast_core::{Config, Db};
use tokio::net::TcpListener;

pub async fn run(config: Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir).with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
    let db = Db::connect(&config).await.with_context(|| format!("opening {}", config.database_description()))?;
    let jwt_secret = config.resolve_jwt_secret().context("loading the JWT secret")?;
    let state = ferrocast_api::AppState::new(db.clone(), &config, &jwt_secret);
    let app = ferrocast_api::router(state);

    let http = TcpListener::bind(config.http_addr).await.with_context(|| format!("binding HTTP on {}", config.http_addr))?;
    tracing::info!(
        http = %http.local_addr()?,
        public_url = %config.public_url(),
        database = %config.database_description(),
        data_dir = %config.data_dir.display(),
        "ferrocast listening"
    );

    let shutdown = Shutdown::new();
    tokio::spawn(trigger_on_signal(shutdown.clone()));

    let server = axum::serve(http, app.into_make_service_with_connect_info::<SocketAddr>()).with_graceful_shutdown(shutdown.signalled());
    shutdown.spawn(async move {
        if let Err(e) = server.await {
            tracing::error!(error = %e, "HTTP server failed");
        }
    });

    shutdown.drained().await;
    db.close().await;
    tracing::info!("shut down cleanly");
    Ok(())
}

async fn trigger_on_signal(shutdown: Shutdown) {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received; shutting down"),
        () = terminate => tracing::info!("SIGTERM received; shutting down"),
    }
    shutdown.trigger();
}
