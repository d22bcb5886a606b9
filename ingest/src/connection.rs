//! The socket task of one RTMP connection: read bytes, feed the session, write what it answers, and
//! act on its requests (authorise a publish, hand media to the publisher).
//!
//! Every way a connection can end is explicit in [`Ended`]; whatever happens, an accepted publish is
//! drained and handed back to the live manager. A misbehaving client only ever closes its own
//! connection. The stream key is never logged: a refusal logs the client address only.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ferrocast_core::shutdown::Shutdown;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use crate::live::{EndReason, Ingest};
use crate::publish_auth::authorize_publish;
use crate::publisher::Publisher;
use crate::session::{Action, RtmpSession, SessionError, SessionLimits};

const READ_BUFFER: usize = 64 * 1024;

static NEXT_CONNECTION_ID: AtomicU64 = AtomicU64::new(1);

/// How a connection ended.
#[derive(Debug, thiserror::Error)]
enum Ended {
    #[error("closed by the client")]
    Closed,
    #[error("server shutting down")]
    Shutdown,
    #[error("replaced by a newer publish on the same channel")]
    Replaced,
    /// The channel's stream key was rotated (or the channel deleted) while publishing.
    #[error("its stream key was revoked")]
    Revoked,
    /// The publish was refused (wrong key); the refusal was sent and logged.
    #[error("publish refused")]
    Refused,
    #[error("{0} timed out")]
    TimedOut(&'static str),
    #[error("socket error: {0}")]
    Io(std::io::Error),
    #[error(transparent)]
    Protocol(SessionError),
    #[error("{0}")]
    Publish(String),
}

/// Runs one connection over `stream` (a TCP socket, or a TLS stream whose handshake is done) until
/// it ends. `publish_deadline` was fixed at accept: the RTMP handshake, connect and publish must be
/// done by then (for RTMPS the TLS handshake already spent part of it).
pub async fn serve<S>(stream: S, peer: SocketAddr, publish_deadline: Instant, ingest: Arc<Ingest>, shutdown: Shutdown)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let connection_id = NEXT_CONNECTION_ID.fetch_add(1, Ordering::Relaxed);
    let (mut reader, mut writer) = tokio::io::split(stream);
    let rtmp = &ingest.rtmp;
    let mut session = RtmpSession::new(SessionLimits {
        max_message_bytes: rtmp.max_message_bytes,
        max_buffered_bytes: rtmp.max_buffered_bytes,
        max_chunk_streams: rtmp.max_chunk_streams,
        max_command_bytes: rtmp.max_command_bytes,
    });
    let mut publisher: Option<Publisher> = None;
    let mut buffer = vec![0u8; READ_BUFFER];
    // Until a publish, reads wait at most until `publish_deadline`: a client trickling a byte at a
    // time cannot hold a connection slot past it.
    let mut has_published = false;
    let idle_timeout = Duration::from_secs(rtmp.idle_timeout_secs);
    let shutdown_signal = shutdown.signalled();
    tokio::pin!(shutdown_signal);

    let ended = loop {
        has_published |= publisher.is_some();
        let deadline = if has_published { Instant::now() + idle_timeout } else { publish_deadline };
        let kicked = publisher.as_ref().map(|p| p.lease.kick.clone());
        let revoked = publisher.as_ref().map(|p| p.lease.revoked.clone());
        let read = tokio::select! {
            () = &mut shutdown_signal => break Ended::Shutdown,
            () = async { match &kicked { Some(kick) => kick.cancelled().await, None => std::future::pending().await } } => break Ended::Replaced,
            () = async { match &revoked { Some(token) => token.cancelled().await, None => std::future::pending().await } } => break Ended::Revoked,
            read = tokio::time::timeout_at(deadline, reader.read(&mut buffer)) => read,
        };
        let n = match read {
            Err(_) if !has_published => break Ended::TimedOut("handshake and publish"),
            Err(_) => break Ended::TimedOut("idle"),
            Ok(Err(e)) => break Ended::Io(e),
            Ok(Ok(0)) => break Ended::Closed,
            Ok(Ok(n)) => n,
        };
        let actions = match session.feed(&buffer[..n]) {
            Ok(actions) => actions,
            Err(e) => break Ended::Protocol(e),
        };
        match act(actions, &mut session, &mut publisher, &mut writer, &ingest, peer, connection_id, idle_timeout).await {
            Ok(()) => {}
            Err(ended) => break ended,
        }
    };

    match &ended {
        Ended::Closed | Ended::Shutdown | Ended::Replaced => tracing::debug!(%peer, %ended, "RTMP connection ended"),
        Ended::Refused => {}
        other => tracing::info!(%peer, reason = %other, "RTMP connection closed"),
    }
    if let Some(publisher) = publisher {
        let reason = match ended {
            Ended::Shutdown => EndReason::Shutdown,
            Ended::Replaced => EndReason::Replaced,
            Ended::Publish(message) => EndReason::Failed(message),
            _ => EndReason::Disconnected,
        };
        publisher.end(reason).await;
    }
    let _ = writer.shutdown().await;
}

#[allow(clippy::too_many_arguments)]
async fn act(
    actions: Vec<Action>,
    session: &mut RtmpSession,
    publisher: &mut Option<Publisher>,
    writer: &mut (impl AsyncWrite + Unpin),
    ingest: &Arc<Ingest>,
    peer: SocketAddr,
    connection_id: u64,
    write_timeout: Duration,
) -> Result<(), Ended> {
    // Deciding a publish reads what the peer sent after it; those actions are acted on next.
    let mut queue: VecDeque<Action> = actions.into();
    while let Some(action) = queue.pop_front() {
        match action {
            Action::Send(bytes) => write(writer, &bytes, write_timeout).await?,
            Action::PublishRequested { request_id, stream_name } => {
                if publisher.is_some() {
                    let refusal = session.reject_publish(request_id, "already publishing on this connection").map_err(Ended::Protocol)?;
                    queue.extend(refusal);
                    continue;
                }
                let channel = match authorize_publish(&ingest.db, crate::publish_auth::LIVE_APP, &stream_name).await {
                    Ok(channel) => channel,
                    Err(e) => {
                        tracing::error!(error = %e, "publish check failed");
                        None
                    }
                };
                let Some(channel) = channel else {
                    metrics::counter!("ferrocast_rtmp_publishes_total", "result" => "refused").increment(1);
                    tracing::warn!(%peer, "publish refused: unknown stream key");
                    let refusal = session.reject_publish(request_id, "unknown stream key").map_err(Ended::Protocol)?;
                    send_all(writer, refusal, write_timeout).await?;
                    return Err(Ended::Refused);
                };
                let lease = ingest.begin_publish(&channel, connection_id).await.map_err(|e| Ended::Publish(e.to_string()))?;
                metrics::counter!("ferrocast_rtmp_publishes_total", "result" => "accepted").increment(1);
                tracing::info!(%peer, channel = %channel.slug, video_id = %lease.video_id, resumed = lease.resumed, "publish accepted");
                *publisher = Some(Publisher::new(ingest.clone(), lease));
                let accepted = session.accept_publish(request_id).map_err(Ended::Protocol)?;
                queue.extend(accepted);
            }
            Action::Media { kind, timestamp_ms, payload } => {
                if let Some(publisher) = publisher.as_mut() {
                    if let Err(e) = publisher.media(kind, timestamp_ms, payload).await {
                        tracing::warn!(%peer, video_id = %publisher.lease.video_id, error = %e, "publish ended");
                        return Err(Ended::Publish(e.to_string()));
                    }
                }
            }
            Action::Metadata(metadata) => {
                if let Some(publisher) = publisher.as_mut() {
                    publisher.set_metadata(metadata);
                }
            }
            // The publisher may publish again on this connection; until then it is idle.
            Action::PublishFinished => {
                if let Some(publisher) = publisher.take() {
                    publisher.end(EndReason::Disconnected).await;
                }
            }
        }
    }
    Ok(())
}

async fn send_all(writer: &mut (impl AsyncWrite + Unpin), actions: Vec<Action>, timeout: Duration) -> Result<(), Ended> {
    for action in actions {
        if let Action::Send(bytes) = action {
            write(writer, &bytes, timeout).await?;
        }
    }
    Ok(())
}

async fn write(writer: &mut (impl AsyncWrite + Unpin), bytes: &[u8], timeout: Duration) -> Result<(), Ended> {
    match tokio::time::timeout(timeout, writer.write_all(bytes)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Ended::Io(e)),
        Err(_) => Err(Ended::TimedOut("write")),
    }
}
