//! ferrocast-origin: serves HLS playlists and segments over HTTP.
//!
//! Request paths are parsed into typed values before anything is looked up, so a path can only ever
//! name a known video's file inside the media root.

pub mod hls_path;
