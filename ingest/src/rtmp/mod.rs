//! RTMP below the session: the handshake, the chunk stream, message types and AMF0.
//!
//! Each is sans-IO and pure: bytes in, values out, every limit explicit, no panic on any input.
//! `session.rs` puts them together into one publisher's conversation; the socket task in
//! `connection.rs` only moves bytes. The encoders here are also what the tests' RTMP publisher
//! uses, so every byte we read is checked against bytes we can write.

pub mod amf0;
pub mod chunk;
pub mod client;
pub mod handshake;
pub mod message;
