//! Where segments, playlists, thumbnails, upload parts and sources are kept: an `object_store`
//! (local files under `<data_dir>/media` by default, or an S3-compatible bucket with `[storage]
//! url`) behind names Ferrocast chooses. Requests to a remote store are retried with backoff for
//! `storage.retry_timeout_secs` (a store that is away for a while delays writes, it does not lose
//! them).
//!
//! Keys are always built from parsed, validated parts (`{video_id}/{rendition}/{file}`), never from
//! raw request text, so nothing outside the media root can be named. Writes are atomic: a reader
//! sees a whole object or none.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::config::StorageConfig;
use crate::transient_buffer::transient_buffer;
use futures_util::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
/// What [`Storage::put`] takes: one `Bytes`, or several written back to back (`from_iter`).
pub use object_store::PutPayload;
use object_store::{BackoffConfig, ClientOptions, GetOptions, GetRange, ObjectStore, RetryConfig};

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
    description: String,
}

impl Storage {
    /// Local storage rooted at `root` (created if missing).
    pub fn local(root: &Path) -> Result<Storage, StorageError> {
        std::fs::create_dir_all(root)?;
        let store = LocalFileSystem::new_with_prefix(root)?;
        let root = root.canonicalize()?;
        Ok(Storage { store: Arc::new(store), description: root.display().to_string(), local_root: Some(root) })
    }

    /// The store `config` names: an S3-compatible bucket when `url` is set, otherwise local files
    /// under `local_root`.
    pub fn open(config: &StorageConfig, local_root: &Path) -> Result<Storage, StorageError> {
        let Some(url) = &config.url else { return Self::local(local_root) };
        let rest = url.strip_prefix("s3://").unwrap_or(url).trim_matches('/');
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        // object_store's default gives up after ten quick retries (about two seconds): too soon for
        // a store restarting. Retry, at most 2 s apart, for as long as the operator allows.
        let retry = RetryConfig {
            backoff: BackoffConfig { init_backoff: Duration::from_millis(100), max_backoff: Duration::from_secs(2), base: 2.0 },
            max_retries: usize::MAX,
            retry_timeout: Duration::from_secs(config.retry_timeout_secs),
        };
        // One attempt may take 30 s (a large part on a slow link), connecting 5 s; the retries
        // above bound the whole.
        // (Client options replace the builder's whole set, allow_http included: set it there.)
        let options = ClientOptions::new()
            .with_timeout(Duration::from_secs(30))
            .with_connect_timeout(Duration::from_secs(5))
            .with_allow_http(config.allow_http);
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket).with_retry(retry).with_client_options(options);
        if let Some(endpoint) = &config.endpoint {
            // Path-style requests (`endpoint/bucket/key`): what self-hosted stores expect.
            builder = builder.with_endpoint(endpoint).with_virtual_hosted_style_request(false);
        }
        if let Some(region) = &config.region {
            builder = builder.with_region(region);
        }
        let s3 = builder.build()?;
        let store: Arc<dyn ObjectStore> = match prefix.trim_matches('/') {
            "" => Arc::new(s3),
            prefix => Arc::new(PrefixStore::new(s3, prefix)),
        };
        Ok(Storage { store, local_root: None, description: format!("s3://{bucket}/{prefix}") })
    }

    /// What the store is, for logs: a directory or an `s3://` URL.
    pub fn describe(&self) -> &str {
        &self.description
    }

    /// Whether the store answers: a listing of one page under a name nothing uses.
    pub async fn check(&self) -> Result<(), StorageError> {
        let probe = ObjectPath::from("readyz");
        self.store.list_with_delimiter(Some(&probe)).await.map_err(classify)?;
        Ok(())
    }

    /// The key of a video's file: `video_id/name` or `video_id/rendition/name`.
    pub fn key(parts: &[&str]) -> ObjectPath {
        ObjectPath::from_iter(parts.iter().copied())
    }

    pub async fn put(&self, key: &ObjectPath, payload: impl Into<PutPayload>) -> Result<(), StorageError> {
        self.store.put(key, payload.into()).await.map_err(classify)?;
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
        loop {
            // A buffer of its own per part, handed to the upload without a copy; a transient one,
            // so that freeing 8 MiB does not retune malloc for the process (`transient_buffer`).
            let mut buffer = transient_buffer(PUT_CHUNK, 0u8);
            let filled = read_full(&mut file, &mut buffer).await?;
            if filled == 0 {
                break;
            }
            buffer.truncate(filled);
            if let Err(e) = upload.put_part(PutPayload::from(Bytes::from(buffer))).await {
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

    /// Appends the object at `key` to `out`, streamed a chunk at a time (never whole in memory).
    pub async fn append_to(&self, key: &ObjectPath, out: &mut tokio::fs::File) -> Result<u64, StorageError> {
        use tokio::io::AsyncWriteExt;
        let mut stream = self.store.get(key).await.map_err(classify)?.into_stream();
        let mut written = 0;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(classify)?;
            out.write_all(&chunk).await?;
            written += chunk.len() as u64;
        }
        Ok(written)
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

    /// What every backend must do alike.
    async fn store_read_and_delete(storage: &Storage, scratch: &Path) {
        let key = Storage::key(&["v1", "low", "00000001.ts"]);
        storage.put(&key, Bytes::from_static(b"0123456789")).await.expect("put");
        let whole = storage.get(&key, None).await.expect("get");
        assert_eq!(&whole.bytes[..], b"0123456789");
        assert_eq!(whole.info.size, 10);
        assert!(whole.info.e_tag.is_some());
        let part = storage.get(&key, Some(2..5)).await.expect("range");
        assert_eq!(&part.bytes[..], b"234");
        assert_eq!(storage.head(&key).await.expect("head").size, 10);
        assert!(matches!(storage.head(&Storage::key(&["v1", "missing"])).await, Err(StorageError::NotFound)));

        storage.put(&Storage::key(&["v1", "master.m3u8"]), Bytes::from_static(b"#EXTM3U\n")).await.expect("put");
        storage.put(&Storage::key(&["v2", "master.m3u8"]), Bytes::from_static(b"#EXTM3U\n")).await.expect("put");
        assert_eq!(storage.delete_prefix(&Storage::key(&["v1"])).await.expect("delete"), 2);
        assert!(matches!(storage.get(&key, None).await, Err(StorageError::NotFound)));
        assert!(storage.head(&Storage::key(&["v2", "master.m3u8"])).await.is_ok(), "other videos untouched");

        // A file larger than one multipart part, stored and read back streamed.
        let source = scratch.join("upload.bin");
        let content: Vec<u8> = (0..PUT_CHUNK + 12_345).map(|i| (i % 251) as u8).collect();
        std::fs::write(&source, &content).expect("write");
        let key = Storage::key(&["v3", SOURCE_FILE]);
        storage.put_file(&key, &source).await.expect("put file");
        assert!(!source.exists(), "consumed");
        let copy = scratch.join("copy.bin");
        let mut out = tokio::fs::File::create(&copy).await.expect("create");
        assert_eq!(storage.append_to(&key, &mut out).await.expect("download"), content.len() as u64);
        drop(out);
        assert!(std::fs::read(&copy).expect("read") == content, "the bytes survive the round trip");
        storage.check().await.expect("the store answers");
    }

    #[tokio::test]
    async fn local_files_under_the_data_dir() {
        let dir = crate::testing::TempDir::new();
        let storage = Storage::local(&dir.path().join("media")).expect("local storage");
        store_read_and_delete(&storage, dir.path()).await;
        let key = Storage::key(&["v4", "low", "00000001.m4s"]);
        storage.put(&key, Bytes::from_static(b"segment")).await.expect("put");
        assert!(dir.path().join("media/v4/low/00000001.m4s").exists(), "plain files on disk, browsable by operators");
        let source = dir.path().join("source.bin");
        std::fs::write(&source, b"the source").expect("write");
        let key = Storage::key(&["v5", SOURCE_FILE]);
        storage.put_file(&key, &source).await.expect("put file");
        assert_eq!(storage.local_path(&key).map(|p| std::fs::read(p).expect("read")), Some(b"the source".to_vec()), "moved into place");
    }

    #[tokio::test]
    async fn an_s3_bucket_with_a_prefix() {
        let dir = crate::testing::TempDir::new();
        let config = crate::testing::test_s3_config();
        let storage = Storage::open(&config, &dir.path().join("unused")).expect("s3 storage");
        assert!(storage.describe().starts_with("s3://ferrocast-test/test-"), "{}", storage.describe());
        assert!(storage.local_path(&Storage::key(&["v1", "x"])).is_none(), "nothing of a video is on this node's disk");
        store_read_and_delete(&storage, dir.path()).await;
        assert!(!dir.path().join("unused").exists());
    }
}
