//! The durable job queue. A worker claims the oldest runnable job by taking a lease; it renews the
//! lease while it works (reporting progress), and a job whose lease expired (its worker died) is
//! claimed again. A failed attempt is retried with exponential backoff until `max_attempts`; a
//! permanent failure (bad input) fails at once. On Postgres claims use `FOR UPDATE SKIP LOCKED`, so
//! several workers never take the same job; SQLite serialises writers, so the same single
//! `UPDATE … WHERE id = (SELECT …)` statement is atomic there too.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{execute, now, on_pool, text_enum, Db, DbError};
use crate::ids::new_id;

text_enum!(
    /// `queued` → `running` → `done`, or back to `queued` after a failed attempt, or `failed`.
    JobStatus { Queued => "queued", Running => "running", Done => "done", Failed => "failed" }
);

/// The kind of job that transcodes an uploaded source into a video.
pub const TRANSCODE_UPLOAD: &str = "transcode_upload";

/// The JSON payload of a [`TRANSCODE_UPLOAD`] job.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TranscodePayload {
    /// The file name the owner uploaded (for messages).
    pub filename: String,
    /// The completed upload whose parts are still to be assembled into the stored source; absent
    /// for jobs queued by versions that assembled inside the request.
    #[serde(default)]
    pub upload_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct Job {
    pub id: String,
    pub kind: String,
    pub video_id: Option<String>,
    pub payload: String,
    #[sqlx(try_from = "String")]
    pub status: JobStatus,
    pub attempts: i64,
    pub max_attempts: i64,
    pub progress: f64,
    pub error: Option<String>,
}

const COLUMNS: &str = "id, kind, video_id, payload, status, attempts, max_attempts, progress, error";

/// Rung when this process queues a job, so that its own idle workers claim it at once instead of
/// at their next poll (a second later, on average half a second of every upload's wait). Workers
/// of other processes find it at their next poll.
static QUEUED: tokio::sync::Notify = tokio::sync::Notify::const_new();

pub async fn enqueue(db: &Db, kind: &str, video_id: Option<&str>, payload: &str, max_attempts: i64) -> Result<Job, DbError> {
    let id = new_id();
    let at = now();
    let sql =
        "INSERT INTO jobs (id, kind, video_id, payload, status, attempts, max_attempts, run_after, progress, created_at, updated_at) \
               VALUES ($1, $2, $3, $4, 'queued', 0, $5, $6, 0, $6, $6)";
    execute!(db, sqlx::query(sql).bind(&id).bind(kind).bind(video_id).bind(payload).bind(max_attempts).bind(at))?;
    // One idle worker is enough. With none waiting a permit is kept: one worker looks once more.
    QUEUED.notify_one();
    find(db, &id).await?.ok_or(DbError::Sqlx(sqlx::Error::RowNotFound))
}

/// Completes when this process next queues a job. Call [`Notified::enable`] on it before looking
/// for a job, so that one queued in between is not missed.
///
/// [`Notified::enable`]: tokio::sync::futures::Notified::enable
pub fn queued() -> tokio::sync::futures::Notified<'static> {
    QUEUED.notified()
}

pub async fn find(db: &Db, id: &str) -> Result<Option<Job>, DbError> {
    let sql = format!("SELECT {COLUMNS} FROM jobs WHERE id = $1");
    Ok(on_pool!(db, |pool| sqlx::query_as::<_, Job>(&sql).bind(id).fetch_optional(pool).await)?)
}

/// The newest job of a video (for showing its progress).
pub async fn for_video(db: &Db, video_id: &str) -> Result<Option<Job>, DbError> {
    let sql = format!("SELECT {COLUMNS} FROM jobs WHERE video_id = $1 ORDER BY id DESC LIMIT 1");
    Ok(on_pool!(db, |pool| sqlx::query_as::<_, Job>(&sql).bind(video_id).fetch_optional(pool).await)?)
}

/// Takes the oldest runnable job (queued and due, or running with an expired lease) for `worker`
/// for `lease`, counting an attempt. `None` when there is nothing to do.
pub async fn claim(db: &Db, worker: &str, lease: Duration) -> Result<Option<Job>, DbError> {
    let at = now();
    let expires = at + chrono::Duration::from_std(lease).unwrap_or_default();
    let pick = "SELECT id FROM jobs WHERE (status = 'queued' AND run_after <= $3) OR (status = 'running' AND lease_expires_at < $3) \
                ORDER BY run_after, id LIMIT 1";
    let lock = match db {
        Db::Postgres(_) => " FOR UPDATE SKIP LOCKED",
        Db::Sqlite(_) => "",
    };
    let sql = format!(
        "UPDATE jobs SET status = 'running', lease_owner = $1, lease_expires_at = $2, attempts = attempts + 1, updated_at = $3 \
         WHERE id = ({pick}{lock}) RETURNING {COLUMNS}"
    );
    Ok(on_pool!(db, |pool| sqlx::query_as::<_, Job>(&sql).bind(worker).bind(expires).bind(at).fetch_optional(pool).await)?)
}

/// Extends the lease and records progress (0–100). Returns false when the job is no longer this
/// worker's (deleted with its video, or taken over after the lease expired): the worker must stop.
pub async fn renew(db: &Db, id: &str, worker: &str, lease: Duration, progress: f64) -> Result<bool, DbError> {
    let at = now();
    let expires = at + chrono::Duration::from_std(lease).unwrap_or_default();
    let sql =
        "UPDATE jobs SET lease_expires_at = $3, progress = $4, updated_at = $5 WHERE id = $1 AND lease_owner = $2 AND status = 'running'";
    Ok(execute!(db, sqlx::query(sql).bind(id).bind(worker).bind(expires).bind(progress).bind(at))? == 1)
}

pub async fn complete(db: &Db, id: &str, worker: &str) -> Result<bool, DbError> {
    let sql = "UPDATE jobs SET status = 'done', progress = 100, lease_owner = NULL, lease_expires_at = NULL, updated_at = $3 \
               WHERE id = $1 AND lease_owner = $2 AND status = 'running'";
    Ok(execute!(db, sqlx::query(sql).bind(id).bind(worker).bind(now()))? == 1)
}

/// What became of a failed attempt.
#[derive(Debug, PartialEq, Eq)]
pub enum AfterFailure {
    /// Queued again, to run after the backoff.
    Retrying { after: DateTime<Utc> },
    /// Out of attempts (or the failure was permanent): the job is `failed`.
    Failed,
    /// The job was no longer this worker's.
    Gone,
}

/// Records a failed attempt: retried after `backoff × 2^(attempts−1)` while attempts remain and the
/// failure is not `permanent`, otherwise failed for good with `error`.
pub async fn fail(db: &Db, job: &Job, worker: &str, error: &str, permanent: bool, backoff: Duration) -> Result<AfterFailure, DbError> {
    let at = now();
    if !permanent && job.attempts < job.max_attempts {
        let exponent = u32::try_from(job.attempts.saturating_sub(1)).unwrap_or(0).min(16);
        let delay = backoff.saturating_mul(2u32.saturating_pow(exponent));
        let after = at + chrono::Duration::from_std(delay).unwrap_or_default();
        let sql =
            "UPDATE jobs SET status = 'queued', run_after = $3, error = $4, lease_owner = NULL, lease_expires_at = NULL, updated_at = $5 \
                   WHERE id = $1 AND lease_owner = $2 AND status = 'running'";
        let rows = execute!(db, sqlx::query(sql).bind(&job.id).bind(worker).bind(after).bind(error).bind(at))?;
        return Ok(if rows == 1 { AfterFailure::Retrying { after } } else { AfterFailure::Gone });
    }
    let sql = "UPDATE jobs SET status = 'failed', error = $3, lease_owner = NULL, lease_expires_at = NULL, updated_at = $4 \
               WHERE id = $1 AND status = 'running' AND (lease_owner = $2 OR lease_owner IS NULL)";
    let rows = execute!(db, sqlx::query(sql).bind(&job.id).bind(worker).bind(error).bind(at))?;
    Ok(if rows == 1 { AfterFailure::Failed } else { AfterFailure::Gone })
}

/// Gives a running job back to the queue without counting the attempt (the worker is shutting
/// down, not failing).
pub async fn release(db: &Db, id: &str, worker: &str) -> Result<bool, DbError> {
    let sql = "UPDATE jobs SET status = 'queued', attempts = attempts - 1, run_after = $3, lease_owner = NULL, lease_expires_at = NULL, \
               updated_at = $3 WHERE id = $1 AND lease_owner = $2 AND status = 'running'";
    Ok(execute!(db, sqlx::query(sql).bind(id).bind(worker).bind(now()))? == 1)
}
