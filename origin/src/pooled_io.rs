//! The origin's round trips through the node's connection pools (the database, storage, other
//! nodes), run on the shared runtime whichever thread the request is answered on.
//!
//! Viewers' requests are answered on viewer threads (`src/hls_loops.rs`), each a runtime with a
//! reactor of its own. A pooled connection opened from one of them — a Postgres connection, an
//! HTTP connection to S3 or to another node — would stay registered with that thread's reactor
//! for as long as the pool keeps it, so that the API's and ingest's later queries on it would
//! wait whenever that viewer thread is busy. What comes here is a cache miss (a video row once a
//! second, a segment once) or a read that is never cached (a part of a completed segment, a
//! thumbnail), each already a storage or database round trip: the hop adds one task spawn to it.

use std::future::Future;
use std::ops::Range;

use ferrocast_core::storage::{Object, ObjectInfo, ObjectKey, Storage, StorageError};
use ferrocast_core::Db;
use tokio::runtime::Handle;

/// The shared runtime, and the pools whose connections live there.
#[derive(Clone)]
pub struct PooledIo {
    pub runtime: Handle,
    pub db: Db,
    pub storage: Storage,
}

impl PooledIo {
    /// `io`'s result, having run it on the shared runtime.
    pub async fn run<T: Send + 'static>(&self, io: impl Future<Output = T> + Send + 'static) -> T {
        match self.runtime.spawn(io).await {
            Ok(value) => value,
            Err(e) => match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                // Cancelled: the shared runtime is shutting down, and with it the process; the
                // request is never answered.
                Err(_) => std::future::pending().await,
            },
        }
    }

    /// [`Storage::get`] on the shared runtime.
    pub async fn get(&self, key: &ObjectKey, range: Option<Range<u64>>) -> Result<Object, StorageError> {
        let (storage, key) = (self.storage.clone(), key.clone());
        self.run(async move { storage.get(&key, range).await }).await
    }

    /// [`Storage::head`] on the shared runtime.
    pub async fn head(&self, key: &ObjectKey) -> Result<ObjectInfo, StorageError> {
        let (storage, key) = (self.storage.clone(), key.clone());
        self.run(async move { storage.head(&key).await }).await
    }
}
