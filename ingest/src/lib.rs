//! ferrocast-ingest: the RTMP side of Ferrocast, where streamers publish.
//!
//! [`run`] accepts connections on a bound listener until shutdown, capped by a semaphore; [`run_tls`]
//! does the same for RTMPS (`tls.rs`), under the same cap, with the TLS handshake inside the
//! connection's task. Each connection is one task (`connection.rs`) driving a sans-IO session
//! (`session.rs`) over our own handshake, chunk layer and AMF0 (`rtmp/`). A publish is
//! authorised by one stream-key lookup through core's repositories (never through the REST layer),
//! and its media goes to a ladder pipeline from ferrocast-media (`publisher.rs`). Which channel is
//! live on which video lives in `live.rs`. Nothing here logs a stream key.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ferrocast_core::shutdown::Shutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

pub mod connection;
pub mod flv;
pub mod live;
pub mod publish_auth;
pub mod publisher;
pub mod restream;
pub mod rtmp;
pub mod session;
pub mod tls;

pub use live::Ingest;
pub use tls::TlsAcceptor;

/// Accepts plain RTMP connections until `shutdown` fires. Connections beyond `rtmp.max_connections`
/// (counted over this and any TLS listener together), or beyond `rtmp.max_connections_per_address`
/// from one address (`ferrocast_core::admission`), are closed right after accept. Each connection
/// task is tracked by `shutdown`, so draining waits for live videos to be finalised.
pub async fn run(listener: TcpListener, ingest: Arc<Ingest>, shutdown: Shutdown) {
    accept_loop(listener, None, ingest, shutdown).await;
}

/// [`run`] for RTMPS: the same, with a TLS handshake first. The handshake runs in the connection's
/// task, under the same deadline as the RTMP handshake and publish, holding a connection permit.
pub async fn run_tls(listener: TcpListener, acceptor: TlsAcceptor, ingest: Arc<Ingest>, shutdown: Shutdown) {
    accept_loop(listener, Some(acceptor), ingest, shutdown).await;
}

async fn accept_loop(listener: TcpListener, tls: Option<TlsAcceptor>, ingest: Arc<Ingest>, shutdown: Shutdown) {
    let scheme = if tls.is_some() { "rtmps" } else { "rtmp" };
    while let Some((stream, peer)) = ferrocast_core::admission::next_connection(&listener, &shutdown, scheme).await {
        // Fixed at accept: the TLS handshake, the RTMP handshake, connect and publish all fit in it.
        let deadline = Instant::now() + Duration::from_secs(ingest.rtmp.handshake_timeout_secs);
        metrics::counter!("ferrocast_rtmp_connections_total").increment(1);
        let permit = match ingest.admission.admit(peer.ip()) {
            Ok(slot) => slot,
            Err(refusal) => {
                metrics::counter!("ferrocast_rtmp_connections_refused_total").increment(1);
                tracing::warn!(%peer, scheme, %refusal, "RTMP connection refused");
                continue;
            }
        };
        let (ingest, task_shutdown, tls) = (ingest.clone(), shutdown.clone(), tls.clone());
        shutdown.spawn(async move {
            metrics::gauge!("ferrocast_rtmp_connections_active").increment(1.0);
            connect(stream, peer, deadline, tls, ingest, task_shutdown).await;
            metrics::gauge!("ferrocast_rtmp_connections_active").decrement(1.0);
            drop(permit);
        });
    }
    // Videos waiting out their grace period have no connection left to end them. Both listeners
    // call this; ending a video is idempotent.
    ingest.end_all_idle().await;
}

/// One accepted connection: the TLS handshake when there is an acceptor, then the RTMP connection.
async fn connect(
    stream: TcpStream,
    peer: SocketAddr,
    deadline: Instant,
    tls: Option<TlsAcceptor>,
    ingest: Arc<Ingest>,
    shutdown: Shutdown,
) {
    let _ = stream.set_nodelay(true);
    let Some(acceptor) = tls else {
        return connection::serve(stream, peer, deadline, ingest, shutdown).await;
    };
    let handshake = tokio::select! {
        () = shutdown.signalled() => return,
        handshake = tokio::time::timeout_at(deadline, acceptor.accept(stream)) => handshake,
    };
    match handshake {
        Ok(Ok(stream)) => connection::serve(stream, peer, deadline, ingest, shutdown).await,
        // Plain RTMP on the TLS port, a client that distrusts the certificate, a port scanner.
        Ok(Err(e)) => tracing::info!(%peer, error = %e, "RTMPS connection closed: TLS handshake failed"),
        Err(_) => tracing::info!(%peer, "RTMPS connection closed: TLS handshake timed out"),
    }
}
