//! Chat moderation by the channel's owner (delete a message, ban and unban users) and the chat of
//! a recording for replay. The socket itself is `crate::chat`.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use ferrocast_core::channel_events::ChannelEvent;
use ferrocast_core::db::channels::Channel;
use ferrocast_core::db::{chat, users};
use ferrocast_core::ids::is_valid_id;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::channels::{owned_channel, Slug};
use super::videos::visible_video;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{AuthUser, MaybeUser, Path, Query};
use crate::state::AppState;

/// Most messages one page of a recording's chat returns.
const MAX_PAGE: u32 = 500;

#[utoipa::path(delete, path = "/api/channels/{slug}/chat/messages/{id}", tag = "chat", params(("slug" = String, Path), ("id" = String, Path)),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 204, description = "Deleted; every open chat is told"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_message(
    State(state): State<AppState>,
    user: AuthUser,
    Path((slug, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let channel = owned_channel(&state, &slug.to_lowercase(), &user).await?;
    if !is_valid_id(&id) || !chat::delete(&state.db, &channel.id, &id).await? {
        return Err(ApiError::NotFound);
    }
    state.live_events.events().publish(&channel.id, ChannelEvent::ChatDeleted { id }).await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct ChatBanResponse {
    pub username: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct ChatBanList {
    pub items: Vec<ChatBanResponse>,
}

#[utoipa::path(get, path = "/api/channels/{slug}/chat/bans", tag = "chat", params(("slug" = String, Path)), security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = ChatBanList), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_bans(State(state): State<AppState>, user: AuthUser, Slug(slug): Slug) -> Result<axum::Json<ChatBanList>, ApiError> {
    let channel = owned_channel(&state, &slug, &user).await?;
    let items = chat::bans(&state.db, &channel.id).await?;
    Ok(axum::Json(ChatBanList {
        items: items.into_iter().map(|b| ChatBanResponse { username: b.username, created_at: b.created_at }).collect(),
    }))
}

/// The signed-in owner's channel and the account a ban is about (404 for either missing).
async fn channel_and_user(state: &AppState, owner: &AuthUser, slug: &str, username: &str) -> Result<(Channel, users::User), ApiError> {
    let channel = owned_channel(state, &slug.to_lowercase(), owner).await?;
    let user = users::find_by_username(&state.db, &username.to_lowercase()).await?.ok_or(ApiError::NotFound)?;
    Ok((channel, user))
}

#[utoipa::path(put, path = "/api/channels/{slug}/chat/bans/{username}", tag = "chat", params(("slug" = String, Path), ("username" = String, Path)),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 204, description = "Banned (again: no error); their next message is refused"), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody, description = "The owner cannot ban themselves")))]
pub async fn ban(
    State(state): State<AppState>,
    user: AuthUser,
    Path((slug, username)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let (channel, banned) = channel_and_user(&state, &user, &slug, &username).await?;
    if banned.id == channel.owner_id {
        return Err(ApiError::Validation { field: "username".into(), message: "you cannot ban yourself from your own chat".into() });
    }
    chat::ban(&state.db, &channel.id, &banned.id).await?;
    tracing::info!(channel_id = %channel.id, user_id = %banned.id, "banned from the channel's chat");
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/channels/{slug}/chat/bans/{username}", tag = "chat", params(("slug" = String, Path), ("username" = String, Path)),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 204, description = "The ban is lifted"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn unban(
    State(state): State<AppState>,
    user: AuthUser,
    Path((slug, username)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let (channel, banned) = channel_and_user(&state, &user, &slug, &username).await?;
    if !chat::unban(&state.db, &channel.id, &banned.id).await? {
        return Err(ApiError::NotFound);
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReplayPage {
    /// The last message id of the previous page.
    pub after: Option<String>,
    /// 1–500, default 500.
    pub limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct ReplayMessage {
    pub id: String,
    pub username: String,
    pub text: String,
    pub at: DateTime<Utc>,
    /// Seconds from the start of the video: where in the recording to show it.
    pub offset_secs: f64,
}

#[derive(Serialize, ToSchema)]
pub struct ReplayList {
    pub items: Vec<ReplayMessage>,
    /// Pass as `after` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/videos/{id}/chat", tag = "chat", params(("id" = String, Path), ReplayPage),
    responses((status = 200, body = ReplayList, description = "The chat sent while the video was live, oldest first"), (status = 404, body = ErrorBody)))]
pub async fn replay(
    State(state): State<AppState>,
    viewer: MaybeUser,
    Path(id): Path<String>,
    Query(page): Query<ReplayPage>,
) -> Result<axum::Json<ReplayList>, ApiError> {
    let video = visible_video(&state, &id, viewer.0.as_deref()).await?;
    let limit = page.limit.unwrap_or(MAX_PAGE);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::Validation { field: "limit".into(), message: format!("must be 1–{MAX_PAGE}") });
    }
    let mut messages = chat::of_video(&state.db, &video.id, page.after.as_deref(), limit + 1).await?;
    let more = messages.len() > limit as usize;
    messages.truncate(limit as usize);
    let next_cursor = messages.last().filter(|_| more).map(|m| m.id.clone());
    let items = messages
        .into_iter()
        .map(|m| ReplayMessage {
            offset_secs: ((m.created_at - video.created_at).num_milliseconds().max(0) as f64) / 1000.0,
            id: m.id,
            username: m.username,
            text: m.text,
            at: m.created_at,
        })
        .collect();
    Ok(axum::Json(ReplayList { items, next_cursor }))
}
