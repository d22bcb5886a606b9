//! Where the parts of an unfinished upload wait on the node's disk, and how they become the source.
//!
//! The API writes parts into `<uploads_dir>/<upload_id>/NNNNNN.part`; once the upload is
//! completed, the worker that claims its transcode job concatenates them into the source, stores it
//! and removes the directory. Assembly is a job step, not a request step: a large upload takes
//! longer to copy than any request timeout.

use std::path::{Path, PathBuf};

/// The directory holding one upload's parts.
pub fn upload_dir(uploads_dir: &Path, upload_id: &str) -> PathBuf {
    uploads_dir.join(upload_id)
}

/// Part `n` (1-based) of the upload whose directory is `dir`.
pub fn part_path(dir: &Path, n: i64) -> PathBuf {
    dir.join(format!("{n:06}.part"))
}

/// Concatenates parts `1..=part_count` of `dir`, in order and a buffer at a time, into `target`,
/// synced to disk before it returns.
pub async fn assemble(dir: &Path, part_count: i64, target: &Path) -> std::io::Result<()> {
    let mut out = tokio::fs::File::create(target).await?;
    for n in 1..=part_count {
        let mut part = tokio::fs::File::open(part_path(dir, n)).await?;
        tokio::io::copy(&mut part, &mut out).await?;
    }
    out.sync_all().await
}

/// Removes an upload's parts, if any are left.
pub async fn remove(uploads_dir: &Path, upload_id: &str) {
    match tokio::fs::remove_dir_all(upload_dir(uploads_dir, upload_id)).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(%upload_id, error = %e, "could not remove an upload's parts"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn parts_are_joined_in_order() {
        let root = std::env::temp_dir().join(format!("ferrocast-parts-{}", crate::ids::new_id()));
        let dir = upload_dir(&root, "u1");
        std::fs::create_dir_all(&dir).expect("dir");
        // Written out of order, as parallel uploads arrive.
        for (n, bytes) in [(3, &b"!"[..]), (1, b"hello "), (2, b"world")] {
            std::fs::write(part_path(&dir, n), bytes).expect("part");
        }
        let target = dir.join("source");
        assemble(&dir, 3, &target).await.expect("assemble");
        assert_eq!(std::fs::read(&target).expect("read"), b"hello world!");
        assert!(assemble(&dir, 4, &dir.join("other")).await.is_err(), "a missing part is an error");
        remove(&root, "u1").await;
        assert!(!dir.exists());
        remove(&root, "u1").await;
        let _ = std::fs::remove_dir_all(root);
    }
}
