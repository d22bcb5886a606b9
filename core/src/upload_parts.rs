//! Where the parts of an unfinished upload wait, and how they become the source.
//!
//! A part is received into a staging file on the receiving node (`<uploads_dir>/<upload_id>/`),
//! checked against its length and digest, then stored as `uploads/<upload_id>/NNNNNN.part` in
//! storage (moved on local storage, uploaded to a bucket): so any node may receive any part, and
//! the worker that later claims the transcode job, on whatever node, finds them all. The worker
//! concatenates them into the source, stores it and removes the parts. Assembly is a job step,
//! not a request step: a large upload takes longer to copy than any request timeout.

use std::path::{Path, PathBuf};

use crate::storage::{ObjectKey, Storage, StorageError};

/// The top-level storage folder of upload parts (video ids are hex, so it never names a video).
const UPLOADS_PREFIX: &str = "uploads";

/// The node-local directory where one upload's parts are received before they are stored.
pub fn staging_dir(uploads_dir: &Path, upload_id: &str) -> PathBuf {
    uploads_dir.join(upload_id)
}

/// The storage key of part `n` (1-based) of an upload.
pub fn part_key(upload_id: &str, n: i64) -> ObjectKey {
    Storage::key(&[UPLOADS_PREFIX, upload_id, &format!("{n:06}.part")])
}

/// Concatenates parts `1..=part_count`, in order and streamed, into `target` (created anew),
/// synced to disk before it returns. A missing part is [`StorageError::NotFound`].
pub async fn assemble(storage: &Storage, upload_id: &str, part_count: i64, target: &Path) -> Result<(), StorageError> {
    let mut out = tokio::fs::File::create(target).await?;
    for n in 1..=part_count {
        storage.append_to(&part_key(upload_id, n), &mut out).await?;
    }
    out.sync_all().await?;
    Ok(())
}

/// Removes an upload's parts: those stored and whatever this node still stages.
pub async fn remove(storage: &Storage, uploads_dir: &Path, upload_id: &str) {
    if let Err(e) = storage.delete_prefix(&Storage::key(&[UPLOADS_PREFIX, upload_id])).await {
        tracing::warn!(%upload_id, error = %e, "could not remove an upload's stored parts");
    }
    match tokio::fs::remove_dir_all(staging_dir(uploads_dir, upload_id)).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(%upload_id, error = %e, "could not remove an upload's staged parts"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[tokio::test]
    async fn parts_are_joined_in_order_and_removed() {
        let dir = crate::testing::TempDir::new();
        let storage = Storage::local(&dir.path().join("media")).expect("storage");
        // Stored out of order, as parallel uploads arrive.
        for (n, bytes) in [(3, &b"!"[..]), (1, b"hello "), (2, b"world")] {
            storage.put(&part_key("u1", n), Bytes::copy_from_slice(bytes)).await.expect("part");
        }
        let target = dir.path().join("source");
        assemble(&storage, "u1", 3, &target).await.expect("assemble");
        assert_eq!(std::fs::read(&target).expect("read"), b"hello world!");
        assert!(matches!(assemble(&storage, "u1", 4, &dir.path().join("other")).await, Err(StorageError::NotFound)));
        let uploads_dir = dir.path().join("uploads");
        std::fs::create_dir_all(staging_dir(&uploads_dir, "u1")).expect("staging");
        remove(&storage, &uploads_dir, "u1").await;
        assert!(storage.head(&part_key("u1", 1)).await.is_err());
        assert!(!staging_dir(&uploads_dir, "u1").exists());
        remove(&storage, &uploads_dir, "u1").await;
    }
}
