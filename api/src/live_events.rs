//! Following channels: what this node pushes to open pages (Server-Sent Events) and chat sockets.
//!
//! Each channel someone follows on this node has one [`Hub`]: a task re-reads the channel's public
//! state when an event says it changed ([`ChannelEvents`], from this node or, with Postgres, from
//! any node) and at least every `chat.refresh_interval_ms` (viewer counts change without events),
//! and hands it to every follower through a `watch` channel; chat messages are passed through a
//! `broadcast` channel, serialised once. So a thousand viewers of one channel cost this node one
//! read of it per refresh, not a thousand. The hub goes away when its last follower has.

use std::convert::Infallible;
use std::sync::{Arc, Once};
use std::time::Duration;

use axum::extract::State;
use axum::http::header::HeaderName;
use axum::http::HeaderValue;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use dashmap::DashMap;
use ferrocast_core::channel_events::{ChannelEvent, ChannelEvents};
use ferrocast_core::db::{channels, videos};
use serde::Serialize;
use tokio::sync::{broadcast, watch, Notify};
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::routes::channels::{ChannelResponse, Slug};
use crate::routes::videos::VideoResponse;
use crate::state::AppState;

/// Chat frames held for a socket that is slow to take them.
const CHAT_CAPACITY: usize = 256;

/// What anyone may see of a channel right now: the `state` event of its event stream.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct ChannelState {
    pub title: String,
    pub description: String,
    /// The public live video, while there is one.
    pub live: Option<LiveState>,
}

#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct LiveState {
    pub video_id: String,
    pub title: String,
    pub description: String,
    /// Distinct players fetching its playlists.
    pub viewers: Option<u64>,
    pub started_at: DateTime<Utc>,
}

/// What a hub knows of its channel.
#[derive(Clone, Debug, PartialEq)]
enum Snapshot {
    /// Not read yet.
    Pending,
    Channel(Arc<ChannelState>),
    /// Deleted.
    Gone,
}

struct Hub {
    state: watch::Sender<Snapshot>,
    /// Chat frames as JSON text, ready for the sockets.
    chat: broadcast::Sender<Arc<str>>,
    /// Re-read now.
    poke: Notify,
}

/// What one follower receives.
pub struct Following {
    state: watch::Receiver<Snapshot>,
    pub chat: broadcast::Receiver<Arc<str>>,
}

pub struct LiveEvents {
    events: Arc<ChannelEvents>,
    hubs: DashMap<String, Arc<Hub>>,
    /// Any channel changed (the home page's "Live now"): carries the channel id.
    any_change: broadcast::Sender<Arc<str>>,
    refresh_interval: Duration,
    started: Once,
    stop: CancellationToken,
}

impl LiveEvents {
    pub fn new(events: Arc<ChannelEvents>, refresh_interval: Duration) -> Arc<Self> {
        Arc::new(Self {
            events,
            hubs: DashMap::new(),
            any_change: broadcast::channel(256).0,
            refresh_interval,
            started: Once::new(),
            stop: CancellationToken::new(),
        })
    }

    /// Where this node publishes its own changes.
    pub fn events(&self) -> &Arc<ChannelEvents> {
        &self.events
    }

    /// Ends every event stream and chat socket (at shutdown, so connections can drain).
    pub fn close(&self) {
        self.stop.cancel();
    }

    pub fn closed(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.stop.cancelled()
    }

    /// Starts passing events to hubs, on first use (a node that serves no follower never listens).
    fn start(self: &Arc<Self>) {
        self.started.call_once(|| {
            self.events.start_listening(self.stop.clone());
            tokio::spawn(self.clone().dispatch());
        });
    }

    async fn dispatch(self: Arc<Self>) {
        let mut events = self.events.subscribe();
        loop {
            let envelope = tokio::select! {
                () = self.stop.cancelled() => return,
                received = events.recv() => received,
            };
            match envelope {
                Ok(envelope) => {
                    if envelope.event == ChannelEvent::Changed {
                        let _ = self.any_change.send(envelope.channel_id.as_str().into());
                    }
                    let Some(hub) = self.hubs.get(&envelope.channel_id).map(|h| h.clone()) else { continue };
                    match &envelope.event {
                        ChannelEvent::Changed => hub.poke.notify_one(),
                        ChannelEvent::ChatMessage(line) => {
                            let _ = hub.chat.send(crate::chat::message_frame(line).to_string().into());
                        }
                        ChannelEvent::ChatDeleted { id } => {
                            let _ = hub.chat.send(crate::chat::deleted_frame(id).to_string().into());
                        }
                    }
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    // Some events are lost to us: re-read every followed channel.
                    tracing::warn!(missed, "channel events came faster than they were passed on; re-reading every followed channel");
                    for hub in self.hubs.iter() {
                        hub.poke.notify_one();
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    /// Follows `channel_id`: its state as it changes, and its chat.
    pub fn follow(self: &Arc<Self>, state: &AppState, channel_id: &str) -> Following {
        self.start();
        // Subscribed while the map's entry is held, so the hub's clean-up (which checks for
        // followers under the same lock) cannot remove it in between.
        let entry = self.hubs.entry(channel_id.to_string()).or_insert_with(|| {
            let hub = Arc::new(Hub {
                state: watch::channel(Snapshot::Pending).0,
                chat: broadcast::channel(CHAT_CAPACITY).0,
                poke: Notify::new(),
            });
            tokio::spawn(self.clone().keep_current(state.clone(), channel_id.to_string(), hub.clone()));
            hub
        });
        Following { state: entry.state.subscribe(), chat: entry.chat.subscribe() }
    }

    /// The hub's task: re-reads the channel on every poke and every refresh interval; returns
    /// when nobody follows it any more, or the channel is deleted.
    async fn keep_current(self: Arc<Self>, state: AppState, channel_id: String, hub: Arc<Hub>) {
        loop {
            match read_state(&state, &channel_id).await {
                Ok(Some(current)) => {
                    hub.state.send_if_modified(|known| {
                        let changed = !matches!(known, Snapshot::Channel(k) if **k == current);
                        if changed {
                            *known = Snapshot::Channel(Arc::new(current));
                        }
                        changed
                    });
                }
                Ok(None) => {
                    hub.state.send_replace(Snapshot::Gone);
                    self.hubs.remove_if(&channel_id, |_, h| Arc::ptr_eq(h, &hub));
                    return;
                }
                Err(e) => tracing::warn!(%channel_id, error = %e, "could not read a followed channel; trying again"),
            }
            tokio::select! {
                () = self.stop.cancelled() => return,
                () = hub.poke.notified() => {}
                () = tokio::time::sleep(self.refresh_interval) => {}
            }
            let unfollowed = self
                .hubs
                .remove_if(&channel_id, |_, h| Arc::ptr_eq(h, &hub) && h.state.receiver_count() == 0 && h.chat.receiver_count() == 0);
            if unfollowed.is_some() {
                return;
            }
        }
    }
}

/// The channel's public state, or `None` when it no longer exists.
async fn read_state(state: &AppState, channel_id: &str) -> Result<Option<ChannelState>, ApiError> {
    let Some(channel) = channels::find_by_id(&state.db, channel_id).await? else { return Ok(None) };
    let public = ChannelResponse::new(channel, None, state);
    let live = match public.live_video_id {
        Some(video_id) => videos::find(&state.db, &video_id).await?.map(|video| {
            let video = VideoResponse::new(video, None, state);
            LiveState {
                video_id: video.id,
                title: video.title,
                description: video.description,
                viewers: video.viewers,
                started_at: video.created_at,
            }
        }),
        None => None,
    };
    Ok(Some(ChannelState { title: public.title, description: public.description, live }))
}

/// Proxies (nginx) must pass each event on as it comes, not buffer the stream.
fn unbuffered(response: impl IntoResponse) -> Response {
    let mut response = response.into_response();
    response.headers_mut().insert(HeaderName::from_static("x-accel-buffering"), HeaderValue::from_static("no"));
    response
}

#[utoipa::path(get, path = "/api/channels/{slug}/events", tag = "channels", params(("slug" = String, Path)),
    responses((status = 200, content_type = "text/event-stream", body = ChannelState,
        description = "Server-Sent Events: `state` (a ChannelState) at once and on every change; `deleted` when the channel is"),
        (status = 404, body = ErrorBody)))]
pub async fn channel_events(State(state): State<AppState>, Slug(slug): Slug) -> Result<Response, ApiError> {
    let channel = channels::find_by_slug(&state.db, &slug).await?.ok_or(ApiError::NotFound)?;
    let following = state.live_events.follow(&state, &channel.id);
    let stop = state.live_events.stop.clone();
    // State: the receiver, the shutdown token, whether nothing was sent yet, whether the last word was said.
    let stream = futures_util::stream::unfold((following.state, stop, true, false), |(mut receiver, stop, first, done)| async move {
        if done {
            return None;
        }
        if !first {
            next_change(&mut receiver, &stop).await?;
        }
        loop {
            let snapshot = receiver.borrow_and_update().clone();
            match snapshot {
                Snapshot::Pending => next_change(&mut receiver, &stop).await?,
                Snapshot::Channel(current) => {
                    let event = Event::default().event("state").json_data(&*current).ok()?;
                    return Some((Ok::<_, Infallible>(event), (receiver, stop, false, false)));
                }
                Snapshot::Gone => return Some((Ok(Event::default().event("deleted").data("{}")), (receiver, stop, false, true))),
            }
        }
    });
    Ok(unbuffered(Sse::new(stream).keep_alive(KeepAlive::default())))
}

/// Waits for the next snapshot; `None` at shutdown or when the hub is gone.
async fn next_change(receiver: &mut watch::Receiver<Snapshot>, stop: &CancellationToken) -> Option<()> {
    tokio::select! {
        () = stop.cancelled() => None,
        changed = receiver.changed() => changed.ok(),
    }
}

#[derive(Serialize, ToSchema)]
pub struct ChannelChanged {
    pub channel_id: String,
}

#[utoipa::path(get, path = "/api/events", tag = "channels",
    responses((status = 200, content_type = "text/event-stream", body = ChannelChanged,
        description = "Server-Sent Events: `changed` whenever a channel goes live, ends, or changes its titles (re-read the live list)")))]
pub async fn site_events(State(state): State<AppState>) -> Response {
    state.live_events.start();
    let receiver = state.live_events.any_change.subscribe();
    let stop = state.live_events.stop.clone();
    let stream = futures_util::stream::unfold((receiver, stop), |(mut receiver, stop)| async move {
        let received = tokio::select! {
            () = stop.cancelled() => return None,
            received = receiver.recv() => received,
        };
        let channel_id = match received {
            Ok(channel_id) => channel_id.to_string(),
            // Missed some: say "something changed" all the same.
            Err(broadcast::error::RecvError::Lagged(_)) => String::new(),
            Err(broadcast::error::RecvError::Closed) => return None,
        };
        let event = Event::default().event("changed").json_data(ChannelChanged { channel_id }).ok()?;
        Some((Ok::<_, Infallible>(event), (receiver, stop)))
    });
    unbuffered(Sse::new(stream).keep_alive(KeepAlive::default()))
}
