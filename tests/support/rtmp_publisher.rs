//! An RTMP publisher for tests, written from the RTMP 1.0 and AMF0 specifications on our own chunk
//! encoder (`ferrocast_ingest::rtmp`), so a test chooses what real encoders vary: the chunk size,
//! whether audio chunks interleave with the chunks of a video message, and the stream name. It
//! publishes the tags of an FLV file as fast as the socket takes them ([`publish`]), or at the pace
//! of their timestamps like a live encoder ([`publish_paced`]).

use std::time::Duration;

use bytes::Bytes;
use ferrocast_ingest::rtmp::amf0::{self, Amf0Value};
use ferrocast_ingest::rtmp::chunk::{ChunkDecoder, ChunkEncoder, ChunkLimits, Message};
use ferrocast_ingest::rtmp::handshake::PACKET_SIZE;
use ferrocast_ingest::rtmp::message::{self, type_id};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const VIDEO_CHUNK_STREAM: u32 = 6;
const AUDIO_CHUNK_STREAM: u32 = 4;
const DATA_CHUNK_STREAM: u32 = 5;

#[derive(Clone, Copy, Debug)]
pub struct PublishOptions {
    pub chunk_size: u32,
    /// Send an audio message's chunks between every two chunks of a video message.
    pub interleave: bool,
}

/// One FLV tag: type (8 audio, 9 video, 18 script data), timestamp in ms, body.
#[derive(Clone, Debug)]
pub struct FlvTag {
    pub kind: u8,
    pub timestamp: u32,
    pub body: Bytes,
}

/// The tags of an FLV file.
pub fn read_flv(file: &[u8]) -> Vec<FlvTag> {
    assert_eq!(&file[..3], b"FLV", "an FLV file");
    let header = u32::from_be_bytes([file[5], file[6], file[7], file[8]]) as usize;
    let mut at = header + 4;
    let mut tags = Vec::new();
    while at + 11 <= file.len() {
        let kind = file[at] & 0x1f;
        let size = u32::from_be_bytes([0, file[at + 1], file[at + 2], file[at + 3]]) as usize;
        let timestamp = u32::from_be_bytes([file[at + 7], file[at + 4], file[at + 5], file[at + 6]]);
        let body = Bytes::copy_from_slice(&file[at + 11..at + 11 + size]);
        tags.push(FlvTag { kind, timestamp, body });
        at += 11 + size + 4;
    }
    tags
}

struct Connection {
    socket: TcpStream,
    encoder: ChunkEncoder,
    decoder: ChunkDecoder,
}

impl Connection {
    async fn send(&mut self, message: &Message) {
        let mut bytes = Vec::new();
        self.encoder.encode(message, &mut bytes);
        self.socket.write_all(&bytes).await.expect("write");
    }

    async fn command(&mut self, stream_id: u32, values: &[Amf0Value]) {
        self.send(&message::command(stream_id, values)).await;
    }

    /// Reads until a command named `_result`, `_error` or `onStatus` arrives; returns its values.
    async fn answer(&mut self) -> Result<Vec<Amf0Value>, String> {
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            while let Some(m) = self.decoder.next_message().map_err(|e| e.to_string())? {
                if m.type_id == type_id::COMMAND_AMF0 {
                    let values = amf0::decode_all(&m.payload).map_err(|e| e.to_string())?;
                    if matches!(values.first().and_then(Amf0Value::as_str), Some("_result" | "_error" | "onStatus")) {
                        return Ok(values);
                    }
                }
            }
            let n = tokio::time::timeout(Duration::from_secs(10), self.socket.read(&mut buffer))
                .await
                .map_err(|_| "no answer within 10 s".to_string())?
                .map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("connection closed by the server".into());
            }
            self.decoder.push(&buffer[..n]);
        }
    }
}

/// Publishes `tags` to `rtmp://{addr}/live/{stream_name}`. Returns the server's refusal code
/// (`NetStream.Publish.BadName`, …) as an error.
pub async fn publish(addr: &str, stream_name: &str, tags: &[FlvTag], options: PublishOptions) -> Result<(), String> {
    publish_with_pace(addr, stream_name, tags, options, false).await
}

/// [`publish`], sending each tag no earlier than its timestamp after the first one: what a live
/// encoder does, and what a server that transcodes in real time expects.
pub async fn publish_paced(addr: &str, stream_name: &str, tags: &[FlvTag], options: PublishOptions) -> Result<(), String> {
    publish_with_pace(addr, stream_name, tags, options, true).await
}

async fn publish_with_pace(addr: &str, stream_name: &str, tags: &[FlvTag], options: PublishOptions, paced: bool) -> Result<(), String> {
    let mut socket = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    socket.set_nodelay(true).map_err(|e| e.to_string())?;
    // Plain handshake: C0 + C1, read S0 + S1 + S2, answer C2 = S1.
    let mut c0c1 = vec![3u8];
    c0c1.extend((0..PACKET_SIZE).map(|i| (i * 13 % 251) as u8));
    socket.write_all(&c0c1).await.map_err(|e| e.to_string())?;
    let mut s0s1s2 = vec![0u8; 1 + 2 * PACKET_SIZE];
    socket.read_exact(&mut s0s1s2).await.map_err(|e| e.to_string())?;
    socket.write_all(&s0s1s2[1..1 + PACKET_SIZE]).await.map_err(|e| e.to_string())?;

    let limits = ChunkLimits { max_message_bytes: 1 << 20, max_buffered_bytes: 1 << 20, max_chunk_streams: 64 };
    let mut c = Connection { socket, encoder: ChunkEncoder::new(), decoder: ChunkDecoder::new(limits) };
    c.send(&message::set_chunk_size(options.chunk_size)).await;
    c.encoder.set_chunk_size(options.chunk_size as usize);

    let tc_url = format!("rtmp://{addr}/live");
    let connect = Amf0Value::object([
        ("app", Amf0Value::string("live")),
        ("type", Amf0Value::string("nonprivate")),
        ("flashVer", Amf0Value::string("FMLE/3.0 (compatible; ferrocast-test)")),
        ("tcUrl", Amf0Value::string(&tc_url)),
        ("fourCcList", Amf0Value::StrictArray(["avc1", "hvc1", "av01", "Opus"].into_iter().map(Amf0Value::string).collect())),
    ]);
    c.command(0, &[Amf0Value::string("connect"), Amf0Value::Number(1.0), connect]).await;
    let result = c.answer().await?;
    if result[0] != Amf0Value::string("_result") {
        return Err(format!("connect refused: {result:?}"));
    }
    c.command(0, &[Amf0Value::string("releaseStream"), Amf0Value::Number(2.0), Amf0Value::Null, Amf0Value::string(stream_name)]).await;
    c.command(0, &[Amf0Value::string("FCPublish"), Amf0Value::Number(3.0), Amf0Value::Null, Amf0Value::string(stream_name)]).await;
    c.command(0, &[Amf0Value::string("createStream"), Amf0Value::Number(4.0), Amf0Value::Null]).await;
    let created = c.answer().await?;
    let stream_id = created.get(3).and_then(Amf0Value::as_number).ok_or("createStream gave no stream id")? as u32;
    let publish =
        [Amf0Value::string("publish"), Amf0Value::Number(5.0), Amf0Value::Null, Amf0Value::string(stream_name), Amf0Value::string("live")];
    c.command(stream_id, &publish).await;
    let status = c.answer().await?;
    let code = status.get(3).and_then(|info| info.get("code")).and_then(Amf0Value::as_str).unwrap_or("").to_string();
    if code != "NetStream.Publish.Start" {
        return Err(code);
    }

    // Drain whatever the server sends from now on (acknowledgements) so it never blocks.
    let (mut reader, mut writer) = c.socket.into_split();
    let drain = tokio::spawn(async move {
        let mut sink = vec![0u8; 4096];
        while matches!(reader.read(&mut sink).await, Ok(n) if n > 0) {}
    });
    let mut encoder = c.encoder;
    let message = |chunk_stream, tag: &FlvTag, payload: Bytes| Message {
        chunk_stream,
        timestamp: tag.timestamp,
        type_id: tag.kind,
        stream_id,
        payload,
    };
    let mut pending_audio: Vec<Vec<u8>> = Vec::new();
    let mut out = Vec::new();
    let started = tokio::time::Instant::now();
    let first_timestamp = tags.first().map_or(0, |t| t.timestamp);
    for tag in tags {
        if paced {
            writer.write_all(&out).await.map_err(|e| e.to_string())?;
            out.clear();
            let due = Duration::from_millis(u64::from(tag.timestamp.saturating_sub(first_timestamp)));
            tokio::time::sleep_until(started + due).await;
        }
        match tag.kind {
            type_id::VIDEO => {
                for chunk in encoder.chunks(&message(VIDEO_CHUNK_STREAM, tag, tag.body.clone())) {
                    out.extend(chunk);
                    if options.interleave && !pending_audio.is_empty() {
                        out.extend(pending_audio.remove(0));
                    }
                }
            }
            type_id::AUDIO if options.interleave => {
                pending_audio.push(encoder.chunks(&message(AUDIO_CHUNK_STREAM, tag, tag.body.clone())).concat())
            }
            type_id::AUDIO => encoder.encode(&message(AUDIO_CHUNK_STREAM, tag, tag.body.clone()), &mut out),
            type_id::DATA_AMF0 => {
                // `onMetaData {…}` from the file becomes `@setDataFrame onMetaData {…}`.
                let mut payload = amf0::encode_all(&[Amf0Value::string("@setDataFrame")]);
                payload.extend_from_slice(&tag.body);
                encoder.encode(&message(DATA_CHUNK_STREAM, tag, Bytes::from(payload)), &mut out);
            }
            _ => {}
        }
        if out.len() > 64 * 1024 {
            writer.write_all(&out).await.map_err(|e| e.to_string())?;
            out.clear();
        }
    }
    for audio in pending_audio {
        out.extend(audio);
    }
    let mut unpublish = Vec::new();
    encoder.encode(
        &message::command(0, &[Amf0Value::string("FCUnpublish"), Amf0Value::Number(6.0), Amf0Value::Null, Amf0Value::string(stream_name)]),
        &mut unpublish,
    );
    encoder.encode(
        &message::command(
            0,
            &[Amf0Value::string("deleteStream"), Amf0Value::Number(7.0), Amf0Value::Null, Amf0Value::Number(f64::from(stream_id))],
        ),
        &mut unpublish,
    );
    out.extend(unpublish);
    writer.write_all(&out).await.map_err(|e| e.to_string())?;
    writer.shutdown().await.map_err(|e| e.to_string())?;
    let _ = tokio::time::timeout(Duration::from_secs(10), drain).await;
    Ok(())
}
