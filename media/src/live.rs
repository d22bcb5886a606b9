//! One live publish as media sees it: the facade ingest hands coded frames to.
//!
//! It keeps the session's media clock (zero at the first video frame, so every timestamp the
//! packager sees is the publisher's own, shifted), sends the passthrough rung's frames and the
//! publisher's AAC straight to the recording, and starts a GStreamer pipeline only when a rung
//! must be encoded or the audio is not AAC. A relay therefore builds no pipeline at all; its
//! thumbnails come from the latest keyframe, decoded once per thumbnail interval. A source the
//! packager cannot carry (AV1) has no passthrough rung and is always decoded.
//!
//! Drop policy: frames go to the recording through its bounded channel; when the recording is
//! more than [`EVENT_CAPACITY`](crate::events::EVENT_CAPACITY) events behind (storage stalled),
//! the publisher's socket waits. The pipeline's own queues drop raw frames instead (counted).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::events::{AudioConfig, Frame, MediaTime, RecordingEvent, VideoConfig};
use crate::ladder::{transcoded_names, Encoding, PlannedRung};
use crate::live_pipeline::{needs_pipeline, AudioInput, LiveInput, LivePipeline, LiveSettings, PipelineStats, VideoInput};
use crate::package::VideoCodec;
use crate::MediaError;

pub struct LiveLadder {
    events: mpsc::Sender<RecordingEvent>,
    pipeline: Option<LivePipeline>,
    stats: Arc<PipelineStats>,
    passthrough: Vec<Arc<str>>,
    /// The passthrough rungs' codec record, also what relay thumbnails decode with; `None` for a
    /// codec the packager cannot carry.
    source: Option<VideoConfig>,
    /// RTMP time (ms) of the session's first video frame: the media clock's zero.
    anchor_ms: Option<i64>,
    aac: bool,
    /// Relay thumbnails: when the last one was taken. Off while a pipeline makes them.
    thumbnails_from_keyframes: bool,
    thumbnail_interval: Duration,
    last_thumbnail: Option<Instant>,
}

impl LiveLadder {
    /// Plans nothing itself: `rungs` come from `ladder::plan`. Announces the passthrough rungs'
    /// and the audio's codec configuration to the recording, and starts a pipeline if needed.
    pub async fn start(
        input: &LiveInput,
        rungs: &[PlannedRung],
        settings: &LiveSettings,
        events: mpsc::Sender<RecordingEvent>,
    ) -> Result<LiveLadder, MediaError> {
        let size = |v: u32| u16::try_from(v).unwrap_or(u16::MAX);
        let source = match &input.video {
            VideoInput::H264 { codec_data } => Some((VideoCodec::Avc, codec_data.clone())),
            VideoInput::H265 { codec_data } => Some((VideoCodec::Hevc, codec_data.clone())),
            VideoInput::Av1 { .. } => None,
        }
        .map(|(codec, record)| VideoConfig { codec, record, width: size(input.width), height: size(input.height) });
        let passthrough: Vec<Arc<str>> =
            rungs.iter().filter(|r| matches!(r.encoding, Encoding::Passthrough)).map(|r| Arc::from(r.name.as_str())).collect();
        if !passthrough.is_empty() && source.is_none() {
            // ladder::plan is told to leave the source rung out for such a codec; this is the backstop.
            return Err(MediaError::Unsupported("this video codec cannot be passed through; only transcoded rungs".into()));
        }
        for rung in &passthrough {
            if let Some(config) = &source {
                send(&events, RecordingEvent::VideoConfig { rung: rung.clone(), config: config.clone() }).await;
            }
        }
        let aac = match &input.audio {
            Some(AudioInput::Aac { codec_data, sample_rate, channels }) => {
                let config = AudioConfig { record: codec_data.clone(), sample_rate: *sample_rate, channels: *channels };
                send(&events, RecordingEvent::AudioConfig(config)).await;
                true
            }
            _ => false,
        };
        let pipeline = if needs_pipeline(input, rungs) { Some(LivePipeline::start(input, rungs, settings, events.clone())?) } else { None };
        if settings.shedding.is_some() {
            // Every transcoded rung but the top one may stand in for a shed rung above it.
            let mut transcoded = transcoded_names(rungs);
            transcoded.pop();
            if !transcoded.is_empty() {
                send(&events, RecordingEvent::StandIns { rungs: transcoded }).await;
            }
        }
        let stats = pipeline.as_ref().map_or_else(|| Arc::new(PipelineStats::default()), LivePipeline::stats);
        let makes_thumbnails = rungs.iter().any(|r| r.is_transcoded());
        Ok(LiveLadder {
            events,
            pipeline,
            stats,
            passthrough,
            // A pipeline with a ladder makes thumbnails from decoded frames already.
            thumbnails_from_keyframes: !makes_thumbnails && source.is_some(),
            source,
            anchor_ms: None,
            aac,
            thumbnail_interval: settings.thumbnail_interval,
            last_thumbnail: None,
        })
    }

    pub fn stats(&self) -> Arc<PipelineStats> {
        self.stats.clone()
    }

    pub fn has_failed(&self) -> bool {
        self.pipeline.as_ref().is_some_and(LivePipeline::has_failed)
    }

    /// RTMP milliseconds on the session's media clock (nanoseconds since the first video frame).
    fn media_time(&mut self, ms: i64) -> MediaTime {
        let anchor = *self.anchor_ms.get_or_insert(ms);
        (ms - anchor).saturating_mul(1_000_000)
    }

    /// One coded video frame (length-prefixed NAL units, or AV1 OBUs).
    pub async fn push_video(&mut self, dts_ms: i64, pts_ms: i64, keyframe: bool, data: Bytes) {
        let (dts, pts) = (self.media_time(dts_ms), self.media_time(pts_ms));
        if let Some(pipeline) = self.pipeline.as_mut() {
            pipeline.push_video(dts, pts, keyframe, data.clone());
        }
        for rung in &self.passthrough {
            let frame = Frame { dts, pts, keyframe, data: data.clone() };
            send(&self.events, RecordingEvent::Video { rung: rung.clone(), frame }).await;
        }
        let Some(config) = self.source.clone().filter(|_| self.thumbnails_from_keyframes) else { return };
        if keyframe && self.last_thumbnail.is_none_or(|t| t.elapsed() >= self.thumbnail_interval) {
            self.last_thumbnail = Some(Instant::now());
            let events = self.events.clone();
            tokio::task::spawn_blocking(move || match crate::thumbnail::from_keyframe(&config, &data) {
                Ok(jpeg) => {
                    let _ = events.try_send(RecordingEvent::Thumbnail(jpeg));
                }
                Err(e) => tracing::warn!(error = %e, "no thumbnail from the keyframe"),
            });
        }
    }

    /// One coded audio frame: AAC goes to every rendition as it is, MP3 and Opus to the encoder.
    pub async fn push_audio(&mut self, timestamp_ms: i64, data: Bytes) {
        // Audio before the first video frame has no place on the clock yet; segments start on video.
        if self.anchor_ms.is_none() {
            return;
        }
        let pts = self.media_time(timestamp_ms);
        if pts < 0 {
            return;
        }
        if self.aac {
            send(&self.events, RecordingEvent::Audio(Frame { dts: pts, pts, keyframe: true, data })).await;
        } else if let Some(pipeline) = self.pipeline.as_mut() {
            pipeline.push_audio(pts, data);
        }
    }

    /// Drains the pipeline, so its last frames reach the recording before anything else is sent.
    pub async fn finish(self) {
        if let Some(pipeline) = self.pipeline {
            pipeline.finish().await;
        }
    }
}

async fn send(events: &mpsc::Sender<RecordingEvent>, event: RecordingEvent) {
    // Closed means the recording already finished; frames after that have nowhere to go.
    let _ = events.send(event).await;
}
