//! Where segments, playlists and thumbnails are kept: an `object_store` (local files under
//! `<data_dir>/media` by default; S3-compatible stores later) behind names Ferrocast chooses.
//!
//! Keys are always built from parsed, validated parts (`{video_id}/{rendition}/{file}`), never from
//! raw request text, so nothing outside the media root can be named. Writes are atomic: a reader
//! sees a whole object or none.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, ObjectStore, PutPayload};

/// An uploaded video's original file, beside its renditions. The dot keeps it from ever being a
/// rendition name (those are `[a-z0-9_-]`), and the origin never serves it.
pub const SOURCE_FILE: &str = "source.original";

/// The name of an object in storage, built with [`Storage::key`].
pub type ObjectKey = ObjectPath;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("not found")]
    NotFound,
    #[error("storage error: {0}")]
    Store(#[from] object_store::Error),
    #[error("storage I/O error: {0}")]
    Io(#[from] std::io::Error),
}

fn classify(err: object_store::Error) -> StorageError {
    match err {
        object_store::Error::NotFound { .. } => StorageError::NotFound,
        other => StorageError::Store(other),
    }
}

/// What an object is, without its bytes.
#[derive(Clone, Debug)]
pub struct ObjectInfo {
    pub size: u64,
    pub e_tag: Option<String>,
    pub last_modified: chrono::DateTime<chrono::Utc>,
}

/// An object's bytes (the whole or a range) and its metadata.
pub struct Object {
    pub bytes: Bytes,
    pub info: ObjectInfo,
}

#[derive(Clone, Debug)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    /// The directory behind a local store: big files are moved in rather than copied.
    local_root: Option<std::path::PathBuf>,
}

impl Storage {
    /// Local storage rooted at `root` (created if missing).
    pub fn local(root: &Path) -> Result<Storage, StorageError> {
        std::fs::create_dir_all(root)?;
        let store = LocalFileSystem::new_with_prefix(root)?;
        Ok(Storage { store: Arc::new(store), local_root: Some(root.canonicalize()?) })
    }

    /// The key of a video's file: `video_id/name` or `video_id/rendition/name`.
    pub fn key(parts: &[&str]) -> ObjectPath {
        ObjectPath::from_iter(parts.iter().copied())
    }

    pub async fn put(&self, key: &ObjectPath, bytes: Bytes) -> Result<(), StorageError> {
        self.store.put(key, PutPayload::from_bytes(bytes)).await.map_err(classify)?;
        Ok(())
    }

    /// Stores the file at `path` under `key`, consuming it, without reading it into memory: moved
    /// into place on local storage, streamed in parts otherwise.
    pub async fn put_file(&self, key: &ObjectPath, path: &Path) -> Result<(), StorageError> {
        if let Some(root) = &self.local_root {
            let target = key.parts().fold(root.clone(), |dir, part| dir.join(part.as_ref()));
            if let Some(parent) = target.parent() {
                tokio::fs::create_dir_all(parent).await?;
            }
            if tokio::fs::rename(path, &target).await.is_ok() {
                return Ok(());
            }
        }
        // Another filesystem or a remote store: stream it in chunks.
        let mut upload = self.store.put_multipart(key).await.map_err(classify)?;
        let mut file = tokio::fs::File::open(path).await?;
        let mut buffer = vec![0u8; PUT_CHUNK];
        loop {
            let filled = read_full(&mut file, &mut buffer).await?;
            if filled == 0 {
                break;
            }
            if let Err(e) = upload.put_part(PutPayload::from(Bytes::copy_from_slice(&buffer[..filled]))).await {
                let _ = upload.abort().await;
                return Err(classify(e));
            }
        }
        upload.complete().await.map_err(classify)?;
        let _ = tokio::fs::remove_file(path).await;
        Ok(())
    }

    /// A path to read `key` from directly, when the store is local (GStreamer reads files).
    pub fn local_path(&self, key: &ObjectPath) -> Option<std::path::PathBuf> {
        self.local_root.as_ref().map(|root| key.parts().fold(root.clone(), |dir, part| dir.join(part.as_ref())))
    }

    /// Reads the whole object, or `range` of it.
    pub async fn get(&self, key: &ObjectPath, range: Option<Range<u64>>) -> Result<Object, StorageError> {
        let options = GetOptions { range: range.map(GetRange::Bounded), ..GetOptions::default() };
        let result = self.store.get_opts(key, options).await.map_err(classify)?;
        let meta = result.meta.clone();
        let bytes = result.bytes().await.map_err(classify)?;
        Ok(Object { bytes, info: ObjectInfo { size: meta.size, e_tag: meta.e_tag, last_modified: meta.last_modified } })
    }

    pub async fn head(&self, key: &ObjectPath) -> Result<ObjectInfo, StorageError> {
        let meta = self.store.head(key).await.map_err(classify)?;
        Ok(ObjectInfo { size: meta.size, e_tag: meta.e_tag, last_modified: meta.last_modified })
    }

    /// Deletes every object under `prefix` (a whole video). Missing objects are not an error.
    pub async fn delete_prefix(&self, prefix: &ObjectPath) -> Result<usize, StorageError> {
        let mut listing = self.store.list(Some(prefix));
        let mut deleted = 0;
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(classify)?;
            match self.store.delete(&meta.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => deleted += 1,
                Err(e) => return Err(classify(e)),
            }
        }
        Ok(deleted)
    }
}

/// Part size for streamed uploads to remote stores (S3 needs ≥ 5 MiB parts).
const PUT_CHUNK: usize = 8 << 20;

/// Fills `buffer` from `file` unless the file ends first; returns how much was read.
async fn read_full(file: &mut tokio::fs::File, buffer: &mut [u8]) -> std::io::Result<usize> {
    use tokio::io::AsyncReadExt;
    let mut filled = 0;
    while filled < buffer.len() {
        let n = file.read(&mut buffer[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_get_range_head_and_delete_a_video() {
        let dir = crate::testing::TempDir::new();
        let storage = Storage::local(dir.path()).expect("local storage");
        let key = Storage::key(&["v1", "low", "00000001.ts"]);
        storage.put(&key, Bytes::from_static(b"0123456789")).await.expect("put");
        assert!(dir.path().join("v1/low/00000001.ts").exists(), "plain files on disk, browsable by operators");

        let whole = storage.get(&key, None).await.expect("get");
        assert_eq!(&whole.bytes[..], b"0123456789");
        assert_eq!(whole.info.size, 10);
        assert!(whole.info.e_tag.is_some());
        let part = storage.get(&key, Some(2..5)).await.expect("range");
        assert_eq!(&part.bytes[..], b"234");
        assert_eq!(storage.head(&key).await.expect("head").size, 10);

        storage.put(&Storage::key(&["v1", "master.m3u8"]), Bytes::from_static(b"#EXTM3U\n")).await.expect("put");
        storage.put(&Storage::key(&["v2", "master.m3u8"]), Bytes::from_static(b"#EXTM3U\n")).await.expect("put");
        assert_eq!(storage.delete_prefix(&Storage::key(&["v1"])).await.expect("delete"), 2);
        assert!(matches!(storage.get(&key, None).await, Err(StorageError::NotFound)));
        assert!(storage.head(&Storage::key(&["v2", "master.m3u8"])).await.is_ok(), "other videos untouched");

        let source = dir.path().join("upload.bin");
        std::fs::write(&source, b"the source").expect("write");
        let key = Storage::key(&["v3", SOURCE_FILE]);
        storage.put_file(&key, &source).await.expect("put file");
        assert!(!source.exists(), "moved, not copied");
        assert_eq!(&storage.get(&key, None).await.expect("get").bytes[..], b"the source");
        assert_eq!(storage.local_path(&key).map(|p| std::fs::read(p).expect("read")), Some(b"the source".to_vec()));
    }
}
