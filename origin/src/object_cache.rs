//! Finished videos' playlists and segments kept in memory, so that the files everyone is watching
//! are sent from shared bytes instead of being read from storage for every viewer.
//!
//! Only what can no longer change is kept: objects of `ready` videos, whole. The budget is
//! `origin.memory_cache_mb`; past it the least recently used objects go. A deleted video's objects
//! are never sent (the origin checks the video before it looks here) and age out like any other.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use dashmap::DashMap;

/// Larger objects are always read from storage: they would crowd out many segments.
const MAX_OBJECT_BYTES: usize = 16 << 20;

pub struct CachedObject {
    pub bytes: Bytes,
    pub e_tag: Option<String>,
    /// Ticks of [`ObjectCache::clock`] at the last use.
    used: AtomicU64,
}

pub struct ObjectCache {
    budget: usize,
    size: AtomicUsize,
    objects: DashMap<String, Arc<CachedObject>>,
    started: Instant,
}

impl ObjectCache {
    pub fn new(budget_bytes: usize) -> Arc<Self> {
        Arc::new(Self { budget: budget_bytes, size: AtomicUsize::new(0), objects: DashMap::new(), started: Instant::now() })
    }

    fn clock(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    pub fn get(&self, key: &str) -> Option<Arc<CachedObject>> {
        let object = self.objects.get(key)?.clone();
        object.used.store(self.clock(), Ordering::Relaxed);
        Some(object)
    }

    /// Keeps `bytes` under `key`, making room by dropping the least recently used objects.
    pub fn insert(&self, key: &str, bytes: Bytes, e_tag: Option<String>) {
        if self.budget == 0 || bytes.len() > MAX_OBJECT_BYTES.min(self.budget) {
            return;
        }
        let len = bytes.len();
        let object = Arc::new(CachedObject { bytes, e_tag, used: AtomicU64::new(self.clock()) });
        if let Some(old) = self.objects.insert(key.to_string(), object) {
            self.size.fetch_sub(old.bytes.len(), Ordering::Relaxed);
        }
        if self.size.fetch_add(len, Ordering::Relaxed) + len > self.budget {
            self.evict();
        }
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
        cache.insert("a/1", Bytes::from(vec![0; 400]), None);
        std::thread::sleep(std::time::Duration::from_millis(2));
        cache.insert("a/2", Bytes::from(vec![0; 400]), Some("\"e\"".into()));
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(cache.get("a/1").is_some(), "used again: now the most recent");
        std::thread::sleep(std::time::Duration::from_millis(2));
        cache.insert("b/1", Bytes::from(vec![0; 400]), None);
        assert!(cache.get("a/2").is_none(), "the least recently used went");
        assert!(cache.get("a/1").is_some() && cache.get("b/1").is_some());
        assert_eq!(cache.size(), 800);
        cache.insert("huge", Bytes::from(vec![0; 2000]), None);
        assert!(cache.get("huge").is_none(), "larger than the budget: never kept");
        cache.insert("a/1", Bytes::from(vec![0; 100]), None);
        assert_eq!(cache.size(), 500, "a replaced object gives its size back");
    }
}
