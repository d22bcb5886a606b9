//! ferrocast-origin: serves HLS playlists, segments and thumbnails over HTTP at `/hls/…`.
//!
//! Request paths are parsed into typed values before anything is looked up, so a path can only ever
//! name a known video's file inside the media root. Live playlists, init segments and LL-HLS parts
//! come from this process's memory (the live registry), blocking reloads included, or, for a stream
//! ingested on another node, from that node (`proxy.rs`); finished playlists, segments and
//! thumbnails from storage. Private and
//! unlisted videos need a playback token, which is carried onto every URI of the playlists served.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, HeaderValue, Method};
use axum::routing::get;
use axum::Router;
use ferrocast_core::live::LiveRegistry;
use ferrocast_core::playback_token::PlaybackKey;
use tower_http::cors::{Any, CorsLayer};

mod blocking;
pub mod direct;
mod file_body;
pub mod hls_path;
pub mod object_cache;
mod pooled_io;
mod proxy;
pub mod range;
mod serve;
pub mod video_cache;

pub use file_body::FileBody;
pub use pooled_io::PooledIo;
pub use serve::public_immutable_cache;

#[derive(Clone)]
pub struct OriginState {
    /// The database and storage, read on the shared runtime (see `pooled_io.rs`).
    pub io: PooledIo,
    pub live: Arc<LiveRegistry>,
    pub playback: PlaybackKey,
    /// A client counts as a viewer while it fetched a playlist within this long.
    pub viewer_window: Duration,
    /// One client address counts as at most this many viewers, whatever User-Agents it sends.
    pub max_viewers_per_address: usize,
    /// `Cache-Control` of public media that never changes, with how long shared caches (CDNs,
    /// proxies) may keep it: [`public_immutable_cache`].
    pub public_immutable: HeaderValue,
    /// This node's own URL (`node_url`), so that it never proxies to itself.
    pub node_url: String,
    /// Passes live requests to the node ingesting the video (see `proxy.rs`).
    pub proxy: reqwest::Client,
    /// The video rows requests need, a second old at most (see `video_cache.rs`).
    pub videos: Arc<video_cache::VideoCache>,
    /// Finished videos' files in memory (see `object_cache.rs`).
    pub objects: Arc<object_cache::ObjectCache>,
}

/// `GET`/`HEAD /hls/{video_id}/…`, open to any origin (public media, no credentials). The
/// listener answers most of these without the router (`direct.rs`), the same way.
pub fn router(state: OriginState) -> Router {
    Router::new().route(ROUTE, get(serve::hls)).with_state(state).layer(cors())
}

/// The origin's route, as request metrics name it.
pub const ROUTE: &str = "/hls/{*path}";

/// The origin's CORS policy; [`direct::respond`] writes the same headers without the layer.
fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::HEAD, Method::OPTIONS])
        .allow_headers([header::RANGE])
        .expose_headers(EXPOSED_HEADERS)
}

/// What a player's script may read of an answer: the size and range of media, and its ETag.
const EXPOSED_HEADERS: [header::HeaderName; 3] = [header::CONTENT_LENGTH, header::CONTENT_RANGE, header::ETAG];
