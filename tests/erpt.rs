//! Enhanced RTMP end to end: HEVC and AV1 publishes (with Opus audio) and MP3 from ffmpeg through the
//! real binary. ffmpeg 5.1 cannot publish HEVC, AV1 or Opus over RTMP, so GStreamer encodes (x265enc,
//! aom's av1enc, opusenc) into an MP4, ffprobe reads the coded frames back out, and a client-side
//! serializer written from the E-RTMP v2 specification turns them into ExVideoTagHeader and
//! ExAudioTagHeader tags that our spec-written publisher sends.
//!
//! The serializer is cross-checked twice: every tag must parse back through `ferrocast_ingest::flv`
//! to exactly the frame it was made from, and the recording's passthrough HEVC rung must decode
//! (ffmpeg) to the same frames as the MP4 GStreamer wrote — an independent demuxer and decoder at
//! both ends. (ffmpeg 5.1 has no E-RTMP FLV demuxer, so there is no second parser of the tags
//! themselves here.)

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use ferrocast_ingest::flv::{self, AudioCodec, AudioTag, VideoCodec, VideoTag};
use ferrocast_ingest::rtmp::amf0::{self, Amf0Value};
use serde_json::Value;
use support::rtmp_publisher::{publish_paced, FlvTag, PublishOptions};
use support::{frame_hashes, probe, write_config, DataDir, Server, RELAY_CONFIG};

/// The ladder with the source rung, and encoder queues deep enough that a test run sharing two
/// cores with the rest of the suite drops no frames there: the frame counts below then check the
/// decode-once path, not the machine's load (live drops under load by design, see live_pipeline.rs).
const LADDER_CONFIG: &str = "[media]\ninclude_source = true\nencoder_queue_frames = 240\n";

const GRACE: (&str, &str) = ("FERROCAST_RTMP__RECONNECT_GRACE_SECS", "1");
const SECONDS: u32 = 4;
const FPS: u32 = 30;
const OPTIONS: PublishOptions = PublishOptions { chunk_size: 4096, interleave: true };

// ---------------------------------------------------------------------------------------------
// Encoding with GStreamer, reading back with ffprobe
// ---------------------------------------------------------------------------------------------

/// Encodes SECONDS of 640x360 test video with `video_encoder` (and Opus test audio) into an MP4.
fn gst_encode(dir: &Path, name: &str, video_encoder: &str, with_opus: bool) -> PathBuf {
    std::fs::create_dir_all(dir).expect("dir");
    let path = dir.join(name);
    let mut description = format!(
        "videotestsrc num-buffers={frames} pattern=ball ! video/x-raw,format=I420,width=640,height=360,framerate={FPS}/1 ! \
         {video_encoder} ! mp4mux name=mux ! filesink location={location}",
        frames = SECONDS * FPS,
        location = path.display(),
    );
    if with_opus {
        // 20 ms Opus packets.
        description.push_str(&format!(
            " audiotestsrc num-buffers={} samplesperbuffer=960 ! audio/x-raw,rate=48000,channels=2 ! opusenc ! opusparse ! mux.",
            SECONDS * 50
        ));
    }
    let args: Vec<&str> = description.split_whitespace().collect();
    let output = Command::new("gst-launch-1.0").arg("-q").args(&args).output().expect("gst-launch-1.0 (installed by make test)");
    assert!(output.status.success(), "gst-launch-1.0 {description}: {}", String::from_utf8_lossy(&output.stderr));
    path
}

/// One coded frame as ffprobe reads it from the MP4.
struct Packet {
    pts_ms: i64,
    dts_ms: i64,
    key: bool,
    data: Vec<u8>,
}

/// A stream's codec record (`extradata`) and its packets, in decoding order.
struct Stream {
    extradata: Vec<u8>,
    packets: Vec<Packet>,
}

/// ffprobe's `-show_data` hex dump ("00000000: 0102 0304 ...  ascii") back to bytes.
fn from_hexdump(dump: &str) -> Vec<u8> {
    let mut bytes = Vec::new();
    for line in dump.lines().filter(|l| l.len() > 10) {
        // Eight groups of four hex digits after the offset; the ASCII column follows.
        let hex: String = line[10..].chars().take(40).filter(|c| !c.is_whitespace()).collect();
        for pair in hex.as_bytes().chunks(2) {
            bytes.push(u8::from_str_radix(std::str::from_utf8(pair).expect("ascii"), 16).expect("hex"));
        }
    }
    bytes
}

fn ffprobe_stream(path: &Path, selector: &str) -> Stream {
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", selector, "-show_streams", "-show_packets", "-show_data", "-of", "json"])
        .arg(path)
        .output()
        .expect("ffprobe");
    assert!(output.status.success(), "ffprobe {}: {}", path.display(), String::from_utf8_lossy(&output.stderr));
    let probed: Value = serde_json::from_slice(&output.stdout).expect("ffprobe json");
    let stream = &probed["streams"][0];
    let (num, den) = stream["time_base"].as_str().and_then(|t| t.split_once('/')).expect("time_base");
    let (num, den): (i64, i64) = (num.parse().expect("num"), den.parse().expect("den"));
    let ms = |v: &Value| v.as_i64().expect("timestamp") * num * 1000 / den;
    let packets = probed["packets"]
        .as_array()
        .expect("packets")
        .iter()
        .map(|p| Packet {
            pts_ms: ms(&p["pts"]),
            dts_ms: ms(&p["dts"]),
            key: p["flags"].as_str().unwrap_or("").starts_with('K'),
            data: from_hexdump(p["data"].as_str().expect("data")),
        })
        .collect();
    Stream { extradata: from_hexdump(stream["extradata"].as_str().unwrap_or("")), packets }
}

/// (codec name, duration in seconds) of the first audio stream ffprobe finds at `url`.
fn probe_audio(url: &str) -> (String, f64) {
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "a:0", "-show_entries", "stream=codec_name:format=duration", "-of", "json", url])
        .output()
        .expect("ffprobe");
    assert!(output.status.success(), "ffprobe {url}: {}", String::from_utf8_lossy(&output.stderr));
    let probed: Value = serde_json::from_slice(&output.stdout).expect("ffprobe json");
    let codec = probed["streams"][0]["codec_name"].as_str().unwrap_or("none").to_string();
    (codec, probed["format"]["duration"].as_str().and_then(|d| d.parse().ok()).unwrap_or(0.0))
}

// ---------------------------------------------------------------------------------------------
// The E-RTMP serializer (client side), written from the v2 specification
// ---------------------------------------------------------------------------------------------

/// VideoPacketType values.
const SEQUENCE_START: u8 = 0;
const CODED_FRAMES: u8 = 1;
const CODED_FRAMES_X: u8 = 3;
/// VideoFrameType values.
const KEY_FRAME: u8 = 1;
const INTER_FRAME: u8 = 2;

/// ExVideoTagHeader: IsExHeader | frame type | packet type, FourCC, then the body.
fn ex_video(frame_type: u8, packet_type: u8, fourcc: &[u8; 4], body: &[&[u8]]) -> Vec<u8> {
    let mut tag = vec![0x80 | frame_type << 4 | packet_type];
    tag.extend_from_slice(fourcc);
    for part in body {
        tag.extend_from_slice(part);
    }
    tag
}

/// ExAudioTagHeader: SoundFormat 9 (ExHeader) | packet type, FourCC, then the body.
fn ex_audio(packet_type: u8, fourcc: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut tag = vec![9 << 4 | packet_type];
    tag.extend_from_slice(fourcc);
    tag.extend_from_slice(body);
    tag
}

fn tag(kind: u8, timestamp: i64, body: Vec<u8>) -> FlvTag {
    FlvTag { kind, timestamp: u32::try_from(timestamp).expect("timestamp"), body: Bytes::from(body) }
}

/// `onMetaData` with the size the ladder is planned from.
fn on_metadata(width: u32, height: u32) -> FlvTag {
    let body = amf0::encode_all(&[
        Amf0Value::string("onMetaData"),
        Amf0Value::object([
            ("width", Amf0Value::Number(f64::from(width))),
            ("height", Amf0Value::Number(f64::from(height))),
            ("framerate", Amf0Value::Number(f64::from(FPS))),
        ]),
    ]);
    FlvTag { kind: 18, timestamp: 0, body: Bytes::from(body) }
}

/// HEVC: SequenceStart with the HEVCDecoderConfigurationRecord, then CodedFrames with a 24-bit
/// composition time (CodedFramesX when it is zero, as OBS does).
fn hevc_tags(stream: &Stream) -> Vec<FlvTag> {
    let mut tags = vec![tag(9, 0, ex_video(KEY_FRAME, SEQUENCE_START, b"hvc1", &[&stream.extradata]))];
    for p in &stream.packets {
        let frame_type = if p.key { KEY_FRAME } else { INTER_FRAME };
        let composition = p.pts_ms - p.dts_ms;
        let body = if composition == 0 {
            ex_video(frame_type, CODED_FRAMES_X, b"hvc1", &[&p.data])
        } else {
            let cts = i32::try_from(composition).expect("composition time").to_be_bytes();
            ex_video(frame_type, CODED_FRAMES, b"hvc1", &[&cts[1..], &p.data])
        };
        tags.push(tag(9, p.dts_ms, body));
    }
    tags
}

/// The OBUs of a temporal unit: (obu_type, the whole OBU, where its payload starts in it).
fn obus(mut data: &[u8]) -> Vec<(u8, &[u8], usize)> {
    let mut found = Vec::new();
    while !data.is_empty() {
        let header = data[0];
        let mut at = 1 + usize::from(header & 0x04 != 0);
        assert!(header & 0x02 != 0, "low-overhead OBUs carry their size");
        let (mut size, mut shift) = (0usize, 0);
        loop {
            let byte = data[at];
            at += 1;
            size |= usize::from(byte & 0x7F) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                break;
            }
        }
        found.push(((header >> 3) & 0x0F, &data[..at + size], at));
        data = &data[at + size..];
    }
    found
}

/// An AV1CodecConfigurationRecord (av1C) around the sequence header OBU of the first key frame.
/// GStreamer 1.22's mp4mux writes an empty av1C, so it is built here from the AV1 specification:
/// seq_profile, and seq_level_idx/seq_tier of operating point 0, for an 8-bit 4:2:0 stream.
fn av1_config(key_frame: &[u8]) -> Vec<u8> {
    let (_, sequence_header, payload_at) =
        obus(key_frame).into_iter().find(|(t, _, _)| *t == 1).expect("a sequence header OBU in the key frame");
    let bits = |from: usize, count: usize| -> u8 {
        (from..from + count).fold(0u8, |v, i| v << 1 | (sequence_header[payload_at + i / 8] >> (7 - i % 8)) & 1)
    };
    let profile = bits(0, 3);
    let reduced_still_picture_header = bits(4, 1) == 1;
    let (level, tier) = if reduced_still_picture_header {
        (bits(5, 5), 0)
    } else {
        assert_eq!(bits(5, 1), 0, "no timing info from av1enc's realtime mode");
        // initial_display_delay_present_flag (1), operating_points_cnt_minus_1 (5),
        // operating_point_idc[0] (12), then seq_level_idx[0] (5) and, above 7, seq_tier[0].
        let level = bits(6 + 1 + 5 + 12, 5);
        (level, if level > 7 { bits(6 + 1 + 5 + 12 + 5, 1) } else { 0 })
    };
    let mut record = vec![0x81, profile << 5 | level, tier << 7 | 0b0000_1100, 0x00];
    record.extend_from_slice(sequence_header);
    record
}

/// AV1: SequenceStart with the av1C, then CodedFrames (no composition time for AV1) holding the
/// temporal unit's OBUs without the temporal delimiter, as in MP4.
fn av1_tags(stream: &Stream) -> Vec<FlvTag> {
    let config = av1_config(&stream.packets[0].data);
    let mut tags = vec![tag(9, 0, ex_video(KEY_FRAME, SEQUENCE_START, b"av01", &[&config]))];
    for p in &stream.packets {
        let frame_type = if p.key { KEY_FRAME } else { INTER_FRAME };
        let without_delimiter: Vec<u8> = obus(&p.data).into_iter().filter(|(t, _, _)| *t != 2).flat_map(|(_, o, _)| o.to_vec()).collect();
        tags.push(tag(9, p.dts_ms, ex_video(frame_type, CODED_FRAMES, b"av01", &[&without_delimiter])));
    }
    tags
}

/// Opus: SequenceStart with the ID header (OpusHead), then one Opus packet per CodedFrames.
fn opus_tags(stream: &Stream) -> Vec<FlvTag> {
    assert_eq!(&stream.extradata[..8], b"OpusHead");
    let mut tags = vec![tag(8, 0, ex_audio(SEQUENCE_START, b"Opus", &stream.extradata))];
    tags.extend(stream.packets.iter().map(|p| tag(8, p.pts_ms, ex_audio(CODED_FRAMES, b"Opus", &p.data))));
    tags
}

/// Moves every timestamp so the earliest is 0: with B-frames MP4 starts decoding before 0, and
/// RTMP timestamps are unsigned.
fn start_at_zero(streams: &mut [&mut Stream]) {
    let earliest = streams.iter().flat_map(|s| s.packets.iter()).map(|p| p.dts_ms.min(p.pts_ms)).min().unwrap_or(0);
    for packet in streams.iter_mut().flat_map(|s| s.packets.iter_mut()) {
        packet.dts_ms -= earliest;
        packet.pts_ms -= earliest;
    }
}

/// Metadata, both sequence starts, then video and audio merged by timestamp (video first at a
/// tie). The audio sequence start goes first: with interleaved chunks an audio message waits for
/// the next video chunk, and the ladder is planned at the first video frame.
fn interleave(mut video: Vec<FlvTag>, mut audio: Vec<FlvTag>, width: u32, height: u32) -> Vec<FlvTag> {
    let mut tags = vec![on_metadata(width, height), audio.remove(0), video.remove(0)];
    let mut frames: Vec<FlvTag> = video.into_iter().chain(audio).collect();
    frames.sort_by_key(|t| (t.timestamp, t.kind != 9));
    tags.extend(frames);
    tags
}

/// The first cross-check: our own parser reads every tag back to the frame it was made from.
fn assert_tags_parse_back(tags: &[FlvTag], video: &Stream, codec: VideoCodec, expected_config: &[u8]) {
    let video_tags: Vec<&FlvTag> = tags.iter().filter(|t| t.kind == 9).collect();
    let VideoTag::SequenceStart { codec: parsed, config, .. } = flv::parse_video(&video_tags[0].body, 0).expect("sequence start") else {
        panic!("the first video tag is not a sequence start")
    };
    assert_eq!((parsed, config), (codec, expected_config));
    assert_eq!(video_tags.len() - 1, video.packets.len());
    for (t, p) in video_tags[1..].iter().zip(&video.packets) {
        let VideoTag::Frame(frame) = flv::parse_video(&t.body, i64::from(t.timestamp)).expect("a frame parses") else {
            panic!("not a frame")
        };
        assert_eq!((frame.codec, frame.frame_type.is_key(), frame.dts_ms, frame.pts_ms), (codec, p.key, p.dts_ms, p.pts_ms));
        if codec == VideoCodec::Hevc {
            assert_eq!(frame.data, &p.data[..], "HEVC frames travel unchanged");
        }
    }
    for t in tags.iter().filter(|t| t.kind == 8) {
        match flv::parse_audio(&t.body, i64::from(t.timestamp)).expect("audio parses") {
            AudioTag::SequenceStart { codec, .. } | AudioTag::Frame(flv::AudioFrame { codec, .. }) => assert_eq!(codec, AudioCodec::Opus),
            other => panic!("unexpected audio tag {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Through the server
// ---------------------------------------------------------------------------------------------

/// The id of the channel's newest video once it is `ready`.
async fn ready_video(server: &Server, slug: &str) -> String {
    let video_id = server
        .poll(Duration::from_secs(30), || async {
            let (_, videos) = server.get_json(&format!("/api/channels/{slug}/videos")).await;
            videos["items"][0]["id"].as_str().map(str::to_string)
        })
        .await
        .expect("a video for the publish");
    server.wait_for_status(&video_id, "ready", Duration::from_secs(60)).await;
    video_id
}

#[tokio::test(flavor = "multi_thread")]
async fn hevc_with_opus_goes_live_transcoded_once_with_a_frame_exact_source_rung() {
    let dir = DataDir::new();
    let config = write_config(&dir.0, "hevc.toml", LADDER_CONFIG);
    let server = Server::start(&dir.0.join("data"), &[GRACE, ("FERROCAST_CONFIG", &config)]);
    let (_token, key) = server.streamer("hana", "hana-live").await;

    let encoder =
        "x265enc speed-preset=ultrafast key-int-max=30 option-string=bframes=2 ! h265parse ! video/x-h265,stream-format=hvc1,alignment=au";
    let mp4 = gst_encode(&dir.0, "hevc.mp4", encoder, true);
    let mut video = ffprobe_stream(&mp4, "v:0");
    let mut audio = ffprobe_stream(&mp4, "a:0");
    start_at_zero(&mut [&mut video, &mut audio]);
    assert_eq!(video.packets.len(), (SECONDS * FPS) as usize);
    assert!(video.packets.iter().any(|p| p.pts_ms != p.dts_ms), "B-frames, so composition times are exercised");
    let tags = interleave(hevc_tags(&video), opus_tags(&audio), 640, 360);
    assert_tags_parse_back(&tags, &video, VideoCodec::Hevc, &video.extradata);

    publish_paced(&server.rtmp, &key, &tags, OPTIONS).await.expect("published");
    let video_id = ready_video(&server, "hana-live").await;

    // Passthrough: the recording holds exactly the frames GStreamer encoded.
    let source = server.url(&format!("/hls/{video_id}/source/index.m3u8"));
    assert_eq!(frame_hashes(&source), frame_hashes(mp4.to_str().expect("utf-8 path")), "the HEVC source rung is frame-exact");
    let (_, master) = server.get_text(&format!("/hls/{video_id}/master.m3u8")).await;
    assert!(master.contains("hvc1.1.6.L"), "the source rung is announced as HEVC Main: {master}");

    // Decoded once into the H.264 ladder: a 640x360 source gets the 360p rung.
    let low = server.url(&format!("/hls/{video_id}/low/index.m3u8"));
    let (width, height, duration, frames) = probe(&low);
    assert_eq!((width, height), (640, 360));
    assert!(frames >= u64::from(SECONDS * FPS) * 9 / 10, "{frames} frames of {}", SECONDS * FPS);
    assert!((duration - f64::from(SECONDS)).abs() < 0.5, "duration {duration}");

    // Opus was decoded and encoded once to AAC, muxed into every rung.
    for rung in [&low, &source] {
        let (codec, duration) = probe_audio(rung);
        assert_eq!(codec, "aac", "{rung}");
        assert!((duration - f64::from(SECONDS)).abs() < 0.5, "audio duration {duration}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn av1_goes_live_transcoded_without_a_source_rung_and_a_relay_refuses_it() {
    let dir = DataDir::new();
    let encoder = "av1enc cpu-used=8 usage-profile=realtime keyframe-max-dist=30 target-bitrate=600 ! av1parse";
    let mp4 = gst_encode(&dir.0, "av1.mp4", encoder, false);
    let video = ffprobe_stream(&mp4, "v:0");
    assert_eq!(video.packets.len(), (SECONDS * FPS) as usize);
    let tags: Vec<FlvTag> = std::iter::once(on_metadata(640, 360)).chain(av1_tags(&video)).collect();
    let config = av1_config(&video.packets[0].data);
    assert_tags_parse_back(&tags, &video, VideoCodec::Av1, &config);

    // include_source is set, but the packager cannot carry AV1: only the H.264 rung is made.
    let config_file = write_config(&dir.0, "av1.toml", LADDER_CONFIG);
    let server = Server::start(&dir.0.join("data"), &[GRACE, ("FERROCAST_CONFIG", &config_file)]);
    let (_token, key) = server.streamer("aiko", "aiko-live").await;
    publish_paced(&server.rtmp, &key, &tags, OPTIONS).await.expect("published");
    let video_id = ready_video(&server, "aiko-live").await;
    let (_, master) = server.get_text(&format!("/hls/{video_id}/master.m3u8")).await;
    assert!(master.contains("low/index.m3u8") && !master.contains("source/"), "{master}");
    let (width, height, duration, frames) = probe(&server.url(&format!("/hls/{video_id}/low/index.m3u8")));
    assert_eq!((width, height), (640, 360));
    assert!(frames >= u64::from(SECONDS * FPS) * 9 / 10, "{frames} frames of {}", SECONDS * FPS);
    assert!((duration - f64::from(SECONDS)).abs() < 0.5, "duration {duration}");
    drop(server);

    // A relay only repackages, so it refuses AV1 with a reason the operator can act on.
    let relay_dir = DataDir::new();
    let relay_config = write_config(&relay_dir.0, "relay.toml", RELAY_CONFIG);
    let mut relay = Server::start(&relay_dir.0.join("data"), &[GRACE, ("FERROCAST_CONFIG", &relay_config)]);
    let (_token, key) = relay.streamer("aiko", "aiko-relay").await;
    let _ = publish_paced(&relay.rtmp, &key, &tags[..10], OPTIONS).await;
    let line = relay.wait_for_line(|l| l.contains("publish ended"));
    assert!(line.contains("AV1 cannot be relayed as it is"), "{line}");
}

#[tokio::test(flavor = "multi_thread")]
async fn mp3_from_ffmpeg_is_encoded_once_to_aac() {
    let dir = DataDir::new();
    let server = Server::start(&dir.0, &[GRACE]);
    let (_token, key) = server.streamer("mika", "mika-live").await;
    let published = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", &format!("testsrc2=size=640x360:rate={FPS}")])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100", "-t", &SECONDS.to_string()])
        .args(["-c:v", "libx264", "-preset", "veryfast", "-g", "30", "-pix_fmt", "yuv420p"])
        .args(["-c:a", "libmp3lame", "-b:a", "128k", "-f", "flv"])
        .arg(server.rtmp_url(&key))
        .status()
        .expect("ffmpeg");
    assert!(published.success());
    let video_id = ready_video(&server, "mika-live").await;
    let (codec, duration) = probe_audio(&server.url(&format!("/hls/{video_id}/low/index.m3u8")));
    assert_eq!(codec, "aac");
    assert!((duration - f64::from(SECONDS)).abs() < 0.5, "audio duration {duration}");
}
