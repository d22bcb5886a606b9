//! Uploads and the job queue, on a fresh SQLite database and a fresh Postgres database.

use std::time::Duration;

use ferrocast_core::both_engines;
use ferrocast_core::db::jobs::{self, AfterFailure, JobStatus, TRANSCODE_UPLOAD};
use ferrocast_core::db::uploads::{self, NewUpload, UploadStatus};
use ferrocast_core::db::videos::{self, NewVideo, VideoKind, VideoStatus, Visibility};
use ferrocast_core::db::{channels, users};
use ferrocast_core::testing::TestDb;
use ferrocast_core::Db;

async fn channel(db: &Db) -> (users::User, channels::Channel) {
    let user = users::create(db, "alice", "alice@example.com", "$argon2id$fake").await.expect("user");
    let channel = channels::create(db, &user.id, "alice-live", "Alice", "", "hash").await.expect("channel");
    (user, channel)
}

async fn video(db: &Db, channel_id: &str) -> videos::Video {
    let new = NewVideo {
        channel_id,
        kind: VideoKind::Upload,
        status: VideoStatus::Processing,
        title: "up",
        description: "",
        visibility: Visibility::Public,
    };
    videos::create(db, new).await.expect("video")
}

both_engines!(uploads_track_parts_and_close_once, |t: TestDb| async move {
    let db = &t.db;
    let (user, channel) = channel(db).await;
    let expires = chrono::Utc::now() + chrono::Duration::hours(1);
    let new = |size| NewUpload {
        user_id: &user.id,
        channel_id: &channel.id,
        filename: "clip.mp4",
        size,
        part_size: 10,
        title: "Clip",
        description: "",
        visibility: Visibility::Unlisted,
        expires_at: expires,
    };
    let upload = uploads::create(db, new(25)).await.expect("create");
    assert_eq!((upload.part_count, upload.status, upload.visibility), (3, UploadStatus::Open, Visibility::Unlisted));
    assert_eq!([upload.expected_part_len(1), upload.expected_part_len(3), upload.expected_part_len(4)], [Some(10), Some(5), None]);
    assert_eq!(uploads::count_open(db, &user.id).await.expect("count"), 1);

    uploads::put_part(db, &upload.id, 3, 5, "c").await.expect("part 3");
    uploads::put_part(db, &upload.id, 1, 10, "a").await.expect("part 1");
    uploads::put_part(db, &upload.id, 1, 10, "a2").await.expect("part 1 again is safe");
    assert_eq!(uploads::parts(db, &upload.id).await.expect("parts"), vec![1, 3]);

    let v = video(db, &channel.id).await;
    assert!(uploads::close(db, &upload.id, UploadStatus::Completed, Some(&v.id)).await.expect("close"));
    assert!(!uploads::close(db, &upload.id, UploadStatus::Aborted, None).await.expect("second close"), "closes once");
    let closed = uploads::find(db, &upload.id).await.expect("find").expect("exists");
    assert_eq!((closed.status, closed.video_id.as_deref()), (UploadStatus::Completed, Some(v.id.as_str())));
    assert_eq!(uploads::count_open(db, &user.id).await.expect("count"), 0);

    let stale =
        uploads::create(db, NewUpload { expires_at: chrono::Utc::now() - chrono::Duration::seconds(1), ..new(5) }).await.expect("create");
    assert_eq!(uploads::expired(db, chrono::Utc::now()).await.expect("expired"), vec![stale.id]);
});

both_engines!(jobs_are_claimed_once_renewed_retried_and_failed, |t: TestDb| async move {
    let db = &t.db;
    let (_, channel) = channel(db).await;
    let v = video(db, &channel.id).await;
    let lease = Duration::from_secs(60);
    // An idle worker of this process waits on `queued` between polls: queuing wakes it.
    let queued = jobs::queued();
    tokio::pin!(queued);
    queued.as_mut().enable();
    let job = jobs::enqueue(db, TRANSCODE_UPLOAD, Some(&v.id), "{}", 2).await.expect("enqueue");
    assert_eq!((job.status, job.attempts), (JobStatus::Queued, 0));
    assert!(futures_util::FutureExt::now_or_never(queued).is_some(), "a waiting worker is woken by the job");

    let claimed = jobs::claim(db, "worker-a", lease).await.expect("claim").expect("a job");
    assert_eq!((claimed.id.as_str(), claimed.status, claimed.attempts), (job.id.as_str(), JobStatus::Running, 1));
    assert!(jobs::claim(db, "worker-b", lease).await.expect("claim").is_none(), "a leased job is not claimed twice");
    assert!(jobs::renew(db, &job.id, "worker-a", lease, 40.0).await.expect("renew"));
    assert!(!jobs::renew(db, &job.id, "worker-b", lease, 40.0).await.expect("renew"), "only the lease owner renews");
    assert_eq!(jobs::for_video(db, &v.id).await.expect("for video").map(|j| j.progress), Some(40.0));

    // A failed attempt is retried after the backoff, not before.
    let after = jobs::fail(db, &claimed, "worker-a", "decoder crashed", false, Duration::from_secs(3600)).await.expect("fail");
    assert!(matches!(after, AfterFailure::Retrying { .. }), "{after:?}");
    assert!(jobs::claim(db, "worker-a", lease).await.expect("claim").is_none(), "backoff not over");

    // A worker that dies: its lease expires and another worker takes the job over.
    let other = jobs::enqueue(db, TRANSCODE_UPLOAD, Some(&v.id), "{}", 3).await.expect("enqueue");
    let taken = jobs::claim(db, "worker-a", Duration::from_millis(1)).await.expect("claim").expect("job");
    assert_eq!(taken.id, other.id);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let retaken = jobs::claim(db, "worker-b", lease).await.expect("claim").expect("the expired lease is claimed again");
    assert_eq!((retaken.id.as_str(), retaken.attempts), (other.id.as_str(), 2));
    assert!(!jobs::renew(db, &other.id, "worker-a", lease, 50.0).await.expect("renew"), "the dead worker lost it");
    assert!(jobs::complete(db, &other.id, "worker-b").await.expect("complete"));
    assert_eq!(jobs::find(db, &other.id).await.expect("find").map(|j| (j.status, j.progress)), Some((JobStatus::Done, 100.0)));

    // A permanent failure fails at once, whatever attempts remain.
    let bad = jobs::enqueue(db, TRANSCODE_UPLOAD, Some(&v.id), "{}", 5).await.expect("enqueue");
    let claimed_bad = jobs::claim(db, "worker-a", lease).await.expect("claim").expect("job");
    assert_eq!(claimed_bad.id, bad.id);
    let after = jobs::fail(db, &claimed_bad, "worker-a", "no decodable video stream", true, Duration::ZERO).await.expect("fail");
    assert_eq!(after, AfterFailure::Failed);
    let failed = jobs::find(db, &bad.id).await.expect("find").expect("exists");
    assert_eq!((failed.status, failed.error.as_deref()), (JobStatus::Failed, Some("no decodable video stream")));

    // Deleting the video deletes its jobs: a worker renewing one learns to stop.
    let last = jobs::enqueue(db, TRANSCODE_UPLOAD, Some(&v.id), "{}", 1).await.expect("enqueue");
    let running = jobs::claim(db, "worker-a", lease).await.expect("claim").expect("job");
    assert_eq!(running.id, last.id);
    videos::delete(db, &v.id).await.expect("delete video");
    assert!(!jobs::renew(db, &last.id, "worker-a", lease, 10.0).await.expect("renew"));
});
