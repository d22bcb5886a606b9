//! ferrocast-ingest: the RTMP side of Ferrocast, where streamers publish.
//!
//! It decides who may publish (one stream-key lookup through core's repositories, never through the
//! REST layer) and turns RTMP messages into media for ferrocast-media. It must never log a stream key.

pub mod flv;
pub mod session;
pub mod publish_auth;
