//! Resumable, chunked uploads: create → parts (any order, in parallel, each with its SHA-256 in a
//! `Content-Digest` header, safe to send again) → complete, which creates the video and enqueues
//! the job that assembles the parts into the source (see `upload_parts`) and transcodes it.
//!
//! Parts are streamed to disk as they arrive and checked before they count: a part with the wrong
//! length or digest leaves nothing behind. Only the channel's owner may upload to it.

use std::path::Path as FsPath;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use base64::Engine as _;
use chrono::Utc;
use ferrocast_core::db::uploads::{self, NewUpload, Upload, UploadStatus};
use ferrocast_core::db::videos::{self, NewVideo, VideoKind, VideoStatus, Visibility};
use ferrocast_core::db::{channels, jobs};
use ferrocast_core::ids::is_valid_id;
use ferrocast_core::upload_parts;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{AuthUser, Json, Path};
use crate::state::AppState;
use crate::validate;

/// Longest file name kept (the rest is cut; it is only shown to the owner).
const MAX_FILENAME_CHARS: usize = 200;

#[derive(Deserialize, ToSchema)]
pub struct CreateUploadRequest {
    /// Slug of the channel the video will belong to (yours).
    pub channel: String,
    pub filename: String,
    /// Exact size of the file in bytes.
    pub size: u64,
    pub title: String,
    pub description: Option<String>,
    pub visibility: Option<Visibility>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedUpload {
    pub id: String,
    /// Every part but the last has exactly this many bytes.
    pub part_size: u64,
    /// Parts are numbered 1 to `part_count`.
    pub part_count: u64,
}

#[derive(Serialize, ToSchema)]
pub struct UploadResponse {
    pub id: String,
    pub status: UploadStatus,
    pub filename: String,
    pub size: u64,
    pub part_size: u64,
    pub part_count: u64,
    /// Part numbers already received: send the others to resume.
    pub parts: Vec<u64>,
    /// The video, once completed.
    pub video_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct PartReceived {
    pub part: u64,
    pub size: u64,
}

#[derive(Serialize, ToSchema)]
pub struct CompletedUpload {
    pub video_id: String,
}

/// The upload if it is `user`'s: 404 when it does not exist, 403 when it is someone else's.
async fn owned_upload(state: &AppState, id: &str, user: &AuthUser) -> Result<Upload, ApiError> {
    if !is_valid_id(id) {
        return Err(ApiError::NotFound);
    }
    let upload = uploads::find(&state.db, id).await?.ok_or(ApiError::NotFound)?;
    if upload.user_id != user.id {
        return Err(ApiError::Forbidden);
    }
    Ok(upload)
}

fn require_open(upload: &Upload) -> Result<(), ApiError> {
    match upload.status {
        UploadStatus::Open => Ok(()),
        UploadStatus::Completed => Err(ApiError::InvalidState("the upload is already complete".into())),
        UploadStatus::Aborted => Err(ApiError::InvalidState("the upload was aborted".into())),
    }
}

/// The file name as shown to its owner: no directories, no control characters, bounded.
fn clean_filename(raw: &str) -> Result<String, ApiError> {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or(raw).trim();
    let cleaned: String = base.chars().filter(|c| !c.is_control()).take(MAX_FILENAME_CHARS).collect();
    if cleaned.is_empty() {
        return Err(ApiError::validation("filename", "must name the file"));
    }
    Ok(cleaned)
}

#[utoipa::path(post, path = "/api/uploads", tag = "uploads", request_body = CreateUploadRequest, security(("bearer" = []), ("cookie" = [])),
    responses((status = 201, body = CreatedUpload), (status = 403, body = ErrorBody, description = "Not your channel"),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "Too many uploads in flight"),
        (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    Json(request): Json<CreateUploadRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let limits = &state.settings.uploads;
    let slug = validate::slug(&request.channel).map_err(|_| ApiError::validation("channel", "is not a channel slug"))?;
    let channel = channels::find_by_slug(&state.db, &slug).await?.ok_or(ApiError::NotFound)?;
    if channel.owner_id != user.id {
        return Err(ApiError::Forbidden);
    }
    if request.size == 0 {
        return Err(ApiError::validation("size", "the file is empty"));
    }
    if request.size > limits.max_file_bytes {
        return Err(ApiError::validation("size", format!("the file is larger than the {}-byte limit", limits.max_file_bytes)));
    }
    let filename = clean_filename(&request.filename)?;
    let title = validate::title(&request.title)?;
    let description = validate::description(request.description.as_deref().unwrap_or(""))?;
    if uploads::count_open(&state.db, &user.id).await? >= i64::from(limits.in_flight_per_user) {
        return Err(ApiError::InvalidState(format!(
            "you already have {} unfinished uploads; complete or delete one first",
            limits.in_flight_per_user
        )));
    }
    let size = i64::try_from(request.size).map_err(|_| ApiError::validation("size", "is too large"))?;
    let part_size = i64::try_from(limits.part_bytes).map_err(ApiError::internal)?;
    let upload = uploads::create(
        &state.db,
        NewUpload {
            user_id: &user.id,
            channel_id: &channel.id,
            filename: &filename,
            size,
            part_size,
            title: &title,
            description: &description,
            visibility: request.visibility.unwrap_or(Visibility::Public),
            expires_at: Utc::now() + chrono::Duration::seconds(i64::try_from(limits.expiry_secs).unwrap_or(i64::MAX / 2)),
        },
    )
    .await?;
    tracing::info!(upload_id = %upload.id, size = upload.size, parts = upload.part_count, "upload started");
    let created = CreatedUpload { id: upload.id, part_size: upload.part_size as u64, part_count: upload.part_count as u64 };
    Ok((StatusCode::CREATED, Json(created)))
}

#[utoipa::path(get, path = "/api/uploads/{id}", tag = "uploads", params(("id" = String, Path)), security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = UploadResponse), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(State(state): State<AppState>, user: AuthUser, Path(id): Path<String>) -> Result<Json<UploadResponse>, ApiError> {
    let upload = owned_upload(&state, &id, &user).await?;
    let parts = uploads::parts(&state.db, &upload.id).await?.into_iter().map(|n| n as u64).collect();
    Ok(Json(UploadResponse {
        id: upload.id,
        status: upload.status,
        filename: upload.filename,
        size: upload.size as u64,
        part_size: upload.part_size as u64,
        part_count: upload.part_count as u64,
        parts,
        video_id: upload.video_id,
    }))
}

/// The SHA-256 from `Content-Digest: sha-256=:<base64>:` (RFC 9530), among other algorithms.
fn sha256_from_header(headers: &HeaderMap) -> Result<[u8; 32], ApiError> {
    let missing = || ApiError::BadRequest("a Content-Digest header with sha-256 is required (RFC 9530)".into());
    let value = headers.get("content-digest").and_then(|v| v.to_str().ok()).ok_or_else(missing)?;
    let encoded = value
        .split(',')
        .filter_map(|entry| entry.trim().split_once('='))
        .find(|(algorithm, _)| algorithm.trim().eq_ignore_ascii_case("sha-256"))
        .map(|(_, digest)| digest.trim().trim_matches(':'))
        .ok_or_else(missing)?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(encoded).map_err(|_| missing())?;
    bytes.try_into().map_err(|_| missing())
}

#[utoipa::path(put, path = "/api/uploads/{id}/parts/{n}", tag = "uploads", params(("id" = String, Path), ("n" = u64, Path, description = "1-based part number")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The part's bytes; header `Content-Digest: sha-256=:…:`"),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = PartReceived), (status = 400, body = ErrorBody, description = "Wrong length or digest: nothing kept"),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn put_part(
    State(state): State<AppState>,
    user: AuthUser,
    Path((id, n)): Path<(String, i64)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<PartReceived>, ApiError> {
    let upload = owned_upload(&state, &id, &user).await?;
    require_open(&upload)?;
    let expected_len = upload.expected_part_len(n).ok_or(ApiError::NotFound)?;
    let expected_digest = sha256_from_header(&headers)?;
    let dir = upload_parts::staging_dir(&state.settings.uploads_dir, &upload.id);
    tokio::fs::create_dir_all(&dir).await.map_err(ApiError::internal)?;
    // Each request writes its own temporary file: parallel or repeated sends never interleave.
    let temp = dir.join(format!("{n:06}.{}.tmp", ferrocast_core::ids::new_id()));
    let result = receive_part(body, &temp, expected_len, &expected_digest).await;
    if let Err(e) = result {
        let _ = tokio::fs::remove_file(&temp).await;
        return Err(e);
    }
    // Checked: into storage, where any node's worker finds it (a resend replaces it whole).
    if let Err(e) = state.storage.put_file(&upload_parts::part_key(&upload.id, n), &temp).await {
        let _ = tokio::fs::remove_file(&temp).await;
        return Err(ApiError::internal(e));
    }
    uploads::put_part(&state.db, &upload.id, n, expected_len, &hex_encode(&expected_digest)).await?;
    Ok(Json(PartReceived { part: n as u64, size: expected_len as u64 }))
}

/// Streams the body into `path`, hashing as it goes; checks length and digest.
async fn receive_part(body: Body, path: &FsPath, expected_len: i64, expected_digest: &[u8; 32]) -> Result<(), ApiError> {
    let mut file = tokio::fs::File::create(path).await.map_err(ApiError::internal)?;
    let mut hasher = Sha256::new();
    let mut received: i64 = 0;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::BadRequest(format!("the part was not received completely: {e}")))?;
        received += chunk.len() as i64;
        if received > expected_len {
            return Err(ApiError::BadRequest(format!("part is longer than its {expected_len} bytes")));
        }
        hasher.update(&chunk);
        file.write_all(&chunk).await.map_err(ApiError::internal)?;
    }
    if received != expected_len {
        return Err(ApiError::BadRequest(format!("part has {received} bytes, expected {expected_len}")));
    }
    if hasher.finalize().as_slice() != expected_digest {
        return Err(ApiError::BadRequest("the part's SHA-256 does not match its Content-Digest".into()));
    }
    file.sync_all().await.map_err(ApiError::internal)?;
    Ok(())
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[utoipa::path(post, path = "/api/uploads/{id}/complete", tag = "uploads", params(("id" = String, Path)), security(("bearer" = []), ("cookie" = [])),
    responses((status = 202, body = CompletedUpload, description = "The video exists (processing); its transcode job assembles the parts"),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "Parts missing, or no longer open (of concurrent completions, one wins)")))]
pub async fn complete(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<CompletedUpload>), ApiError> {
    let upload = owned_upload(&state, &id, &user).await?;
    require_open(&upload)?;
    let received = uploads::parts(&state.db, &upload.id).await?;
    let missing: Vec<i64> = (1..=upload.part_count).filter(|n| received.binary_search(n).is_err()).collect();
    if !missing.is_empty() {
        let shown: Vec<String> = missing.iter().take(20).map(i64::to_string).collect();
        return Err(ApiError::InvalidState(format!("{} parts missing: {}", missing.len(), shown.join(", "))));
    }
    // Exactly one completion claims the upload; the others find it no longer open.
    if !uploads::close(&state.db, &upload.id, UploadStatus::Completed, None).await? {
        return Err(ApiError::InvalidState("the upload is already complete".into()));
    }
    match create_video(&state, &upload).await {
        Ok(video_id) => {
            tracing::info!(upload_id = %upload.id, %video_id, "upload complete; assembly and transcode queued");
            ferrocast_core::db::webhooks::emit_for_video(&state.db, "upload.completed", &video_id).await;
            Ok((StatusCode::ACCEPTED, Json(CompletedUpload { video_id })))
        }
        Err(e) => {
            // Open again, so the owner can simply complete it once more.
            let _ = uploads::reopen(&state.db, &upload.id).await;
            Err(e)
        }
    }
}

/// The video a claimed upload becomes, with the job that assembles its parts and transcodes it.
/// When a step fails the video is removed again.
async fn create_video(state: &AppState, upload: &Upload) -> Result<String, ApiError> {
    let video = videos::create(
        &state.db,
        NewVideo {
            channel_id: &upload.channel_id,
            kind: VideoKind::Upload,
            status: VideoStatus::Processing,
            title: &upload.title,
            description: &upload.description,
            visibility: upload.visibility,
        },
    )
    .await?;
    let payload = jobs::TranscodePayload { filename: upload.filename.clone(), upload_id: Some(upload.id.clone()) };
    let queued = async {
        uploads::attach_video(&state.db, &upload.id, &video.id).await?;
        let payload = serde_json::to_string(&payload).map_err(ApiError::internal)?;
        jobs::enqueue(&state.db, jobs::TRANSCODE_UPLOAD, Some(&video.id), &payload, i64::from(state.settings.job_max_attempts)).await?;
        Ok::<_, ApiError>(())
    }
    .await;
    if let Err(e) = queued {
        let _ = videos::delete(&state.db, &video.id).await;
        return Err(e);
    }
    Ok(video.id)
}

#[utoipa::path(delete, path = "/api/uploads/{id}", tag = "uploads", params(("id" = String, Path)), security(("bearer" = []), ("cookie" = [])),
    responses((status = 204, description = "Aborted; its parts are deleted"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn abort(State(state): State<AppState>, user: AuthUser, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let upload = owned_upload(&state, &id, &user).await?;
    require_open(&upload)?;
    uploads::close(&state.db, &upload.id, UploadStatus::Aborted, None).await?;
    upload_parts::remove(&state.storage, &state.settings.uploads_dir, &upload.id).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes uploads left unfinished past their expiry, with their parts. Run periodically.
pub async fn remove_expired(state: &AppState) -> Result<usize, ApiError> {
    let expired = uploads::expired(&state.db, Utc::now()).await?;
    for id in &expired {
        uploads::close(&state.db, id, UploadStatus::Aborted, None).await?;
        upload_parts::remove(&state.storage, &state.settings.uploads_dir, id).await;
    }
    Ok(expired.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_digest_header_is_read_per_rfc_9530() {
        let digest = Sha256::digest(b"hello");
        let encoded = base64::engine::general_purpose::STANDARD.encode(digest);
        let mut headers = HeaderMap::new();
        headers.insert("content-digest", format!("sha-512=:AAAA:, sha-256=:{encoded}:").parse().expect("header"));
        assert_eq!(sha256_from_header(&headers).expect("digest").as_slice(), digest.as_slice());
        headers.insert("content-digest", "sha-256=:bm90IDMyIGJ5dGVz:".parse().expect("header"));
        assert!(sha256_from_header(&headers).is_err(), "not 32 bytes");
        assert!(sha256_from_header(&HeaderMap::new()).is_err());
    }

    #[test]
    fn file_names_lose_their_directories() {
        assert_eq!(clean_filename("../../etc/passwd").expect("name"), "passwd");
        assert_eq!(clean_filename("C:\\Users\\me\\clip.mp4").expect("name"), "clip.mp4");
        assert!(clean_filename("dir/").is_err());
    }
}
