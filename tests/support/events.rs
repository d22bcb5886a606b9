//! Following a channel as an open page does: its Server-Sent Events and its chat socket.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// A `text/event-stream` response read event by event.
pub struct EventStream {
    response: reqwest::Response,
    buffer: String,
}

impl EventStream {
    pub async fn open(client: &reqwest::Client, url: &str) -> EventStream {
        let response = client.get(url).send().await.expect("event stream request");
        assert_eq!(response.status(), 200, "{url}");
        let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        assert!(content_type.starts_with("text/event-stream"), "{url} answered {content_type}");
        EventStream { response, buffer: String::new() }
    }

    /// The next named event and its JSON data (keep-alive comments are skipped); `None` when
    /// nothing came within `within` or the stream ended.
    pub async fn next(&mut self, within: Duration) -> Option<(String, Value)> {
        let deadline = Instant::now() + within;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut name = String::from("message");
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("event:") {
                        name = value.trim().to_string();
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push_str(value.trim_start());
                    }
                }
                if !data.is_empty() {
                    return Some((name, serde_json::from_str(&data).expect("event data is JSON")));
                }
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            let chunk = tokio::time::timeout(left, self.response.chunk()).await.ok()?.expect("event stream read")?;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Skips events until one satisfies `wanted`; returns it and when it arrived.
    pub async fn wait_for(&mut self, within: Duration, wanted: impl Fn(&str, &Value) -> bool) -> (Value, Instant) {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.checked_duration_since(Instant::now()).unwrap_or_default();
            match self.next(left).await {
                Some((name, data)) if wanted(&name, &data) => return (data, Instant::now()),
                Some(_) => {}
                None => panic!("the awaited event did not come within {within:?}"),
            }
        }
    }
}

pub type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a channel's chat socket; `headers` go on the upgrade request (a cookie, an Origin).
pub async fn chat(http: &str, slug: &str, query: &str, headers: &[(&str, &str)]) -> Socket {
    let url = format!("{}/api/channels/{slug}/chat{query}", http.replacen("http://", "ws://", 1));
    let mut request = url.into_client_request().expect("ws request");
    for (name, value) in headers {
        request
            .headers_mut()
            .insert(reqwest::header::HeaderName::from_bytes(name.as_bytes()).expect("header name"), value.parse().expect("header value"));
    }
    let (socket, _) = tokio_tungstenite::connect_async(request).await.expect("chat socket");
    socket
}

/// The next JSON frame of a chat socket, within `within`.
pub async fn frame(socket: &mut Socket, within: Duration) -> Option<Value> {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, socket.next()).await.ok()?? {
            Ok(Message::Text(text)) => return Some(serde_json::from_str(text.as_str()).expect("chat frames are JSON")),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// Skips frames until one of type `kind`; panics if none comes within `within`.
pub async fn frame_of(socket: &mut Socket, kind: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.checked_duration_since(Instant::now()).unwrap_or_default();
        match frame(socket, left).await {
            Some(frame) if frame["type"] == kind => return frame,
            Some(_) => {}
            None => panic!("no {kind:?} frame within {within:?}"),
        }
    }
}

pub async fn say(socket: &mut Socket, text: &str) {
    socket.send(Message::Text(json!({"type": "send", "text": text}).to_string().into())).await.expect("send");
}
