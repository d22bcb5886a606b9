//! Which channel is live on which video, across connections.
//!
//! A channel has at most one live video at a time ([`Slot`]). A publish on a channel that already
//! has a connected publisher replaces it (newest wins: the old connection is told to stop and its
//! pipeline drains first). A publish within the grace period after a drop continues the same
//! video; its playlists get a discontinuity. Only when the grace period passes with nobody back
//! does the video end. Shutdown ends every live video at once, without grace.
//!
//! Across nodes, the database says who ingests a live video: this process (`node_id`) holds a
//! lease on it, renewed while its publisher is connected and let go when the publisher leaves. A
//! publish landing on another node finds the lease lapsed (this node died, or its publisher left)
//! and, within the grace period, takes the same video over: the recording continues there from
//! what the database lists (`recording::resume`). A video nobody took over is ended by whichever
//! ingest node notices first ([`Ingest::keep_leases`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ferrocast_core::channel_events::ChannelEvents;
use ferrocast_core::config::{MediaConfig, RtmpConfig};
use ferrocast_core::db::channels::{self, Channel};
use ferrocast_core::db::videos::{self, NewVideo, VideoKind, VideoStatus};
use ferrocast_core::db::webhooks;
use ferrocast_core::live::{LiveRegistry, LiveStats, LiveVideo};
use ferrocast_core::storage::Storage;
use ferrocast_core::{Db, DbError};
use ferrocast_media::recording::{self, Outcome, RecordingHandle, RecordingSettings};
use tokio::sync::{oneshot, Mutex};
use tokio_util::sync::CancellationToken;

/// How long a node holds a live video it is ending (storing the last segments, the VOD
/// playlists): no other node claims it meanwhile.
const FINISHING_LEASE: chrono::Duration = chrono::Duration::minutes(10);

/// How long a replaced publisher may take to drain before the new one goes ahead anyway.
const REPLACE_TIMEOUT: Duration = Duration::from_secs(15);

/// Everything the RTMP side needs, shared by all connections.
pub struct Ingest {
    pub db: Db,
    pub storage: Storage,
    pub live: Arc<LiveRegistry>,
    pub rtmp: RtmpConfig,
    pub media: MediaConfig,
    /// How other nodes reach this node's HTTP listener: recorded on each live video, so that
    /// origin nodes can proxy its live HLS here.
    pub node_url: String,
    /// This process, as the owner of live videos' leases (new at every start).
    node_id: String,
    /// A client counts as a viewer while it fetched a playlist within this long
    /// (`origin.viewer_window_secs`), for the viewer counts reported to API nodes.
    pub viewer_window: Duration,
    /// Connection slots (`rtmp.max_connections`, and per address), shared by the plain and the TLS
    /// listener: one cap for both.
    pub(crate) admission: Arc<ferrocast_core::admission::Admission>,
    /// Simulcast to the channels' restream targets; `None` (as in tests that need none): no pushes.
    pub restream: Option<Arc<crate::restream::RestreamSettings>>,
    /// Where going live and ending are announced to open pages; `None` (tests): not announced.
    pub channel_events: Option<Arc<ChannelEvents>>,
    slots: Mutex<HashMap<String, Slot>>,
}

struct Slot {
    video_id: String,
    /// The stream key hash the channel had when its publisher was let in: the publisher is cut
    /// off once it changes (a rotation or a deletion through any node's API).
    key_hash: Option<String>,
    recording: RecordingHandle,
    live: Arc<LiveVideo>,
    /// Bumped by every publish; a grace timer only ends the video if nothing happened since it started.
    generation: u64,
    active: Option<Active>,
}

struct Active {
    connection_id: u64,
    kick: CancellationToken,
    /// Fires when the connection has drained its pipeline and let go.
    released: Vec<oneshot::Sender<()>>,
}

/// A connection's right to publish on a channel, from [`Ingest::begin_publish`] to [`Ingest::end_publish`].
pub struct PublishLease {
    pub channel_id: String,
    pub video_id: String,
    pub connection_id: u64,
    pub recording: RecordingHandle,
    pub live: Arc<LiveVideo>,
    /// Cancelled when a newer publish replaces this one or the server shuts down.
    pub kick: CancellationToken,
    /// Fires when the API revokes this publish (stream key rotated, channel deleted).
    pub revoked: CancellationToken,
    /// Whether this publish continues a video (reconnect) rather than starting one.
    pub resumed: bool,
}

/// Why a publish could not begin.
#[derive(Debug, thiserror::Error)]
pub enum BeginError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("the channel is live from another node; its publisher must stop first")]
    LiveElsewhere,
}

/// Why a publish ended.
#[derive(Debug)]
pub enum EndReason {
    /// The publisher stopped or dropped: wait for it during the grace period.
    Disconnected,
    /// A newer publish took over; the video goes on with it.
    Replaced,
    /// The pipeline failed: the video ends now as failed.
    Failed(String),
    /// The server is stopping: the video ends now.
    Shutdown,
}

impl Ingest {
    pub fn new(db: Db, storage: Storage, live: Arc<LiveRegistry>, rtmp: RtmpConfig, media: MediaConfig, node_url: String) -> Self {
        let admission = ferrocast_core::admission::Admission::new(rtmp.max_connections, rtmp.max_connections_per_address);
        let node_id = ferrocast_core::ids::new_id();
        let viewer_window = Duration::from_secs(ferrocast_core::config::DEFAULT_VIEWER_WINDOW_SECS);
        Self {
            db,
            storage,
            live,
            rtmp,
            media,
            node_url,
            node_id,
            viewer_window,
            admission,
            restream: None,
            channel_events: None,
            slots: Mutex::new(HashMap::new()),
        }
    }

    fn lease(&self) -> Duration {
        Duration::from_secs(self.rtmp.lease_secs)
    }

    fn grace(&self) -> Duration {
        Duration::from_secs(self.rtmp.reconnect_grace_secs)
    }

    fn lease_until(&self) -> DateTime<Utc> {
        Utc::now() + self.lease()
    }

    fn recording_settings(&self) -> RecordingSettings {
        RecordingSettings {
            segment_duration: Duration::from_secs(self.media.segment_duration_secs),
            part_duration: Duration::from_millis(self.media.part_duration_ms),
            live_window: self.media.live_window_segments,
        }
    }

    /// Makes `connection_id` the publisher of `channel`: continues its live video if there is one
    /// (replacing a connected publisher), or creates the video.
    pub async fn begin_publish(self: &Arc<Self>, channel: &Channel, connection_id: u64) -> Result<PublishLease, BeginError> {
        loop {
            let mut slots = self.slots.lock().await;
            let Some(slot) = slots.get_mut(&channel.id) else { break };
            let Some(active) = slot.active.as_mut() else { break };
            // Newest wins: ask the current publisher to stop and wait until it has drained.
            active.kick.cancel();
            let (released_tx, released) = oneshot::channel();
            active.released.push(released_tx);
            drop(slots);
            tracing::info!(channel_id = %channel.id, "a new publish replaces the connected publisher");
            if tokio::time::timeout(REPLACE_TIMEOUT, released).await.is_err() {
                let mut slots = self.slots.lock().await;
                if let Some(slot) = slots.get_mut(&channel.id) {
                    slot.active = None;
                }
            }
        }

        let mut slots = self.slots.lock().await;
        if let Some(slot) = slots.get(&channel.id) {
            // Waiting here for its publisher; unless another node took it over meanwhile.
            if !videos::claim_live(&self.db, &slot.video_id, &self.node_id, &self.node_url, self.lease_until()).await? {
                tracing::info!(video_id = %slot.video_id, "the live video was taken over by another node while it waited here");
                if let Some(stale) = slots.remove(&channel.id) {
                    self.live.remove(&stale.video_id);
                }
            }
        }
        let kick = CancellationToken::new();
        if let Some(slot) = slots.get_mut(&channel.id) {
            let revoked = self.live.publisher_connected(&channel.id, connection_id);
            slot.generation += 1;
            slot.key_hash = channels::stream_key_hash(&self.db, &channel.id).await?;
            slot.active = Some(Active { connection_id, kick: kick.clone(), released: Vec::new() });
            tracing::info!(channel_id = %channel.id, video_id = %slot.video_id, "publisher back; the live video continues");
            return Ok(PublishLease {
                channel_id: channel.id.clone(),
                video_id: slot.video_id.clone(),
                connection_id,
                recording: slot.recording.clone(),
                live: slot.live.clone(),
                kick,
                revoked,
                resumed: true,
            });
        }

        let taken_over = self.take_over(channel).await?;
        let resumed_recording = match &taken_over {
            Some(video_id) => {
                let live = self.live.insert(video_id);
                match recording::resume(video_id, self.db.clone(), self.storage.clone(), live.clone(), self.recording_settings()).await {
                    Ok(recording) => Some((video_id.clone(), live, recording)),
                    Err(e) => {
                        // Not continued: it ends with what it has, and this publish starts anew
                        // (rather than being refused at every retry).
                        tracing::error!(%video_id, error = %e, "cannot continue the live video here; ending it");
                        self.live.remove(video_id);
                        self.end_abandoned(video_id).await;
                        None
                    }
                }
            }
            None => None,
        };
        let resumed = resumed_recording.is_some();
        let (video_id, live, recording) = match resumed_recording {
            Some(resumed) => resumed,
            None => {
                let video_id = self.create_video(channel).await?;
                let live = self.live.insert(&video_id);
                let recording = recording::spawn(&video_id, self.db.clone(), self.storage.clone(), live.clone(), self.recording_settings());
                (video_id, live, recording)
            }
        };
        live.set_channel(&channel.slug);
        let revoked = self.live.publisher_connected(&channel.id, connection_id);
        slots.insert(
            channel.id.clone(),
            Slot {
                video_id: video_id.clone(),
                recording: recording.clone(),
                live: live.clone(),
                generation: 0,
                key_hash: channels::stream_key_hash(&self.db, &channel.id).await?,
                active: Some(Active { connection_id, kick: kick.clone(), released: Vec::new() }),
            },
        );
        metrics::gauge!("ferrocast_live_videos").set(self.live.len() as f64);
        match resumed {
            true => tracing::info!(channel_id = %channel.id, %video_id, "live video taken over from another node; it continues here"),
            false => {
                tracing::info!(channel_id = %channel.id, %video_id, "live video started");
                self.announce_when_playable(&channel.id, live.clone());
            }
        }
        Ok(PublishLease { channel_id: channel.id.clone(), video_id, connection_id, recording, live, kick, revoked, resumed })
    }

    /// The channel's live video from another node, when this node may continue it: its owner's
    /// lease lapsed (the node died or its publisher left) within the grace period, and this node
    /// won the claim. A live video past its grace period is ended first; one whose owner still
    /// streams is not taken (newest-wins works within one node only).
    async fn take_over(&self, channel: &Channel) -> Result<Option<String>, BeginError> {
        let Some(claim) = videos::live_claim_of_channel(&self.db, &channel.id).await? else { return Ok(None) };
        let now = Utc::now();
        if claim.live_owner.as_deref() != Some(self.node_id.as_str()) && !claim.lapsed(now) {
            return Err(BeginError::LiveElsewhere);
        }
        let within_grace = claim.live_lease_until.is_some_and(|until| now < until + self.grace());
        let until = if within_grace { self.lease_until() } else { now + FINISHING_LEASE };
        if !videos::claim_live(&self.db, &claim.video_id, &self.node_id, &self.node_url, until).await? {
            return Err(BeginError::LiveElsewhere);
        }
        if within_grace {
            return Ok(Some(claim.video_id));
        }
        self.end_abandoned(&claim.video_id).await;
        Ok(None)
    }

    async fn create_video(&self, channel: &Channel) -> Result<String, BeginError> {
        let new = NewVideo {
            channel_id: &channel.id,
            kind: VideoKind::Live,
            status: VideoStatus::Live,
            title: channel.broadcast_title(),
            description: channel.broadcast_description(),
            visibility: channel.default_visibility,
        };
        let video = videos::create(&self.db, new).await?;
        videos::claim_live(&self.db, &video.id, &self.node_id, &self.node_url, self.lease_until()).await?;
        webhooks::emit_for_video(&self.db, "stream.started", &video.id).await;
        Ok(video.id)
    }

    /// Tells open pages that the channel is live once its master playlist exists (viewers sent to
    /// it earlier would find nothing to play), or after a minute without one, all the same.
    fn announce_when_playable(&self, channel_id: &str, live: Arc<LiveVideo>) {
        let Some(events) = self.channel_events.clone() else { return };
        let channel_id = channel_id.to_string();
        tokio::spawn(async move {
            let mut changes = live.subscribe();
            let playable = async {
                while live.playlists().master.is_empty() {
                    if changes.changed().await.is_err() {
                        return;
                    }
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(60), playable).await;
            events.changed(&channel_id).await;
        });
    }

    /// Writes what API nodes show of this node's live videos (health, viewers, uptime) into their rows.
    async fn report_stats(&self, video_ids: &[String]) {
        let window = self.viewer_window;
        for video_id in video_ids {
            let Some(live) = self.live.get(video_id) else { continue };
            let stats = LiveStats {
                health: live.health(),
                uptime_secs: live.started.elapsed().as_secs(),
                viewers: live.viewer_count(window, std::time::Instant::now()) as u64,
            };
            let Ok(json) = serde_json::to_string(&stats) else { continue };
            if let Err(e) = videos::set_live_stats(&self.db, video_id, &self.node_id, &json).await {
                tracing::debug!(%video_id, error = %e, "could not report a live video's stats");
            }
        }
    }

    /// Ends a live video nobody continued, from what the database lists of it.
    async fn end_abandoned(&self, video_id: &str) {
        let segment_duration = Duration::from_secs(self.media.segment_duration_secs);
        match recording::finalize_orphan(&self.db, &self.storage, video_id, segment_duration).await {
            Ok(()) => tracing::info!(%video_id, "ended a live video whose node is gone and whose publisher did not come back"),
            Err(e) => {
                tracing::error!(%video_id, error = %e, "could not end an abandoned live video; marking it failed");
                // Failed, not left live: no sweep should try it again and again.
                let message = format!("the recording could not be finished: {e}");
                if let Err(e) = videos::finish(&self.db, video_id, VideoStatus::Failed, None, Some(&message)).await {
                    tracing::error!(%video_id, error = %e, "could not mark an abandoned live video failed");
                }
            }
        }
        webhooks::emit_for_video(&self.db, "stream.ended", video_id).await;
    }

    /// Renews this node's leases on the videos whose publishers are connected here, and ends the
    /// live videos of any node that nobody took over within the grace period. Runs until shutdown.
    pub async fn keep_leases(self: Arc<Self>, shutdown: ferrocast_core::shutdown::Shutdown) {
        let mut tick = tokio::time::interval((self.lease() / 3).max(Duration::from_millis(500)));
        loop {
            tokio::select! {
                () = shutdown.signalled() => return,
                _ = tick.tick() => {}
            }
            let (publishing, waiting): (Vec<_>, Vec<_>) = {
                let slots = self.slots.lock().await;
                let publishing = slots
                    .iter()
                    .filter(|(_, s)| s.active.is_some())
                    .map(|(channel_id, s)| (channel_id.clone(), s.video_id.clone(), s.key_hash.clone()))
                    .collect();
                let waiting = slots.values().map(|s| s.video_id.clone()).collect();
                (publishing, waiting)
            };
            self.report_stats(&waiting).await;
            for (channel_id, video_id, key_hash) in publishing {
                if let Ok(false) = videos::renew_live(&self.db, &video_id, &self.node_id, self.lease_until()).await {
                    // Another node holds it now: two nodes must never record one video.
                    tracing::warn!(%video_id, "lost the lease on a live video being published here; publisher disconnected");
                    self.live.disconnect_publisher(&channel_id);
                    continue;
                }
                // A rotation or deletion through this node's API disconnects at once; through
                // another node's, here, within a third of the lease.
                if let Ok(current) = channels::stream_key_hash(&self.db, &channel_id).await {
                    if current != key_hash && self.live.disconnect_publisher(&channel_id) {
                        tracing::info!(%channel_id, %video_id, "stream key rotated or channel deleted elsewhere; publisher disconnected");
                    }
                }
            }
            // One lease of margin over the grace period: the owner's own timer ends its videos
            // first, and only a node that is gone leaves any for the others.
            let before = Utc::now() - self.grace() - self.lease();
            let abandoned = match videos::abandoned_live(&self.db, before, None, Some(&self.node_id)).await {
                Ok(ids) => ids,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot look for abandoned live videos");
                    continue;
                }
            };
            for video_id in abandoned.into_iter().filter(|id| !waiting.contains(id)) {
                // Claimed first (for as long as ending may take), so that of several ingest nodes
                // noticing, one ends it; ended off this loop, so renewals never wait for storage.
                let until = Utc::now() + FINISHING_LEASE;
                if let Ok(true) = videos::claim_live(&self.db, &video_id, &self.node_id, &self.node_url, until).await {
                    let ingest = self.clone();
                    tokio::spawn(async move { ingest.end_abandoned(&video_id).await });
                }
            }
        }
    }

    /// Lets go of a publish after its pipeline has drained.
    pub async fn end_publish(self: &Arc<Self>, lease: PublishLease, reason: EndReason) {
        self.live.publisher_gone(&lease.channel_id, lease.connection_id);
        let mut slots = self.slots.lock().await;
        let Some(slot) = slots.get_mut(&lease.channel_id) else { return };
        if slot.active.as_ref().is_some_and(|a| a.connection_id == lease.connection_id) {
            if let Some(active) = slot.active.take() {
                for released in active.released {
                    let _ = released.send(());
                }
            }
        } else if !matches!(reason, EndReason::Shutdown | EndReason::Failed(_)) {
            // Someone newer already holds the channel.
            return;
        }
        match reason {
            EndReason::Replaced => {}
            EndReason::Disconnected => {
                let generation = slot.generation;
                drop(slots);
                // Another ingest node may take the video over at once, should the publisher come
                // back there: it numbers on from what is stored, so store what is cut so far first.
                lease.recording.flush().await;
                if let Err(e) = videos::release_live(&self.db, &lease.video_id, &self.node_id).await {
                    tracing::warn!(video_id = %lease.video_id, error = %e, "could not let go of the live video's lease");
                }
                let grace = Duration::from_secs(self.rtmp.reconnect_grace_secs);
                let ingest = self.clone();
                let channel_id = lease.channel_id.clone();
                tracing::info!(video_id = %lease.video_id, grace_secs = grace.as_secs(), "publisher gone; waiting for a reconnect");
                tokio::spawn(async move {
                    tokio::time::sleep(grace).await;
                    ingest.end_video_if_idle(&channel_id, generation, Outcome::Ended).await;
                });
            }
            EndReason::Failed(message) => {
                let generation = slot.generation;
                drop(slots);
                self.end_video_if_idle(&lease.channel_id, generation, Outcome::Failed(message)).await;
            }
            EndReason::Shutdown => {
                let generation = slot.generation;
                drop(slots);
                self.stop_video_if_idle(&lease.channel_id, generation).await;
            }
        }
    }

    /// The channel's slot, taken out, if nobody publishes on it and no publish came since
    /// `generation`.
    async fn take_idle_slot(&self, channel_id: &str, generation: u64) -> Option<Slot> {
        let mut slots = self.slots.lock().await;
        match slots.get(channel_id) {
            Some(slot) if slot.generation == generation && slot.active.is_none() => slots.remove(channel_id),
            _ => None,
        }
    }

    /// Ends the channel's live video unless a publish came since `generation`.
    async fn end_video_if_idle(&self, channel_id: &str, generation: u64, outcome: Outcome) {
        let Some(slot) = self.take_idle_slot(channel_id, generation).await else { return };
        // Claimed for as long as ending may take, in one compare-and-set: either another node
        // took the video over (it continues there) or none can until it is ended here.
        let until = Utc::now() + FINISHING_LEASE;
        if let Ok(false) = videos::claim_live(&self.db, &slot.video_id, &self.node_id, &self.node_url, until).await {
            self.live.remove(&slot.video_id);
            tracing::info!(video_id = %slot.video_id, "live video continues on another node");
            return;
        }
        slot.recording.finish(outcome).await;
        webhooks::emit_for_video(&self.db, "stream.ended", &slot.video_id).await;
        if let Some(events) = &self.channel_events {
            events.changed(channel_id).await;
        }
        self.live.remove(&slot.video_id);
        metrics::gauge!("ferrocast_live_videos").set(self.live.len() as f64);
        tracing::info!(video_id = %slot.video_id, "live video ended");
    }

    /// Ends every video still waiting in its grace period (their publishers are gone already).
    pub async fn end_all_idle(&self) {
        let idle: Vec<(String, u64)> = self
            .slots
            .lock()
            .await
            .iter()
            .filter(|(_, slot)| slot.active.is_none())
            .map(|(channel_id, slot)| (channel_id.clone(), slot.generation))
            .collect();
        for (channel_id, generation) in idle {
            self.stop_video_if_idle(&channel_id, generation).await;
        }
    }

    /// At shutdown: on a database other nodes may share (Postgres), hands the video over — its
    /// lease let go, so that the publisher's reconnect to another ingest node continues it (or a
    /// node ends it after the grace period); on SQLite, where this is the only node, ends it.
    async fn stop_video_if_idle(&self, channel_id: &str, generation: u64) {
        if !matches!(self.db, Db::Postgres(_)) {
            return self.end_video_if_idle(channel_id, generation, Outcome::Ended).await;
        }
        let Some(slot) = self.take_idle_slot(channel_id, generation).await else { return };
        slot.recording.flush().await;
        if let Err(e) = videos::release_live(&self.db, &slot.video_id, &self.node_id).await {
            tracing::warn!(video_id = %slot.video_id, error = %e, "could not hand the live video over");
        }
        self.live.remove(&slot.video_id);
        tracing::info!(video_id = %slot.video_id, "shutting down: live video handed over to whichever ingest node its publisher reconnects to");
    }
}
