//! The `/hls/…` handler: access check, then the playlist from memory or storage, or a segment with
//! Range and ETag support. While a video is live its playlists, init segments and LL-HLS parts
//! come from memory, and a blocking reload (`_HLS_msn`/`_HLS_part`) or a request for the hinted
//! next part is held until it exists (`blocking.rs`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use bytes::Bytes;
use ferrocast_core::db::videos::{self, Video, VideoStatus, Visibility};
use ferrocast_core::live::{LivePlaylists, LiveVideo, PartRange};
use ferrocast_core::storage::{Storage, StorageError};
use serde::Deserialize;

use crate::blocking;
use crate::file_body::{self, FileBody, MIN_FILE_BODY_BYTES};
use crate::hls_path::{self, HlsPath, PlaylistKind};
use crate::object_cache::CachedObject;
use crate::pooled_io::PooledIo;
use crate::proxy;
use crate::range::{self, RangeRequest};
use crate::OriginState;

pub const PLAYLIST_TYPE: &str = "application/vnd.apple.mpegurl";
/// Finished playlists and segments never change once listed. Only browsers keep token-protected
/// ones (see [`public_immutable_cache`] for the rest).
const PRIVATE_IMMUTABLE: HeaderValue = HeaderValue::from_static("private, max-age=31536000, immutable");
/// A part that is not made yet may be soon.
const MISSING_PART_MAX_AGE: &str = "max-age=1";

/// `Cache-Control` of public media that never changes once listed. Shared caches keep it only
/// `shared_cache_max_age`: a video turned private must stop being served from them soon (browsers
/// may keep what they already have). Made once (`OriginState::public_immutable`), not per request.
pub fn public_immutable_cache(shared_cache_max_age: Duration) -> HeaderValue {
    let value = format!("public, max-age=31536000, immutable, s-maxage={}", shared_cache_max_age.as_secs());
    HeaderValue::from_str(&value).expect("digits and ASCII make a header value")
}

/// `Cache-Control` of a live playlist. It changes with every part: a cache must ask again each
/// time, except for a blocking reload's answer (`blocked`), which is for one
/// `_HLS_msn`/`_HLS_part` URL and already holds what it asked for: a CDN may hand it to every
/// player asking the same within a second. Token-protected (`private`) answers are for browsers only.
fn live_playlist_cache(private: bool, blocked: bool) -> HeaderValue {
    HeaderValue::from_static(match (private, blocked) {
        (false, false) => "public, no-cache",
        (false, true) => "public, max-age=1",
        (true, false) => "private, no-cache",
        (true, true) => "private, max-age=1",
    })
}

/// What an `/hls/…` request's query may say.
#[derive(Deserialize, Default)]
pub struct HlsQuery {
    token: Option<String>,
    /// Blocking reload: hold until the playlist has this media sequence number…
    #[serde(rename = "_HLS_msn")]
    msn: Option<u64>,
    /// …and this part of it.
    #[serde(rename = "_HLS_part")]
    part: Option<u32>,
    /// `YES` (or `v2`): a delta update, old segments replaced by EXT-X-SKIP.
    #[serde(rename = "_HLS_skip")]
    skip: Option<String>,
}

fn status(code: StatusCode) -> Response {
    (code, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], code.canonical_reason().unwrap_or("")).into_response()
}

/// `GET /hls/{*path}` through the router (see [`crate::direct`] for the way around it).
pub async fn hls(
    State(state): State<OriginState>,
    Path(path): Path<String>,
    Query(query): Query<HlsQuery>,
    connect_info: Option<Extension<ConnectInfo<SocketAddr>>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let peer = connect_info.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |Extension(ConnectInfo(addr))| addr.ip());
    respond(&state, &path, query, peer, &uri, &headers).await
}

/// The answer to `GET /hls/{path}?{query}` from `peer` (without the CORS headers, which the
/// caller adds). It reads only the request headers named in [`crate::direct::READ_HEADERS`]: the
/// listener's own loop passes no others, so a header read here must be added there too.
pub async fn respond(state: &OriginState, path: &str, query: HlsQuery, peer: IpAddr, uri: &Uri, headers: &HeaderMap) -> Response {
    let Some(request) = hls_path::parse(path) else { return status(StatusCode::NOT_FOUND) };
    let find = || {
        let (db, id) = (state.io.db.clone(), request.video_id().to_string());
        state.io.run(async move { videos::find(&db, &id).await })
    };
    let video = match state.videos.get(request.video_id(), find).await {
        Ok(Some(video)) => video,
        Ok(None) => return status(StatusCode::NOT_FOUND),
        Err(e) => {
            tracing::error!(error = %e, "origin could not look up a video");
            return status(StatusCode::SERVICE_UNAVAILABLE);
        }
    };
    let token = match access_token(state, &video, query.token.as_deref()) {
        Ok(token) => token,
        Err(code) => return status(code),
    };
    // Passed on by an origin node: the viewer it vouches for, not the origin itself.
    let vouched = || {
        let address = headers.get(proxy::VIEWER_HEADER)?.to_str().ok()?;
        let tag = headers.get(proxy::VIEWER_TAG_HEADER)?.to_str().ok()?;
        state.playback.verify_viewer_tag(address, tag).then(|| address.parse::<IpAddr>().ok()).flatten()
    };
    let client = vouched().unwrap_or(peer);
    let user_agent = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");

    // While the video is live, its playlists, init segments and recent parts are in memory: here,
    // or on the node that ingests it, which answers instead (once; never passed on again).
    let live = (video.status == VideoStatus::Live).then(|| state.live.get(&video.id)).flatten();
    // The row names the ingest node: after a hand-over this node's memory may still hold the
    // video (its grace period), but the stream goes on elsewhere.
    if video.status == VideoStatus::Live && !headers.contains_key(proxy::PROXIED_HEADER) {
        if let Some(owner) = video.live_node_url.as_deref().filter(|owner| *owner != state.node_url) {
            let path_and_query = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
            let viewer = proxy::Viewer { address: client, tag: state.playback.viewer_tag(&client.to_string()) };
            let (client, owner, path_and_query, headers) =
                (state.proxy.clone(), owner.to_string(), path_and_query.to_string(), headers.clone());
            return state.io.run(async move { proxy::forward(&client, &owner, &path_and_query, &headers, viewer).await }).await;
        }
    }
    let immutable = match token {
        Some(_) => PRIVATE_IMMUTABLE,
        None => state.public_immutable.clone(),
    };
    match request {
        HlsPath::Master { .. } | HlsPath::MediaPlaylist { .. } => {
            let (text, cache) = match live {
                Some(live) => {
                    live.saw_viewer(client, user_agent, Instant::now(), state.max_viewers_per_address);
                    let mut playlists = live.playlists();
                    let mut blocked = false;
                    if let HlsPath::MediaPlaylist { rendition, kind: PlaylistKind::Index, .. } = &request {
                        match blocking_reload(&live, playlists, rendition, query.msn, query.part).await {
                            Ok((held, was_blocking)) => (playlists, blocked) = (held, was_blocking),
                            Err(code) => return status(code),
                        }
                    }
                    let delta = matches!(query.skip.as_deref(), Some("YES" | "v2"));
                    let text = match &request {
                        HlsPath::MediaPlaylist { rendition, kind, .. } => match playlists.renditions.get(rendition) {
                            Some(p) if *kind == PlaylistKind::Index && delta && !p.delta.is_empty() => Bytes::from(p.delta.clone()),
                            Some(p) if *kind == PlaylistKind::Index => Bytes::from(p.window.clone()),
                            Some(p) => p.recording.clone(),
                            None => return status(StatusCode::NOT_FOUND),
                        },
                        _ => Bytes::from(playlists.master.clone()),
                    };
                    if text.is_empty() {
                        // Live, but nothing is made yet.
                        return status(StatusCode::NOT_FOUND);
                    }
                    (text, live_playlist_cache(token.is_some(), blocked))
                }
                None => {
                    let key = match &request {
                        // Once a video has ended, its full playlist serves both names.
                        HlsPath::MediaPlaylist { rendition, .. } => Storage::key(&[&video.id, rendition, PlaylistKind::Index.file_name()]),
                        _ => Storage::key(&[&video.id, "master.m3u8"]),
                    };
                    let finished = video.status == VideoStatus::Ready;
                    match stored(state, &key, finished, false).await {
                        Ok(object) => (object.bytes.clone(), immutable),
                        Err(e) => return storage_error(e),
                    }
                }
            };
            // Public playlists go out as the shared bytes they are kept in.
            let body = match &token {
                Some(token) => Bytes::from(with_token(&String::from_utf8_lossy(&text), token)),
                None => text,
            };
            ([(header::CONTENT_TYPE, HeaderValue::from_static(PLAYLIST_TYPE)), (header::CACHE_CONTROL, cache)], body).into_response()
        }
        HlsPath::Segment { rendition, file, kind, .. } => {
            if let Some(live) = live {
                match live_media(&state.io, &live, &video.id, &rendition, &file).await {
                    Some(Ok(bytes)) => {
                        return (
                            [(header::CONTENT_TYPE, HeaderValue::from_static(kind.content_type())), (header::CACHE_CONTROL, immutable)],
                            bytes,
                        )
                            .into_response();
                    }
                    Some(Err(e)) => return storage_error(e),
                    None if hls_path::part_of(&file).is_some() => {
                        let mut response = status(StatusCode::NOT_FOUND);
                        set(&mut response, header::CACHE_CONTROL, MISSING_PART_MAX_AGE);
                        return response;
                    }
                    // Whole segments and init segments are in storage.
                    None => {}
                }
            }
            // A stored segment never changes, live or not: from memory, read once for everyone.
            let key = Storage::key(&[&video.id, &rendition, &file]);
            match stored(state, &key, true, true).await {
                Ok(object) => serve_bytes(&object, kind.content_type(), immutable, headers),
                Err(e) => storage_error(e),
            }
        }
        HlsPath::Thumbnail { .. } => {
            let key = Storage::key(&[&video.id, "thumbnail.jpg"]);
            let cache = HeaderValue::from_static(if token.is_some() { "private, max-age=30" } else { "public, max-age=30" });
            serve_object(&state.io, &key, "image/jpeg", cache, headers).await
        }
    }
}

/// Holds a blocking playlist reload until the rendition lists segment `msn` (and part `part`).
/// Returns the playlists to answer from and whether the request was a blocking one, or the status
/// to answer with: 400 for a part without a segment or a segment more than two ahead of the live
/// edge (RFC 8216bis 6.2.5.2), 503 when it did not come within three target durations.
async fn blocking_reload(
    live: &LiveVideo,
    playlists: Arc<LivePlaylists>,
    rendition: &str,
    msn: Option<u64>,
    part: Option<u32>,
) -> Result<(Arc<LivePlaylists>, bool), StatusCode> {
    let Some(msn) = msn else {
        return if part.is_some() { Err(StatusCode::BAD_REQUEST) } else { Ok((playlists, false)) };
    };
    let Some(current) = playlists.renditions.get(rendition) else { return Err(StatusCode::NOT_FOUND) };
    if msn > current.next_msn + 2 {
        return Err(StatusCode::BAD_REQUEST);
    }
    if current.has(msn, part) || playlists.ended {
        return Ok((playlists, true));
    }
    let limit = blocking::limit(&playlists);
    match blocking::until(live, limit, |p| p.renditions.get(rendition).is_some_and(|r| r.has(msn, part))).await {
        Some(held) => Ok((held, true)),
        None => {
            let now = live.playlists();
            if now.ended {
                Ok((now, true))
            } else {
                Err(StatusCode::SERVICE_UNAVAILABLE)
            }
        }
    }
}

/// An init segment or part of a live video: from memory while its segment is open, from the
/// stored segment's bytes once it is complete. A part that is not made yet but is the next one
/// (what EXT-X-PRELOAD-HINT names) is waited for, like a blocking reload.
async fn live_media(io: &PooledIo, live: &LiveVideo, video_id: &str, rendition: &str, file: &str) -> Option<Result<Bytes, StorageError>> {
    enum Held {
        InMemory(Bytes),
        InSegment(PartRange),
    }
    let found = |live: &LiveVideo| {
        live.media(rendition, file).map(Held::InMemory).or_else(|| live.part_range(rendition, file).map(Held::InSegment))
    };
    let found = match found(live) {
        Some(found) => found,
        None => {
            let (msn, part) = hls_path::part_of(file)?;
            let playlists = live.playlists();
            let current = playlists.renditions.get(rendition)?;
            // Parts not yet made are worth waiting for up to two segments ahead, as for a blocking
            // reload (RFC 8216bis 6.2.5.2): the next part (EXT-X-PRELOAD-HINT), or a part of a
            // rendition whose encoder runs behind the others, asked for by a player switching to
            // it. Anything else is gone or far off.
            if current.has(msn, Some(part)) || msn > current.next_msn + 2 {
                return None;
            }
            blocking::until(live, blocking::limit(&playlists), |_| found(live).is_some()).await?;
            found(live)?
        }
    };
    match found {
        Held::InMemory(bytes) => Some(Ok(bytes)),
        Held::InSegment(stored) => {
            let key = Storage::key(&[video_id, rendition, &stored.segment]);
            Some(io.get(&key, Some(stored.bytes)).await.map(|object| Bytes::clone(&object.bytes)))
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
        Some(token) if state.playback.verify(&video.id, video.playback_generation, token, now) => Ok(Some(token.to_string())),
        // A private video is not admitted to exist without a valid token.
        _ if video.visibility == Visibility::Private => Err(StatusCode::NOT_FOUND),
        _ => Err(StatusCode::FORBIDDEN),
    }
}

/// The playlist with `?token=…` on every URI, so a player that follows it stays authorised: URI
/// lines, and the `URI="…"` attribute of tags (EXT-X-MAP, EXT-X-PART, EXT-X-PRELOAD-HINT,
/// EXT-X-RENDITION-REPORT).
pub fn with_token(playlist: &str, token: &str) -> String {
    let signed = |uri: &str| format!("{uri}{}token={token}", if uri.contains('?') { '&' } else { '?' });
    let mut out = String::with_capacity(playlist.len() + 64);
    for line in playlist.lines() {
        if !line.is_empty() && !line.starts_with('#') {
            out.push_str(&signed(line));
        } else if let Some((before, rest)) = line.split_once("URI=\"") {
            match rest.split_once('"') {
                Some((uri, after)) => {
                    out.push_str(before);
                    out.push_str("URI=\"");
                    out.push_str(&signed(uri));
                    out.push('"');
                    out.push_str(after);
                }
                None => out.push_str(line),
            }
        } else {
            out.push_str(line);
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

/// A stored object whole, with its ETag. When `finished` (it can no longer change: a segment, a
/// ready video's playlist) from memory, loaded once for all who ask at the same time; otherwise
/// read from storage each time. With `sendable` (a segment: sent as stored, never rewritten), also
/// with its file open when storage is local and it is large enough to be worth sending with
/// `sendfile`.
async fn stored(state: &OriginState, key: &object_path::Path, finished: bool, sendable: bool) -> Result<Arc<CachedObject>, StorageError> {
    let load = || async {
        let object = state.io.get(key, None).await?;
        let len = object.bytes.len();
        let file = match state.io.storage.local_path(key) {
            Some(path) if finished && sendable && len >= MIN_FILE_BODY_BYTES => file_body::open_matching(path, len).await,
            _ => None,
        };
        Ok::<_, StorageError>(CachedObject::new(object.bytes, object.info.e_tag, file))
    };
    if !finished {
        return load().await.map(Arc::new);
    }
    state.objects.get_or_load(key.as_ref(), load).await
}

/// What a conditional or ranged request asks of an object.
enum Asked {
    /// Send this status and (for 206) this range of the object.
    Bytes(StatusCode, Option<std::ops::Range<u64>>),
    /// The whole answer, with no body of the object (304, 416).
    Answered(Response),
}

/// What a conditional or ranged request asks of an object of `size` bytes with `etag` (quoted).
fn conditional(headers: &HeaderMap, size: u64, etag: Option<&HeaderValue>, cache: &HeaderValue) -> Asked {
    if let (Some(etag), Some(if_none_match)) = (etag, headers.get(header::IF_NONE_MATCH)) {
        let matches = |candidate: &[u8]| candidate.trim_ascii() == etag.as_bytes() || candidate.trim_ascii() == b"*";
        if if_none_match.as_bytes().split(|b| *b == b',').any(matches) {
            let mut response = StatusCode::NOT_MODIFIED.into_response();
            response.headers_mut().insert(header::ETAG, etag.clone());
            response.headers_mut().insert(header::CACHE_CONTROL, cache.clone());
            return Asked::Answered(response);
        }
    }
    let range_header = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    match range::parse(range_header, size) {
        RangeRequest::Whole => Asked::Bytes(StatusCode::OK, None),
        RangeRequest::Part(range) => Asked::Bytes(StatusCode::PARTIAL_CONTENT, Some(range)),
        RangeRequest::Unsatisfiable => {
            let mut response = status(StatusCode::RANGE_NOT_SATISFIABLE);
            set(&mut response, header::CONTENT_RANGE, &format!("bytes */{size}"));
            Asked::Answered(response)
        }
    }
}

/// An ETag as the `ETag` header carries it: quoted, whether storage quoted it or not.
pub(crate) fn quoted(e_tag: Option<&str>) -> Option<HeaderValue> {
    e_tag.and_then(|tag| HeaderValue::from_str(&format!("\"{}\"", tag.trim_matches('"'))).ok())
}

fn media_response(
    code: StatusCode,
    body: Bytes,
    size: u64,
    range: Option<std::ops::Range<u64>>,
    etag: Option<&HeaderValue>,
    content_type: &'static str,
    cache: HeaderValue,
) -> Response {
    let mut response = (code, Body::from(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, cache);
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Some(etag) = etag {
        headers.insert(header::ETAG, etag.clone());
    }
    if let Some(range) = range {
        set(&mut response, header::CONTENT_RANGE, &format!("bytes {}-{}/{size}", range.start, range.end - 1));
    }
    response
}

/// An object already in memory, with ETag and Range support; its body also named as a range of
/// its file when it has one open ([`FileBody`]).
fn serve_bytes(object: &CachedObject, content_type: &'static str, cache: HeaderValue, headers: &HeaderMap) -> Response {
    let size = object.bytes.len() as u64;
    match conditional(headers, size, object.etag.as_ref(), &cache) {
        Asked::Bytes(code, range) => {
            let sent = range.clone().unwrap_or(0..size);
            let body = object.bytes.slice(sent.start as usize..sent.end as usize);
            let mut response = media_response(code, body, size, range, object.etag.as_ref(), content_type, cache);
            if let Some(file) = &object.file {
                FileBody::attach(&mut response, file.clone(), sent);
            }
            response
        }
        Asked::Answered(response) => response,
    }
}

/// An object read from storage as asked (only the range, when one is asked).
async fn serve_object(
    io: &PooledIo,
    key: &object_path::Path,
    content_type: &'static str,
    cache: HeaderValue,
    headers: &HeaderMap,
) -> Response {
    let info = match io.head(key).await {
        Ok(info) => info,
        Err(e) => return storage_error(e),
    };
    let etag = quoted(info.e_tag.as_deref());
    let (code, range) = match conditional(headers, info.size, etag.as_ref(), &cache) {
        Asked::Bytes(code, range) => (code, range),
        Asked::Answered(response) => return response,
    };
    match io.get(key, range.clone()).await {
        Ok(object) => media_response(code, object.bytes, info.size, range, etag.as_ref(), content_type, cache),
        Err(e) => storage_error(e),
    }
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
        let ll = "#EXT-X-MAP:URI=\"init-00000000.mp4\"\n#EXT-X-PART:DURATION=0.500,URI=\"00000003-p0.m4s\",INDEPENDENT=YES\n\
                  #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"00000003-p1.m4s\"\n#EXT-X-RENDITION-REPORT:URI=\"../mid/index.m3u8\",LAST-MSN=3\n";
        assert_eq!(
            with_token(ll, "t"),
            "#EXT-X-MAP:URI=\"init-00000000.mp4?token=t\"\n#EXT-X-PART:DURATION=0.500,URI=\"00000003-p0.m4s?token=t\",INDEPENDENT=YES\n\
             #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"00000003-p1.m4s?token=t\"\n#EXT-X-RENDITION-REPORT:URI=\"../mid/index.m3u8?token=t\",LAST-MSN=3\n"
        );
    }
}
