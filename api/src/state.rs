//! What every handler can reach: the database, the token keys, the rate limiters and the few
//! settings handlers need. Cheap to clone (everything shared is behind an `Arc`).

use std::sync::Arc;
use std::time::Duration;

use std::path::PathBuf;

use ferrocast_core::channel_events::ChannelEvents;
use ferrocast_core::config::{ChatConfig, Config, RestreamConfig, Secret, UploadConfig, WebhooksConfig, UPLOADS_DIR};
use ferrocast_core::live::LiveRegistry;
use ferrocast_core::playback_token::PlaybackKey;
use ferrocast_core::sealed::SealingKey;
use ferrocast_core::storage::Storage;
use ferrocast_core::Db;

use crate::chat::ChatLimiter;
use crate::extract::origin_of;
use crate::live_events::LiveEvents;
use crate::rate_limit::{LoginLimiter, LoginLimits, SignupLimiter};
use crate::sessions::SessionRevocations;
use crate::tokens::JwtKeys;

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    /// Where a video's files live, for deleting them with the video.
    pub storage: Storage,
    /// This process's live videos: viewers and stream health.
    pub live: Arc<LiveRegistry>,
    /// Signs playback tokens for unlisted and private videos.
    pub playback: PlaybackKey,
    pub jwt: Arc<JwtKeys>,
    pub login_limiter: Arc<LoginLimiter>,
    pub signup_limiter: Arc<SignupLimiter>,
    /// Which login sessions are revoked, for the access tokens naming them.
    pub sessions: Arc<SessionRevocations>,
    pub settings: Arc<Settings>,
    /// Seals restream target URLs at rest (the ingest node opens them with the same key).
    pub restream_sealing: Arc<SealingKey>,
    /// Seals the copy of each channel's stream key that its owner may reveal.
    pub stream_key_sealing: Arc<SealingKey>,
    /// Channels followed by open pages and chat sockets on this node; where changes are published.
    pub live_events: Arc<LiveEvents>,
    pub chat_limiter: Arc<ChatLimiter>,
    /// Sends password reset links; `None` when `[mail]` names no server.
    pub mailer: Option<Arc<crate::mail::Mailer>>,
}

/// The slice of [`Config`] the API reads at request time.
pub struct Settings {
    pub public_url: String,
    /// `scheme://host[:port]` of the public URL: the one `Origin` cookie-authenticated writes may come from.
    pub public_origin: String,
    pub refresh_token_ttl_secs: u64,
    /// Cookies get `Secure` when the server is reached over https.
    pub secure_cookies: bool,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    pub playback_token_ttl: Duration,
    pub viewer_window: Duration,
    pub uploads: UploadConfig,
    /// Where parts of unfinished uploads are kept.
    pub uploads_dir: PathBuf,
    pub job_max_attempts: u32,
    /// How long a live video waits for its publisher to come back.
    pub reconnect_grace: Duration,
    pub webhooks: WebhooksConfig,
    pub restream: RestreamConfig,
    /// What streamers put in OBS's Server field, when the operator said (`rtmp.public_url`).
    pub rtmp_public_url: Option<String>,
    /// The RTMP listener's port (the binary passes the bound one).
    pub rtmp_port: u16,
    /// The RTMPS listener's port, when there is one.
    pub rtmps_port: Option<u16>,
    pub chat: ChatConfig,
    /// How long a password reset link works.
    pub reset_link_ttl: Duration,
}

/// What the sealing key of revealable stream keys is derived for.
const STREAM_KEY_SEALING_PURPOSE: &str = "stream keys";

impl AppState {
    /// Also starts computing the throw-away password hash on a thread of its own (not on the async
    /// runtime), so that a login for an unknown account costs the same as any other from the first
    /// request on.
    pub fn new(db: Db, storage: Storage, live: Arc<LiveRegistry>, config: &Config, jwt_secret: &Secret) -> Self {
        crate::password::warm_up();
        let public_url = config.public_url();
        let auth = &config.auth;
        let window = Duration::from_secs(auth.login_window_secs);
        let channel_events = ChannelEvents::new(&db);
        Self {
            db,
            storage,
            live,
            playback: PlaybackKey::derive(jwt_secret.expose().as_bytes()),
            jwt: Arc::new(JwtKeys::new(jwt_secret.expose().as_bytes(), public_url.clone(), auth.access_token_ttl_secs)),
            login_limiter: Arc::new(LoginLimiter::new(
                window,
                LoginLimits {
                    per_account_and_address: auth.login_max_failures_per_account_and_address,
                    per_account: auth.login_max_failures_per_account,
                    per_address: auth.login_max_failures_per_address,
                },
                auth.rate_limit_max_entries,
            )),
            // Sign-ups share the per-address budget and window of logins (see docs/operations.md).
            signup_limiter: Arc::new(SignupLimiter::new(window, auth.login_max_failures_per_address, auth.rate_limit_max_entries)),
            sessions: Arc::new(SessionRevocations::new(
                Duration::from_secs(auth.session_check_secs),
                Duration::from_secs(auth.access_token_ttl_secs),
            )),
            restream_sealing: Arc::new(SealingKey::derive(jwt_secret.expose().as_bytes(), ferrocast_core::db::restreams::SEALING_PURPOSE)),
            stream_key_sealing: Arc::new(SealingKey::derive(jwt_secret.expose().as_bytes(), STREAM_KEY_SEALING_PURPOSE)),
            live_events: LiveEvents::new(channel_events, Duration::from_millis(config.chat.refresh_interval_ms)),
            mailer: None,
            chat_limiter: Arc::new(ChatLimiter::new(
                config.chat.max_messages_per_window,
                Duration::from_secs(config.chat.rate_window_secs),
            )),
            settings: Arc::new(Settings {
                secure_cookies: public_url.starts_with("https://"),
                public_origin: origin_of(&public_url).unwrap_or_else(|| public_url.clone()),
                public_url,
                refresh_token_ttl_secs: auth.refresh_token_ttl_secs,
                max_body_bytes: config.http.max_body_bytes,
                request_timeout: Duration::from_secs(config.http.request_timeout_secs),
                playback_token_ttl: Duration::from_secs(config.origin.playback_token_ttl_secs),
                viewer_window: Duration::from_secs(config.origin.viewer_window_secs),
                uploads: config.uploads.clone(),
                uploads_dir: config.data_dir.join(UPLOADS_DIR),
                job_max_attempts: config.jobs.max_attempts,
                reconnect_grace: Duration::from_secs(config.rtmp.reconnect_grace_secs),
                webhooks: config.webhooks.clone(),
                restream: config.restream.clone(),
                rtmp_public_url: config.rtmp.public_url(),
                rtmp_port: config.rtmp_addr.port(),
                rtmps_port: config.rtmp.tls_addr.map(|addr| addr.port()),
                chat: config.chat.clone(),
                reset_link_ttl: Duration::from_secs(config.mail.reset_link_ttl_secs),
            }),
        }
    }
}
