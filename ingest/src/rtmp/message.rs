//! RTMP message types and the small messages we build: protocol control messages (RTMP 1.0
//! section 5.4), user control events (section 6.2) and AMF0 commands. Plain values, no state.

use bytes::Bytes;

use super::amf0::{self, Amf0Value};
use super::chunk::Message;

/// Message type ids (RTMP 1.0 sections 5.4, 6.2 and 7.1).
pub mod type_id {
    pub const SET_CHUNK_SIZE: u8 = 1;
    pub const ABORT: u8 = 2;
    pub const ACKNOWLEDGEMENT: u8 = 3;
    pub const USER_CONTROL: u8 = 4;
    pub const WINDOW_ACK_SIZE: u8 = 5;
    pub const SET_PEER_BANDWIDTH: u8 = 6;
    pub const AUDIO: u8 = 8;
    pub const VIDEO: u8 = 9;
    pub const DATA_AMF3: u8 = 15;
    pub const COMMAND_AMF3: u8 = 17;
    pub const DATA_AMF0: u8 = 18;
    pub const COMMAND_AMF0: u8 = 20;
    pub const AGGREGATE: u8 = 22;
}

/// User control event types.
pub const STREAM_BEGIN: u16 = 0;
pub const PING_REQUEST: u16 = 6;
pub const PING_RESPONSE: u16 = 7;

/// Chunk streams we send on: 2 is reserved for control messages; commands go on 3.
const CONTROL_CHUNK_STREAM: u32 = 2;
const COMMAND_CHUNK_STREAM: u32 = 3;

fn control(type_id: u8, payload: Vec<u8>) -> Message {
    Message { chunk_stream: CONTROL_CHUNK_STREAM, timestamp: 0, type_id, stream_id: 0, payload: Bytes::from(payload) }
}

pub fn set_chunk_size(size: u32) -> Message {
    control(type_id::SET_CHUNK_SIZE, size.to_be_bytes().to_vec())
}

pub fn window_ack_size(size: u32) -> Message {
    control(type_id::WINDOW_ACK_SIZE, size.to_be_bytes().to_vec())
}

pub fn acknowledgement(sequence_number: u32) -> Message {
    control(type_id::ACKNOWLEDGEMENT, sequence_number.to_be_bytes().to_vec())
}

/// Set Peer Bandwidth with limit type 2 (dynamic).
pub fn set_peer_bandwidth(size: u32) -> Message {
    let mut payload = size.to_be_bytes().to_vec();
    payload.push(2);
    control(type_id::SET_PEER_BANDWIDTH, payload)
}

pub fn user_control(event: u16, data: &[u8]) -> Message {
    let mut payload = event.to_be_bytes().to_vec();
    payload.extend_from_slice(data);
    control(type_id::USER_CONTROL, payload)
}

/// The 4-byte timestamp of a Ping Request, which the response echoes.
pub fn ping_request(payload: &[u8]) -> Option<[u8; 4]> {
    match payload {
        [hi, lo, a, b, c, d, ..] if u16::from_be_bytes([*hi, *lo]) == PING_REQUEST => Some([*a, *b, *c, *d]),
        _ => None,
    }
}

pub fn read_u32(payload: &[u8]) -> Option<u32> {
    payload.get(..4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// An AMF0 command message on message stream `stream_id`.
pub fn command(stream_id: u32, values: &[Amf0Value]) -> Message {
    Message {
        chunk_stream: COMMAND_CHUNK_STREAM,
        timestamp: 0,
        type_id: type_id::COMMAND_AMF0,
        stream_id,
        payload: Bytes::from(amf0::encode_all(values)),
    }
}
