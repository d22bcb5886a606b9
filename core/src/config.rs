//! Typed configuration, loaded from an optional TOML file and overridden by `FERROCAST_*`
//! environment variables.
//!
//! Top-level keys map to `FERROCAST_<KEY>` (`http_addr` ← `FERROCAST_HTTP_ADDR`); keys inside a
//! section use a double underscore (`[auth] access_token_ttl_secs` ←
//! `FERROCAST_AUTH__ACCESS_TOKEN_TTL_SECS`). Every limit lives here with its default in a
//! `DEFAULT_*` const; docs/operations.md lists them all. Secrets are wrapped in [`Secret`], whose
//! `Debug` never prints them.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

pub const DEFAULT_HTTP_ADDR: &str = "0.0.0.0:8080";
pub const DEFAULT_RTMP_ADDR: &str = "0.0.0.0:1935";
pub const DEFAULT_DATA_DIR: &str = "./data";
pub const DEFAULT_DB_MAX_CONNECTIONS: u32 = 10;
pub const DEFAULT_DB_ACQUIRE_TIMEOUT_SECS: u64 = 5;
pub const DEFAULT_HTTP_MAX_BODY_BYTES: usize = 1024 * 1024;
pub const DEFAULT_HTTP_REQUEST_TIMEOUT_SECS: u64 = 30;
pub const DEFAULT_HTTP_HEADER_READ_TIMEOUT_SECS: u64 = 10;
pub const DEFAULT_HTTP_MAX_CONNECTIONS: usize = 4096;
pub const DEFAULT_HTTP_MAX_CONNECTIONS_PER_ADDRESS: usize = 256;
/// Each viewer thread is a runtime with its own thread and blocking pool: a typo must not start
/// thousands.
pub const MAX_HTTP_HLS_THREADS: usize = 256;
pub const DEFAULT_ACCESS_TOKEN_TTL_SECS: u64 = 15 * 60;
pub const DEFAULT_REFRESH_TOKEN_TTL_SECS: u64 = 30 * 24 * 3600;
pub const DEFAULT_LOGIN_MAX_FAILURES_PER_ACCOUNT_AND_ADDRESS: u32 = 5;
pub const DEFAULT_LOGIN_MAX_FAILURES_PER_ACCOUNT: u32 = 100;
pub const DEFAULT_RATE_LIMIT_MAX_ENTRIES: usize = 100_000;
pub const DEFAULT_SESSION_CHECK_SECS: u64 = 5;
pub const DEFAULT_LOGIN_MAX_FAILURES_PER_ADDRESS: u32 = 20;
pub const DEFAULT_LOGIN_WINDOW_SECS: u64 = 15 * 60;
pub const DEFAULT_RTMP_MAX_CONNECTIONS: usize = 200;
pub const DEFAULT_RTMP_LEASE_SECS: u64 = 6;
pub const DEFAULT_STORAGE_RETRY_TIMEOUT_SECS: u64 = 60;
pub const DEFAULT_RTMP_MAX_CONNECTIONS_PER_ADDRESS: usize = 16;
pub const DEFAULT_RTMP_HANDSHAKE_TIMEOUT_SECS: u64 = 10;
pub const DEFAULT_RTMP_IDLE_TIMEOUT_SECS: u64 = 30;
pub const DEFAULT_RTMP_MAX_MESSAGE_BYTES: usize = 8 << 20;
pub const DEFAULT_RTMP_MAX_BUFFERED_BYTES: usize = 16 << 20;
pub const DEFAULT_RTMP_MAX_CHUNK_STREAMS: usize = 64;
pub const DEFAULT_RTMP_MAX_COMMAND_BYTES: usize = 64 << 10;
pub const DEFAULT_RECONNECT_GRACE_SECS: u64 = 10;
pub const DEFAULT_SEGMENT_DURATION_SECS: u64 = 2;
pub const DEFAULT_PART_DURATION_MS: u64 = 250;
pub const DEFAULT_LIVE_WINDOW_SEGMENTS: usize = 6;
pub const DEFAULT_LIVE_X264_PRESET: &str = "superfast";
pub const DEFAULT_ENCODER_QUEUE_FRAMES: u32 = 8;
pub const DEFAULT_THUMBNAIL_INTERVAL_SECS: u64 = 30;
pub const DEFAULT_SHED_DROP_PERCENT: u32 = 5;
pub const DEFAULT_SHED_RESTORE_AFTER_SECS: u64 = 30;
pub const DEFAULT_PLAYBACK_TOKEN_TTL_SECS: u64 = 6 * 3600;
pub const DEFAULT_VIEWER_WINDOW_SECS: u64 = 10;
pub const DEFAULT_SHARED_CACHE_MAX_AGE_SECS: u64 = 300;
pub const DEFAULT_MAX_VIEWERS_PER_ADDRESS: usize = 4;
pub const DEFAULT_UPLOAD_PART_BYTES: u64 = 8 << 20;
pub const DEFAULT_UPLOAD_MAX_FILE_BYTES: u64 = 20 << 30;
pub const DEFAULT_UPLOADS_IN_FLIGHT_PER_USER: u32 = 5;
pub const DEFAULT_UPLOAD_EXPIRY_SECS: u64 = 24 * 3600;
pub const DEFAULT_UPLOAD_PART_TIMEOUT_SECS: u64 = 300;
pub const DEFAULT_JOB_CONCURRENCY: usize = 1;
pub const DEFAULT_JOB_LEASE_SECS: u64 = 60;
pub const DEFAULT_JOB_MAX_ATTEMPTS: u32 = 3;
pub const DEFAULT_JOB_RETRY_BACKOFF_SECS: u64 = 30;
pub const DEFAULT_JOB_STALL_TIMEOUT_SECS: u64 = 120;
pub const DEFAULT_VOD_X264_PRESET: &str = "veryfast";
pub const DEFAULT_VOD_SEGMENT_DURATION_SECS: u64 = 4;

/// `FERROCAST_*` variables read elsewhere: the config file's path (CLI), the log filter (logging),
/// the test suite's Postgres and the web UI's build directory (src/web.rs). Any other unknown
/// `FERROCAST_*` variable is an error, which catches typos such as `FERROCAST_HTTP_ADR`.
const ENV_VARS_THAT_ARE_NOT_SETTINGS: &[&str] = &["config", "log", "test_postgres_url", "test_s3_endpoint", "test_s3_dir", "web_dir"];

/// The file, inside the data dir, that keeps a generated JWT secret.
pub const JWT_SECRET_FILE: &str = "jwt_secret";
/// The SQLite database file used when no `database_url` is set.
pub const SQLITE_FILE: &str = "ferrocast.db";
/// Where segments, playlists and thumbnails live inside the data dir (local storage).
pub const MEDIA_DIR: &str = "media";
/// Where the pipeline writes segments before they are moved into storage.
pub const SPOOL_DIR: &str = "spool";
/// Where upload parts wait, inside the data dir, until the upload is completed.
pub const UPLOADS_DIR: &str = "uploads";
/// Under the data dir: scratch space of transcode jobs, emptied at start-up.
pub const WORK_DIR: &str = "work";

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the HTTP server (API, origin, web UI) listens.
    pub http_addr: SocketAddr,
    /// Where the RTMP listener accepts publishers.
    pub rtmp_addr: SocketAddr,
    /// Root of everything Ferrocast keeps on local disk.
    pub data_dir: PathBuf,
    /// `postgres://…` selects Postgres; unset means a SQLite file in the data dir.
    pub database_url: Option<Secret>,
    /// HS256 key for access tokens; unset means one is generated once into the data dir.
    pub jwt_secret: Option<Secret>,
    /// How links to this server are written (`https://…` also marks cookies Secure).
    pub public_url: Option<String>,
    /// What this process does: any of `api`, `ingest`, `origin`, `worker` (default: all four).
    pub roles: Roles,
    /// How other nodes reach this node's HTTP listener; unset: derived from the bound address.
    pub node_url: Option<String>,
    /// `text` for people, `json` for log collectors.
    pub log_format: LogFormat,
    pub database: DatabaseConfig,
    pub http: HttpConfig,
    pub auth: AuthConfig,
    pub rtmp: RtmpConfig,
    pub media: MediaConfig,
    pub origin: OriginConfig,
    pub uploads: UploadConfig,
    pub jobs: JobsConfig,
    pub storage: StorageConfig,
    pub webhooks: WebhooksConfig,
    pub restream: RestreamConfig,
    pub chat: ChatConfig,
    pub mail: MailConfig,
}

/// Outgoing e-mail (password reset links). Off until `host` is set.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailConfig {
    /// The SMTP server; unset: no mail is sent, and "forgot password" says to ask the operator.
    pub host: Option<String>,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// The From header, `Name <address>`.
    pub from: String,
    /// `starttls` (upgrade after connecting, usually port 587), `tls` (TLS from the start, usually
    /// 465) or `none` (a relay on the same host or network only: passwords would travel in clear).
    pub tls: MailTls,
    /// Connecting and sending one mail must finish within this long.
    pub timeout_secs: u64,
    /// How long a password reset link works.
    pub reset_link_ttl_secs: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTls {
    Starttls,
    Tls,
    None,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            host: None,
            port: 587,
            username: None,
            password: None,
            from: "Ferrocast <ferrocast@localhost>".into(),
            tls: MailTls::Starttls,
            timeout_secs: 15,
            reset_link_ttl_secs: 3600,
        }
    }
}

/// Live chat and the live state pushed to open pages (see docs/api.md, Live events and chat).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChatConfig {
    /// Longest message, in characters.
    pub max_message_chars: usize,
    /// Messages one user may send to one channel within `rate_window_secs` (per node).
    pub max_messages_per_window: usize,
    pub rate_window_secs: u64,
    /// Messages a client is shown when it joins.
    pub history_messages: u32,
    /// How often a followed channel is re-read even without an event (viewer counts, and any
    /// event lost between nodes), in milliseconds.
    pub refresh_interval_ms: u64,
}

impl Default for ChatConfig {
    fn default() -> Self {
        Self { max_message_chars: 500, max_messages_per_window: 5, rate_window_secs: 10, history_messages: 50, refresh_interval_ms: 2000 }
    }
}

/// Deliveries of webhooks (see docs/api.md, Integrations).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhooksConfig {
    /// Allow webhook URLs on loopback, private and link-local addresses (off: a user could make
    /// the server call into the operator's own network).
    pub allow_private_targets: bool,
    /// Attempts per delivery before it is marked failed (backoff doubles from 1 s, at most 10 min).
    pub max_attempts: u32,
    /// How long one attempt may take.
    pub timeout_secs: u64,
}

/// Simulcast: pushing live channels onward to other RTMP(S) services (see docs/api.md, Restreams).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RestreamConfig {
    /// Allow restream targets on loopback, private and link-local addresses (off: a user could make
    /// the server connect into the operator's own network).
    pub allow_private_targets: bool,
    /// Targets one channel may have.
    pub max_targets_per_channel: usize,
    /// Connecting, the handshake and the target's answer to `publish` must finish within this long.
    pub connect_timeout_secs: u64,
    /// A target that fails is tried again after 1 s, doubling up to this long.
    pub max_retry_secs: u64,
    /// Media held for one target that cannot keep up, in messages (about 50 per second of a
    /// 30 fps stream); beyond it that target skips to the next keyframe, the others go on.
    pub max_queued_messages: usize,
    /// PEM file of extra certificate authorities trusted for `rtmps://` targets, beside the
    /// system's (for a target behind a private CA). Unset by default.
    pub extra_ca_file: Option<PathBuf>,
}

impl Default for RestreamConfig {
    fn default() -> Self {
        Self {
            allow_private_targets: false,
            max_targets_per_channel: 5,
            connect_timeout_secs: 10,
            max_retry_secs: 30,
            max_queued_messages: 1024,
            extra_ca_file: None,
        }
    }
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self { allow_private_targets: false, max_attempts: 8, timeout_secs: 10 }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self { url: None, endpoint: None, region: None, allow_http: false, retry_timeout_secs: DEFAULT_STORAGE_RETRY_TIMEOUT_SECS }
    }
}

/// The parts of Ferrocast one process runs. Written `api,ingest,origin,worker` (any subset, in any
/// order) in the config file, `FERROCAST_ROLES` and `ferrocast serve --roles`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Roles {
    /// The REST API and the web UI.
    pub api: bool,
    /// The RTMP (and RTMPS) listeners and the live ladder.
    pub ingest: bool,
    /// HLS playlists and media under `/hls`.
    pub origin: bool,
    /// Transcode jobs (uploads).
    pub worker: bool,
}

impl Roles {
    pub const ALL: Roles = Roles { api: true, ingest: true, origin: true, worker: true };
    const NAMES: [&'static str; 4] = ["api", "ingest", "origin", "worker"];
}

impl std::str::FromStr for Roles {
    type Err = String;

    fn from_str(list: &str) -> Result<Self, String> {
        let mut roles = Roles { api: false, ingest: false, origin: false, worker: false };
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name.to_ascii_lowercase().as_str() {
                "api" => roles.api = true,
                "ingest" => roles.ingest = true,
                "origin" => roles.origin = true,
                "worker" => roles.worker = true,
                other => return Err(format!("unknown role {other:?}: roles are {}", Roles::NAMES.join(", "))),
            }
        }
        if roles == (Roles { api: false, ingest: false, origin: false, worker: false }) {
            return Err(format!("no roles given: name one or more of {}", Roles::NAMES.join(", ")));
        }
        Ok(roles)
    }
}

impl TryFrom<String> for Roles {
    type Error = String;

    fn try_from(list: String) -> Result<Self, String> {
        list.parse()
    }
}

impl From<Roles> for String {
    fn from(roles: Roles) -> String {
        roles.to_string()
    }
}

impl std::fmt::Display for Roles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let on = [self.api, self.ingest, self.origin, self.worker];
        let names: Vec<&str> = Roles::NAMES.iter().zip(on).filter(|(_, on)| *on).map(|(name, _)| *name).collect();
        f.write_str(&names.join(","))
    }
}

/// Where videos' files are kept. Unset `url`: local files under `<data_dir>/media`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// `s3://BUCKET` or `s3://BUCKET/prefix`: an S3-compatible bucket. Credentials come from the
    /// standard `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` environment variables.
    pub url: Option<String>,
    /// The S3 endpoint for stores other than AWS (SeaweedFS, MinIO, …), e.g. `http://127.0.0.1:8333`.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// Allow a plain-http endpoint (a store on the same private network).
    pub allow_http: bool,
    /// How long one request to a remote store is retried (with backoff up to 2 s) before it
    /// fails: a store that is away for less loses nothing; writes wait for it.
    pub retry_timeout_secs: u64,
}

/// Resumable uploads.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UploadConfig {
    /// Size of every part but the last.
    pub part_bytes: u64,
    /// Largest file accepted.
    pub max_file_bytes: u64,
    /// Open (unfinished) uploads one user may have at a time.
    pub in_flight_per_user: u32,
    /// An upload not completed within this is deleted with its parts.
    pub expiry_secs: u64,
    /// Time allowed to send one part (instead of the general request timeout).
    pub part_timeout_secs: u64,
}

/// The background job worker (transcoding uploads) and the VOD encoding settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobsConfig {
    /// Jobs this process runs at once (0: this process runs none).
    pub concurrency: usize,
    /// A worker that has not renewed its lease for this long is presumed dead; its job runs again.
    pub lease_secs: u64,
    /// Attempts before a job (and its video) is failed.
    pub max_attempts: u32,
    /// Wait before the first retry; doubled for each further one.
    pub retry_backoff_secs: u64,
    /// x264 speed preset for uploaded files (slower than live: there is no real-time deadline).
    pub vod_x264_preset: String,
    /// Segment duration of uploaded videos.
    pub vod_segment_duration_secs: u64,
    /// A transcode whose position has not moved for this long is stopped and counted as a failed
    /// attempt (retried like any other), so a file that stalls the pipeline cannot hold a worker.
    pub stall_timeout_secs: u64,
}

/// Limits of the RTMP listener.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RtmpConfig {
    /// Concurrent RTMP connections; one more is closed right after accept.
    pub max_connections: usize,
    /// Concurrent RTMP connections from one client address (behind NAT, several encoders share one).
    pub max_connections_per_address: usize,
    /// A client must finish the RTMP handshake and ask to publish within this long of connecting,
    /// however slowly it trickles bytes.
    pub handshake_timeout_secs: u64,
    /// A connection that sends nothing for this long is closed.
    pub idle_timeout_secs: u64,
    /// Largest single message accepted from a publisher (a 4K keyframe is a few MiB); a header
    /// announcing a longer one closes the connection.
    pub max_message_bytes: usize,
    /// Unfinished messages one connection may hold in memory, over all its chunk streams.
    pub max_buffered_bytes: usize,
    /// Chunk stream ids one connection may use (publishers use a handful).
    pub max_chunk_streams: usize,
    /// Largest message before a publish is authorised: commands and metadata only, so an
    /// unauthenticated connection cannot make the server buffer media-sized messages.
    pub max_command_bytes: usize,
    /// A publisher that reconnects within this long continues the same live video.
    pub reconnect_grace_secs: u64,
    /// How long a node's claim on a live video lasts without renewal (renewed every third of it
    /// while its publisher is connected): after a node dies, another may take its streams over
    /// this long later.
    pub lease_secs: u64,
    /// Where the RTMPS (RTMP over TLS) listener accepts publishers. Unset (the default): no TLS
    /// listener. Needs `tls_cert_file` and `tls_key_file`.
    pub tls_addr: Option<SocketAddr>,
    /// PEM certificate chain for RTMPS, leaf first. Unset by default; required with `tls_addr`.
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 RSA or SEC1 EC) of `tls_cert_file`. Unset by default;
    /// required with `tls_addr`.
    pub tls_key_file: Option<PathBuf>,
    /// What streamers are told to put in OBS's Server field (`rtmp://…` or `rtmps://…`, e.g.
    /// `rtmps://live.example.com/live`). Unset by default: the web UI uses the host in the browser's
    /// address bar and the bound RTMP port.
    pub public_url: Option<String>,
}

/// The transcoding ladder and HLS output.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaConfig {
    /// Renditions to encode, lowest first; rungs taller than the source are skipped.
    pub ladder: Vec<RungConfig>,
    /// Also offer the source stream untouched as a `source` rendition.
    pub include_source: bool,
    /// Target segment duration; also the keyframe interval of every rung.
    pub segment_duration_secs: u64,
    /// LL-HLS part target: how often a live playlist gains a part. Players hold back three parts,
    /// so this sets how far behind the live edge a low-latency viewer plays.
    pub part_duration_ms: u64,
    /// Segments in a live playlist window.
    pub live_window_segments: usize,
    /// x264 speed preset for live encoding (`ultrafast` … `medium`).
    pub live_x264_preset: String,
    /// Raw frames queued in front of each encoder; beyond it frames are dropped and counted.
    pub encoder_queue_frames: u32,
    /// How often a live video's thumbnail is refreshed.
    pub thumbnail_interval_secs: u64,
    /// When a live ladder's encoders cannot keep real time, stop encoding its top rung (its
    /// viewers get the next rung's picture, and the master playlist stops offering it) instead of
    /// dropping frames on every rung; try it again once they keep up.
    pub shed_rungs: bool,
    /// Frames dropped in front of the encoders over three seconds (in two of them at least), as
    /// a percent of the frames decoded, that count as not keeping real time.
    pub shed_drop_percent: u32,
    /// Seconds without dropped frames before a shed rung is tried again; doubled after each try
    /// that falls behind again within 15 s, up to ten minutes.
    pub shed_restore_after_secs: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RungConfig {
    /// Path-safe name (`[a-z0-9_-]`), used in URLs: `/hls/{video}/{name}/index.m3u8`.
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub video_bitrate_kbps: u32,
    /// Frame rates above this are halved for this rung, as often as needed (60 becomes 30, 50
    /// becomes 25, 59.94 becomes 29.97). Unset: 30 for rungs under 720 lines, no cap from 720 up,
    /// as the usual ladders keep 60 fps only on their top rungs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_frame_rate: Option<u32>,
}

/// HLS serving.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OriginConfig {
    /// Lifetime of the signed token that lets someone play a private or unlisted video.
    pub playback_token_ttl_secs: u64,
    /// A viewer counts as watching while they fetched a playlist within this long.
    pub viewer_window_secs: u64,
    /// How long shared caches (a CDN, a proxy) may keep public playlists and segments of finished
    /// videos (`s-maxage`): how long a video turned private may still be served from them.
    pub shared_cache_max_age_secs: u64,
    /// One client address (IPv6: one /64) counts as at most this many viewers, however many
    /// User-Agents it sends.
    pub max_viewers_per_address: usize,
    /// Memory for segments (live ones too) and finished videos' playlists, served from there
    /// instead of storage (least recently used go first); 0 turns it off.
    pub memory_cache_mb: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    pub max_connections: u32,
    pub acquire_timeout_secs: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Largest JSON request body accepted by the API.
    pub max_body_bytes: usize,
    /// A request still running after this long gets 408.
    pub request_timeout_secs: u64,
    /// A client must have sent a request's headers this long after the server began waiting for
    /// them, or the connection is closed; also how long an idle keep-alive connection stays open.
    pub header_read_timeout_secs: u64,
    /// Open HTTP connections in all; keep it below the process's open-file limit.
    pub max_connections: usize,
    /// Open HTTP connections from one client address (behind a reverse proxy every client has the
    /// proxy's address: raise it to `max_connections` there).
    pub max_connections_per_address: usize,
    /// Threads that serve viewers' `/hls/` connections, each its own event loop; 0 means one per
    /// core, at most `MAX_HTTP_HLS_THREADS`.
    pub hls_threads: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    pub access_token_ttl_secs: u64,
    pub refresh_token_ttl_secs: u64,
    /// Failed logins for one account from one client address inside `login_window_secs` before
    /// that address gets 429 for that account (the owner elsewhere is not affected).
    pub login_max_failures_per_account_and_address: u32,
    /// Failed logins for one account from all addresses together before it answers 429: the
    /// ceiling for guessing from many addresses at once.
    pub login_max_failures_per_account: u32,
    /// Failed logins from one client address inside `login_window_secs` before it answers 429.
    pub login_max_failures_per_address: u32,
    pub login_window_secs: u64,
    /// Windows the login and sign-up limiters track each; past it the oldest are dropped.
    pub rate_limit_max_entries: usize,
    /// How long a node trusts its answer to "is this login session revoked?": a logout or a
    /// detected refresh-token reuse stops the session's access tokens on every node within this.
    pub session_check_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            http_addr: parse_default_addr(DEFAULT_HTTP_ADDR),
            rtmp_addr: parse_default_addr(DEFAULT_RTMP_ADDR),
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            database_url: None,
            jwt_secret: None,
            public_url: None,
            roles: Roles::ALL,
            node_url: None,
            log_format: LogFormat::Text,
            database: DatabaseConfig::default(),
            http: HttpConfig::default(),
            auth: AuthConfig::default(),
            rtmp: RtmpConfig::default(),
            media: MediaConfig::default(),
            origin: OriginConfig::default(),
            uploads: UploadConfig::default(),
            jobs: JobsConfig::default(),
            storage: StorageConfig::default(),
            webhooks: WebhooksConfig::default(),
            restream: RestreamConfig::default(),
            chat: ChatConfig::default(),
            mail: MailConfig::default(),
        }
    }
}

impl Default for UploadConfig {
    fn default() -> Self {
        Self {
            part_bytes: DEFAULT_UPLOAD_PART_BYTES,
            max_file_bytes: DEFAULT_UPLOAD_MAX_FILE_BYTES,
            in_flight_per_user: DEFAULT_UPLOADS_IN_FLIGHT_PER_USER,
            expiry_secs: DEFAULT_UPLOAD_EXPIRY_SECS,
            part_timeout_secs: DEFAULT_UPLOAD_PART_TIMEOUT_SECS,
        }
    }
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            concurrency: DEFAULT_JOB_CONCURRENCY,
            lease_secs: DEFAULT_JOB_LEASE_SECS,
            max_attempts: DEFAULT_JOB_MAX_ATTEMPTS,
            retry_backoff_secs: DEFAULT_JOB_RETRY_BACKOFF_SECS,
            stall_timeout_secs: DEFAULT_JOB_STALL_TIMEOUT_SECS,
            vod_x264_preset: DEFAULT_VOD_X264_PRESET.into(),
            vod_segment_duration_secs: DEFAULT_VOD_SEGMENT_DURATION_SECS,
        }
    }
}

impl Default for RtmpConfig {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_RTMP_MAX_CONNECTIONS,
            max_connections_per_address: DEFAULT_RTMP_MAX_CONNECTIONS_PER_ADDRESS,
            handshake_timeout_secs: DEFAULT_RTMP_HANDSHAKE_TIMEOUT_SECS,
            idle_timeout_secs: DEFAULT_RTMP_IDLE_TIMEOUT_SECS,
            max_message_bytes: DEFAULT_RTMP_MAX_MESSAGE_BYTES,
            max_buffered_bytes: DEFAULT_RTMP_MAX_BUFFERED_BYTES,
            max_chunk_streams: DEFAULT_RTMP_MAX_CHUNK_STREAMS,
            max_command_bytes: DEFAULT_RTMP_MAX_COMMAND_BYTES,
            reconnect_grace_secs: DEFAULT_RECONNECT_GRACE_SECS,
            lease_secs: DEFAULT_RTMP_LEASE_SECS,
            tls_addr: None,
            tls_cert_file: None,
            tls_key_file: None,
            public_url: None,
        }
    }
}

impl RtmpConfig {
    /// RTMPS takes all three of `tls_addr`, `tls_cert_file` and `tls_key_file`, or none of them; the
    /// TLS listener cannot share the plain one's address; `public_url` is an RTMP URL. Whether the
    /// files hold a usable certificate and key is checked when the listener starts (ingest's tls.rs).
    fn validate_tls_and_public_url(&self, rtmp_addr: SocketAddr) -> Result<(), ConfigError> {
        let (cert, key) = (self.tls_cert_file.is_some(), self.tls_key_file.is_some());
        if self.tls_addr.is_some() && !(cert && key) {
            let message = "rtmp.tls_addr is set, so RTMPS also needs both rtmp.tls_cert_file and rtmp.tls_key_file";
            return Err(ConfigError::Rtmp(message.into()));
        }
        if self.tls_addr.is_none() && (cert || key) {
            let message = "rtmp.tls_cert_file and rtmp.tls_key_file are only used with rtmp.tls_addr (the RTMPS address), which is not set";
            return Err(ConfigError::Rtmp(message.into()));
        }
        if self.tls_addr.is_some_and(|tls| tls == rtmp_addr && tls.port() != 0) {
            return Err(ConfigError::Rtmp(format!("rtmp.tls_addr must differ from rtmp_addr ({rtmp_addr})")));
        }
        if let Some(url) = &self.public_url {
            let host = url.strip_prefix("rtmps://").or_else(|| url.strip_prefix("rtmp://"));
            if host.is_none_or(|host| host.trim_matches('/').is_empty()) {
                return Err(ConfigError::Rtmp(format!(
                    "rtmp.public_url must be an rtmp:// or rtmps:// URL such as rtmps://live.example.com/live, got {url:?}"
                )));
            }
        }
        Ok(())
    }

    /// `public_url` without a trailing slash, as streamers paste it into OBS.
    pub fn public_url(&self) -> Option<String> {
        self.public_url.as_deref().map(|url| url.trim_end_matches('/').to_string())
    }
}

impl Default for MediaConfig {
    fn default() -> Self {
        let rung = |name: &str, width, height, video_bitrate_kbps| RungConfig {
            name: name.into(),
            width,
            height,
            video_bitrate_kbps,
            max_frame_rate: None,
        };
        Self {
            ladder: vec![rung("low", 640, 360, 800), rung("mid", 854, 480, 1400), rung("high", 1280, 720, 2800)],
            include_source: false,
            segment_duration_secs: DEFAULT_SEGMENT_DURATION_SECS,
            part_duration_ms: DEFAULT_PART_DURATION_MS,
            live_window_segments: DEFAULT_LIVE_WINDOW_SEGMENTS,
            live_x264_preset: DEFAULT_LIVE_X264_PRESET.into(),
            encoder_queue_frames: DEFAULT_ENCODER_QUEUE_FRAMES,
            thumbnail_interval_secs: DEFAULT_THUMBNAIL_INTERVAL_SECS,
            shed_rungs: true,
            shed_drop_percent: DEFAULT_SHED_DROP_PERCENT,
            shed_restore_after_secs: DEFAULT_SHED_RESTORE_AFTER_SECS,
        }
    }
}

impl Default for OriginConfig {
    fn default() -> Self {
        Self {
            playback_token_ttl_secs: DEFAULT_PLAYBACK_TOKEN_TTL_SECS,
            viewer_window_secs: DEFAULT_VIEWER_WINDOW_SECS,
            shared_cache_max_age_secs: DEFAULT_SHARED_CACHE_MAX_AGE_SECS,
            max_viewers_per_address: DEFAULT_MAX_VIEWERS_PER_ADDRESS,
            memory_cache_mb: 256,
        }
    }
}

fn parse_default_addr(addr: &str) -> SocketAddr {
    addr.parse().unwrap_or_else(|_| unreachable!("default address {addr} parses"))
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self { max_connections: DEFAULT_DB_MAX_CONNECTIONS, acquire_timeout_secs: DEFAULT_DB_ACQUIRE_TIMEOUT_SECS }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: DEFAULT_HTTP_MAX_BODY_BYTES,
            request_timeout_secs: DEFAULT_HTTP_REQUEST_TIMEOUT_SECS,
            header_read_timeout_secs: DEFAULT_HTTP_HEADER_READ_TIMEOUT_SECS,
            max_connections: DEFAULT_HTTP_MAX_CONNECTIONS,
            max_connections_per_address: DEFAULT_HTTP_MAX_CONNECTIONS_PER_ADDRESS,
            hls_threads: 0,
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            access_token_ttl_secs: DEFAULT_ACCESS_TOKEN_TTL_SECS,
            refresh_token_ttl_secs: DEFAULT_REFRESH_TOKEN_TTL_SECS,
            login_max_failures_per_account_and_address: DEFAULT_LOGIN_MAX_FAILURES_PER_ACCOUNT_AND_ADDRESS,
            login_max_failures_per_account: DEFAULT_LOGIN_MAX_FAILURES_PER_ACCOUNT,
            login_max_failures_per_address: DEFAULT_LOGIN_MAX_FAILURES_PER_ADDRESS,
            login_window_secs: DEFAULT_LOGIN_WINDOW_SECS,
            rate_limit_max_entries: DEFAULT_RATE_LIMIT_MAX_ENTRIES,
            session_check_secs: DEFAULT_SESSION_CHECK_SECS,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid configuration: {0}")]
    Invalid(#[from] Box<figment::Error>),
    #[error("config file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("public_url must start with http:// or https://, got {0:?}")]
    PublicUrl(String),
    #[error("jwt_secret must be at least 32 bytes long")]
    ShortJwtSecret,
    #[error("invalid [media] settings: {0}")]
    Media(String),
    #[error("invalid [storage] settings: {0}")]
    Storage(String),
    #[error("invalid [http] settings: {0}")]
    Http(String),
    #[error("invalid [rtmp] settings: {0}")]
    Rtmp(String),
    #[error("invalid [chat] settings: {0}")]
    Chat(String),
    #[error("cannot use data dir {path}: {source}")]
    DataDir { path: PathBuf, source: std::io::Error },
}

impl Config {
    /// Defaults, then the TOML file (if given), then `FERROCAST_*` environment variables.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.exists() {
                return Err(ConfigError::MissingFile(file.to_path_buf()));
            }
            figment = figment.merge(Toml::file(file));
        }
        let env = Env::prefixed("FERROCAST_").split("__").ignore(ENV_VARS_THAT_ARE_NOT_SETTINGS);
        let config: Config = figment.merge(env).extract().map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.public_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::PublicUrl(url.clone()));
            }
        }
        if let Some(secret) = &self.jwt_secret {
            if secret.expose().len() < 32 {
                return Err(ConfigError::ShortJwtSecret);
            }
        }
        let media = &self.media;
        if media.segment_duration_secs == 0 || media.live_window_segments < 3 || media.encoder_queue_frames == 0 {
            return Err(ConfigError::Media("segment_duration_secs must be ≥ 1, live_window_segments ≥ 3, encoder_queue_frames ≥ 1".into()));
        }
        if media.part_duration_ms < 100 || media.part_duration_ms * 3 > media.segment_duration_secs * 1000 {
            return Err(ConfigError::Media("part_duration_ms must be ≥ 100 and at most a third of segment_duration_secs".into()));
        }
        if media.shed_drop_percent == 0 || media.shed_drop_percent > 100 || media.shed_restore_after_secs == 0 {
            return Err(ConfigError::Media("shed_drop_percent must be 1 to 100 and shed_restore_after_secs ≥ 1".into()));
        }
        const PRESETS: [&str; 7] = ["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow"];
        if !PRESETS.contains(&media.live_x264_preset.as_str()) || !PRESETS.contains(&self.jobs.vod_x264_preset.as_str()) {
            return Err(ConfigError::Media(format!("live_x264_preset and jobs.vod_x264_preset must be one of {PRESETS:?}")));
        }
        if self.uploads.part_bytes < 64 * 1024 || self.jobs.lease_secs < 2 || self.jobs.vod_segment_duration_secs == 0 {
            return Err(ConfigError::Media(
                "uploads.part_bytes must be ≥ 64 KiB, jobs.lease_secs ≥ 2, jobs.vod_segment_duration_secs ≥ 1".into(),
            ));
        }
        let rtmp = &self.rtmp;
        if rtmp.lease_secs < 2 {
            return Err(ConfigError::Rtmp("rtmp.lease_secs must be ≥ 2".into()));
        }
        if rtmp.max_command_bytes < 4096 || rtmp.max_message_bytes < rtmp.max_command_bytes || rtmp.max_chunk_streams < 4 {
            return Err(ConfigError::Rtmp(
                "rtmp.max_command_bytes must be ≥ 4096, rtmp.max_message_bytes ≥ rtmp.max_command_bytes, rtmp.max_chunk_streams ≥ 4".into(),
            ));
        }
        rtmp.validate_tls_and_public_url(self.rtmp_addr)?;
        let chat = &self.chat;
        // A message travels between nodes in a Postgres notification, at most 8000 bytes: 1000
        // characters of up to 4 bytes each leave room for the rest of the event.
        if !(1..=1000).contains(&chat.max_message_chars)
            || chat.max_messages_per_window == 0
            || chat.rate_window_secs == 0
            || chat.refresh_interval_ms < 100
        {
            return Err(ConfigError::Chat(
                "chat.max_message_chars must be 1–1000, chat.max_messages_per_window and chat.rate_window_secs ≥ 1, chat.refresh_interval_ms ≥ 100".into(),
            ));
        }
        let http = &self.http;
        if http.header_read_timeout_secs == 0 || http.max_connections == 0 || http.max_connections_per_address == 0 {
            return Err(ConfigError::Http(
                "http.header_read_timeout_secs, http.max_connections and http.max_connections_per_address must be ≥ 1".into(),
            ));
        }
        if http.hls_threads > MAX_HTTP_HLS_THREADS {
            return Err(ConfigError::Http(format!(
                "http.hls_threads must be at most {MAX_HTTP_HLS_THREADS} (0 = one per core), got {}",
                http.hls_threads
            )));
        }
        if let Some(url) = &self.storage.url {
            if url.strip_prefix("s3://").is_none_or(|rest| rest.trim_matches('/').is_empty()) {
                return Err(ConfigError::Storage(format!("storage.url must be s3://BUCKET or s3://BUCKET/prefix, got {url:?}")));
            }
        }
        if self.storage.url.is_none() && self.storage.endpoint.is_some() {
            return Err(ConfigError::Storage("storage.endpoint is only used with storage.url (s3://BUCKET)".into()));
        }
        if media.ladder.is_empty() && !media.include_source {
            return Err(ConfigError::Media("the ladder needs at least one rung (or include_source = true for a relay)".into()));
        }
        Ok(())
    }

    /// The base URL links are written with, without a trailing slash.
    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => {
                let port = self.http_addr.port();
                format!("http://localhost:{port}")
            }
        }
    }

    /// The database URL with any password hidden, for start-up logs.
    pub fn database_description(&self) -> String {
        match &self.database_url {
            Some(url) => redact_url_password(url.expose()),
            None => format!("sqlite:{}", self.data_dir.join(SQLITE_FILE).display()),
        }
    }

    /// The configured JWT secret, or the one generated into the data dir on first start (the dir
    /// created 0700 if missing, the file 0600, written crash- and race-safely by
    /// [`crate::secret::read_or_generate`]). A generated file that is empty or too short, left by
    /// an interrupted start, is regenerated; only a too-short secret set by the operator is an error.
    pub fn resolve_jwt_secret(&self) -> Result<Secret, ConfigError> {
        if let Some(secret) = &self.jwt_secret {
            if secret.expose().len() < 32 {
                return Err(ConfigError::ShortJwtSecret);
            }
            return Ok(secret.clone());
        }
        let path = self.data_dir.join(JWT_SECRET_FILE);
        crate::secret::read_or_generate(&path, 32, || crate::stream_key::random_hex(32))
            .map(Secret::new)
            .map_err(|source| ConfigError::DataDir { path, source })
    }
}

fn redact_url_password(url: &str) -> String {
    // scheme://user:password@host/... → scheme://user:***@host/...
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let Some((credentials, host)) = rest.split_once('@') else { return url.to_string() };
    match credentials.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

/// A string that must not appear in logs: `Debug` prints `Secret(***)`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[cfg(test)]
// figment::Jail closures return figment::Error, which is large; that is the test harness, not us.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_file_which_overrides_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "ferrocast.toml",
                "http_addr = \"127.0.0.1:9000\"\ndata_dir = \"/srv/ferrocast\"\n[auth]\nlogin_window_secs = 60\n",
            )?;
            jail.set_env("FERROCAST_HTTP_ADDR", "127.0.0.1:9100");
            jail.set_env("FERROCAST_AUTH__ACCESS_TOKEN_TTL_SECS", "120");
            jail.set_env("FERROCAST_JWT_SECRET", "12345678901234567890123456789012");
            let config = Config::load(Some(Path::new("ferrocast.toml"))).expect("config loads");
            assert_eq!(config.http_addr.to_string(), "127.0.0.1:9100");
            assert_eq!(config.data_dir, PathBuf::from("/srv/ferrocast"));
            assert_eq!(config.rtmp_addr.to_string(), DEFAULT_RTMP_ADDR);
            assert_eq!(config.auth.login_window_secs, 60);
            assert_eq!(config.auth.access_token_ttl_secs, 120);
            assert_eq!(config.jwt_secret.as_ref().map(Secret::expose), Some("12345678901234567890123456789012"));
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors_naming_the_key() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("typo.toml", "htp_addr = \"127.0.0.1:1\"\n")?;
            let err = Config::load(Some(Path::new("typo.toml"))).expect_err("typo rejected");
            assert!(err.to_string().contains("htp_addr"), "{err}");
            jail.set_env("FERROCAST_RTMP_ADDR", "not an address");
            let err = Config::load(None).expect_err("bad address rejected");
            assert!(err.to_string().to_lowercase().contains("rtmp_addr"), "{err}");
            jail.set_env("FERROCAST_RTMP_ADDR", "127.0.0.1:1935");
            jail.set_env("FERROCAST_LOG", "debug");
            assert!(Config::load(None).is_ok(), "the log filter is not a setting");
            jail.set_env("FERROCAST_HTTP_ADR", "127.0.0.1:1");
            let err = Config::load(None).expect_err("misspelt variable rejected");
            assert!(err.to_string().to_lowercase().contains("http_adr"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn the_committed_sample_config_loads_and_states_the_defaults() {
        let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ferrocast.sample.toml");
        figment::Jail::expect_with(|_jail| {
            let loaded = Config::load(Some(&sample)).expect("sample loads");
            assert_eq!(format!("{loaded:?}"), format!("{:?}", Config::default()), "the sample documents the defaults");
            Ok(())
        });
    }

    #[test]
    fn roles_and_storage_come_from_the_environment_and_bad_ones_are_named() {
        figment::Jail::expect_with(|jail| {
            assert_eq!(Config::load(None).expect("defaults").roles, Roles::ALL);
            jail.set_env("FERROCAST_ROLES", "origin, API");
            let roles = Config::load(None).expect("roles").roles;
            assert_eq!(roles, Roles { api: true, ingest: false, origin: true, worker: false });
            assert_eq!(roles.to_string(), "api,origin");
            jail.set_env("FERROCAST_ROLES", "api,transcoder");
            let err = Config::load(None).expect_err("unknown role").to_string();
            assert!(err.contains("transcoder") && err.contains("api, ingest, origin, worker"), "{err}");
            jail.set_env("FERROCAST_ROLES", "worker");

            jail.set_env("FERROCAST_STORAGE__URL", "s3://media/ferrocast");
            jail.set_env("FERROCAST_STORAGE__ENDPOINT", "http://127.0.0.1:8333");
            jail.set_env("FERROCAST_STORAGE__ALLOW_HTTP", "true");
            let storage = Config::load(None).expect("storage").storage;
            assert_eq!(storage.url.as_deref(), Some("s3://media/ferrocast"));
            assert!(storage.allow_http);
            jail.set_env("FERROCAST_STORAGE__URL", "media");
            assert!(matches!(Config::load(None), Err(ConfigError::Storage(_))), "not an s3:// URL");
            Ok(())
        });
    }

    #[test]
    fn viewer_threads_are_bounded() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("FERROCAST_HTTP__HLS_THREADS", "3");
            assert_eq!(Config::load(None).expect("a few threads").http.hls_threads, 3);
            jail.set_env("FERROCAST_HTTP__HLS_THREADS", "100000");
            let err = Config::load(None).expect_err("a typo's worth of threads is refused");
            assert!(matches!(err, ConfigError::Http(_)) && err.to_string().contains("http.hls_threads"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn rtmps_needs_an_address_a_certificate_and_a_key_together() {
        figment::Jail::expect_with(|jail| {
            assert!(Config::load(None).expect("defaults load").rtmp.tls_addr.is_none(), "no TLS listener by default");

            jail.set_env("FERROCAST_RTMP__TLS_ADDR", "0.0.0.0:1936");
            let err = Config::load(None).expect_err("an address without files is refused");
            assert!(matches!(err, ConfigError::Rtmp(_)), "{err}");
            assert!(err.to_string().contains("tls_cert_file") && err.to_string().contains("tls_key_file"), "{err}");
            jail.set_env("FERROCAST_RTMP__TLS_CERT_FILE", "/etc/ferrocast/cert.pem");
            let err = Config::load(None).expect_err("a certificate without a key is refused");
            assert!(err.to_string().contains("tls_key_file"), "{err}");

            jail.set_env("FERROCAST_RTMP__TLS_KEY_FILE", "/etc/ferrocast/key.pem");
            let config = Config::load(None).expect("all three load");
            assert_eq!(config.rtmp.tls_addr.map(|a| a.to_string()).as_deref(), Some("0.0.0.0:1936"));
            assert_eq!(config.rtmp.tls_cert_file.as_deref(), Some(Path::new("/etc/ferrocast/cert.pem")));
            assert_eq!(config.rtmp.tls_key_file.as_deref(), Some(Path::new("/etc/ferrocast/key.pem")));

            jail.set_env("FERROCAST_RTMP__TLS_ADDR", DEFAULT_RTMP_ADDR);
            let err = Config::load(None).expect_err("the plain listener's address is refused");
            assert!(err.to_string().contains("rtmp.tls_addr must differ"), "{err}");

            jail.clear_env();
            jail.create_file("files-only.toml", "[rtmp]\ntls_cert_file = \"c.pem\"\ntls_key_file = \"k.pem\"\n")?;
            let err = Config::load(Some(Path::new("files-only.toml"))).expect_err("files without an address are refused");
            assert!(err.to_string().contains("rtmp.tls_addr"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn the_rtmp_public_url_is_an_rtmp_url() {
        figment::Jail::expect_with(|jail| {
            assert_eq!(Config::load(None).expect("defaults load").rtmp.public_url(), None);
            jail.set_env("FERROCAST_RTMP__PUBLIC_URL", "rtmps://live.example.com/live/");
            let config = Config::load(None).expect("rtmps URL loads");
            assert_eq!(config.rtmp.public_url().as_deref(), Some("rtmps://live.example.com/live"));
            jail.set_env("FERROCAST_RTMP__PUBLIC_URL", "rtmp://live.example.com:1935/live");
            assert!(Config::load(None).is_ok());
            for bad in ["https://live.example.com/live", "live.example.com/live", "rtmps://", "RTMP is on port 1935"] {
                jail.set_env("FERROCAST_RTMP__PUBLIC_URL", bad);
                let err = Config::load(None).expect_err("not an RTMP URL");
                assert!(err.to_string().contains("rtmp.public_url"), "{bad}: {err}");
            }
            Ok(())
        });
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let config = Config {
            jwt_secret: Some(Secret::new("super-secret-value-that-is-long-enough")),
            database_url: Some(Secret::new("postgres://app:hunter2@db/ferrocast")),
            ..Config::default()
        };
        let printed = format!("{config:?}");
        assert!(!printed.contains("super-secret"), "{printed}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert_eq!(config.database_description(), "postgres://app:***@db/ferrocast");
    }

    #[test]
    fn generated_jwt_secret_is_persisted_private_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = Config { data_dir: dir.path().join("data"), ..Config::default() };
        let first = config.resolve_jwt_secret().expect("generated");
        let second = config.resolve_jwt_secret().expect("read back");
        assert_eq!(first, second);
        assert!(first.expose().len() >= 32);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let meta = std::fs::metadata(dir.path().join("data").join(JWT_SECRET_FILE)).expect("file");
            assert_eq!(meta.permissions().mode() & 0o777, 0o600);
            let meta = std::fs::metadata(dir.path().join("data")).expect("data dir");
            assert_eq!(meta.permissions().mode() & 0o777, 0o700);
        }

        // An empty file left by a crash during the first start is replaced, not a start-up failure.
        std::fs::write(dir.path().join("data").join(JWT_SECRET_FILE), "").expect("truncate");
        let regenerated = config.resolve_jwt_secret().expect("regenerated");
        assert!(regenerated.expose().len() >= 32);
        assert_ne!(regenerated, first);

        // A short secret the operator set is refused.
        let short = Config { jwt_secret: Some(Secret::new("too short")), ..config };
        assert!(matches!(short.resolve_jwt_secret(), Err(ConfigError::ShortJwtSecret)));
    }
}
