//! Webhooks a user registers to hear about their streams and videos; the deliveries themselves are
//! `crate::webhook_delivery`'s job. The secret that signs deliveries is shown once, at creation.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use ferrocast_core::db::channels;
use ferrocast_core::db::webhooks::{self, Delivery, DeliveryStatus, Webhook, EVENTS, TEST_EVENT};
use ferrocast_core::ids::{is_valid_id, new_id};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{AuthUser, Json, Path};
use crate::state::AppState;

/// Longest webhook URL accepted.
const MAX_URL_BYTES: usize = 2048;
/// Webhooks one user may have.
const MAX_WEBHOOKS_PER_USER: usize = 20;

#[derive(Deserialize, ToSchema)]
pub struct CreateWebhookRequest {
    /// Where deliveries are POSTed: http(s), a public address unless the operator allows private ones.
    pub url: String,
    /// Any of `stream.started`, `stream.ended`, `video.ready`, `video.failed`, `upload.completed`.
    pub events: Vec<String>,
    /// Only this channel's events (its slug; yours); absent: all your channels.
    pub channel: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct WebhookResponse {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    /// The channel's id when limited to one.
    pub channel_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<Webhook> for WebhookResponse {
    fn from(w: Webhook) -> Self {
        WebhookResponse { events: w.event_list(), id: w.id, url: w.url, channel_id: w.channel_id, created_at: w.created_at }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CreatedWebhookResponse {
    #[serde(flatten)]
    pub webhook: WebhookResponse,
    /// Verifies the `Ferrocast-Signature` of every delivery. Shown only now.
    pub secret: String,
}

#[derive(Serialize, ToSchema)]
pub struct WebhookList {
    pub items: Vec<WebhookResponse>,
}

#[derive(Serialize, ToSchema)]
pub struct DeliveryResponse {
    pub id: String,
    pub event: String,
    pub status: DeliveryStatus,
    pub attempts: i64,
    /// The HTTP status of the last attempt, if the receiver answered.
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub last_latency_ms: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

impl From<Delivery> for DeliveryResponse {
    fn from(d: Delivery) -> Self {
        DeliveryResponse {
            id: d.id,
            event: d.event,
            status: d.status,
            attempts: d.attempts,
            last_status_code: d.last_status_code,
            last_error: d.last_error,
            last_latency_ms: d.last_latency_ms,
            created_at: d.created_at,
            delivered_at: d.delivered_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct DeliveryList {
    /// The latest deliveries, newest first.
    pub items: Vec<DeliveryResponse>,
}

#[derive(Serialize, ToSchema)]
pub struct TestDelivery {
    pub delivery_id: String,
}

/// The webhook if it is `user`'s: 404 when it does not exist, 403 when it is someone else's.
async fn owned_webhook(state: &AppState, id: &str, user: &AuthUser) -> Result<Webhook, ApiError> {
    if !is_valid_id(id) {
        return Err(ApiError::NotFound);
    }
    let webhook = webhooks::find(&state.db, id).await?.ok_or(ApiError::NotFound)?;
    if webhook.user_id != user.id {
        return Err(ApiError::Forbidden);
    }
    Ok(webhook)
}

#[utoipa::path(post, path = "/api/webhooks", tag = "webhooks", request_body = CreateWebhookRequest, security(("bearer" = []), ("cookie" = [])),
    responses((status = 201, body = CreatedWebhookResponse), (status = 403, body = ErrorBody, description = "Not your channel"),
        (status = 409, body = ErrorBody, description = "Too many webhooks"), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    Json(request): Json<CreateWebhookRequest>,
) -> Result<(StatusCode, Json<CreatedWebhookResponse>), ApiError> {
    let url = request.url.trim();
    if url.len() > MAX_URL_BYTES || url.chars().any(char::is_control) {
        return Err(ApiError::validation("url", "must be a URL of at most 2048 bytes"));
    }
    crate::webhook_delivery::check_target(url, state.settings.webhooks.allow_private_targets)
        .await
        .map_err(|e| ApiError::validation("url", e.to_string()))?;
    let mut events: Vec<String> = request.events.iter().map(|e| e.trim().to_string()).collect();
    events.sort();
    events.dedup();
    if events.is_empty() || events.iter().any(|e| !EVENTS.contains(&e.as_str())) {
        return Err(ApiError::validation("events", format!("name one or more of {}", EVENTS.join(", "))));
    }
    let channel_id = match &request.channel {
        Some(slug) => {
            let channel = channels::find_by_slug(&state.db, &slug.to_lowercase()).await?.ok_or(ApiError::NotFound)?;
            if channel.owner_id != user.id {
                return Err(ApiError::Forbidden);
            }
            Some(channel.id)
        }
        None => None,
    };
    if webhooks::list_by_user(&state.db, &user.id).await?.len() >= MAX_WEBHOOKS_PER_USER {
        return Err(ApiError::InvalidState(format!("you have {MAX_WEBHOOKS_PER_USER} webhooks; delete one first")));
    }
    let secret = format!("whsec_{}", ferrocast_core::stream_key::random_hex(24));
    let webhook = webhooks::create(&state.db, &user.id, channel_id.as_deref(), url, &events, &secret).await?;
    tracing::info!(webhook_id = %webhook.id, user_id = %user.id, "webhook created");
    Ok((StatusCode::CREATED, Json(CreatedWebhookResponse { webhook: webhook.into(), secret })))
}

#[utoipa::path(get, path = "/api/webhooks", tag = "webhooks", security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = WebhookList), (status = 401, body = ErrorBody)))]
pub async fn list(State(state): State<AppState>, user: AuthUser) -> Result<Json<WebhookList>, ApiError> {
    let items = webhooks::list_by_user(&state.db, &user.id).await?;
    Ok(Json(WebhookList { items: items.into_iter().map(WebhookResponse::from).collect() }))
}

#[utoipa::path(delete, path = "/api/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)), security(("bearer" = []), ("cookie" = [])),
    responses((status = 204, description = "Deleted with its pending deliveries"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(State(state): State<AppState>, user: AuthUser, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let webhook = owned_webhook(&state, &id, &user).await?;
    webhooks::delete(&state.db, &webhook.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/webhooks/{id}/test", tag = "webhooks", params(("id" = String, Path)), security(("bearer" = []), ("cookie" = [])),
    responses((status = 202, body = TestDelivery, description = "A `webhook.test` delivery is queued"), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn test(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<TestDelivery>), ApiError> {
    let webhook = owned_webhook(&state, &id, &user).await?;
    let payload =
        serde_json::json!({ "id": new_id(), "event": TEST_EVENT, "created_at": Utc::now(), "data": { "webhook_id": webhook.id } });
    let delivery_id = webhooks::enqueue(&state.db, &webhook.id, TEST_EVENT, &payload.to_string()).await?;
    Ok((StatusCode::ACCEPTED, Json(TestDelivery { delivery_id })))
}

#[utoipa::path(get, path = "/api/webhooks/{id}/deliveries", tag = "webhooks", params(("id" = String, Path)), security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = DeliveryList), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn deliveries(State(state): State<AppState>, user: AuthUser, Path(id): Path<String>) -> Result<Json<DeliveryList>, ApiError> {
    let webhook = owned_webhook(&state, &id, &user).await?;
    let items = webhooks::recent_deliveries(&state.db, &webhook.id, 50).await?;
    Ok(Json(DeliveryList { items: items.into_iter().map(DeliveryResponse::from).collect() }))
}
