//! One video's recording: coded frames in, stored and listed CMAF HLS out.
//!
//! A [`Recording`] runs as one task per video (live, across every reconnect of its publisher, or
//! an uploaded file). It reads one ordered stream of [`RecordingEvent`]s, packages every rendition
//! (`rendition.rs` owns the cutters), and for what comes out: an init segment goes to storage and
//! memory; a part to memory only (the origin serves it from there), then into the LL-HLS
//! playlist; a segment to storage and the database, and only then into the playlists — after
//! which its parts are served as byte ranges of the stored segment and their copies dropped, so
//! a live stream holds about one open segment per rendition in memory. The playlists' new text goes to the live registry for the origin after every part.
//! At the end `vod.rs` writes the VOD playlists over the same segment files.
//!
//! Nothing here knows about RTMP or GStreamer elements.

mod codecs;
mod rendition;
mod sources;
mod vod;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{SecondsFormat, Utc};
use ferrocast_core::db::recordings::{self, RenditionRow, SegmentRow};
use ferrocast_core::db::videos::{self, VideoStatus};
use ferrocast_core::live::{LivePlaylists, LiveVideo, PartRange, RenditionPlaylists};
use ferrocast_core::storage::{PutPayload, Storage};
use ferrocast_core::Db;
use tokio::sync::{mpsc, oneshot};

pub use codecs::encoded_codecs;
pub use rendition::{init_uri, part_uri, segment_uri, AudioClock, Output, RenditionPackager};
pub use vod::finalize_orphan;

use sources::{FrameRouter, Routed};

use crate::events::{Frame, RecordingEvent, VideoConfig, EVENT_CAPACITY};
use crate::playlist::{LiveOptions, MediaPlaylist, Part, PreloadHint, RenditionReport, Segment, SegmentStart};
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

impl RenditionInfo {
    fn has_audio(&self) -> bool {
        self.codecs.contains("mp4a")
    }
}

#[derive(Clone, Debug)]
pub struct RecordingSettings {
    pub segment_duration: Duration,
    /// LL-HLS part target.
    pub part_duration: Duration,
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

/// The handle producers keep; cheap to clone.
#[derive(Clone)]
pub struct RecordingHandle {
    events: mpsc::Sender<RecordingEvent>,
}

impl RecordingHandle {
    /// Where frames, codec configurations and thumbnails go.
    pub fn events(&self) -> mpsc::Sender<RecordingEvent> {
        self.events.clone()
    }

    /// Announces a new session (first publish, a reconnect, or a file) and its renditions.
    pub async fn start_session(&self, renditions: Vec<RenditionInfo>) {
        let _ = self.events.send(RecordingEvent::Session { renditions }).await;
    }

    /// Stores what the cutters hold once every event already sent is handled: the segment in
    /// progress is cut short and listed, so that another node continuing the video numbers on
    /// after it. Returns when it is stored.
    pub async fn flush(&self) {
        let (done, flushed) = oneshot::channel();
        if self.events.send(RecordingEvent::Flush { done }).await.is_ok() {
            let _ = flushed.await;
        }
    }

    /// Ends the recording once every event already sent is handled; returns when it is stored.
    pub async fn finish(&self, outcome: Outcome) {
        let (done, finished) = oneshot::channel();
        if self.events.send(RecordingEvent::Finish { outcome, done }).await.is_ok() {
            let _ = finished.await;
        }
    }
}

struct Rung {
    packager: RenditionPackager,
    playlist: MediaPlaylist,
    /// The segment being cut and the parts of it listed so far, and the parts of the one before.
    next_msn: u64,
    open_parts: u32,
    previous_parts: u32,
    /// Part files in memory, by segment, oldest first.
    parts_in_memory: VecDeque<(u64, Vec<String>)>,
    /// The full recording view, re-rendered only when a segment is added.
    recording_text: Bytes,
}

struct Recording {
    video_id: String,
    db: Db,
    storage: Storage,
    live: Arc<LiveVideo>,
    settings: RecordingSettings,
    renditions: Vec<RenditionInfo>,
    rungs: BTreeMap<String, Rung>,
    audio_clock: Option<AudioClock>,
    failure: Option<String>,
    /// When (and at which recorded length) the speed measurement started.
    speed_origin: Option<(std::time::Instant, Duration)>,
    /// The master's text, and how many segments and listed rungs it was rendered from: it changes
    /// only when a segment (a new measurement) or a rendition's first part arrives, or a rung is
    /// shed or restored.
    master: (String, usize, usize),
    /// Which encoder's frames each rendition is packaged from (the CPU-aware ladder), and each
    /// encoder's own codec configuration, for renditions that switch to it.
    router: FrameRouter,
    encoder_configs: HashMap<String, VideoConfig>,
}

/// Starts the recording task of a video.
pub fn spawn(video_id: &str, db: Db, storage: Storage, live: Arc<LiveVideo>, settings: RecordingSettings) -> RecordingHandle {
    start(new_recording(video_id, db, storage, live, settings))
}

/// Starts the recording task of a live video another node was recording (it died, or its
/// publisher came back here): its renditions and segments so far are read back from the database,
/// and what this node records follows them after a discontinuity, numbered on from the last one.
pub async fn resume(
    video_id: &str,
    db: Db,
    storage: Storage,
    live: Arc<LiveVideo>,
    settings: RecordingSettings,
) -> Result<RecordingHandle, MediaError> {
    let (renditions, playlists) =
        vod::load(&db, video_id, || MediaPlaylist::with_parts(settings.segment_duration, settings.part_duration)).await?;
    let mut recording = new_recording(video_id, db, storage, live, settings);
    for (name, playlist) in playlists {
        let next_msn = playlist.segments().last().map_or(0, |s| segment_number(&s.uri) + 1);
        let has_audio = renditions.iter().any(|r| r.name == name && r.has_audio());
        let settings = &recording.settings;
        let packager = RenditionPackager::new(&name, has_audio, settings.segment_duration, settings.part_duration, next_msn);
        let mut rung = Rung::new(packager, playlist);
        rung.next_msn = next_msn;
        recording.rungs.insert(name, rung);
    }
    recording.renditions = renditions;
    // Viewers asking this node right after the hand-over get the playlists so far, not a 404.
    recording.publish_live();
    Ok(start(recording))
}

/// The media sequence number a stored segment's name carries (`00000012.m4s` is 12).
fn segment_number(uri: &str) -> u64 {
    uri.split('.').next().and_then(|stem| stem.parse().ok()).unwrap_or(0)
}

fn start(recording: Recording) -> RecordingHandle {
    let (events, event_rx) = mpsc::channel(EVENT_CAPACITY);
    tokio::spawn(recording.run(event_rx));
    RecordingHandle { events }
}

fn new_recording(video_id: &str, db: Db, storage: Storage, live: Arc<LiveVideo>, settings: RecordingSettings) -> Recording {
    Recording {
        video_id: video_id.to_string(),
        db,
        storage,
        live,
        settings,
        renditions: Vec::new(),
        rungs: BTreeMap::new(),
        audio_clock: None,
        failure: None,
        speed_origin: None,
        master: (String::new(), 0, 0),
        router: FrameRouter::default(),
        encoder_configs: HashMap::new(),
    }
}

impl Rung {
    fn new(packager: RenditionPackager, playlist: MediaPlaylist) -> Self {
        Rung {
            packager,
            playlist,
            next_msn: 0,
            open_parts: 0,
            previous_parts: 0,
            parts_in_memory: VecDeque::new(),
            recording_text: Bytes::new(),
        }
    }
}

impl Recording {
    async fn run(mut self, mut events: mpsc::Receiver<RecordingEvent>) {
        while let Some(event) = events.recv().await {
            match event {
                RecordingEvent::Session { renditions } => self.start_session(renditions).await,
                RecordingEvent::VideoConfig { rung, config } => {
                    self.encoder_configs.insert(rung.to_string(), config.clone());
                    for name in self.router.fed_by(&rung, self.rungs.keys()) {
                        let Some(r) = self.rungs.get_mut(&name) else { continue };
                        let out = r.packager.set_video(config.clone());
                        self.store(&name, out).await;
                    }
                }
                RecordingEvent::AudioConfig(config) => {
                    self.audio_clock = Some(AudioClock::new(config.sample_rate));
                    for name in self.rung_names() {
                        let Some(r) = self.rungs.get_mut(&name) else { continue };
                        let out = r.packager.set_audio(config.clone());
                        self.store(&name, out).await;
                    }
                }
                RecordingEvent::Video { rung, frame } => {
                    let routed = self.router.frame(&rung, frame);
                    self.route(routed).await;
                }
                RecordingEvent::StandIns { rungs } => self.router.stand_ins(&rungs),
                RecordingEvent::SourceSwitch { rung, source, at, old_source_ended } => {
                    let routed = self.router.switch(&rung, &source, at, old_source_ended);
                    self.route(routed).await;
                }
                RecordingEvent::Audio(frame) => {
                    let Some(sample) = self.audio_clock.as_mut().and_then(|c| c.sample(&frame)) else { continue };
                    for name in self.rung_names() {
                        let Some(r) = self.rungs.get_mut(&name) else { continue };
                        let out = r.packager.push_audio(sample.clone());
                        self.store(&name, out).await;
                    }
                }
                RecordingEvent::Thumbnail(jpeg) => {
                    if let Err(e) = self.storage.put(&Storage::key(&[&self.video_id, "thumbnail.jpg"]), jpeg).await {
                        tracing::warn!(video_id = %self.video_id, error = %e, "thumbnail not stored");
                    }
                }
                RecordingEvent::Failed(reason) => self.failure = Some(reason),
                RecordingEvent::Flush { done } => {
                    self.flush_all().await;
                    let _ = done.send(());
                }
                RecordingEvent::Finish { outcome, done } => {
                    self.flush_all().await;
                    let outcome = match (outcome, self.failure.take()) {
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
            }
        }
    }

    fn rung_names(&self) -> Vec<String> {
        self.rungs.keys().cloned().collect()
    }

    async fn flush_all(&mut self) {
        for name in self.rung_names() {
            let Some(r) = self.rungs.get_mut(&name) else { continue };
            let out = r.packager.new_session();
            self.store(&name, out).await;
        }
    }

    /// Packages frames where the router sends them; a switch ends the rendition's cutter and
    /// gives it the new source's codec configuration.
    async fn route(&mut self, routed: Vec<Routed>) {
        let mut switched = false;
        for step in routed {
            match step {
                Routed::Feed { rung, frame } => self.push_video(&rung, &frame).await,
                Routed::Switch { rung, source } => {
                    switched = true;
                    let config = self.encoder_configs.get(&*source).cloned();
                    let Some(r) = self.rungs.get_mut(&*rung) else { continue };
                    let mut out = r.packager.flush();
                    if let Some(config) = config {
                        out.extend(r.packager.set_video(config));
                    }
                    tracing::info!(video_id = %self.video_id, %rung, %source, "rendition switched source");
                    self.store(&rung, out).await;
                }
            }
        }
        if switched {
            let mut shed: Vec<String> = self.router.stood_in().map(|r| r.to_string()).collect();
            shed.sort();
            self.live.update_health(|h| h.shed_rungs = shed);
            // The master stops (or starts again) offering the shed renditions.
            self.master.1 = usize::MAX;
            self.publish_live();
        }
    }

    async fn push_video(&mut self, rung: &str, frame: &Frame) {
        if let Some(r) = self.rungs.get_mut(rung) {
            let out = r.packager.push_video(frame);
            self.store(rung, out).await;
        }
    }

    async fn start_session(&mut self, renditions: Vec<RenditionInfo>) {
        // What the previous session left in the cutters is listed before anything new.
        self.flush_all().await;
        self.router.reset();
        self.live.update_health(|h| h.shed_rungs.clear());
        self.speed_origin = None;
        self.audio_clock = None;
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
        let settings = &self.settings;
        for rendition in &self.renditions {
            self.rungs.entry(rendition.name.clone()).or_insert_with(|| {
                Rung::new(
                    RenditionPackager::new(&rendition.name, rendition.has_audio(), settings.segment_duration, settings.part_duration, 0),
                    MediaPlaylist::with_parts(settings.segment_duration, settings.part_duration),
                )
            });
        }
    }

    /// Stores and lists what a rendition's packager produced, in order.
    async fn store(&mut self, rung: &str, outputs: Vec<Output>) {
        if outputs.is_empty() {
            return;
        }
        for output in outputs {
            let is_segment = matches!(output, Output::Segment { .. });
            if let Err(e) = self.store_one(rung, output).await {
                tracing::error!(video_id = %self.video_id, %rung, error = %e, "media lost");
                if is_segment {
                    // Its parts were listed, but the segment never will be: unlist them, so that
                    // the next segment can open and the recording goes on around the gap.
                    if let Some(state) = self.rungs.get_mut(rung) {
                        state.playlist.abandon_open_segment();
                        state.open_parts = 0;
                    }
                }
            }
        }
        self.publish_live();
    }

    async fn store_one(&mut self, rung: &str, output: Output) -> Result<(), MediaError> {
        match output {
            Output::Init { uri, bytes } => {
                self.storage.put(&Storage::key(&[&self.video_id, rung, &uri]), bytes.clone()).await?;
                self.live.put_media(rung, &uri, bytes);
            }
            Output::Part { segment, index, uri, bytes, duration, independent, map, discontinuity } => {
                let Some(state) = self.rungs.get_mut(rung) else { return Ok(()) };
                self.live.put_media(rung, &uri, bytes);
                if index == 0 {
                    state.playlist.open_segment(SegmentStart { map: Some(map), discontinuity, program_date_time: None })?;
                }
                state.playlist.push_part(Part { uri: uri.clone(), duration, independent })?;
                match state.parts_in_memory.back_mut() {
                    Some((s, uris)) if *s == segment => uris.push(uri),
                    _ => state.parts_in_memory.push_back((segment, vec![uri])),
                }
                state.next_msn = segment;
                state.open_parts = index + 1;
            }
            Output::Segment { sequence, uri, parts, duration, discontinuity, map } => {
                let part_sizes: Vec<u64> = parts.iter().map(|part| part.len() as u64).collect();
                let size = part_sizes.iter().sum();
                self.storage.put(&Storage::key(&[&self.video_id, rung, &uri]), PutPayload::from_iter(parts)).await?;
                // The wall-clock time the segment's first frame arrived: now, less its length.
                let started = Utc::now() - chrono::Duration::from_std(duration).unwrap_or_default();
                let program_date_time = started.to_rfc3339_opts(SecondsFormat::Millis, true);
                let row = SegmentRow {
                    video_id: self.video_id.clone(),
                    rendition: rung.to_string(),
                    sequence: i64::try_from(sequence).unwrap_or(i64::MAX),
                    uri: uri.clone(),
                    duration_us: duration.as_micros() as i64,
                    bytes: size as i64,
                    discontinuity,
                    program_date_time: program_date_time.clone(),
                };
                recordings::add_segment(&self.db, &row).await?;
                let Some(state) = self.rungs.get_mut(rung) else { return Ok(()) };
                state.playlist.push(Segment {
                    uri,
                    duration,
                    bytes: size,
                    program_date_time: Some(program_date_time),
                    discontinuity,
                    map: Some(map),
                    parts: Vec::new(),
                })?;
                state.next_msn = sequence + 1;
                state.previous_parts = state.open_parts;
                state.open_parts = 0;
                state.recording_text = Bytes::from(state.playlist.render_full());
                // The segment is stored, and it is its parts back to back: serve them from it.
                if let Some((_, uris)) = state.parts_in_memory.back().filter(|(s, _)| *s == sequence) {
                    let mut offset = 0u64;
                    for (uri, len) in uris.iter().zip(part_sizes) {
                        self.live.part_stored(rung, uri, PartRange { segment: segment_uri(sequence), bytes: offset..offset + len });
                        offset += len;
                    }
                }
                // Parts stay servable while their segment is in the live window (from the stored
                // segment's bytes: a range each, no memory of their own). Playlists list the parts
                // of the last three target durations, but a player that stalled after loading one
                // asks for them later.
                while state.parts_in_memory.len() > self.settings.live_window {
                    if let Some((_, uris)) = state.parts_in_memory.pop_front() {
                        for uri in uris {
                            self.live.forget_part(rung, &uri);
                        }
                    }
                }
                let listed = state.playlist.segments().len();
                state.playlist.forget_parts_before(listed.saturating_sub(self.settings.live_window));
                metrics::counter!("ferrocast_segments_written_total").increment(1);
                if self.renditions.first().is_some_and(|r| r.name == rung) {
                    self.measure_speed(rung);
                }
            }
        }
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

    /// Renders every live view and hands the texts to the origin.
    fn publish_live(&mut self) {
        let reports: Vec<(String, RenditionReport)> = self
            .rungs
            .iter()
            .filter_map(|(name, r)| {
                let (last_msn, last_part) = r.playlist.last_msn_part()?;
                RenditionReport::new(format!("../{name}/index.m3u8"), last_msn, last_part).ok().map(|report| (name.clone(), report))
            })
            .collect();
        let mut renditions = HashMap::new();
        for (name, state) in &self.rungs {
            let others: Vec<RenditionReport> = reports.iter().filter(|(n, _)| n != name).map(|(_, r)| r.clone()).collect();
            let hint = PreloadHint::part(part_uri(state.next_msn, state.open_parts)).ok();
            let options = LiveOptions { skip: false, preload_hint: hint.as_ref(), rendition_reports: &others };
            let window = state.playlist.render_live_ll(self.settings.live_window, &options);
            let delta = state.playlist.render_live_ll(self.settings.live_window, &LiveOptions { skip: true, ..options });
            let recording =
                if state.recording_text.is_empty() { Bytes::from(state.playlist.render_full()) } else { state.recording_text.clone() };
            renditions.insert(
                name.clone(),
                RenditionPlaylists {
                    window,
                    delta,
                    recording,
                    next_msn: state.next_msn,
                    open_parts: state.open_parts,
                    previous_parts: state.previous_parts,
                },
            );
        }
        self.render_master(reports.len());
        let target_duration = Duration::from_secs(self.rungs.values().map(|r| r.playlist.target_duration()).max().unwrap_or(1));
        let ended = !self.rungs.is_empty() && self.rungs.values().all(|r| r.playlist.is_ended());
        self.live.set_playlists(LivePlaylists {
            master: self.master.0.clone(),
            renditions,
            target_duration,
            part_target: Some(self.settings.part_duration),
            ended,
        });
    }

    /// The master lists only rungs that already have something to play.
    fn render_master(&mut self, listed_count: usize) {
        let segments: usize = self.rungs.values().map(|r| r.playlist.segments().len()).sum();
        if (segments, listed_count) == (self.master.1, self.master.2) {
            return;
        }
        let shed: Vec<&str> = self.router.stood_in().map(|r| &**r).collect();
        let listed: Vec<&RenditionInfo> = self
            .renditions
            .iter()
            .filter(|r| self.rungs.get(&r.name).is_some_and(|s| s.playlist.last_msn_part().is_some()) && !shed.contains(&r.name.as_str()))
            .collect();
        let text =
            if listed.is_empty() { String::new() } else { vod::master_playlist(&listed, |name| self.rungs.get(name).map(|r| &r.playlist)) };
        self.master = (text, segments, listed_count);
    }

    async fn finish(mut self, outcome: Outcome) -> Result<(), MediaError> {
        for state in self.rungs.values_mut() {
            state.playlist.end();
            state.recording_text = Bytes::from(state.playlist.render_full());
        }
        let result = match outcome {
            Outcome::Failed(reason) => {
                videos::finish(&self.db, &self.video_id, VideoStatus::Failed, None, Some(&format!("transcoding failed: {reason}"))).await?;
                Ok(())
            }
            Outcome::Ended => {
                let renditions: Vec<&RenditionInfo> = self.renditions.iter().collect();
                let playlists: BTreeMap<String, &MediaPlaylist> = self.rungs.iter().map(|(n, r)| (n.clone(), &r.playlist)).collect();
                vod::write_vod(&self.db, &self.storage, &self.video_id, &renditions, &playlists).await
            }
        };
        self.master.1 = usize::MAX;
        self.publish_live();
        result
    }
}
