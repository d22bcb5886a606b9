//! A response body that is a range of an open file, named beside the body itself so that a writer
//! able to send files (`src/hls_connection.rs`, with `sendfile(2)`) can skip copying the bytes
//! through memory. The response still carries the same bytes as its ordinary body, for hyper and
//! for anything else that reads it.

use std::fs::File;
use std::ops::Range;
use std::sync::Arc;

use axum::response::Response;

/// Segments smaller than this are written from memory: one `write` costs less than a `sendfile`
/// after the head.
pub const MIN_FILE_BODY_BYTES: usize = 32 << 10;

/// The body of the response it is attached to, as `range` of `file`.
#[derive(Clone)]
pub struct FileBody {
    pub file: Arc<File>,
    pub range: Range<u64>,
}

impl FileBody {
    /// Marks `response`'s body as `range` of `file`.
    pub fn attach(response: &mut Response, file: Arc<File>, range: Range<u64>) {
        response.extensions_mut().insert(FileBody { file, range });
    }

    /// The file body of `response`, if it has one.
    pub fn of(response: &Response) -> Option<&FileBody> {
        response.extensions().get::<FileBody>()
    }
}

/// `path` opened, if it holds `len` bytes (the object just read from it, which never changes once
/// written; a length that differs means it was replaced meanwhile and is not the same object).
pub async fn open_matching(path: std::path::PathBuf, len: usize) -> Option<File> {
    let file = tokio::fs::File::open(path).await.ok()?;
    let size = file.metadata().await.ok()?.len();
    (size == len as u64).then_some(())?;
    Some(file.into_std().await)
}
