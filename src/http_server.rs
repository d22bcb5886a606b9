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
//!
//! The origin's `GET /hls/…` requests skip the router (`ferrocast_origin::direct`): they are most of
//! the traffic, and the same answer costs less without it. They are counted and marked `nosniff`
//! here as the router's layers do for everything else. A connection starts in our own HTTP/1.1
//! loop for those requests (`hls_connection.rs`, which sends segments with `sendfile`), on a viewer
//! thread of its own (`hls_loops.rs`), and moves to hyper on the shared runtime at its first other
//! request; a segment hyper serves closes its connection after the
//! answer, so that the client's next one starts in the loop again.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::connect_info::ConnectInfo;
use axum::http::{header, HeaderValue, Request};
use axum::response::Response;
use axum::Router;
use ferrocast_api::ConnectionSlot;
use ferrocast_core::admission::{next_connection, Admission};
use ferrocast_core::config::HttpConfig;
use ferrocast_core::shutdown::Shutdown;
use ferrocast_origin::OriginState;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::runtime::Handle;
use tower::ServiceExt;

use crate::hls_connection::{self, Rewound, Served};
use crate::hls_loops::HlsLoops;
use crate::http_metrics::RequestCounters;

/// What the listener serves.
pub struct HttpApp {
    pub router: Router,
    /// This node's origin, when it has one: its `/hls/` requests are answered without the router.
    pub origin: Option<Arc<Origin>>,
    pub request_counters: Arc<RequestCounters>,
}

/// An origin node's viewers: the origin that answers them and the threads their connections are
/// served on.
pub struct Origin {
    pub state: OriginState,
    pub loops: HlsLoops,
}

/// Every response means exactly its content type: browsers must not sniff API JSON, playlists or
/// media into something they would run.
pub fn add_nosniff(response: &mut Response) {
    response.headers_mut().entry(header::X_CONTENT_TYPE_OPTIONS).or_insert(HeaderValue::from_static("nosniff"));
}

/// One connection's requests, from `peer`, holding `slot` (see `ConnectionSlot`).
#[derive(Clone)]
struct ConnectionService {
    app: Arc<HttpApp>,
    peer: SocketAddr,
    slot: ConnectionSlot,
}

impl hyper::service::Service<Request<Incoming>> for ConnectionService {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let this = self.clone();
        let direct = ferrocast_origin::direct::takes(request.method(), request.uri());
        Box::pin(async move {
            let request = match (direct, &this.app.origin) {
                (true, Some(origin)) => {
                    // A GET's body, if any, is not read.
                    let (parts, _) = request.into_parts();
                    if let Some(mut response) = ferrocast_origin::direct::respond(&origin.state, this.peer.ip(), &parts).await {
                        this.app.request_counters.increment(ferrocast_origin::ROUTE, &parts.method, response.status().as_u16());
                        add_nosniff(&mut response);
                        if ferrocast_origin::FileBody::of(&response).is_some() {
                            // A segment on a connection hyper serves (a browser's, after an API
                            // call): the client's next request comes on a new connection, which
                            // starts where segments are sent with `sendfile`.
                            response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
                        }
                        return Ok(response);
                    }
                    Request::from_parts(parts, Body::empty())
                }
                _ => request.map(Body::new),
            };
            Ok(this.route(request).await)
        })
    }
}

impl ConnectionService {
    /// Through the router. It reads the client address from the request, as `ConnectInfo` (see
    /// `ClientAddr`), and a WebSocket upgrade takes the connection's slot along.
    async fn route(&self, mut request: Request<Body>) -> Response {
        request.extensions_mut().insert(ConnectInfo(self.peer));
        request.extensions_mut().insert(self.slot.clone());
        match self.app.router.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }
}

/// Serves `app` on `listener` until `shutdown` fires; the connection tasks are tracked by `shutdown`.
pub async fn run(listener: TcpListener, app: HttpApp, limits: HttpConfig, shutdown: Shutdown) {
    let app = Arc::new(app);
    let admission = Admission::new(limits.max_connections, limits.max_connections_per_address);
    let mut http1 = hyper::server::conn::http1::Builder::new();
    let header_timeout = Duration::from_secs(limits.header_read_timeout_secs);
    http1.timer(TokioTimer::new()).header_read_timeout(header_timeout);
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
        let service = ConnectionService { app: app.clone(), peer, slot: slot.clone() };
        let hyper = Hyper { http1: http1.clone(), service, slot, stop: shutdown.signalled() };
        let Some(origin) = app.origin.clone() else {
            shutdown.spawn(hyper.serve(Rewound::new(stream)));
            continue;
        };
        // To the next viewer loop (`hls_loops.rs`), and back here to hyper at the first request
        // the loop does not answer.
        let (tasks, hls_stop, shared_runtime) = (shutdown.clone(), shutdown.signalled(), Handle::current());
        let (app, viewer_loop) = (app.clone(), origin.loops.next().clone());
        serve_on(&shutdown, &viewer_loop, peer, Rewound::new(stream), move |connection| async move {
            if let Served::HandOver(rewound) = hls_connection::serve(connection, peer, &app, &origin.state, header_timeout, hls_stop).await
            {
                serve_on(&tasks, &shared_runtime, peer, rewound, |connection| hyper.serve(connection));
            }
        });
    }
}

/// Serves `connection` with `serve` on `runtime`'s thread, as a task `tasks` tracks. The socket
/// leaves the reactor it is registered with and joins `runtime`'s; one that fails to (reset by the
/// client meanwhile) is closed.
fn serve_on<F, Serving>(tasks: &Shutdown, runtime: &Handle, peer: SocketAddr, connection: Rewound, serve: F)
where
    F: FnOnce(Rewound) -> Serving + Send + 'static,
    Serving: Future<Output = ()> + Send + 'static,
{
    let detached = match connection.detach() {
        Ok(detached) => detached,
        Err(e) => return tracing::debug!(%peer, error = %e, "HTTP connection lost moving between threads"),
    };
    tasks.spawn_on(
        async move {
            match detached.attach() {
                Ok(connection) => serve(connection).await,
                Err(e) => tracing::debug!(%peer, error = %e, "HTTP connection lost moving between threads"),
            }
        },
        runtime,
    );
}

/// A connection's life in hyper, with the slot it holds until it closes.
struct Hyper<S> {
    http1: Arc<hyper::server::conn::http1::Builder>,
    service: ConnectionService,
    slot: ConnectionSlot,
    stop: S,
}

impl<S: Future<Output = ()>> Hyper<S> {
    async fn serve(self, stream: Rewound) {
        let peer = self.service.peer;
        // With upgrades: the chat's WebSockets. An upgraded connection leaves this task and
        // lives in the socket's own task, which holds a clone of the slot until it closes.
        let connection = self.http1.serve_connection(TokioIo::new(stream), self.service).with_upgrades();
        tokio::pin!(connection);
        let stop = self.stop;
        // The connection first: hyper closes a connection outright when asked to stop before it
        // has read anything, and the bytes of a request a viewer loop handed over are not read
        // until the connection is first polled.
        let result = tokio::select! {
            biased;
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
        drop(self.slot);
    }
}
