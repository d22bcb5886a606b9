//! One rendition's packaging: codec configurations and frames in, what to store and list out.
//!
//! It owns the rendition's [`Cutter`] and starts a new one (a new init segment, and a discontinuity
//! before the next segment) when the session or a codec configuration changes, or when a
//! publisher's clock jumps backwards. Until the codec configurations a rendition needs are known
//! (video always, audio when the rendition carries it), frames wait in arrival order, bounded.
//! Pure: no I/O, no clock; the recording task stores and lists what comes out, in order.

use std::time::Duration;

use bytes::Bytes;

use crate::events::{AudioConfig, Frame, MediaTime, VideoConfig};
use crate::package::{Cutter, CutterEvent, CutterSettings, PackageError, Sample, TrackConfig};

/// Video timescale: 90 kHz, the MPEG convention, exact for every common frame rate.
pub const VIDEO_TIMESCALE: u32 = 90_000;
const VIDEO_TRACK: u32 = 1;
const AUDIO_TRACK: u32 = 2;
/// Samples held while a codec configuration is still missing: about ten seconds of video and
/// audio. Past it, a rendition that waits for audio starts without it.
const MAX_PENDING: usize = 1000;
/// Samples in one AAC frame.
const AAC_FRAME: i64 = 1024;

/// What the recording must store and list, in this order.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// A new init segment; every segment until the next one refers to it (EXT-X-MAP).
    Init { uri: String, bytes: Bytes },
    /// `map` and `discontinuity` are those of the segment the part belongs to (a playlist writes
    /// them above the segment's first part).
    Part { segment: u64, index: u32, uri: String, bytes: Bytes, duration: Duration, independent: bool, map: String, discontinuity: bool },
    Segment {
        sequence: u64,
        uri: String,
        /// The segment's parts, back to back its file (see `CutterEvent::Segment`).
        parts: Vec<Bytes>,
        duration: Duration,
        discontinuity: bool,
        map: String,
    },
}

pub fn segment_uri(sequence: u64) -> String {
    format!("{sequence:08}.m4s")
}

pub fn part_uri(segment: u64, index: u32) -> String {
    format!("{segment:08}-p{index}.m4s")
}

/// Named after the first segment it serves, so crash recovery can tell which init a stored
/// segment needs from the segments table alone.
pub fn init_uri(first_segment: u64) -> String {
    format!("init-{first_segment:08}.mp4")
}

#[derive(Debug)]
enum Pending {
    Video(Sample),
    Audio(Sample),
}

#[derive(Debug)]
pub struct RenditionPackager {
    name: String,
    segment_target: Duration,
    part_target: Duration,
    video: Option<VideoConfig>,
    audio: Option<AudioConfig>,
    /// The rendition carries audio (its CODECS name it); it waits for the audio configuration.
    expects_audio: bool,
    cutter: Option<Cutter>,
    init: Option<String>,
    pending: Vec<Pending>,
    next_segment: u64,
    next_fragment: u32,
    /// The next segment starts after a new init (not for the very first).
    discontinuity: bool,
    /// Samples that could not be packaged (before the first keyframe, after a bad timestamp).
    pub dropped: u64,
}

impl RenditionPackager {
    pub fn new(name: &str, expects_audio: bool, segment_target: Duration, part_target: Duration, next_segment: u64) -> Self {
        RenditionPackager {
            name: name.to_owned(),
            segment_target,
            part_target,
            video: None,
            audio: None,
            expects_audio,
            cutter: None,
            init: None,
            pending: Vec::new(),
            next_segment,
            next_fragment: 1,
            discontinuity: next_segment > 0,
            dropped: 0,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The media sequence number the next segment will get.
    pub fn next_segment(&self) -> u64 {
        self.next_segment
    }

    /// A (possibly new) video configuration: a change ends the current cutter; frames waiting for
    /// it go on.
    pub fn set_video(&mut self, config: VideoConfig) -> Vec<Output> {
        if self.video.as_ref() == Some(&config) {
            return Vec::new();
        }
        let mut out = if self.cutter.is_some() { self.flush() } else { Vec::new() };
        self.video = Some(config);
        self.drain_pending(&mut out);
        out
    }

    pub fn set_audio(&mut self, config: AudioConfig) -> Vec<Output> {
        if self.audio.as_ref() == Some(&config) {
            return Vec::new();
        }
        let mut out = if self.cutter.is_some() && self.expects_audio { self.flush() } else { Vec::new() };
        self.audio = Some(config);
        self.drain_pending(&mut out);
        out
    }

    fn drain_pending(&mut self, out: &mut Vec<Output>) {
        if self.cutter.is_none() && !self.pending.is_empty() && self.start(out) {
            for sample in std::mem::take(&mut self.pending) {
                self.feed(sample, out);
            }
        }
    }

    /// Ends the current cutter (a session ended, or a codec changed): its last part and segment
    /// come out, and whatever comes next starts with a new init after a discontinuity.
    pub fn flush(&mut self) -> Vec<Output> {
        let mut out = Vec::new();
        if let Some(mut cutter) = self.cutter.take() {
            match cutter.flush() {
                Ok(events) => self.outputs(events, &mut out),
                Err(e) => tracing::warn!(rendition = %self.name, error = %e, "could not flush the packager"),
            }
            self.next_segment = cutter.next_segment();
            self.next_fragment = cutter.next_fragment();
            self.discontinuity = true;
        }
        self.dropped += self.pending.len() as u64;
        self.pending.clear();
        out
    }

    /// A new session: the codec configurations must be announced again.
    pub fn new_session(&mut self) -> Vec<Output> {
        let out = self.flush();
        self.video = None;
        self.audio = None;
        out
    }

    pub fn push_video(&mut self, frame: &Frame) -> Vec<Output> {
        let sample =
            Sample { dts: video_ticks(frame.dts), pts: video_ticks(frame.pts), keyframe: frame.keyframe, data: frame.data.clone() };
        self.push(Pending::Video(sample))
    }

    /// An audio frame already on the audio track's clock (see [`AudioClock`]).
    pub fn push_audio(&mut self, sample: Sample) -> Vec<Output> {
        if !self.expects_audio {
            return Vec::new();
        }
        self.push(Pending::Audio(sample))
    }

    fn push(&mut self, sample: Pending) -> Vec<Output> {
        let mut out = Vec::new();
        if self.cutter.is_none() {
            self.pending.push(sample);
            if self.pending.len() > MAX_PENDING && self.video.is_some() && self.expects_audio && self.audio.is_none() {
                tracing::warn!(rendition = %self.name, "no audio configuration arrived; going on without audio");
                self.expects_audio = false;
                self.pending.retain(|p| matches!(p, Pending::Video(_)));
            }
            if self.pending.len() > MAX_PENDING {
                self.pending.remove(0);
                self.dropped += 1;
            }
            self.drain_pending(&mut out);
            return out;
        }
        self.feed(sample, &mut out);
        out
    }

    /// Creates the cutter once every configuration it needs is known.
    fn start(&mut self, out: &mut Vec<Output>) -> bool {
        let Some(video) = &self.video else { return false };
        let mut tracks = vec![TrackConfig::Video {
            codec: video.codec,
            config_record: video.record.clone(),
            width: video.width,
            height: video.height,
            timescale: VIDEO_TIMESCALE,
        }];
        if self.expects_audio {
            let Some(audio) = &self.audio else { return false };
            tracks.push(TrackConfig::Audio {
                codec_config: audio.record.clone(),
                sample_rate: audio.sample_rate,
                channels: audio.channels,
            });
        }
        let settings = CutterSettings {
            segment_target: self.segment_target,
            part_target: self.part_target,
            first_segment: self.next_segment,
            first_fragment: self.next_fragment,
        };
        match Cutter::new(&tracks, settings) {
            Ok(cutter) => {
                let uri = init_uri(self.next_segment);
                out.push(Output::Init { uri: uri.clone(), bytes: cutter.init() });
                self.init = Some(uri);
                self.cutter = Some(cutter);
                true
            }
            Err(e) => {
                // A codec record the init segment cannot describe: nothing of this rendition plays.
                tracing::warn!(rendition = %self.name, error = %e, "cannot package this rendition");
                self.video = None;
                false
            }
        }
    }

    fn feed(&mut self, sample: Pending, out: &mut Vec<Output>) {
        let Some(cutter) = self.cutter.as_mut() else { return };
        let (track, sample) = match sample {
            Pending::Video(s) => (VIDEO_TRACK, s),
            Pending::Audio(s) => (AUDIO_TRACK, s),
        };
        match cutter.push(track, sample.clone()) {
            Ok(events) => self.outputs(events, out),
            // The publisher's clock jumped back (a new encoder behind the same connection): start
            // over with a new init after a discontinuity, then take the frame there.
            Err(PackageError::DtsBackwards { .. }) if track == VIDEO_TRACK => {
                out.extend(self.flush());
                if self.start(out) {
                    self.feed(Pending::Video(sample), out);
                }
            }
            Err(e) => {
                self.dropped += 1;
                tracing::debug!(rendition = %self.name, error = %e, "sample dropped");
            }
        }
    }

    fn outputs(&mut self, events: Vec<CutterEvent>, out: &mut Vec<Output>) {
        let Some(map) = self.init.clone() else { return };
        for event in events {
            match event {
                CutterEvent::Part { segment, index, bytes, duration, independent } => out.push(Output::Part {
                    segment,
                    index,
                    uri: part_uri(segment, index),
                    bytes,
                    duration: Duration::from_secs_f64(duration.max(0.0)),
                    independent,
                    map: map.clone(),
                    discontinuity: self.discontinuity,
                }),
                CutterEvent::Segment { sequence, parts, duration } => {
                    out.push(Output::Segment {
                        sequence,
                        uri: segment_uri(sequence),
                        parts,
                        duration: Duration::from_secs_f64(duration.max(0.0)),
                        discontinuity: self.discontinuity,
                        map: map.clone(),
                    });
                    self.discontinuity = false;
                    self.next_segment = sequence + 1;
                }
            }
        }
    }
}

/// Nanoseconds of media time in 90 kHz ticks.
fn video_ticks(t: MediaTime) -> i64 {
    (i128::from(t) * i128::from(VIDEO_TIMESCALE) / 1_000_000_000) as i64
}

/// AAC frames on the audio track's clock. RTMP carries audio times in whole milliseconds, so
/// frames of 1024 samples (21.33 ms at 48 kHz) arrive 21 or 22 ms apart; taken literally that
/// jitter would give every sample a slightly wrong duration. Each frame is placed 1024 samples
/// after the previous one unless the source time says otherwise by more than half a frame (a gap
/// or an overlap the publisher really had), where it follows the source.
#[derive(Debug, Default)]
pub struct AudioClock {
    sample_rate: u32,
    last: Option<i64>,
}

impl AudioClock {
    pub fn new(sample_rate: u32) -> Self {
        AudioClock { sample_rate, last: None }
    }

    pub fn sample(&mut self, frame: &Frame) -> Option<Sample> {
        if self.sample_rate == 0 || frame.pts < 0 {
            return None;
        }
        let source = (i128::from(frame.pts) * i128::from(self.sample_rate) / 1_000_000_000) as i64;
        let ticks = match self.last {
            Some(last) if (source - (last + AAC_FRAME)).abs() <= AAC_FRAME / 2 => last + AAC_FRAME,
            _ => source,
        };
        self.last = Some(ticks);
        Some(Sample { dts: ticks, pts: ticks, keyframe: true, data: frame.data.clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::VideoCodec;

    const MS: i64 = 1_000_000;

    fn video_config() -> VideoConfig {
        // A minimal AVCDecoderConfigurationRecord: version 1, High 3.1, 4-byte lengths, one SPS, one PPS.
        let record = vec![1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 4, 0x67, 0x64, 0, 0x1f, 1, 0, 2, 0x68, 0xee];
        VideoConfig { codec: VideoCodec::Avc, record: Bytes::from(record), width: 640, height: 360 }
    }

    fn audio_config() -> AudioConfig {
        AudioConfig { record: Bytes::from_static(&[0x11, 0x90]), sample_rate: 48_000, channels: 2 }
    }

    fn frame(ms: i64, keyframe: bool) -> Frame {
        Frame { dts: ms * MS, pts: ms * MS, keyframe, data: Bytes::from_static(&[0, 0, 0, 2, 0x65, 0x88]) }
    }

    fn kinds(out: &[Output]) -> Vec<String> {
        out.iter()
            .map(|o| match o {
                Output::Init { uri, .. } => format!("init {uri}"),
                Output::Part { uri, independent, .. } => format!("part {uri}{}", if *independent { " I" } else { "" }),
                Output::Segment { uri, discontinuity, map, .. } => format!("segment {uri} {map}{}", if *discontinuity { " D" } else { "" }),
            })
            .collect()
    }

    /// Pushes `seconds` of 30 fps video with a keyframe every second, starting at `start_ms`.
    fn run(p: &mut RenditionPackager, start_ms: i64, seconds: i64) -> Vec<Output> {
        let mut out = Vec::new();
        for i in 0..seconds * 30 {
            out.extend(p.push_video(&frame(start_ms + i * 1000 / 30, i % 30 == 0)));
        }
        out
    }

    #[test]
    fn frames_wait_for_their_configurations_then_come_out_as_init_parts_and_segments() {
        let mut p = RenditionPackager::new("low", true, Duration::from_secs(2), Duration::from_millis(500), 0);
        p.set_video(video_config());
        assert!(p.push_video(&frame(0, true)).is_empty(), "waits for the audio configuration");
        let mut out = p.set_audio(audio_config());
        out.extend(run(&mut p, 33, 5));
        out.extend(p.flush());
        let k = kinds(&out);
        assert_eq!(k[0], "init init-00000000.mp4");
        assert_eq!(k[1], "part 00000000-p0.m4s I");
        assert!(k.contains(&"segment 00000000.m4s init-00000000.mp4".to_string()), "{k:?}");
        assert!(k.contains(&"segment 00000001.m4s init-00000000.mp4".to_string()), "{k:?}");
        assert!(k.contains(&"part 00000001-p0.m4s I".to_string()) && k.contains(&"part 00000001-p1.m4s".to_string()), "{k:?}");
        assert_eq!(p.dropped, 0);
    }

    #[test]
    fn a_new_session_continues_the_numbering_with_a_new_init_after_a_discontinuity() {
        let mut p = RenditionPackager::new("low", false, Duration::from_secs(2), Duration::from_millis(500), 0);
        p.set_video(video_config());
        let mut first = run(&mut p, 0, 4);
        first.extend(p.new_session());
        let segments = first.iter().filter(|o| matches!(o, Output::Segment { .. })).count() as u64;
        assert_eq!(p.next_segment(), segments);
        // The reconnected publisher's clock starts again at zero.
        p.set_video(video_config());
        let second = run(&mut p, 0, 3);
        let k = kinds(&second);
        assert_eq!(k[0], format!("init init-{segments:08}.mp4"));
        assert!(k.contains(&format!("segment {:08}.m4s init-{segments:08}.mp4 D", segments)), "{k:?}");
    }

    #[test]
    fn a_backwards_clock_starts_a_new_init_and_a_changed_config_too() {
        let mut p = RenditionPackager::new("source", false, Duration::from_secs(2), Duration::from_millis(500), 0);
        p.set_video(video_config());
        run(&mut p, 10_000, 3);
        let out = run(&mut p, 0, 3);
        assert!(kinds(&out).iter().any(|k| k.starts_with("init ")), "{:?}", kinds(&out));
        let changed = VideoConfig { width: 1280, height: 720, ..video_config() };
        let out = p.set_video(changed);
        assert!(kinds(&out).iter().any(|k| k.starts_with("segment ")), "the old cutter is flushed");
        let out = run(&mut p, 20_000, 1);
        assert!(kinds(&out)[0].starts_with("init "));
    }

    #[test]
    fn a_rendition_without_its_audio_config_goes_on_without_audio() {
        let mut p = RenditionPackager::new("low", true, Duration::from_secs(2), Duration::from_millis(500), 0);
        p.set_video(video_config());
        let out = run(&mut p, 0, 40);
        assert!(kinds(&out).iter().any(|k| k.starts_with("segment ")), "video-only after waiting");
    }

    #[test]
    fn audio_clock_smooths_millisecond_jitter_and_follows_real_gaps() {
        let mut clock = AudioClock::new(48_000);
        let ms = |t: i64| Frame { dts: t * MS, pts: t * MS, keyframe: true, data: Bytes::from_static(&[1]) };
        let ticks: Vec<i64> = [0, 21, 43, 64, 85].iter().map(|t| clock.sample(&ms(*t)).expect("sample").dts).collect();
        assert_eq!(ticks, vec![0, 1024, 2048, 3072, 4096]);
        // A real gap of 200 ms is kept.
        assert_eq!(clock.sample(&ms(285)).expect("sample").dts, 285 * 48);
        assert!(clock.sample(&ms(-5)).is_none());
    }
}
