//! The publishing side of RTMP, for pushing a live stream onward (restreams): handshake, `connect`,
//! `createStream`, `publish`, then media. Sans-IO like the server session: bytes in, bytes out.
//!
//! The conversation is the one OBS has with YouTube and Twitch: the plain handshake (C1 random,
//! C2 echoing S1), Set Chunk Size 4096, `connect` with `app` and `tcUrl`, `releaseStream` and
//! `FCPublish` (which some services expect and every other ignores), `createStream`, and
//! `publish(name, "live")`; live once `NetStream.Publish.Start` comes back. A refusal (`_error`,
//! an error-level `onStatus`) is an error naming what the server said. While live, Ping Requests
//! are answered and bytes acknowledged at the window the server set.

use bytes::Bytes;
use rand::RngCore;

use super::amf0::{self, Amf0Value};
use super::chunk::{ChunkDecoder, ChunkEncoder, ChunkError, ChunkLimits, Message};
use super::handshake::PACKET_SIZE;
use super::message::{self, type_id, PING_RESPONSE};

/// The chunk size we send at: what OBS uses; large frames need few chunk headers.
const CHUNK_SIZE: u32 = 4096;
/// What we announce, as encoders do, so services that log it see who is pushing.
const FLASH_VERSION: &str = "FMLE/3.0 (compatible; Ferrocast)";
/// What a server may send us: commands and control messages are small, and it sends no media.
const LIMITS: ChunkLimits = ChunkLimits { max_message_bytes: 256 * 1024, max_buffered_bytes: 1024 * 1024, max_chunk_streams: 64 };
/// Chunk streams for our media, as OBS uses them.
const AUDIO_CHUNK_STREAM: u32 = 4;
const VIDEO_CHUNK_STREAM: u32 = 6;
const DATA_CHUNK_STREAM: u32 = 5;

const CONNECT_TRANSACTION: f64 = 1.0;
const CREATE_STREAM_TRANSACTION: f64 = 4.0;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the server answered the handshake with RTMP version {0}")]
    Version(u8),
    #[error(transparent)]
    Chunk(#[from] ChunkError),
    #[error("malformed command from the server: {0}")]
    Amf(#[from] amf0::Amf0Error),
    /// The server said no; the text is its own (`NetStream.Publish.BadName: …`).
    #[error("the server refused: {0}")]
    Refused(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// C0+C1 sent, waiting for S0+S1+S2.
    Handshake,
    /// `connect` sent.
    Connecting,
    /// `createStream` sent.
    CreatingStream,
    /// `publish` sent on stream `stream_id`.
    Publishing,
    Live,
}

/// Where to publish: the `app` and `tcUrl` for `connect`, and the stream name (the remote key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishTarget {
    pub app: String,
    pub tc_url: String,
    pub stream_name: String,
}

pub struct PublishClient {
    target: PublishTarget,
    stage: Stage,
    handshake: Vec<u8>,
    decoder: ChunkDecoder,
    encoder: ChunkEncoder,
    stream_id: u32,
    /// Acknowledgement window the server asked for (0: none), and the count last acknowledged.
    window: u32,
    acknowledged: u64,
}

impl PublishClient {
    /// A client for `target`, and the bytes to send first (C0+C1).
    pub fn new(target: PublishTarget) -> (Self, Vec<u8>) {
        let mut c0c1 = vec![3u8; 1 + PACKET_SIZE];
        c0c1[1..9].fill(0);
        rand::rngs::OsRng.fill_bytes(&mut c0c1[9..]);
        let client = Self {
            target,
            stage: Stage::Handshake,
            handshake: Vec::with_capacity(1 + 2 * PACKET_SIZE),
            decoder: ChunkDecoder::new(LIMITS),
            encoder: ChunkEncoder::new(),
            stream_id: 0,
            window: 0,
            acknowledged: 0,
        };
        (client, c0c1)
    }

    pub fn is_live(&self) -> bool {
        self.stage == Stage::Live
    }

    /// Takes bytes from the server; appends what to send to `out`.
    pub fn feed(&mut self, mut bytes: &[u8], out: &mut Vec<u8>) -> Result<(), ClientError> {
        if self.stage == Stage::Handshake {
            let needed = 1 + 2 * PACKET_SIZE;
            let take = (needed - self.handshake.len()).min(bytes.len());
            self.handshake.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if let Some(&version) = self.handshake.first() {
                if version != 3 {
                    return Err(ClientError::Version(version));
                }
            }
            if self.handshake.len() < needed {
                return Ok(());
            }
            // C2 echoes S1; then straight on with the chunk stream.
            out.extend_from_slice(&self.handshake[1..1 + PACKET_SIZE]);
            self.handshake = Vec::new();
            self.send(&message::set_chunk_size(CHUNK_SIZE), out);
            self.encoder.set_chunk_size(CHUNK_SIZE as usize);
            let command_object = Amf0Value::object([
                ("app", Amf0Value::string(&self.target.app)),
                ("type", Amf0Value::string("nonprivate")),
                ("flashVer", Amf0Value::string(FLASH_VERSION)),
                ("tcUrl", Amf0Value::string(&self.target.tc_url)),
            ]);
            self.command(0, &[Amf0Value::string("connect"), Amf0Value::Number(CONNECT_TRANSACTION), command_object], out);
            self.stage = Stage::Connecting;
        }
        self.decoder.push(bytes);
        while let Some(message) = self.decoder.next_message()? {
            self.handle(message, out)?;
        }
        let received = self.decoder.total_received();
        if self.window > 0 && received - self.acknowledged >= u64::from(self.window) {
            self.acknowledged = received;
            self.send(&message::acknowledgement(received as u32), out);
        }
        Ok(())
    }

    fn handle(&mut self, message: Message, out: &mut Vec<u8>) -> Result<(), ClientError> {
        match message.type_id {
            type_id::WINDOW_ACK_SIZE => self.window = message::read_u32(&message.payload).unwrap_or(0),
            type_id::USER_CONTROL => {
                if let Some(timestamp) = message::ping_request(&message.payload) {
                    self.send(&message::user_control(PING_RESPONSE, &timestamp), out);
                }
            }
            type_id::COMMAND_AMF0 => self.command_from_server(&amf0::decode_all(&message.payload)?, out)?,
            _ => {}
        }
        Ok(())
    }

    fn command_from_server(&mut self, values: &[Amf0Value], out: &mut Vec<u8>) -> Result<(), ClientError> {
        let name = values.first().and_then(Amf0Value::as_str).unwrap_or("");
        let transaction = values.get(1).and_then(Amf0Value::as_number).unwrap_or(0.0);
        match (name, self.stage) {
            ("_result", Stage::Connecting) if transaction == CONNECT_TRANSACTION => {
                let name = Amf0Value::string(&self.target.stream_name);
                self.command(0, &[Amf0Value::string("releaseStream"), Amf0Value::Number(2.0), Amf0Value::Null, name.clone()], out);
                self.command(0, &[Amf0Value::string("FCPublish"), Amf0Value::Number(3.0), Amf0Value::Null, name], out);
                let create = [Amf0Value::string("createStream"), Amf0Value::Number(CREATE_STREAM_TRANSACTION), Amf0Value::Null];
                self.command(0, &create, out);
                self.stage = Stage::CreatingStream;
            }
            ("_result", Stage::CreatingStream) if transaction == CREATE_STREAM_TRANSACTION => {
                self.stream_id = values.get(3).and_then(Amf0Value::as_number).unwrap_or(1.0) as u32;
                let publish = [
                    Amf0Value::string("publish"),
                    Amf0Value::Number(5.0),
                    Amf0Value::Null,
                    Amf0Value::string(&self.target.stream_name),
                    Amf0Value::string("live"),
                ];
                self.command(self.stream_id, &publish, out);
                self.stage = Stage::Publishing;
            }
            ("_error", _) => return Err(ClientError::Refused(describe(values))),
            ("onStatus", _) => {
                let info = values.get(3);
                let level = info.and_then(|i| i.get("level")).and_then(Amf0Value::as_str).unwrap_or("");
                let code = info.and_then(|i| i.get("code")).and_then(Amf0Value::as_str).unwrap_or("");
                if level == "error" {
                    return Err(ClientError::Refused(describe(values)));
                }
                if code == "NetStream.Publish.Start" && self.stage == Stage::Publishing {
                    self.stage = Stage::Live;
                }
            }
            // onBWDone, onFCPublish, _result of releaseStream/FCPublish: nothing to do.
            _ => {}
        }
        Ok(())
    }

    /// `@setDataFrame onMetaData` with `properties`, as an encoder sends it before its media.
    pub fn metadata(&mut self, properties: Amf0Value, out: &mut Vec<u8>) {
        let values = [Amf0Value::string("@setDataFrame"), Amf0Value::string("onMetaData"), properties];
        let message = Message {
            chunk_stream: DATA_CHUNK_STREAM,
            timestamp: 0,
            type_id: type_id::DATA_AMF0,
            stream_id: self.stream_id,
            payload: Bytes::from(amf0::encode_all(&values)),
        };
        self.send(&message, out);
    }

    /// One audio or video message (an FLV tag body, passed through as the publisher sent it).
    pub fn media(&mut self, video: bool, timestamp_ms: u32, payload: Bytes, out: &mut Vec<u8>) {
        let (chunk_stream, type_id) = if video { (VIDEO_CHUNK_STREAM, type_id::VIDEO) } else { (AUDIO_CHUNK_STREAM, type_id::AUDIO) };
        self.send(&Message { chunk_stream, timestamp: timestamp_ms, type_id, stream_id: self.stream_id, payload }, out);
    }

    /// `FCUnpublish` and `deleteStream`: the polite end, so the service ends the broadcast at once.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        let name = Amf0Value::string(&self.target.stream_name);
        self.command(0, &[Amf0Value::string("FCUnpublish"), Amf0Value::Number(6.0), Amf0Value::Null, name], out);
        let delete =
            [Amf0Value::string("deleteStream"), Amf0Value::Number(7.0), Amf0Value::Null, Amf0Value::Number(f64::from(self.stream_id))];
        self.command(0, &delete, out);
    }

    fn command(&mut self, stream_id: u32, values: &[Amf0Value], out: &mut Vec<u8>) {
        self.send(&message::command(stream_id, values), out);
    }

    fn send(&mut self, message: &Message, out: &mut Vec<u8>) {
        self.encoder.encode(message, out);
    }
}

/// What a refusal says: the code and description of its information object, or the whole command.
fn describe(values: &[Amf0Value]) -> String {
    let info = values.get(3);
    let field = |name| info.and_then(|i| i.get(name)).and_then(Amf0Value::as_str).filter(|s| !s.is_empty());
    match (field("code"), field("description")) {
        (Some(code), Some(description)) => format!("{code}: {description}"),
        (Some(text), None) | (None, Some(text)) => text.to_string(),
        (None, None) => values.iter().map(ToString::to_string).collect::<Vec<_>>().join(" "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{Action, MediaKind, RtmpSession, SessionLimits};

    const SERVER_LIMITS: SessionLimits =
        SessionLimits { max_message_bytes: 64 * 1024, max_buffered_bytes: 256 * 1024, max_chunk_streams: 16, max_command_bytes: 4096 };

    fn target() -> PublishTarget {
        PublishTarget { app: "live".into(), tc_url: "rtmp://127.0.0.1:1935/live".into(), stream_name: "sk_remote".into() }
    }

    /// Runs the client against our own server session until neither has anything to say.
    fn converse(client: &mut PublishClient, server: &mut RtmpSession, mut to_server: Vec<u8>, accept: bool) -> Vec<Action> {
        let mut seen = Vec::new();
        while !to_server.is_empty() {
            let mut to_client = Vec::new();
            for action in server.feed(&std::mem::take(&mut to_server)).expect("server takes the client's bytes") {
                match action {
                    Action::Send(bytes) => to_client.extend_from_slice(&bytes),
                    Action::PublishRequested { request_id, stream_name } => {
                        assert_eq!(stream_name, "sk_remote");
                        let answer = if accept { server.accept_publish(request_id) } else { server.reject_publish(request_id, "bad key") };
                        for action in answer.expect("answer") {
                            if let Action::Send(bytes) = action {
                                to_client.extend_from_slice(&bytes);
                            }
                        }
                    }
                    other => seen.push(other),
                }
            }
            match client.feed(&to_client, &mut to_server) {
                Ok(()) => {}
                Err(e) => {
                    assert!(!accept, "{e}");
                    assert!(e.to_string().contains("bad key"), "{e}");
                    return seen;
                }
            }
        }
        seen
    }

    #[test]
    fn publishes_to_our_own_server_and_media_arrives_byte_for_byte() {
        let (mut client, hello) = PublishClient::new(target());
        let mut server = RtmpSession::new(SERVER_LIMITS);
        converse(&mut client, &mut server, hello, true);
        assert!(client.is_live() && server.is_publishing());

        let mut bytes = Vec::new();
        client.metadata(Amf0Value::object([("width", Amf0Value::Number(1280.0))]), &mut bytes);
        let frame = Bytes::from((0..10_000u32).map(|i| i as u8).collect::<Vec<_>>());
        client.media(true, 40, frame.clone(), &mut bytes);
        client.media(false, 41, Bytes::from_static(b"\xaf\x01audio"), &mut bytes);
        let actions = server.feed(&bytes).expect("media");
        let media: Vec<_> = actions
            .into_iter()
            .filter_map(|a| match a {
                Action::Media { kind, timestamp_ms, payload } => Some((kind, timestamp_ms, payload)),
                Action::Metadata(m) => {
                    assert_eq!(m.video_width, Some(1280));
                    None
                }
                _ => None,
            })
            .collect();
        assert_eq!(media, vec![(MediaKind::Video, 40, frame), (MediaKind::Audio, 41, Bytes::from_static(b"\xaf\x01audio"))]);
    }

    #[test]
    fn a_refused_publish_is_an_error_with_the_servers_words() {
        let (mut client, hello) = PublishClient::new(target());
        let mut server = RtmpSession::new(SERVER_LIMITS);
        converse(&mut client, &mut server, hello, false);
        assert!(!client.is_live());
    }

    #[test]
    fn pings_are_answered_and_a_wrong_version_refused() {
        let (mut client, _) = PublishClient::new(target());
        let mut reply = vec![3u8];
        reply.extend(vec![7u8; 2 * PACKET_SIZE]);
        let mut out = Vec::new();
        client.feed(&reply, &mut out).expect("handshake");
        assert_eq!(&out[..PACKET_SIZE], &[7u8; PACKET_SIZE][..], "C2 echoes S1");
        let mut ping = Vec::new();
        ChunkEncoder::new().encode(&message::user_control(message::PING_REQUEST, &[0, 0, 1, 2]), &mut ping);
        let mut answer = Vec::new();
        client.feed(&ping, &mut answer).expect("ping");
        // What the client sent after C2 (Set Chunk Size, connect), then the answer to the ping.
        let mut decoder = ChunkDecoder::new(LIMITS);
        decoder.push(&out[PACKET_SIZE..]);
        decoder.push(&answer);
        let mut sent = Vec::new();
        while let Some(message) = decoder.next_message().expect("decode") {
            sent.push(message);
        }
        let pong = sent.last().expect("messages");
        assert_eq!((pong.type_id, &pong.payload[..]), (type_id::USER_CONTROL, &[0, 7, 0, 0, 1, 2][..]));

        let (mut client, _) = PublishClient::new(target());
        assert!(matches!(client.feed(b"HTTP/1.1 400", &mut Vec::new()), Err(ClientError::Version(b'H'))));
    }
}
