//! A connection's `/hls/` requests answered by a small HTTP/1.1 loop of our own, so that a
//! segment on local storage goes from the page cache to the socket with `sendfile(2)` instead of
//! being copied out of memory by `write` (docs/performance.md, "Origin": that copy was 62 % of the
//! server's CPU on segments). A viewer's connection asks for nothing else: playlists and segments,
//! again and again, on one keep-alive connection.
//!
//! The loop answers a request itself only when it is a plain HTTP/1.1 `GET` or `HEAD` of an
//! `/hls/` path the origin takes (`ferrocast_origin::direct::takes`), with no body and no upgrade.
//! At the first request it does not answer, the connection goes to hyper for the rest of its life,
//! starting with the bytes read so far ([`Rewound`]), and is served as every other connection is.
//! The header deadline is the listener's: a client must send a request's head within
//! `http.header_read_timeout_secs` of the loop starting to wait for it, or the connection closes.
//! Its timer is armed once and moved on only when it fires early, not set and cleared around every
//! request (that was 1.8 % of a playlist's CPU, docs/performance.md §8).

use std::cell::RefCell;
use std::future::Future;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::HttpBody as _;
use axum::http::{header, request, HeaderName, HeaderValue, Method, Request, StatusCode, Uri, Version};
use axum::response::Response;
use bytes::{Buf, Bytes, BytesMut};
use ferrocast_origin::{direct, FileBody, OriginState};
use http_body_util::BodyExt;
use nix::sys::socket::{send, MsgFlags};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, Interest, ReadBuf};
use tokio::net::TcpStream;

use crate::http_server::{add_nosniff, HttpApp};

/// A request head that has not ended within this many bytes goes to hyper, which has its own
/// limit and answer for it.
const MAX_HEAD_BYTES: usize = 16 << 10;
/// Headers a request may have for this loop to answer it (hyper takes the rest).
const MAX_HEADERS: usize = 32;
/// Bodies up to this size go out in the same `write` as the head.
const INLINE_BODY_BYTES: usize = 16 << 10;

/// How a connection left the loop.
pub enum Served {
    /// Closed: by the client, after `Connection: close`, at the header deadline, on a write error
    /// or at shutdown.
    Closed,
    /// Its next request is not one the loop answers: hyper serves the connection from here.
    HandOver(Rewound),
}

/// Serves `connection`'s `/hls/` requests from `peer` until it closes or asks for something else.
/// `stop` is the server's shutdown: an idle connection then closes, a request in flight is
/// answered first.
pub async fn serve(
    connection: Rewound,
    peer: SocketAddr,
    app: &HttpApp,
    origin: &OriginState,
    header_timeout: Duration,
    stop: impl Future<Output = ()>,
) -> Served {
    tokio::pin!(stop);
    let mut stopping = false;
    let Rewound { unread, mut stream } = connection;
    let mut buf = BytesMut::with_capacity(4096.max(unread.len()));
    buf.extend_from_slice(&unread);
    let header_deadline = tokio::time::sleep(header_timeout);
    tokio::pin!(header_deadline);
    loop {
        let waiting_since = tokio::time::Instant::now();
        let (request, head_len, close) = loop {
            match parse(&buf) {
                Head::Answerable { request, len, close } => break (request, len, close),
                Head::Partial if buf.len() < MAX_HEAD_BYTES => {}
                Head::Partial | Head::NotOurs => return Served::HandOver(Rewound { unread: buf.freeze(), stream }),
            }
            if stopping && buf.is_empty() {
                return Served::Closed;
            }
            tokio::select! {
                biased;
                read = stream.read_buf(&mut buf) => match read {
                    Ok(0) | Err(_) => return Served::Closed,
                    Ok(_) => {}
                },
                () = &mut header_deadline => {
                    // It was armed for an earlier wait: this one's deadline may still be ahead.
                    let deadline = waiting_since + header_timeout;
                    if tokio::time::Instant::now() >= deadline {
                        return Served::Closed;
                    }
                    header_deadline.as_mut().reset(deadline);
                }
                () = &mut stop, if !stopping => stopping = true,
            }
        };
        let Some(mut response) = direct::respond(origin, peer.ip(), &request).await else {
            // A query the origin cannot parse: the router answers it, with its usual 400.
            return Served::HandOver(Rewound { unread: buf.freeze(), stream });
        };
        app.request_counters.increment(ferrocast_origin::ROUTE, &request.method, response.status().as_u16());
        add_nosniff(&mut response);
        buf.advance(head_len);
        let close = close || stopping;
        if let Err(e) = write_response(&mut stream, response, request.method == Method::HEAD, close).await {
            // The viewer went away mid-answer: its business, nobody else's.
            tracing::debug!(%peer, error = %e, "HLS connection ended with an error");
            return Served::Closed;
        }
        if close {
            let _ = stream.shutdown().await;
            return Served::Closed;
        }
    }
}

/// What the bytes read so far hold.
#[derive(Debug)]
// One lives on the stack per request, never in a collection: boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
enum Head {
    /// Not a whole head yet.
    Partial,
    /// A request this loop answers, `len` bytes long; `close` when the client asked to close after it.
    Answerable { request: request::Parts, len: usize, close: bool },
    /// Anything else (another method or path, a body, an upgrade, HTTP/1.0, a malformed head):
    /// hyper's.
    NotOurs,
}

fn parse(buf: &[u8]) -> Head {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    let len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Head::Partial,
        Err(_) => return Head::NotOurs,
    };
    let method = match parsed.method {
        Some("GET") => Method::GET,
        Some("HEAD") => Method::HEAD,
        _ => return Head::NotOurs,
    };
    let (Some(1), Some(Ok(uri))) = (parsed.version, parsed.path.map(str::parse::<Uri>)) else { return Head::NotOurs };
    if !direct::takes(&method, &uri) {
        return Head::NotOurs;
    }
    let (mut request, ()) = Request::new(()).into_parts();
    (request.method, request.uri, request.version) = (method, uri, Version::HTTP_11);
    let mut close = false;
    for field in parsed.headers.iter() {
        let name = field.name;
        let has_body = name.eq_ignore_ascii_case("content-length") && field.value != b"0";
        if has_body || ["transfer-encoding", "upgrade", "expect"].iter().any(|other| name.eq_ignore_ascii_case(other)) {
            return Head::NotOurs;
        }
        if name.eq_ignore_ascii_case("connection") {
            close |= field.value.split(|b| *b == b',').any(|token| token.trim_ascii().eq_ignore_ascii_case(b"close"));
        }
        // Only what the answer depends on is kept: a browser's dozen other headers would each be
        // copied for nothing.
        if direct::READ_HEADERS.iter().any(|read| name.eq_ignore_ascii_case(read)) {
            let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_bytes(field.value)) else {
                return Head::NotOurs;
            };
            request.headers.append(name, value);
        }
    }
    Head::Answerable { request, len, close }
}

/// Writes `response` as HTTP/1.1: its headers with the length, the date and (when `close`)
/// `Connection: close`, then its body unless `head_only` or its status has none. A body that is a
/// file's range ([`FileBody`]) is sent with `sendfile(2)`.
async fn write_response(stream: &mut TcpStream, response: Response, head_only: bool, close: bool) -> io::Result<()> {
    let file = FileBody::of(&response).cloned();
    let (parts, body) = response.into_parts();
    let bodiless = parts.status == StatusCode::NOT_MODIFIED || parts.status == StatusCode::NO_CONTENT;
    let body = match &file {
        // The same bytes are in the file.
        Some(_) => Bytes::new(),
        None => whole_body(body).await?,
    };
    let len = file.as_ref().map_or(body.len() as u64, |file| file.range.end - file.range.start);

    let mut head = Vec::with_capacity(512);
    write!(head, "HTTP/1.1 {} {}\r\n", parts.status.as_str(), parts.status.canonical_reason().unwrap_or(""))?;
    for (name, value) in &parts.headers {
        if [header::CONTENT_LENGTH, header::TRANSFER_ENCODING, header::CONNECTION, header::DATE].contains(name) {
            continue;
        }
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"date: ");
    write_date(&mut head);
    head.extend_from_slice(b"\r\n");
    if !bodiless {
        write!(head, "content-length: {len}\r\n")?;
    }
    if close {
        head.extend_from_slice(b"connection: close\r\n");
    }
    head.extend_from_slice(b"\r\n");

    if head_only || bodiless || len == 0 {
        return stream.write_all(&head).await;
    }
    match file {
        Some(file) => {
            send_more(stream, &head).await?;
            send_file(stream, &file).await?;
            metrics::counter!("ferrocast_http_sendfile_bytes_total").increment(len);
            Ok(())
        }
        None if body.len() <= INLINE_BODY_BYTES => {
            head.extend_from_slice(&body);
            stream.write_all(&head).await
        }
        None => {
            send_more(stream, &head).await?;
            stream.write_all(&body).await
        }
    }
}

/// The body's bytes. The origin's answers are one frame of shared bytes, taken as they are
/// (`axum::body::to_bytes` would first collect even that one frame into a list).
async fn whole_body(mut body: axum::body::Body) -> io::Result<Bytes> {
    let first = match body.frame().await {
        None => return Ok(Bytes::new()),
        Some(frame) => frame.map_err(io::Error::other)?.into_data().unwrap_or_default(),
    };
    if body.is_end_stream() {
        return Ok(first);
    }
    let rest = body.collect().await.map_err(io::Error::other)?.to_bytes();
    Ok([first, rest].concat().into())
}

/// Appends the `Date` header's value: the time formatted once a second on each thread, as hyper
/// does, rather than for every request (a playlist is answered in a few microseconds).
fn write_date(head: &mut Vec<u8>) {
    thread_local! {
        static FORMATTED: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let now = SystemTime::now();
    let second = now.duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs());
    FORMATTED.with_borrow_mut(|(at, date)| {
        if *at != second {
            *at = second;
            *date = httpdate::fmt_http_date(now);
        }
        head.extend_from_slice(date.as_bytes());
    });
}

/// Sends `bytes` with `MSG_MORE`: the kernel holds them for the body that follows, so that a
/// small head does not go out in a packet of its own.
async fn send_more(stream: &TcpStream, mut bytes: &[u8]) -> io::Result<()> {
    // nix names no MSG_MORE; the flag is Linux's.
    let more = MsgFlags::from_bits_retain(nix::libc::MSG_MORE);
    while !bytes.is_empty() {
        let sent = stream.async_io(Interest::WRITABLE, || send(stream.as_raw_fd(), bytes, more).map_err(io::Error::from)).await?;
        bytes = &bytes[sent..];
    }
    Ok(())
}

/// Sends `body`'s range of its file, as fast as the socket takes it.
async fn send_file(stream: &TcpStream, body: &FileBody) -> io::Result<()> {
    let mut offset = i64::try_from(body.range.start).map_err(io::Error::other)?;
    let end = i64::try_from(body.range.end).map_err(io::Error::other)?;
    while offset < end {
        let count = usize::try_from(end - offset).map_err(io::Error::other)?;
        let sent = stream
            .async_io(Interest::WRITABLE, || {
                nix::sys::sendfile::sendfile(stream, &*body.file, Some(&mut offset), count).map_err(io::Error::from)
            })
            .await?;
        if sent == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the file ended before the body did"));
        }
    }
    Ok(())
}

/// A connection handed to hyper, with the bytes the loop had read and not answered: they are read
/// again first.
pub struct Rewound {
    unread: Bytes,
    stream: TcpStream,
}

impl Rewound {
    /// `stream` with nothing read yet.
    pub fn new(stream: TcpStream) -> Self {
        Self { unread: Bytes::new(), stream }
    }

    /// The connection taken out of the runtime it was served on, to be served on another.
    pub fn detach(self) -> io::Result<Detached> {
        Ok(Detached { unread: self.unread, stream: self.stream.into_std()? })
    }
}

/// A connection between two runtimes (`hls_loops.rs`): its socket belongs to neither reactor.
pub struct Detached {
    unread: Bytes,
    stream: std::net::TcpStream,
}

impl Detached {
    /// The connection registered with the runtime this is called on.
    pub fn attach(self) -> io::Result<Rewound> {
        Ok(Rewound { unread: self.unread, stream: TcpStream::from_std(self.stream)? })
    }
}

impl AsyncRead for Rewound {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.unread.is_empty() {
            return Pin::new(&mut this.stream).poll_read(cx, buf);
        }
        let n = this.unread.len().min(buf.remaining());
        buf.put_slice(&this.unread[..n]);
        this.unread.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Rewound {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answerable(head: &str) -> Option<(request::Parts, usize, bool)> {
        match parse(head.as_bytes()) {
            Head::Answerable { request, len, close } => Some((request, len, close)),
            _ => None,
        }
    }

    #[test]
    fn plain_hls_gets_are_answered_and_everything_else_goes_to_hyper() {
        let segment = "GET /hls/v/low/00000001.m4s HTTP/1.1\r\nHost: a\r\nRange: bytes=0-9\r\n\r\n";
        let (request, len, close) = answerable(segment).expect("a segment");
        assert_eq!((request.method, request.uri.path(), len, close), (Method::GET, "/hls/v/low/00000001.m4s", segment.len(), false));
        assert_eq!(request.headers["range"], "bytes=0-9");
        assert!(!request.headers.contains_key("host"), "a header the origin does not read is not kept");
        let pipelined = format!("{segment}GET /api/channels HTTP/1.1\r\n\r\n");
        assert_eq!(answerable(&pipelined).expect("the first of two").1, segment.len(), "the next request stays unread");
        assert!(answerable("HEAD /hls/v/master.m3u8?_HLS_msn=3 HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n").expect("head").2);

        for other in [
            "GET /api/channels HTTP/1.1\r\n\r\n",
            "POST /hls/v/master.m3u8 HTTP/1.1\r\nContent-Length: 2\r\n\r\nab",
            "OPTIONS /hls/v/master.m3u8 HTTP/1.1\r\n\r\n",
            "GET /hls/v/master.m3u8 HTTP/1.0\r\n\r\n",
            "GET /hls/%76/master.m3u8 HTTP/1.1\r\n\r\n",
            "GET /hls/v/master.m3u8 HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
            "GET /hls/v/master.m3u8 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET /hls/v/master.m3u8 HTTP/1.1\r\nBad Header\r\n\r\n",
        ] {
            assert!(matches!(parse(other.as_bytes()), Head::NotOurs), "{other:?}");
        }
        assert!(matches!(parse(b"GET /hls/v/master.m3u8 HTTP/1.1\r\nHost: a\r\n"), Head::Partial));
        assert!(matches!(parse(b""), Head::Partial));
    }
}
