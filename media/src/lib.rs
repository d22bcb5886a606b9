//! ferrocast-media: the transcoding ladder, our CMAF packager and the HLS playlists it feeds.
//!
//! GStreamer does pixels; Rust does packaging. Live feeds (`live.rs`, the facade ingest talks to)
//! and uploaded files (`file_pipeline.rs`, driven by `worker.rs`) go through one ladder plan
//! (`ladder.rs`); rungs that need encoding are built into a GStreamer pipeline (`pipeline.rs`,
//! `live_pipeline.rs`) whose appsinks hand encoded frames back, while a passthrough rung and AAC
//! audio never enter GStreamer. Every frame flows as a [`events::RecordingEvent`] into one
//! recording task per video (`recording/`), which cuts CMAF segments and LL-HLS parts
//! (`package/`), stores them and lists them in the playlists (`playlist/`). Format logic is
//! plain Rust with plain tests; GStreamer is confined to the pipeline modules and `thumbnail.rs`.
//! Nothing here opens a socket.

pub mod elements;
pub mod events;
pub mod file_pipeline;
pub mod ladder;
pub mod live;
pub mod live_pipeline;
pub mod package;
pub mod pipeline;
pub mod playlist;
pub mod recording;
pub mod shedding;
pub mod thumbnail;
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
    Package(#[from] package::PackageError),
    #[error(transparent)]
    Storage(#[from] ferrocast_core::storage::StorageError),
    #[error(transparent)]
    Db(#[from] ferrocast_core::DbError),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}
