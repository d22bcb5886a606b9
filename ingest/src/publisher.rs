//! One accepted publish: turns FLV tags into media's live ladder input.
//!
//! It collects the sequence headers and onMetaData, starts the ladder (`ferrocast_media::live`) at
//! the first coded video frame once codecs and size are known (held up to half a second while the
//! audio codec is not: MP3 announces itself only with its first frame), pushes frames with their DTS/PTS,
//! keeps the stream's health up to date for the owner, and drains the ladder when the publish
//! ends. The drop policy is media's (see `media/src/live.rs`).
//!
//! Video is H.264, HEVC or AV1 (Enhanced RTMP); audio AAC, MP3 or Opus. Of a multitrack publish
//! one video and one audio track are taken (see [`flv::TrackSelector`]). A source the packager
//! cannot carry (AV1) gets no passthrough `source` rung, and a relay-only ladder refuses it.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferrocast_media::ladder::{self, Encoding};
use ferrocast_media::live::LiveLadder;
use ferrocast_media::live_pipeline::{AudioInput, LiveInput, LiveSettings, PipelineStats, VideoInput};
use ferrocast_media::playlist::AAC_LC_CODEC;
use ferrocast_media::recording::{encoded_codecs, RenditionInfo};
use ferrocast_media::shedding::ShedSettings;

use crate::flv::{self, AudioCodec, AudioTag, TrackSelector, VideoCodec, VideoTag};
use crate::live::{EndReason, Ingest, PublishLease};
use crate::restream::Restreamer;
use crate::session::{MediaKind, StreamMetadata};

/// Assumed when the publisher sends no onMetaData with the size.
const FALLBACK_SIZE: (u32, u32) = (1280, 720);
const FALLBACK_FRAME_RATE: f64 = 30.0;
/// Announced for AAC in the master playlist until segments are measured.
const NOMINAL_AUDIO_BPS: u64 = 160_000;
/// How long (in the publisher's clock) the ladder waits for the audio codec when video frames
/// arrive first: MP3 has no sequence header, and ffmpeg sends the first video frame before it.
const AUDIO_WAIT_MS: i64 = 500;
/// At most this many video frames are held meanwhile.
const MAX_HELD_FRAMES: usize = 64;
/// How often the input bitrate shown to the owner is recomputed.
const BITRATE_WINDOW: Duration = Duration::from_secs(2);

/// Why a publish cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("unsupported video codec {0}")]
    UnsupportedVideo(String),
    /// A relay (`ladder = []`) can only repackage, and the packager cannot carry this codec.
    #[error("{0} cannot be relayed as it is and the ladder has no rungs to transcode it into; configure [media] ladder")]
    NothingToEncode(String),
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
    video_track: TrackSelector,
    audio_track: TrackSelector,
    /// Video frames (DTS, PTS, keyframe, data) waiting for the ladder while the audio is unknown.
    held: Vec<(i64, i64, bool, Bytes)>,
    warned_audio: bool,
    bytes_in_window: u64,
    window_started: Instant,
    /// Pushes the source to the channel's restream targets; ends when the publisher is dropped.
    restreamer: Option<Restreamer>,
}

impl Publisher {
    pub fn new(ingest: Arc<Ingest>, lease: PublishLease) -> Self {
        let restreamer = ingest
            .restream
            .clone()
            .map(|settings| Restreamer::start(ingest.db.clone(), settings, lease.channel_id.clone(), ingest.channel_events.as_deref()));
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
            video_track: TrackSelector::new(),
            audio_track: TrackSelector::new(),
            held: Vec::new(),
            warned_audio: false,
            bytes_in_window: 0,
            window_started: Instant::now(),
            restreamer,
        }
    }

    pub fn set_metadata(&mut self, metadata: StreamMetadata) {
        if let Some(restreamer) = &self.restreamer {
            restreamer.metadata(&metadata);
        }
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
        if let Some(restreamer) = &self.restreamer {
            restreamer.media(kind, timestamp_ms, &payload);
        }
        if self.ladder.as_ref().is_some_and(LiveLadder::has_failed) {
            return Err(PublishError::PipelineFailed);
        }
        match kind {
            MediaKind::Video => self.video(timestamp_ms, payload).await,
            MediaKind::Audio => {
                self.audio(timestamp_ms, payload).await;
                if self.audio.is_some() && !self.held.is_empty() {
                    self.start_with_held().await?;
                }
                Ok(())
            }
        }
    }

    async fn video(&mut self, timestamp_ms: i64, payload: Bytes) -> Result<(), PublishError> {
        match flv::parse_video_track(&payload, timestamp_ms, &mut self.video_track)? {
            VideoTag::SequenceStart { codec, config, avc } => {
                let codec_data = payload.slice_ref(config);
                self.video = Some(match codec {
                    VideoCodec::Avc => VideoInput::H264 { codec_data },
                    VideoCodec::Hevc => VideoInput::H265 { codec_data },
                    VideoCodec::Av1 => VideoInput::Av1 { codec_data },
                    other => return Err(PublishError::UnsupportedVideo(other.to_string())),
                });
                self.source_codec = match codec {
                    VideoCodec::Hevc => flv::hevc_codecs(config).ok(),
                    _ => avc.map(|a| a.codecs()),
                };
                self.lease.live.update_health(|h| h.video_codec = codec.to_string());
                if self.ingest.media.ladder.is_empty() && self.video.as_ref().is_some_and(|v| !v.can_pass_through()) {
                    return Err(PublishError::NothingToEncode(codec.to_string()));
                }
            }
            VideoTag::Frame(frame) => {
                let data = payload.slice_ref(frame.data);
                if self.ladder.is_none() {
                    if self.video.is_none() {
                        // Frames before the sequence header cannot be decoded.
                        return Ok(());
                    }
                    let waited = self.held.first().map_or(0, |held| frame.dts_ms - held.0);
                    if self.audio.is_none() && waited < AUDIO_WAIT_MS && self.held.len() < MAX_HELD_FRAMES {
                        self.held.push((frame.dts_ms, frame.pts_ms, frame.frame_type.is_key(), data));
                        return Ok(());
                    }
                    self.start_with_held().await?;
                }
                if let Some(ladder) = self.ladder.as_mut() {
                    ladder.push_video(frame.dts_ms, frame.pts_ms, frame.frame_type.is_key(), data).await;
                }
            }
            VideoTag::Unsupported { codec } => return Err(PublishError::UnsupportedVideo(codec.to_string())),
            VideoTag::SequenceEnd { .. }
            | VideoTag::Metadata { .. }
            | VideoTag::Mpeg2TsSequenceStart { .. }
            | VideoTag::Command
            | VideoTag::OtherTrack { .. } => {}
        }
        Ok(())
    }

    async fn audio(&mut self, timestamp_ms: i64, payload: Bytes) {
        let tag = match flv::parse_audio_track(&payload, timestamp_ms, &mut self.audio_track) {
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
            AudioTag::SequenceStart { codec: AudioCodec::Opus, config, .. } => match opus_channels(config) {
                Some(channels) => self.use_encoded_audio(AudioInput::Opus { channels }, "Opus"),
                None => self.warn_audio("Opus with more than two channels is not supported; video only"),
            },
            AudioTag::Frame(frame) => {
                if self.audio.is_none() {
                    // Neither needs a sequence header: MP3 frames describe themselves, and an Opus
                    // stream without an ID header is mono or stereo (E-RTMP); stereo decodes both.
                    match frame.codec {
                        AudioCodec::Mp3 => self.use_encoded_audio(AudioInput::Mp3, "MP3"),
                        AudioCodec::Opus => self.use_encoded_audio(AudioInput::Opus { channels: 2 }, "Opus"),
                        _ => {}
                    }
                }
                if !matches!(frame.codec, AudioCodec::Aac | AudioCodec::Mp3 | AudioCodec::Opus) {
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
            AudioTag::SequenceEnd { .. } | AudioTag::MultichannelConfig { .. } | AudioTag::Silence | AudioTag::OtherTrack { .. } => {}
        }
    }

    /// Audio the ladder decodes and encodes once to AAC.
    fn use_encoded_audio(&mut self, input: AudioInput, name: &str) {
        self.audio = Some(input);
        self.audio_codec = Some(AAC_LC_CODEC.to_string());
        self.lease.live.update_health(|h| h.audio_codec = format!("{name} (encoded to AAC)"));
    }

    fn warn_audio(&mut self, message: &str) {
        if !self.warned_audio {
            tracing::warn!(video_id = %self.lease.video_id, "{message}");
            self.warned_audio = true;
        }
    }

    /// Starts the ladder and hands it the video frames held so far.
    async fn start_with_held(&mut self) -> Result<(), PublishError> {
        self.start_ladder().await?;
        if let Some(ladder) = self.ladder.as_mut() {
            for (dts_ms, pts_ms, keyframe, data) in std::mem::take(&mut self.held) {
                ladder.push_video(dts_ms, pts_ms, keyframe, data).await;
            }
        }
        Ok(())
    }

    async fn start_ladder(&mut self) -> Result<(), PublishError> {
        let Some(video) = self.video.clone() else { return Ok(()) };
        let media = &self.ingest.media;
        let meta = self.metadata.as_ref();
        let width = meta.and_then(|m| m.video_width).filter(|w| *w > 0).unwrap_or(FALLBACK_SIZE.0);
        let height = meta.and_then(|m| m.video_height).filter(|h| *h > 0).unwrap_or(FALLBACK_SIZE.1);
        let frame_rate = meta.and_then(|m| m.video_frame_rate).map(f64::from).filter(|f| *f > 0.0).unwrap_or(FALLBACK_FRAME_RATE);
        // The packager cannot carry every codec the decoder takes; such a source is only transcoded
        // (a relay refused it at its sequence start).
        let include_source = media.include_source && video.can_pass_through();
        let rungs = ladder::plan(&media.ladder, width, height, include_source).map_err(ferrocast_media::MediaError::from)?;
        let audio_codec = self.audio.as_ref().and(self.audio_codec.as_deref());
        let renditions: Vec<RenditionInfo> = rungs
            .iter()
            .map(|rung| {
                let (codecs, video_bps) = match rung.encoding {
                    Encoding::Transcode { video_bitrate_kbps } => (
                        encoded_codecs(rung.width, rung.height, rung.frame_rate(frame_rate), audio_codec),
                        u64::from(video_bitrate_kbps) * 1000,
                    ),
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
                    frame_rate: rung.frame_rate(frame_rate),
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
            shedding: media.shed_rungs.then_some(ShedSettings {
                drop_percent: media.shed_drop_percent,
                restore_after: Duration::from_secs(media.shed_restore_after_secs),
            }),
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

/// The channel count of an Opus ID header (RFC 7845, 5.1) when it is mono or stereo in channel
/// mapping family 0, the layout the pipeline decodes; `None` for anything else. An empty header
/// means mono or stereo (E-RTMP), decoded as stereo.
fn opus_channels(head: &[u8]) -> Option<u8> {
    if head.is_empty() {
        return Some(2);
    }
    match (head.get(..8), head.get(9), head.get(18)) {
        (Some(b"OpusHead"), Some(&channels @ 1..=2), Some(0)) => Some(channels),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::opus_channels;

    #[test]
    fn opus_id_headers_of_mono_and_stereo_are_taken_and_others_refused() {
        // RFC 7845 5.1: magic, version 1, channels, pre-skip 312, 48 kHz, gain 0, family 0.
        let stereo = b"OpusHead\x01\x02\x38\x01\x80\xBB\x00\x00\x00\x00\x00";
        assert_eq!(opus_channels(stereo), Some(2));
        let mut mono = stereo.to_vec();
        mono[9] = 1;
        assert_eq!(opus_channels(&mono), Some(1));
        assert_eq!(opus_channels(&[]), Some(2), "no ID header: mono or stereo");
        let mut surround = stereo.to_vec();
        surround[9] = 6;
        surround[18] = 1;
        assert_eq!(opus_channels(&surround), None);
        assert_eq!(opus_channels(b"OpusTags\x01\x02"), None);
    }
}
