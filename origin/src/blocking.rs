//! Holding a request until a live video has what it asks for: the blocking playlist reload of
//! LL-HLS (`_HLS_msn`, `_HLS_part`) and a preload-hinted part requested before it exists.
//!
//! A waiting request is a future parked on the video's change counter (a `watch` channel bumped on
//! every playlist or media change): no thread and no poll loop per viewer. Every wait is bounded.

use std::sync::Arc;
use std::time::Duration;

use ferrocast_core::live::{LivePlaylists, LiveVideo};

/// Waits until `ready` holds for the video's playlists, at most `limit`. Returns the playlists
/// that satisfied it, or `None` on timeout or when the stream ended without it.
pub async fn until(live: &LiveVideo, limit: Duration, ready: impl Fn(&LivePlaylists) -> bool) -> Option<Arc<LivePlaylists>> {
    let mut changes = live.subscribe();
    let wait = async {
        loop {
            // Mark the current version seen before checking, so no change slips between the two.
            changes.borrow_and_update();
            let playlists = live.playlists();
            if ready(&playlists) {
                return Some(playlists);
            }
            if playlists.ended || changes.changed().await.is_err() {
                return None;
            }
        }
    };
    tokio::time::timeout(limit, wait).await.ok().flatten()
}

/// How long a blocking request may be held: three target durations, as RFC 8216bis advises
/// before answering 503.
pub fn limit(playlists: &LivePlaylists) -> Duration {
    (playlists.target_duration * 3).clamp(Duration::from_secs(1), Duration::from_secs(30))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use ferrocast_core::live::RenditionPlaylists;

    #[tokio::test]
    async fn a_wait_ends_when_the_part_is_listed_or_the_limit_passes() {
        let live = Arc::new(LiveVideo::detached("v"));
        let writer = live.clone();
        let waiting = tokio::spawn(async move {
            until(&live, Duration::from_secs(10), |p| p.renditions.get("low").is_some_and(|r| r.has(3, Some(1)))).await
        });
        tokio::task::yield_now().await;
        let mut playlists = LivePlaylists::default();
        playlists.renditions.insert("low".into(), RenditionPlaylists { next_msn: 3, open_parts: 1, ..Default::default() });
        writer.set_playlists(playlists.clone());
        writer.put_media("low", "00000003-p0.m4s", Bytes::from_static(b"x"));
        playlists.renditions.insert("low".into(), RenditionPlaylists { next_msn: 3, open_parts: 2, ..Default::default() });
        writer.set_playlists(playlists);
        let got = waiting.await.expect("task").expect("satisfied");
        assert_eq!(got.renditions["low"].open_parts, 2);

        let never = until(&writer, Duration::from_millis(50), |p| p.renditions.get("low").is_some_and(|r| r.has(9, None))).await;
        assert!(never.is_none());
    }
}
