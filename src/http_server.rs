//! The HTTP listener: our own accept loop over hyper, because the limits that keep one client from
//! holding the server hostage live below the router.
//!
//! - A client must send a request's headers within `http.header_read_timeout_secs` of the server
//!   starting to wait for them (trickling a byte now and then does not extend it); an idle
//!   keep-alive connection waiting for its next request is closed by the same deadline.
//! - At most `http.max_connections` connections in all and `http.max_connections_per_address`
//!   from one address; a connection past either is closed right after accept, so sockets held open
//!   by one host cannot starve everyone else.
//!
//! On shutdown the listener stops accepting and every connection finishes the request in flight,
//! then closes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::connect_info::ConnectInfo;
use axum::{Extension, Router};
use ferrocast_api::ConnectionSlot;
use ferrocast_core::admission::{next_connection, Admission};
use ferrocast_core::config::HttpConfig;
use ferrocast_core::shutdown::Shutdown;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::Layer;

/// Serves `app` on `listener` until `shutdown` fires; the connection tasks are tracked by `shutdown`.
pub async fn run(listener: TcpListener, app: Router, limits: HttpConfig, shutdown: Shutdown) {
    let admission = Admission::new(limits.max_connections, limits.max_connections_per_address);
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1.timer(TokioTimer::new()).header_read_timeout(Duration::from_secs(limits.header_read_timeout_secs));
    let http1 = Arc::new(http1);
    while let Some((stream, peer)) = next_connection(&listener, &shutdown, "http").await {
        let slot = match admission.admit(peer.ip()) {
            Ok(slot) => slot,
            Err(refusal) => {
                metrics::counter!("ferrocast_http_connections_refused_total").increment(1);
                tracing::warn!(%peer, %refusal, "HTTP connection refused");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        // Shared with the requests, so that a connection upgraded to a WebSocket keeps counting
        // against the caps for as long as the socket lives (see `ConnectionSlot`).
        let slot = ConnectionSlot(Arc::new(slot));
        // The router reads the client address from the request, as `ConnectInfo` (see `ClientAddr`).
        let service = Extension(ConnectInfo::<SocketAddr>(peer)).layer(Extension(slot.clone()).layer(app.clone()));
        let service = TowerToHyperService::new(service);
        let (http1, stop) = (http1.clone(), shutdown.signalled());
        shutdown.spawn(async move {
            // With upgrades: the chat's WebSockets. An upgraded connection leaves this task and
            // lives in the socket's own task, which holds a clone of the slot until it closes.
            let connection = http1.serve_connection(TokioIo::new(stream), service).with_upgrades();
            tokio::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = stop => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = result {
                // A header deadline, a reset by the client: that client's business, nobody else's.
                tracing::debug!(%peer, error = %e, "HTTP connection ended with an error");
            }
            drop(slot);
        });
    }
}
