//! The end of a recording: the finished playlists and the master written to storage, over the very
//! same segment files the live stream served (no re-encode, no re-mux), and the video marked
//! ready. [`finalize_orphan`] does the same from the database for a video a crash left live.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use ferrocast_core::db::videos::{self, VideoStatus};
use ferrocast_core::db::{recordings, webhooks};
use ferrocast_core::storage::Storage;
use ferrocast_core::Db;

use super::rendition::init_uri;
use super::RenditionInfo;
use crate::playlist::{MasterPlaylist, MediaPlaylist, Segment, Variant};
use crate::MediaError;

/// The master over `renditions`, with bandwidths measured from their playlists where there are
/// segments and the nominal ones before.
pub(super) fn master_playlist<'a>(renditions: &[&RenditionInfo], playlist: impl Fn(&str) -> Option<&'a MediaPlaylist>) -> String {
    let mut master = MasterPlaylist::new();
    for r in renditions {
        let measured = playlist(&r.name).and_then(MediaPlaylist::bandwidth);
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
pub(super) async fn write_vod(
    db: &Db,
    storage: &Storage,
    video_id: &str,
    renditions: &[&RenditionInfo],
    playlists: &BTreeMap<String, &MediaPlaylist>,
) -> Result<(), MediaError> {
    let with_segments: Vec<&RenditionInfo> =
        renditions.iter().copied().filter(|r| playlists.get(&r.name).is_some_and(|p| !p.segments().is_empty())).collect();
    if with_segments.is_empty() {
        videos::finish(db, video_id, VideoStatus::Failed, None, Some("the stream ended before any video was received")).await?;
        webhooks::emit_for_video(db, "video.failed", video_id).await;
        return Ok(());
    }
    for r in &with_segments {
        let text = playlists[&r.name].render_full();
        storage.put(&Storage::key(&[video_id, &r.name, "index.m3u8"]), Bytes::from(text)).await?;
    }
    let master = master_playlist(&with_segments, |name| playlists.get(name).copied());
    storage.put(&Storage::key(&[video_id, "master.m3u8"]), Bytes::from(master)).await?;
    let duration: Duration = playlists[&with_segments[0].name].segments().iter().map(|s| s.duration).sum();
    videos::finish(db, video_id, VideoStatus::Ready, Some(duration.as_millis() as i64), None).await?;
    webhooks::emit_for_video(db, "video.ready", video_id).await;
    Ok(())
}

/// What the database knows of a recording: its renditions and, per rendition, a playlist of its
/// segments made with `new_playlist`. fMP4 segments get the init segment named after the first
/// segment of their run (the first segment, or the last one that followed a discontinuity).
pub(super) async fn load(
    db: &Db,
    video_id: &str,
    new_playlist: impl Fn() -> MediaPlaylist,
) -> Result<(Vec<RenditionInfo>, BTreeMap<String, MediaPlaylist>), MediaError> {
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
    let mut playlists = BTreeMap::new();
    for r in &renditions {
        let mut playlist = new_playlist();
        let mut map: Option<String> = None;
        for s in recordings::segments(db, video_id, &r.name).await? {
            if s.uri.ends_with(".m4s") && (map.is_none() || s.discontinuity) {
                map = Some(init_uri(u64::try_from(s.sequence).unwrap_or(0)));
            }
            playlist.push(Segment {
                map: if s.uri.ends_with(".m4s") { map.clone() } else { None },
                uri: s.uri,
                duration: Duration::from_micros(s.duration_us.max(1) as u64),
                bytes: s.bytes as u64,
                program_date_time: Some(s.program_date_time),
                discontinuity: s.discontinuity,
                parts: Vec::new(),
            })?;
        }
        playlists.insert(r.name.clone(), playlist);
    }
    Ok((renditions, playlists))
}

/// Finishes a video a crash left `live`, from what the database knows of its segments.
pub async fn finalize_orphan(db: &Db, storage: &Storage, video_id: &str, segment_duration: Duration) -> Result<(), MediaError> {
    let (renditions, mut playlists) = load(db, video_id, || MediaPlaylist::new(segment_duration)).await?;
    for playlist in playlists.values_mut() {
        playlist.end();
    }
    let refs: Vec<&RenditionInfo> = renditions.iter().collect();
    let playlists: BTreeMap<String, &MediaPlaylist> = playlists.iter().map(|(n, p)| (n.clone(), p)).collect();
    write_vod(db, storage, video_id, &refs, &playlists).await
}
