//! Uploading files to the real server as a resumable client does: create, parts with their
//! digests, complete.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::Server;

/// A real MP4 (H.264 + AAC) made with ffmpeg.
pub fn make_mp4(dir: &Path, name: &str, width: u32, height: u32, seconds: u32) -> PathBuf {
    make_clip(dir, name, &format!("testsrc2=size={width}x{height}:rate=30"), seconds, &[])
}

/// An H.264 + AAC clip of `seconds` from the lavfi `video` source (with a 330 Hz tone), with
/// `extra` output options before the file name (`-vf setsar=64/45`, `-ac 6`).
pub fn make_clip(dir: &Path, name: &str, video: &str, seconds: u32, extra: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", video])
        .args(["-f", "lavfi", "-i", "sine=frequency=330:sample_rate=48000"])
        .args(["-t", &seconds.to_string(), "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"])
        .args(["-c:a", "aac", "-movflags", "+faststart"])
        .args(extra)
        .arg(&path)
        .status()
        .expect("ffmpeg");
    assert!(status.success());
    path
}

pub fn digest(bytes: &[u8]) -> String {
    format!("sha-256=:{}:", base64::engine::general_purpose::STANDARD.encode(Sha256::digest(bytes)))
}

pub struct Uploader<'a> {
    pub server: &'a Server,
    pub token: String,
}

impl Uploader<'_> {
    pub async fn create(&self, channel: &str, filename: &str, size: usize) -> (u16, Value) {
        let response = self
            .server
            .client
            .post(self.server.url("/api/uploads"))
            .bearer_auth(&self.token)
            .json(&json!({"channel": channel, "filename": filename, "size": size, "title": format!("Upload of {filename}")}))
            .send()
            .await
            .expect("create upload");
        (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
    }

    pub async fn put(&self, id: &str, n: usize, bytes: &[u8], digest_header: &str) -> u16 {
        self.server
            .client
            .put(self.server.url(&format!("/api/uploads/{id}/parts/{n}")))
            .bearer_auth(&self.token)
            .header("content-digest", digest_header)
            .body(bytes.to_vec())
            .send()
            .await
            .expect("put part")
            .status()
            .as_u16()
    }

    pub async fn status(&self, id: &str) -> Value {
        self.server
            .client
            .get(self.server.url(&format!("/api/uploads/{id}")))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json")
    }

    pub async fn complete(&self, id: &str) -> (u16, Value) {
        let response = self
            .server
            .client
            .post(self.server.url(&format!("/api/uploads/{id}/complete")))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("complete");
        (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
    }

    /// Uploads a whole file in order and completes it; returns the video id.
    pub async fn upload(&self, channel: &str, path: &Path) -> String {
        let bytes = std::fs::read(path).expect("read");
        let name = path.file_name().and_then(|n| n.to_str()).expect("name");
        let (status, created) = self.create(channel, name, bytes.len()).await;
        assert_eq!(status, 201, "{created}");
        let id = created["id"].as_str().expect("id").to_string();
        let part_size = created["part_size"].as_u64().expect("part size") as usize;
        for (i, chunk) in bytes.chunks(part_size).enumerate() {
            assert_eq!(self.put(&id, i + 1, chunk, &digest(chunk)).await, 200);
        }
        let (status, completed) = self.complete(&id).await;
        assert_eq!(status, 202, "{completed}");
        completed["video_id"].as_str().expect("video id").to_string()
    }
}
