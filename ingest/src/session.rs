//! One RTMP connection as a sans-IO state machine: bytes in, [`Action`]s out.
//!
//! It runs the handshake (`rtmp::handshake`) and our chunk layer (`rtmp::chunk`), answers the
//! NetConnection/NetStream commands a publisher sends (`connect` to the live app, `createStream`,
//! `publish`, `deleteStream`), turns a `publish` into a request the caller must authorise, splits
//! aggregate messages, extends the 32-bit media clock, acknowledges received bytes and answers
//! pings. Until a publish is authorised the connection may only send small messages
//! (`max_command_bytes`): an unauthenticated peer cannot make us buffer media-sized messages.
//!
//! It never touches a socket, a clock or the database, so every behaviour is unit-tested with byte
//! vectors; the socket task in `connection.rs` only moves bytes and acts on what comes out. It
//! never panics on any input (see `tests/rtmp_fuzz.rs`) and never logs the stream name.

use bytes::Bytes;

use crate::flv::{self, MessageType, TimestampUnwrapper};
use crate::publish_auth::LIVE_APP;
use crate::rtmp::amf0::{self, Amf0Error, Amf0Value};
use crate::rtmp::chunk::{ChunkDecoder, ChunkEncoder, ChunkError, ChunkLimits, Message};
use crate::rtmp::handshake::{Handshake, HandshakeError};
use crate::rtmp::message::{self, type_id};

/// The chunk size we send with: large enough that a status message is one chunk.
const OUTGOING_CHUNK_SIZE: usize = 4096;
/// What we ask the peer to acknowledge after, and the bandwidth we announce.
const WINDOW_ACK_SIZE: u32 = 2_500_000;
/// Video and audio FourCCs (Enhanced RTMP) a publisher may send us; echoed from `fourCcList`.
const SUPPORTED_FOURCCS: [&str; 6] = ["avc1", "hvc1", "av01", "vp09", "mp4a", ".mp3"];

#[derive(Debug)]
pub enum Action {
    /// Bytes to write to the peer, in order.
    Send(Vec<u8>),
    /// The peer wants to publish: check the key, then call [`RtmpSession::accept_publish`] or
    /// [`RtmpSession::reject_publish`]. `stream_name` is the secret key (with any `?query`).
    PublishRequested { request_id: u32, stream_name: String },
    /// One FLV video or audio tag body, with its timestamp on the extended clock (ms).
    Media { kind: MediaKind, timestamp_ms: i64, payload: Bytes },
    /// `@setDataFrame onMetaData` from the publisher.
    Metadata(StreamMetadata),
    /// The publisher said it is done (`deleteStream`/`FCUnpublish`); the connection may stay open.
    PublishFinished,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaKind {
    Audio,
    Video,
}

/// What `onMetaData` says about the stream, as far as the ladder cares.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamMetadata {
    pub video_width: Option<u32>,
    pub video_height: Option<u32>,
    pub video_frame_rate: Option<f32>,
    pub video_bitrate_kbps: Option<u32>,
    pub encoder: Option<String>,
}

impl StreamMetadata {
    fn from_amf(object: &Amf0Value) -> Self {
        // Negative, NaN or absurd numbers from a publisher become "not said".
        let whole = |name: &str| {
            object
                .get(name)
                .and_then(Amf0Value::as_number)
                .filter(|n| n.is_finite() && *n > 0.0 && *n < f64::from(u32::MAX))
                .map(|n| n as u32)
        };
        Self {
            video_width: whole("width"),
            video_height: whole("height"),
            video_frame_rate: object
                .get("framerate")
                .or_else(|| object.get("videoframerate"))
                .and_then(Amf0Value::as_number)
                .filter(|n| n.is_finite() && *n > 0.0 && *n <= 1000.0)
                .map(|n| n as f32),
            video_bitrate_kbps: whole("videodatarate"),
            encoder: object.get("encoder").and_then(Amf0Value::as_str).map(|s| s.chars().take(256).collect()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
    #[error(transparent)]
    Chunk(#[from] ChunkError),
    #[error("malformed {what}")]
    Amf0 {
        what: &'static str,
        #[source]
        source: Amf0Error,
    },
    #[error("connect to application {0:?} refused (only {LIVE_APP:?} is served)")]
    UnknownApp(String),
    #[error("{0} before connect")]
    NotConnected(&'static str),
    #[error("RTMP playback is not served (play the HLS stream instead)")]
    PlaybackRefused,
    #[error("publish without a stream name")]
    MissingStreamName,
    #[error("aggregate message: {0}")]
    Aggregate(#[from] flv::FlvError),
}

#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    /// Largest message once a publish is authorised.
    pub max_message_bytes: usize,
    /// Partial messages plus unparsed input, once a publish is authorised.
    pub max_buffered_bytes: usize,
    /// Chunk streams one connection may use.
    pub max_chunk_streams: usize,
    /// Largest message (and a quarter of the buffer) before a publish is authorised.
    pub max_command_bytes: usize,
}

impl SessionLimits {
    fn before_publish(&self) -> ChunkLimits {
        ChunkLimits {
            max_message_bytes: self.max_command_bytes,
            max_buffered_bytes: self.max_command_bytes * 4,
            max_chunk_streams: self.max_chunk_streams,
        }
    }

    fn publishing(&self) -> ChunkLimits {
        ChunkLimits {
            max_message_bytes: self.max_message_bytes,
            max_buffered_bytes: self.max_buffered_bytes.max(self.max_message_bytes),
            max_chunk_streams: self.max_chunk_streams,
        }
    }
}

/// A publish waiting for the caller's decision.
#[derive(Debug, Clone, Copy)]
struct PendingPublish {
    request_id: u32,
    stream_id: u32,
}

pub struct RtmpSession {
    handshake: Option<Handshake>,
    decoder: ChunkDecoder,
    encoder: ChunkEncoder,
    limits: SessionLimits,
    connected: bool,
    next_stream_id: u32,
    next_request_id: u32,
    pending: Option<PendingPublish>,
    /// The message stream id being published on.
    publishing: Option<u32>,
    clock: TimestampUnwrapper,
    /// The peer's Window Acknowledgement Size, and the byte count we last acknowledged.
    peer_window: Option<u32>,
    acknowledged: u64,
}

impl RtmpSession {
    pub fn new(limits: SessionLimits) -> Self {
        Self {
            handshake: Some(Handshake::new()),
            decoder: ChunkDecoder::new(limits.before_publish()),
            encoder: ChunkEncoder::new(),
            limits,
            connected: false,
            next_stream_id: 1,
            next_request_id: 1,
            pending: None,
            publishing: None,
            clock: TimestampUnwrapper::new(),
            peer_window: None,
            acknowledged: 0,
        }
    }

    pub fn is_handshaking(&self) -> bool {
        self.handshake.is_some()
    }

    pub fn is_publishing(&self) -> bool {
        self.publishing.is_some()
    }

    /// Bytes held for messages not yet complete.
    pub fn buffered_bytes(&self) -> usize {
        self.decoder.buffered_bytes()
    }

    /// Feeds bytes read from the socket.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<Action>, SessionError> {
        let mut actions = Vec::new();
        let remaining;
        let input = match &mut self.handshake {
            Some(handshake) => {
                let progress = handshake.feed(bytes)?;
                push_send(&mut actions, progress.send);
                let Some(rest) = progress.done else { return Ok(actions) };
                self.handshake = None;
                remaining = rest;
                &remaining[..]
            }
            None => bytes,
        };
        self.decoder.push(input);
        self.read_messages(&mut actions)?;
        Ok(actions)
    }

    /// Acts on every complete message, until a publish waits for the caller's decision: what
    /// follows a `publish` (a pipelining relay sends media at once) is read only once the publish
    /// is accepted, under the limits that apply then, so nothing is dropped or refused for arriving
    /// early.
    fn read_messages(&mut self, actions: &mut Vec<Action>) -> Result<(), SessionError> {
        while self.pending.is_none() {
            let Some(message) = self.decoder.next_message()? else { break };
            self.handle_message(message, actions)?;
        }
        self.acknowledge(actions);
        Ok(())
    }

    /// Accepts the publish the caller authorised; the peer is told it may start sending, and may
    /// now send media-sized messages.
    pub fn accept_publish(&mut self, request_id: u32) -> Result<Vec<Action>, SessionError> {
        let Some(pending) = self.pending.filter(|p| p.request_id == request_id) else { return Ok(Vec::new()) };
        self.pending = None;
        self.publishing = Some(pending.stream_id);
        self.decoder.set_limits(self.limits.publishing());
        let mut actions = Vec::new();
        self.send(&mut actions, message::user_control(message::STREAM_BEGIN, &pending.stream_id.to_be_bytes()));
        let status = status_object("status", "NetStream.Publish.Start", "Publishing.");
        self.send(
            &mut actions,
            message::command(pending.stream_id, &[Amf0Value::string("onStatus"), Amf0Value::Number(0.0), Amf0Value::Null, status]),
        );
        self.read_messages(&mut actions)?;
        Ok(actions)
    }

    /// Refuses the publish. The caller closes the connection after sending what this returns (or,
    /// when it keeps the connection, acts on the rest as on any feed).
    pub fn reject_publish(&mut self, request_id: u32, description: &str) -> Result<Vec<Action>, SessionError> {
        let Some(pending) = self.pending.filter(|p| p.request_id == request_id) else { return Ok(Vec::new()) };
        self.pending = None;
        let mut actions = Vec::new();
        let status = status_object("error", "NetStream.Publish.BadName", description);
        self.send(
            &mut actions,
            message::command(pending.stream_id, &[Amf0Value::string("onStatus"), Amf0Value::Number(0.0), Amf0Value::Null, status]),
        );
        self.read_messages(&mut actions)?;
        Ok(actions)
    }

    fn send(&mut self, actions: &mut Vec<Action>, message: Message) {
        let mut bytes = Vec::new();
        self.encoder.encode(&message, &mut bytes);
        push_send(actions, bytes);
    }

    /// Acknowledges every Window Acknowledgement Size bytes received, as the spec asks.
    fn acknowledge(&mut self, actions: &mut Vec<Action>) {
        let Some(window) = self.peer_window.filter(|w| *w > 0) else { return };
        let total = self.decoder.total_received();
        if total - self.acknowledged >= u64::from(window) {
            self.acknowledged = total;
            // The sequence number wraps at 32 bits, like the byte count it reports.
            self.send(actions, message::acknowledgement(total as u32));
        }
    }

    fn handle_message(&mut self, message: Message, actions: &mut Vec<Action>) -> Result<(), SessionError> {
        match message.type_id {
            type_id::VIDEO | type_id::AUDIO if self.publishing.is_some() => {
                let kind = if message.type_id == type_id::VIDEO { MediaKind::Video } else { MediaKind::Audio };
                let timestamp_ms = self.clock.extend(message.timestamp);
                actions.push(Action::Media { kind, timestamp_ms, payload: message.payload });
            }
            type_id::AGGREGATE if self.publishing.is_some() => {
                for sub in flv::split_aggregate(&message.payload, message.timestamp)? {
                    let kind = match sub.message_type {
                        MessageType::Audio => MediaKind::Audio,
                        MessageType::Video => MediaKind::Video,
                        _ => continue,
                    };
                    let timestamp_ms = self.clock.extend(sub.timestamp_ms);
                    actions.push(Action::Media { kind, timestamp_ms, payload: message.payload.slice_ref(sub.payload) });
                }
            }
            type_id::COMMAND_AMF0 => self.handle_command(&message.payload, message.stream_id, actions)?,
            // An AMF3 command starts with one format byte, then AMF0 values.
            type_id::COMMAND_AMF3 => self.handle_command(message.payload.get(1..).unwrap_or_default(), message.stream_id, actions)?,
            type_id::DATA_AMF0 => self.handle_data(&message.payload, actions)?,
            type_id::DATA_AMF3 => self.handle_data(message.payload.get(1..).unwrap_or_default(), actions)?,
            type_id::USER_CONTROL => {
                if let Some(timestamp) = message::ping_request(&message.payload) {
                    self.send(actions, message::user_control(message::PING_RESPONSE, &timestamp));
                }
            }
            type_id::WINDOW_ACK_SIZE => self.peer_window = message::read_u32(&message.payload),
            // Acknowledgements, Set Peer Bandwidth, shared objects, and media on a stream that is
            // not publishing mean nothing to us; Set Chunk Size and Abort the chunk layer applied.
            _ => {}
        }
        Ok(())
    }

    fn handle_data(&mut self, payload: &[u8], actions: &mut Vec<Action>) -> Result<(), SessionError> {
        let values = amf0::decode_all(payload).map_err(|source| SessionError::Amf0 { what: "data message", source })?;
        let mut values = values.iter();
        let mut name = values.next().and_then(Amf0Value::as_str);
        if name == Some("@setDataFrame") {
            name = values.next().and_then(Amf0Value::as_str);
        }
        if name == Some("onMetaData") {
            if let Some(object) = values.next() {
                actions.push(Action::Metadata(StreamMetadata::from_amf(object)));
            }
        }
        Ok(())
    }

    fn handle_command(&mut self, payload: &[u8], stream_id: u32, actions: &mut Vec<Action>) -> Result<(), SessionError> {
        let values = amf0::decode_all(payload).map_err(|source| SessionError::Amf0 { what: "command", source })?;
        let name = values.first().and_then(Amf0Value::as_str).unwrap_or_default();
        let transaction = values.get(1).and_then(Amf0Value::as_number).unwrap_or(0.0);
        let command_object = values.get(2).unwrap_or(&Amf0Value::Null);
        let arguments = values.get(3..).unwrap_or_default();
        match name {
            "connect" => self.connect(transaction, command_object, actions),
            "createStream" => {
                self.require_connected("createStream")?;
                let id = self.next_stream_id;
                // Stream ids stay small; a client creating billions of streams just reuses them.
                self.next_stream_id = self.next_stream_id % 1024 + 1;
                let reply =
                    [Amf0Value::string("_result"), Amf0Value::Number(transaction), Amf0Value::Null, Amf0Value::Number(f64::from(id))];
                self.send(actions, message::command(0, &reply));
                Ok(())
            }
            "publish" => {
                self.require_connected("publish")?;
                let stream_name = arguments.first().and_then(Amf0Value::as_str).ok_or(SessionError::MissingStreamName)?;
                let request_id = self.next_request_id;
                self.next_request_id = self.next_request_id.wrapping_add(1);
                self.pending = Some(PendingPublish { request_id, stream_id });
                actions.push(Action::PublishRequested { request_id, stream_name: stream_name.to_owned() });
                Ok(())
            }
            "FCUnpublish" | "deleteStream" | "closeStream" => {
                if self.publishing.take().is_some() {
                    self.decoder.set_limits(self.limits.before_publish());
                    actions.push(Action::PublishFinished);
                }
                Ok(())
            }
            "play" | "play2" => Err(SessionError::PlaybackRefused),
            // releaseStream, FCPublish, getStreamLength, _checkbw, …: publishers do not wait for
            // answers to them.
            _ => Ok(()),
        }
    }

    fn require_connected(&self, command: &'static str) -> Result<(), SessionError> {
        if self.connected {
            Ok(())
        } else {
            Err(SessionError::NotConnected(command))
        }
    }

    fn connect(&mut self, transaction: f64, command_object: &Amf0Value, actions: &mut Vec<Action>) -> Result<(), SessionError> {
        let app = command_object.get("app").and_then(Amf0Value::as_str).unwrap_or_default();
        // `live/` and `live?token` name the same application.
        let app_name = app.split('?').next().unwrap_or_default().trim_end_matches('/');
        if app_name != LIVE_APP {
            return Err(SessionError::UnknownApp(app.chars().take(64).collect()));
        }
        self.connected = true;
        self.send(actions, message::window_ack_size(WINDOW_ACK_SIZE));
        self.send(actions, message::set_peer_bandwidth(WINDOW_ACK_SIZE));
        self.send(actions, message::set_chunk_size(OUTGOING_CHUNK_SIZE as u32));
        self.encoder.set_chunk_size(OUTGOING_CHUNK_SIZE);

        let mut properties =
            vec![("fmsVer".to_owned(), Amf0Value::string("FMS/3,0,1,123")), ("capabilities".to_owned(), Amf0Value::Number(31.0))];
        // Enhanced RTMP: the client lists the FourCCs it may send; we answer with those we take.
        if let Some(Amf0Value::StrictArray(offered)) = command_object.get("fourCcList") {
            let accepted: Vec<Amf0Value> = offered
                .iter()
                .filter_map(Amf0Value::as_str)
                .filter(|f| SUPPORTED_FOURCCS.contains(f) || *f == "*")
                .map(Amf0Value::string)
                .collect();
            properties.push(("fourCcList".to_owned(), Amf0Value::StrictArray(accepted)));
        }
        let encoding = command_object.get("objectEncoding").and_then(Amf0Value::as_number).unwrap_or(0.0);
        let Amf0Value::Object(mut information) = status_object("status", "NetConnection.Connect.Success", "Connection succeeded.") else {
            return Ok(());
        };
        information.push(("objectEncoding".to_owned(), Amf0Value::Number(encoding)));
        let reply =
            [Amf0Value::string("_result"), Amf0Value::Number(transaction), Amf0Value::Object(properties), Amf0Value::Object(information)];
        self.send(actions, message::command(0, &reply));
        Ok(())
    }
}

fn status_object(level: &str, code: &str, description: &str) -> Amf0Value {
    Amf0Value::object([
        ("level", Amf0Value::string(level)),
        ("code", Amf0Value::string(code)),
        ("description", Amf0Value::string(description)),
    ])
}

fn push_send(actions: &mut Vec<Action>, bytes: Vec<u8>) {
    if bytes.is_empty() {
        return;
    }
    // Coalesce consecutive writes into one.
    if let Some(Action::Send(previous)) = actions.last_mut() {
        previous.extend_from_slice(&bytes);
    } else {
        actions.push(Action::Send(bytes));
    }
}

#[cfg(test)]
mod tests;
