//! Channels and their stream keys. A key is returned only in the response that created it
//! (channel creation, rotation) and never logged.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use ferrocast_core::db::channels::{self, Channel, ChannelChanges};
use ferrocast_core::db::uploads;
use ferrocast_core::db::videos::{self, Visibility};
use ferrocast_core::stream_key;
use ferrocast_core::upload_parts;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::videos::{remove_video_files, Page, VideoList};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{AuthUser, ClientAddr, Json, MaybeUser, Path, Query};
use crate::state::AppState;
use crate::validate;

#[derive(Serialize, ToSchema)]
pub struct ChannelResponse {
    pub id: String,
    pub slug: String,
    pub title: String,
    pub description: String,
    /// The owner's username.
    pub owner: String,
    /// Whether the channel is streaming right now. For anyone but the owner, only a public live
    /// video counts: an unlisted or private stream is not announced.
    pub live: bool,
    /// The live video's id while live (under the same rule as `live`).
    pub live_video_id: Option<String>,
    /// Distinct clients watching the live video (those that fetched a playlist recently).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub viewers: Option<u64>,
    /// For the owner only: the visibility new live videos start with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_visibility: Option<Visibility>,
    /// For the owner only: the title of the next broadcast (empty: the channel's title).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_title: Option<String>,
    /// For the owner only: the description of the next broadcast (empty: the channel's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_description: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl ChannelResponse {
    /// The channel as `viewer` (a user id, or `None` when signed out) may see it.
    pub fn new(c: Channel, viewer: Option<&str>, state: &AppState) -> Self {
        let owned = viewer == Some(c.owner_id.as_str());
        let live_video_id = if owned {
            c.live_video_id
        } else {
            // Viewers are sent to a live video once it can play: until the first segments exist its
            // master playlist would answer 404.
            c.public_live_video_id.filter(|id| state.live.get(id).is_none_or(|live| !live.playlists().master.is_empty()))
        };
        let viewers = live_video_id
            .as_deref()
            .and_then(|id| state.live.get(id))
            .map(|live| live.viewer_count(state.settings.viewer_window, std::time::Instant::now()) as u64);
        Self {
            viewers,
            default_visibility: owned.then_some(c.default_visibility),
            stream_title: owned.then_some(c.stream_title),
            stream_description: owned.then_some(c.stream_description),
            id: c.id,
            slug: c.slug,
            title: c.title,
            description: c.description,
            owner: c.owner_username,
            live: live_video_id.is_some(),
            live_video_id,
            created_at: c.created_at,
        }
    }
}

/// The `{slug}` path segment, lowercased: slugs are stored lowercase, so `/api/channels/My-Show`
/// names the same channel as `/api/channels/my-show`.
pub struct Slug(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Slug {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(slug) = Path::<String>::from_request_parts(parts, state).await?;
        Ok(Slug(slug.to_lowercase()))
    }
}

/// A channel together with its stream key, returned once when the channel is created.
#[derive(Serialize, ToSchema)]
pub struct CreatedChannelResponse {
    #[serde(flatten)]
    pub channel: ChannelResponse,
    /// Paste into OBS as the stream key; it is not shown again.
    pub stream_key: String,
}

#[derive(Serialize, ToSchema)]
pub struct StreamKeyResponse {
    /// The new key; the previous one stopped working with this response.
    pub stream_key: String,
}

#[derive(Serialize, ToSchema)]
pub struct ChannelList {
    pub items: Vec<ChannelResponse>,
}

#[derive(Deserialize, ToSchema)]
pub struct CreateChannelRequest {
    /// 3–48 of `[a-z0-9-]`, unique; the channel's address (`/c/{slug}`).
    pub slug: String,
    pub title: String,
    pub description: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct UpdateChannelRequest {
    pub title: Option<String>,
    pub description: Option<String>,
    /// The visibility new live videos of this channel start with.
    pub default_visibility: Option<Visibility>,
    /// What the next broadcast is called ("" for the channel's title). While live, the live video
    /// is renamed too.
    pub stream_title: Option<String>,
    /// What the next broadcast is about ("" for the channel's description); applied to the live
    /// video too, as the title.
    pub stream_description: Option<String>,
}

/// Longer than a disconnected live recording takes to store its last segment and playlists.
const LIVE_WIND_DOWN: std::time::Duration = std::time::Duration::from_secs(10);

/// The channel named by `slug` if `user` owns it: 404 when it does not exist, 403 when it is someone else's.
pub(crate) async fn owned_channel(state: &AppState, slug: &str, user: &AuthUser) -> Result<Channel, ApiError> {
    let channel = channels::find_by_slug(&state.db, slug).await?.ok_or(ApiError::NotFound)?;
    if channel.owner_id != user.id {
        return Err(ApiError::Forbidden);
    }
    Ok(channel)
}

#[utoipa::path(post, path = "/api/channels", tag = "channels", request_body = CreateChannelRequest, security(("bearer" = []), ("cookie" = [])),
    responses((status = 201, body = CreatedChannelResponse), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    Json(request): Json<CreateChannelRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let slug = validate::slug(&request.slug)?;
    let title = validate::title(&request.title)?;
    let description = validate::description(request.description.as_deref().unwrap_or(""))?;
    let key = stream_key::generate();
    let channel = channels::create(&state.db, &user.id, &slug, &title, &description, &key.hash).await?;
    channels::set_stream_key_sealed(&state.db, &channel.id, &state.stream_key_sealing.seal(&key.plain)).await?;
    tracing::info!(channel_id = %channel.id, slug = %channel.slug, "channel created");
    let channel = ChannelResponse::new(channel, Some(&user.id), &state);
    Ok((StatusCode::CREATED, Json(CreatedChannelResponse { channel, stream_key: key.plain })))
}

#[utoipa::path(get, path = "/api/channels", tag = "channels", security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = ChannelList, description = "The signed-in user's channels"), (status = 401, body = ErrorBody)))]
pub async fn list_mine(State(state): State<AppState>, user: AuthUser) -> Result<Json<ChannelList>, ApiError> {
    let items = channels::list_by_owner(&state.db, &user.id).await?;
    Ok(Json(ChannelList { items: items.into_iter().map(|c| ChannelResponse::new(c, Some(&user.id), &state)).collect() }))
}

#[utoipa::path(get, path = "/api/channels/{slug}", tag = "channels", params(("slug" = String, Path)),
    responses((status = 200, body = ChannelResponse), (status = 404, body = ErrorBody)))]
pub async fn get(State(state): State<AppState>, viewer: MaybeUser, Slug(slug): Slug) -> Result<Json<ChannelResponse>, ApiError> {
    let channel = channels::find_by_slug(&state.db, &slug).await?.ok_or(ApiError::NotFound)?;
    Ok(Json(ChannelResponse::new(channel, viewer.0.as_deref(), &state)))
}

#[utoipa::path(patch, path = "/api/channels/{slug}", tag = "channels", params(("slug" = String, Path)), request_body = UpdateChannelRequest,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = ChannelResponse), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    user: AuthUser,
    Slug(slug): Slug,
    Json(request): Json<UpdateChannelRequest>,
) -> Result<Json<ChannelResponse>, ApiError> {
    let channel = owned_channel(&state, &slug, &user).await?;
    let title = request.title.as_deref().map(validate::title).transpose()?;
    let description = request.description.as_deref().map(validate::description).transpose()?;
    let stream_title =
        request.stream_title.as_deref().map(|t| if t.trim().is_empty() { Ok(String::new()) } else { validate::title(t) }).transpose()?;
    let stream_description = request.stream_description.as_deref().map(validate::description).transpose()?;
    let changes = ChannelChanges {
        title: title.as_deref(),
        description: description.as_deref(),
        default_visibility: request.default_visibility,
        stream_title: stream_title.as_deref(),
        stream_description: stream_description.as_deref(),
    };
    let updated = channels::update(&state.db, &channel.id, changes).await?.ok_or(ApiError::NotFound)?;
    // The broadcast going on now takes its new title and description at once.
    if let (Some(live_id), true) = (&updated.live_video_id, stream_title.is_some() || stream_description.is_some()) {
        let title = stream_title.is_some().then(|| updated.broadcast_title());
        let description = stream_description.is_some().then(|| updated.broadcast_description());
        videos::update(&state.db, live_id, title, description, None).await?;
    }
    state.live_events.events().changed(&channel.id).await;
    Ok(Json(ChannelResponse::new(updated, Some(&user.id), &state)))
}

#[utoipa::path(delete, path = "/api/channels/{slug}", tag = "channels", params(("slug" = String, Path)), security(("bearer" = []), ("cookie" = [])),
    responses((status = 204, description = "Deleted with its videos"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(State(state): State<AppState>, user: AuthUser, Slug(slug): Slug) -> Result<StatusCode, ApiError> {
    let channel = owned_channel(&state, &slug, &user).await?;
    remove_channel(&state, &channel).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a channel with its videos and uploads and their files, and cuts its publisher off (for
/// the channel's deletion and its owner's).
pub(crate) async fn remove_channel(state: &AppState, channel: &Channel) -> Result<(), ApiError> {
    let videos = videos::ids_of_channel(&state.db, &channel.id).await?;
    let uploads = uploads::ids_of_channel(&state.db, &channel.id).await?;
    // The rows go first (videos and uploads by cascade), so nothing lists the files being removed.
    channels::delete(&state.db, &channel.id).await?;
    state.live.disconnect_publisher(&channel.id);
    state.live_events.events().changed(&channel.id).await;
    for upload_id in &uploads {
        upload_parts::remove(&state.storage, &state.settings.uploads_dir, upload_id).await;
    }
    for (video_id, _) in &videos {
        remove_video_files(state, video_id).await;
    }
    // A live recording writes its last segments and playlists while it winds down after the
    // disconnect; sweep its files once more when it is surely done.
    let was_live: Vec<String> = videos.into_iter().filter(|(_, live)| *live).map(|(id, _)| id).collect();
    if !was_live.is_empty() {
        let (state, after) = (state.clone(), state.settings.reconnect_grace + LIVE_WIND_DOWN);
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            for video_id in &was_live {
                remove_video_files(&state, video_id).await;
            }
        });
    }
    tracing::info!(channel_id = %channel.id, "channel deleted with its videos' files");
    Ok(())
}

#[utoipa::path(post, path = "/api/channels/{slug}/stream-key", tag = "channels", params(("slug" = String, Path)),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = StreamKeyResponse), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn rotate_stream_key(
    State(state): State<AppState>,
    user: AuthUser,
    Slug(slug): Slug,
) -> Result<Json<StreamKeyResponse>, ApiError> {
    let channel = owned_channel(&state, &slug, &user).await?;
    let key = stream_key::generate();
    if !channels::replace_stream_key(&state.db, &channel.id, &key.hash, &state.stream_key_sealing.seal(&key.plain)).await? {
        return Err(ApiError::NotFound);
    }
    // The old key stops working now, for a publisher already connected with it too.
    let disconnected = state.live.disconnect_publisher(&channel.id);
    tracing::info!(channel_id = %channel.id, disconnected, "stream key rotated");
    Ok(Json(StreamKeyResponse { stream_key: key.plain }))
}

#[derive(Deserialize, ToSchema)]
pub struct RevealStreamKeyRequest {
    /// The account's password, asked again: a session left open is not enough to read the key.
    pub password: String,
}

#[utoipa::path(post, path = "/api/channels/{slug}/stream-key/reveal", tag = "channels", params(("slug" = String, Path)),
    request_body = RevealStreamKeyRequest, security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = StreamKeyResponse, description = "The current key, unchanged"),
        (status = 401, body = ErrorBody, description = "Wrong password"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "This key cannot be shown again: replace it"),
        (status = 429, body = ErrorBody, description = "Too many wrong passwords (the login limits)")))]
pub async fn reveal_stream_key(
    State(state): State<AppState>,
    user: AuthUser,
    ClientAddr(address): ClientAddr,
    Slug(slug): Slug,
    Json(request): Json<RevealStreamKeyRequest>,
) -> Result<Json<StreamKeyResponse>, ApiError> {
    let channel = owned_channel(&state, &slug, &user).await?;
    super::auth::confirm_password(&state, &user.id, address, request.password, "stream key reveal").await?;
    let sealed = channels::stream_key_sealed(&state.db, &channel.id).await?;
    let Some(stream_key) = sealed.and_then(|s| state.stream_key_sealing.open(&s)) else {
        return Err(ApiError::InvalidState(
            "this key cannot be shown again (it was made before keys could be revealed, or the server secret changed); replace it".into(),
        ));
    };
    tracing::info!(channel_id = %channel.id, "stream key revealed to its owner");
    Ok(Json(StreamKeyResponse { stream_key }))
}

#[utoipa::path(get, path = "/api/channels/{slug}/videos", tag = "channels", params(("slug" = String, Path), Page),
    responses((status = 200, body = VideoList, description = "Newest first; the owner also sees unlisted, private, processing and failed videos"),
        (status = 404, body = ErrorBody)))]
pub async fn videos(
    State(state): State<AppState>,
    viewer: MaybeUser,
    Slug(slug): Slug,
    Query(page): Query<Page>,
) -> Result<Json<VideoList>, ApiError> {
    let channel = channels::find_by_slug(&state.db, &slug).await?.ok_or(ApiError::NotFound)?;
    let is_owner = viewer.0.as_deref() == Some(channel.owner_id.as_str());
    let (limit, before) = page.validate()?;
    let items = videos::list_by_channel(&state.db, &channel.id, is_owner, limit + 1, before).await?;
    Ok(Json(VideoList::new(items, limit, viewer.0.as_deref(), &state)))
}
