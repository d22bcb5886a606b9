//! Simulcast targets of a channel: where its live stream is also pushed (the pushing itself is
//! the ingest node's, `ferrocast_ingest::restream`). The URL holds the other service's stream key,
//! so it is sealed at rest and only ever shown masked; the state is what the pushing node reports.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use ferrocast_core::config::RestreamConfig;
use ferrocast_core::db::restreams::{self, Restream, RestreamState};
use ferrocast_core::ids::is_valid_id;
use ferrocast_core::outbound;
use ferrocast_core::restream_url::RestreamUrl;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{AuthUser, Json, Path};
use crate::routes::channels::owned_channel;
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
pub struct CreateRestreamRequest {
    /// `rtmp://` or `rtmps://` URL ending in the stream key, e.g. `rtmp://a.rtmp.youtube.com/live2/KEY`.
    pub url: String,
    /// Pushed while the channel is live; default true.
    pub enabled: Option<bool>,
}

#[derive(Deserialize, ToSchema)]
pub struct UpdateRestreamRequest {
    pub enabled: Option<bool>,
    /// A new URL (for a new remote key); the old one is forgotten.
    pub url: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct RestreamResponse {
    pub id: String,
    /// The URL with its stream key masked (`rtmp://a.rtmp.youtube.com/live2/••••abcd`).
    pub url: String,
    pub enabled: bool,
    /// What the node pushing it last reported.
    pub state: RestreamState,
    /// The last failure (kept after a recovery, for the record).
    pub last_error: Option<String>,
    /// Sent to the target over the last few seconds, while live.
    pub bitrate_kbps: Option<i64>,
    pub state_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl RestreamResponse {
    /// The target as the owner sees it. A push reports at least every few seconds while live and at
    /// every retry; a state older than any of those is left over from a node that died mid-push,
    /// and shown as `idle`.
    fn new(r: Restream, settings: &RestreamConfig) -> Self {
        let longest_silence = chrono::Duration::seconds((2 * settings.max_retry_secs + settings.connect_timeout_secs + 10) as i64);
        let stale = r.state != RestreamState::Idle && r.state_at.is_none_or(|at| Utc::now() - at > longest_silence);
        RestreamResponse {
            id: r.id,
            url: r.url_hint,
            enabled: r.enabled,
            state: if stale { RestreamState::Idle } else { r.state },
            last_error: r.last_error,
            bitrate_kbps: r.bitrate_kbps,
            state_at: r.state_at,
            created_at: r.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct RestreamList {
    pub items: Vec<RestreamResponse>,
}

/// The URL checked as the pushing node will use it: well-formed, and on a public address unless
/// the operator allows private targets.
async fn checked_url(state: &AppState, url: &str) -> Result<RestreamUrl, ApiError> {
    let parsed = RestreamUrl::parse(url).map_err(|e| ApiError::validation("url", e.to_string()))?;
    outbound::resolve(&parsed.host, parsed.port, state.settings.restream.allow_private_targets)
        .await
        .map_err(|e| ApiError::validation("url", e.to_string()))?;
    Ok(parsed)
}

/// The target `id` of the channel `slug`, both `user`'s.
async fn owned_restream(state: &AppState, slug: &str, id: &str, user: &AuthUser) -> Result<Restream, ApiError> {
    let channel = owned_channel(state, slug, user).await?;
    if !is_valid_id(id) {
        return Err(ApiError::NotFound);
    }
    restreams::find(&state.db, id).await?.filter(|r| r.channel_id == channel.id).ok_or(ApiError::NotFound)
}

#[utoipa::path(post, path = "/api/channels/{slug}/restreams", tag = "restreams", params(("slug" = String, Path)),
    request_body = CreateRestreamRequest, security(("bearer" = []), ("cookie" = [])),
    responses((status = 201, body = RestreamResponse), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The channel has as many targets as allowed"), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    Path(slug): Path<String>,
    Json(request): Json<CreateRestreamRequest>,
) -> Result<(StatusCode, Json<RestreamResponse>), ApiError> {
    let channel = owned_channel(&state, &slug, &user).await?;
    let url = checked_url(&state, &request.url).await?;
    let max = state.settings.restream.max_targets_per_channel;
    if restreams::list_by_channel(&state.db, &channel.id).await?.len() >= max {
        return Err(ApiError::InvalidState(format!("this channel has {max} restream targets; delete one first")));
    }
    let sealed = state.restream_sealing.seal(request.url.trim());
    let restream = restreams::create(&state.db, &channel.id, &sealed, &url.masked(), request.enabled.unwrap_or(true)).await?;
    tracing::info!(restream_id = %restream.id, channel_id = %channel.id, target = %restream.url_hint, "restream target added");
    // The node pushing the live channel (any node) starts it at once.
    state.live_events.events().changed(&channel.id).await;
    Ok((StatusCode::CREATED, Json(RestreamResponse::new(restream, &state.settings.restream))))
}

#[utoipa::path(get, path = "/api/channels/{slug}/restreams", tag = "restreams", params(("slug" = String, Path)),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = RestreamList), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list(State(state): State<AppState>, user: AuthUser, Path(slug): Path<String>) -> Result<Json<RestreamList>, ApiError> {
    let channel = owned_channel(&state, &slug, &user).await?;
    let items = restreams::list_by_channel(&state.db, &channel.id).await?;
    Ok(Json(RestreamList { items: items.into_iter().map(|r| RestreamResponse::new(r, &state.settings.restream)).collect() }))
}

#[utoipa::path(patch, path = "/api/channels/{slug}/restreams/{id}", tag = "restreams", params(("slug" = String, Path), ("id" = String, Path)),
    request_body = UpdateRestreamRequest, security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = RestreamResponse, description = "Takes effect on a live stream at once"),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    user: AuthUser,
    Path((slug, id)): Path<(String, String)>,
    Json(request): Json<UpdateRestreamRequest>,
) -> Result<Json<RestreamResponse>, ApiError> {
    let restream = owned_restream(&state, &slug, &id, &user).await?;
    if let Some(url) = &request.url {
        let parsed = checked_url(&state, url).await?;
        // A new URL is a new target: the push of the old one stops, one to the new one starts.
        let replacement = restreams::create(
            &state.db,
            &restream.channel_id,
            &state.restream_sealing.seal(url.trim()),
            &parsed.masked(),
            request.enabled.unwrap_or(restream.enabled),
        )
        .await?;
        restreams::delete(&state.db, &restream.id).await?;
        state.live_events.events().changed(&restream.channel_id).await;
        return Ok(Json(RestreamResponse::new(replacement, &state.settings.restream)));
    }
    if let Some(enabled) = request.enabled {
        restreams::set_enabled(&state.db, &restream.id, enabled).await?;
        state.live_events.events().changed(&restream.channel_id).await;
    }
    let updated = restreams::find(&state.db, &restream.id).await?.ok_or(ApiError::NotFound)?;
    Ok(Json(RestreamResponse::new(updated, &state.settings.restream)))
}

#[utoipa::path(delete, path = "/api/channels/{slug}/restreams/{id}", tag = "restreams", params(("slug" = String, Path), ("id" = String, Path)),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 204, description = "Deleted; a live push stops at once"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    user: AuthUser,
    Path((slug, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let restream = owned_restream(&state, &slug, &id, &user).await?;
    restreams::delete(&state.db, &restream.id).await?;
    state.live_events.events().changed(&restream.channel_id).await;
    Ok(StatusCode::NO_CONTENT)
}
