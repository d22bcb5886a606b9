//! Live HLS of a stream ingested on another node: the request is passed to that node (found in the
//! video's row, `live_node_url`) and its answer passed back.
//!
//! Why a proxy and not storage: a live video's playlists, init segments and the parts of its open
//! segment exist only in its ingest node's memory, and a blocking reload is answered the moment
//! that node makes the part. Forwarding keeps both exact (one extra hop on loopback or a LAN,
//! instead of a storage round trip plus a polling delay per part), and an origin node keeps no
//! state of its own: lose one and a viewer's next request lands on another.

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// Marks a request one origin passed to another, so that it is never passed on again.
pub const PROXIED_HEADER: &str = "x-ferrocast-proxied";
/// The viewer's address as the passing origin saw it, and the tag that vouches for it
/// (`PlaybackKey::viewer_tag`): the ingest node counts that viewer, not the origin.
pub const VIEWER_HEADER: &str = "x-ferrocast-viewer";
pub const VIEWER_TAG_HEADER: &str = "x-ferrocast-viewer-tag";

/// Who asked, in the headers the ingest node reads.
pub struct Viewer {
    pub address: std::net::IpAddr,
    pub tag: String,
}

/// Headers of the owner's answer that the viewer needs.
const PASSED_BACK: [header::HeaderName; 6] =
    [header::CONTENT_TYPE, header::CACHE_CONTROL, header::CONTENT_RANGE, header::ETAG, header::LAST_MODIFIED, header::ACCEPT_RANGES];

/// Asks `node_url` for `path_and_query` (as the viewer asked this node) and answers with what it
/// says; 502 when it cannot be reached (the viewer's player retries, by then perhaps elsewhere).
pub async fn forward(client: &reqwest::Client, node_url: &str, path_and_query: &str, headers: &HeaderMap, viewer: Viewer) -> Response {
    let mut request = client
        .get(format!("{node_url}{path_and_query}"))
        .header(PROXIED_HEADER, "1")
        .header(VIEWER_HEADER, viewer.address.to_string())
        .header(VIEWER_TAG_HEADER, viewer.tag);
    for name in [header::RANGE, header::USER_AGENT] {
        if let Some(value) = headers.get(&name) {
            request = request.header(name, value);
        }
    }
    let answer = match request.send().await {
        Ok(answer) => answer,
        Err(e) => {
            tracing::warn!(node = %node_url, error = %e, "the node ingesting a live video did not answer");
            return StatusCode::BAD_GATEWAY.into_response();
        }
    };
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut passed = HeaderMap::new();
    for name in PASSED_BACK {
        if let Some(value) = answer.headers().get(name.as_str()).and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok()) {
            passed.insert(name, value);
        }
    }
    match answer.bytes().await {
        Ok(bytes) => (status, passed, Body::from(bytes)).into_response(),
        Err(e) => {
            tracing::warn!(node = %node_url, error = %e, "a live answer from another node broke off");
            StatusCode::BAD_GATEWAY.into_response()
        }
    }
}
