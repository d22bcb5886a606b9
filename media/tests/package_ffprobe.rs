//! Cross-checks the CMAF packager against ffprobe: ffmpeg encodes six seconds of H.264 (with
//! B-frames, so composition offsets matter) and AAC into FLV, the test reads the FLV tags the way
//! ingest hands them over, feeds the samples to a `Cutter` in tag order, and asks ffprobe to decode
//! the whole stream, every segment alone and every independent part alone. The test is skipped,
//! with the reason printed, only when ffmpeg or ffprobe is not on PATH (CI installs both through
//! scripts/install-deps.sh).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::Bytes;
use ferrocast_media::package::{Cutter, CutterEvent, CutterSettings, Sample, TrackConfig, VideoCodec};

const VIDEO: u32 = 1;
const AUDIO: u32 = 2;
const WIDTH: u16 = 320;
const HEIGHT: u16 = 240;
const FPS: f64 = 30.0;
const SECONDS: f64 = 6.0;

/// The FLV's contents as packager input.
struct Flv {
    avcc: Bytes,
    asc: Bytes,
    sample_rate: u32,
    channels: u16,
    /// Every frame in tag order, with its track id.
    samples: Vec<(u32, Sample)>,
}

impl Flv {
    fn count(&self, track: u32) -> usize {
        self.samples.iter().filter(|(t, _)| *t == track).count()
    }
}

fn be24(b: &[u8]) -> u32 {
    (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2])
}

/// Reads an FLV file: 9-byte header and PreviousTagSize0, then tags of 11-byte header, body and
/// a 4-byte PreviousTagSize. Video dts is the tag time in ms scaled to 90 kHz and pts adds the
/// signed 24-bit composition time; AAC dts counts 1024 samples per frame from the first frame.
fn read_flv(data: &[u8]) -> Flv {
    assert_eq!(&data[..3], b"FLV");
    let mut at = usize::try_from(u32::from_be_bytes(data[5..9].try_into().unwrap())).unwrap() + 4;
    let mut flv = Flv { avcc: Bytes::new(), asc: Bytes::new(), sample_rate: 0, channels: 0, samples: Vec::new() };
    let mut first_audio_ms = None;
    let mut audio_frames = 0i64;
    while at + 11 <= data.len() {
        let tag_type = data[at] & 0x1f;
        let size = be24(&data[at + 1..]) as usize;
        let ms = i64::from(be24(&data[at + 4..]) | (u32::from(data[at + 7]) << 24));
        let body = &data[at + 11..at + 11 + size];
        at += 11 + size + 4;
        match tag_type {
            9 => {
                assert_eq!(body[0] & 0x0f, 7, "AVC");
                let keyframe = body[0] >> 4 == 1;
                // Sign-extend the 24-bit composition time.
                let cts = i64::from((be24(&body[2..]) << 8) as i32 >> 8);
                match body[1] {
                    0 => flv.avcc = Bytes::copy_from_slice(&body[5..]),
                    1 => flv
                        .samples
                        .push((VIDEO, Sample { dts: ms * 90, pts: (ms + cts) * 90, keyframe, data: Bytes::copy_from_slice(&body[5..]) })),
                    _ => {}
                }
            }
            8 => {
                assert_eq!(body[0] >> 4, 10, "AAC");
                match body[1] {
                    0 => {
                        flv.asc = Bytes::copy_from_slice(&body[2..]);
                        let index = ((body[2] & 0x07) << 1) | (body[3] >> 7);
                        flv.sample_rate =
                            [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350][usize::from(index)];
                        flv.channels = u16::from((body[3] >> 3) & 0x0f);
                    }
                    _ => {
                        let first = *first_audio_ms.get_or_insert(ms);
                        let dts = first * i64::from(flv.sample_rate) / 1000 + audio_frames * 1024;
                        audio_frames += 1;
                        flv.samples.push((AUDIO, Sample { dts, pts: dts, keyframe: true, data: Bytes::copy_from_slice(&body[2..]) }));
                    }
                }
            }
            _ => {}
        }
    }
    flv
}

fn tool_missing() -> Option<&'static str> {
    ["ffmpeg", "ffprobe"].into_iter().find(|tool| Command::new(tool).arg("-version").output().is_err())
}

struct Probe {
    stdout: String,
    stderr: String,
}

impl Probe {
    /// Fails with the first few complaints: a broken file makes ffprobe print thousands of lines.
    fn assert_clean(&self, what: &str) {
        let head: Vec<&str> = self.stderr.lines().take(8).collect();
        assert!(self.stderr.is_empty(), "{what} should decode without errors; ffprobe says:\n{}", head.join("\n"));
    }
}

fn ffprobe(file: &Path, args: &[&str]) -> Probe {
    let output = Command::new("ffprobe").args(["-v", "error"]).args(args).arg(file).output().unwrap();
    assert!(output.status.success(), "ffprobe {file:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    Probe { stdout: String::from_utf8(output.stdout).unwrap(), stderr: String::from_utf8(output.stderr).unwrap() }
}

/// `key=value` pairs of one `-of compact=p=0` line.
fn fields(line: &str) -> Vec<(&str, &str)> {
    line.split('|').filter_map(|kv| kv.split_once('=')).collect()
}

fn field<'a>(line: &'a str, key: &str) -> &'a str {
    fields(line).into_iter().find(|(k, _)| *k == key).map(|(_, v)| v).unwrap_or_else(|| panic!("no {key} in {line:?}"))
}

/// Decodes every frame of `file` and returns (media_type, key_frame) per frame, in output order.
fn decode_frames(file: &Path) -> Vec<(String, bool)> {
    let probe = ffprobe(file, &["-show_entries", "frame=media_type,key_frame", "-of", "compact=p=0"]);
    probe.assert_clean(&file.display().to_string());
    // A frame with side data (x264's SEI on the first one) gets an empty line of its own.
    probe
        .stdout
        .lines()
        .filter(|line| !line.is_empty())
        .map(|line| (field(line, "media_type").to_owned(), field(line, "key_frame") == "1"))
        .collect()
}

fn write(dir: &Path, name: &str, parts: &[&[u8]]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, parts.concat()).unwrap();
    path
}

#[test]
fn ffprobe_decodes_what_the_cutter_makes() {
    if let Some(tool) = tool_missing() {
        println!("skipped: {tool} is not on PATH (scripts/install-deps.sh installs it)");
        return;
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("package_ffprobe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let flv_path = dir.join("source.flv");
    let status = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            &format!("testsrc2=size={WIDTH}x{HEIGHT}:rate={FPS}"),
            "-f",
            "lavfi",
            "-i",
            "sine",
        ])
        .args(["-t", &SECONDS.to_string(), "-c:v", "libx264", "-g", "30", "-bf", "2", "-sc_threshold", "0", "-c:a", "aac", "-f", "flv"])
        .arg(&flv_path)
        .status()
        .unwrap();
    assert!(status.success(), "ffmpeg could not make the source");
    let flv = read_flv(&std::fs::read(&flv_path).unwrap());
    let video_frames = flv.count(VIDEO);
    let audio_frames = flv.count(AUDIO);
    assert_eq!(video_frames, 180);
    assert!(flv.samples.iter().any(|(t, s)| *t == VIDEO && s.pts < s.dts + 3000 && !s.keyframe), "B-frames present");

    let tracks = [
        TrackConfig::Video { codec: VideoCodec::Avc, config_record: flv.avcc.clone(), width: WIDTH, height: HEIGHT, timescale: 90_000 },
        TrackConfig::Audio { codec_config: flv.asc.clone(), sample_rate: flv.sample_rate, channels: flv.channels },
    ];
    let mut cutter = Cutter::new(&tracks, CutterSettings::default()).unwrap();
    let init = cutter.init();
    let mut events = Vec::new();
    for (track, sample) in &flv.samples {
        events.extend(cutter.push(*track, sample.clone()).unwrap());
    }
    events.extend(cutter.flush().unwrap());
    assert_eq!(cutter.dropped(), 0, "the FLV starts with a keyframe");

    let segments: Vec<(u64, Bytes, f64)> = events
        .iter()
        .filter_map(|e| match e {
            CutterEvent::Segment { sequence, parts, duration } => Some((*sequence, Bytes::from(parts.concat()), *duration)),
            _ => None,
        })
        .collect();
    let parts: Vec<(u64, u32, Bytes, f64, bool)> = events
        .iter()
        .filter_map(|e| match e {
            CutterEvent::Part { segment, index, bytes, duration, independent } => {
                Some((*segment, *index, bytes.clone(), *duration, *independent))
            }
            _ => None,
        })
        .collect();
    println!("{} segments, {} parts, {video_frames} video and {audio_frames} audio frames", segments.len(), parts.len());
    assert_eq!(segments.len(), 3, "keyframes every second, 2 s segments over 6 s");

    // The whole stream: init + every segment.
    let mut whole: Vec<&[u8]> = vec![&init];
    whole.extend(segments.iter().map(|(_, bytes, _)| &bytes[..]));
    let full = write(&dir, "full.mp4", &whole);
    let probe = ffprobe(
        &full,
        &["-count_frames", "-show_entries", "stream=codec_name,nb_read_frames,width,height:format=duration", "-of", "compact=p=0"],
    );
    println!("ffprobe full stream:\n{}", probe.stdout);
    probe.assert_clean("the whole stream");
    let lines: Vec<&str> = probe.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "two streams and the format: {lines:?}");
    assert_eq!(field(lines[0], "codec_name"), "h264");
    assert_eq!((field(lines[0], "width"), field(lines[0], "height")), ("320", "240"));
    assert_eq!(field(lines[0], "nb_read_frames"), video_frames.to_string(), "every video frame decodes");
    assert_eq!(field(lines[1], "codec_name"), "aac");
    assert_eq!(field(lines[1], "nb_read_frames"), audio_frames.to_string(), "every audio frame decodes");
    let duration: f64 = field(lines[2], "duration").parse().unwrap();
    assert!((duration - SECONDS).abs() < 0.15, "duration {duration}");

    // Presentation times survive: with B-frames, every decoded picture's pts (in the 90 kHz track
    // timescale, no edit list) is one the FLV gave, so the signed composition offsets are right.
    for (track, stream) in [(VIDEO, "v"), (AUDIO, "a")] {
        let probe = ffprobe(&full, &["-select_streams", stream, "-show_entries", "frame=pts", "-of", "csv=p=0"]);
        let mut decoded: Vec<i64> =
            probe.stdout.lines().filter(|l| !l.is_empty()).map(|l| l.trim_end_matches(',').parse().unwrap()).collect();
        let mut expected: Vec<i64> = flv.samples.iter().filter(|(t, _)| *t == track).map(|(_, s)| s.pts).collect();
        decoded.sort_unstable();
        expected.sort_unstable();
        assert_eq!(decoded, expected, "presentation times of stream {stream}");
    }

    // Each segment alone, after the init segment: starts with a keyframe, decodes all its frames.
    let mut decoded = 0;
    for (sequence, bytes, seconds) in &segments {
        let file = write(&dir, &format!("segment-{sequence}.mp4"), &[&init, bytes]);
        let frames = decode_frames(&file);
        let video: Vec<bool> = frames.iter().filter(|(t, _)| t == "video").map(|(_, k)| *k).collect();
        assert_eq!(video.first(), Some(&true), "segment {sequence} starts with a keyframe");
        assert_eq!(video.len() as f64, (seconds * FPS).round(), "segment {sequence}: every frame of {seconds} s");
        assert!(frames.iter().any(|(t, _)| t == "audio"), "segment {sequence} has audio");
        decoded += video.len();
    }
    assert_eq!(decoded, video_frames);

    // Each independent part alone, after the init segment, including those in mid-segment.
    let independent: Vec<_> = parts.iter().filter(|p| p.4).collect();
    assert!(independent.iter().any(|p| p.1 > 0), "keyframes every second give independent parts inside 2 s segments");
    for (segment, index, bytes, seconds, _) in independent {
        let file = write(&dir, &format!("part-{segment}.{index}.mp4"), &[&init, bytes]);
        let frames = decode_frames(&file);
        let video: Vec<bool> = frames.iter().filter(|(t, _)| t == "video").map(|(_, k)| *k).collect();
        assert_eq!(video.first(), Some(&true), "part {segment}.{index} starts with a keyframe");
        assert_eq!(video.len() as f64, (seconds * FPS).round(), "part {segment}.{index}: every frame of {seconds} s");
    }
    println!(
        "ffprobe: whole stream {duration:.3} s, {} segments and {} independent parts decode alone",
        segments.len(),
        parts.iter().filter(|p| p.4).count()
    );

    std::fs::remove_dir_all(&dir).unwrap();
}
