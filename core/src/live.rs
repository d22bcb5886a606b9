//! The live videos this process is producing right now: their current playlist texts (served from
//! memory by the origin), their viewers, and the health of their input and encoders.
//!
//! The live pipeline writes here; the origin and the API read. Playlists are swapped whole behind an
//! `Arc`, so a reader never sees a half-written one and never holds a lock while it sends. No lock in
//! this module is held across an `.await`. Init segments and LL-HLS parts near the live edge are
//! kept here as shared bytes (the origin serves them without touching storage), and every change
//! bumps a watch counter, so a blocking playlist reload waits on it without a poll loop or a
//! thread per viewer.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use dashmap::DashMap;
use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Every live video of this process, by video id, and the publisher connected to each channel.
#[derive(Default)]
pub struct LiveRegistry {
    videos: DashMap<String, Arc<LiveVideo>>,
    /// By channel id: the connected publisher's connection id and the token that disconnects it
    /// (when its stream key is rotated or its channel deleted).
    publishers: DashMap<String, (u64, CancellationToken)>,
}

impl LiveRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a video that just went live (or returns the one already registered).
    pub fn insert(&self, video_id: &str) -> Arc<LiveVideo> {
        self.videos.entry(video_id.to_string()).or_insert_with(|| Arc::new(LiveVideo::new(video_id))).clone()
    }

    pub fn get(&self, video_id: &str) -> Option<Arc<LiveVideo>> {
        self.videos.get(video_id).map(|v| v.clone())
    }

    pub fn remove(&self, video_id: &str) {
        self.videos.remove(video_id);
    }

    /// Notes that `connection_id` publishes on `channel_id`; the returned token fires when the
    /// API revokes that publish.
    pub fn publisher_connected(&self, channel_id: &str, connection_id: u64) -> CancellationToken {
        let token = CancellationToken::new();
        self.publishers.insert(channel_id.to_string(), (connection_id, token.clone()));
        token
    }

    /// Forgets the publisher, unless a newer one has taken the channel meanwhile.
    pub fn publisher_gone(&self, channel_id: &str, connection_id: u64) {
        self.publishers.remove_if(channel_id, |_, (id, _)| *id == connection_id);
    }

    /// Disconnects whoever publishes on `channel_id` (its key was rotated, or the channel
    /// deleted); returns whether anyone was.
    pub fn disconnect_publisher(&self, channel_id: &str) -> bool {
        match self.publishers.remove(channel_id) {
            Some((_, (_, token))) => {
                token.cancel();
                true
            }
            None => false,
        }
    }

    /// Every live video right now (for periodic metrics).
    pub fn all(&self) -> Vec<Arc<LiveVideo>> {
        self.videos.iter().map(|entry| entry.value().clone()).collect()
    }

    pub fn len(&self) -> usize {
        self.videos.len()
    }

    pub fn is_empty(&self) -> bool {
        self.videos.is_empty()
    }
}

/// The current text of one rendition's playlists.
#[derive(Clone, Debug, Default)]
pub struct RenditionPlaylists {
    /// The sliding live window (what `index.m3u8` serves while live).
    pub window: String,
    /// The same window as a delta update (`_HLS_skip=YES`): old segments replaced by EXT-X-SKIP.
    pub delta: String,
    /// Every segment since the start (EVENT while live), so viewers can seek back. Shared bytes:
    /// it is handed over after every part and grows with the stream (a copy each time cost
    /// O(stream length) per part).
    pub recording: Bytes,
    /// Media sequence number of the segment in progress: every lower one is complete.
    pub next_msn: u64,
    /// Parts of the segment in progress listed so far.
    pub open_parts: u32,
    /// How many parts the last complete segment had (0 when its parts are not known).
    pub previous_parts: u32,
}

impl RenditionPlaylists {
    /// Whether the playlist already lists segment `msn` (whole) or, with `part`, that part of it:
    /// what a blocking reload (`_HLS_msn`, `_HLS_part`) waits for.
    ///
    /// A part index past the last part of the last complete segment means the parts of the next
    /// one (RFC 8216bis 6.2.5.2): `_HLS_msn=M&_HLS_part=4` after a four-part segment M waits for
    /// part 0 of M+1, as players that count on from the last part they saw expect.
    pub fn has(&self, msn: u64, part: Option<u32>) -> bool {
        match part {
            None => msn < self.next_msn,
            Some(_) if msn + 1 < self.next_msn => true,
            Some(part) if msn + 1 == self.next_msn => {
                self.previous_parts == 0 || part < self.previous_parts || part - self.previous_parts < self.open_parts
            }
            Some(part) => msn == self.next_msn && part < self.open_parts,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct LivePlaylists {
    pub master: String,
    pub renditions: HashMap<String, RenditionPlaylists>,
    /// EXT-X-TARGETDURATION: bounds how long a blocking reload is held.
    pub target_duration: Duration,
    /// PART-TARGET; `None` without LL-HLS parts.
    pub part_target: Option<Duration>,
    /// The stream ended: nothing more will be listed, so nothing is worth waiting for.
    pub ended: bool,
}

/// What the owner sees about a live stream.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize, PartialEq, utoipa::ToSchema)]
pub struct StreamHealth {
    pub input_width: u32,
    pub input_height: u32,
    pub input_fps: f64,
    /// Measured from the bytes received over the last few seconds.
    pub input_bitrate_kbps: u64,
    pub video_codec: String,
    pub audio_codec: String,
    /// What the publisher says it is (`encoder` in onMetaData), e.g. `obs-output module`.
    pub encoder: String,
    /// Frames dropped in front of the encoders because they fell behind real time.
    pub dropped_frames: u64,
    /// Media seconds encoded per wall-clock second (≥ 1 keeps up).
    pub realtime_factor: f64,
    /// Renditions not encoded right now because the encoders could not keep real time (the
    /// CPU-aware ladder); their viewers get a lower rung's picture.
    #[serde(default)]
    pub shed_rungs: Vec<String>,
}

/// What an ingest node reports of a live video into its row (`videos.live_stats`, JSON) every few
/// seconds, so that API nodes elsewhere can show it.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct LiveStats {
    pub health: StreamHealth,
    pub uptime_secs: u64,
    pub viewers: u64,
}

pub struct LiveVideo {
    pub video_id: String,
    pub started: Instant,
    playlists: RwLock<Arc<LivePlaylists>>,
    health: Mutex<StreamHealth>,
    /// Per client address (IPv6 per /64, hashed): the user agents seen from it, newest last.
    viewers: DashMap<u64, Vec<(u64, Instant)>>,
    /// Init segments and the open segments' parts by `rendition/file`.
    media: DashMap<String, Bytes>,
    /// Parts of completed segments, by `rendition/file`: where their bytes are inside the stored
    /// segment (a segment is exactly its parts, back to back), so they need no memory of their own.
    part_ranges: DashMap<String, PartRange>,
    /// Bumped on every playlist or media change.
    changes: watch::Sender<u64>,
    /// The slug of the channel streaming it: what `/metrics` labels its series with, since a
    /// channel is public while an unlisted or private video's id must not be.
    channel: std::sync::OnceLock<String>,
}

impl LiveVideo {
    /// A video's playlist state outside the registry: an upload being transcoded is not live, but
    /// its recording is written the same way.
    pub fn detached(video_id: &str) -> Self {
        Self::new(video_id)
    }

    fn new(video_id: &str) -> Self {
        Self {
            video_id: video_id.to_string(),
            started: Instant::now(),
            playlists: RwLock::new(Arc::new(LivePlaylists::default())),
            health: Mutex::new(StreamHealth::default()),
            viewers: DashMap::new(),
            media: DashMap::new(),
            part_ranges: DashMap::new(),
            changes: watch::Sender::new(0),
            channel: std::sync::OnceLock::new(),
        }
    }

    pub fn playlists(&self) -> Arc<LivePlaylists> {
        self.playlists.read().map(|p| p.clone()).unwrap_or_default()
    }

    pub fn set_playlists(&self, playlists: LivePlaylists) {
        if let Ok(mut current) = self.playlists.write() {
            *current = Arc::new(playlists);
        }
        self.changes.send_modify(|n| *n += 1);
    }

    /// A receiver that wakes on every playlist or media change; check, then `changed().await`.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// An init segment or part held in memory.
    pub fn media(&self, rendition: &str, file: &str) -> Option<Bytes> {
        self.media.get(&media_key(rendition, file)).map(|b| b.clone())
    }

    /// Keeps `bytes` for the origin; list it in a playlist only after this.
    pub fn put_media(&self, rendition: &str, file: &str, bytes: Bytes) {
        self.media.insert(media_key(rendition, file), bytes);
        self.changes.send_modify(|n| *n += 1);
    }

    pub fn remove_media(&self, rendition: &str, file: &str) {
        self.media.remove(&media_key(rendition, file));
    }

    /// A part of a stored segment: from now on it is served from the segment's bytes and its own
    /// copy is dropped.
    pub fn part_stored(&self, rendition: &str, file: &str, range: PartRange) {
        self.part_ranges.insert(media_key(rendition, file), range);
        self.media.remove(&media_key(rendition, file));
    }

    /// Where a part of a completed segment is stored.
    pub fn part_range(&self, rendition: &str, file: &str) -> Option<PartRange> {
        self.part_ranges.get(&media_key(rendition, file)).map(|r| r.clone())
    }

    pub fn forget_part(&self, rendition: &str, file: &str) {
        self.part_ranges.remove(&media_key(rendition, file));
    }

    /// Bytes held in memory for this video (parts and init segments), for metrics and tests.
    pub fn media_bytes(&self) -> usize {
        self.media.iter().map(|entry| entry.value().len()).sum()
    }

    /// Names the channel streaming this video (once; a video never changes channel).
    pub fn set_channel(&self, slug: &str) {
        let _ = self.channel.set(slug.to_string());
    }

    pub fn channel(&self) -> Option<&str> {
        self.channel.get().map(String::as_str)
    }

    pub fn health(&self) -> StreamHealth {
        self.health.lock().map(|h| h.clone()).unwrap_or_default()
    }

    pub fn update_health(&self, update: impl FnOnce(&mut StreamHealth)) {
        if let Ok(mut health) = self.health.lock() {
            update(&mut health);
        }
    }

    /// Notes that a client fetched a playlist now. A client is an address and a user agent, but
    /// one address counts as at most `max_per_address` viewers (a household, not whatever a script
    /// varying its User-Agent claims); past that, the agent seen longest ago makes room. Addresses
    /// and agents are kept as hashes, never as text.
    pub fn saw_viewer(&self, address: IpAddr, user_agent: &str, now: Instant, max_per_address: usize) {
        let hash = |value: &dyn Fn(&mut std::collections::hash_map::DefaultHasher)| {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            value(&mut hasher);
            hasher.finish()
        };
        // An IPv6 subscriber usually has a whole /64: it is one address here.
        let address = match address.to_canonical() {
            IpAddr::V6(v6) => hash(&|h| v6.segments()[..4].hash(h)),
            v4 => hash(&|h| v4.hash(h)),
        };
        let agent = hash(&|h| user_agent.hash(h));
        let mut agents = self.viewers.entry(address).or_default();
        if let Some(seen) = agents.iter().position(|(a, _)| *a == agent) {
            agents.remove(seen);
        } else if agents.len() >= max_per_address.max(1) {
            agents.remove(0);
        }
        agents.push((agent, now));
    }

    /// Distinct clients that fetched a playlist within `window`; forgets older ones.
    pub fn viewer_count(&self, window: Duration, now: Instant) -> usize {
        let recent = |seen: &Instant| now.saturating_duration_since(*seen) <= window;
        self.viewers.retain(|_, agents| {
            agents.retain(|(_, seen)| recent(seen));
            !agents.is_empty()
        });
        self.viewers.iter().map(|agents| agents.len()).sum()
    }
}

/// A part inside its stored segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartRange {
    /// The segment's file name beside the part (`00000012.m4s`).
    pub segment: String,
    pub bytes: std::ops::Range<u64>,
}

fn media_key(rendition: &str, file: &str) -> String {
    format!("{rendition}/{file}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viewers_are_distinct_clients_seen_recently() {
        let registry = LiveRegistry::new();
        let video = registry.insert("v1");
        let t0 = Instant::now();
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        video.saw_viewer(a, "hls.js", t0, 4);
        video.saw_viewer(a, "hls.js", t0 + Duration::from_secs(2), 4);
        video.saw_viewer(b, "hls.js", t0, 4);
        video.saw_viewer(b, "Safari", t0, 4);
        assert_eq!(video.viewer_count(Duration::from_secs(30), t0 + Duration::from_secs(10)), 3);
        assert_eq!(video.viewer_count(Duration::from_secs(30), t0 + Duration::from_secs(31)), 1);
        // One address varying its User-Agent 500 times counts as at most four viewers.
        let c: IpAddr = [10, 0, 0, 3].into();
        for i in 0..500 {
            video.saw_viewer(c, &format!("agent {i}"), t0 + Duration::from_secs(32), 4);
        }
        let v6 = |s: &str| -> IpAddr { s.parse().expect("address") };
        video.saw_viewer(v6("2001:db8:1:2::1"), "hls.js", t0 + Duration::from_secs(32), 1);
        video.saw_viewer(v6("2001:db8:1:2::2"), "hls.js", t0 + Duration::from_secs(32), 1);
        // The earlier clients are out of the window by now: four from one address, one /64.
        assert_eq!(video.viewer_count(Duration::from_secs(30), t0 + Duration::from_secs(33)), 4 + 1);
        assert!(Arc::ptr_eq(&video, &registry.insert("v1")), "one entry per video");
    }

    #[test]
    fn playlists_are_swapped_whole() {
        let registry = LiveRegistry::new();
        let video = registry.insert("v1");
        let before = video.playlists();
        let mut next = LivePlaylists { master: "#EXTM3U\n".into(), ..LivePlaylists::default() };
        next.renditions.insert(
            "low".into(),
            RenditionPlaylists { window: "w".into(), recording: Bytes::from_static(b"r"), ..RenditionPlaylists::default() },
        );
        video.set_playlists(next);
        assert!(before.master.is_empty(), "a reader keeps the version it took");
        assert_eq!(video.playlists().renditions["low"].window, "w");
    }

    #[test]
    fn a_publisher_is_disconnected_by_channel_and_only_the_current_one_is_forgotten() {
        let registry = LiveRegistry::new();
        let first = registry.publisher_connected("c1", 1);
        let second = registry.publisher_connected("c1", 2);
        registry.publisher_gone("c1", 1);
        assert!(registry.disconnect_publisher("c1"), "the newer publisher was still registered");
        assert!(second.is_cancelled() && !first.is_cancelled());
        assert!(!registry.disconnect_publisher("c1"));
    }

    #[test]
    fn a_playlist_has_complete_segments_and_listed_parts_of_the_open_one() {
        let p = RenditionPlaylists { next_msn: 5, open_parts: 2, previous_parts: 4, ..RenditionPlaylists::default() };
        assert!(p.has(4, None) && p.has(4, Some(3)) && p.has(3, Some(9)), "complete segments have all their parts");
        assert!(p.has(5, Some(0)) && p.has(5, Some(1)));
        assert!(!p.has(5, Some(2)) && !p.has(5, None) && !p.has(6, Some(0)));
        // Counting on past segment 4's last part (3) reaches into segment 5.
        assert!(p.has(4, Some(4)) && p.has(4, Some(5)) && !p.has(4, Some(6)));
    }

    #[tokio::test]
    async fn media_changes_wake_subscribers() {
        let video = LiveVideo::detached("v1");
        let mut changes = video.subscribe();
        video.put_media("low", "00000001-p0.m4s", Bytes::from_static(b"part"));
        changes.changed().await.expect("woken");
        assert_eq!(video.media("low", "00000001-p0.m4s").as_deref(), Some(&b"part"[..]));
        assert_eq!(video.media_bytes(), 4);
        let range = PartRange { segment: "00000001.m4s".into(), bytes: 0..4 };
        video.part_stored("low", "00000001-p0.m4s", range.clone());
        assert!(video.media("low", "00000001-p0.m4s").is_none(), "the copy is dropped once stored");
        assert_eq!(video.part_range("low", "00000001-p0.m4s"), Some(range));
        video.forget_part("low", "00000001-p0.m4s");
        assert!(video.part_range("low", "00000001-p0.m4s").is_none());
    }
}
