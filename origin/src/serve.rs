//! The `/hls/…` handler: access check, then the playlist from memory or storage, or a segment with
//! Range and ETag support.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use bytes::Bytes;
use ferrocast_core::db::videos::{self, Video, VideoStatus, Visibility};
use ferrocast_core::storage::{Storage, StorageError};
use serde::Deserialize;

use crate::hls_path::{self, HlsPath, PlaylistKind};
use crate::range::{self, RangeRequest};
use crate::OriginState;

pub const PLAYLIST_TYPE: &str = "application/vnd.apple.mpegurl";
/// Finished playlists and segments never change once listed.
const IMMUTABLE: &str = "max-age=31536000, immutable";
/// Live playlists change every segment; one second is at most half a target duration.
const LIVE_PLAYLIST_MAX_AGE: &str = "max-age=1";
const THUMBNAIL_MAX_AGE: &str = "max-age=30";

#[derive(Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

fn status(code: StatusCode) -> Response {
    (code, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], code.canonical_reason().unwrap_or("")).into_response()
}

pub async fn hls(
    State(state): State<OriginState>,
    Path(path): Path<String>,
    Query(query): Query<TokenQuery>,
    connect_info: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
) -> Response {
    let Some(request) = hls_path::parse(&path) else { return status(StatusCode::NOT_FOUND) };
    let video = match videos::find(&state.db, request.video_id()).await {
        Ok(Some(video)) => video,
        Ok(None) => return status(StatusCode::NOT_FOUND),
        Err(e) => {
            tracing::error!(error = %e, "origin could not look up a video");
            return status(StatusCode::SERVICE_UNAVAILABLE);
        }
    };
    let token = match access_token(&state, &video, query.token.as_deref()) {
        Ok(token) => token,
        Err(code) => return status(code),
    };
    // Token-protected responses must not be stored by shared caches.
    let scope = if token.is_some() { "private" } else { "public" };
    let client = connect_info.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |Extension(ConnectInfo(addr))| addr.ip());
    let user_agent = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");

    match request {
        HlsPath::Master { .. } | HlsPath::MediaPlaylist { .. } => {
            let live = (video.status == VideoStatus::Live).then(|| state.live.get(&video.id)).flatten();
            let (text, cache) = match live {
                Some(live) => {
                    live.saw_viewer(client, user_agent, Instant::now());
                    let playlists = live.playlists();
                    let text = match &request {
                        HlsPath::MediaPlaylist { rendition, kind, .. } => match playlists.renditions.get(rendition) {
                            Some(p) if *kind == PlaylistKind::Index => p.window.clone(),
                            Some(p) => p.recording.clone(),
                            None => return status(StatusCode::NOT_FOUND),
                        },
                        _ => playlists.master.clone(),
                    };
                    if text.is_empty() {
                        // Live, but the first segment is not written yet.
                        return status(StatusCode::NOT_FOUND);
                    }
                    (text, LIVE_PLAYLIST_MAX_AGE)
                }
                None => {
                    let key = match &request {
                        // Once a video has ended, its full playlist serves both names.
                        HlsPath::MediaPlaylist { rendition, .. } => Storage::key(&[&video.id, rendition, PlaylistKind::Index.file_name()]),
                        _ => Storage::key(&[&video.id, "master.m3u8"]),
                    };
                    match state.storage.get(&key, None).await {
                        Ok(object) => (String::from_utf8_lossy(&object.bytes).into_owned(), IMMUTABLE),
                        Err(e) => return storage_error(e),
                    }
                }
            };
            let body = match &token {
                Some(token) => with_token(&text, token),
                None => text,
            };
            let cache = format!("{scope}, {cache}");
            ([(header::CONTENT_TYPE, PLAYLIST_TYPE), (header::CACHE_CONTROL, cache.as_str())], body).into_response()
        }
        HlsPath::Segment { rendition, file, kind, .. } => {
            let key = Storage::key(&[&video.id, &rendition, &file]);
            serve_object(&state.storage, &key, kind.content_type(), &format!("{scope}, {IMMUTABLE}"), &headers).await
        }
        HlsPath::Thumbnail { .. } => {
            let key = Storage::key(&[&video.id, "thumbnail.jpg"]);
            serve_object(&state.storage, &key, "image/jpeg", &format!("{scope}, {THUMBNAIL_MAX_AGE}"), &headers).await
        }
    }
}

/// `Ok(None)` for a public video, `Ok(Some(token))` when a valid token unlocks a private or unlisted
/// one, or the status to answer with.
fn access_token(state: &OriginState, video: &Video, token: Option<&str>) -> Result<Option<String>, StatusCode> {
    if video.visibility == Visibility::Public {
        return Ok(None);
    }
    let now = chrono::Utc::now().timestamp();
    match token {
        Some(token) if state.playback.verify(&video.id, token, now) => Ok(Some(token.to_string())),
        // A private video is not admitted to exist without a valid token.
        _ if video.visibility == Visibility::Private => Err(StatusCode::NOT_FOUND),
        _ => Err(StatusCode::FORBIDDEN),
    }
}

/// The playlist with `?token=…` on every URI line, so a player that follows it stays authorised.
pub fn with_token(playlist: &str, token: &str) -> String {
    let mut out = String::with_capacity(playlist.len() + 64);
    for line in playlist.lines() {
        out.push_str(line);
        if !line.is_empty() && !line.starts_with('#') {
            out.push_str(if line.contains('?') { "&token=" } else { "?token=" });
            out.push_str(token);
        }
        out.push('\n');
    }
    out
}

fn storage_error(e: StorageError) -> Response {
    match e {
        StorageError::NotFound => status(StatusCode::NOT_FOUND),
        other => {
            tracing::error!(error = %other, "origin could not read storage");
            status(StatusCode::SERVICE_UNAVAILABLE)
        }
    }
}

async fn serve_object(storage: &Storage, key: &object_path::Path, content_type: &str, cache: &str, headers: &HeaderMap) -> Response {
    let info = match storage.head(key).await {
        Ok(info) => info,
        Err(e) => return storage_error(e),
    };
    let etag = info.e_tag.as_ref().map(|tag| format!("\"{}\"", tag.trim_matches('"')));
    if let (Some(etag), Some(if_none_match)) = (&etag, headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok())) {
        if if_none_match.split(',').any(|candidate| candidate.trim() == etag || candidate.trim() == "*") {
            let mut response = StatusCode::NOT_MODIFIED.into_response();
            set(&mut response, header::ETAG, etag);
            set(&mut response, header::CACHE_CONTROL, cache);
            return response;
        }
    }
    let range_header = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (code, range) = match range::parse(range_header, info.size) {
        RangeRequest::Whole => (StatusCode::OK, None),
        RangeRequest::Part(range) => (StatusCode::PARTIAL_CONTENT, Some(range)),
        RangeRequest::Unsatisfiable => {
            let mut response = status(StatusCode::RANGE_NOT_SATISFIABLE);
            set(&mut response, header::CONTENT_RANGE, &format!("bytes */{}", info.size));
            return response;
        }
    };
    let object = match storage.get(key, range.clone()).await {
        Ok(object) => object,
        Err(e) => return storage_error(e),
    };
    let mut response = (code, Body::from(Bytes::clone(&object.bytes))).into_response();
    set(&mut response, header::CONTENT_TYPE, content_type);
    set(&mut response, header::CACHE_CONTROL, cache);
    set(&mut response, header::ACCEPT_RANGES, "bytes");
    if let Some(etag) = &etag {
        set(&mut response, header::ETAG, etag);
    }
    if let Some(range) = range {
        set(&mut response, header::CONTENT_RANGE, &format!("bytes {}-{}/{}", range.start, range.end - 1, info.size));
    }
    response
}

fn set(response: &mut Response, name: header::HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
}

mod object_path {
    pub use ferrocast_core::storage::ObjectKey as Path;
}

#[cfg(test)]
mod tests {
    use super::with_token;

    #[test]
    fn token_is_carried_onto_every_uri_and_no_tag() {
        let playlist = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.000,\n00000001.ts\n#EXTINF:2.000,\n00000002.ts\n";
        let signed = with_token(playlist, "99.abc");
        assert_eq!(
            signed,
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.000,\n00000001.ts?token=99.abc\n#EXTINF:2.000,\n00000002.ts?token=99.abc\n"
        );
        let master = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nlow/index.m3u8\n";
        assert!(with_token(master, "t").contains("low/index.m3u8?token=t\n"));
    }
}
