//! ferrocast-media: the transcoding ladder and the HLS playlists it feeds.
//!
//! Live feeds (and, later, uploaded files) go through one ladder plan (`ladder.rs`) built into a
//! GStreamer pipeline (`live_pipeline.rs`); finished segments are moved into storage and listed by
//! the playlist writer (`playlist.rs`, driven by `recording.rs`). Format logic is plain Rust with
//! plain tests; GStreamer is confined to the pipeline module. Nothing here opens a socket.

pub mod elements;
pub mod file_pipeline;
pub mod ladder;
pub mod live_pipeline;
pub mod package;
pub mod pipeline;
pub mod playlist;
pub mod recording;
pub mod worker;

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("GStreamer could not start: {0}")]
    Init(String),
    #[error("missing GStreamer elements: {0}; install the named Debian packages")]
    MissingElements(String),
    #[error("cannot build the pipeline: {0}")]
    Build(String),
    #[error("pipeline failed: {0}")]
    Pipeline(String),
    #[error("unsupported input: {0}")]
    Unsupported(String),
    #[error(transparent)]
    Ladder(#[from] ladder::LadderError),
    #[error(transparent)]
    Playlist(#[from] playlist::PlaylistError),
    #[error(transparent)]
    Storage(#[from] ferrocast_core::storage::StorageError),
    #[error(transparent)]
    Db(#[from] ferrocast_core::DbError),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}
