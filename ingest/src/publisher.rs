//! One accepted publish: turns FLV tags into media's live ladder input.
//!
//! It collects the sequence headers and onMetaData, starts the ladder (`ferrocast_media::live`) at
//! the first coded video frame (when codecs and size are known), pushes frames with their DTS/PTS,
//! keeps the stream's health up to date for the owner, and drains the ladder when the publish
//! ends. The drop policy is media's (see `media/src/live.rs`).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferrocast_media::ladder::{self, Encoding};
use ferrocast_media::live::LiveLadder;
use ferrocast_media::live_pipeline::{AudioInput, LiveInput, LiveSettings, PipelineStats, VideoInput};
use ferrocast_media::playlist::AAC_LC_CODEC;
use ferrocast_media::recording::{encoded_codecs, RenditionInfo};

use crate::flv::{self, AudioCodec, AudioTag, VideoCodec, VideoTag};
use crate::live::{EndReason, Ingest, PublishLease};
use crate::session::{MediaKind, StreamMetadata};

/// Assumed when the publisher sends no onMetaData with the size.
const FALLBACK_SIZE: (u32, u32) = (1280, 720);
const FALLBACK_FRAME_RATE: f64 = 30.0;
/// Announced for AAC in the master playlist until segments are measured.
const NOMINAL_AUDIO_BPS: u64 = 160_000;
/// How often the input bitrate shown to the owner is recomputed.
const BITRATE_WINDOW: Duration = Duration::from_secs(2);

/// Why a publish cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("unsupported video codec {0}")]
    UnsupportedVideo(String),
    #[error("malformed media: {0}")]
    Malformed(#[from] flv::FlvError),
    #[error("the transcoding pipeline failed")]
    PipelineFailed,
    #[error("could not start the pipeline: {0}")]
    Pipeline(#[from] ferrocast_media::MediaError),
}

pub struct Publisher {
    ingest: Arc<Ingest>,
    pub lease: PublishLease,
    metadata: Option<StreamMetadata>,
    video: Option<VideoInput>,
    audio: Option<AudioInput>,
    audio_codec: Option<String>,
    source_codec: Option<String>,
    ladder: Option<LiveLadder>,
    stats: Option<Arc<PipelineStats>>,
    warned_audio: bool,
    bytes_in_window: u64,
    window_started: Instant,
}

impl Publisher {
    pub fn new(ingest: Arc<Ingest>, lease: PublishLease) -> Self {
        Self {
            ingest,
            lease,
            metadata: None,
            video: None,
            audio: None,
            audio_codec: None,
            source_codec: None,
            ladder: None,
            stats: None,
            warned_audio: false,
            bytes_in_window: 0,
            window_started: Instant::now(),
        }
    }

    pub fn set_metadata(&mut self, metadata: StreamMetadata) {
        self.lease.live.update_health(|h| {
            h.input_width = metadata.video_width.unwrap_or(h.input_width);
            h.input_height = metadata.video_height.unwrap_or(h.input_height);
            h.input_fps = metadata.video_frame_rate.map_or(h.input_fps, f64::from);
            if let Some(encoder) = &metadata.encoder {
                h.encoder = encoder.clone();
            }
        });
        self.metadata = Some(metadata);
    }

    pub async fn media(&mut self, kind: MediaKind, timestamp_ms: i64, payload: Bytes) -> Result<(), PublishError> {
        self.measure(payload.len());
        if self.ladder.as_ref().is_some_and(LiveLadder::has_failed) {
            return Err(PublishError::PipelineFailed);
        }
        match kind {
            MediaKind::Video => self.video(timestamp_ms, payload).await,
            MediaKind::Audio => {
                self.audio(timestamp_ms, payload).await;
                Ok(())
            }
        }
    }

    async fn video(&mut self, timestamp_ms: i64, payload: Bytes) -> Result<(), PublishError> {
        match flv::parse_video(&payload, timestamp_ms)? {
            VideoTag::SequenceStart { codec, config, avc } => {
                let codec_data = payload.slice_ref(config);
                self.video = Some(match codec {
                    VideoCodec::Avc => VideoInput::H264 { codec_data },
                    VideoCodec::Hevc => VideoInput::H265 { codec_data },
                    other => return Err(PublishError::UnsupportedVideo(other.to_string())),
                });
                self.source_codec = avc.map(|a| a.codecs());
                self.lease.live.update_health(|h| h.video_codec = codec.to_string());
            }
            VideoTag::Frame(frame) => {
                if self.ladder.is_none() {
                    if self.video.is_none() {
                        // Frames before the sequence header cannot be decoded.
                        return Ok(());
                    }
                    self.start_ladder().await?;
                }
                let data = payload.slice_ref(frame.data);
                if let Some(ladder) = self.ladder.as_mut() {
                    ladder.push_video(frame.dts_ms, frame.pts_ms, frame.frame_type.is_key(), data).await;
                }
            }
            VideoTag::Unsupported { codec } => return Err(PublishError::UnsupportedVideo(codec.to_string())),
            VideoTag::SequenceEnd { .. } | VideoTag::Metadata { .. } | VideoTag::Mpeg2TsSequenceStart { .. } | VideoTag::Command => {}
        }
        Ok(())
    }

    async fn audio(&mut self, timestamp_ms: i64, payload: Bytes) {
        let tag = match flv::parse_audio(&payload, timestamp_ms) {
            Ok(tag) => tag,
            Err(e) => return self.warn_audio(&format!("malformed audio: {e}")),
        };
        match tag {
            AudioTag::SequenceStart { codec: AudioCodec::Aac, config, aac } => {
                let (sample_rate, channels) = aac.as_ref().map_or((44_100, 2), |a| (a.sample_rate_hz, u16::from(a.channel_config.max(1))));
                self.audio = Some(AudioInput::Aac { codec_data: payload.slice_ref(config), sample_rate, channels });
                self.audio_codec = Some(aac.map_or_else(|| AAC_LC_CODEC.to_string(), |a| a.codecs()));
                self.lease.live.update_health(|h| h.audio_codec = "AAC".into());
            }
            AudioTag::Frame(frame) => {
                if frame.codec == AudioCodec::Mp3 && self.audio.is_none() {
                    self.audio = Some(AudioInput::Mp3);
                    self.audio_codec = Some(AAC_LC_CODEC.to_string());
                    self.lease.live.update_health(|h| h.audio_codec = "MP3 (encoded to AAC)".into());
                }
                if !matches!(frame.codec, AudioCodec::Aac | AudioCodec::Mp3) {
                    return self.warn_audio(&format!("audio codec {} is not supported; video only", frame.codec));
                }
                let data = payload.slice_ref(frame.data);
                if let Some(ladder) = self.ladder.as_mut() {
                    ladder.push_audio(frame.timestamp_ms, data).await;
                }
            }
            AudioTag::Unsupported { codec } | AudioTag::SequenceStart { codec, .. } => {
                self.warn_audio(&format!("audio codec {codec} is not supported; video only"))
            }
            AudioTag::SequenceEnd { .. } | AudioTag::MultichannelConfig { .. } | AudioTag::Silence => {}
        }
    }

    fn warn_audio(&mut self, message: &str) {
        if !self.warned_audio {
            tracing::warn!(video_id = %self.lease.video_id, "{message}");
            self.warned_audio = true;
        }
    }

    async fn start_ladder(&mut self) -> Result<(), PublishError> {
        let Some(video) = self.video.clone() else { return Ok(()) };
        let media = &self.ingest.media;
        let meta = self.metadata.as_ref();
        let width = meta.and_then(|m| m.video_width).filter(|w| *w > 0).unwrap_or(FALLBACK_SIZE.0);
        let height = meta.and_then(|m| m.video_height).filter(|h| *h > 0).unwrap_or(FALLBACK_SIZE.1);
        let frame_rate = meta.and_then(|m| m.video_frame_rate).map(f64::from).filter(|f| *f > 0.0).unwrap_or(FALLBACK_FRAME_RATE);
        let rungs = ladder::plan(&media.ladder, width, height, media.include_source).map_err(ferrocast_media::MediaError::from)?;
        let audio_codec = self.audio.as_ref().and(self.audio_codec.as_deref());
        let renditions: Vec<RenditionInfo> = rungs
            .iter()
            .map(|rung| {
                let (codecs, video_bps) = match rung.encoding {
                    Encoding::Transcode { video_bitrate_kbps } => {
                        (encoded_codecs(rung.width, rung.height, frame_rate, audio_codec), u64::from(video_bitrate_kbps) * 1000)
                    }
                    Encoding::Passthrough => {
                        let video = self.source_codec.clone().unwrap_or_else(|| "avc1.640028".into());
                        let codecs = audio_codec.map_or(video.clone(), |a| format!("{video},{a}"));
                        (codecs, u64::from(meta.and_then(|m| m.video_bitrate_kbps).unwrap_or(6000)) * 1000)
                    }
                };
                let audio_bps = if audio_codec.is_some() { NOMINAL_AUDIO_BPS } else { 0 };
                RenditionInfo {
                    name: rung.name.clone(),
                    width: rung.width,
                    height: rung.height,
                    frame_rate,
                    codecs,
                    nominal_bandwidth: (video_bps + audio_bps) * 11 / 10,
                }
            })
            .collect();
        let input = LiveInput { video, audio: self.audio.clone(), width, height, frame_rate };
        let settings = LiveSettings {
            segment_duration: Duration::from_secs(media.segment_duration_secs),
            part_duration: Duration::from_millis(media.part_duration_ms),
            x264_preset: media.live_x264_preset.clone(),
            encoder_queue_frames: media.encoder_queue_frames,
            thumbnail_interval: Duration::from_secs(media.thumbnail_interval_secs),
            max_input_bytes: self.ingest.rtmp.max_message_bytes as u64 * 4,
        };
        // The session is announced before anything of it can arrive.
        self.lease.recording.start_session(renditions).await;
        let ladder = LiveLadder::start(&input, &rungs, &settings, self.lease.recording.events()).await?;
        self.stats = Some(ladder.stats());
        self.ladder = Some(ladder);
        tracing::info!(video_id = %self.lease.video_id, width, height, frame_rate, rungs = rungs.len(), "ladder started");
        Ok(())
    }

    fn measure(&mut self, bytes: usize) {
        self.bytes_in_window += bytes as u64;
        let elapsed = self.window_started.elapsed();
        if elapsed >= BITRATE_WINDOW {
            let kbps = self.bytes_in_window * 8 / elapsed.as_millis().max(1) as u64;
            let dropped = self.stats.as_ref().map_or(0, |s| s.dropped_frames.load(Ordering::Relaxed));
            self.lease.live.update_health(|h| {
                h.input_bitrate_kbps = kbps;
                h.dropped_frames = dropped;
            });
            self.bytes_in_window = 0;
            self.window_started = Instant::now();
        }
    }

    /// Drains the ladder (its last frames reach the recording) and lets go of the channel.
    pub async fn end(self, reason: EndReason) {
        let failed = self.ladder.as_ref().is_some_and(LiveLadder::has_failed);
        if let Some(ladder) = self.ladder {
            ladder.finish().await;
        }
        let reason = match reason {
            EndReason::Disconnected if failed => EndReason::Failed("the transcoding pipeline stopped".into()),
            other => other,
        };
        self.ingest.end_publish(self.lease, reason).await;
    }
}
