//! ferrocast-core: what every other Ferrocast crate stands on.
//!
//! Configuration types, ids, the database pool with its repositories, stream-key hashing and the
//! shutdown signal. Nothing here knows about HTTP, RTMP or GStreamer; the crates above (api, ingest,
//! origin, media) depend on this one and never the other way round.

pub mod admission;
pub mod channel_events;
pub mod config;
pub mod cores;
pub mod db;
pub mod ids;
pub mod live;
pub mod outbound;
pub mod playback_token;
pub mod restream_url;
pub mod sealed;
pub mod secret;
pub mod shutdown;
pub mod storage;
pub mod stream_key;
/// Fresh databases and temp dirs for tests; compiled only into test builds (the `testing`
/// feature), never into the server.
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod transient_buffer;
pub mod upload_parts;

pub use config::Config;
pub use db::{Db, DbError};
