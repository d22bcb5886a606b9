//! The GStreamer pipeline of one live publish, built only when something needs pixels or audio
//! encoding: appsrc → parse → decode once → tee → per transcoded rung: leaky queue → scale → x264
//! → appsink (see `pipeline.rs`), a thumbnail branch, and MP3 or Opus → AAC when the publisher
//! sends those. H.264, HEVC and AV1 sources are decoded here (AV1 by aom's `av1dec`, the one AV1
//! decoder Debian 12's GStreamer has), always into the same x264 ladder. The passthrough rung and
//! AAC audio never come here (`live.rs` hands them to the packager).
//!
//! Drop policy: the ingest socket is never blocked. Raw frames queue in front of each encoder up to
//! `encoder_queue_frames`; beyond that the oldest are dropped (counted). If the input queue itself
//! grows past its byte limit (decoder stalled), whole GOPs are dropped until the next keyframe,
//! counted too. The pipeline is always brought to `Null` when the [`LivePipeline`] is finished or
//! dropped.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use tokio::sync::{mpsc, oneshot};

use crate::events::{MediaTime, RecordingEvent};
use crate::ladder::{transcoded_names, PlannedRung};
pub use crate::pipeline::PipelineStats;
use crate::pipeline::{by_name, ladder_branches, Built, EncoderQueue, LadderSettings};
use crate::shedding::{self, Gates, ShedSettings};
use crate::MediaError;

/// The video as the publisher sends it.
#[derive(Clone, Debug)]
pub enum VideoInput {
    /// AVCDecoderConfigurationRecord from the sequence header.
    H264 { codec_data: Bytes },
    /// HEVCDecoderConfigurationRecord (Enhanced RTMP `hvc1`).
    H265 { codec_data: Bytes },
    /// AV1CodecConfigurationRecord (Enhanced RTMP `av01`); frames are OBUs of one temporal unit
    /// in the low-overhead format. The packager cannot carry AV1, so it is only ever decoded.
    Av1 { codec_data: Bytes },
}

impl VideoInput {
    /// Whether our CMAF packager can carry this video as it is (a passthrough rung).
    pub fn can_pass_through(&self) -> bool {
        !matches!(self, VideoInput::Av1 { .. })
    }
}

/// The audio as the publisher sends it.
#[derive(Clone, Debug)]
pub enum AudioInput {
    /// AudioSpecificConfig and what it says; passed through untouched.
    Aac { codec_data: Bytes, sample_rate: u32, channels: u16 },
    /// MP3 frames; decoded and encoded once to AAC.
    Mp3,
    /// Opus packets (Enhanced RTMP `Opus`, channel mapping family 0: mono or stereo); decoded and
    /// encoded once to AAC.
    Opus { channels: u8 },
}

impl AudioInput {
    /// Whether this audio must go through the AAC encoder.
    fn needs_encoding(&self) -> bool {
        !matches!(self, AudioInput::Aac { .. })
    }
}

#[derive(Clone, Debug)]
pub struct LiveInput {
    pub video: VideoInput,
    pub audio: Option<AudioInput>,
    /// Source size and rate, for the passthrough rung's init segment, the thumbnail's aspect and
    /// the encoders' keyframe backstop.
    pub width: u32,
    pub height: u32,
    pub frame_rate: f64,
}

#[derive(Clone, Debug)]
pub struct LiveSettings {
    pub segment_duration: Duration,
    pub part_duration: Duration,
    pub x264_preset: String,
    pub encoder_queue_frames: u32,
    pub thumbnail_interval: Duration,
    /// Input bytes the appsrc may hold before whole GOPs are dropped.
    pub max_input_bytes: u64,
    /// The CPU-aware ladder (`shedding/`); `None`: every rung drops frames when behind.
    pub shedding: Option<ShedSettings>,
}

/// Bound on waiting for the last frames to leave the encoders after end-of-stream.
const EOS_TIMEOUT: Duration = Duration::from_secs(10);

pub struct LivePipeline {
    pipeline: gst::Pipeline,
    video_src: Option<gst_app::AppSrc>,
    audio_src: Option<gst_app::AppSrc>,
    stats: Arc<PipelineStats>,
    ended: Option<oneshot::Receiver<()>>,
    max_input_bytes: u64,
    /// Set while dropping input up to the next keyframe.
    skipping_to_keyframe: bool,
    /// The CPU-aware ladder's policy task, when it runs.
    governor: Option<tokio::task::JoinHandle<()>>,
}

/// Whether a publish needs a pipeline at all: a rung to encode, or audio to encode.
pub fn needs_pipeline(input: &LiveInput, rungs: &[PlannedRung]) -> bool {
    rungs.iter().any(|r| r.is_transcoded()) || input.audio.as_ref().is_some_and(AudioInput::needs_encoding)
}

/// The `gst-launch` description: appsrcs (`video`, `audio`) in front of the shared ladder
/// branches (see `pipeline.rs`), and the MP3 or Opus → AAC chain when needed.
pub fn describe(input: &LiveInput, rungs: &[PlannedRung], settings: &LiveSettings) -> String {
    let (parse, decode) = match input.video {
        VideoInput::H264 { .. } => ("h264parse", "avdec_h264"),
        VideoInput::H265 { .. } => ("h265parse", "avdec_h265"),
        VideoInput::Av1 { .. } => ("av1parse", "av1dec"),
    };
    let mut d = String::new();
    if rungs.iter().any(|r| r.is_transcoded()) {
        d.push_str(&format!(
            "appsrc name=video is-live=true format=time do-timestamp=false max-bytes={max} ! {parse} ! \
             queue max-size-buffers=4 max-size-bytes=0 max-size-time=0 ! {decode} ! videoconvert ! tee name=vt ",
            max = settings.max_input_bytes,
        ));
        let ladder = LadderSettings {
            segment_duration: settings.segment_duration,
            x264_preset: settings.x264_preset.clone(),
            zero_latency: true,
            encoder_queue: EncoderQueue::Leaky(settings.encoder_queue_frames),
            frame_rate: input.frame_rate,
            thumbnail_interval: settings.thumbnail_interval,
            source_width: input.width,
            source_height: input.height,
        };
        d.push_str(&ladder_branches(rungs, &ladder));
        d.push(' ');
    }
    let decode_audio = match input.audio {
        Some(AudioInput::Mp3) => "mpegaudioparse ! decodebin",
        Some(AudioInput::Opus { .. }) => "opusdec",
        Some(AudioInput::Aac { .. }) | None => return d,
    };
    d.push_str(&format!(
        "appsrc name=audio is-live=true format=time do-timestamp=false max-bytes=2000000 ! {decode_audio} ! \
         audioconvert ! audioresample ! avenc_aac ! aacparse ! audio/mpeg,mpegversion=4,stream-format=raw ! \
         appsink name=audio_out sync=false",
    ));
    d
}

/// (element, Debian package) for what only some sources need, checked when such a source is
/// published: a missing one is a clear publish error naming the package.
fn optional_elements(input: &LiveInput) -> Vec<(&'static str, &'static str)> {
    let mut elements = Vec::new();
    if let VideoInput::Av1 { .. } = input.video {
        elements.extend([("av1parse", "gstreamer1.0-plugins-bad"), ("av1dec", "gstreamer1.0-plugins-bad")]);
    }
    if let Some(AudioInput::Opus { .. }) = input.audio {
        elements.push(("opusdec", "gstreamer1.0-plugins-base"));
    }
    elements
}

impl LivePipeline {
    /// Builds and starts the pipeline; encoded frames go to `events`.
    pub fn start(
        input: &LiveInput,
        rungs: &[PlannedRung],
        settings: &LiveSettings,
        events: mpsc::Sender<RecordingEvent>,
    ) -> Result<LivePipeline, MediaError> {
        let missing: Vec<String> = optional_elements(input)
            .into_iter()
            .filter(|(element, _)| gst::ElementFactory::find(element).is_none())
            .map(|(element, package)| format!("{element} (from {package})"))
            .collect();
        if !missing.is_empty() {
            return Err(MediaError::MissingElements(missing.join(", ")));
        }
        let gates = settings.shedding.map(|_| Gates::new(transcoded_names(rungs), events.clone()));
        let built = Built::new(&describe(input, rungs, settings), rungs, settings.segment_duration, gates.clone(), events)?;
        let video_src = match built.pipeline.by_name("video") {
            Some(src) => {
                let src = src.downcast::<gst_app::AppSrc>().map_err(|_| MediaError::Build("video is not an appsrc".into()))?;
                src.set_caps(Some(&video_caps(input)));
                Some(src)
            }
            None => None,
        };
        let audio_src = match &input.audio {
            Some(audio) if audio.needs_encoding() => {
                let src = by_name(&built.pipeline, "audio")?
                    .downcast::<gst_app::AppSrc>()
                    .map_err(|_| MediaError::Build("audio is not an appsrc".into()))?;
                src.set_caps(Some(&audio_caps(audio)));
                Some(src)
            }
            _ => None,
        };
        let governor = match (gates, settings.shedding) {
            (Some(gates), Some(shed)) => shedding::govern(gates, built.stats.clone(), shed, settings.segment_duration),
            _ => None,
        };
        built.play()?;
        let Built { pipeline, stats, ended } = built;
        Ok(LivePipeline {
            pipeline,
            video_src,
            audio_src,
            stats,
            ended: Some(ended),
            max_input_bytes: settings.max_input_bytes,
            skipping_to_keyframe: false,
            governor,
        })
    }

    pub fn stats(&self) -> Arc<PipelineStats> {
        self.stats.clone()
    }

    pub fn has_failed(&self) -> bool {
        self.stats.failed.load(Ordering::Relaxed)
    }

    /// Pushes one coded video frame (AVCC/HVCC length-prefixed NAL units) to the decoder.
    pub fn push_video(&mut self, dts: MediaTime, pts: MediaTime, keyframe: bool, data: Bytes) {
        let Some(src) = &self.video_src else { return };
        if src.current_level_bytes() > self.max_input_bytes || (self.skipping_to_keyframe && !keyframe) {
            self.skipping_to_keyframe = true;
            self.stats.dropped_frames.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.skipping_to_keyframe = false;
        let mut buffer = gst::Buffer::from_slice(data);
        if let Some(b) = buffer.get_mut() {
            b.set_dts(clock_time(dts));
            b.set_pts(clock_time(pts));
            if !keyframe {
                b.set_flags(gst::BufferFlags::DELTA_UNIT);
            }
        }
        // Err means the pipeline is shutting down or failed; the bus reports why.
        let _ = src.push_buffer(buffer);
    }

    /// Pushes one MP3 frame or Opus packet to be encoded to AAC.
    pub fn push_audio(&mut self, pts: MediaTime, data: Bytes) {
        let Some(src) = &self.audio_src else { return };
        let mut buffer = gst::Buffer::from_slice(data);
        if let Some(b) = buffer.get_mut() {
            b.set_pts(clock_time(pts));
            b.set_dts(clock_time(pts));
        }
        let _ = src.push_buffer(buffer);
    }

    /// Ends the stream: the encoders drain into the appsinks, then the pipeline stops.
    pub async fn finish(mut self) {
        for src in self.video_src.iter().chain(self.audio_src.iter()) {
            let _ = src.end_of_stream();
        }
        if let Some(ended) = self.ended.take() {
            if tokio::time::timeout(EOS_TIMEOUT, ended).await.is_err() {
                tracing::warn!("pipeline did not drain within {EOS_TIMEOUT:?}; stopping it");
            }
        }
        // Drop sets the state to Null.
    }
}

/// Media time never goes below zero inside GStreamer: the session clock starts at the first video
/// frame and earlier audio is not pushed.
fn clock_time(t: MediaTime) -> gst::ClockTime {
    gst::ClockTime::from_nseconds(u64::try_from(t).unwrap_or(0))
}

impl Drop for LivePipeline {
    fn drop(&mut self) {
        if let Some(governor) = self.governor.take() {
            governor.abort();
        }
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

fn video_caps(input: &LiveInput) -> gst::Caps {
    match &input.video {
        VideoInput::H264 { codec_data } => gst::Caps::builder("video/x-h264")
            .field("stream-format", "avc")
            .field("alignment", "au")
            .field("codec_data", gst::Buffer::from_slice(codec_data.clone()))
            .build(),
        VideoInput::H265 { codec_data } => gst::Caps::builder("video/x-h265")
            .field("stream-format", "hvc1")
            .field("alignment", "au")
            .field("codec_data", gst::Buffer::from_slice(codec_data.clone()))
            .build(),
        // An AV1 sequence header rarely carries timing info, and a decoded frame rate of 0/1 is
        // one the ladder's scaling and rate branches refuse; the publisher's rate fills it in.
        VideoInput::Av1 { codec_data } => gst::Caps::builder("video/x-av1")
            .field("stream-format", "obu-stream")
            .field("alignment", "tu")
            .field("codec_data", gst::Buffer::from_slice(codec_data.clone()))
            .field("framerate", frame_rate(input.frame_rate))
            .build(),
    }
}

/// A frame rate as GStreamer's fraction, to the millihertz (29.97 is 29970/1000).
fn frame_rate(rate: f64) -> gst::Fraction {
    let millihertz = (rate.max(1.0) * 1000.0).round().min(f64::from(i32::MAX)) as i32;
    gst::Fraction::new(millihertz, 1000)
}

fn audio_caps(audio: &AudioInput) -> gst::Caps {
    match audio {
        AudioInput::Opus { channels } => gst::Caps::builder("audio/x-opus")
            .field("channel-mapping-family", 0i32)
            .field("channels", i32::from(*channels))
            .field("rate", 48_000i32)
            .build(),
        // AAC never reaches the pipeline; MP3 is the only other input.
        AudioInput::Mp3 | AudioInput::Aac { .. } => {
            gst::Caps::builder("audio/mpeg").field("mpegversion", 1i32).field("layer", 3i32).build()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ladder::{default_ladder, plan};

    fn input() -> LiveInput {
        LiveInput {
            video: VideoInput::H264 { codec_data: Bytes::new() },
            audio: Some(AudioInput::Aac { codec_data: Bytes::new(), sample_rate: 48_000, channels: 2 }),
            width: 1280,
            height: 720,
            frame_rate: 30.0,
        }
    }

    fn settings() -> LiveSettings {
        LiveSettings {
            segment_duration: Duration::from_secs(2),
            part_duration: Duration::from_millis(500),
            x264_preset: "superfast".into(),
            encoder_queue_frames: 8,
            thumbnail_interval: Duration::from_secs(30),
            max_input_bytes: 8_000_000,
            shedding: None,
        }
    }

    #[test]
    fn description_decodes_once_and_encodes_each_rung_into_an_appsink() {
        let rungs = plan(&default_ladder(), 1280, 720, true).expect("plan");
        let d = describe(&input(), &rungs, &settings());
        assert_eq!(d.matches("avdec_h264").count(), 1, "decode once: {d}");
        assert_eq!(d.matches("x264enc").count(), 3, "three encoders, none for the source rung");
        assert_eq!(d.matches("stream-format=avc,alignment=au ! appsink").count(), 3, "{d}");
        assert!(!d.contains("name=source"), "the passthrough rung never enters the pipeline: {d}");
        assert!(!d.contains("avenc_aac") && !d.contains("name=audio"), "AAC is passed through, not re-encoded");
        assert!(d.contains("width=640,height=360") && d.contains("bitrate=2800") && d.contains("speed-preset=superfast"));
        assert!(d.contains("video/x-raw,framerate=1/30"));
        // The pipeline parses: every element exists and every link is well-formed.
        crate::elements::init().expect("gstreamer");
        gst::parse::launch(&d).expect("valid pipeline description");
    }

    #[test]
    fn a_relay_needs_no_pipeline_unless_its_audio_must_be_encoded() {
        let rungs = plan(&[], 1280, 720, true).expect("plan");
        assert!(!needs_pipeline(&input(), &rungs));
        let mp3 = LiveInput { audio: Some(AudioInput::Mp3), ..input() };
        assert!(needs_pipeline(&mp3, &rungs));
        let d = describe(&mp3, &rungs, &settings());
        assert!(!d.contains("x264enc") && !d.contains("avdec_h264"), "{d}");
        assert_eq!(d.matches("avenc_aac").count(), 1);
        crate::elements::init().expect("gstreamer");
        gst::parse::launch(&d).expect("valid pipeline description");
    }

    #[test]
    fn av1_and_opus_are_decoded_once_into_the_x264_ladder_and_aac() {
        let rungs = plan(&default_ladder(), 1280, 720, false).expect("plan");
        let input =
            LiveInput { video: VideoInput::Av1 { codec_data: Bytes::new() }, audio: Some(AudioInput::Opus { channels: 2 }), ..input() };
        assert!(!input.video.can_pass_through());
        assert!(needs_pipeline(&input, &rungs));
        let d = describe(&input, &rungs, &settings());
        assert_eq!(d.matches("av1parse ! queue max-size-buffers=4 max-size-bytes=0 max-size-time=0 ! av1dec").count(), 1, "{d}");
        assert_eq!(d.matches("x264enc").count(), 3, "{d}");
        assert_eq!(d.matches("opusdec ! audioconvert").count(), 1, "{d}");
        assert_eq!(d.matches("avenc_aac").count(), 1, "{d}");
        crate::elements::init().expect("gstreamer");
        assert!(optional_elements(&input).iter().all(|(e, _)| gst::ElementFactory::find(e).is_some()));
        gst::parse::launch(&d).expect("valid pipeline description");
    }

    #[test]
    fn hevc_is_decoded_with_its_own_parser() {
        let rungs = plan(&default_ladder(), 1280, 720, false).expect("plan");
        let hevc = describe(&LiveInput { video: VideoInput::H265 { codec_data: Bytes::new() }, ..input() }, &rungs, &settings());
        assert!(hevc.contains("h265parse ! queue") && hevc.contains("avdec_h265"), "{hevc}");
    }
}
