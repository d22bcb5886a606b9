//! Webhooks delivered for real: the `ferrocast` binary posts signed events to an HTTP receiver
//! this test runs, retries what the receiver refuses, and keeps undelivered events across a restart.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use support::{ffmpeg_publish, DataDir, Server};

/// One POST the receiver got.
#[derive(Clone, Debug)]
struct Received {
    event: String,
    delivery: String,
    signature: String,
    body: String,
    answered: u16,
}

/// An HTTP receiver that answers 500 to its first `failures` requests, then 200.
#[derive(Clone)]
struct Receiver {
    url: String,
    failures: Arc<AtomicUsize>,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    async fn start(failures: usize) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("address"));
        let receiver = Receiver { url, failures: Arc::new(AtomicUsize::new(failures)), got: Arc::new(Mutex::new(Vec::new())) };
        let state = receiver.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let state = state.clone();
                async move {
                    let fail = state.failures.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
                    let answered = if fail { 500 } else { 200 };
                    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                    state.got.lock().expect("lock").push(Received {
                        event: header("ferrocast-event"),
                        delivery: header("ferrocast-delivery"),
                        signature: header("ferrocast-signature"),
                        body,
                        answered,
                    });
                    StatusCode::from_u16(answered).expect("status")
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.expect("receiver") });
        receiver
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().expect("lock").clone()
    }

    /// Waits until a request for `event` was answered 200; returns it.
    async fn delivered(&self, event: &str, within: Duration) -> Received {
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Some(found) = self.got().into_iter().find(|r| r.event == event && r.answered == 200) {
                return found;
            }
            assert!(std::time::Instant::now() < deadline, "{event} was not delivered within {within:?}: {:?}", self.got());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Checks `Ferrocast-Signature: t=…,v1=…` as a receiver would: HMAC-SHA256 over `t.body`.
fn signed_by(secret: &str, received: &Received) -> bool {
    let Some((t, v1)) = received.signature.strip_prefix("t=").and_then(|s| s.split_once(",v1=")) else { return false };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(format!("{t}.{}", received.body).as_bytes());
    let Ok(tag) = hex::decode(v1) else { return false };
    mac.verify_slice(&tag).is_ok()
}

async fn create_webhook(server: &Server, token: &str, body: Value) -> (u16, Value) {
    let response = server.client.post(server.url("/api/webhooks")).bearer_auth(token).json(&body).send().await.expect("create");
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn stream_events_are_signed_retried_and_survive_a_restart() {
    let receiver = Receiver::start(1).await;
    let dir = DataDir::new();
    let env = [("FERROCAST_WEBHOOKS__ALLOW_PRIVATE_TARGETS", "true"), ("FERROCAST_RTMP__RECONNECT_GRACE_SECS", "1")];
    let server = Server::start(&dir.0, &env);
    let (token, key) = server.streamer("wanda", "wanda-live").await;

    // Bad subscriptions are refused with the field named.
    let (status, body) = create_webhook(&server, &token, json!({"url": "ftp://example.com/", "events": ["stream.started"]})).await;
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("url")), "{body}");
    let (status, body) = create_webhook(&server, &token, json!({"url": receiver.url, "events": ["stream.exploded"]})).await;
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("events")), "{body}");

    let events = json!(["stream.started", "stream.ended", "video.ready"]);
    let (status, created) = create_webhook(&server, &token, json!({"url": receiver.url, "events": events, "channel": "wanda-live"})).await;
    assert_eq!(status, 201, "{created}");
    let secret = created["secret"].as_str().expect("secret shown once").to_string();
    let webhook_id = created["id"].as_str().expect("id").to_string();
    let (_, listed) = {
        let response = server.client.get(server.url("/api/webhooks")).bearer_auth(&token).send().await.expect("list");
        (response.status(), response.json::<Value>().await.expect("json"))
    };
    assert!(!listed.to_string().contains(&secret), "the secret is not shown again: {listed}");

    // A publish: stream.started arrives fast, and the receiver's 500 to the first attempt is retried.
    let publish_started = std::time::Instant::now();
    let mut ffmpeg = ffmpeg_publish(&server.rtmp_url(&key), 640, 360, 4);
    let started = receiver.delivered("stream.started", Duration::from_secs(20)).await;
    let first = receiver.got().into_iter().next().expect("a first attempt");
    assert_eq!((first.event.as_str(), first.answered), ("stream.started", 500));
    assert_eq!(first.delivery, started.delivery, "the same delivery, retried");
    assert!(publish_started.elapsed() < Duration::from_secs(10), "stream.started took {:?}", publish_started.elapsed());
    let payload: Value = serde_json::from_str(&started.body).expect("JSON body");
    let video_id = payload["data"]["video"]["id"].as_str().expect("video id").to_string();
    assert_eq!(payload["data"]["video"]["channel"]["slug"], "wanda-live");
    assert!(ffmpeg.wait().expect("ffmpeg").success());
    receiver.delivered("stream.ended", Duration::from_secs(30)).await;
    let ready = receiver.delivered("video.ready", Duration::from_secs(30)).await;
    let ready: Value = serde_json::from_str(&ready.body).expect("JSON body");
    assert_eq!(
        (ready["data"]["video"]["id"].as_str(), ready["data"]["video"]["status"].as_str()),
        (Some(video_id.as_str()), Some("ready"))
    );
    for received in receiver.got() {
        assert!(signed_by(&secret, &received), "every delivery verifies: {received:?}");
        assert!(!signed_by("whsec_someone_else", &received));
    }
    let log: Value = server
        .client
        .get(server.url(&format!("/api/webhooks/{webhook_id}/deliveries")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("deliveries")
        .json()
        .await
        .expect("json");
    let started_log = log["items"].as_array().expect("items").iter().find(|d| d["event"] == "stream.started").expect("logged").clone();
    assert_eq!((started_log["status"].as_str(), started_log["attempts"].as_i64()), (Some("delivered"), Some(2)), "{log}");

    // A delivery the receiver keeps refusing is still owed after a restart, and arrives then.
    receiver.failures.store(usize::MAX, Ordering::SeqCst);
    let test = server.client.post(server.url(&format!("/api/webhooks/{webhook_id}/test"))).bearer_auth(&token).send().await.expect("test");
    assert_eq!(test.status(), 202);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !receiver.got().iter().any(|r| r.event == "webhook.test") {
        assert!(std::time::Instant::now() < deadline, "the test delivery was never attempted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(server.terminate().success());
    receiver.failures.store(0, Ordering::SeqCst);
    let _server = Server::start(&dir.0, &env);
    receiver.delivered("webhook.test", Duration::from_secs(30)).await;
}
