//! Simulcast: while a channel is live, its source (as the publisher sent it, no re-encode) is
//! pushed to each of the channel's enabled restream targets (YouTube, Twitch, another server).
//!
//! One [`Restreamer`] per publish. The publisher hands it every audio/video message and the
//! metadata ([`Restreamer::media`], never blocking); it keeps the latest sequence headers, so a
//! target that (re)connects mid-stream starts with them and then at a keyframe. Each target has its
//! own task (`push.rs`) and its own bounded queue: a target that cannot keep up skips to the next
//! keyframe, one that fails is retried with backoff, and neither touches the local stream or the
//! other targets. A supervisor task re-reads the channel's targets when the API announces a change
//! to them (a channel event, from any node), and every half minute regardless, so targets added,
//! enabled, disabled or deleted while live take effect at once, without a reconnect. State
//! (connecting, live with its bitrate, retrying with the error) goes to the database, where the
//! API of any node reads it.

mod push;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use ferrocast_core::channel_events::{ChannelEvent, ChannelEvents, Envelope};
use ferrocast_core::config::RestreamConfig;
use ferrocast_core::db::restreams::{self, RestreamState};
use ferrocast_core::restream_url::RestreamUrl;
use ferrocast_core::sealed::SealingKey;
use ferrocast_core::Db;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::flv::{self, AudioTag, VideoTag};
use crate::rtmp::amf0::Amf0Value;
use crate::session::{MediaKind, StreamMetadata};

/// How often a live channel's target list is read again when no event says it changed.
const REFRESH_INTERVAL: Duration = Duration::from_secs(30);
/// The same without channel events (a test's ingest that has none).
const REFRESH_INTERVAL_UNANNOUNCED: Duration = Duration::from_secs(3);

/// What every push needs, built once at start-up.
pub struct RestreamSettings {
    pub config: RestreamConfig,
    /// Opens the sealed target URLs (`ferrocast_core::db::restreams::SEALING_PURPOSE`).
    pub sealing: SealingKey,
    /// For `rtmps://` targets: the system's roots and `extra_ca_file`.
    pub tls: Arc<tokio_rustls::rustls::ClientConfig>,
}

impl RestreamSettings {
    pub fn new(config: RestreamConfig, sealing: SealingKey) -> Result<Self, crate::tls::TlsError> {
        let tls = crate::tls::client_config(config.extra_ca_file.as_deref())?;
        Ok(Self { config, sealing, tls })
    }
}

/// One message for a target.
#[derive(Clone)]
enum Packet {
    /// Audio or video as the publisher sent it.
    Media(Media),
    /// New `onMetaData` (publishers send it once, just after `publish`: usually after a push
    /// connected, so it goes out in-stream as well as in the stream start).
    Metadata(Amf0Value),
}

#[derive(Clone)]
struct Media {
    video: bool,
    timestamp_ms: i64,
    keyframe: bool,
    /// A sequence header: never skipped, since what follows cannot be decoded without it.
    header: bool,
    payload: Bytes,
}

/// What a target that (re)connects sends before media: metadata and the sequence headers.
#[derive(Default)]
struct StreamStart {
    metadata: Option<Amf0Value>,
    video_header: Option<Bytes>,
    audio_header: Option<Bytes>,
}

/// A running push: its queue, and whether it is skipping to the next keyframe.
struct Target {
    queue: mpsc::Sender<Packet>,
    skipping: bool,
    stop: CancellationToken,
}

pub struct Restreamer {
    start: Arc<Mutex<StreamStart>>,
    targets: Arc<Mutex<HashMap<String, Target>>>,
    /// Ends the supervisor and every push when the publish ends.
    done: CancellationToken,
}

impl Restreamer {
    /// Starts pushing `channel_id`'s enabled targets (none may exist: then it only watches for
    /// targets added while live).
    pub fn start(db: Db, settings: Arc<RestreamSettings>, channel_id: String, events: Option<&ChannelEvents>) -> Self {
        let restreamer = Self { start: Arc::default(), targets: Arc::default(), done: CancellationToken::new() };
        let supervisor = Supervisor {
            db,
            settings,
            channel_id,
            changes: events.map(ChannelEvents::subscribe),
            start: restreamer.start.clone(),
            targets: restreamer.targets.clone(),
            done: restreamer.done.clone(),
        };
        tokio::spawn(supervisor.run());
        restreamer
    }

    pub fn metadata(&self, metadata: &StreamMetadata) {
        let object = metadata_object(metadata);
        lock(&self.start).metadata = Some(object.clone());
        for target in lock(&self.targets).values() {
            // Dropped only when the target is that far behind; it still has it from the start.
            let _ = target.queue.try_send(Packet::Metadata(object.clone()));
        }
    }

    /// One audio or video message from the publisher: remembered when it is a sequence header,
    /// queued for every target.
    pub fn media(&self, kind: MediaKind, timestamp_ms: i64, payload: &Bytes) {
        let video = kind == MediaKind::Video;
        let (mut keyframe, mut header) = (false, false);
        if video {
            match flv::parse_video(payload, timestamp_ms) {
                Ok(VideoTag::SequenceStart { .. }) => {
                    header = true;
                    lock(&self.start).video_header = Some(payload.clone());
                }
                Ok(VideoTag::Frame(frame)) => keyframe = frame.frame_type.is_key(),
                _ => {}
            }
        } else if let Ok(AudioTag::SequenceStart { .. }) = flv::parse_audio(payload, timestamp_ms) {
            header = true;
            lock(&self.start).audio_header = Some(payload.clone());
        }
        let packet = Packet::Media(Media { video, timestamp_ms, keyframe, header, payload: payload.clone() });
        for target in lock(&self.targets).values_mut() {
            if target.skipping && !keyframe && !header {
                continue;
            }
            let sent = target.queue.try_send(packet.clone()).is_ok();
            // A header that does not fit is still in the stream start a reconnect sends.
            if !header {
                target.skipping = !sent;
            }
        }
    }
}

impl Drop for Restreamer {
    fn drop(&mut self) {
        self.done.cancel();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Resolves when an event says the channel changed (or events were missed); never without events.
async fn changed(changes: Option<&mut broadcast::Receiver<Arc<Envelope>>>, channel_id: &str) {
    let Some(changes) = changes else { return std::future::pending().await };
    loop {
        match changes.recv().await {
            Ok(envelope) if envelope.channel_id == channel_id && envelope.event == ChannelEvent::Changed => return,
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(_)) => return,
            Err(broadcast::error::RecvError::Closed) => return std::future::pending().await,
        }
    }
}

/// `onMetaData` for a target, from what the publisher said (what services read: size, rate,
/// codecs, bitrates).
fn metadata_object(metadata: &StreamMetadata) -> Amf0Value {
    let mut properties = Vec::new();
    let mut number = |name: &str, value: Option<f64>| {
        if let Some(value) = value {
            properties.push((name.to_string(), Amf0Value::Number(value)));
        }
    };
    number("width", metadata.video_width.map(f64::from));
    number("height", metadata.video_height.map(f64::from));
    number("framerate", metadata.video_frame_rate.map(f64::from));
    number("videodatarate", metadata.video_bitrate_kbps.map(f64::from));
    properties.push(("encoder".to_string(), Amf0Value::string(concat!("Ferrocast ", env!("CARGO_PKG_VERSION")))));
    Amf0Value::Object(properties)
}

struct Supervisor {
    db: Db,
    settings: Arc<RestreamSettings>,
    channel_id: String,
    /// Every channel's events; `None`: re-read often instead.
    changes: Option<broadcast::Receiver<Arc<Envelope>>>,
    start: Arc<Mutex<StreamStart>>,
    targets: Arc<Mutex<HashMap<String, Target>>>,
    done: CancellationToken,
}

impl Supervisor {
    async fn run(mut self) {
        let interval = if self.changes.is_some() { REFRESH_INTERVAL } else { REFRESH_INTERVAL_UNANNOUNCED };
        loop {
            match restreams::list_by_channel(&self.db, &self.channel_id).await {
                Ok(list) => self.reconcile(list),
                Err(e) => tracing::warn!(channel_id = %self.channel_id, error = %e, "cannot read restream targets"),
            }
            let changed = changed(self.changes.as_mut(), &self.channel_id);
            tokio::select! {
                () = self.done.cancelled() => break,
                () = tokio::time::sleep(interval) => {}
                () = changed => {}
            }
        }
        for (_, target) in lock(&self.targets).drain() {
            target.stop.cancel();
        }
    }

    /// Starts pushes for enabled targets that have none, stops those of targets gone or disabled.
    fn reconcile(&self, list: Vec<restreams::Restream>) {
        let mut targets = lock(&self.targets);
        let wanted: HashMap<String, restreams::Restream> = list.into_iter().filter(|r| r.enabled).map(|r| (r.id.clone(), r)).collect();
        targets.retain(|id, target| {
            let keep = wanted.contains_key(id) && !target.queue.is_closed();
            if !keep {
                target.stop.cancel();
            }
            keep
        });
        for (id, restream) in wanted {
            if targets.contains_key(&id) {
                continue;
            }
            let Some(url) = self.settings.sealing.open(&restream.url_sealed).and_then(|u| RestreamUrl::parse(&u).ok()) else {
                let db = self.db.clone();
                tokio::spawn(async move {
                    let error = "the stored URL cannot be read (was the server secret changed?); enter it again";
                    let _ = restreams::report(&db, &id, RestreamState::Retrying, Some(error), None).await;
                });
                continue;
            };
            let (queue, packets) = mpsc::channel(self.settings.config.max_queued_messages.max(1));
            let stop = self.done.child_token();
            let push = push::Push {
                db: self.db.clone(),
                settings: self.settings.clone(),
                restream_id: id.clone(),
                url,
                start: self.start.clone(),
                packets,
                stop: stop.clone(),
            };
            tokio::spawn(push.run());
            // A new target waits for a keyframe, as after a skip.
            targets.insert(id, Target { queue, skipping: true, stop });
        }
    }
}
