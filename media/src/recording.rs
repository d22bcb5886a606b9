//! One video's recording: turns the segments a pipeline writes into stored, listed HLS.
//!
//! A [`Recording`] runs as one task per live video (possibly across several pipelines when the
//! publisher reconnects). For every closed segment it moves the file from the spool into storage,
//! records it in the database, and only then lists it in the playlists, whose new text it hands to
//! the live registry for the origin. When the video ends it writes the VOD playlists and the master
//! into storage and marks the video ready. [`finalize_orphan`] does the same from the database for a
//! video a crash left live. Nothing here knows about RTMP or GStreamer elements.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{SecondsFormat, Utc};
use ferrocast_core::db::recordings::{self, RenditionRow, SegmentRow};
use ferrocast_core::db::videos::{self, VideoStatus};
use ferrocast_core::live::{LivePlaylists, LiveVideo, RenditionPlaylists};
use ferrocast_core::storage::Storage;
use ferrocast_core::Db;
use tokio::sync::{mpsc, oneshot};

use crate::live_pipeline::PipelineEvent;
use crate::playlist::{MasterPlaylist, MediaPlaylist, Segment, Variant};
use crate::MediaError;

/// A rendition as the master playlist describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct RenditionInfo {
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub frame_rate: f64,
    /// CODECS attribute, e.g. `avc1.4d401f,mp4a.40.2`.
    pub codecs: String,
    /// Announced until segments give a measured value.
    pub nominal_bandwidth: u64,
}

#[derive(Clone, Debug)]
pub struct RecordingSettings {
    pub segment_duration: Duration,
    pub live_window: usize,
}

/// How a recording ended.
#[derive(Debug)]
pub enum Outcome {
    /// The stream ended normally (or the publisher never came back).
    Ended,
    /// Transcoding failed; the message is shown to the owner.
    Failed(String),
}

enum Command {
    /// A new pipeline is about to start; its first segment in each rung follows a discontinuity
    /// unless it is the first pipeline of the video.
    Session {
        renditions: Vec<RenditionInfo>,
    },
    Finish {
        outcome: Outcome,
        done: oneshot::Sender<()>,
    },
}

/// The handle the ingest side keeps; cheap to clone.
#[derive(Clone)]
pub struct RecordingHandle {
    commands: mpsc::Sender<Command>,
    events: mpsc::Sender<PipelineEvent>,
}

impl RecordingHandle {
    /// Where a new pipeline sends its events.
    pub fn pipeline_events(&self) -> mpsc::Sender<PipelineEvent> {
        self.events.clone()
    }

    /// Announces a new pipeline (first or after a reconnect) and its renditions.
    pub async fn start_session(&self, renditions: Vec<RenditionInfo>) {
        let _ = self.commands.send(Command::Session { renditions }).await;
    }

    /// Ends the recording once every event already sent is handled; returns when it is stored.
    pub async fn finish(&self, outcome: Outcome) {
        let (done, finished) = oneshot::channel();
        if self.commands.send(Command::Finish { outcome, done }).await.is_ok() {
            let _ = finished.await;
        }
    }
}

/// Segment and thumbnail events are few (one per rung every couple of seconds); the bound only
/// guards against a stalled database.
const EVENT_CAPACITY: usize = 256;

struct RungState {
    playlist: MediaPlaylist,
    next_sequence: i64,
    /// The next segment follows a reconnect.
    discontinuity: bool,
}

struct Recording {
    video_id: String,
    db: Db,
    storage: Storage,
    live: Arc<LiveVideo>,
    settings: RecordingSettings,
    renditions: Vec<RenditionInfo>,
    rungs: BTreeMap<String, RungState>,
    sessions: u32,
    /// When (and at which recorded length) the speed measurement started.
    speed_origin: Option<(std::time::Instant, Duration)>,
}

/// Starts the recording task of a live video.
pub fn spawn(video_id: &str, db: Db, storage: Storage, live: Arc<LiveVideo>, settings: RecordingSettings) -> RecordingHandle {
    let (commands, command_rx) = mpsc::channel(16);
    let (events, event_rx) = mpsc::channel(EVENT_CAPACITY);
    let recording = Recording {
        video_id: video_id.to_string(),
        db,
        storage,
        live,
        settings,
        renditions: Vec::new(),
        rungs: BTreeMap::new(),
        sessions: 0,
        speed_origin: None,
    };
    tokio::spawn(recording.run(command_rx, event_rx));
    RecordingHandle { commands, events }
}

impl Recording {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>, mut events: mpsc::Receiver<PipelineEvent>) {
        let mut failure: Option<String> = None;
        loop {
            tokio::select! {
                biased;
                Some(event) = events.recv() => self.handle(event, &mut failure).await,
                command = commands.recv() => match command {
                    Some(Command::Session { renditions }) => self.start_session(renditions).await,
                    Some(Command::Finish { outcome, done }) => {
                        // Everything the pipelines reported before the finish is listed first.
                        while let Ok(event) = events.try_recv() {
                            self.handle(event, &mut failure).await;
                        }
                        let outcome = match (outcome, failure.take()) {
                            (Outcome::Ended, Some(reason)) => Outcome::Failed(reason),
                            (outcome, _) => outcome,
                        };
                        let video_id = self.video_id.clone();
                        if let Err(e) = self.finish(outcome).await {
                            tracing::error!(%video_id, error = %e, "could not finalise the recording");
                        }
                        let _ = done.send(());
                        return;
                    }
                    None => return,
                },
            }
        }
    }

    async fn handle(&mut self, event: PipelineEvent, failure: &mut Option<String>) {
        match event {
            PipelineEvent::SegmentClosed { rung, path, start, end } => {
                if let Err(e) = self.add_segment(&rung, &path, end.saturating_sub(start)).await {
                    tracing::error!(video_id = %self.video_id, %rung, error = %e, "segment lost");
                }
            }
            PipelineEvent::Thumbnail(jpeg) => {
                if let Err(e) = self.storage.put(&Storage::key(&[&self.video_id, "thumbnail.jpg"]), jpeg).await {
                    tracing::warn!(video_id = %self.video_id, error = %e, "thumbnail not stored");
                }
            }
            PipelineEvent::Failed(reason) => *failure = Some(reason),
        }
    }

    async fn start_session(&mut self, renditions: Vec<RenditionInfo>) {
        self.sessions += 1;
        self.speed_origin = None;
        if self.renditions.is_empty() {
            for r in &renditions {
                let row = RenditionRow {
                    video_id: self.video_id.clone(),
                    name: r.name.clone(),
                    width: i64::from(r.width),
                    height: i64::from(r.height),
                    frame_rate_milli: (r.frame_rate * 1000.0).round() as i64,
                    codecs: r.codecs.clone(),
                    video_bitrate_kbps: (r.nominal_bandwidth / 1000) as i64,
                };
                if let Err(e) = recordings::add_rendition(&self.db, &row).await {
                    tracing::error!(video_id = %self.video_id, error = %e, "rendition not recorded");
                }
            }
            self.renditions = renditions;
        }
        for rendition in &self.renditions {
            let state = self.rungs.entry(rendition.name.clone()).or_insert_with(|| RungState {
                playlist: MediaPlaylist::new(self.settings.segment_duration),
                next_sequence: 0,
                discontinuity: false,
            });
            state.discontinuity = self.sessions > 1;
        }
    }

    async fn add_segment(&mut self, rung: &str, spool_path: &Path, duration: Duration) -> Result<(), MediaError> {
        let bytes = Bytes::from(tokio::fs::read(spool_path).await?);
        let _ = tokio::fs::remove_file(spool_path).await;
        let Some(state) = self.rungs.get_mut(rung) else {
            return Err(MediaError::Pipeline(format!("segment for unknown rung {rung}")));
        };
        if duration.is_zero() || bytes.is_empty() {
            // An empty tail (end of stream right after a split) has nothing to play.
            return Ok(());
        }
        let sequence = state.next_sequence;
        let uri = format!("{sequence:08}.ts");
        let size = bytes.len() as u64;
        self.storage.put(&Storage::key(&[&self.video_id, rung, &uri]), bytes).await?;
        // The wall-clock time the segment's first frame arrived: now, less its length.
        let started = Utc::now() - chrono::Duration::from_std(duration).unwrap_or_default();
        let program_date_time = started.to_rfc3339_opts(SecondsFormat::Millis, true);
        let row = SegmentRow {
            video_id: self.video_id.clone(),
            rendition: rung.to_string(),
            sequence,
            uri: uri.clone(),
            duration_us: duration.as_micros() as i64,
            bytes: size as i64,
            discontinuity: state.discontinuity,
            program_date_time: program_date_time.clone(),
        };
        recordings::add_segment(&self.db, &row).await?;
        state.playlist.push(Segment {
            uri,
            duration,
            bytes: size,
            program_date_time: Some(program_date_time),
            discontinuity: state.discontinuity,
        })?;
        state.next_sequence += 1;
        state.discontinuity = false;
        metrics::counter!("ferrocast_segments_written_total").increment(1);
        if let Some(first_rung) = self.renditions.first().filter(|r| r.name == rung) {
            self.measure_speed(&first_rung.name.clone());
        }
        self.publish_live();
        Ok(())
    }

    /// Media seconds written per wall-clock second since the first segment of this session: about
    /// 1.0 while the ladder keeps up with a live source, less when it falls behind.
    fn measure_speed(&mut self, rung: &str) {
        let now = std::time::Instant::now();
        let media: Duration = self.rungs[rung].playlist.segments().iter().map(|s| s.duration).sum();
        match self.speed_origin {
            // The first segment of a session marks the start; only what follows it is counted.
            None => self.speed_origin = Some((now, media)),
            Some((started, media_at_start)) => {
                let wall = now.duration_since(started).as_secs_f64();
                if wall > 0.0 {
                    let factor = media.saturating_sub(media_at_start).as_secs_f64() / wall;
                    self.live.update_health(|h| h.realtime_factor = factor);
                }
            }
        }
    }

    /// Renders every playlist and hands the texts to the origin.
    fn publish_live(&self) {
        let mut renditions = std::collections::HashMap::new();
        for (name, state) in &self.rungs {
            renditions.insert(
                name.clone(),
                RenditionPlaylists {
                    window: state.playlist.render_live(self.settings.live_window),
                    recording: state.playlist.render_full(),
                },
            );
        }
        // The master lists only rungs that already have a segment, so a player never picks an empty one.
        let listed: Vec<&RenditionInfo> =
            self.renditions.iter().filter(|r| self.rungs.get(&r.name).is_some_and(|s| !s.playlist.segments().is_empty())).collect();
        let master = if listed.is_empty() { String::new() } else { master_playlist(&listed, &self.rungs) };
        self.live.set_playlists(LivePlaylists { master, renditions });
    }

    async fn finish(mut self, outcome: Outcome) -> Result<(), MediaError> {
        for state in self.rungs.values_mut() {
            state.playlist.end();
        }
        let result = match outcome {
            Outcome::Failed(reason) => {
                videos::finish(&self.db, &self.video_id, VideoStatus::Failed, None, Some(&format!("transcoding failed: {reason}"))).await?;
                Ok(())
            }
            Outcome::Ended => {
                let renditions: Vec<&RenditionInfo> = self.renditions.iter().collect();
                write_vod(&self.db, &self.storage, &self.video_id, &renditions, &self.rungs).await
            }
        };
        self.publish_live();
        result
    }
}

fn master_playlist(renditions: &[&RenditionInfo], rungs: &BTreeMap<String, RungState>) -> String {
    let mut master = MasterPlaylist::new();
    for r in renditions {
        let measured = rungs.get(&r.name).and_then(|s| s.playlist.bandwidth());
        let (bandwidth, average) = match measured {
            Some(b) => (b.peak_bps, b.average_bps),
            None => (r.nominal_bandwidth, r.nominal_bandwidth),
        };
        let variant = Variant {
            uri: format!("{}/index.m3u8", r.name),
            bandwidth,
            average_bandwidth: average.min(bandwidth),
            width: r.width,
            height: r.height,
            frame_rate: r.frame_rate,
            codecs: r.codecs.clone(),
        };
        if let Err(e) = master.push(variant) {
            tracing::warn!(rendition = %r.name, error = %e, "rendition left out of the master playlist");
        }
    }
    master.render()
}

/// Writes the finished playlists and the master to storage and marks the video ready with its
/// duration; a video without any segment is marked failed instead.
async fn write_vod(
    db: &Db,
    storage: &Storage,
    video_id: &str,
    renditions: &[&RenditionInfo],
    rungs: &BTreeMap<String, RungState>,
) -> Result<(), MediaError> {
    let with_segments: Vec<&RenditionInfo> =
        renditions.iter().copied().filter(|r| rungs.get(&r.name).is_some_and(|s| !s.playlist.segments().is_empty())).collect();
    if with_segments.is_empty() {
        videos::finish(db, video_id, VideoStatus::Failed, None, Some("the stream ended before any video was received")).await?;
        return Ok(());
    }
    for r in &with_segments {
        let text = rungs[&r.name].playlist.render_full();
        storage.put(&Storage::key(&[video_id, &r.name, "index.m3u8"]), Bytes::from(text)).await?;
    }
    storage.put(&Storage::key(&[video_id, "master.m3u8"]), Bytes::from(master_playlist(&with_segments, rungs))).await?;
    let duration: Duration = rungs[&with_segments[0].name].playlist.segments().iter().map(|s| s.duration).sum();
    videos::finish(db, video_id, VideoStatus::Ready, Some(duration.as_millis() as i64), None).await?;
    Ok(())
}

/// Finishes a video a crash left `live`, from what the database knows of its segments.
pub async fn finalize_orphan(db: &Db, storage: &Storage, video_id: &str, segment_duration: Duration) -> Result<(), MediaError> {
    let renditions: Vec<RenditionInfo> = recordings::renditions(db, video_id)
        .await?
        .into_iter()
        .map(|r| RenditionInfo {
            name: r.name,
            width: r.width as u32,
            height: r.height as u32,
            frame_rate: r.frame_rate_milli as f64 / 1000.0,
            codecs: r.codecs,
            nominal_bandwidth: r.video_bitrate_kbps as u64 * 1000,
        })
        .collect();
    let mut rungs = BTreeMap::new();
    for r in &renditions {
        let mut playlist = MediaPlaylist::new(segment_duration);
        for s in recordings::segments(db, video_id, &r.name).await? {
            playlist.push(Segment {
                uri: s.uri,
                duration: Duration::from_micros(s.duration_us.max(1) as u64),
                bytes: s.bytes as u64,
                program_date_time: Some(s.program_date_time),
                discontinuity: s.discontinuity,
            })?;
        }
        playlist.end();
        rungs.insert(r.name.clone(), RungState { playlist, next_sequence: 0, discontinuity: false });
    }
    let refs: Vec<&RenditionInfo> = renditions.iter().collect();
    write_vod(db, storage, video_id, &refs, &rungs).await
}

/// CODECS for a rung we encode: x264 Main profile at the level its size needs at ≤ 30 fps, plus the
/// audio codec if there is audio.
pub fn encoded_codecs(width: u32, height: u32, frame_rate: f64, audio: Option<&str>) -> String {
    let macroblocks_per_second = f64::from(width.div_ceil(16) * height.div_ceil(16)) * frame_rate.max(1.0);
    // H.264 Table A-1: maximum macroblock rate per level.
    let level = match macroblocks_per_second {
        m if m <= 40_500.0 => 0x1e,  // 3.0
        m if m <= 108_000.0 => 0x1f, // 3.1
        m if m <= 216_000.0 => 0x20, // 3.2
        m if m <= 245_760.0 => 0x28, // 4.0
        m if m <= 522_240.0 => 0x2a, // 4.2
        _ => 0x33,                   // 5.1
    };
    let video = crate::playlist::avc1_codec(0x4d, 0x40, level);
    match audio {
        Some(audio) => format!("{video},{audio}"),
        None => video,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codecs_name_main_profile_at_the_level_the_size_needs() {
        assert_eq!(encoded_codecs(640, 360, 30.0, Some("mp4a.40.2")), "avc1.4d401e,mp4a.40.2");
        assert_eq!(encoded_codecs(854, 480, 30.0, None), "avc1.4d401f");
        assert_eq!(encoded_codecs(1280, 720, 30.0, None), "avc1.4d401f");
        assert_eq!(encoded_codecs(1280, 720, 60.0, None), "avc1.4d4020");
        assert_eq!(encoded_codecs(1920, 1080, 30.0, None), "avc1.4d4028");
    }
}
