//! Videos: the public listing, one video, and the owner's edits. Private videos exist only for
//! their owner: to anyone else they are 404, exactly like an id that was never issued.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use ferrocast_core::db::jobs;
use ferrocast_core::db::search::{self, SearchQuery};
use ferrocast_core::db::videos::{self, Video, VideoKind, VideoStatus, Visibility};
use ferrocast_core::ids::is_valid_id;
use ferrocast_core::live::StreamHealth;
use ferrocast_core::storage::Storage;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ErrorBody};
use crate::extract::{AuthUser, Json, MaybeUser, Path, Query};
use crate::state::AppState;
use crate::validate;

pub const DEFAULT_PAGE_SIZE: u32 = 20;
pub const MAX_PAGE_SIZE: u32 = 100;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// 1–100, default 20.
    pub limit: Option<u32>,
}

impl Page {
    pub fn validate(&self) -> Result<(u32, Option<&str>), ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_PAGE_SIZE);
        if !(1..=MAX_PAGE_SIZE).contains(&limit) {
            return Err(ApiError::validation("limit", format!("must be between 1 and {MAX_PAGE_SIZE}")));
        }
        let cursor = self.cursor.as_deref().filter(|c| !c.is_empty());
        if cursor.is_some_and(|c| !is_valid_id(c)) {
            return Err(ApiError::validation("cursor", "is not a cursor this server issued"));
        }
        Ok((limit, cursor))
    }
}

/// Search parameters of `GET /api/videos`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Search {
    /// Search the title, description and channel (title and slug) of public videos that are live or
    /// ready: best match first, tolerant of a typo or two. 1–100 characters after trimming. Results
    /// come as one page of up to `limit` (`next_cursor` is null); `cursor` cannot be combined with `q`.
    #[param(min_length = 1, max_length = 100)]
    pub q: Option<String>,
    /// `true`: only videos live right now (not with `q`).
    pub live: Option<bool>,
    /// Only this channel's videos, by slug (not with `q`).
    pub channel: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct VideoChannel {
    pub id: String,
    pub slug: String,
    pub title: String,
}

#[derive(Serialize, ToSchema)]
pub struct VideoResponse {
    pub id: String,
    pub channel: VideoChannel,
    pub kind: VideoKind,
    pub status: VideoStatus,
    pub title: String,
    pub description: String,
    pub visibility: Visibility,
    /// Length in seconds, once known.
    pub duration_secs: Option<f64>,
    /// Why processing failed, in words for the owner; present only for the owner, when `status` is `failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Whether the signed-in user owns this video.
    pub owned: bool,
    /// The HLS master playlist, while live or once ready. For unlisted and private videos it carries
    /// an expiring token (see `playback_token_ttl_secs`), so fetch the video again for a fresh one.
    pub playback_url: Option<String>,
    pub thumbnail_url: Option<String>,
    /// Transcoding progress in percent while `status` is `processing`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<f64>,
    /// Distinct clients that fetched a playlist recently; live videos only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub viewers: Option<u64>,
    /// The stream's input and encoder health; live videos, owner only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<StreamHealthResponse>,
    pub created_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
}

/// What the streamer sees about their live input.
#[derive(Serialize, ToSchema)]
pub struct StreamHealthResponse {
    #[serde(flatten)]
    pub stream: StreamHealth,
    pub uptime_secs: u64,
}

impl VideoResponse {
    pub fn new(video: Video, viewer: Option<&str>, state: &AppState) -> Self {
        let owned = viewer == Some(video.owner_id.as_str());
        let live = (video.status == VideoStatus::Live).then(|| state.live.get(&video.id)).flatten();
        let playable = matches!(video.status, VideoStatus::Live | VideoStatus::Ready);
        // Public media needs no token; anyone who may see an unlisted or private video here may play it.
        let query = match video.visibility {
            Visibility::Public => String::new(),
            _ => {
                let expires = chrono::Utc::now().timestamp() + state.settings.playback_token_ttl.as_secs() as i64;
                format!("?token={}", state.playback.issue(&video.id, video.playback_generation, expires))
            }
        };
        let base = format!("{}/hls/{}", state.settings.public_url, video.id);
        // Ingested on another node: what it last reported into the row.
        let remote = (video.status == VideoStatus::Live && live.is_none()).then(|| video.live_stats()).flatten();
        let health = match (&live, &remote) {
            (Some(live), _) => Some(StreamHealthResponse { stream: live.health(), uptime_secs: live.started.elapsed().as_secs() }),
            (None, Some(stats)) => Some(StreamHealthResponse { stream: stats.health.clone(), uptime_secs: stats.uptime_secs }),
            (None, None) => None,
        }
        .filter(|_| owned);
        Self {
            owned,
            progress: None,
            playback_url: playable.then(|| format!("{base}/master.m3u8{query}")),
            thumbnail_url: playable.then(|| format!("{base}/thumbnail.jpg{query}")),
            viewers: live
                .as_ref()
                .map(|l| l.viewer_count(state.settings.viewer_window, std::time::Instant::now()) as u64)
                .or(remote.as_ref().map(|stats| stats.viewers)),
            health,
            channel: VideoChannel { id: video.channel_id, slug: video.channel_slug, title: video.channel_title },
            id: video.id,
            kind: video.kind,
            status: video.status,
            title: video.title,
            description: video.description,
            visibility: video.visibility,
            duration_secs: video.duration_ms.map(|ms| ms as f64 / 1000.0),
            error: video.error.filter(|_| owned && video.status == VideoStatus::Failed),
            created_at: video.created_at,
            ended_at: video.ended_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct VideoList {
    pub items: Vec<VideoResponse>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

impl VideoList {
    /// A page from up to `limit + 1` fetched rows: the extra row only tells that another page exists.
    pub fn new(mut videos: Vec<Video>, limit: u32, viewer: Option<&str>, state: &AppState) -> Self {
        let more = videos.len() > limit as usize;
        videos.truncate(limit as usize);
        let next_cursor = videos.last().filter(|_| more).map(|v| v.id.clone());
        Self { items: videos.into_iter().map(|v| VideoResponse::new(v, viewer, state)).collect(), next_cursor }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct UpdateVideoRequest {
    pub title: Option<String>,
    pub description: Option<String>,
    pub visibility: Option<Visibility>,
}

/// The video if `viewer` may see it: public and unlisted for anyone with the id, private for the owner.
pub(crate) async fn visible_video(state: &AppState, id: &str, viewer: Option<&str>) -> Result<Video, ApiError> {
    if !is_valid_id(id) {
        return Err(ApiError::NotFound);
    }
    let video = videos::find(&state.db, id).await?.ok_or(ApiError::NotFound)?;
    if video.visibility == Visibility::Private && viewer != Some(video.owner_id.as_str()) {
        return Err(ApiError::NotFound);
    }
    Ok(video)
}

async fn owned_video(state: &AppState, id: &str, user: &AuthUser) -> Result<Video, ApiError> {
    let video = visible_video(state, id, Some(&user.id)).await?;
    if video.owner_id != user.id {
        return Err(ApiError::Forbidden);
    }
    Ok(video)
}

#[utoipa::path(get, path = "/api/videos", tag = "videos", params(Page, Search),
    responses((status = 200, body = VideoList, description = "Public videos that are live or ready: newest first, or with `q` the best matches first"),
        (status = 422, body = ErrorBody, description = "A bad `limit` or `cursor`; `q` empty, too long, or with a `cursor`")))]
pub async fn list(
    State(state): State<AppState>,
    viewer: MaybeUser,
    Query(page): Query<Page>,
    Query(params): Query<Search>,
) -> Result<Json<VideoList>, ApiError> {
    let (limit, before) = page.validate()?;
    let items = match params.q.as_deref() {
        Some(q) => {
            let query = SearchQuery::parse(q).map_err(|e| ApiError::validation("q", e.to_string()))?;
            if before.is_some() {
                return Err(ApiError::validation("cursor", "search results come in one page; ask for up to 100 with limit"));
            }
            if params.live.is_some() || params.channel.is_some() {
                return Err(ApiError::validation("q", "search cannot be combined with live or channel"));
            }
            search::search_public(&state.db, &query, limit).await?
        }
        None => {
            let channel = params.channel.as_deref().map(str::to_lowercase);
            let filter = videos::PublicFilter { live_only: params.live.unwrap_or(false), channel_slug: channel.as_deref() };
            videos::list_public_where(&state.db, filter, limit + 1, before).await?
        }
    };
    Ok(Json(VideoList::new(items, limit, viewer.0.as_deref(), &state)))
}

#[utoipa::path(get, path = "/api/videos/{id}", tag = "videos", params(("id" = String, Path)),
    responses((status = 200, body = VideoResponse), (status = 404, body = ErrorBody)))]
pub async fn get(State(state): State<AppState>, viewer: MaybeUser, Path(id): Path<String>) -> Result<Json<VideoResponse>, ApiError> {
    let video = visible_video(&state, &id, viewer.0.as_deref()).await?;
    let processing = video.status == VideoStatus::Processing;
    let mut response = VideoResponse::new(video, viewer.0.as_deref(), &state);
    if processing {
        response.progress = Some(jobs::for_video(&state.db, &response.id).await?.map_or(0.0, |job| job.progress));
    }
    Ok(Json(response))
}

#[utoipa::path(patch, path = "/api/videos/{id}", tag = "videos", params(("id" = String, Path)), request_body = UpdateVideoRequest,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = VideoResponse), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    Json(request): Json<UpdateVideoRequest>,
) -> Result<Json<VideoResponse>, ApiError> {
    let video = owned_video(&state, &id, &user).await?;
    let title = request.title.as_deref().map(validate::title).transpose()?;
    let description = request.description.as_deref().map(validate::description).transpose()?;
    let updated = videos::update(&state.db, &video.id, title.as_deref(), description.as_deref(), request.visibility)
        .await?
        .ok_or(ApiError::NotFound)?;
    // Open channel pages show a live video's title and whether it is public; origins drop the row
    // they serve by (a new visibility takes effect at once).
    state.live_events.events().changed(&updated.channel_id).await;
    Ok(Json(VideoResponse::new(updated, Some(&user.id), &state)))
}

#[utoipa::path(delete, path = "/api/videos/{id}", tag = "videos", params(("id" = String, Path)), security(("bearer" = []), ("cookie" = [])),
    responses((status = 204, description = "Deleted with its files"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The video is live; stop the stream first")))]
pub async fn delete(State(state): State<AppState>, user: AuthUser, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let video = owned_video(&state, &id, &user).await?;
    if video.status == VideoStatus::Live {
        return Err(ApiError::InvalidState("the video is live; stop the stream before deleting it".into()));
    }
    videos::delete(&state.db, &video.id).await?;
    state.live_events.events().changed(&video.channel_id).await;
    // The row is gone first, so nothing lists the files while they are being removed.
    remove_video_files(&state, &video.id).await;
    tracing::info!(video_id = %video.id, "video deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Removes everything stored of a video whose row is gone (logged, not failed: the row's deletion
/// is what the user asked for and has happened).
pub(crate) async fn remove_video_files(state: &AppState, video_id: &str) {
    if let Err(e) = state.storage.delete_prefix(&Storage::key(&[video_id])).await {
        tracing::error!(%video_id, error = %e, "video deleted but its files were not all removed");
    }
}
