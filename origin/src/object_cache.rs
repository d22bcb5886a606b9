//! Playlists and segments kept in memory, so that the files everyone is watching are sent from
//! shared bytes instead of being read from storage for every viewer.
//!
//! Only what can no longer change is kept, whole: segments (live ones too: a segment is stored
//! once, complete, before any playlist lists it) and the playlists of `ready` videos. The budget
//! is `origin.memory_cache_mb`; past it the least recently used objects go. A deleted video's
//! objects are never sent (the origin checks the video before it looks here) and age out like any
//! other. Loads are single-flight: the thousands of viewers asking for a new live segment in the
//! same second wait for one storage read, and share its bytes.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::http::HeaderValue;
use bytes::Bytes;
use dashmap::DashMap;
use tokio::sync::OnceCell;

/// Larger objects are always read from storage: they would crowd out many segments.
const MAX_OBJECT_BYTES: usize = 16 << 20;

pub struct CachedObject {
    pub bytes: Bytes,
    /// Its ETag, quoted as the header carries it.
    pub etag: Option<HeaderValue>,
    /// The object's file, open, when it is a segment on local storage: the same bytes, for
    /// `sendfile` (see [`crate::FileBody`]). It holds a descriptor, not memory.
    pub file: Option<Arc<std::fs::File>>,
    /// Ticks of [`ObjectCache::clock`] at the last use.
    used: AtomicU64,
}

impl CachedObject {
    pub fn new(bytes: Bytes, e_tag: Option<String>, file: Option<std::fs::File>) -> Self {
        Self { bytes, etag: crate::serve::quoted(e_tag.as_deref()), file: file.map(Arc::new), used: AtomicU64::new(0) }
    }
}

pub struct ObjectCache {
    budget: usize,
    size: AtomicUsize,
    objects: DashMap<String, Arc<CachedObject>>,
    /// Loads in progress, by key: later askers wait for the first one's.
    loading: DashMap<String, Arc<OnceCell<Arc<CachedObject>>>>,
    started: Instant,
}

impl ObjectCache {
    pub fn new(budget_bytes: usize) -> Arc<Self> {
        Arc::new(Self {
            budget: budget_bytes,
            size: AtomicUsize::new(0),
            objects: DashMap::new(),
            loading: DashMap::new(),
            started: Instant::now(),
        })
    }

    fn clock(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    pub fn get(&self, key: &str) -> Option<Arc<CachedObject>> {
        let object = self.objects.get(key)?.clone();
        object.used.store(self.clock(), Ordering::Relaxed);
        Some(object)
    }

    /// The object under `key`: kept, or loaded by `load` (once for all who ask meanwhile) and kept.
    /// A failed load is not kept: each waiter then tries its own.
    pub async fn get_or_load<E, F>(&self, key: &str, load: impl FnOnce() -> F) -> Result<Arc<CachedObject>, E>
    where
        F: std::future::Future<Output = Result<CachedObject, E>>,
    {
        if let Some(hit) = self.get(key) {
            return Ok(hit);
        }
        let cell = self.loading.entry(key.to_string()).or_default().clone();
        let loaded = cell
            .get_or_try_init(|| async {
                let object = load().await?;
                Ok(self.insert(key, object))
            })
            .await
            .cloned();
        self.loading.remove_if(key, |_, loading| Arc::ptr_eq(loading, &cell));
        loaded
    }

    /// Keeps `object` under `key`, making room by dropping the least recently used objects;
    /// returns it (also when it is too large to keep).
    pub fn insert(&self, key: &str, object: CachedObject) -> Arc<CachedObject> {
        let len = object.bytes.len();
        object.used.store(self.clock(), Ordering::Relaxed);
        let object = Arc::new(object);
        if self.budget == 0 || len > MAX_OBJECT_BYTES.min(self.budget) {
            return object;
        }
        if let Some(old) = self.objects.insert(key.to_string(), object.clone()) {
            self.size.fetch_sub(old.bytes.len(), Ordering::Relaxed);
        }
        if self.size.fetch_add(len, Ordering::Relaxed) + len > self.budget {
            self.evict();
        }
        object
    }

    /// Down to nine tenths of the budget, oldest use first.
    fn evict(&self) {
        let mut by_use: Vec<(u64, String)> =
            self.objects.iter().map(|e| (e.value().used.load(Ordering::Relaxed), e.key().clone())).collect();
        by_use.sort_unstable();
        let target = self.budget / 10 * 9;
        for (_, key) in by_use {
            if self.size.load(Ordering::Relaxed) <= target {
                break;
            }
            if let Some((_, old)) = self.objects.remove(&key) {
                self.size.fetch_sub(old.bytes.len(), Ordering::Relaxed);
            }
        }
    }

    pub fn size(&self) -> usize {
        self.size.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_go_first_and_the_budget_holds() {
        let cache = ObjectCache::new(1000);
        cache.insert("a/1", CachedObject::new(Bytes::from(vec![0; 400]), None, None));
        std::thread::sleep(std::time::Duration::from_millis(2));
        cache.insert("a/2", CachedObject::new(Bytes::from(vec![0; 400]), Some("\"e\"".into()), None));
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(cache.get("a/1").is_some(), "used again: now the most recent");
        std::thread::sleep(std::time::Duration::from_millis(2));
        cache.insert("b/1", CachedObject::new(Bytes::from(vec![0; 400]), None, None));
        assert!(cache.get("a/2").is_none(), "the least recently used went");
        assert!(cache.get("a/1").is_some() && cache.get("b/1").is_some());
        assert_eq!(cache.size(), 800);
        cache.insert("huge", CachedObject::new(Bytes::from(vec![0; 2000]), None, None));
        assert!(cache.get("huge").is_none(), "larger than the budget: never kept");
        cache.insert("a/1", CachedObject::new(Bytes::from(vec![0; 100]), None, None));
        assert_eq!(cache.size(), 500, "a replaced object gives its size back");
    }

    #[tokio::test]
    async fn many_askers_share_one_load_and_a_failed_one_is_not_kept() {
        let cache = ObjectCache::new(1000);
        let loads = AtomicUsize::new(0);
        let load = || async {
            loads.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            Ok::<_, ()>(CachedObject::new(Bytes::from_static(b"segment"), None, None))
        };
        let askers: Vec<_> = (0..50).map(|_| cache.get_or_load("v/low/1.m4s", load)).collect();
        for object in futures_util::future::join_all(askers).await {
            assert_eq!(object.expect("loaded").bytes, Bytes::from_static(b"segment"));
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1, "one storage read for fifty viewers");
        let failed = cache.get_or_load("v/low/2.m4s", || async { Err::<CachedObject, _>("not there yet") }).await;
        assert!(failed.is_err() && cache.get("v/low/2.m4s").is_none());
        assert!(cache.loading.is_empty(), "no load left behind");
    }
}
