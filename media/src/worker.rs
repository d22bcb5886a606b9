//! The transcode worker: claims `transcode_upload` jobs from the durable queue and runs the file
//! ladder on each, renewing its lease with the progress as it goes.
//!
//! A job whose worker dies is picked up again when its lease expires; every attempt starts from a
//! clean slate (segments and playlists of an earlier attempt are removed). A file that is not video
//! fails at once with a message for the owner; other failures are retried with backoff and fail the
//! video only when attempts run out. Deleting the video deletes its job, which the worker notices at
//! its next renewal: it stops and removes what it wrote. On shutdown a running job is handed back
//! to the queue without counting the attempt.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrocast_core::config::{JobsConfig, MediaConfig};
use ferrocast_core::db::jobs::{self, AfterFailure, Job, TranscodePayload, TRANSCODE_UPLOAD};
use ferrocast_core::db::uploads::{self, UploadStatus};
use ferrocast_core::db::videos::{self, VideoStatus};
use ferrocast_core::db::{recordings, webhooks};
use ferrocast_core::live::LiveVideo;
use ferrocast_core::shutdown::Shutdown;
use ferrocast_core::storage::{Storage, StorageError, SOURCE_FILE};
use ferrocast_core::upload_parts;
use ferrocast_core::Db;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::file_pipeline::{self, FileSettings, Outcome, SourceAudio, TranscodeJob};
use crate::ladder::{self, Encoding};
use crate::recording::{self, encoded_codecs, RecordingSettings, RenditionInfo};
use crate::MediaError;

/// How often an idle worker looks for a job (one queued by this process wakes it at once).
const POLL_INTERVAL: Duration = Duration::from_secs(1);

pub struct Worker {
    pub db: Db,
    pub storage: Storage,
    pub jobs: JobsConfig,
    pub media: MediaConfig,
    /// Where the API stages the parts of uploads (see `ferrocast_core::upload_parts`).
    pub uploads_dir: PathBuf,
    /// Scratch space for jobs (an assembled upload, a source fetched from a remote store); each
    /// job's directory is removed when the job ends.
    pub work_dir: PathBuf,
}

/// How one attempt ended.
enum Attempt {
    Done,
    /// Not worth retrying (bad input); the message is for the owner.
    Permanent(String),
    Retry(String),
    /// The job is no longer ours (video deleted, or lease lost).
    Gone,
    /// The server is stopping.
    Interrupted,
}

/// Runs `jobs.concurrency` workers until shutdown.
pub fn spawn(worker: Arc<Worker>, shutdown: &Shutdown) {
    for slot in 0..worker.jobs.concurrency {
        let id = format!("{}-{}-{slot}", hostname(), std::process::id());
        shutdown.spawn(run(worker.clone(), id, shutdown.clone()));
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).unwrap_or_else(|_| "worker".into())
}

async fn run(worker: Arc<Worker>, id: String, shutdown: Shutdown) {
    let lease = Duration::from_secs(worker.jobs.lease_secs);
    loop {
        if shutdown.is_triggered() {
            return;
        }
        let queued = jobs::queued();
        tokio::pin!(queued);
        queued.as_mut().enable();
        let job = match jobs::claim(&worker.db, &id, lease).await {
            Ok(Some(job)) => job,
            Ok(None) => {
                tokio::select! {
                    () = shutdown.signalled() => return,
                    () = tokio::time::sleep(POLL_INTERVAL) => continue,
                    () = queued => continue,
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot claim jobs");
                tokio::time::sleep(POLL_INTERVAL * 5).await;
                continue;
            }
        };
        let attempt = if job.kind == TRANSCODE_UPLOAD {
            worker.transcode(&job, &id, &shutdown).await
        } else {
            Attempt::Permanent(format!("unknown job kind {}", job.kind))
        };
        if let Some(video_id) = &job.video_id {
            let _ = tokio::fs::remove_dir_all(worker.work_dir.join(video_id)).await;
        }
        worker.settle(&job, &id, attempt).await;
    }
}

impl Worker {
    async fn settle(&self, job: &Job, worker_id: &str, attempt: Attempt) {
        let video_id = job.video_id.clone().unwrap_or_default();
        let backoff = Duration::from_secs(self.jobs.retry_backoff_secs);
        let result = match attempt {
            Attempt::Done => jobs::complete(&self.db, &job.id, worker_id).await.map(|_| ()),
            Attempt::Gone => {
                tracing::info!(job_id = %job.id, %video_id, "job gone (video deleted?); its files are removed");
                self.remove_outputs(&video_id).await;
                Ok(())
            }
            Attempt::Interrupted => jobs::release(&self.db, &job.id, worker_id).await.map(|_| ()),
            Attempt::Permanent(message) | Attempt::Retry(message) if job.attempts >= job.max_attempts => {
                self.fail_video(job, worker_id, &message).await
            }
            Attempt::Permanent(message) => self.fail_video(job, worker_id, &message).await,
            Attempt::Retry(message) => match jobs::fail(&self.db, job, worker_id, &message, false, backoff).await {
                Ok(AfterFailure::Retrying { after }) => {
                    tracing::warn!(job_id = %job.id, %video_id, attempt = job.attempts, %message, %after, "transcode failed; will retry");
                    Ok(())
                }
                Ok(_) => Ok(()),
                Err(e) => Err(e),
            },
        };
        if let Err(e) = result {
            tracing::error!(job_id = %job.id, error = %e, "could not record the job's outcome");
        }
    }

    async fn fail_video(&self, job: &Job, worker_id: &str, message: &str) -> Result<(), ferrocast_core::DbError> {
        tracing::warn!(job_id = %job.id, video_id = ?job.video_id, %message, "transcode failed for good");
        jobs::fail(&self.db, job, worker_id, message, true, Duration::ZERO).await?;
        if let Some(video_id) = &job.video_id {
            videos::finish(&self.db, video_id, VideoStatus::Failed, None, Some(message)).await?;
            webhooks::emit_for_video(&self.db, "video.failed", video_id).await;
        }
        Ok(())
    }

    /// Removes what a transcode wrote for a video (segments, playlists, thumbnail), keeping the source.
    async fn remove_outputs(&self, video_id: &str) {
        if video_id.is_empty() {
            return;
        }
        let _ = recordings::clear(&self.db, video_id).await;
        // Files get no passthrough rung, so only the ladder's names (never the source file).
        for rung in self.media.ladder.iter().map(|r| r.name.as_str()) {
            let _ = self.storage.delete_prefix(&Storage::key(&[video_id, rung])).await;
        }
        for file in ["master.m3u8", "thumbnail.jpg"] {
            let _ = self.storage.delete_prefix(&Storage::key(&[video_id, file])).await;
        }
    }

    /// Stores the source of a completed upload, assembled from its stored parts, unless an earlier
    /// attempt already did; then the parts go. An upload that is not this video's any more (its
    /// channel or video was deleted while the job waited) fails the job for good.
    async fn store_upload_source(&self, job: &Job, video_id: &str) -> Result<(), Attempt> {
        let payload: TranscodePayload = serde_json::from_str(&job.payload).unwrap_or_default();
        let Some(upload_id) = payload.upload_id else { return Ok(()) };
        let key = Storage::key(&[video_id, SOURCE_FILE]);
        match self.storage.head(&key).await {
            Ok(_) => {
                upload_parts::remove(&self.storage, &self.uploads_dir, &upload_id).await;
                return Ok(());
            }
            Err(StorageError::NotFound) => {}
            Err(e) => return Err(Attempt::Retry(format!("cannot look up the source: {e}"))),
        }
        let upload = uploads::find(&self.db, &upload_id).await.map_err(|e| Attempt::Retry(e.to_string()))?;
        let Some(upload) = upload.filter(|u| u.status == UploadStatus::Completed && u.video_id.as_deref() == Some(video_id)) else {
            return Err(Attempt::Permanent("the upload behind this video is gone".into()));
        };
        let assembled = self.work_dir(video_id).await.map_err(|e| Attempt::Retry(e.to_string()))?.join("assembled");
        match upload_parts::assemble(&self.storage, &upload.id, upload.part_count, &assembled).await {
            Ok(()) => {}
            Err(StorageError::NotFound) => return Err(Attempt::Permanent("the uploaded parts are gone; upload the file again".into())),
            Err(e) => return Err(Attempt::Retry(format!("cannot assemble the upload: {e}"))),
        }
        self.storage.put_file(&key, &assembled).await.map_err(|e| Attempt::Retry(format!("cannot store the source: {e}")))?;
        upload_parts::remove(&self.storage, &self.uploads_dir, &upload.id).await;
        tracing::info!(job_id = %job.id, %video_id, upload_id = %upload.id, bytes = upload.size, "upload assembled and stored");
        Ok(())
    }

    /// This node's scratch directory for one video's job, created empty. Removed when the job ends.
    async fn work_dir(&self, video_id: &str) -> std::io::Result<PathBuf> {
        let dir = self.work_dir.join(video_id);
        tokio::fs::create_dir_all(&dir).await?;
        Ok(dir)
    }

    /// A local file to read the stored source from: the stored file itself on local storage, a
    /// fresh download into the job's scratch directory otherwise (GStreamer reads files).
    async fn local_source(&self, video_id: &str) -> Result<PathBuf, Attempt> {
        let key = Storage::key(&[video_id, SOURCE_FILE]);
        if let Some(path) = self.storage.local_path(&key) {
            return Ok(path);
        }
        let path = self.work_dir(video_id).await.map_err(|e| Attempt::Retry(e.to_string()))?.join(SOURCE_FILE);
        let mut file = tokio::fs::File::create(&path).await.map_err(|e| Attempt::Retry(e.to_string()))?;
        match self.storage.append_to(&key, &mut file).await {
            Ok(_) => Ok(path),
            Err(StorageError::NotFound) => Err(Attempt::Permanent("the source is missing from storage".into())),
            Err(e) => Err(Attempt::Retry(format!("cannot fetch the source: {e}"))),
        }
    }

    async fn transcode(&self, job: &Job, worker_id: &str, shutdown: &Shutdown) -> Attempt {
        let Some(video_id) = job.video_id.clone() else { return Attempt::Permanent("the job names no video".into()) };
        if let Err(attempt) = self.store_upload_source(job, &video_id).await {
            return attempt;
        }
        let source = match self.local_source(&video_id).await {
            Ok(source) => source,
            Err(attempt) => return attempt,
        };
        tracing::info!(job_id = %job.id, %video_id, attempt = job.attempts, "transcode started");
        self.remove_outputs(&video_id).await;
        let probe_path = source.clone();
        let info = match tokio::task::spawn_blocking(move || file_pipeline::probe(&probe_path)).await {
            Ok(Ok(info)) => info,
            Ok(Err(MediaError::Unsupported(message))) => return Attempt::Permanent(message),
            Ok(Err(e)) => return Attempt::Retry(e.to_string()),
            Err(e) => return Attempt::Retry(e.to_string()),
        };
        let rungs = match ladder::plan(&self.media.ladder, info.width, info.height, false) {
            Ok(rungs) => rungs,
            Err(e) => return Attempt::Permanent(format!("cannot plan the ladder: {e}")),
        };
        let audio_codecs = match &info.audio {
            Some(SourceAudio::Aac { codecs }) => Some(codecs.clone()),
            Some(SourceAudio::Other) => Some(crate::playlist::AAC_LC_CODEC.to_string()),
            None => None,
        };
        let renditions: Vec<RenditionInfo> = rungs
            .iter()
            .filter_map(|rung| match rung.encoding {
                Encoding::Transcode { video_bitrate_kbps } => Some(RenditionInfo {
                    name: rung.name.clone(),
                    width: rung.width,
                    height: rung.height,
                    frame_rate: rung.frame_rate(info.frame_rate),
                    codecs: encoded_codecs(rung.width, rung.height, rung.frame_rate(info.frame_rate), audio_codecs.as_deref()),
                    nominal_bandwidth: (u64::from(video_bitrate_kbps) * 1000 + if audio_codecs.is_some() { 160_000 } else { 0 }) * 11 / 10,
                }),
                Encoding::Passthrough => None,
            })
            .collect();
        let segment_duration = Duration::from_secs(self.jobs.vod_segment_duration_secs);
        let settings = RecordingSettings {
            segment_duration,
            part_duration: Duration::from_millis(self.media.part_duration_ms),
            live_window: self.media.live_window_segments,
        };
        let video = Arc::new(LiveVideo::detached(&video_id));
        let recording = recording::spawn(&video_id, self.db.clone(), self.storage.clone(), video, settings);
        recording.start_session(renditions).await;

        let file_settings = FileSettings { segment_duration, x264_preset: self.jobs.vod_x264_preset.clone() };
        let lease = Duration::from_secs(self.jobs.lease_secs);
        let (progress, progress_rx) = watch::channel(0.0);
        let cancel = CancellationToken::new();
        let job_input = TranscodeJob { path: &source, info: &info, rungs: &rungs, settings: &file_settings };
        let transcode = file_pipeline::transcode(job_input, recording.events(), progress, cancel.clone());
        tokio::pin!(transcode);
        // Renew well within the lease; each renewal also records the progress for the owner.
        let mut renewals = tokio::time::interval((lease / 3).clamp(Duration::from_millis(500), Duration::from_secs(10)));
        let mut gone = false;
        let stall_timeout = Duration::from_secs(self.jobs.stall_timeout_secs.max(1));
        let mut watchdog = StallWatch::new(stall_timeout, Instant::now());
        let mut stalled = false;
        let outcome = loop {
            tokio::select! {
                outcome = &mut transcode => break outcome,
                () = shutdown.signalled() => cancel.cancel(),
                _ = renewals.tick() => {
                    let percent = *progress_rx.borrow();
                    if !stalled && watchdog.stalled(percent, Instant::now()) {
                        tracing::warn!(job_id = %job.id, %video_id, percent, stall_secs = stall_timeout.as_secs(), "transcode made no progress; stopping it");
                        stalled = true;
                        cancel.cancel();
                    }
                    if let Ok(false) = jobs::renew(&self.db, &job.id, worker_id, lease, percent).await {
                        gone = true;
                        cancel.cancel();
                    }
                }
            }
        };
        match outcome {
            Ok(Outcome::Done) => {
                recording.finish(recording::Outcome::Ended).await;
                match videos::find(&self.db, &video_id).await {
                    Ok(Some(v)) if v.status == VideoStatus::Ready => {
                        tracing::info!(job_id = %job.id, %video_id, duration_ms = ?v.duration_ms, "transcode done");
                        Attempt::Done
                    }
                    Ok(Some(v)) => Attempt::Retry(v.error.unwrap_or_else(|| "the transcode produced no video".into())),
                    Ok(None) => Attempt::Gone,
                    Err(e) => Attempt::Retry(e.to_string()),
                }
            }
            Ok(Outcome::Cancelled) if gone => Attempt::Gone,
            Ok(Outcome::Cancelled) if stalled => Attempt::Retry(format!(
                "the transcode stopped making progress (nothing for {} s at {:.0} %); the file may be damaged or unusual",
                stall_timeout.as_secs(),
                *progress_rx.borrow()
            )),
            Ok(Outcome::Cancelled) => Attempt::Interrupted,
            Ok(Outcome::Failed) => Attempt::Retry("the transcoding pipeline failed".into()),
            Err(e) => Attempt::Retry(e.to_string()),
        }
    }
}

/// The transcode watchdog: stalled once the progress has not moved for `timeout`.
struct StallWatch {
    timeout: Duration,
    last: f64,
    since: Instant,
}

impl StallWatch {
    fn new(timeout: Duration, now: Instant) -> Self {
        Self { timeout, last: -1.0, since: now }
    }

    /// Records the progress seen at `now`; true when it has not changed for the timeout.
    fn stalled(&mut self, progress: f64, now: Instant) -> bool {
        if progress != self.last {
            self.last = progress;
            self.since = now;
            return false;
        }
        now.duration_since(self.since) >= self.timeout
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watchdog_fires_only_after_the_progress_stood_still_for_the_timeout() {
        let start = Instant::now();
        let at = |secs: u64| start + Duration::from_secs(secs);
        let mut watch = StallWatch::new(Duration::from_secs(120), start);
        // Stuck at 0 % from the start (the 1366-wide hang looked like this).
        assert!(!watch.stalled(0.0, at(0)));
        assert!(!watch.stalled(0.0, at(119)));
        assert!(watch.stalled(0.0, at(120)));
        // Progress, however slow, resets it.
        let mut watch = StallWatch::new(Duration::from_secs(120), start);
        for (i, secs) in (0..1000).step_by(100).enumerate() {
            assert!(!watch.stalled(i as f64 * 0.1, at(secs)), "moving at {secs} s");
        }
        assert!(!watch.stalled(0.9, at(1000)));
        assert!(watch.stalled(0.9, at(1020)));
    }
}
