//! The GStreamer pipeline of one live publish: appsrc → parse → decode once → tee → per rung:
//! leaky queue → scale → x264 → splitmuxsink (MPEG-TS, one file per segment), with the source AAC
//! passed through to every rung, and a thumbnail branch.
//!
//! Drop policy: the ingest socket is never blocked. Raw frames queue in front of each encoder up to
//! `encoder_queue_frames`; beyond that the oldest are dropped (counted). Splits follow running time
//! (`send-keyframe-requests`), so dropped frames never stretch a segment and all rungs cut at the
//! same instants. If the input queue itself grows past its byte limit (decoder stalled), whole GOPs
//! are dropped until the next keyframe, counted too.
//!
//! What the pipeline produces is reported as [`PipelineEvent`]s on a bounded channel; this module
//! never touches storage, playlists or the database. The pipeline is always brought to `Null` when
//! the [`LivePipeline`] is finished or dropped.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use tokio::sync::{mpsc, oneshot};

use crate::ladder::{Encoding, PlannedRung};
use crate::pipeline::{by_name, ladder_branches, Built, EncoderQueue, LadderSettings};
pub use crate::pipeline::{PipelineEvent, PipelineStats};
use crate::MediaError;

/// The video as the publisher sends it.
#[derive(Clone, Debug)]
pub enum VideoInput {
    /// AVCDecoderConfigurationRecord from the sequence header.
    H264 { codec_data: Bytes },
    /// HEVCDecoderConfigurationRecord (Enhanced RTMP `hvc1`).
    H265 { codec_data: Bytes },
}

/// The audio as the publisher sends it.
#[derive(Clone, Debug)]
pub enum AudioInput {
    /// AudioSpecificConfig; passed through untouched.
    Aac { codec_data: Bytes },
    /// MP3 frames; decoded and encoded once to AAC.
    Mp3,
}

#[derive(Clone, Debug)]
pub struct LiveInput {
    pub video: VideoInput,
    pub audio: Option<AudioInput>,
    /// Source size and rate, for the thumbnail's aspect and the encoders' keyframe backstop.
    pub width: u32,
    pub height: u32,
    pub frame_rate: f64,
}

#[derive(Clone, Debug)]
pub struct LiveSettings {
    pub segment_duration: Duration,
    pub x264_preset: String,
    pub encoder_queue_frames: u32,
    pub thumbnail_interval: Duration,
    /// Input bytes the appsrc may hold before whole GOPs are dropped.
    pub max_input_bytes: u64,
}

/// Bound on waiting for the last segments to be written after end-of-stream.
const EOS_TIMEOUT: Duration = Duration::from_secs(10);

pub struct LivePipeline {
    pipeline: gst::Pipeline,
    video_src: gst_app::AppSrc,
    audio_src: Option<gst_app::AppSrc>,
    stats: Arc<PipelineStats>,
    ended: Option<oneshot::Receiver<()>>,
    /// RTMP time (ms) and pipeline running time of the first media frame: the anchor of all
    /// timestamps. Sequence headers can carry unrelated times, so they never set it.
    anchor: Option<(i64, gst::ClockTime)>,
    max_input_bytes: u64,
    /// Set while dropping input up to the next keyframe.
    skipping_to_keyframe: bool,
}

/// The `gst-launch` description of the whole live pipeline: appsrcs (`video`, `audio`) in front
/// of the shared ladder branches (see `pipeline.rs`).
pub fn describe(input: &LiveInput, rungs: &[PlannedRung], settings: &LiveSettings, spool: &Path) -> String {
    let (parse, decode) = match input.video {
        VideoInput::H264 { .. } => ("h264parse", "avdec_h264"),
        VideoInput::H265 { .. } => ("h265parse", "avdec_h265"),
    };
    let transcoding = rungs.iter().any(|r| matches!(r.encoding, Encoding::Transcode { .. }));
    // A relay (source rung only) decodes keyframes alone, just for thumbnails.
    let decode_input = if transcoding {
        "queue max-size-buffers=4 max-size-bytes=0 max-size-time=0"
    } else {
        "queue leaky=downstream max-size-buffers=120 max-size-bytes=0 max-size-time=0 ! identity drop-buffer-flags=delta-unit"
    };
    let mut d = format!(
        "appsrc name=video is-live=true format=time do-timestamp=false max-bytes={max} ! {parse} ! tee name=vin \
         vin. ! {decode_input} ! {decode} ! videoconvert ! tee name=vt ",
        max = settings.max_input_bytes,
    );
    if let Some(audio) = &input.audio {
        let chain = match audio {
            AudioInput::Aac { .. } => "aacparse",
            AudioInput::Mp3 => "mpegaudioparse ! decodebin ! audioconvert ! audioresample ! avenc_aac ! aacparse",
        };
        d.push_str(&format!("appsrc name=audio is-live=true format=time do-timestamp=false max-bytes=2000000 ! {chain} ! tee name=at "));
    }
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
    d.push_str(&ladder_branches(rungs, &ladder, input.audio.is_some(), parse, spool));
    d
}

impl LivePipeline {
    /// Builds and starts the pipeline; segments go to `spool` (created if missing).
    pub fn start(
        input: &LiveInput,
        rungs: &[PlannedRung],
        settings: &LiveSettings,
        spool: &Path,
        events: mpsc::Sender<PipelineEvent>,
    ) -> Result<LivePipeline, MediaError> {
        std::fs::create_dir_all(spool)?;
        let built = Built::new(&describe(input, rungs, settings, spool), rungs, events)?;
        let video_src = by_name(&built.pipeline, "video")?
            .downcast::<gst_app::AppSrc>()
            .map_err(|_| MediaError::Build("video is not an appsrc".into()))?;
        video_src.set_caps(Some(&video_caps(&input.video)));
        let audio_src = match &input.audio {
            Some(audio) => {
                let src = by_name(&built.pipeline, "audio")?
                    .downcast::<gst_app::AppSrc>()
                    .map_err(|_| MediaError::Build("audio is not an appsrc".into()))?;
                src.set_caps(Some(&audio_caps(audio)));
                Some(src)
            }
            None => None,
        };
        built.play()?;
        let Built { pipeline, stats, ended } = built;
        Ok(LivePipeline {
            pipeline,
            video_src,
            audio_src,
            stats,
            ended: Some(ended),
            anchor: None,
            max_input_bytes: settings.max_input_bytes,
            skipping_to_keyframe: false,
        })
    }

    pub fn stats(&self) -> Arc<PipelineStats> {
        self.stats.clone()
    }

    pub fn has_failed(&self) -> bool {
        self.stats.failed.load(Ordering::Relaxed)
    }

    /// Maps an RTMP millisecond time onto the pipeline's running time.
    fn clock(&mut self, ms: i64) -> gst::ClockTime {
        let (anchor_ms, anchor_rt) =
            *self.anchor.get_or_insert_with(|| (ms, self.pipeline.current_running_time().unwrap_or(gst::ClockTime::ZERO)));
        let delta = ms - anchor_ms;
        if delta >= 0 {
            anchor_rt + gst::ClockTime::from_mseconds(delta as u64)
        } else {
            // Audio may start a few milliseconds before the first video frame.
            anchor_rt.saturating_sub(gst::ClockTime::from_mseconds(delta.unsigned_abs()))
        }
    }

    /// Pushes one coded video frame (AVCC/HVCC length-prefixed NAL units).
    pub fn push_video(&mut self, dts_ms: i64, pts_ms: i64, keyframe: bool, data: Bytes) {
        if self.video_src.current_level_bytes() > self.max_input_bytes || (self.skipping_to_keyframe && !keyframe) {
            self.skipping_to_keyframe = true;
            self.stats.dropped_frames.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.skipping_to_keyframe = false;
        let dts = self.clock(dts_ms);
        let pts = self.clock(pts_ms);
        let mut buffer = gst::Buffer::from_slice(data);
        if let Some(b) = buffer.get_mut() {
            b.set_dts(dts);
            b.set_pts(pts);
            if !keyframe {
                b.set_flags(gst::BufferFlags::DELTA_UNIT);
            }
        }
        // Err means the pipeline is shutting down or failed; the bus reports why.
        let _ = self.video_src.push_buffer(buffer);
    }

    /// Pushes one coded audio frame (raw AAC access unit or MP3 frame).
    pub fn push_audio(&mut self, timestamp_ms: i64, data: Bytes) {
        let Some(src) = self.audio_src.clone() else { return };
        // Audio before the first video frame has nothing to go with; the segmenter starts on video.
        if self.anchor.is_none() {
            return;
        }
        let pts = self.clock(timestamp_ms);
        let mut buffer = gst::Buffer::from_slice(data);
        if let Some(b) = buffer.get_mut() {
            b.set_pts(pts);
            b.set_dts(pts);
        }
        let _ = src.push_buffer(buffer);
    }

    /// Ends the stream: the last segments are closed and reported, then the pipeline stops.
    pub async fn finish(mut self) {
        let _ = self.video_src.end_of_stream();
        if let Some(audio) = &self.audio_src {
            let _ = audio.end_of_stream();
        }
        if let Some(ended) = self.ended.take() {
            if tokio::time::timeout(EOS_TIMEOUT, ended).await.is_err() {
                tracing::warn!("pipeline did not drain within {EOS_TIMEOUT:?}; stopping it");
            }
        }
        // Drop sets the state to Null.
    }
}

impl Drop for LivePipeline {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

fn video_caps(video: &VideoInput) -> gst::Caps {
    match video {
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
    }
}

fn audio_caps(audio: &AudioInput) -> gst::Caps {
    match audio {
        AudioInput::Aac { codec_data } => gst::Caps::builder("audio/mpeg")
            .field("mpegversion", 4i32)
            .field("stream-format", "raw")
            .field("codec_data", gst::Buffer::from_slice(codec_data.clone()))
            .build(),
        AudioInput::Mp3 => gst::Caps::builder("audio/mpeg").field("mpegversion", 1i32).field("layer", 3i32).build(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ladder::{default_ladder, plan};

    fn input() -> LiveInput {
        LiveInput {
            video: VideoInput::H264 { codec_data: Bytes::new() },
            audio: Some(AudioInput::Aac { codec_data: Bytes::new() }),
            width: 1280,
            height: 720,
            frame_rate: 30.0,
        }
    }

    fn settings() -> LiveSettings {
        LiveSettings {
            segment_duration: Duration::from_secs(2),
            x264_preset: "superfast".into(),
            encoder_queue_frames: 8,
            thumbnail_interval: Duration::from_secs(30),
            max_input_bytes: 8_000_000,
        }
    }

    #[test]
    fn description_decodes_once_and_encodes_each_rung_with_aligned_splits() {
        let rungs = plan(&default_ladder(), 1280, 720, true).expect("plan");
        let d = describe(&input(), &rungs, &settings(), Path::new("/spool"));
        assert_eq!(d.matches("avdec_h264").count(), 1, "decode once: {d}");
        assert_eq!(d.matches("x264enc").count(), 3, "three encoders, none for the source rung");
        assert_eq!(d.matches("send-keyframe-requests=true").count(), 4);
        assert_eq!(d.matches("max-size-time=2000000000 ").count(), 4);
        assert_eq!(d.matches("at. ! queue ! ").count(), 4, "audio to every rung");
        assert!(!d.contains("avenc_aac"), "AAC is passed through, not re-encoded");
        assert!(d.contains("width=640,height=360") && d.contains("bitrate=2800") && d.contains("speed-preset=superfast"));
        assert!(d.contains("location=/spool/low_%05d.ts"));
        assert!(d.contains("video/x-raw,framerate=1/30"));
        // The pipeline parses: every element exists and every link is well-formed.
        crate::elements::init().expect("gstreamer");
        gst::parse::launch(&d).expect("valid pipeline description");
    }

    #[test]
    fn a_relay_encodes_nothing_and_decodes_keyframes_only_for_thumbnails() {
        let rungs = plan(&[], 1280, 720, true).expect("plan");
        let d = describe(&input(), &rungs, &settings(), Path::new("/spool"));
        assert!(!d.contains("x264enc"), "{d}");
        assert!(d.contains("identity drop-buffer-flags=delta-unit ! avdec_h264"), "{d}");
        assert!(d.contains("splitmuxsink name=source"));
        crate::elements::init().expect("gstreamer");
        gst::parse::launch(&d).expect("valid pipeline description");
    }

    #[test]
    fn mp3_is_encoded_once_and_no_audio_means_no_audio_branch() {
        let rungs = plan(&default_ladder(), 1280, 720, false).expect("plan");
        let mp3 = describe(&LiveInput { audio: Some(AudioInput::Mp3), ..input() }, &rungs, &settings(), Path::new("/s"));
        assert_eq!(mp3.matches("avenc_aac").count(), 1);
        let silent = describe(&LiveInput { audio: None, ..input() }, &rungs, &settings(), Path::new("/s"));
        assert!(!silent.contains("name=audio") && !silent.contains("audio_0"));
        let hevc =
            describe(&LiveInput { video: VideoInput::H265 { codec_data: Bytes::new() }, ..input() }, &rungs, &settings(), Path::new("/s"));
        assert!(hevc.contains("h265parse ! tee name=vin") && hevc.contains("avdec_h265"));
    }
}
