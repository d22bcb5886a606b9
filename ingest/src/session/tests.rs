use super::*;
use crate::rtmp::handshake::PACKET_SIZE;

const LIMITS: SessionLimits =
    SessionLimits { max_message_bytes: 64 * 1024, max_buffered_bytes: 256 * 1024, max_chunk_streams: 16, max_command_bytes: 4096 };

/// A publisher written with our own encoder, wired to the session through byte vectors.
struct Client {
    server: RtmpSession,
    encoder: ChunkEncoder,
    decoder: ChunkDecoder,
    /// Messages the server sent, decoded.
    received: Vec<Message>,
}

impl Client {
    fn connected(limits: SessionLimits) -> Client {
        let mut server = RtmpSession::new(limits);
        let mut c0c1 = vec![3u8];
        c0c1.extend(vec![0x5a; PACKET_SIZE]);
        let answer = sent(&server.feed(&c0c1).expect("c0c1"));
        assert_eq!(answer.len(), 1 + 2 * PACKET_SIZE);
        assert!(server.feed(&vec![0; PACKET_SIZE]).expect("c2").is_empty());
        assert!(!server.is_handshaking());
        let decoder = ChunkDecoder::new(ChunkLimits { max_message_bytes: 1 << 20, max_buffered_bytes: 1 << 20, max_chunk_streams: 16 });
        Client { server, encoder: ChunkEncoder::new(), decoder, received: Vec::new() }
    }

    /// Sends raw bytes; returns the server's actions other than sends (which the client decodes).
    fn feed(&mut self, bytes: &[u8]) -> Result<Vec<Action>, SessionError> {
        let actions = self.server.feed(bytes)?;
        Ok(self.take_sends(actions))
    }

    fn take_sends(&mut self, actions: Vec<Action>) -> Vec<Action> {
        let bytes = sent(&actions);
        self.decoder.feed(&bytes, &mut self.received).expect("client decodes the server");
        actions.into_iter().filter(|a| !matches!(a, Action::Send(_))).collect()
    }

    fn send(&mut self, message: Message) -> Result<Vec<Action>, SessionError> {
        let mut bytes = Vec::new();
        self.encoder.encode(&message, &mut bytes);
        self.feed(&bytes)
    }

    fn command(&mut self, stream_id: u32, values: &[Amf0Value]) -> Result<Vec<Action>, SessionError> {
        self.send(message::command(stream_id, values))
    }

    fn connect(&mut self, app: &str) -> Result<Vec<Action>, SessionError> {
        self.command(0, &[Amf0Value::string("connect"), Amf0Value::Number(1.0), Amf0Value::object([("app", Amf0Value::string(app))])])
    }

    /// connect, createStream, publish(key): the publish request the server raised.
    fn publish_request(&mut self, key: &str) -> u32 {
        assert!(self.connect("live").expect("connect").is_empty());
        self.command(0, &[Amf0Value::string("releaseStream"), Amf0Value::Number(2.0), Amf0Value::Null, Amf0Value::string(key)])
            .expect("release");
        self.command(0, &[Amf0Value::string("createStream"), Amf0Value::Number(3.0), Amf0Value::Null]).expect("createStream");
        assert_eq!(self.last_command()[3], Amf0Value::Number(1.0), "stream id 1");
        let actions = self
            .command(
                1,
                &[Amf0Value::string("publish"), Amf0Value::Number(4.0), Amf0Value::Null, Amf0Value::string(key), Amf0Value::string("live")],
            )
            .expect("publish");
        match actions.as_slice() {
            [Action::PublishRequested { request_id, stream_name }] => {
                assert_eq!(stream_name, key);
                *request_id
            }
            other => panic!("expected one publish request, got {other:?}"),
        }
    }

    fn publishing(limits: SessionLimits) -> Client {
        let mut client = Client::connected(limits);
        let request = client.publish_request("key");
        let accepted = client.server.accept_publish(request).expect("accept");
        client.take_sends(accepted);
        assert!(client.server.is_publishing());
        client
    }

    fn last_command(&self) -> Vec<Amf0Value> {
        let message = self.received.iter().rev().find(|m| m.type_id == type_id::COMMAND_AMF0).expect("a command");
        amf0::decode_all(&message.payload).expect("AMF0")
    }

    fn last_status_code(&self) -> String {
        let values = self.last_command();
        assert_eq!(values[0], Amf0Value::string("onStatus"));
        values[3].get("code").and_then(Amf0Value::as_str).expect("code").to_owned()
    }
}

fn sent(actions: &[Action]) -> Vec<u8> {
    actions.iter().filter_map(|a| if let Action::Send(b) = a { Some(b.clone()) } else { None }).flatten().collect()
}

fn media(chunk_stream: u32, type_id: u8, timestamp: u32, payload: &[u8]) -> Message {
    Message { chunk_stream, timestamp, type_id, stream_id: 1, payload: Bytes::copy_from_slice(payload) }
}

fn media_of(actions: &[Action]) -> Vec<(MediaKind, i64, Vec<u8>)> {
    actions
        .iter()
        .filter_map(|a| {
            if let Action::Media { kind, timestamp_ms, payload } = a {
                Some((*kind, *timestamp_ms, payload.to_vec()))
            } else {
                None
            }
        })
        .collect()
}

#[test]
fn connect_publish_accept_and_media_flow() {
    let mut client = Client::connected(LIMITS);
    assert!(client.connect("live").expect("connect").is_empty());
    let result = client.last_command();
    assert_eq!(result[0], Amf0Value::string("_result"));
    assert_eq!(result[1], Amf0Value::Number(1.0));
    assert_eq!(result[3].get("code"), Some(&Amf0Value::string("NetConnection.Connect.Success")));
    // Window, bandwidth and chunk size came before the result.
    let types: Vec<u8> = client.received.iter().map(|m| m.type_id).collect();
    assert_eq!(types, vec![type_id::WINDOW_ACK_SIZE, type_id::SET_PEER_BANDWIDTH, type_id::SET_CHUNK_SIZE, type_id::COMMAND_AMF0]);

    let mut client = Client::connected(LIMITS);
    let request = client.publish_request("live_abc?bw=6000");
    let accepted = client.server.accept_publish(request).expect("accept");
    client.take_sends(accepted);
    assert_eq!(client.last_status_code(), "NetStream.Publish.Start");
    assert!(client.server.is_publishing());

    let actions = client.send(media(6, type_id::VIDEO, 40, &[0x17, 1, 0, 0, 0, 9, 9])).expect("video");
    assert_eq!(media_of(&actions), vec![(MediaKind::Video, 40, vec![0x17, 1, 0, 0, 0, 9, 9])]);
    let actions = client.send(media(4, type_id::AUDIO, 23, &[0xaf, 1, 7])).expect("audio");
    assert_eq!(media_of(&actions), vec![(MediaKind::Audio, 23, vec![0xaf, 1, 7])]);

    client
        .command(0, &[Amf0Value::string("FCUnpublish"), Amf0Value::Number(5.0), Amf0Value::Null, Amf0Value::string("key")])
        .expect("unpublish");
    let actions = client
        .command(0, &[Amf0Value::string("deleteStream"), Amf0Value::Number(6.0), Amf0Value::Null, Amf0Value::Number(1.0)])
        .expect("delete");
    // FCUnpublish already finished it; deleteStream does not finish it twice.
    assert!(actions.is_empty(), "{actions:?}");
    assert!(!client.server.is_publishing());
}

#[test]
fn a_rejected_publish_tells_the_client() {
    let mut client = Client::connected(LIMITS);
    let request = client.publish_request("wrong");
    let rejected = client.server.reject_publish(request, "unknown stream key").expect("reject");
    client.take_sends(rejected);
    assert_eq!(client.last_status_code(), "NetStream.Publish.BadName");
    assert!(!client.server.is_publishing());
    // Media after a refusal goes nowhere.
    assert!(client.send(media(6, type_id::VIDEO, 0, &[0x17])).expect("video").is_empty());
}

#[test]
fn other_apps_playback_and_commands_before_connect_are_refused() {
    let mut client = Client::connected(LIMITS);
    assert!(matches!(client.connect("vod"), Err(SessionError::UnknownApp(app)) if app == "vod"));
    let mut client = Client::connected(LIMITS);
    assert!(client.connect("live/?token=1").is_ok(), "a trailing slash and a query name the same app");
    assert!(matches!(
        client.command(0, &[Amf0Value::string("play"), Amf0Value::Number(2.0), Amf0Value::Null, Amf0Value::string("x")]),
        Err(SessionError::PlaybackRefused)
    ));
    let mut client = Client::connected(LIMITS);
    assert!(matches!(
        client.command(1, &[Amf0Value::string("publish"), Amf0Value::Number(2.0), Amf0Value::Null, Amf0Value::string("key")]),
        Err(SessionError::NotConnected("publish"))
    ));
}

#[test]
fn messages_are_small_until_the_publish_is_authorised() {
    let mut client = Client::connected(LIMITS);
    client.connect("live").expect("connect");
    let err = client.send(media(6, type_id::VIDEO, 0, &[0; 5000])).expect_err("too large before publish");
    assert!(matches!(err, SessionError::Chunk(ChunkError::MessageTooLarge { size: 5000, limit: 4096 })), "{err}");

    let mut client = Client::publishing(LIMITS);
    assert_eq!(media_of(&client.send(media(6, type_id::VIDEO, 0, &[0x17; 5000])).expect("fine once publishing")).len(), 1);
    let err = client.send(media(6, type_id::VIDEO, 0, &[0x17; 70_000])).expect_err("over the publish limit");
    assert!(matches!(err, SessionError::Chunk(ChunkError::MessageTooLarge { size: 70_000, limit: 65_536 })), "{err}");
}

#[test]
fn garbage_fails_the_handshake_and_a_lying_length_is_cut_off_at_its_header() {
    let mut server = RtmpSession::new(LIMITS);
    assert!(matches!(server.feed(&[0x47; 1537]), Err(SessionError::Handshake(_))));

    let mut client = Client::connected(LIMITS);
    // A giant chunk size, then a header announcing a 16 MB video message.
    let mut bytes = vec![0x02, 0, 0, 0, 0, 0, 4, 0x01, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff];
    bytes.extend([0x05, 0, 0, 0, 0xff, 0xff, 0xff, 0x09, 1, 0, 0, 0]);
    let err = client.feed(&bytes).expect_err("refused");
    assert!(matches!(err, SessionError::Chunk(ChunkError::MessageTooLarge { size: 0xff_ffff, .. })), "{err}");
}

#[test]
fn deeply_nested_amf_is_an_error_for_this_connection_only() {
    // The security review's process-killer: 80 KB of nested objects in `connect`. Before a
    // publish it is over the command limit; with a generous limit it fails in the AMF0 decoder.
    let mut payload = amf0::encode_all(&[Amf0Value::string("connect"), Amf0Value::Number(1.0)]);
    payload.push(0x03);
    for _ in 0..20_000 {
        payload.extend([0, 1, b'a', 0x03]);
    }
    let message = Message { chunk_stream: 3, timestamp: 0, type_id: type_id::COMMAND_AMF0, stream_id: 0, payload: Bytes::from(payload) };
    let mut client = Client::connected(LIMITS);
    assert!(matches!(client.send(message.clone()), Err(SessionError::Chunk(ChunkError::MessageTooLarge { .. }))));
    let mut client = Client::connected(SessionLimits { max_command_bytes: 1 << 20, ..LIMITS });
    let err = client.send(message).expect_err("nested too deep");
    assert!(matches!(err, SessionError::Amf0 { source: Amf0Error::TooDeep, .. }), "{err}");
}

#[test]
fn aggregate_messages_are_split_into_media() {
    let mut client = Client::publishing(LIMITS);
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
    let actions = client.send(media(6, type_id::AGGREGATE, 5000, &body)).expect("aggregate");
    let kinds: Vec<(MediaKind, i64)> = media_of(&actions).into_iter().map(|(k, t, _)| (k, t)).collect();
    assert_eq!(kinds, vec![(MediaKind::Video, 5000), (MediaKind::Audio, 5020)]);
}

#[test]
fn pings_are_answered_and_bytes_acknowledged() {
    let mut client = Client::publishing(LIMITS);
    client.send(message::user_control(message::PING_REQUEST, &[0, 0, 1, 2])).expect("ping");
    let pong = client.received.last().expect("pong");
    assert_eq!((pong.type_id, &pong.payload[..]), (type_id::USER_CONTROL, &[0, 7, 0, 0, 1, 2][..]));

    client.send(message::window_ack_size(10_000)).expect("window");
    let before = client.received.len();
    for i in 0..3 {
        client.send(media(6, type_id::VIDEO, i * 33, &[0x27; 4000])).expect("video");
    }
    let acks: Vec<u32> = client.received[before..]
        .iter()
        .filter(|m| m.type_id == type_id::ACKNOWLEDGEMENT)
        .map(|m| message::read_u32(&m.payload).expect("u32"))
        .collect();
    assert_eq!(acks.len(), 1, "one window's worth was received");
    assert!(acks[0] as u64 >= 10_000 && acks[0] as u64 == client.server.decoder.total_received(), "{acks:?}");
}

#[test]
fn metadata_comes_from_set_data_frame() {
    let mut client = Client::publishing(LIMITS);
    let meta = Amf0Value::object([
        ("width", Amf0Value::Number(1280.0)),
        ("height", Amf0Value::Number(720.0)),
        ("framerate", Amf0Value::Number(29.97)),
        ("videodatarate", Amf0Value::Number(2500.0)),
        ("encoder", Amf0Value::string("obs-output module (libobs version 30.0.0)")),
        ("audiodatarate", Amf0Value::Number(-1.0)),
    ]);
    let values = [Amf0Value::string("@setDataFrame"), Amf0Value::string("onMetaData"), meta];
    let data = Message {
        chunk_stream: 4,
        timestamp: 0,
        type_id: type_id::DATA_AMF0,
        stream_id: 1,
        payload: Bytes::from(amf0::encode_all(&values)),
    };
    let actions = client.send(data).expect("metadata");
    let [Action::Metadata(metadata)] = actions.as_slice() else { panic!("{actions:?}") };
    assert_eq!(metadata.video_width, Some(1280));
    assert_eq!(metadata.video_height, Some(720));
    assert_eq!(metadata.video_frame_rate, Some(29.97));
    assert_eq!(metadata.video_bitrate_kbps, Some(2500));
    assert_eq!(metadata.encoder.as_deref(), Some("obs-output module (libobs version 30.0.0)"));
}

#[test]
fn enhanced_rtmp_fourcc_list_is_answered_with_what_we_take() {
    let mut client = Client::connected(LIMITS);
    let offered = Amf0Value::StrictArray(["hvc1", "av01", "vvc1", "avc1"].into_iter().map(Amf0Value::string).collect());
    client
        .command(
            0,
            &[
                Amf0Value::string("connect"),
                Amf0Value::Number(1.0),
                Amf0Value::object([("app", Amf0Value::string("live")), ("fourCcList", offered)]),
            ],
        )
        .expect("connect");
    let result = client.last_command();
    let accepted = Amf0Value::StrictArray(["hvc1", "av01", "avc1"].into_iter().map(Amf0Value::string).collect());
    assert_eq!(result[2].get("fourCcList"), Some(&accepted));
}

#[test]
fn interleaved_chunks_with_small_chunk_size_arrive_frame_exact() {
    let mut client = Client::publishing(LIMITS);
    let frames: Vec<Vec<u8>> =
        (0..20u8).map(|i| std::iter::once(0x17).chain((0..(900 + 37 * usize::from(i))).map(|j| (j as u8) ^ i)).collect()).collect();
    let mut expected = Vec::new();
    let mut bytes = Vec::new();
    for (i, frame) in frames.iter().enumerate() {
        let ts = 33 * i as u32;
        let video_chunks = client.encoder.chunks(&media(6, type_id::VIDEO, ts, frame));
        expected.push((MediaKind::Video, i64::from(ts), frame.clone()));
        for (j, chunk) in video_chunks.iter().enumerate() {
            bytes.extend(chunk);
            // An audio message between every two chunks of the video message.
            let audio = [0xaf, 1, i as u8, j as u8];
            bytes.extend(client.encoder.chunks(&media(4, type_id::AUDIO, ts + j as u32, &audio)).concat());
            expected.push((MediaKind::Audio, i64::from(ts + j as u32), audio.to_vec()));
        }
    }
    // Video completes after its last chunk, i.e. before the audio that follows that chunk.
    let mut actions = Vec::new();
    for piece in bytes.chunks(333) {
        actions.extend(client.feed(piece).expect("feed"));
    }
    let got = media_of(&actions);
    let sort = |mut v: Vec<(MediaKind, i64, Vec<u8>)>| {
        v.sort_by_key(|(k, t, p)| (*k as u8, *t, p.clone()));
        v
    };
    assert_eq!(got.len(), expected.len());
    assert_eq!(sort(got), sort(expected));
}

/// An independent RTMP implementation (rml_rtmp's client) talks to our server.
#[test]
fn an_independent_client_can_publish() {
    use rml_rtmp::handshake::{Handshake as RmlHandshake, HandshakeProcessResult, PeerType};
    use rml_rtmp::sessions::{ClientSession, ClientSessionConfig, ClientSessionEvent, ClientSessionResult, PublishRequestType};
    use rml_rtmp::time::RtmpTimestamp;

    let mut server = RtmpSession::new(LIMITS);
    let mut handshake = RmlHandshake::new(PeerType::Client);
    let c0c1 = handshake.generate_outbound_p0_and_p1().expect("c0c1");
    let s0s1s2 = sent(&server.feed(&c0c1).expect("s0s1s2"));
    let HandshakeProcessResult::Completed { response_bytes: c2, .. } = handshake.process_bytes(&s0s1s2).expect("client handshake") else {
        panic!("handshake should complete")
    };
    server.feed(&c2).expect("c2");
    let (mut client, initial) = ClientSession::new(ClientSessionConfig::new()).expect("client");
    let mut events = Vec::new();
    let mut server_actions = Vec::new();
    let mut pump =
        |results: Vec<ClientSessionResult>, client: &mut ClientSession, server: &mut RtmpSession, events: &mut Vec<ClientSessionEvent>| {
            let mut queue = results;
            while !queue.is_empty() {
                let mut next = Vec::new();
                for result in queue {
                    if let ClientSessionResult::OutboundResponse(packet) = result {
                        let actions = server.feed(&packet.bytes).expect("server");
                        let back = sent(&actions);
                        server_actions.extend(actions.into_iter().filter(|a| !matches!(a, Action::Send(_))));
                        if !back.is_empty() {
                            for r in client.handle_input(&back).expect("client input") {
                                match r {
                                    ClientSessionResult::RaisedEvent(e) => events.push(e),
                                    other => next.push(other),
                                }
                            }
                        }
                    }
                }
                queue = next;
            }
        };
    pump(initial, &mut client, &mut server, &mut events);
    let connect = client.request_connection("live".into()).expect("connect");
    pump(vec![connect], &mut client, &mut server, &mut events);
    assert!(events.contains(&ClientSessionEvent::ConnectionRequestAccepted), "{events:?}");
    let publish = client.request_publishing("key".into(), PublishRequestType::Live).expect("publish");
    pump(vec![publish], &mut client, &mut server, &mut events);
    let request = server_actions
        .iter()
        .find_map(|a| if let Action::PublishRequested { request_id, .. } = a { Some(*request_id) } else { None })
        .expect("publish requested");
    let accepted = sent(&server.accept_publish(request).expect("accept"));
    for r in client.handle_input(&accepted).expect("client") {
        if let ClientSessionResult::RaisedEvent(e) = r {
            events.push(e);
        }
    }
    assert!(events.contains(&ClientSessionEvent::PublishRequestAccepted), "{events:?}");
    let video = client.publish_video_data(Bytes::from(vec![0x17; 3000]), RtmpTimestamp::new(40), false).expect("video");
    let ClientSessionResult::OutboundResponse(packet) = video else { panic!("packet") };
    let actions = server.feed(&packet.bytes).expect("video");
    assert_eq!(media_of(&actions), vec![(MediaKind::Video, 40, vec![0x17; 3000])]);
}
