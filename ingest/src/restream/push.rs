//! One restream target's push: connect (TCP, TLS for `rtmps://`), publish with
//! `crate::rtmp::client`, send the stream start and then media from a keyframe on, and report the
//! state. On any failure: report it, wait (1 s doubling up to `restream.max_retry_secs`, media
//! meanwhile discarded), and try again until the publish ends or the target is disabled.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferrocast_core::db::restreams::{self, RestreamState};
use ferrocast_core::restream_url::RestreamUrl;
use ferrocast_core::Db;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_util::sync::CancellationToken;

use super::{lock, Packet, RestreamSettings, StreamStart};
use crate::rtmp::client::{ClientError, PublishClient, PublishTarget};

/// A write to the target that takes longer than this means it is gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a live push reports its bitrate.
const REPORT_INTERVAL: Duration = Duration::from_secs(3);
const FIRST_RETRY: Duration = Duration::from_secs(1);

pub(super) struct Push {
    pub db: Db,
    pub settings: Arc<RestreamSettings>,
    pub restream_id: String,
    pub url: RestreamUrl,
    pub start: Arc<Mutex<StreamStart>>,
    pub packets: mpsc::Receiver<Packet>,
    pub stop: CancellationToken,
}

#[derive(Debug, thiserror::Error)]
enum PushError {
    #[error("{0}")]
    Address(#[from] ferrocast_core::outbound::TargetError),
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("TLS handshake failed: {0}")]
    Tls(std::io::Error),
    #[error("the target did not accept the publish within {0} s")]
    Timeout(u64),
    #[error("connection lost: {0}")]
    Io(#[from] std::io::Error),
    #[error("the target closed the connection")]
    Closed,
    #[error(transparent)]
    Protocol(#[from] ClientError),
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

impl Push {
    pub(super) async fn run(mut self) {
        let mut retry = FIRST_RETRY;
        let max_retry = Duration::from_secs(self.settings.config.max_retry_secs.max(1));
        loop {
            self.report(RestreamState::Connecting, None, None).await;
            let attempt_started = Instant::now();
            match self.push_once().await {
                // The publish ended (or the target was disabled): the target was told.
                Ok(()) => break,
                Err(e) => {
                    let error = e.to_string();
                    tracing::warn!(restream_id = %self.restream_id, target = %self.url.masked(), error = %error, "restream failed; retrying");
                    self.report(RestreamState::Retrying, Some(&error), None).await;
                }
            }
            // A push that stayed up a while starts over at the first delay.
            if attempt_started.elapsed() > max_retry * 2 {
                retry = FIRST_RETRY;
            }
            let wait = tokio::time::sleep(retry);
            tokio::pin!(wait);
            loop {
                tokio::select! {
                    () = &mut wait => break,
                    () = self.stop.cancelled() => {
                        self.report(RestreamState::Idle, None, None).await;
                        return;
                    }
                    packet = self.packets.recv() => if packet.is_none() {
                        self.report(RestreamState::Idle, None, None).await;
                        return;
                    },
                }
            }
            retry = (retry * 2).min(max_retry);
        }
        self.report(RestreamState::Idle, None, None).await;
    }

    async fn report(&self, state: RestreamState, error: Option<&str>, bitrate_kbps: Option<i64>) {
        if let Err(e) = restreams::report(&self.db, &self.restream_id, state, error, bitrate_kbps).await {
            tracing::warn!(restream_id = %self.restream_id, error = %e, "cannot record the restream state");
        }
    }

    async fn connect(&self) -> Result<Box<dyn Io>, PushError> {
        let addresses =
            ferrocast_core::outbound::resolve(&self.url.host, self.url.port, self.settings.config.allow_private_targets).await?;
        let tcp = TcpStream::connect(&addresses[..]).await.map_err(PushError::Connect)?;
        let _ = tcp.set_nodelay(true);
        if !self.url.tls {
            return Ok(Box::new(tcp));
        }
        let host = self.url.host.trim_start_matches('[').trim_end_matches(']').to_string();
        let name = ServerName::try_from(host).map_err(|e| PushError::Tls(std::io::Error::other(e)))?;
        let tls = tokio_rustls::TlsConnector::from(self.settings.tls.clone()).connect(name, tcp).await.map_err(PushError::Tls)?;
        Ok(Box::new(tls))
    }

    /// Connects, publishes, and pushes until the publish ends or the target is disabled (`Ok`: the
    /// target was told) or something fails.
    async fn push_once(&mut self) -> Result<(), PushError> {
        let timeout_secs = self.settings.config.connect_timeout_secs;
        let target = PublishTarget { app: self.url.app.clone(), tc_url: self.url.tc_url(), stream_name: self.url.stream_name.clone() };
        let (mut client, hello) = PublishClient::new(target);
        let mut stream = tokio::time::timeout(Duration::from_secs(timeout_secs), async {
            let mut stream = self.connect().await?;
            stream.write_all(&hello).await?;
            let mut buf = vec![0u8; 16 * 1024];
            while !client.is_live() {
                let n = stream.read(&mut buf).await?;
                if n == 0 {
                    return Err(PushError::Closed);
                }
                let mut out = Vec::new();
                client.feed(&buf[..n], &mut out)?;
                stream.write_all(&out).await?;
            }
            Ok(stream)
        })
        .await
        .map_err(|_| PushError::Timeout(timeout_secs))??;
        tracing::info!(restream_id = %self.restream_id, target = %self.url.masked(), "restream live");
        self.report(RestreamState::Live, None, Some(0)).await;

        // The stream start, then media from the next keyframe on, on a clock starting at zero.
        let mut out = Vec::new();
        {
            let start = lock(&self.start);
            if let Some(metadata) = &start.metadata {
                client.metadata(metadata.clone(), &mut out);
            }
            for (video, header) in [(true, &start.video_header), (false, &start.audio_header)] {
                if let Some(header) = header {
                    client.media(video, 0, header.clone(), &mut out);
                }
            }
        }
        write(&mut stream, &out).await?;
        let mut base: Option<i64> = None;
        let mut read_buf = vec![0u8; 4096];
        let mut sent_bytes = 0u64;
        let mut window_started = Instant::now();
        let mut report = tokio::time::interval(REPORT_INTERVAL);
        report.tick().await;
        loop {
            tokio::select! {
                packet = self.packets.recv() => {
                    let mut out = Vec::new();
                    match packet {
                        None => return finish(&mut client, &mut stream).await,
                        Some(Packet::Metadata(metadata)) => client.metadata(metadata, &mut out),
                        Some(Packet::Media(media)) => {
                            let timestamp = match base {
                                Some(base) => (media.timestamp_ms - base).max(0) as u32,
                                None if media.video && media.keyframe => {
                                    base = Some(media.timestamp_ms);
                                    0
                                }
                                // A sequence header that arrives before the first keyframe (the
                                // publisher had sent none when this push connected) goes out at once.
                                None if media.header => 0,
                                None => continue,
                            };
                            out.reserve(media.payload.len() + 64);
                            client.media(media.video, timestamp, media.payload, &mut out);
                        }
                    }
                    sent_bytes += out.len() as u64;
                    write(&mut stream, &out).await?;
                }
                read = stream.read(&mut read_buf) => {
                    let n = read?;
                    if n == 0 {
                        return Err(PushError::Closed);
                    }
                    let mut out = Vec::new();
                    client.feed(&read_buf[..n], &mut out)?;
                    write(&mut stream, &out).await?;
                }
                _ = report.tick() => {
                    let secs = window_started.elapsed().as_secs_f64().max(0.001);
                    let kbps = (sent_bytes as f64 * 8.0 / 1000.0 / secs).round() as i64;
                    self.report(RestreamState::Live, None, Some(kbps)).await;
                    sent_bytes = 0;
                    window_started = Instant::now();
                }
                () = self.stop.cancelled() => return finish(&mut client, &mut stream).await,
            }
        }
    }
}

async fn write(stream: &mut Box<dyn Io>, bytes: &[u8]) -> Result<(), PushError> {
    if bytes.is_empty() {
        return Ok(());
    }
    match tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(bytes)).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(PushError::Io(std::io::Error::new(std::io::ErrorKind::TimedOut, "the target stopped reading"))),
    }
}

/// Tells the target the broadcast is over and closes the connection.
async fn finish(client: &mut PublishClient, stream: &mut Box<dyn Io>) -> Result<(), PushError> {
    let mut out = Vec::new();
    client.finish(&mut out);
    let _ = write(stream, &out).await;
    let _ = tokio::time::timeout(Duration::from_secs(2), stream.shutdown()).await;
    Ok(())
}
