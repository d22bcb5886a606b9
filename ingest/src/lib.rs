//! ferrocast-ingest: the RTMP side of Ferrocast, where streamers publish.
//!
//! [`run`] accepts connections on a bound listener until shutdown, capped by a semaphore; each
//! connection is one task (`connection.rs`) driving a sans-IO session (`session.rs`) over our own
//! handshake, chunk layer and AMF0 (`rtmp/`). A publish is
//! authorised by one stream-key lookup through core's repositories (never through the REST layer),
//! and its media goes to a ladder pipeline from ferrocast-media (`publisher.rs`). Which channel is
//! live on which video lives in `live.rs`. Nothing here logs a stream key.

use std::sync::Arc;

use ferrocast_core::shutdown::Shutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

pub mod connection;
pub mod flv;
pub mod live;
pub mod publish_auth;
pub mod publisher;
pub mod rtmp;
pub mod session;

pub use live::Ingest;

/// Accepts RTMP connections until `shutdown` fires. Connections beyond `rtmp.max_connections` are
/// closed right after accept. Each connection task is tracked by `shutdown`, so draining waits for
/// live videos to be finalised.
pub async fn run(listener: TcpListener, ingest: Arc<Ingest>, shutdown: Shutdown) {
    let permits = Arc::new(Semaphore::new(ingest.rtmp.max_connections));
    let stop = shutdown.signalled();
    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(connection) => connection,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "RTMP accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        metrics::counter!("ferrocast_rtmp_connections_total").increment(1);
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(%peer, limit = ingest.rtmp.max_connections, "RTMP connection refused: too many connections");
            continue;
        };
        let (ingest, task_shutdown) = (ingest.clone(), shutdown.clone());
        shutdown.spawn(async move {
            metrics::gauge!("ferrocast_rtmp_connections_active").increment(1.0);
            connection::serve(stream, peer, ingest.clone(), task_shutdown).await;
            metrics::gauge!("ferrocast_rtmp_connections_active").decrement(1.0);
            drop(permit);
        });
    }
    // Videos waiting out their grace period have no connection left to end them.
    ingest.end_all_idle().await;
}
