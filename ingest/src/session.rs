//! One RTMP connection as a sans-IO state machine: bytes in, [`Action`]s out.
//!
//! It runs the handshake and rml_rtmp's `ServerSession`, accepts `connect` to the live app, turns a
//! `publish` into a request the caller must authorise, splits aggregate messages, extends the 32-bit
//! media clock, and enforces the per-connection message-size limit. It never touches a socket, a
//! clock or the database, so every behaviour is unit-tested with byte vectors; the socket task in
//! `connection.rs` only moves bytes and acts on what comes out. It never logs the stream name.

use bytes::Bytes;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{ServerSession, ServerSessionConfig, ServerSessionEvent, ServerSessionResult, StreamMetadata};

use crate::flv::{self, MessageType, TimestampUnwrapper};
use crate::publish_auth::LIVE_APP;

/// RTMP message type of an aggregate message: several FLV tags in one message.
const AGGREGATE_MESSAGE: u8 = 22;

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

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("RTMP handshake failed: {0}")]
    Handshake(String),
    #[error("RTMP protocol error: {0}")]
    Protocol(String),
    #[error("connect to application {0:?} refused (only {LIVE_APP:?} is served)")]
    UnknownApp(String),
    #[error("a message of {size} bytes is over the {limit}-byte limit")]
    MessageTooLarge { size: usize, limit: usize },
    #[error("{0} bytes received without a complete message")]
    NoProgress(usize),
    #[error("aggregate message: {0}")]
    Aggregate(#[from] flv::FlvError),
}

pub struct SessionLimits {
    pub max_message_bytes: usize,
}

enum State {
    Handshaking(Box<Handshake>),
    Active(Box<ServerSession>),
}

pub struct RtmpSession {
    state: State,
    limits: SessionLimits,
    /// Bytes fed since the last message produced anything: bounds what rml_rtmp may buffer for a
    /// message that never completes (a giant chunk size, a lying length).
    bytes_without_progress: usize,
    clock: TimestampUnwrapper,
    publishing: bool,
}

impl RtmpSession {
    pub fn new(limits: SessionLimits) -> Self {
        Self {
            state: State::Handshaking(Box::new(Handshake::new(PeerType::Server))),
            limits,
            bytes_without_progress: 0,
            clock: TimestampUnwrapper::new(),
            publishing: false,
        }
    }

    pub fn is_handshaking(&self) -> bool {
        matches!(self.state, State::Handshaking(_))
    }

    pub fn is_publishing(&self) -> bool {
        self.publishing
    }

    /// Feeds bytes read from the socket.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<Action>, SessionError> {
        let mut actions = Vec::new();
        let input = match &mut self.state {
            State::Handshaking(handshake) => match handshake.process_bytes(bytes).map_err(|e| SessionError::Handshake(format!("{e:?}")))? {
                HandshakeProcessResult::InProgress { response_bytes } => {
                    push_send(&mut actions, response_bytes);
                    return Ok(actions);
                }
                HandshakeProcessResult::Completed { response_bytes, remaining_bytes } => {
                    push_send(&mut actions, response_bytes);
                    let (session, results) =
                        ServerSession::new(ServerSessionConfig::new()).map_err(|e| SessionError::Protocol(e.to_string()))?;
                    self.state = State::Active(Box::new(session));
                    self.handle_results(results, &mut actions)?;
                    remaining_bytes
                }
            },
            State::Active(_) => bytes.to_vec(),
        };
        if input.is_empty() {
            return Ok(actions);
        }
        let State::Active(session) = &mut self.state else { unreachable!("active after the handshake") };
        // rml_rtmp 0.8 can panic on malformed chunk streams (an integer underflow in its chunk
        // deserializer). A panic here must end this connection only, as any other protocol error.
        let results = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| session.handle_input(&input)))
            .map_err(|_| SessionError::Protocol("malformed chunk stream".into()))?
            .map_err(|e| SessionError::Protocol(e.to_string()))?;
        if results.is_empty() {
            self.bytes_without_progress += input.len();
            // A whole maximal message plus chunk headers may arrive before it completes.
            let allowance = self.limits.max_message_bytes + self.limits.max_message_bytes / 8 + 4096;
            if self.bytes_without_progress > allowance {
                return Err(SessionError::NoProgress(self.bytes_without_progress));
            }
        } else {
            self.bytes_without_progress = 0;
        }
        self.handle_results(results, &mut actions)?;
        Ok(actions)
    }

    /// Accepts the publish the caller authorised; the peer is told it may start sending.
    pub fn accept_publish(&mut self, request_id: u32) -> Result<Vec<Action>, SessionError> {
        let results = self.session()?.accept_request(request_id).map_err(|e| SessionError::Protocol(e.to_string()))?;
        self.publishing = true;
        let mut actions = Vec::new();
        self.handle_results(results, &mut actions)?;
        Ok(actions)
    }

    /// Refuses the publish; the caller closes the connection after sending what this returns.
    pub fn reject_publish(&mut self, request_id: u32, description: &str) -> Result<Vec<Action>, SessionError> {
        let results = self
            .session()?
            .reject_request(request_id, "NetStream.Publish.BadName", description)
            .map_err(|e| SessionError::Protocol(e.to_string()))?;
        let mut actions = Vec::new();
        self.handle_results(results, &mut actions)?;
        Ok(actions)
    }

    fn session(&mut self) -> Result<&mut ServerSession, SessionError> {
        match &mut self.state {
            State::Active(session) => Ok(session),
            State::Handshaking(_) => Err(SessionError::Protocol("request before the handshake completed".into())),
        }
    }

    fn handle_results(&mut self, results: Vec<ServerSessionResult>, actions: &mut Vec<Action>) -> Result<(), SessionError> {
        for result in results {
            match result {
                ServerSessionResult::OutboundResponse(packet) => push_send(actions, packet.bytes),
                ServerSessionResult::RaisedEvent(event) => self.handle_event(event, actions)?,
                ServerSessionResult::UnhandleableMessageReceived(payload) if payload.type_id == AGGREGATE_MESSAGE => {
                    self.check_size(payload.data.len())?;
                    for sub in flv::split_aggregate(&payload.data, payload.timestamp.value)? {
                        let kind = match sub.message_type {
                            MessageType::Audio => MediaKind::Audio,
                            MessageType::Video => MediaKind::Video,
                            _ => continue,
                        };
                        let timestamp_ms = self.clock.extend(sub.timestamp_ms);
                        actions.push(Action::Media { kind, timestamp_ms, payload: payload.data.slice_ref(sub.payload) });
                    }
                }
                // Other message types (shared objects, AMF3 commands) mean nothing to a publisher.
                ServerSessionResult::UnhandleableMessageReceived(_) => {}
            }
        }
        Ok(())
    }

    fn check_size(&self, size: usize) -> Result<(), SessionError> {
        if size > self.limits.max_message_bytes {
            return Err(SessionError::MessageTooLarge { size, limit: self.limits.max_message_bytes });
        }
        Ok(())
    }

    fn handle_event(&mut self, event: ServerSessionEvent, actions: &mut Vec<Action>) -> Result<(), SessionError> {
        match event {
            ServerSessionEvent::ConnectionRequested { request_id, app_name } => {
                if app_name.trim_end_matches('/') != LIVE_APP {
                    return Err(SessionError::UnknownApp(app_name));
                }
                let results = self.session()?.accept_request(request_id).map_err(|e| SessionError::Protocol(e.to_string()))?;
                self.handle_results(results, actions)?;
            }
            ServerSessionEvent::PublishStreamRequested { request_id, stream_key, .. } => {
                actions.push(Action::PublishRequested { request_id, stream_name: stream_key });
            }
            ServerSessionEvent::PublishStreamFinished { .. } => {
                self.publishing = false;
                actions.push(Action::PublishFinished);
            }
            ServerSessionEvent::StreamMetadataChanged { metadata, .. } => actions.push(Action::Metadata(metadata)),
            ServerSessionEvent::VideoDataReceived { data, timestamp, .. } => {
                self.check_size(data.len())?;
                let timestamp_ms = self.clock.extend(timestamp.value);
                actions.push(Action::Media { kind: MediaKind::Video, timestamp_ms, payload: data });
            }
            ServerSessionEvent::AudioDataReceived { data, timestamp, .. } => {
                self.check_size(data.len())?;
                let timestamp_ms = self.clock.extend(timestamp.value);
                actions.push(Action::Media { kind: MediaKind::Audio, timestamp_ms, payload: data });
            }
            // releaseStream, FCPublish, FCUnpublish, acknowledgements, pings: nothing to do, and
            // publishers do not wait for answers to them.
            _ => {}
        }
        Ok(())
    }
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
mod tests {
    use super::*;
    use rml_rtmp::sessions::{ClientSession, ClientSessionConfig, ClientSessionEvent, ClientSessionResult, PublishRequestType};
    use rml_rtmp::time::RtmpTimestamp;

    const LIMITS: SessionLimits = SessionLimits { max_message_bytes: 64 * 1024 };

    /// A publisher (rml_rtmp's client) wired to our session through byte vectors.
    struct Peer {
        client: ClientSession,
        server: RtmpSession,
        events: Vec<ClientSessionEvent>,
        /// Everything but `Send` the server produced, in order.
        server_actions: Vec<Action>,
    }

    impl Peer {
        /// Handshake both ways; returns the peer and the server actions seen so far.
        fn connected(limits: SessionLimits) -> (Peer, Vec<Action>) {
            let mut server = RtmpSession::new(limits);
            let mut client_handshake = Handshake::new(PeerType::Client);
            let c0c1 = client_handshake.generate_outbound_p0_and_p1().expect("c0c1");
            let mut to_client = sent(server.feed(&c0c1).expect("s0s1s2"));
            let (c2, leftover) = match client_handshake.process_bytes(&to_client).expect("client handshake") {
                HandshakeProcessResult::Completed { response_bytes, remaining_bytes } => (response_bytes, remaining_bytes),
                HandshakeProcessResult::InProgress { .. } => panic!("client handshake should complete on s0s1s2"),
            };
            let mut actions = server.feed(&c2).expect("c2");
            assert!(!server.is_handshaking());
            let (client, initial) = ClientSession::new(ClientSessionConfig::new()).expect("client session");
            to_client = leftover;
            to_client.extend(sent_ref(&actions));
            let mut peer = Peer { client, server, events: Vec::new(), server_actions: Vec::new() };
            actions.retain(|a| !matches!(a, Action::Send(_)));
            peer.deliver_to_client(&to_client);
            actions.extend(peer.send_results(initial));
            (peer, actions)
        }

        fn deliver_to_client(&mut self, bytes: &[u8]) {
            let results = self.client.handle_input(bytes).expect("client input");
            for result in results {
                match result {
                    ClientSessionResult::OutboundResponse(packet) => self.feed_server(&packet.bytes),
                    ClientSessionResult::RaisedEvent(event) => self.events.push(event),
                    ClientSessionResult::UnhandleableMessageReceived(_) => {}
                }
            }
        }

        /// Feeds client output to the server, answers go back to the client; returns the server's
        /// non-send actions.
        fn feed_server(&mut self, bytes: &[u8]) {
            let out = self.server.feed(bytes).expect("server input");
            let back = sent_ref(&out);
            self.server_actions.extend(out.into_iter().filter(|a| !matches!(a, Action::Send(_))));
            if !back.is_empty() {
                self.deliver_to_client(&back);
            }
        }

        /// Feeds client output to the server (answers go back to the client, and so on until both
        /// are quiet); returns the server's non-send actions.
        fn send_results(&mut self, results: Vec<ClientSessionResult>) -> Vec<Action> {
            for result in results {
                if let ClientSessionResult::OutboundResponse(packet) = result {
                    self.feed_server(&packet.bytes);
                }
            }
            std::mem::take(&mut self.server_actions)
        }

        fn send(&mut self, result: ClientSessionResult) -> Vec<Action> {
            self.send_results(vec![result])
        }

        fn send_server_actions(&mut self, actions: Vec<Action>) {
            let bytes = sent_ref(&actions);
            self.deliver_to_client(&bytes);
        }
    }

    fn sent(actions: Vec<Action>) -> Vec<u8> {
        sent_ref(&actions)
    }

    fn sent_ref(actions: &[Action]) -> Vec<u8> {
        actions.iter().filter_map(|a| if let Action::Send(b) = a { Some(b.clone()) } else { None }).flatten().collect()
    }

    fn publish_request(peer: &mut Peer, key: &str) -> (u32, String) {
        let connect = peer.client.request_connection("live".into()).expect("connect");
        peer.send(connect);
        assert!(peer.events.contains(&ClientSessionEvent::ConnectionRequestAccepted), "{:?}", peer.events);
        let publish = peer.client.request_publishing(key.into(), PublishRequestType::Live).expect("publish");
        let actions = peer.send(publish);
        match actions.as_slice() {
            [Action::PublishRequested { request_id, stream_name }] => (*request_id, stream_name.clone()),
            other => panic!("expected one publish request, got {other:?}"),
        }
    }

    #[test]
    fn connect_publish_accept_and_media_flow() {
        let (mut peer, _) = Peer::connected(LIMITS);
        let (request_id, name) = publish_request(&mut peer, "live_abc?bw=6000");
        assert_eq!(name, "live_abc?bw=6000");
        let accepted = peer.server.accept_publish(request_id).expect("accept");
        peer.send_server_actions(accepted);
        assert!(peer.events.contains(&ClientSessionEvent::PublishRequestAccepted));
        assert!(peer.server.is_publishing());

        let video =
            peer.client.publish_video_data(Bytes::from_static(&[0x17, 1, 0, 0, 0, 9, 9]), RtmpTimestamp::new(40), false).expect("video");
        let actions = peer.send(video);
        match actions.as_slice() {
            [Action::Media { kind: MediaKind::Video, timestamp_ms: 40, payload }] => assert_eq!(&payload[..], &[0x17, 1, 0, 0, 0, 9, 9]),
            other => panic!("expected the video tag, got {other:?}"),
        }
        let audio = peer.client.publish_audio_data(Bytes::from_static(&[0xaf, 1, 7]), RtmpTimestamp::new(23), false).expect("audio");
        assert!(matches!(peer.send(audio).as_slice(), [Action::Media { kind: MediaKind::Audio, timestamp_ms: 23, .. }]));

        let stop = peer.client.stop_publishing().expect("stop");
        let actions = peer.send_results(stop);
        assert!(actions.iter().any(|a| matches!(a, Action::PublishFinished)), "{actions:?}");
    }

    #[test]
    fn a_rejected_publish_tells_the_client() {
        let (mut peer, _) = Peer::connected(LIMITS);
        let (request_id, _) = publish_request(&mut peer, "wrong");
        let rejected = peer.server.reject_publish(request_id, "unknown stream key").expect("reject");
        assert!(!sent_ref(&rejected).is_empty(), "the refusal is sent to the client");
        assert!(!peer.server.is_publishing());
    }

    #[test]
    fn other_apps_are_refused() {
        let (mut peer, _) = Peer::connected(LIMITS);
        let connect = peer.client.request_connection("vod".into()).expect("connect");
        let ClientSessionResult::OutboundResponse(packet) = connect else { panic!("packet") };
        assert!(matches!(peer.server.feed(&packet.bytes), Err(SessionError::UnknownApp(app)) if app == "vod"));
    }

    #[test]
    fn oversized_messages_are_refused() {
        let (mut peer, _) = Peer::connected(SessionLimits { max_message_bytes: 1000 });
        let (request_id, _) = publish_request(&mut peer, "key");
        let accepted = peer.server.accept_publish(request_id).expect("accept");
        peer.send_server_actions(accepted);
        let big = peer.client.publish_video_data(Bytes::from(vec![0x17; 5000]), RtmpTimestamp::new(0), false).expect("video");
        let ClientSessionResult::OutboundResponse(packet) = big else { panic!("packet") };
        let err = peer.server.feed(&packet.bytes).expect_err("too large");
        assert!(matches!(err, SessionError::MessageTooLarge { size: 5000, limit: 1000 }), "{err}");
    }

    #[test]
    fn garbage_fails_the_handshake_and_a_stalled_message_is_cut_off() {
        let mut server = RtmpSession::new(LIMITS);
        // Version byte 3 is RTMP; anything else is not.
        let mut garbage = vec![0x47u8; 1537];
        garbage[0] = 0x47;
        assert!(server.feed(&garbage).is_err());

        let (mut peer, _) = Peer::connected(SessionLimits { max_message_bytes: 1000 });
        // A giant chunk size, then a header announcing a 16 MB video message, then endless payload.
        let mut header = vec![0x02, 0, 0, 0, 0, 0, 4, 0x01, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff];
        header.extend([0x05, 0, 0, 0, 0xff, 0xff, 0xff, 0x09, 1, 0, 0, 0]);
        header.extend(vec![0u8; 100]);
        let mut result = peer.server.feed(&header);
        let mut fed = header.len();
        while result.is_ok() && fed < 100_000 {
            result = peer.server.feed(&[0u8; 1000]);
            fed += 1000;
        }
        assert!(matches!(result, Err(SessionError::NoProgress(_))), "cut off after {fed} bytes: {result:?}");
    }

    #[test]
    fn aggregate_messages_are_split_into_media() {
        let (mut peer, _) = Peer::connected(LIMITS);
        let (request_id, _) = publish_request(&mut peer, "key");
        let accepted = peer.server.accept_publish(request_id).expect("accept");
        peer.send_server_actions(accepted);
        // Two FLV tags (video at 1000 ms, audio at 1020 ms) inside one aggregate message at 5000 ms.
        let tag = |kind: u8, ts: u32, body: &[u8]| {
            let mut t = vec![kind];
            t.extend(&(body.len() as u32).to_be_bytes()[1..]);
            t.extend(&ts.to_be_bytes()[1..]);
            t.push((ts >> 24) as u8);
            t.extend([0, 0, 0]);
            t.extend(body);
            t.extend((11 + body.len() as u32).to_be_bytes());
            t
        };
        let mut body = tag(9, 1000, &[0x27, 1, 0, 0, 0, 5]);
        body.extend(tag(8, 1020, &[0xaf, 1, 6]));
        // Type 0 chunk header on chunk stream 6, message type 22, stream id 1.
        let mut chunk = vec![0x06];
        chunk.extend(&5000u32.to_be_bytes()[1..]);
        chunk.extend(&(body.len() as u32).to_be_bytes()[1..]);
        chunk.push(22);
        chunk.extend(1u32.to_le_bytes());
        chunk.extend(&body);
        let actions = peer.server.feed(&chunk).expect("aggregate");
        let media: Vec<(MediaKind, i64)> = actions
            .iter()
            .filter_map(|a| if let Action::Media { kind, timestamp_ms, .. } = a { Some((*kind, *timestamp_ms)) } else { None })
            .collect();
        assert_eq!(media, vec![(MediaKind::Video, 5000), (MediaKind::Audio, 5020)]);
    }
}
