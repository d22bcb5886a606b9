//! ferrocast-media: the transcoding ladder and the HLS playlists it feeds.
//!
//! Live feeds and uploaded files both go through one ladder plan; this crate owns that plan and the
//! playlist writer beside it. Its format logic is plain Rust with plain tests; it never opens a
//! socket or touches the database.

pub mod ladder;
pub mod playlist;
