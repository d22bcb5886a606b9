//! Simulcast for real: the `ferrocast` binary pushes a live channel, as the publisher sent it, to
//! an ffmpeg RTMP server (another implementation), to another channel of its own, and to a target
//! that refuses connections — which is retried alone while the others and the local stream go on;
//! and to a second Ferrocast process that is killed mid-stream and comes back.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use support::{ffmpeg_publish, frame_hashes, probe_live, write_config, DataDir, Server, RELAY_CONFIG};

/// A port nothing listens on (bound, then released).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

/// ffmpeg as an RTMP server: accepts one publish on `port` and copies it into `out`.
fn ffmpeg_rtmp_server(port: u16, out: &std::path::Path) -> Child {
    Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-listen", "1", "-f", "flv"])
        .args(["-i", &format!("rtmp://127.0.0.1:{port}/live/remote-key-123456")])
        .args(["-c", "copy", "-f", "flv"])
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ffmpeg (installed by make test)")
}

/// An 8-second H.264 + AAC file with a keyframe every second, to publish as it is.
fn source_file(dir: &std::path::Path) -> String {
    let path = dir.join("source.flv").to_str().expect("utf-8").to_string();
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", "8", "-c:v", "libx264", "-preset", "veryfast", "-g", "30", "-bf", "2", "-pix_fmt", "yuv420p"])
        .args(["-c:a", "aac", "-b:a", "96k", "-f", "flv", &path])
        .status()
        .expect("ffmpeg");
    assert!(status.success());
    path
}

async fn api(server: &Server, token: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = server.client.request(method, server.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

async fn targets(server: &Server, token: &str) -> Vec<Value> {
    let (status, list) = api(server, token, reqwest::Method::GET, "/api/channels/alma-live/restreams", None).await;
    assert_eq!(status, 200, "{list}");
    list["items"].as_array().expect("items").clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_live_channel_is_pushed_to_every_target_and_a_failing_one_is_retried_alone() {
    let dir = DataDir::new();
    let config = write_config(&dir.0, "relay.toml", RELAY_CONFIG);
    let env = [
        ("FERROCAST_CONFIG", config.as_str()),
        ("FERROCAST_RESTREAM__ALLOW_PRIVATE_TARGETS", "true"),
        ("FERROCAST_RTMP__RECONNECT_GRACE_SECS", "1"),
    ];
    let server = Server::start(&dir.0, &env);
    let (token, key) = server.streamer("alma", "alma-live").await;
    let (_, bee_key) = server.streamer("bee", "bee-live").await;
    let (stranger, _) = server.streamer("stranger", "stranger-live").await;
    let post = reqwest::Method::POST;

    // Bad URLs are refused with the field named; strangers cannot see or add targets.
    for url in ["http://example.com/live/key", "rtmp://example.com/just-a-key"] {
        let (status, body) = api(&server, &token, post.clone(), "/api/channels/alma-live/restreams", Some(json!({"url": url}))).await;
        assert_eq!((status, body["error"]["field"].as_str()), (422, Some("url")), "{url}: {body}");
    }
    let (status, _) = api(&server, &stranger, reqwest::Method::GET, "/api/channels/alma-live/restreams", None).await;
    assert_eq!(status, 403);

    // Three targets: ffmpeg's RTMP server, Ferrocast's own channel bee-live, and a closed port.
    let ffmpeg_port = free_port();
    let received = dir.0.join("received.flv");
    let mut ffmpeg_server = ffmpeg_rtmp_server(ffmpeg_port, &received);
    let rtmp_port = server.rtmp.rsplit(':').next().expect("port");
    let urls = [
        format!("rtmp://127.0.0.1:{ffmpeg_port}/live/remote-key-123456"),
        format!("rtmp://127.0.0.1:{rtmp_port}/live/{bee_key}"),
        format!("rtmp://127.0.0.1:{}/live/nobody-home", free_port()),
    ];
    let mut ids = Vec::new();
    for url in &urls {
        let (status, created) = api(&server, &token, post.clone(), "/api/channels/alma-live/restreams", Some(json!({"url": url}))).await;
        assert_eq!(status, 201, "{created}");
        assert_eq!((created["state"].as_str(), created["enabled"].as_bool()), (Some("idle"), Some(true)), "{created}");
        ids.push(created["id"].as_str().expect("id").to_string());
    }
    let listed = serde_json::to_string(&targets(&server, &token).await).expect("json");
    assert!(listed.contains(&format!("rtmp://127.0.0.1:{ffmpeg_port}/live/••••3456")), "{listed}");
    assert!(!listed.contains("remote-key-123456") && !listed.contains(&bee_key), "keys are never shown again: {listed}");
    // Nor stored readable: the database files (SQLite and its WAL) hold them sealed.
    let mut scanned = 0;
    for entry in std::fs::read_dir(&dir.0).expect("data dir").flatten() {
        if entry.file_name().to_string_lossy().contains(".db") {
            scanned += 1;
            let bytes = std::fs::read(entry.path()).expect("read");
            let text = String::from_utf8_lossy(&bytes);
            assert!(!text.contains("remote-key-123456") && !text.contains(&bee_key), "{} holds a key in the clear", entry.path().display());
        }
    }
    assert!(scanned > 0, "no database file in {}", dir.0.display());

    // Go live from a file, so what arrives can be compared frame by frame with what was sent.
    let source = source_file(&dir.0);
    let mut publisher = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re", "-i", &source, "-c", "copy", "-f", "flv", &server.rtmp_url(&key)])
        .stdout(Stdio::null())
        .spawn()
        .expect("ffmpeg");
    server.wait_until_live("alma-live").await;

    // The two good targets go live with a bitrate; the closed port is retried with its error.
    let live = server
        .poll(Duration::from_secs(20), || async {
            let all = targets(&server, &token).await;
            let state = |i: usize| all.iter().find(|t| t["id"] == ids[i].as_str()).cloned().expect("target");
            let (ffmpeg, own, closed) = (state(0), state(1), state(2));
            let ok = ffmpeg["state"] == "live"
                && ffmpeg["bitrate_kbps"].as_i64().is_some_and(|b| b > 0)
                && own["state"] == "live"
                && closed["state"] == "retrying"
                && closed["last_error"].as_str().is_some_and(|e| e.contains("connect"));
            ok.then_some(all)
        })
        .await;
    assert!(live.is_some(), "targets never reached their states: {:?}", targets(&server, &token).await);
    let bee_video = server.wait_until_live("bee-live").await;
    let (status, _) = server.get_text(&format!("/api/videos/{bee_video}")).await;
    assert_eq!(status, 200, "the restream arrived as a live video of bee-live");

    // Disabling a target while live stops its push within seconds.
    let (status, _) = api(
        &server,
        &token,
        reqwest::Method::PATCH,
        &format!("/api/channels/alma-live/restreams/{}", ids[2]),
        Some(json!({"enabled": false})),
    )
    .await;
    assert_eq!(status, 200);
    let idle = server
        .poll(Duration::from_secs(15), || async {
            let all = targets(&server, &token).await;
            all.iter().any(|t| t["id"] == ids[2].as_str() && t["state"] == "idle").then_some(())
        })
        .await;
    assert!(idle.is_some(), "the disabled target was not stopped: {:?}", targets(&server, &token).await);

    // The publish ends: every push ends politely, and ffmpeg's copy is the source, not a re-encode:
    // its frames are a run of the source's frames, from a keyframe to (nearly) the end.
    assert!(publisher.wait().expect("publisher").success());
    let ended = ffmpeg_server.wait().expect("ffmpeg server");
    assert!(ended.success(), "ffmpeg's RTMP server failed");
    let sent = frame_hashes(&source);
    let got = frame_hashes(received.to_str().expect("utf-8"));
    assert!(got.len() >= sent.len() / 2, "only {} of {} frames arrived", got.len(), sent.len());
    let start = sent.iter().position(|h| *h == got[0]).expect("the first frame received was sent");
    assert_eq!(&sent[start..start + got.len()], &got[..], "frames arrive unchanged and in order");
    let all_idle = server
        .poll(Duration::from_secs(15), || async {
            let all = targets(&server, &token).await;
            all.iter().all(|t| t["state"] == "idle").then_some(())
        })
        .await;
    assert!(all_idle.is_some(), "pushes did not end with the publish: {:?}", targets(&server, &token).await);
}

/// The state of restream target `id` of channel `slug`.
async fn target_state(server: &Server, token: &str, slug: &str, id: &str) -> Value {
    let (_, list) = api(server, token, reqwest::Method::GET, &format!("/api/channels/{slug}/restreams"), None).await;
    list["items"].as_array().and_then(|items| items.iter().find(|t| t["id"] == id).cloned()).unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_target_killed_mid_stream_is_pushed_again_when_it_returns_and_the_local_stream_never_notices() {
    // The target: a second Ferrocast (relay) on a fixed RTMP port, so that it comes back where it was.
    let target_dir = DataDir::new();
    let target_config = write_config(&target_dir.0, "relay.toml", RELAY_CONFIG);
    let target_rtmp = format!("127.0.0.1:{}", free_port());
    let target_env = [
        ("FERROCAST_CONFIG", target_config.as_str()),
        ("FERROCAST_RTMP_ADDR", target_rtmp.as_str()),
        ("FERROCAST_RTMP__LEASE_SECS", "2"),
        ("FERROCAST_RTMP__RECONNECT_GRACE_SECS", "1"),
    ];
    let target = Server::start(&target_dir.0, &target_env);
    let (remote_token, remote_key) = target.streamer("remote", "remote-live").await;

    let dir = DataDir::new();
    let config = write_config(&dir.0, "relay.toml", RELAY_CONFIG);
    let env = [
        ("FERROCAST_CONFIG", config.as_str()),
        ("FERROCAST_RESTREAM__ALLOW_PRIVATE_TARGETS", "true"),
        ("FERROCAST_RESTREAM__MAX_RETRY_SECS", "2"),
    ];
    let server = Server::start(&dir.0, &env);
    let (token, key) = server.streamer("origin", "origin-live").await;
    let body = json!({"url": format!("rtmp://{target_rtmp}/live/{remote_key}")});
    let (status, created) = api(&server, &token, reqwest::Method::POST, "/api/channels/origin-live/restreams", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_string();

    let mut publisher = ffmpeg_publish(&server.rtmp_url(&key), 640, 360, 40);
    let local_video = server.wait_until_live("origin-live").await;
    let remote_video = target.wait_until_live("remote-live").await;
    let remote_hls = target.url(&format!("/hls/{remote_video}/source/index.m3u8"));
    target.wait_for_text(&format!("/hls/{remote_video}/source/index.m3u8"), "#EXTINF", Duration::from_secs(30)).await;
    let (width, height, _, frames) = probe_live(&remote_hls, 30);
    assert_eq!((width, height, frames), (640, 360, 30), "the target's HLS decodes");
    let (_, remote) = api(&target, &remote_token, reqwest::Method::GET, &format!("/api/videos/{remote_video}"), None).await;
    assert_eq!(remote["health"]["input_width"], 640, "the publisher's metadata reached the target: {remote}");

    // The target dies: the push is retried, the local stream goes on.
    target.crash();
    let retrying = server
        .poll(Duration::from_secs(20), || async {
            let state = target_state(&server, &token, "origin-live", &id).await;
            (state["state"] == "retrying" || state["state"] == "connecting").then_some(state)
        })
        .await;
    assert!(retrying.is_some(), "the lost target was not retried: {}", target_state(&server, &token, "origin-live", &id).await);
    let (_, channel) = server.get_json("/api/channels/origin-live").await;
    assert_eq!(channel["live_video_id"].as_str(), Some(local_video.as_str()), "the local stream is still the same live video");

    // It comes back: the push resumes and the target is live again.
    let target = Server::start(&target_dir.0, &target_env);
    let back = server
        .poll(Duration::from_secs(40), || async {
            let state = target_state(&server, &token, "origin-live", &id).await;
            (state["state"] == "live").then_some(())
        })
        .await;
    assert!(back.is_some(), "the push did not resume: {}", target_state(&server, &token, "origin-live", &id).await);
    let remote_again = target.wait_until_live("remote-live").await;
    target.wait_for_text(&format!("/hls/{remote_again}/source/index.m3u8"), "#EXTINF", Duration::from_secs(30)).await;
    let (width, height, _, frames) = probe_live(&target.url(&format!("/hls/{remote_again}/source/index.m3u8")), 30);
    assert_eq!((width, height, frames), (640, 360, 30), "the target's HLS decodes after the restart");

    // The local recording never noticed: one unbroken video, no discontinuity.
    let status = publisher.wait().expect("publisher");
    assert!(status.success(), "the publisher was never disturbed");
    server.wait_for_status(&local_video, "ready", Duration::from_secs(60)).await;
    let (_, playlist) = server.get_text(&format!("/hls/{local_video}/source/index.m3u8")).await;
    assert!(playlist.contains("#EXT-X-ENDLIST") && !playlist.contains("#EXT-X-DISCONTINUITY"), "{playlist}");
    let recorded: f64 = support::segment_durations(&playlist).iter().sum();
    assert!(recorded > 35.0, "the whole publish was recorded locally: {recorded} s");
}
