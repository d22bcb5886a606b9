//! What a streamer and their viewers see around the stream: the channel's state pushed to open
//! pages (Server-Sent Events) the moment it goes live or ends, the title set before going live,
//! and the live chat (two users, a reader, moderation, limits, cross-site sockets, replay).

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::events::{chat, frame, frame_of, say, EventStream};
use support::{ffmpeg_publish, node_env, start, DataDir, Server};

const SOON: Duration = Duration::from_secs(5);

async fn login(server: &Server, username: &str) -> (String, String) {
    let password = "a long password";
    let signup = server
        .client
        .post(server.url("/api/auth/signup"))
        .json(&json!({"username": username, "email": format!("{username}@example.com"), "password": password}))
        .send()
        .await
        .expect("signup");
    assert_eq!(signup.status(), 201);
    let login = server
        .client
        .post(server.url("/api/auth/login"))
        .json(&json!({"username_or_email": username, "password": password}))
        .send()
        .await
        .expect("login");
    let cookie = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("ferrocast_access="))
        .and_then(|c| c.split(';').next())
        .expect("access cookie")
        .to_string();
    let body: Value = login.json().await.expect("json");
    (body["access_token"].as_str().expect("token").to_string(), cookie)
}

/// Polls the channel resource the way pages used to, every 100 ms: when it first says `live`.
async fn api_says(server: &Server, slug: &str, live: bool) -> Instant {
    loop {
        let (_, channel) = server.get_json(&format!("/api/channels/{slug}")).await;
        if channel["live"].as_bool() == Some(live) {
            return Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_open_channel_page_hears_going_live_and_ending_at_once() {
    let dir = DataDir::new();
    // Followed channels are re-read every 5 s: the pushes within 2 s below come from the events.
    let server = Server::start(&dir.0, &[("FERROCAST_RTMP__RECONNECT_GRACE_SECS", "1"), ("FERROCAST_CHAT__REFRESH_INTERVAL_MS", "5000")]);
    let (token, key) = server.streamer("ana", "ana-live").await;

    // Stream setup: the next broadcast's title, set before going live.
    let setup = server
        .client
        .patch(server.url("/api/channels/ana-live"))
        .bearer_auth(&token)
        .json(&json!({"stream_title": "Friday build night", "stream_description": "Soldering the new keyboard"}))
        .send()
        .await
        .expect("patch");
    assert_eq!(setup.status(), 200);
    let setup: Value = setup.json().await.expect("json");
    assert_eq!(setup["stream_title"], "Friday build night");
    assert_eq!(setup["title"], "ana live", "the channel keeps its own name");

    let mut page = EventStream::open(&server.client, &server.url("/api/channels/ana-live/events")).await;
    let (first, _) = page.wait_for(SOON, |name, _| name == "state").await;
    assert_eq!(first["live"], Value::Null);
    assert_eq!(first["title"], "ana live");

    let mut ffmpeg = ffmpeg_publish(&server.rtmp_url(&key), 640, 360, 60);
    let (pushed, api) =
        tokio::join!(page.wait_for(Duration::from_secs(40), |name, data| name == "state" && data["live"].is_object()), async {
            tokio::time::timeout(Duration::from_secs(40), api_says(&server, "ana-live", true)).await.expect("the API says live")
        });
    let (state, heard) = pushed;
    // Not later than a page polling every 100 ms would have learnt it (plus scheduling slack).
    let late = heard.saturating_duration_since(api);
    assert!(late < Duration::from_secs(2), "the event came {late:?} after the channel resource said live");
    let live = &state["live"];
    assert_eq!(live["title"], "Friday build night", "the live video takes the stream setup's title");
    assert_eq!(live["description"], "Soldering the new keyboard");
    let video_id = live["video_id"].as_str().expect("video id").to_string();
    let (_, video) = server.get_json(&format!("/api/videos/{video_id}")).await;
    assert_eq!(video["title"], "Friday build night");

    // One player (two playlist requests, same client) is one viewer, pushed without asking.
    let playback = video["playback_url"].as_str().expect("playback url").to_string();
    let player = reqwest::Client::builder().user_agent("hls.js test player").build().expect("client");
    let master = player.get(&playback).send().await.expect("master").text().await.expect("text");
    let rendition = master.lines().find(|l| l.ends_with(".m3u8")).expect("a rendition");
    let rendition_url = format!("{}/{rendition}", playback.rsplit_once('/').expect("dir").0);
    player.get(&rendition_url).send().await.expect("playlist");
    let (counted, _) = page.wait_for(Duration::from_secs(15), |name, data| name == "state" && data["live"]["viewers"] == 1).await;
    assert_eq!(counted["live"]["video_id"], video_id.as_str());

    // Chat while live is kept with the recording.
    let (viewer_token, _) = login(&server, "bob").await;
    let mut bob = chat(&server.http, "ana-live", &format!("?access_token={viewer_token}"), &[]).await;
    frame_of(&mut bob, "welcome", SOON).await;
    say(&mut bob, "first!").await;
    frame_of(&mut bob, "message", SOON).await;

    // Renaming the broadcast while live reaches the page too.
    let rename =
        server.client.patch(server.url("/api/channels/ana-live")).bearer_auth(&token).json(&json!({"stream_title": "Keyboard works!"}));
    assert_eq!(rename.send().await.expect("patch").status(), 200);
    page.wait_for(SOON, |name, data| name == "state" && data["live"]["title"] == "Keyboard works!").await;

    ffmpeg.kill().expect("stop ffmpeg");
    let _ = ffmpeg.wait();
    let (ended, api) =
        tokio::join!(page.wait_for(Duration::from_secs(30), |name, data| name == "state" && data["live"].is_null()), async {
            tokio::time::timeout(Duration::from_secs(30), api_says(&server, "ana-live", false)).await.expect("the API says offline")
        });
    let late = ended.1.saturating_duration_since(api);
    assert!(late < Duration::from_secs(2), "the end came {late:?} after the channel resource said offline");

    let ready = server.wait_for_status(&video_id, "ready", Duration::from_secs(30)).await;
    let (status, replay) = server.get_json(&format!("/api/videos/{video_id}/chat")).await;
    assert_eq!(status, 200);
    let items = replay["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{replay}");
    assert_eq!(items[0]["text"], "first!");
    assert_eq!(items[0]["username"], "bob");
    let offset = items[0]["offset_secs"].as_f64().expect("offset");
    let duration = ready["duration_secs"].as_f64().expect("duration");
    assert!(offset > 0.0 && offset < duration + 2.0, "offset {offset} in a {duration} s recording");

    embeds_follow_the_videos_visibility(&server, &token, &video_id).await;
}

/// A stored segment goes out with `sendfile` from its file (counted in
/// `ferrocast_http_sendfile_bytes_total`), whole or a range of it; requests pipelined on one
/// connection are answered in order, also when one of them is not the origin's (the connection
/// moves to the router then: a segment it serves closes the connection, so that the next request
/// starts on the `sendfile` path again).
async fn segments_leave_from_their_files(server: &Server, segment_url: &str, whole: &[u8]) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    assert!(whole.len() > 32 << 10, "a segment of an 800 kbit/s rendition, {} bytes, is worth sending from its file", whole.len());
    let sent = || async {
        let metrics = server.get_text("/metrics").await.1;
        let line = metrics.lines().find(|l| l.starts_with("ferrocast_http_sendfile_bytes_total ")).map(str::to_string);
        line.and_then(|l| l.rsplit(' ').next()?.parse::<usize>().ok()).unwrap_or(0)
    };
    let before = sent().await;
    // A client whose connections have asked for nothing else (a player, a CDN).
    let player = reqwest::Client::new();
    let again = player.get(segment_url).send().await.expect("segment").bytes().await.expect("bytes");
    assert_eq!(&again[..], whole);
    let ranged = player.get(segment_url).header("range", "bytes=1000-1999").send().await.expect("range");
    assert_eq!(&ranged.bytes().await.expect("bytes")[..], &whole[1000..2000]);
    // Counted once the last byte is handed to the kernel, which may be just after the client has it.
    let expected = before + whole.len() + 1000;
    let deadline = Instant::now() + SOON;
    while sent().await < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(sent().await, expected, "both bodies went out with sendfile");

    let path = segment_url.strip_prefix(&server.http).expect("the server's URL");
    let mut socket = tokio::net::TcpStream::connect(server.http.trim_start_matches("http://")).await.expect("connect");
    let requests = format!(
        "GET {path} HTTP/1.1\r\nHost: t\r\n\r\nHEAD {path} HTTP/1.1\r\nHost: t\r\n\r\n\
         GET /healthz HTTP/1.1\r\nHost: t\r\n\r\nGET {path} HTTP/1.1\r\nHost: t\r\n\r\n"
    );
    socket.write_all(requests.as_bytes()).await.expect("send");
    let mut answers = Vec::new();
    tokio::time::timeout(SOON, socket.read_to_end(&mut answers)).await.expect("closed after the last answer").expect("read");
    // (status line, content-length, body, whether it closes) of each answer; a HEAD answer has
    // no body.
    let mut rest = &answers[..];
    let mut parsed = Vec::new();
    for has_body in [true, false, true, true] {
        let end = rest.windows(4).position(|w| w == b"\r\n\r\n").expect("a whole head") + 4;
        let head = String::from_utf8_lossy(&rest[..end]).to_lowercase();
        let length: usize =
            head.lines().find_map(|l| l.strip_prefix("content-length: ")).and_then(|n| n.trim().parse().ok()).expect("content-length");
        let body_len = if has_body { length } else { 0 };
        let closes = head.lines().any(|l| l.trim() == "connection: close");
        parsed.push((head.lines().next().unwrap_or("").to_string(), length, rest[end..end + body_len].to_vec(), closes));
        rest = &rest[end + body_len..];
    }
    assert!(rest.is_empty(), "nothing after the last answer");
    assert!(parsed.iter().all(|(status, ..)| status == "http/1.1 200 ok"), "{parsed:?}");
    assert_eq!((parsed[0].1, &parsed[0].2[..]), (whole.len(), whole));
    assert_eq!(parsed[1].1, whole.len(), "HEAD names the length");
    assert_eq!((parsed[3].1, &parsed[3].2[..]), (whole.len(), whole));
    let closing: Vec<bool> = parsed.iter().map(|answer| answer.3).collect();
    assert_eq!(closing, [false, false, false, true], "only the segment the router served closes the connection");
}

/// The player at /embed/{id} may be framed by any site while the video is public or unlisted;
/// oEmbed describes it then, and watch pages point to oEmbed. A private video is neither.
async fn embeds_follow_the_videos_visibility(server: &Server, token: &str, video_id: &str) {
    let frame_ancestors = |response: &reqwest::Response| {
        let policy = response.headers()["content-security-policy"].to_str().expect("ascii").to_string();
        policy.split(';').map(str::trim).find(|d| d.starts_with("frame-ancestors")).expect("frame-ancestors").to_string()
    };
    let page = |path: String| server.client.get(server.url(&path)).send();
    let watch_url = format!("{}/watch/{video_id}", server.http.replace("127.0.0.1", "localhost"));
    let oembed = || server.client.get(server.url("/api/oembed")).query(&[("url", watch_url.as_str()), ("maxwidth", "480")]).send();

    let embed = page(format!("/embed/{video_id}")).await.expect("embed");
    assert_eq!(embed.status(), 200);
    assert_eq!(frame_ancestors(&embed), "frame-ancestors *");
    assert!(embed.text().await.expect("html").contains("<script"), "the embedded app shell is served");
    let watch = page(format!("/watch/{video_id}")).await.expect("watch");
    assert_eq!(frame_ancestors(&watch), "frame-ancestors 'none'", "only the player may be framed");
    assert!(watch.text().await.expect("html").contains("application/json+oembed"), "watch pages name their oEmbed");
    let described: Value = oembed().await.expect("oembed").json().await.expect("json");
    assert_eq!(
        (described["type"].as_str(), described["width"].as_u64(), described["height"].as_u64()),
        (Some("video"), Some(480), Some(270))
    );
    assert!(described["html"].as_str().expect("html").contains(&format!("/embed/{video_id}\"")), "{described}");
    assert_eq!(described["author_name"], "ana live");

    // The origin serves the finished video from memory: the same bytes, ranges and ETags as storage.
    let master = server.get_text(&format!("/hls/{video_id}/master.m3u8")).await.1;
    let rendition = master.lines().find(|l| l.ends_with(".m3u8")).expect("a rendition").to_string();
    let rendition_dir = rendition.trim_end_matches("index.m3u8");
    let playlist = server.get_text(&format!("/hls/{video_id}/{rendition}")).await.1;
    let segment = playlist.lines().find(|l| !l.starts_with('#') && !l.is_empty()).expect("a segment").to_string();
    let segment_url = server.url(&format!("/hls/{video_id}/{rendition_dir}{segment}"));
    let whole = server.client.get(&segment_url).send().await.expect("segment");
    let etag = whole.headers()["etag"].clone();
    let whole = whole.bytes().await.expect("bytes");
    let again = server.client.get(&segment_url).send().await.expect("segment");
    assert_eq!(again.headers()["etag"], etag);
    assert_eq!(again.bytes().await.expect("bytes"), whole);
    let ranged = server.client.get(&segment_url).header("range", "bytes=100-199").send().await.expect("range");
    assert_eq!(ranged.status(), 206);
    assert_eq!(ranged.bytes().await.expect("bytes"), whole.slice(100..200));
    let revalidated = server.client.get(&segment_url).header("if-none-match", etag).send().await.expect("conditional");
    assert_eq!(revalidated.status(), 304);
    segments_leave_from_their_files(server, &segment_url, &whole).await;

    for (visibility, embeddable, origin_status) in [("unlisted", true, 403), ("private", false, 404)] {
        let patch =
            server.client.patch(server.url(&format!("/api/videos/{video_id}"))).bearer_auth(token).json(&json!({"visibility": visibility}));
        assert_eq!(patch.send().await.expect("patch").status(), 200);
        let embed = page(format!("/embed/{video_id}")).await.expect("embed");
        assert_eq!(frame_ancestors(&embed) == "frame-ancestors *", embeddable, "{visibility}");
        assert_eq!(oembed().await.expect("oembed").status() == 200, embeddable, "{visibility}");
        // At once, though the origin keeps video rows and files in memory: the change is announced.
        assert_eq!(server.client.get(&segment_url).send().await.expect("segment").status(), origin_status, "{visibility}");
    }
    let xml =
        server.client.get(server.url("/api/oembed")).query(&[("url", watch_url.as_str()), ("format", "xml")]).send().await.expect("oembed");
    assert_eq!(xml.status(), 501);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_users_chat_and_the_owner_moderates() {
    let dir = DataDir::new();
    let server = Server::start(&dir.0, &[("FERROCAST_CHAT__MAX_MESSAGES_PER_WINDOW", "4"), ("FERROCAST_CHAT__MAX_MESSAGE_CHARS", "40")]);
    let (owner_token, _) = server.streamer("ana", "ana-chat").await;
    let (bob_token, bob_cookie) = login(&server, "bob").await;

    let mut ana = chat(&server.http, "ana-chat", "", &[("authorization", &format!("Bearer {owner_token}"))]).await;
    let mut bob = chat(&server.http, "ana-chat", &format!("?access_token={bob_token}"), &[]).await;
    let mut reader = chat(&server.http, "ana-chat", "", &[]).await;
    let welcome = frame_of(&mut ana, "welcome", SOON).await;
    assert_eq!((welcome["username"].as_str(), welcome["moderator"].as_bool()), (Some("ana"), Some(true)));
    let welcome = frame_of(&mut bob, "welcome", SOON).await;
    assert_eq!((welcome["username"].as_str(), welcome["moderator"].as_bool()), (Some("bob"), Some(false)));
    assert_eq!(frame_of(&mut reader, "welcome", SOON).await["username"], Value::Null);

    say(&mut bob, "  hello\nana  ").await;
    let sent = Instant::now();
    for socket in [&mut ana, &mut bob, &mut reader] {
        let message = frame_of(socket, "message", Duration::from_secs(1)).await;
        assert_eq!((message["username"].as_str(), message["text"].as_str()), (Some("bob"), Some("hello ana")));
    }
    assert!(sent.elapsed() < Duration::from_secs(1));

    // Refusals are said to the sender alone.
    say(&mut reader, "let me in").await;
    assert_eq!(frame_of(&mut reader, "error", SOON).await["code"], "sign_in_required");
    say(&mut bob, &"x".repeat(41)).await;
    assert_eq!(frame_of(&mut bob, "error", SOON).await["code"], "too_long");
    say(&mut bob, " \n ").await;
    assert_eq!(frame_of(&mut bob, "error", SOON).await["code"], "empty");
    bob_raw(&mut bob, "not json").await;
    assert_eq!(frame_of(&mut bob, "error", SOON).await["code"], "bad_request");

    // The owner deletes a message: it disappears everywhere.
    say(&mut bob, "buy cheap followers").await;
    let spam = frame_of(&mut ana, "message", SOON).await;
    frame_of(&mut reader, "message", SOON).await;
    let spam_id = spam["id"].as_str().expect("id");
    let delete = server.client.delete(server.url(&format!("/api/channels/ana-chat/chat/messages/{spam_id}"))).bearer_auth(&owner_token);
    assert_eq!(delete.send().await.expect("delete").status(), 204);
    for socket in [&mut ana, &mut bob, &mut reader] {
        assert_eq!(frame_of(socket, "deleted", SOON).await["id"], spam_id);
    }
    let by_bob = server.client.delete(server.url(&format!("/api/channels/ana-chat/chat/messages/{spam_id}"))).bearer_auth(&bob_token);
    assert_eq!(by_bob.send().await.expect("delete").status(), 403, "only the owner moderates");

    // Banned: bob's messages are refused until the ban is lifted.
    let ban = server.client.put(server.url("/api/channels/ana-chat/chat/bans/Bob")).bearer_auth(&owner_token);
    assert_eq!(ban.send().await.expect("ban").status(), 204);
    say(&mut bob, "why").await;
    assert_eq!(frame_of(&mut bob, "error", SOON).await["code"], "banned");
    assert!(frame(&mut reader, Duration::from_millis(500)).await.is_none(), "nothing reached the others");
    let bans: Value = server
        .client
        .get(server.url("/api/channels/ana-chat/chat/bans"))
        .bearer_auth(&owner_token)
        .send()
        .await
        .expect("bans")
        .json()
        .await
        .expect("json");
    assert_eq!(bans["items"][0]["username"], "bob");
    let self_ban = server.client.put(server.url("/api/channels/ana-chat/chat/bans/ana")).bearer_auth(&owner_token);
    assert_eq!(self_ban.send().await.expect("ban").status(), 422);
    let unban = server.client.delete(server.url("/api/channels/ana-chat/chat/bans/bob")).bearer_auth(&owner_token);
    assert_eq!(unban.send().await.expect("unban").status(), 204);

    // Four messages per window: bob has sent three (the refused one counts: refusals cost the
    // server too); one more passes, the fifth waits.
    say(&mut bob, "back").await;
    assert_eq!(frame_of(&mut bob, "message", SOON).await["text"], "back");
    say(&mut bob, "one too many").await;
    let limited = frame_of(&mut bob, "error", SOON).await;
    assert_eq!(limited["code"], "rate_limited", "{limited}");

    // A late joiner gets the history, without the deleted message.
    let mut late = chat(&server.http, "ana-chat", "", &[]).await;
    frame_of(&mut late, "welcome", SOON).await;
    let mut history = Vec::new();
    while let Some(message) = frame(&mut late, Duration::from_millis(500)).await {
        history.push(message["text"].as_str().unwrap_or_default().to_string());
    }
    assert_eq!(history, ["hello ana", "back"]);

    // A page on another site opening the socket with bob's cookie reads, but cannot write as bob.
    let mut forged = chat(&server.http, "ana-chat", "", &[("cookie", &bob_cookie), ("origin", "http://evil.example")]).await;
    assert_eq!(frame_of(&mut forged, "welcome", SOON).await["username"], Value::Null);
    // Our own pages are served from the public URL (by default http://localhost:{port}).
    let public_origin = server.http.replace("127.0.0.1", "localhost");
    let mut own_page = chat(&server.http, "ana-chat", "", &[("cookie", &bob_cookie), ("origin", &public_origin)]).await;
    assert_eq!(frame_of(&mut own_page, "welcome", SOON).await["username"], "bob");

    // Scripts: a personal access token writes only with the chat:write scope.
    for (scopes, writer) in [(json!(["read"]), false), (json!(["chat:write"]), true)] {
        let created: Value = server
            .client
            .post(server.url("/api/tokens"))
            .bearer_auth(&owner_token)
            .json(&json!({"name": "bot", "scopes": scopes}))
            .send()
            .await
            .expect("token")
            .json()
            .await
            .expect("json");
        let token = created["token"].as_str().expect("token");
        let mut bot = chat(&server.http, "ana-chat", &format!("?access_token={token}"), &[]).await;
        let welcome = frame_of(&mut bot, "welcome", SOON).await;
        assert_eq!(welcome["username"].is_string(), writer, "{scopes}: {welcome}");
        if writer {
            say(&mut bot, "beep").await;
            // After the history: its own message comes back.
            while frame_of(&mut bot, "message", SOON).await["text"] != "beep" {}
            // Revoked: the open socket stops writing at its next message.
            let id = created["id"].as_str().expect("id");
            let revoke = server.client.delete(server.url(&format!("/api/tokens/{id}"))).bearer_auth(&owner_token);
            assert_eq!(revoke.send().await.expect("revoke").status(), 204);
            say(&mut bot, "boop").await;
            assert_eq!(frame_of(&mut bot, "error", SOON).await["code"], "sign_in_required");
        }
    }

    // Deleting the channel tells open pages.
    let mut page = EventStream::open(&server.client, &server.url("/api/channels/ana-chat/events")).await;
    page.wait_for(SOON, |name, _| name == "state").await;
    let gone = server.client.delete(server.url("/api/channels/ana-chat")).bearer_auth(&owner_token);
    assert_eq!(gone.send().await.expect("delete").status(), 204);
    page.wait_for(SOON, |name, _| name == "deleted").await;
    assert_eq!(server.get_json("/api/channels/nope/events").await.0, 404);
}

/// Two API nodes and an ingest node on Postgres: the page on one node hears the stream that went
/// live on another, and chat sent through one node's socket reaches the other's.
#[tokio::test(flavor = "multi_thread")]
async fn events_and_chat_reach_pages_served_by_other_nodes() {
    let db = ferrocast_core::testing::TestDb::postgres().await;
    let storage = ferrocast_core::testing::test_s3_config();
    let (dir_a, dir_b) = (DataDir::new(), DataDir::new());
    // One site: every node issues and accepts the same tokens, named after the public URL.
    let node = |roles: &str| {
        let mut env = node_env(&db.url, &storage, roles);
        env.push(("FERROCAST_PUBLIC_URL", "http://tv.example".to_string()));
        env
    };
    let node_a = start(&dir_a.0, &node("ingest,worker,api"));
    // Re-reading seldom: only the events from node a can make node b's page hear in time.
    let mut env_b = node("api,origin");
    env_b.push(("FERROCAST_CHAT__REFRESH_INTERVAL_MS", "20000".to_string()));
    let node_b = start(&dir_b.0, &env_b);
    let (ana_token, key) = node_a.streamer("ana", "ana-live").await;
    let (bob_token, _) = login(&node_b, "bob").await;

    let mut ana = chat(&node_a.http, "ana-live", &format!("?access_token={ana_token}"), &[]).await;
    let mut bob = chat(&node_b.http, "ana-live", &format!("?access_token={bob_token}"), &[]).await;
    frame_of(&mut ana, "welcome", SOON).await;
    frame_of(&mut bob, "welcome", SOON).await;
    say(&mut bob, "hello from node b").await;
    let sent = Instant::now();
    let message = frame_of(&mut ana, "message", Duration::from_secs(1)).await;
    assert_eq!(message["text"], "hello from node b");
    assert!(sent.elapsed() < Duration::from_secs(1));
    let id = message["id"].as_str().expect("id");
    let delete = node_b.client.delete(node_b.url(&format!("/api/channels/ana-live/chat/messages/{id}"))).bearer_auth(&ana_token);
    assert_eq!(delete.send().await.expect("delete").status(), 204);
    assert_eq!(frame_of(&mut ana, "deleted", SOON).await["id"], id);

    let mut page = EventStream::open(&node_b.client, &node_b.url("/api/channels/ana-live/events")).await;
    page.wait_for(SOON, |name, data| name == "state" && data["live"].is_null()).await;
    let mut ffmpeg = ffmpeg_publish(&node_a.rtmp_url(&key), 640, 360, 30);
    let (pushed, api) =
        tokio::join!(page.wait_for(Duration::from_secs(40), |name, data| name == "state" && data["live"].is_object()), async {
            tokio::time::timeout(Duration::from_secs(40), api_says(&node_b, "ana-live", true)).await.expect("the API says live")
        });
    let late = pushed.1.saturating_duration_since(api);
    assert!(late < Duration::from_secs(2), "node b's page heard it {late:?} after node b's API said live");
    ffmpeg.kill().expect("stop ffmpeg");
    let _ = ffmpeg.wait();
    page.wait_for(Duration::from_secs(30), |name, data| name == "state" && data["live"].is_null()).await;
}

async fn bob_raw(socket: &mut support::events::Socket, text: &str) {
    use futures_util::SinkExt;
    socket.send(tokio_tungstenite::tungstenite::Message::Text(text.into())).await.expect("send");
}
