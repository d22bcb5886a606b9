//! A fuzz harness for the RTMP session that runs on stable Rust: valid publisher sessions are
//! generated (random chunk sizes, chunk stream ids across all three basic-header sizes, extended
//! timestamps, interleaved chunks, aggregates, aborts, pings, metadata), then mutated (bits
//! flipped, bytes cut, ranges duplicated or moved, random bytes inserted) and fed to the session in
//! random-sized reads. Nothing may panic, and the bytes the session holds must stay within its
//! limits at every step.
//!
//! The suite runs a short pass. The long run (10⁶ sessions) is
//! `FERROCAST_FUZZ_ITERATIONS=1000000 cargo test --release -p ferrocast-ingest --test rtmp_fuzz`
//! (`bench/rtmp-fuzz.sh`); a failing case prints its seed, and `FERROCAST_FUZZ_SEED=N` replays it.

use bytes::Bytes;
use ferrocast_ingest::rtmp::amf0::{self, Amf0Value};
use ferrocast_ingest::rtmp::chunk::{ChunkEncoder, Message};
use ferrocast_ingest::rtmp::handshake::PACKET_SIZE;
use ferrocast_ingest::rtmp::message::{self, type_id};
use ferrocast_ingest::session::{Action, RtmpSession, SessionLimits};

const LIMITS: SessionLimits =
    SessionLimits { max_message_bytes: 256 * 1024, max_buffered_bytes: 512 * 1024, max_chunk_streams: 32, max_command_bytes: 8192 };
const DEFAULT_ITERATIONS: u64 = 1000;

/// xorshift64*: small, seedable, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn command(values: &[Amf0Value], stream_id: u32) -> Message {
    message::command(stream_id, values)
}

/// A plausible publisher session, as bytes: handshake, connect, createStream, publish, metadata and
/// media, with random chunking.
fn session_bytes(rng: &mut Rng) -> Vec<u8> {
    let mut out = vec![3u8];
    out.extend(rng.bytes(2 * PACKET_SIZE));
    let mut encoder = ChunkEncoder::new();
    let video_csid = [6, 63, 64, 200, 319, 320, 4000, 65599][rng.below(8)];
    let audio_csid = [4, 5, 70, 65000][rng.below(4)];
    let mut messages = vec![
        command(
            &[
                Amf0Value::string("connect"),
                Amf0Value::Number(1.0),
                Amf0Value::object([
                    ("app", Amf0Value::string("live")),
                    ("fourCcList", Amf0Value::StrictArray(vec![Amf0Value::string("hvc1")])),
                ]),
            ],
            0,
        ),
        command(&[Amf0Value::string("releaseStream"), Amf0Value::Number(2.0), Amf0Value::Null, Amf0Value::string("key")], 0),
        command(&[Amf0Value::string("createStream"), Amf0Value::Number(3.0), Amf0Value::Null], 0),
        command(
            &[Amf0Value::string("publish"), Amf0Value::Number(4.0), Amf0Value::Null, Amf0Value::string("key"), Amf0Value::string("live")],
            1,
        ),
    ];
    let meta = Amf0Value::object([
        ("width", Amf0Value::Number(1280.0)),
        ("height", Amf0Value::Number(720.0)),
        ("framerate", Amf0Value::Number(30.0)),
    ]);
    messages.push(Message {
        chunk_stream: audio_csid,
        timestamp: 0,
        type_id: type_id::DATA_AMF0,
        stream_id: 1,
        payload: Bytes::from(amf0::encode_all(&[Amf0Value::string("@setDataFrame"), Amf0Value::string("onMetaData"), meta])),
    });
    let mut bytes = Vec::new();
    for m in &messages {
        encoder.encode(m, &mut bytes);
    }
    // Sometimes a new chunk size, up to the maximum.
    if rng.chance(50) {
        let size = [16u32, 60, 128, 4096, 65536, 0x7fff_ffff][rng.below(6)];
        encoder.encode(&message::set_chunk_size(size), &mut bytes);
        encoder.set_chunk_size(size as usize);
    }
    // Clocks near the extended-timestamp boundary and the 32-bit wrap.
    let base: u32 = [0, 0x00ff_fff0, 0xffff_ff00][rng.below(3)];
    let frames = 1 + rng.below(12);
    for i in 0..frames {
        let ts = base.wrapping_add(33 * i as u32);
        let mut video = vec![if i == 0 { 0x17 } else { 0x27 }, 1, 0, 0, 0];
        let len = rng.below(6000);
        video.extend(rng.bytes(len));
        let video_chunks = encoder.chunks(&Message {
            chunk_stream: video_csid,
            timestamp: ts,
            type_id: type_id::VIDEO,
            stream_id: 1,
            payload: Bytes::from(video),
        });
        for chunk in video_chunks {
            bytes.extend(chunk);
            if rng.chance(30) {
                let mut audio = vec![0xaf, 1];
                let len = rng.below(400);
                audio.extend(rng.bytes(len));
                for c in encoder.chunks(&Message {
                    chunk_stream: audio_csid,
                    timestamp: ts,
                    type_id: type_id::AUDIO,
                    stream_id: 1,
                    payload: Bytes::from(audio),
                }) {
                    bytes.extend(c);
                }
            }
            if rng.chance(3) {
                encoder.encode(&message::user_control(message::PING_REQUEST, &[0, 0, 0, 1]), &mut bytes);
            }
        }
        if rng.chance(5) {
            // An aggregate of one FLV tag.
            let body = [0x09, 0, 0, 2, 0, 0, 10, 0, 0, 0, 0, 0x27, 1, 0, 0, 0, 13];
            encoder.encode(
                &Message {
                    chunk_stream: video_csid,
                    timestamp: ts,
                    type_id: type_id::AGGREGATE,
                    stream_id: 1,
                    payload: Bytes::copy_from_slice(&body),
                },
                &mut bytes,
            );
        }
    }
    if rng.chance(20) {
        encoder.encode(
            &command(&[Amf0Value::string("deleteStream"), Amf0Value::Number(5.0), Amf0Value::Null, Amf0Value::Number(1.0)], 0),
            &mut bytes,
        );
    }
    out.extend(bytes);
    out
}

fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>) {
    // Mostly after the handshake, where the chunk layer is; sometimes anywhere.
    let start = if rng.chance(90) { (1 + 2 * PACKET_SIZE).min(bytes.len()) } else { 0 };
    for _ in 0..1 + rng.below(8) {
        if bytes.len() <= start {
            return;
        }
        let at = start + rng.below(bytes.len() - start);
        match rng.below(7) {
            0 => bytes[at] ^= 1 << rng.below(8),
            1 => bytes[at] = rng.next() as u8,
            2 => bytes.truncate(at),
            3 => {
                let len = rng.below(64).min(bytes.len() - at);
                let copy = bytes[at..at + len].to_vec();
                let to = start + rng.below(bytes.len() - start);
                bytes.splice(to..to, copy);
            }
            4 => {
                let len = rng.below(64).min(bytes.len() - at);
                bytes.drain(at..at + len);
            }
            5 => {
                let len = 1 + rng.below(16);
                let junk = rng.bytes(len);
                bytes.splice(at..at, junk);
            }
            // Header bytes set to the values parsers trip on.
            _ => bytes[at] = [0x00, 0x3f, 0x40, 0x80, 0xc0, 0xff][rng.below(6)],
        }
    }
}

/// Accepts or refuses every publish request, as the connection task would; returns the media
/// messages seen, or `None` when the session failed.
fn decide(session: &mut RtmpSession, actions: Vec<Action>, rng: &mut Rng) -> Option<usize> {
    let mut queue = std::collections::VecDeque::from(actions);
    let mut media = 0;
    while let Some(action) = queue.pop_front() {
        match action {
            Action::PublishRequested { request_id, .. } => {
                let decision = if rng.chance(80) { session.accept_publish(request_id) } else { session.reject_publish(request_id, "no") };
                queue.extend(decision.ok()?);
            }
            Action::Media { .. } => media += 1,
            _ => {}
        }
    }
    Some(media)
}

/// Feeds one session's bytes in random reads; returns whether it ran to the end without an error.
fn run(seed: u64) -> bool {
    let mut rng = Rng::new(seed);
    let mut bytes = session_bytes(&mut rng);
    if !rng.chance(10) {
        mutate(&mut rng, &mut bytes);
    }
    let mut session = RtmpSession::new(LIMITS);
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        let n = (1 + rng.below(9000)).min(rest.len());
        let (read, tail) = rest.split_at(n);
        rest = tail;
        let actions = match session.feed(read) {
            Ok(actions) => actions,
            Err(_) => return false,
        };
        let buffered = session.buffered_bytes();
        assert!(buffered <= LIMITS.max_buffered_bytes.max(LIMITS.max_message_bytes), "seed {seed}: {buffered} bytes buffered");
        if decide(&mut session, actions, &mut rng).is_none() {
            return false;
        }
    }
    true
}

#[test]
fn no_input_panics_or_grows_memory() {
    if let Some(seed) = std::env::var("FERROCAST_FUZZ_SEED").ok().and_then(|s| s.parse().ok()) {
        run(seed);
        return;
    }
    let iterations = std::env::var("FERROCAST_FUZZ_ITERATIONS").ok().and_then(|s| s.parse().ok()).unwrap_or(DEFAULT_ITERATIONS);
    let mut completed = 0u64;
    for seed in 0..iterations {
        let outcome = std::panic::catch_unwind(|| run(seed));
        match outcome {
            Ok(true) => completed += 1,
            Ok(false) => {}
            Err(_) => panic!("seed {seed} panicked; replay with FERROCAST_FUZZ_SEED={seed}"),
        }
    }
    // The generator must produce valid sessions often enough that mutations reach deep states.
    println!("{iterations} sessions, {completed} ran to the end without a protocol error");
    assert!(completed * 20 >= iterations, "only {completed} of {iterations} sessions were accepted: the generator is broken");
}

/// Unmutated sessions are valid: every one runs to the end, and its media comes through whatever
/// the reads' sizes, media sent right behind the publish command included.
#[test]
fn generated_sessions_are_valid() {
    for seed in 0..200 {
        let mut rng = Rng::new(seed);
        let bytes = session_bytes(&mut rng);
        let mut media = Vec::new();
        for pieces in [1, 2, 7] {
            let mut session = RtmpSession::new(LIMITS);
            let mut count = 0;
            for part in bytes.chunks(bytes.len().div_ceil(pieces)) {
                let actions = session.feed(part).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
                count += decide(&mut session, actions, &mut Rng::new(0)).expect("valid");
            }
            media.push(count);
        }
        assert!(media[0] > 0, "seed {seed}: no media");
        assert!(media.iter().all(|m| *m == media[0]), "seed {seed}: {media:?}");
    }
}
