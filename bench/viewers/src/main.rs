//! Simulated viewers of one live HLS stream, for `bench/viewers.sh`: N clients following it as a
//! player outside low-latency mode does (hls.js's defaults), each on its own keep-alive HTTP/1.1
//! connection:
//!
//!   1. GET the media playlist; on the first load start three segments from the end (hls.js's
//!      live start position), later from the first segment not fetched yet;
//!   2. GET every segment not fetched yet, in order, each read to its last byte;
//!   3. reload the playlist one target duration after the previous reload began (half of it when
//!      nothing new was listed, as hls.js does), until the run ends.
//!
//! Viewers join evenly over the ramp. Latency is request sent → whole body in. Errors are any
//! status but 200, a failed connection, a timeout, or a playlist that names no segment; a viewer
//! whose connection failed reconnects and goes on. Prints one JSON object; asserts nothing.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

#[derive(Parser, Clone)]
struct Args {
    /// The stream's master playlist, `http://host:port/hls/{video_id}/master.m3u8`.
    master: String,
    /// How many viewers.
    #[arg(long, default_value_t = 1000)]
    viewers: usize,
    /// How long each viewer watches once all have joined, in seconds.
    #[arg(long, default_value_t = 60)]
    secs: u64,
    /// Seconds over which the viewers join, evenly.
    #[arg(long, default_value_t = 30)]
    ramp_secs: u64,
    /// The rendition every viewer watches, by name (`low` for `low/index.m3u8`); without it
    /// viewers are spread over all renditions in turn.
    #[arg(long)]
    rendition: Option<String>,
    /// A request not answered in full within this many seconds counts as an error.
    #[arg(long, default_value_t = 10)]
    timeout_secs: u64,
}

/// One viewer's (or, merged, everyone's) record.
#[derive(Default)]
struct Record {
    playlist_us: Vec<u32>,
    segment_us: Vec<u32>,
    segment_bytes: u64,
    errors: Vec<String>,
    reconnects: u64,
}

impl Record {
    fn merge(&mut self, other: Record) {
        self.playlist_us.extend(other.playlist_us);
        self.segment_us.extend(other.segment_us);
        self.segment_bytes += other.segment_bytes;
        self.reconnects += other.reconnects;
        self.errors.extend(other.errors);
    }
}

/// A URL this client can reach: plain HTTP, host and port, path with query.
#[derive(Clone, Debug)]
struct Target {
    address: SocketAddr,
    host: String,
    path: String,
}

impl Target {
    fn parse(url: &str) -> anyhow::Result<Target> {
        let rest = url.strip_prefix("http://").ok_or_else(|| anyhow!("only http:// URLs: {url}"))?;
        let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let address = std::net::ToSocketAddrs::to_socket_addrs(host)
            .with_context(|| format!("resolving {host}"))?
            .next()
            .ok_or_else(|| anyhow!("{host} has no address"))?;
        Ok(Target { address, host: host.to_string(), path: if path.is_empty() { "/".into() } else { path.to_string() } })
    }

    /// `uri` as written in a playlist fetched from this target: absolute, host-relative or
    /// relative to this path's directory (`../` resolved).
    fn join(&self, uri: &str) -> anyhow::Result<Target> {
        if uri.starts_with("http://") {
            return Target::parse(uri);
        }
        let path = if uri.starts_with('/') {
            uri.to_string()
        } else {
            let path_only = self.path.split('?').next().unwrap_or("");
            let mut parts: Vec<&str> = path_only.split('/').collect();
            parts.pop();
            for piece in uri.split('/') {
                match piece {
                    ".." => {
                        if parts.len() > 1 {
                            parts.pop();
                        }
                    }
                    "." => {}
                    piece => parts.push(piece),
                }
            }
            parts.join("/")
        };
        Ok(Target { address: self.address, host: self.host.clone(), path })
    }
}

/// The most a connection buffers of a response at a time.
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// One keep-alive HTTP/1.1 connection.
struct Connection {
    sender: SendRequest<Empty<Bytes>>,
}

impl Connection {
    async fn open(target: &Target) -> anyhow::Result<Connection> {
        let stream = TcpStream::connect(target.address).await.context("connect")?;
        stream.set_nodelay(true)?;
        // hyper's read buffer grows to the largest body read and stays there: 10,000 viewers of
        // 200 kB segments held 6 GB that way. Capped, bodies stream through a smaller one.
        let (sender, connection) = hyper::client::conn::http1::Builder::new()
            .max_buf_size(READ_BUFFER_BYTES)
            .handshake(TokioIo::new(stream))
            .await
            .context("handshake")?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Connection { sender })
    }

    /// GET `target`: the body, read to its end.
    async fn get(&mut self, target: &Target) -> anyhow::Result<Bytes> {
        self.sender.ready().await.context("connection closed")?;
        let request = hyper::Request::get(&target.path).header(hyper::header::HOST, &target.host).body(Empty::new())?;
        let response = self.sender.send_request(request).await.context("request")?;
        let status = response.status();
        let body = response.into_body().collect().await.context("body")?.to_bytes();
        if status != hyper::StatusCode::OK {
            bail!("{status} for {}", target.path);
        }
        Ok(body)
    }
}

/// What a media playlist says that a viewer needs.
struct MediaPlaylist {
    target_duration: Duration,
    media_sequence: u64,
    segments: Vec<String>,
}

fn parse_media_playlist(text: &str) -> anyhow::Result<MediaPlaylist> {
    let mut target_duration = None;
    let mut media_sequence = 0;
    let mut segments = Vec::new();
    for line in text.lines() {
        if let Some(value) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
            target_duration = Some(Duration::from_secs(value.trim().parse()?));
        } else if let Some(value) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            media_sequence = value.trim().parse()?;
        } else if !line.is_empty() && !line.starts_with('#') {
            segments.push(line.to_string());
        }
    }
    let target_duration = target_duration.ok_or_else(|| anyhow!("no EXT-X-TARGETDURATION"))?;
    if segments.is_empty() {
        bail!("a playlist without segments");
    }
    Ok(MediaPlaylist { target_duration, media_sequence, segments })
}

/// The variant playlists a master playlist lists, in order.
fn variants(master: &str) -> Vec<String> {
    master.lines().filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_string).collect()
}

fn micros(since: Instant) -> u32 {
    u32::try_from(since.elapsed().as_micros()).unwrap_or(u32::MAX)
}

/// One viewer, from joining until `until`.
async fn watch(playlist: Target, until: Instant, timeout: Duration) -> Record {
    let mut record = Record::default();
    let mut connection: Option<Connection> = None;
    // The first segment not fetched yet; `None` until the first playlist.
    let mut next_msn: Option<u64> = None;
    while Instant::now() < until {
        let reload_started = Instant::now();
        let mut interval = Duration::from_secs(1);
        let step = async {
            let open = match connection.as_mut() {
                Some(open) => open,
                None => connection.insert(Connection::open(&playlist).await?),
            };
            let text = open.get(&playlist).await?;
            record.playlist_us.push(micros(reload_started));
            let media = parse_media_playlist(std::str::from_utf8(&text)?)?;
            interval = media.target_duration;
            let last_msn = media.media_sequence + media.segments.len() as u64 - 1;
            let from = next_msn.unwrap_or(last_msn.saturating_sub(2)).max(media.media_sequence);
            if from > last_msn {
                // Nothing new: reload sooner.
                interval /= 2;
            }
            for msn in from..=last_msn {
                let uri = &media.segments[(msn - media.media_sequence) as usize];
                let segment = playlist.join(uri)?;
                let started = Instant::now();
                let bytes = open.get(&segment).await?;
                record.segment_us.push(micros(started));
                record.segment_bytes += bytes.len() as u64;
                next_msn = Some(msn + 1);
            }
            anyhow::Ok(())
        };
        match tokio::time::timeout(timeout, step).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                record.errors.push(format!("{e:#}"));
                if connection.take().is_some() {
                    record.reconnects += 1;
                }
            }
            Err(_) => {
                record.errors.push(format!("no answer within {} s", timeout.as_secs()));
                connection = None;
                record.reconnects += 1;
            }
        }
        tokio::time::sleep_until((reload_started + interval).into()).await;
    }
    record
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[index]) / 1000.0
}

fn summary(mut samples: Vec<u32>) -> serde_json::Value {
    samples.sort_unstable();
    serde_json::json!({
        "count": samples.len(),
        "p50_ms": percentile(&samples, 0.50),
        "p99_ms": percentile(&samples, 0.99),
        "p999_ms": percentile(&samples, 0.999),
        "max_ms": percentile(&samples, 1.0),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let master = Target::parse(&args.master)?;
    let mut connection = Connection::open(&master).await?;
    let text = connection.get(&master).await?;
    let listed = variants(std::str::from_utf8(&text)?);
    if listed.is_empty() {
        bail!("the master playlist lists no variant");
    }
    let chosen: Vec<Target> = match args.rendition {
        Some(name) => {
            let uri = listed
                .iter()
                .find(|uri| uri.starts_with(&format!("{name}/")))
                .ok_or_else(|| anyhow!("no rendition {name} in {listed:?}"))?;
            vec![master.join(uri)?]
        }
        None => listed.iter().map(|uri| master.join(uri)).collect::<anyhow::Result<_>>()?,
    };
    let started = Instant::now();
    let ramp = Duration::from_secs(args.ramp_secs);
    let until = started + ramp + Duration::from_secs(args.secs);
    let timeout = Duration::from_secs(args.timeout_secs);
    let mut viewers = tokio::task::JoinSet::new();
    for n in 0..args.viewers {
        let playlist = chosen[n % chosen.len()].clone();
        let joins = started + ramp.mul_f64(n as f64 / args.viewers.max(1) as f64);
        viewers.spawn(async move {
            tokio::time::sleep_until(joins.into()).await;
            watch(playlist, until, timeout).await
        });
    }
    let mut all = Record::default();
    while let Some(done) = viewers.join_next().await {
        all.merge(done?);
    }
    let wall = started.elapsed().as_secs_f64();
    let error_count = all.errors.len();
    let mut examples = all.errors;
    examples.sort();
    examples.dedup();
    examples.truncate(10);
    let requests = all.playlist_us.len() + all.segment_us.len();
    let report = serde_json::json!({
        "viewers": args.viewers,
        "renditions": chosen.iter().map(|t| t.path.clone()).collect::<Vec<_>>(),
        "seconds": wall,
        "requests": requests,
        "requests_per_s": requests as f64 / wall,
        "segment_mbytes_per_s": all.segment_bytes as f64 / wall / 1e6,
        "errors": error_count,
        "error_examples": examples,
        "reconnects": all.reconnects,
        "playlist": summary(all.playlist_us),
        "segment": summary(all.segment_us),
    });
    println!("{report}");
    Ok(())
}
