//! Starting the real `ferrocast` binary for end-to-end tests, and talking to it like a user would.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub mod events;
pub mod mail;
pub mod rtmp_publisher;
pub mod uploader;

pub const BIN: &str = env!("CARGO_BIN_EXE_ferrocast");

pub struct Server {
    child: Child,
    pub http: String,
    pub rtmp: String,
    /// The RTMPS listener's address, when the server was started with one.
    pub rtmps: Option<String>,
    pub data_dir: PathBuf,
    lines: mpsc::Receiver<String>,
    pub client: reqwest::Client,
}

/// A fresh data dir under the system temp dir, removed when dropped.
pub struct DataDir(pub PathBuf);

impl DataDir {
    pub fn new() -> DataDir {
        DataDir(std::env::temp_dir().join(format!("ferrocast-e2e-{}", ferrocast_core::ids::new_id())))
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The binary with none of the test runner's own `FERROCAST_*` settings: each test sets exactly the
/// ones it means (a `FERROCAST_DATABASE_URL` in the developer's shell must not leak in).
pub fn ferrocast() -> Command {
    let mut command = Command::new(BIN);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("FERROCAST_") {
            command.env_remove(name);
        }
    }
    command
}

impl Server {
    /// Starts `ferrocast serve` on ephemeral ports with `env` on top of a clean environment and
    /// waits for the line that says where it listens.
    pub fn start(data_dir: &Path, env: &[(&str, &str)]) -> Server {
        let mut command = ferrocast();
        command.arg("serve");
        command
            .env("FERROCAST_HTTP_ADDR", "127.0.0.1:0")
            .env("FERROCAST_RTMP_ADDR", "127.0.0.1:0")
            .env("FERROCAST_DATA_DIR", data_dir)
            .env("FERROCAST_LOG_FORMAT", "json")
            .env(CPU_AWARE_LADDER.0, "false")
            .envs(env.iter().copied())
            // Started from elsewhere than the checkout, as an installed binary is: what it serves
            // must not depend on files beside the working directory.
            .current_dir(std::env::temp_dir())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn ferrocast");
        let stderr = child.stderr.take().expect("stderr");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if std::env::var_os("FERROCAST_TEST_SHOW_LOGS").is_some() {
                    eprintln!("server: {line}");
                }
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Server {
            child,
            http: String::new(),
            rtmp: String::new(),
            rtmps: None,
            data_dir: data_dir.to_path_buf(),
            lines,
            client: reqwest::Client::new(),
        };
        let listening = server.wait_for_line(|l| l.contains("ferrocast listening"));
        let event: Value = serde_json::from_str(&listening).expect("JSON log line");
        server.http = format!("http://{}", event["http"].as_str().expect("http address"));
        // Absent when the server runs without the ingest role.
        server.rtmp = event["rtmp"].as_str().unwrap_or_default().to_string();
        server.rtmps = event["rtmps"].as_str().map(str::to_string);
        server
    }

    /// The next log line (JSON) matching `matches`, waiting up to a minute.
    pub fn wait_for_line(&mut self, matches: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if matches(&line) => return line,
                Ok(_) => {}
                Err(e) => panic!("ferrocast did not print the expected line: {e}"),
            }
        }
    }

    /// Resident memory of the server process, in bytes (from /proc).
    pub fn rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("/proc status");
        let kb =
            status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
        kb.expect("VmRSS") * 1024
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.http)
    }

    pub fn rtmp_url(&self, key: &str) -> String {
        format!("rtmp://{}/live/{key}", self.rtmp)
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let response = self.client.get(self.url(path)).send().await.expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let response = self.client.get(self.url(path)).send().await.expect("request");
        (response.status().as_u16(), response.text().await.unwrap_or_default())
    }

    /// Signs up `username`, logs in, creates channel `slug`; returns (access token, stream key).
    pub async fn streamer(&self, username: &str, slug: &str) -> (String, String) {
        let password = "a long password";
        let signup = self
            .client
            .post(self.url("/api/auth/signup"))
            .json(&json!({"username": username, "email": format!("{username}@example.com"), "password": password}))
            .send()
            .await
            .expect("signup");
        assert_eq!(signup.status(), 201);
        let login: Value = self
            .client
            .post(self.url("/api/auth/login"))
            .json(&json!({"username_or_email": username, "password": password}))
            .send()
            .await
            .expect("login")
            .json()
            .await
            .expect("json");
        let token = login["access_token"].as_str().expect("token").to_string();
        let channel: Value = self
            .client
            .post(self.url("/api/channels"))
            .bearer_auth(&token)
            .json(&json!({"slug": slug, "title": format!("{username} live")}))
            .send()
            .await
            .expect("channel")
            .json()
            .await
            .expect("json");
        (token, channel["stream_key"].as_str().expect("stream key").to_string())
    }

    /// Polls `GET /api/channels/{slug}` until the channel is live; returns the live video id.
    pub async fn wait_until_live(&self, slug: &str) -> String {
        self.poll(Duration::from_secs(30), || async {
            let (_, channel) = self.get_json(&format!("/api/channels/{slug}")).await;
            channel["live_video_id"].as_str().map(str::to_string)
        })
        .await
        .unwrap_or_else(|| panic!("{slug} never went live"))
    }

    /// Polls until the video's status is `status`; returns the video.
    pub async fn wait_for_status(&self, video_id: &str, status: &str, within: Duration) -> Value {
        self.poll(within, || async {
            let (_, video) = self.get_json(&format!("/api/videos/{video_id}")).await;
            (video["status"] == status).then_some(video)
        })
        .await
        .unwrap_or_else(|| panic!("video {video_id} never became {status}; the server's last lines:\n{}", self.recent_lines(40)))
    }

    /// Up to `count` of the server's log lines not read yet (the newest), for a failure message.
    pub fn recent_lines(&self, count: usize) -> String {
        let lines: Vec<String> = self.lines.try_iter().collect();
        lines[lines.len().saturating_sub(count)..].join("\n")
    }

    /// Polls until `path` answers 200 with a body containing `needle`; returns the body.
    pub async fn wait_for_text(&self, path: &str, needle: &str, within: Duration) -> String {
        self.poll(within, || async {
            let (status, body) = self.get_text(path).await;
            (status == 200 && body.contains(needle)).then_some(body)
        })
        .await
        .unwrap_or_else(|| panic!("{path} never contained {needle:?}"))
    }

    pub async fn poll<T, F, Fut>(&self, within: Duration, mut check: F) -> Option<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(value) = check().await {
                return Some(value);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        None
    }

    /// SIGKILL: the process dies without any chance to clean up, as in a crash.
    pub fn crash(mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("wait");
    }

    /// SIGTERM, then waits for the clean-shutdown line and the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).expect("pid fits in pid_t"));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("send SIGTERM");
        self.wait_for_line(|l| l.contains("shut down cleanly"));
        self.child.wait().expect("wait")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// ffmpeg publishing a synthetic source in real time: H.264 High with B-frames and AAC.
pub fn ffmpeg_publish(url: &str, width: u32, height: u32, seconds: u32) -> Child {
    ffmpeg_publish_with(url, width, height, seconds, &[])
}

/// [`ffmpeg_publish`] with `output_options` right before the URL (`-tls_verify 0` for rtmps).
pub fn ffmpeg_publish_with(url: &str, width: u32, height: u32, seconds: u32, output_options: &[&str]) -> Child {
    Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", &format!("testsrc2=size={width}x{height}:rate=30")])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &seconds.to_string()])
        .args(["-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high", "-bf", "2", "-g", "60", "-pix_fmt", "yuv420p"])
        .args(["-c:a", "aac", "-b:a", "128k", "-f", "flv"])
        .args(output_options)
        .arg(url)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ffmpeg (installed by make test)")
}

/// What ffprobe decodes from an HLS playlist URL: (width, height, duration seconds, decoded frames).
pub fn probe(url: &str) -> (u64, u64, f64, u64) {
    probe_frames(url, &[])
}

/// [`probe`] of the first `frames` frames only: ffprobe would otherwise follow a live playlist to
/// its end. The duration is the container's, not the decoded part's.
pub fn probe_live(url: &str, frames: u32) -> (u64, u64, f64, u64) {
    probe_frames(url, &["-read_intervals", &format!("%+#{frames}")])
}

fn probe_frames(url: &str, extra: &[&str]) -> (u64, u64, f64, u64) {
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args(extra)
        .args(["-show_entries", "stream=width,height,nb_read_frames:format=duration", "-of", "json", url])
        .output()
        .expect("ffprobe");
    assert!(output.status.success(), "ffprobe failed on {url}: {}", String::from_utf8_lossy(&output.stderr));
    let probed: Value = serde_json::from_slice(&output.stdout).expect("ffprobe json");
    let stream = &probed["streams"][0];
    let number = |v: &Value| v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok())).unwrap_or(0);
    let duration = probed["format"]["duration"].as_str().and_then(|d| d.parse().ok()).unwrap_or(0.0);
    (number(&stream["width"]), number(&stream["height"]), duration, number(&stream["nb_read_frames"]))
}

/// EXTINF durations of a media playlist.
pub fn segment_durations(playlist: &str) -> Vec<f64> {
    playlist.lines().filter_map(|l| l.strip_prefix("#EXTINF:")).filter_map(|l| l.trim_end_matches(',').parse().ok()).collect()
}

/// Encoder queues deep enough that a test sharing two cores with the rest of the suite drops no
/// frames in front of the encoders, so a frame count checks the ladder, not the machine's load
/// (live drops under load by design; bench/ measures that).
pub const DEEP_ENCODER_QUEUES: (&str, &str) = ("FERROCAST_MEDIA__ENCODER_QUEUE_FRAMES", "240");

/// The CPU-aware ladder sheds rungs when encoders drop frames, which they do on a machine shared
/// with the rest of the suite: off by default in tests (a test that checks a full ladder would see
/// rungs go missing on a busy moment), on where a test means it.
pub const CPU_AWARE_LADDER: (&str, &str) = ("FERROCAST_MEDIA__SHED_RUNGS", "true");

/// A config for a relay: no ladder, the source passed through.
pub const RELAY_CONFIG: &str = "[media]\nladder = []\ninclude_source = true\n";

/// Writes `toml` to `dir/name` (creating `dir`); returns the path for `FERROCAST_CONFIG`.
pub fn write_config(dir: &Path, name: &str, toml: &str) -> String {
    std::fs::create_dir_all(dir).expect("dir");
    let path = dir.join(name);
    std::fs::write(&path, toml).expect("config");
    path.to_str().expect("utf-8 path").to_string()
}

/// The MD5 of every decoded video frame of `input` (a file or an HLS URL), in order.
pub fn frame_hashes(input: &str) -> Vec<String> {
    let output = Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-i", input, "-map", "0:v:0", "-f", "framemd5", "-"])
        .output()
        .expect("ffmpeg");
    assert!(output.status.success(), "ffmpeg could not decode {input}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit(',').next().map(|h| h.trim().to_string()))
        .collect()
}

pub const JWT_SECRET: &str = "a shared secret of every node, 32+ bytes";

/// The environment of one node: the shared database, bucket and secret, and its roles.
/// The settings of one node of a cluster sharing a Postgres database and a bucket.
pub fn node_env(db_url: &str, storage: &ferrocast_core::config::StorageConfig, roles: &str) -> Vec<(&'static str, String)> {
    vec![
        ("FERROCAST_DATABASE_URL", db_url.to_string()),
        ("FERROCAST_JWT_SECRET", JWT_SECRET.to_string()),
        ("FERROCAST_ROLES", roles.to_string()),
        ("FERROCAST_STORAGE__URL", storage.url.clone().expect("url")),
        ("FERROCAST_STORAGE__ENDPOINT", storage.endpoint.clone().expect("endpoint")),
        ("FERROCAST_STORAGE__REGION", "us-east-1".to_string()),
        ("FERROCAST_STORAGE__ALLOW_HTTP", "true".to_string()),
        ("FERROCAST_RTMP__RECONNECT_GRACE_SECS", "1".to_string()),
        ("FERROCAST_ORIGIN__MAX_VIEWERS_PER_ADDRESS", "1".to_string()),
        ("AWS_ACCESS_KEY_ID", std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_default()),
        ("AWS_SECRET_ACCESS_KEY", std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_default()),
    ]
}

/// [`Server::start`] with owned settings (as [`node_env`] makes them).
pub fn start(dir: &Path, env: &[(&'static str, String)]) -> Server {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Server::start(dir, &env)
}
