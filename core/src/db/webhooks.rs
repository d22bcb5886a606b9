//! Webhooks and their deliveries: a durable queue in the database, so that an event raised just
//! before a restart is still delivered after it. Any node may deliver; a delivery being sent is
//! leased (its `next_attempt_at` pushed ahead) so that two nodes never send it at once.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{execute, now, on_pool, text_enum, Db, DbError};
use crate::ids::new_id;

/// The events a webhook may subscribe to.
pub const EVENTS: [&str; 5] = ["stream.started", "stream.ended", "video.ready", "video.failed", "upload.completed"];
/// The event `POST /api/webhooks/{id}/test` sends (always delivered, whatever the subscription).
pub const TEST_EVENT: &str = "webhook.test";

text_enum!(
    /// `pending` until a 2xx answer (`delivered`) or the last attempt (`failed`).
    DeliveryStatus { Pending => "pending", Delivered => "delivered", Failed => "failed" }
);

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Webhook {
    pub id: String,
    pub user_id: String,
    pub channel_id: Option<String>,
    pub url: String,
    /// Comma-separated.
    pub events: String,
    pub secret: String,
    pub created_at: DateTime<Utc>,
}

impl Webhook {
    pub fn event_list(&self) -> Vec<String> {
        self.events.split(',').filter(|e| !e.is_empty()).map(str::to_string).collect()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Delivery {
    pub id: String,
    pub webhook_id: String,
    pub event: String,
    pub payload: String,
    #[sqlx(try_from = "String")]
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub last_latency_ms: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

const WEBHOOK_COLUMNS: &str = "id, user_id, channel_id, url, events, secret, created_at";
const DELIVERY_COLUMNS: &str =
    "id, webhook_id, event, payload, status, attempts, last_status_code, last_error, last_latency_ms, created_at, delivered_at";

pub async fn create(
    db: &Db,
    user_id: &str,
    channel_id: Option<&str>,
    url: &str,
    events: &[String],
    secret: &str,
) -> Result<Webhook, DbError> {
    let id = new_id();
    let sql = "INSERT INTO webhooks (id, user_id, channel_id, url, events, secret, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";
    execute!(db, sqlx::query(sql).bind(&id).bind(user_id).bind(channel_id).bind(url).bind(events.join(",")).bind(secret).bind(now()))?;
    find(db, &id).await?.ok_or(DbError::Sqlx(sqlx::Error::RowNotFound))
}

pub async fn find(db: &Db, id: &str) -> Result<Option<Webhook>, DbError> {
    let sql = format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = $1");
    Ok(on_pool!(db, |pool| sqlx::query_as::<_, Webhook>(&sql).bind(id).fetch_optional(pool).await)?)
}

pub async fn list_by_user(db: &Db, user_id: &str) -> Result<Vec<Webhook>, DbError> {
    let sql = format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE user_id = $1 ORDER BY id");
    Ok(on_pool!(db, |pool| sqlx::query_as::<_, Webhook>(&sql).bind(user_id).fetch_all(pool).await)?)
}

pub async fn delete(db: &Db, id: &str) -> Result<bool, DbError> {
    Ok(execute!(db, sqlx::query("DELETE FROM webhooks WHERE id = $1").bind(id))? == 1)
}

/// Queues one delivery of `event` with `payload` (the JSON body, already rendered) to a webhook.
pub async fn enqueue(db: &Db, webhook_id: &str, event: &str, payload: &str) -> Result<String, DbError> {
    let id = new_id();
    let at = now();
    let sql = "INSERT INTO webhook_deliveries (id, webhook_id, event, payload, status, attempts, next_attempt_at, created_at) \
               VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5)";
    execute!(db, sqlx::query(sql).bind(&id).bind(webhook_id).bind(event).bind(payload).bind(at))?;
    Ok(id)
}

/// The webhooks of `owner_id` that want `event` of `channel_id`.
pub async fn subscribed(db: &Db, owner_id: &str, channel_id: &str, event: &str) -> Result<Vec<Webhook>, DbError> {
    let sql = format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE user_id = $1 AND (channel_id IS NULL OR channel_id = $2) ORDER BY id");
    let all = on_pool!(db, |pool| sqlx::query_as::<_, Webhook>(&sql).bind(owner_id).bind(channel_id).fetch_all(pool).await)?;
    Ok(all.into_iter().filter(|w| w.event_list().iter().any(|e| e == event)).collect())
}

/// Takes the oldest due delivery for `lease` (pushing its next attempt past the lease, so no other
/// node sends it meanwhile) and counts the attempt. `None` when nothing is due.
pub async fn claim_due(db: &Db, lease: Duration) -> Result<Option<(Delivery, Webhook)>, DbError> {
    let at = now();
    let until = at + chrono::Duration::from_std(lease).unwrap_or_default();
    let pick = "SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= $2 ORDER BY next_attempt_at, id LIMIT 1";
    let lock = match db {
        Db::Postgres(_) => " FOR UPDATE SKIP LOCKED",
        Db::Sqlite(_) => "",
    };
    let sql = format!(
        "UPDATE webhook_deliveries SET next_attempt_at = $1, attempts = attempts + 1 WHERE id = ({pick}{lock}) RETURNING {DELIVERY_COLUMNS}"
    );
    let claimed = on_pool!(db, |pool| sqlx::query_as::<_, Delivery>(&sql).bind(until).bind(at).fetch_optional(pool).await)?;
    let Some(delivery) = claimed else { return Ok(None) };
    match find(db, &delivery.webhook_id).await? {
        Some(webhook) => Ok(Some((delivery, webhook))),
        None => Ok(None),
    }
}

/// What one attempt got: the HTTP status (if any answer came), the error, how long it took.
pub struct AttemptOutcome<'a> {
    pub status_code: Option<u16>,
    pub error: Option<&'a str>,
    pub latency: Duration,
}

/// Records an attempt: delivered on a 2xx; otherwise retried after `retry_after`, or failed for
/// good when it was the last of `max_attempts`.
pub async fn record_attempt(
    db: &Db,
    delivery: &Delivery,
    outcome: AttemptOutcome<'_>,
    max_attempts: i64,
    retry_after: Duration,
) -> Result<DeliveryStatus, DbError> {
    let at = now();
    let ok = outcome.status_code.is_some_and(|code| (200..300).contains(&code));
    let status = match (ok, delivery.attempts >= max_attempts) {
        (true, _) => DeliveryStatus::Delivered,
        (false, true) => DeliveryStatus::Failed,
        (false, false) => DeliveryStatus::Pending,
    };
    let next = at + chrono::Duration::from_std(retry_after).unwrap_or_default();
    let sql = "UPDATE webhook_deliveries SET status = $2, next_attempt_at = $3, last_status_code = $4, last_error = $5, \
               last_latency_ms = $6, delivered_at = $7 WHERE id = $1";
    execute!(
        db,
        sqlx::query(sql)
            .bind(&delivery.id)
            .bind(status.as_str())
            .bind(next)
            .bind(outcome.status_code.map(i64::from))
            .bind(outcome.error)
            .bind(outcome.latency.as_millis() as i64)
            .bind(ok.then_some(at))
    )?;
    Ok(status)
}

/// A webhook's latest deliveries, newest first.
pub async fn recent_deliveries(db: &Db, webhook_id: &str, limit: u32) -> Result<Vec<Delivery>, DbError> {
    let sql = format!("SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY id DESC LIMIT $2");
    Ok(on_pool!(db, |pool| sqlx::query_as::<_, Delivery>(&sql).bind(webhook_id).bind(i64::from(limit)).fetch_all(pool).await)?)
}

/// Raises `event` about a video: one delivery for each of its owner's webhooks that wants it. The
/// payload is `{id, event, created_at, data: {video: {...}}}`; failures are logged, never passed up
/// (an event must not break what raised it).
pub async fn emit_for_video(db: &Db, event: &str, video_id: &str) {
    if let Err(e) = try_emit_for_video(db, event, video_id).await {
        tracing::warn!(%event, %video_id, error = %e, "webhook event not queued");
    }
}

async fn try_emit_for_video(db: &Db, event: &str, video_id: &str) -> Result<(), DbError> {
    let Some(video) = super::videos::find(db, video_id).await? else { return Ok(()) };
    let hooks = subscribed(db, &video.owner_id, &video.channel_id, event).await?;
    for hook in hooks {
        let payload = serde_json::json!({
            "id": new_id(),
            "event": event,
            "created_at": Utc::now(),
            "data": { "video": {
                "id": video.id,
                "title": video.title,
                "kind": video.kind,
                "status": video.status,
                "visibility": video.visibility,
                "channel": { "id": video.channel_id, "slug": video.channel_slug },
                "duration_secs": video.duration_ms.map(|ms| ms as f64 / 1000.0),
            }},
        });
        enqueue(db, &hook.id, event, &payload.to_string()).await?;
    }
    Ok(())
}
