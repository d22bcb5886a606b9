//! The RTMP chunk stream (RTMP 1.0 section 5.3): how messages are cut into chunks on the wire and
//! put back together.
//!
//! [`ChunkDecoder`] takes bytes as they come off the socket and yields whole [`Message`]s. Each chunk
//! stream keeps its own last header, timestamp delta and partial payload, so messages of different
//! chunk streams may interleave at any chunk boundary (audio chunks between the chunks of a large
//! video message, as relays and some hardware encoders send them). It reads all four header types,
//! basic headers of one, two and three bytes (chunk stream ids 2 to 65599), extended timestamps
//! (also repeated on type-3 continuations), and acts itself on the two control messages that change
//! the framing: Set Chunk Size (up to 2^31−1) and Abort. [`ChunkEncoder`] writes messages the same
//! way, with compressed headers where they apply.
//!
//! Memory is bounded by [`ChunkLimits`]: a message longer than `max_message_bytes` is refused the
//! moment its header arrives, partial payloads and unparsed input together never exceed
//! `max_buffered_bytes`, and at most `max_chunk_streams` chunk streams are tracked. Declared
//! lengths are never trusted for allocation. This module never panics on any input (the fuzz test
//! in `tests/rtmp_fuzz.rs` holds it to that), never does I/O and never reads a clock.

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};

use super::message::type_id::{ABORT, SET_CHUNK_SIZE};

/// The chunk size both sides start with.
pub const DEFAULT_CHUNK_SIZE: usize = 128;
/// The largest chunk size the spec allows (31 bits).
pub const MAX_CHUNK_SIZE: u32 = 0x7fff_ffff;
/// A timestamp field of this value means "read the 32-bit extended timestamp that follows".
const EXTENDED_TIMESTAMP: u32 = 0x00ff_ffff;

/// One RTMP message, reassembled from its chunks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub chunk_stream: u32,
    /// Milliseconds on the publisher's wrapping 32-bit clock.
    pub timestamp: u32,
    pub type_id: u8,
    pub stream_id: u32,
    pub payload: Bytes,
}

#[derive(Debug, Clone, Copy)]
pub struct ChunkLimits {
    /// Longest single message.
    pub max_message_bytes: usize,
    /// Partial messages of all chunk streams plus unparsed input, per connection.
    pub max_buffered_bytes: usize,
    /// Distinct chunk stream ids one connection may use.
    pub max_chunk_streams: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("a message of {size} bytes is over the {limit}-byte limit")]
    MessageTooLarge { size: usize, limit: usize },
    #[error("{buffered} bytes of unfinished messages are over the {limit}-byte limit")]
    TooMuchBuffered { buffered: usize, limit: usize },
    #[error("more than {limit} chunk streams in use")]
    TooManyChunkStreams { limit: usize },
    #[error("chunk header type {header_type} on chunk stream {chunk_stream}, which has no previous header")]
    NoPreviousHeader { chunk_stream: u32, header_type: u8 },
    #[error("a new message started on chunk stream {chunk_stream} before its previous one was complete")]
    InterruptedMessage { chunk_stream: u32 },
    #[error("invalid chunk size {0}")]
    InvalidChunkSize(u32),
    #[error("control message type {type_id} has {len} bytes, needs 4")]
    ShortControlMessage { type_id: u8, len: usize },
}

/// The header a chunk stream's next chunks refer back to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MessageHeader {
    timestamp: u32,
    length: u32,
    type_id: u8,
    stream_id: u32,
}

#[derive(Debug)]
struct ChunkStream {
    header: MessageHeader,
    /// Added to the timestamp when a type-3 chunk starts a new message: the delta of the last type
    /// 1 or 2 header, zero after a type 0 (as nginx-rtmp and librtmp read it).
    delta: u32,
    /// The last type 0–2 header had an extended timestamp, so type-3 chunks repeat those 4 bytes.
    extended: bool,
    /// Payload received so far of a message not yet complete.
    partial: Option<BytesMut>,
}

/// Bytes in, messages out. See the module documentation.
#[derive(Debug)]
pub struct ChunkDecoder {
    input: BytesMut,
    streams: HashMap<u32, ChunkStream>,
    chunk_size: usize,
    limits: ChunkLimits,
    /// Sum of the partial payloads' lengths.
    partial_bytes: usize,
    /// Every byte ever pushed, for acknowledgements (wraps as the spec's sequence number does).
    total_received: u64,
}

/// One chunk's header, read without consuming anything.
struct ChunkHeader {
    header_type: u8,
    chunk_stream: u32,
    /// Bytes of basic header, message header and extended timestamp.
    len: usize,
    /// The timestamp or delta field (extended already applied), for types 0–2.
    timestamp: u32,
    extended: bool,
    length: u32,
    type_id: u8,
    stream_id: u32,
}

impl ChunkDecoder {
    pub fn new(limits: ChunkLimits) -> Self {
        Self {
            input: BytesMut::new(),
            streams: HashMap::new(),
            chunk_size: DEFAULT_CHUNK_SIZE,
            limits,
            partial_bytes: 0,
            total_received: 0,
        }
    }

    /// Changes the limits from the next chunk on (a connection gets more room once its publish is
    /// authorised).
    pub fn set_limits(&mut self, limits: ChunkLimits) {
        self.limits = limits;
    }

    /// Bytes held for messages not yet complete, unparsed input included.
    pub fn buffered_bytes(&self) -> usize {
        self.input.len() + self.partial_bytes
    }

    pub fn total_received(&self) -> u64 {
        self.total_received
    }

    pub fn chunk_size(&self) -> usize {
        self.chunk_size
    }

    /// Takes bytes read from the peer; [`ChunkDecoder::next_message`] reads messages from them.
    pub fn push(&mut self, bytes: &[u8]) {
        self.total_received += bytes.len() as u64;
        self.input.extend_from_slice(bytes);
    }

    /// The next complete message, or `None` until more bytes are pushed. After an error the
    /// decoder's state is undefined and the connection must be closed.
    pub fn next_message(&mut self) -> Result<Option<Message>, ChunkError> {
        while let Some(chunk) = self.next_chunk()? {
            if let Some(message) = chunk {
                self.control(&message)?;
                return Ok(Some(message));
            }
        }
        // What is left is at most one incomplete chunk (its size bounded by the message limit)
        // plus what partial messages hold.
        let buffered = self.buffered_bytes();
        if buffered > self.limits.max_buffered_bytes {
            return Err(ChunkError::TooMuchBuffered { buffered, limit: self.limits.max_buffered_bytes });
        }
        Ok(None)
    }

    /// Pushes `bytes` and appends every message they complete to `out`.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<Message>) -> Result<(), ChunkError> {
        self.push(bytes);
        while let Some(message) = self.next_message()? {
            out.push(message);
        }
        Ok(())
    }

    /// The chunk layer's own control messages take effect before the next chunk is read.
    fn control(&mut self, message: &Message) -> Result<(), ChunkError> {
        match message.type_id {
            SET_CHUNK_SIZE => {
                // The top bit is reserved and must be zero; a zero size could never carry payload.
                let size = read_u32(message)? & MAX_CHUNK_SIZE;
                if size == 0 {
                    return Err(ChunkError::InvalidChunkSize(size));
                }
                self.chunk_size = size as usize;
            }
            ABORT => {
                let chunk_stream = read_u32(message)?;
                if let Some(partial) = self.streams.get_mut(&chunk_stream).and_then(|s| s.partial.take()) {
                    self.partial_bytes -= partial.len();
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Reads one chunk if it is all there: `None` when more bytes are needed, `Some(None)` for a
    /// chunk that did not complete a message, `Some(Some(message))` for one that did.
    fn next_chunk(&mut self) -> Result<Option<Option<Message>>, ChunkError> {
        let Some(header) = self.peek_header()? else { return Ok(None) };
        let chunk_stream = header.chunk_stream;
        let previous = self.streams.get(&chunk_stream);
        if previous.is_none() && self.streams.len() >= self.limits.max_chunk_streams {
            return Err(ChunkError::TooManyChunkStreams { limit: self.limits.max_chunk_streams });
        }

        // Which message this chunk belongs to, and how much of it is still to come.
        let continuing = header.header_type == 3 && previous.is_some_and(|s| s.partial.is_some());
        let (message, delta, extended, received) = match (header.header_type, previous) {
            (0, _) => {
                let message = MessageHeader {
                    timestamp: header.timestamp,
                    length: header.length,
                    type_id: header.type_id,
                    stream_id: header.stream_id,
                };
                (message, 0, header.extended, 0)
            }
            (_, None) => return Err(ChunkError::NoPreviousHeader { chunk_stream, header_type: header.header_type }),
            (1 | 2, Some(prev)) => {
                let (length, type_id) =
                    if header.header_type == 1 { (header.length, header.type_id) } else { (prev.header.length, prev.header.type_id) };
                let message = MessageHeader {
                    timestamp: prev.header.timestamp.wrapping_add(header.timestamp),
                    length,
                    type_id,
                    stream_id: prev.header.stream_id,
                };
                (message, header.timestamp, header.extended, 0)
            }
            (_, Some(prev)) if continuing => (prev.header, prev.delta, prev.extended, prev.partial.as_ref().map_or(0, BytesMut::len)),
            (_, Some(prev)) => {
                let message = MessageHeader { timestamp: prev.header.timestamp.wrapping_add(prev.delta), ..prev.header };
                (message, prev.delta, prev.extended, 0)
            }
        };
        if !continuing && previous.is_some_and(|s| s.partial.is_some()) {
            return Err(ChunkError::InterruptedMessage { chunk_stream });
        }
        let length = message.length as usize;
        if length > self.limits.max_message_bytes {
            return Err(ChunkError::MessageTooLarge { size: length, limit: self.limits.max_message_bytes });
        }
        let payload_len = (length - received).min(self.chunk_size);
        if self.input.len() < header.len + payload_len {
            return Ok(None);
        }

        // The whole chunk is here: commit.
        let _ = self.input.split_to(header.len);
        let chunk = self.input.split_to(payload_len);
        let stream = self.streams.entry(chunk_stream).or_insert(ChunkStream { header: message, delta, extended, partial: None });
        stream.header = message;
        stream.delta = delta;
        stream.extended = extended;
        let complete = received + payload_len == length;
        let payload = match (stream.partial.take(), complete) {
            // The common case, a message in one chunk, is handed on without a copy.
            (None, true) => chunk.freeze(),
            (None, false) => {
                self.partial_bytes += chunk.len();
                stream.partial = Some(chunk);
                return Ok(Some(None));
            }
            (Some(mut partial), _) => {
                partial.unsplit(chunk);
                self.partial_bytes += payload_len;
                if !complete {
                    stream.partial = Some(partial);
                    return Ok(Some(None));
                }
                self.partial_bytes -= partial.len();
                partial.freeze()
            }
        };
        Ok(Some(Some(Message {
            chunk_stream,
            timestamp: message.timestamp,
            type_id: message.type_id,
            stream_id: message.stream_id,
            payload,
        })))
    }

    /// Parses the chunk header at the front of the input without consuming it.
    fn peek_header(&self) -> Result<Option<ChunkHeader>, ChunkError> {
        let buf = &self.input[..];
        let Some(&first) = buf.first() else { return Ok(None) };
        let header_type = first >> 6;
        let (chunk_stream, mut pos) = match first & 0x3f {
            0 => match buf.get(1) {
                Some(&b) => (64 + u32::from(b), 2),
                None => return Ok(None),
            },
            1 => match (buf.get(1), buf.get(2)) {
                (Some(&lo), Some(&hi)) => (64 + u32::from(lo) + 256 * u32::from(hi), 3),
                _ => return Ok(None),
            },
            id => (u32::from(id), 1),
        };
        let message_header_len = [11, 7, 3, 0][usize::from(header_type)];
        let Some(fields) = buf.get(pos..pos + message_header_len) else { return Ok(None) };
        pos += message_header_len;
        let u24 = |b: &[u8]| u32::from_be_bytes([0, b[0], b[1], b[2]]);
        let mut header =
            ChunkHeader { header_type, chunk_stream, len: pos, timestamp: 0, extended: false, length: 0, type_id: 0, stream_id: 0 };
        if header_type <= 2 {
            header.timestamp = u24(&fields[0..3]);
            header.extended = header.timestamp == EXTENDED_TIMESTAMP;
        }
        if header_type <= 1 {
            header.length = u24(&fields[3..6]);
            header.type_id = fields[6];
        }
        if header_type == 0 {
            header.stream_id = u32::from_le_bytes([fields[7], fields[8], fields[9], fields[10]]);
        }
        let extended = if header_type == 3 { self.streams.get(&chunk_stream).is_some_and(|s| s.extended) } else { header.extended };
        if extended {
            let Some(ext) = buf.get(pos..pos + 4) else { return Ok(None) };
            if header_type <= 2 {
                header.timestamp = u32::from_be_bytes([ext[0], ext[1], ext[2], ext[3]]);
            }
            header.len = pos + 4;
        }
        Ok(Some(header))
    }
}

fn read_u32(message: &Message) -> Result<u32, ChunkError> {
    match message.payload.get(..4) {
        Some(b) => Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]])),
        None => Err(ChunkError::ShortControlMessage { type_id: message.type_id, len: message.payload.len() }),
    }
}

/// Writes messages as chunks. Headers are compressed the unambiguous way: type 1 or 2 when the
/// stream id (and length and type) repeat, type 3 for a new message only after a type 1 or 2 header
/// with the same delta, type 0 whenever time runs backwards.
#[derive(Debug)]
pub struct ChunkEncoder {
    chunk_size: usize,
    streams: HashMap<u32, (MessageHeader, Option<u32>)>,
}

impl Default for ChunkEncoder {
    fn default() -> Self {
        Self { chunk_size: DEFAULT_CHUNK_SIZE, streams: HashMap::new() }
    }
}

impl ChunkEncoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// The chunk size for what is encoded next. Send the Set Chunk Size message (encoded at the old
    /// size) first.
    pub fn set_chunk_size(&mut self, size: usize) {
        self.chunk_size = size.clamp(1, MAX_CHUNK_SIZE as usize);
    }

    /// Appends `message` as chunks to `out`.
    pub fn encode(&mut self, message: &Message, out: &mut Vec<u8>) {
        for chunk in self.chunks(message) {
            out.extend_from_slice(&chunk);
        }
    }

    /// `message` as separate chunks, in order, so a caller may interleave chunks of several
    /// chunk streams.
    pub fn chunks(&mut self, message: &Message) -> Vec<Vec<u8>> {
        let header = MessageHeader {
            timestamp: message.timestamp,
            length: message.payload.len() as u32,
            type_id: message.type_id,
            stream_id: message.stream_id,
        };
        let previous = self.streams.get(&message.chunk_stream).copied();
        let (header_type, field) = match previous {
            Some((prev, prev_delta)) if prev.stream_id == header.stream_id && header.timestamp >= prev.timestamp => {
                let delta = header.timestamp - prev.timestamp;
                if prev.length != header.length || prev.type_id != header.type_id {
                    (1, delta)
                } else if prev_delta == Some(delta) {
                    (3, delta)
                } else {
                    (2, delta)
                }
            }
            _ => (0, header.timestamp),
        };
        let delta = match header_type {
            0 => None,
            _ => Some(field),
        };
        self.streams.insert(message.chunk_stream, (header, delta));
        let extended = if header_type == 3 {
            previous.is_some_and(|(_, d)| d.is_some_and(|d| d >= EXTENDED_TIMESTAMP))
        } else {
            field >= EXTENDED_TIMESTAMP
        };

        let mut chunks = Vec::new();
        let mut first = true;
        let payload = &message.payload[..];
        let mut offset = 0;
        loop {
            let end = (offset + self.chunk_size).min(payload.len());
            let mut chunk = Vec::with_capacity(18 + end - offset);
            let this_type = if first { header_type } else { 3 };
            write_basic_header(&mut chunk, this_type, message.chunk_stream);
            if this_type <= 2 {
                chunk.extend_from_slice(&field.min(EXTENDED_TIMESTAMP).to_be_bytes()[1..]);
            }
            if this_type <= 1 {
                chunk.extend_from_slice(&header.length.to_be_bytes()[1..]);
                chunk.push(header.type_id);
            }
            if this_type == 0 {
                chunk.extend_from_slice(&header.stream_id.to_le_bytes());
            }
            if extended {
                chunk.extend_from_slice(&field.to_be_bytes());
            }
            chunk.extend_from_slice(&payload[offset..end]);
            chunks.push(chunk);
            first = false;
            offset = end;
            if offset >= payload.len() {
                return chunks;
            }
        }
    }
}

fn write_basic_header(out: &mut Vec<u8>, header_type: u8, chunk_stream: u32) {
    let fmt = header_type << 6;
    match chunk_stream {
        2..=63 => out.push(fmt | chunk_stream as u8),
        64..=319 => out.extend_from_slice(&[fmt, (chunk_stream - 64) as u8]),
        _ => {
            let id = chunk_stream.clamp(320, 65599) - 64;
            out.extend_from_slice(&[fmt | 1, (id & 0xff) as u8, (id >> 8) as u8]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ChunkLimits = ChunkLimits { max_message_bytes: 1 << 20, max_buffered_bytes: 2 << 20, max_chunk_streams: 64 };

    fn message(chunk_stream: u32, timestamp: u32, type_id: u8, payload: &[u8]) -> Message {
        Message { chunk_stream, timestamp, type_id, stream_id: 1, payload: Bytes::copy_from_slice(payload) }
    }

    fn decode(bytes: &[u8]) -> Result<Vec<Message>, ChunkError> {
        let mut decoder = ChunkDecoder::new(LIMITS);
        let mut out = Vec::new();
        decoder.feed(bytes, &mut out)?;
        Ok(out)
    }

    /// Decodes `bytes` fed one byte at a time: no chunk may depend on how reads are split.
    fn decode_bytewise(bytes: &[u8]) -> Vec<Message> {
        let mut decoder = ChunkDecoder::new(LIMITS);
        let mut out = Vec::new();
        for b in bytes {
            decoder.feed(std::slice::from_ref(b), &mut out).expect("decode");
        }
        assert_eq!(decoder.buffered_bytes(), 0, "nothing left over");
        out
    }

    #[test]
    fn type_0_header_by_hand() {
        // csid 4, ts 1000, length 3, type 9 (video), stream id 1 (little-endian), payload.
        let bytes = [0x04, 0, 0x03, 0xe8, 0, 0, 3, 9, 1, 0, 0, 0, 0xaa, 0xbb, 0xcc];
        assert_eq!(decode(&bytes).expect("decode"), vec![message(4, 1000, 9, &[0xaa, 0xbb, 0xcc])]);
    }

    #[test]
    fn types_1_2_and_3_take_the_rest_from_the_previous_header() {
        let mut bytes = vec![0x04, 0, 0, 100, 0, 0, 1, 8, 1, 0, 0, 0, 0x01]; // type 0: ts 100, len 1, audio
        bytes.extend([0x44, 0, 0, 20, 0, 0, 2, 8, 0x02, 0x03]); // type 1: +20, len 2
        bytes.extend([0x84, 0, 0, 30, 0x04, 0x05]); // type 2: +30, same len/type
        bytes.extend([0xc4, 0x06, 0x07]); // type 3: new message, +30 again
        assert_eq!(
            decode_bytewise(&bytes),
            vec![message(4, 100, 8, &[1]), message(4, 120, 8, &[2, 3]), message(4, 150, 8, &[4, 5]), message(4, 180, 8, &[6, 7])]
        );
    }

    #[test]
    fn type_3_after_type_0_repeats_the_timestamp() {
        let mut bytes = vec![0x04, 0, 0, 100, 0, 0, 1, 8, 1, 0, 0, 0, 0x01];
        bytes.extend([0xc4, 0x02]);
        assert_eq!(decode(&bytes).expect("decode"), vec![message(4, 100, 8, &[1]), message(4, 100, 8, &[2])]);
    }

    #[test]
    fn basic_headers_of_two_and_three_bytes() {
        for chunk_stream in [2, 63, 64, 319, 320, 65599] {
            let mut encoder = ChunkEncoder::new();
            let mut bytes = Vec::new();
            encoder.encode(&message(chunk_stream, 5, 9, b"abc"), &mut bytes);
            let expected_basic = match chunk_stream {
                2..=63 => 1,
                64..=319 => 2,
                _ => 3,
            };
            assert_eq!(bytes.len(), expected_basic + 11 + 3, "csid {chunk_stream}");
            assert_eq!(decode_bytewise(&bytes), vec![message(chunk_stream, 5, 9, b"abc")], "csid {chunk_stream}");
        }
        // By hand: csid 65599 = 64 + 0xff + 0xff * 256.
        let bytes = [0x01, 0xff, 0xff, 0, 0, 1, 0, 0, 1, 9, 0, 0, 0, 0, 0x2a];
        assert_eq!(decode(&bytes).expect("decode")[0].chunk_stream, 65599);
    }

    #[test]
    fn extended_timestamps_also_on_type_3_continuations() {
        let payload: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
        let ts = 0x0123_4567;
        let mut encoder = ChunkEncoder::new();
        let chunks = encoder.chunks(&message(6, ts, 9, &payload));
        assert_eq!(chunks.len(), 3, "128 + 128 + 44");
        // Type 0 with 0xffffff in the field, then the extended value; continuations repeat it.
        assert_eq!(&chunks[0][1..4], &[0xff, 0xff, 0xff]);
        assert_eq!(&chunks[0][12..16], &ts.to_be_bytes());
        assert_eq!(&chunks[1][..5], &[0xc6, 0x01, 0x23, 0x45, 0x67]);
        let bytes: Vec<u8> = chunks.concat();
        assert_eq!(decode_bytewise(&bytes), vec![message(6, ts, 9, &payload)]);
        // A delta that needs the extended field.
        let mut bytes2 = bytes.clone();
        encoder.encode(&message(6, ts + 0x0100_0000, 9, &payload), &mut bytes2);
        assert_eq!(decode(&bytes2).expect("decode")[1].timestamp, ts + 0x0100_0000);
    }

    #[test]
    fn interleaved_chunk_streams_each_keep_their_message() {
        let video: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        let audio = [0xaf, 0x01, 0x21, 0x10];
        let mut encoder = ChunkEncoder::new();
        let video_chunks = encoder.chunks(&message(6, 40, 9, &video));
        let audio_chunks: Vec<Vec<u8>> =
            (0..video_chunks.len() as u32).flat_map(|i| encoder.chunks(&message(4, 23 * i, 8, &audio))).collect();
        // Video chunk, audio message, video chunk, audio message, ...
        let mut bytes = Vec::new();
        for (v, a) in video_chunks.iter().zip(&audio_chunks) {
            bytes.extend(v);
            bytes.extend(a);
        }
        let messages = decode_bytewise(&bytes);
        let audio_out: Vec<_> = messages.iter().filter(|m| m.type_id == 8).collect();
        let video_out: Vec<_> = messages.iter().filter(|m| m.type_id == 9).collect();
        assert_eq!(audio_out.len(), video_chunks.len());
        assert_eq!(
            audio_out.iter().map(|m| m.timestamp).collect::<Vec<_>>(),
            (0..video_chunks.len() as u32).map(|i| 23 * i).collect::<Vec<_>>()
        );
        assert_eq!(video_out, vec![&message(6, 40, 9, &video)]);
    }

    #[test]
    fn set_chunk_size_applies_to_the_next_chunk_and_may_be_huge() {
        let big: Vec<u8> = vec![7; 100_000];
        let mut encoder = ChunkEncoder::new();
        let mut bytes = Vec::new();
        let size = MAX_CHUNK_SIZE;
        encoder.encode(
            &Message {
                chunk_stream: 2,
                timestamp: 0,
                type_id: SET_CHUNK_SIZE,
                stream_id: 0,
                payload: Bytes::copy_from_slice(&size.to_be_bytes()),
            },
            &mut bytes,
        );
        encoder.set_chunk_size(size as usize);
        let before = bytes.len();
        encoder.encode(&message(6, 0, 9, &big), &mut bytes);
        assert_eq!(bytes.len() - before, 12 + big.len(), "one chunk");
        let mut decoder = ChunkDecoder::new(LIMITS);
        let mut out = Vec::new();
        decoder.feed(&bytes, &mut out).expect("decode");
        assert_eq!(decoder.chunk_size(), size as usize);
        assert_eq!(out.last().map(|m| m.payload.len()), Some(big.len()));
        // Zero is refused.
        let zero = [0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(decode(&zero), Err(ChunkError::InvalidChunkSize(0)));
    }

    #[test]
    fn abort_drops_the_partial_message() {
        let payload = vec![1u8; 300];
        let mut encoder = ChunkEncoder::new();
        let chunks = encoder.chunks(&message(6, 0, 9, &payload));
        let mut bytes = chunks[0].clone();
        bytes.extend([0x02, 0, 0, 0, 0, 0, 4, ABORT, 0, 0, 0, 0, 0, 0, 0, 6]);
        let mut decoder = ChunkDecoder::new(LIMITS);
        let mut out = Vec::new();
        decoder.feed(&bytes, &mut out).expect("decode");
        assert_eq!(decoder.buffered_bytes(), 0);
        // The stream starts over with a fresh message.
        let mut fresh = Vec::new();
        encoder.encode(&message(6, 0, 9, b"xyz"), &mut fresh);
        decoder.feed(&fresh, &mut out).expect("decode");
        assert_eq!(out.last().map(|m| &m.payload[..]), Some(&b"xyz"[..]));
    }

    #[test]
    fn limits_hold() {
        // A header announcing a message over the limit is refused at once.
        let limits = ChunkLimits { max_message_bytes: 1000, max_buffered_bytes: 2000, max_chunk_streams: 3 };
        let mut decoder = ChunkDecoder::new(limits);
        let header = [0x06, 0, 0, 0, 0xff, 0xff, 0xff, 9, 1, 0, 0, 0];
        assert_eq!(decoder.feed(&header, &mut Vec::new()), Err(ChunkError::MessageTooLarge { size: 0xffffff, limit: 1000 }));
        // Partial messages on many streams add up to the connection's limit.
        let mut decoder = ChunkDecoder::new(limits);
        let mut encoder = ChunkEncoder::new();
        let mut result = Ok(());
        for csid in 3..6 {
            let chunks = encoder.chunks(&message(csid, 0, 9, &[0u8; 1000]));
            for chunk in &chunks[..chunks.len() - 1] {
                result = result.and_then(|()| decoder.feed(chunk, &mut Vec::new()));
            }
        }
        assert!(matches!(result, Err(ChunkError::TooMuchBuffered { limit: 2000, .. })), "{result:?}");
        // Chunk stream count.
        let mut decoder = ChunkDecoder::new(limits);
        let mut bytes = Vec::new();
        for csid in 3..7 {
            ChunkEncoder::new().encode(&message(csid, 0, 9, b"a"), &mut bytes);
        }
        assert_eq!(decoder.feed(&bytes, &mut Vec::new()), Err(ChunkError::TooManyChunkStreams { limit: 3 }));
    }

    #[test]
    fn protocol_violations_are_errors() {
        // Type 1 on a chunk stream never seen.
        assert_eq!(decode(&[0x44, 0, 0, 0, 0, 0, 1, 8, 0]), Err(ChunkError::NoPreviousHeader { chunk_stream: 4, header_type: 1 }));
        // A new type-0 message while the previous one on the same stream is unfinished.
        let mut bytes = ChunkEncoder::new().chunks(&message(4, 0, 9, &[0u8; 200]))[0].clone();
        bytes.extend([0x04, 0, 0, 0, 0, 0, 1, 9, 1, 0, 0, 0, 0]);
        assert_eq!(decode(&bytes), Err(ChunkError::InterruptedMessage { chunk_stream: 4 }));
        // A control message too short to hold its value.
        assert_eq!(decode(&[0x02, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 9]), Err(ChunkError::ShortControlMessage { type_id: 1, len: 1 }));
    }

    #[test]
    fn empty_messages_complete_at_once() {
        let bytes = [0x03, 0, 0, 0, 0, 0, 0, 20, 0, 0, 0, 0];
        assert_eq!(
            decode(&bytes).expect("decode"),
            vec![Message { chunk_stream: 3, timestamp: 0, type_id: 20, stream_id: 0, payload: Bytes::new() }]
        );
    }

    #[test]
    fn encoder_compresses_headers_unambiguously() {
        let mut encoder = ChunkEncoder::new();
        let types: Vec<u8> = [(0, 2), (33, 2), (66, 2), (99, 3), (99, 3), (50, 2)]
            .iter()
            .map(|&(ts, len)| encoder.chunks(&message(6, ts, 9, &vec![0; len]))[0][0] >> 6)
            .collect();
        // First is type 0; then delta 33 (type 2), delta 33 again (type 3), delta 33 with a new
        // length (type 1), delta 0 (type 2), and a backwards step (type 0).
        assert_eq!(types, vec![0, 2, 3, 1, 2, 0]);
    }
}
