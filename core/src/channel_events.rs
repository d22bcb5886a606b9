//! What happens on a channel while people watch it: its live state or titles changed, a chat
//! message was sent or deleted. Pages that show a channel follow these instead of polling.
//!
//! Whoever makes a change publishes it here after it is in the database. Subscribers in this
//! process hear it at once. With Postgres, where several nodes share the database, every event is
//! also sent with `pg_notify` and each node's listener passes on the events of the others, so a
//! publish on an ingest node reaches a viewer whose page is served by an API node. An event is a
//! hint to re-read (or, for chat, the message itself): a lost one is repaired by the next refresh
//! of whoever follows the channel, never by guessing.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::db::Db;

/// The Postgres notification channel all nodes listen on.
const NOTIFY_CHANNEL: &str = "ferrocast_channel_events";
/// Events buffered for a slow subscriber before it is told it lagged (and re-reads everything).
const LOCAL_CAPACITY: usize = 4096;

/// One chat message as clients see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatLine {
    pub id: String,
    pub username: String,
    pub text: String,
    /// RFC 3339.
    pub at: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChannelEvent {
    /// Its live state, title, description or visibility may have changed: re-read it.
    Changed,
    ChatMessage(ChatLine),
    ChatDeleted {
        id: String,
    },
}

/// An event and the channel it is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub channel_id: String,
    pub event: ChannelEvent,
    /// The node that published it: its own notifications come back to it and are skipped.
    node: String,
}

pub struct ChannelEvents {
    node: String,
    local: broadcast::Sender<Arc<Envelope>>,
    postgres: Option<PgPool>,
    listening: std::sync::Once,
}

impl ChannelEvents {
    pub fn new(db: &Db) -> Arc<Self> {
        let (local, _) = broadcast::channel(LOCAL_CAPACITY);
        let postgres = match db {
            Db::Postgres(pool) => Some(pool.clone()),
            Db::Sqlite(_) => None,
        };
        Arc::new(Self { node: crate::ids::new_id(), local, postgres, listening: std::sync::Once::new() })
    }

    /// Every event of every channel from now on, this node's and (with Postgres) the others'.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Envelope>> {
        self.local.subscribe()
    }

    /// Tells every follower of `channel_id` on every node. Call it after the change is stored.
    pub async fn publish(&self, channel_id: &str, event: ChannelEvent) {
        let envelope = Envelope { channel_id: channel_id.to_string(), event, node: self.node.clone() };
        if let Some(pool) = &self.postgres {
            match serde_json::to_string(&envelope) {
                Ok(payload) => {
                    if let Err(e) = sqlx::query("SELECT pg_notify($1, $2)").bind(NOTIFY_CHANNEL).bind(payload).execute(pool).await {
                        tracing::warn!(error = %e, "could not tell the other nodes about a channel event");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "channel event not serialisable"),
            }
        }
        // No subscriber yet is fine: nobody is following.
        let _ = self.local.send(Arc::new(envelope));
    }

    /// Shorthand for [`ChannelEvent::Changed`].
    pub async fn changed(&self, channel_id: &str) {
        self.publish(channel_id, ChannelEvent::Changed).await;
    }

    /// Starts [`ChannelEvents::listen`] on the runtime, once however often it is asked (by
    /// whichever part of this node first needs other nodes' events).
    pub fn start_listening(self: &Arc<Self>, stop: CancellationToken) {
        self.listening.call_once(|| {
            tokio::spawn(self.clone().listen(stop));
        });
    }

    /// With Postgres: passes the other nodes' events to this node's subscribers until `stop`.
    /// Reconnects after a lost connection (events sent meanwhile are lost; followers' periodic
    /// refresh covers them). Returns at once on SQLite, where this is the only node.
    async fn listen(self: Arc<Self>, stop: CancellationToken) {
        let Some(pool) = self.postgres.clone() else { return };
        while !stop.is_cancelled() {
            let mut listener = match PgListener::connect_with(&pool).await {
                Ok(listener) => listener,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for other nodes' channel events; retrying");
                    tokio::select! { () = stop.cancelled() => return, () = tokio::time::sleep(Duration::from_secs(2)) => continue }
                }
            };
            if let Err(e) = listener.listen(NOTIFY_CHANNEL).await {
                tracing::warn!(error = %e, "cannot listen for other nodes' channel events; retrying");
                tokio::select! { () = stop.cancelled() => return, () = tokio::time::sleep(Duration::from_secs(2)) => continue }
            }
            loop {
                let notification = tokio::select! {
                    () = stop.cancelled() => return,
                    notification = listener.recv() => notification,
                };
                match notification {
                    Ok(notification) => match serde_json::from_str::<Envelope>(notification.payload()) {
                        Ok(envelope) if envelope.node != self.node => {
                            let _ = self.local.send(Arc::new(envelope));
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "unreadable channel event from another node"),
                    },
                    Err(e) => {
                        // PgListener reconnects by itself on its next recv; say that events may be lost.
                        tracing::warn!(error = %e, "lost the connection for other nodes' channel events");
                        tokio::select! { () = stop.cancelled() => return, () = tokio::time::sleep(Duration::from_secs(1)) => {} }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_travel_as_json_between_nodes() {
        let line = ChatLine { id: "m1".into(), username: "ana".into(), text: "hi \"there\"".into(), at: "2026-01-01T00:00:00Z".into() };
        let envelope = Envelope { channel_id: "c1".into(), event: ChannelEvent::ChatMessage(line), node: "n".into() };
        let json = serde_json::to_string(&envelope).expect("serialises");
        assert_eq!(serde_json::from_str::<Envelope>(&json).expect("parses"), envelope);
        let changed = Envelope { channel_id: "c1".into(), event: ChannelEvent::Changed, node: "n".into() };
        assert!(serde_json::to_string(&changed).expect("serialises").contains(r#""kind":"changed""#));
    }
}
