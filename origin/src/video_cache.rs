//! The video rows the origin reads on every request, kept in memory so that a thousand viewers of
//! one video cost the database one read per `ttl`, not a thousand per second.
//!
//! An entry lives `ttl` (one second): long enough to take the hot path off the database, short
//! enough that what is not announced (a live video changing hands between ingest nodes) is seen
//! soon. What users change (visibility, deletion, going live and ending) is announced as a channel
//! event, and every cached video of that channel is dropped at once, on every node. Concurrent
//! misses for one video share one read; a failed read is not kept.
//!
//! When an entry expires, the first request after it reads the row again and waits for it; the
//! others meanwhile get the row it replaces. Otherwise every viewer of a popular video would wait
//! for that one read once a second, all at once (a stall in the latency tail of every request).
//! The old row is answered only while it is younger than two `ttl`s (counted from the start of the
//! read that fetched it): a row not asked for in a while is read again with everyone waiting, and
//! so is one whose re-read failed or was abandoned for that long. Dropped entries (a channel event)
//! are never served stale: those requests wait for the new row.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use ferrocast_core::channel_events::{ChannelEvent, ChannelEvents};
use ferrocast_core::db::videos::Video;
use ferrocast_core::DbError;
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

/// Entries beyond which expired ones are swept on the next insert.
const SWEEP_ABOVE: usize = 10_000;

/// Sweeps run at most this often, whatever the number of entries: a flood of distinct ids must not
/// make every miss walk the whole map.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

struct Entry {
    created: Instant,
    row: Arc<OnceCell<Option<Arc<Video>>>>,
    /// The row of an expired entry: answered while `row` is being read, if it is young enough.
    replaced: Option<Replaced>,
}

/// An expired entry's row, with the start of the read that fetched it.
type Replaced = (Instant, Option<Arc<Video>>);

/// Whether a replaced row read at `read` may still be answered: younger than two `ttl`s.
fn young_enough((read, _): &Replaced, ttl: Duration) -> bool {
    read.elapsed() < 2 * ttl
}

/// What a lookup found: a row to answer with, or one to wait for.
enum Lookup {
    Row(Option<Arc<Video>>),
    /// Not read yet (or being read): wait for it.
    Reading(Arc<OnceCell<Option<Arc<Video>>>>),
}

impl Entry {
    fn new(replaced: Option<Replaced>) -> Self {
        Self { created: Instant::now(), row: Arc::default(), replaced }
    }

    /// The row, or the old one while it is read again and still young enough, or the read to
    /// wait for.
    fn found(&self, ttl: Duration) -> Lookup {
        match (self.row.get(), self.replaced.as_ref().filter(|replaced| young_enough(replaced, ttl))) {
            (Some(row), _) => Lookup::Row(row.clone()),
            (None, Some((_, replaced))) => Lookup::Row(replaced.clone()),
            (None, None) => Lookup::Reading(self.row.clone()),
        }
    }

    /// What the entry that replaces this one may answer while it reads: this one's row, or (when
    /// this one's read never finished) the row it had itself, while still young enough.
    fn row_to_replace(&self, ttl: Duration) -> Option<Replaced> {
        let row = match self.row.get() {
            Some(row) => Some((self.created, row.clone())),
            None => self.replaced.clone(),
        };
        row.filter(|replaced| young_enough(replaced, ttl))
    }
}

pub struct VideoCache {
    ttl: Duration,
    entries: DashMap<String, Entry>,
    last_sweep: std::sync::Mutex<Instant>,
}

impl VideoCache {
    pub fn new(ttl: Duration) -> Arc<Self> {
        Arc::new(Self { ttl, entries: DashMap::new(), last_sweep: std::sync::Mutex::new(Instant::now()) })
    }

    /// The video (or `None` for no such video), at most `ttl` old unless its channel changed;
    /// `find` reads it from the database when it is not (the origin's reads it on the shared
    /// runtime, `pooled_io.rs`).
    pub async fn get<F, Found>(&self, id: &str, find: F) -> Result<Option<Arc<Video>>, DbError>
    where
        F: FnOnce() -> Found,
        Found: Future<Output = Result<Option<Video>, DbError>>,
    {
        // The common case, a fresh entry: a shared read, nothing allocated.
        let fresh = self.entries.get(id).filter(|entry| entry.created.elapsed() < self.ttl).map(|entry| entry.found(self.ttl));
        let found = if let Some(found) = fresh {
            found
        } else {
            if self.entries.len() > SWEEP_ABOVE && self.sweep_due() {
                self.entries.retain(|_, entry| entry.created.elapsed() < self.ttl);
            }
            let mut entry = self.entries.entry(id.to_string()).or_insert_with(|| Entry::new(None));
            if entry.created.elapsed() >= self.ttl {
                // This request reads the row again; until it has, the others get the old one.
                let replaced = entry.row_to_replace(self.ttl);
                *entry = Entry::new(replaced);
                Lookup::Reading(entry.row.clone())
            } else {
                entry.found(self.ttl)
            }
        };
        match found {
            Lookup::Row(row) => Ok(row),
            Lookup::Reading(row) => row.get_or_try_init(|| async { Ok::<_, DbError>(find().await?.map(Arc::new)) }).await.cloned(),
        }
    }

    fn sweep_due(&self) -> bool {
        let Ok(mut last) = self.last_sweep.try_lock() else { return false };
        if last.elapsed() < SWEEP_EVERY {
            return false;
        }
        *last = Instant::now();
        true
    }

    /// Drops every cached video of the channel (and every cached miss: a new video may exist now).
    pub fn forget_channel(&self, channel_id: &str) {
        self.entries.retain(|_, entry| match entry.row.get() {
            Some(Some(video)) => video.channel_id != channel_id,
            _ => false,
        });
    }

    /// Drops what a channel event says changed, until `stop`.
    pub async fn follow(self: Arc<Self>, events: Arc<ChannelEvents>, stop: CancellationToken) {
        events.start_listening(stop.clone());
        let mut received = events.subscribe();
        loop {
            let event = tokio::select! {
                () = stop.cancelled() => return,
                event = received.recv() => event,
            };
            match event {
                Ok(envelope) if envelope.event == ChannelEvent::Changed => self.forget_channel(&envelope.channel_id),
                Ok(_) => {}
                // Missed some: forget everything rather than guess.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => self.entries.clear(),
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrocast_core::db::videos;

    #[tokio::test]
    async fn rows_are_read_once_per_ttl_and_dropped_when_their_channel_changes() {
        let test_db = ferrocast_core::testing::TestDb::sqlite().await;
        let db = &test_db.db;
        let owner = ferrocast_core::db::users::create(db, "ana", "ana@example.com", "x").await.expect("user");
        let channel = ferrocast_core::db::channels::create(db, &owner.id, "ana", "Ana", "", "hash").await.expect("channel");
        let new = videos::NewVideo {
            channel_id: &channel.id,
            kind: videos::VideoKind::Upload,
            status: videos::VideoStatus::Ready,
            title: "First",
            description: "",
            visibility: videos::Visibility::Public,
        };
        let video = videos::create(db, new).await.expect("video");
        let find = || videos::find(db, &video.id);
        let cache = VideoCache::new(Duration::from_secs(3600));
        assert_eq!(cache.get(&video.id, find).await.expect("read").expect("exists").title, "First");
        videos::update(db, &video.id, Some("Renamed"), None, None).await.expect("update");
        assert_eq!(cache.get(&video.id, find).await.expect("read").expect("exists").title, "First", "within the ttl, from memory");
        cache.forget_channel("another channel");
        assert_eq!(cache.get(&video.id, find).await.expect("read").expect("exists").title, "First");
        cache.forget_channel(&channel.id);
        assert_eq!(
            cache.get(&video.id, find).await.expect("read").expect("exists").title,
            "Renamed",
            "read again after its channel changed"
        );
        assert!(cache
            .get("0190f0e0a0b07c0d8e0f0a0b0c0d0e0f", || videos::find(db, "0190f0e0a0b07c0d8e0f0a0b0c0d0e0f"))
            .await
            .expect("read")
            .is_none());

        let short = VideoCache::new(Duration::from_millis(1));
        short.get(&video.id, find).await.expect("read");
        videos::update(db, &video.id, Some("Again"), None, None).await.expect("update");
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(short.get(&video.id, find).await.expect("read").expect("exists").title, "Again", "read again after the ttl");

        // After the ttl, one request reads the row again; the others meanwhile get the old one.
        let ttl = Duration::from_secs(1);
        let cache = VideoCache::new(ttl);
        cache.get(&video.id, find).await.expect("read");
        videos::update(db, &video.id, Some("Later"), None, None).await.expect("update");
        tokio::time::sleep(ttl + Duration::from_millis(50)).await;
        let (started, release) = (tokio::sync::Notify::new(), tokio::sync::Notify::new());
        let slow_find = || async {
            started.notify_one();
            release.notified().await;
            videos::find(db, &video.id).await
        };
        let rereading = cache.get(&video.id, slow_find);
        tokio::pin!(rereading);
        tokio::select! {
            _ = &mut rereading => panic!("the read waits to be released"),
            () = started.notified() => {}
        }
        let reads = std::sync::atomic::AtomicUsize::new(0);
        let counted_find = || {
            reads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            find()
        };
        let meanwhile = cache.get(&video.id, counted_find).await.expect("read").expect("exists");
        assert_eq!((meanwhile.title.as_str(), reads.into_inner()), ("Again", 0), "the old row, without a read of its own");
        release.notify_one();
        assert_eq!(rereading.await.expect("read").expect("exists").title, "Later");
        assert_eq!(cache.get(&video.id, find).await.expect("read").expect("exists").title, "Later");

        // A row older than two ttls is not answered while it is read again: everyone waits.
        let ttl = Duration::from_millis(100);
        let cache = VideoCache::new(ttl);
        cache.get(&video.id, find).await.expect("read");
        tokio::time::sleep(2 * ttl + Duration::from_millis(50)).await;
        let rereading = cache.get(&video.id, slow_find);
        tokio::pin!(rereading);
        tokio::select! {
            _ = &mut rereading => panic!("the read waits to be released"),
            () = started.notified() => {}
        }
        tokio::select! {
            _ = cache.get(&video.id, find) => panic!("a row that old is not answered"),
            () = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
        release.notify_one();
        assert_eq!(rereading.await.expect("read").expect("exists").title, "Later");

        cache.forget_channel(&channel.id);
        videos::update(db, &video.id, Some("Last"), None, None).await.expect("update");
        assert_eq!(cache.get(&video.id, find).await.expect("read").expect("exists").title, "Last", "a dropped row is never answered");
    }
}
