//! Live chat over a WebSocket at `GET /api/channels/{slug}/chat` (protocol in docs/api.md).
//!
//! Anyone may connect and read; a signed-in user may write (session cookie from our own pages, or
//! `?access_token=` / a Bearer header with a session token or a personal access token with the
//! `chat:write` scope). A message is stored first, then published as a channel event, and every
//! socket following the channel (on any node) is sent it from there, the sender's included: what
//! a user sees in the chat is what was stored. Moderation (delete, ban) is REST, in
//! `routes::chat`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Extension;
use dashmap::DashMap;
use ferrocast_core::channel_events::{ChannelEvent, ChatLine};
use ferrocast_core::db::channels::{self, Channel};
use ferrocast_core::db::{chat, users};
use serde::Deserialize;
use tokio::sync::broadcast;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{chat_user, ChatCredential, ChatUser, Query};
use crate::routes::channels::Slug;
use crate::state::AppState;

/// How often an idle socket is pinged, so proxies keep it open and dead peers are noticed.
const PING_INTERVAL: Duration = Duration::from_secs(30);
/// Largest frame a client may send (a message is at most `chat.max_message_chars` characters).
const MAX_CLIENT_FRAME_BYTES: usize = 16 * 1024;

/// The HTTP connection's admission slot (`http.max_connections`, `…_per_address`), put on every
/// request by the listener: a socket keeps it for as long as it is open, so sockets count against
/// the caps like any connection.
#[derive(Clone)]
pub struct ConnectionSlot(pub Arc<ferrocast_core::admission::Slot>);

/// Messages per user and channel within a sliding window, on this node.
pub struct ChatLimiter {
    max: usize,
    window: Duration,
    sent: DashMap<(String, String), VecDeque<Instant>>,
}

impl ChatLimiter {
    pub fn new(max: usize, window: Duration) -> Self {
        Self { max, window, sent: DashMap::new() }
    }

    /// Counts a message; `Err(seconds)` until the user may send again.
    pub fn check(&self, user_id: &str, channel_id: &str, now: Instant) -> Result<(), u64> {
        // Forget users who have been quiet for a window, so the map holds only recent senders.
        if self.sent.len() > 10_000 {
            self.sent.retain(|_, times| times.back().is_some_and(|t| now.duration_since(*t) < self.window));
        }
        let mut times = self.sent.entry((user_id.to_string(), channel_id.to_string())).or_default();
        while times.front().is_some_and(|t| now.duration_since(*t) >= self.window) {
            times.pop_front();
        }
        if times.len() >= self.max {
            let oldest = times.front().copied().unwrap_or(now);
            let wait = self.window.saturating_sub(now.duration_since(oldest));
            return Err(wait.as_secs().max(1));
        }
        times.push_back(now);
        Ok(())
    }
}

#[derive(Deserialize)]
pub struct ChatQuery {
    /// For scripts that cannot set a header: a session or personal access token.
    pub access_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientFrame {
    Send { text: String },
}

#[utoipa::path(get, path = "/api/channels/{slug}/chat", tag = "chat", params(("slug" = String, Path), ("access_token" = Option<String>, Query)),
    responses((status = 101, description = "WebSocket; see docs/api.md for its messages"), (status = 404, body = ErrorBody)))]
pub async fn socket(
    State(state): State<AppState>,
    Slug(slug): Slug,
    Query(query): Query<ChatQuery>,
    headers: HeaderMap,
    slot: Option<Extension<ConnectionSlot>>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let channel = channels::find_by_slug(&state.db, &slug).await?.ok_or(ApiError::NotFound)?;
    let user = chat_user(&state, &headers, query.access_token.as_deref()).await?;
    let username = match &user {
        Some(user) => users::find(&state.db, &user.id).await?.map(|u| u.username),
        None => None,
    };
    let following = state.live_events.follow(&state, &channel.id);
    let history = chat::recent(&state.db, &channel.id, state.settings.chat.history_messages).await?;
    let banned = match &user {
        Some(user) => chat::is_banned(&state.db, &channel.id, &user.id).await?,
        None => false,
    };
    let welcome = serde_json::json!({
        "type": "welcome",
        "username": username,
        "moderator": user.as_ref().is_some_and(|u| u.id == channel.owner_id),
        "banned": banned,
        "max_message_chars": state.settings.chat.max_message_chars,
    });
    let mut frames = vec![welcome.to_string()];
    frames.extend(history.iter().map(|m| message_frame(&line(m)).to_string()));
    let upgrade = upgrade.max_message_size(MAX_CLIENT_FRAME_BYTES).max_frame_size(MAX_CLIENT_FRAME_BYTES);
    Ok(upgrade.on_upgrade(move |socket| async move {
        let _slot = slot;
        run(socket, state, channel, user, frames, following.chat).await;
    }))
}

fn line(message: &chat::ChatMessage) -> ChatLine {
    ChatLine {
        id: message.id.clone(),
        username: message.username.clone(),
        text: message.text.clone(),
        at: message.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    }
}

/// A message as every socket is sent it (on joining, and when it is sent).
pub(crate) fn message_frame(line: &ChatLine) -> serde_json::Value {
    serde_json::json!({"type": "message", "id": line.id, "username": line.username, "text": line.text, "at": line.at})
}

/// A message the owner removed.
pub(crate) fn deleted_frame(id: &str) -> serde_json::Value {
    serde_json::json!({"type": "deleted", "id": id})
}

fn error_frame(code: &str, message: &str) -> Message {
    Message::Text(Utf8Bytes::from(serde_json::json!({"type": "error", "code": code, "message": message}).to_string()))
}

async fn run(
    mut socket: WebSocket,
    state: AppState,
    channel: Channel,
    user: Option<ChatUser>,
    greeting: Vec<String>,
    mut chat: broadcast::Receiver<Arc<str>>,
) {
    for frame in greeting {
        if socket.send(Message::Text(frame.into())).await.is_err() {
            return;
        }
    }
    let mut ping = tokio::time::interval(PING_INTERVAL);
    ping.tick().await;
    // A peer that stopped answering pings (gone without closing) is let go.
    let mut last_heard = Instant::now();
    loop {
        tokio::select! {
            () = state.live_events.closed() => {
                let _ = socket.send(Message::Close(None)).await;
                return;
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > PING_INTERVAL * 2 + PING_INTERVAL / 2 {
                    return;
                }
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
            }
            frame = chat.recv() => match frame {
                Ok(frame) => {
                    if socket.send(Message::Text(Utf8Bytes::from(&*frame))).await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::debug!(missed, channel_id = %channel.id, "a chat socket was too slow; messages skipped");
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            received = socket.recv() => {
                last_heard = Instant::now();
                let text = match received {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                    Some(Ok(_)) => continue,
                };
                if let Some(refusal) = handle_send(&state, &channel, user.as_ref(), text.as_str()).await {
                    if socket.send(refusal).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// Stores and publishes one `send`; the error frame to answer when it is refused.
async fn handle_send(state: &AppState, channel: &Channel, user: Option<&ChatUser>, frame: &str) -> Option<Message> {
    let ClientFrame::Send { text } = match serde_json::from_str::<ClientFrame>(frame) {
        Ok(frame) => frame,
        Err(_) => return Some(error_frame("bad_request", r#"expected {"type":"send","text":"…"}"#)),
    };
    let Some(user) = user else { return Some(error_frame("sign_in_required", "Sign in to chat.")) };
    // Still signed in: the session not revoked, or the access token not revoked or expired.
    let still_valid = match &user.credential {
        ChatCredential::Session(sid) => state.sessions.is_revoked(&state.db, sid).await.map(|revoked| !revoked),
        ChatCredential::AccessToken(hash) => {
            ferrocast_core::db::access_tokens::find_valid(&state.db, hash).await.map(|found| found.is_some())
        }
    };
    match still_valid {
        Ok(true) => {}
        Ok(false) => return Some(error_frame("sign_in_required", "You were signed out. Sign in again to chat.")),
        Err(e) => {
            tracing::warn!(error = %e, "chat: cannot check the session");
            return Some(error_frame("unavailable", "The chat is unavailable right now. Try again."));
        }
    }
    let text = clean(&text);
    if text.is_empty() {
        return Some(error_frame("empty", "Write something first."));
    }
    let max = state.settings.chat.max_message_chars;
    if text.chars().count() > max {
        return Some(error_frame("too_long", &format!("Messages are at most {max} characters.")));
    }
    // Counted before anything is read, so a flood of refused sends costs no database work.
    if let Err(wait) = state.chat_limiter.check(&user.id, &channel.id, Instant::now()) {
        return Some(error_frame("rate_limited", &format!("Slow down: you can write again in {wait} s.")));
    }
    match chat::is_banned(&state.db, &channel.id, &user.id).await {
        Ok(true) => return Some(error_frame("banned", "The channel's owner has banned you from this chat.")),
        Ok(false) => {}
        Err(e) => {
            tracing::warn!(error = %e, "chat: cannot check bans");
            return Some(error_frame("unavailable", "The chat is unavailable right now. Try again."));
        }
    }
    let stored = async {
        // Kept with the live video (any visibility) so its recording replays the chat.
        let live_video = channels::find_by_id(&state.db, &channel.id).await?.and_then(|c| c.live_video_id);
        chat::insert(&state.db, &channel.id, live_video.as_deref(), &user.id, &text).await
    };
    match stored.await {
        Ok(message) => {
            state.live_events.events().publish(&channel.id, ChannelEvent::ChatMessage(line(&message))).await;
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "chat: cannot store a message");
            Some(error_frame("unavailable", "Your message could not be sent. Try again."))
        }
    }
}

/// One line of text: surrounding space trimmed, line breaks and other control characters made
/// spaces, runs of spaces kept (people align things).
fn clean(text: &str) -> String {
    text.trim().chars().map(|c| if c.is_control() { ' ' } else { c }).collect::<String>().trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limiter_allows_a_burst_then_waits_for_the_window() {
        let limiter = ChatLimiter::new(3, Duration::from_secs(10));
        let t0 = Instant::now();
        for i in 0..3 {
            assert!(limiter.check("u", "c", t0 + Duration::from_secs(i)).is_ok());
        }
        assert_eq!(limiter.check("u", "c", t0 + Duration::from_secs(3)), Err(7));
        assert!(limiter.check("u", "other channel", t0 + Duration::from_secs(3)).is_ok(), "per channel");
        assert!(limiter.check("v", "c", t0 + Duration::from_secs(3)).is_ok(), "per user");
        assert!(limiter.check("u", "c", t0 + Duration::from_secs(10)).is_ok(), "the first message left the window");
    }

    #[test]
    fn messages_are_one_trimmed_line() {
        assert_eq!(clean("  hello\nworld\t! "), "hello world !");
        assert_eq!(clean("\u{7}\u{1b}[31m"), "[31m");
        assert_eq!(clean(" \n "), "");
    }
}
