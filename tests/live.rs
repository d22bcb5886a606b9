//! Going live for real: the `ferrocast` binary, ffmpeg and GStreamer's rtmp2sink as publishers,
//! HTTP to fetch what a player fetches, ffprobe to decode it.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use support::{
    ffmpeg_publish, probe, segment_durations, write_config, DataDir, Server, CPU_AWARE_LADDER, DEEP_ENCODER_QUEUES, RELAY_CONFIG,
};

/// Short grace so tests do not wait ten seconds for a video to end.
const GRACE: (&str, &str) = ("FERROCAST_RTMP__RECONNECT_GRACE_SECS", "3");

#[tokio::test(flavor = "multi_thread")]
async fn obs_like_publish_plays_live_in_three_renditions_then_as_a_recording() {
    let dir = DataDir::new();
    let server = Server::start(&dir.0, &[GRACE, DEEP_ENCODER_QUEUES]);
    let (_token, key) = server.streamer("keerti", "keerti-live").await;
    let published_secs = 20;
    let mut ffmpeg = ffmpeg_publish(&server.rtmp_url(&format!("{key}?bandwidth=6000")), 1280, 720, published_secs);

    // While live: the channel says so, the master lists three rungs, each live playlist rolls.
    let video_id = server.wait_until_live("keerti-live").await;
    // Each rung is listed once its encoder has produced its first segment: under load the three do
    // not always arrive together, so wait for all three before reading the master.
    let master = server
        .poll(Duration::from_secs(30), || async {
            let (status, master) = server.get_text(&format!("/hls/{video_id}/master.m3u8")).await;
            (status == 200 && ["low", "mid", "high"].iter().all(|r| master.contains(&format!("{r}/index.m3u8")))).then_some(master)
        })
        .await
        .expect("the master lists all three rungs within 30 s");
    for (rung, resolution) in [("low", "640x360"), ("mid", "854x480"), ("high", "1280x720")] {
        assert!(master.contains(&format!("RESOLUTION={resolution}")) && master.contains(&format!("{rung}/index.m3u8")), "{master}");
    }
    assert!(master.contains("BANDWIDTH=") && master.contains("AVERAGE-BANDWIDTH=") && master.contains("FRAME-RATE=30.000"));
    assert!(master.contains("CODECS=\"avc1.4d40") && master.contains("mp4a.40.2"), "{master}");
    let live_playlist = server.wait_for_text(&format!("/hls/{video_id}/low/index.m3u8"), "00000002.m4s", Duration::from_secs(30)).await;
    assert!(!live_playlist.contains("#EXT-X-ENDLIST") && !live_playlist.contains("PLAYLIST-TYPE"), "{live_playlist}");
    assert!(live_playlist.contains("#EXT-X-PROGRAM-DATE-TIME:"));
    for duration in segment_durations(&live_playlist) {
        assert!((1.5..=2.5).contains(&duration), "~2 s segments: {live_playlist}");
    }
    let response = server.client.get(server.url(&format!("/hls/{video_id}/low/index.m3u8"))).send().await.expect("playlist");
    assert_eq!(response.headers()["content-type"], "application/vnd.apple.mpegurl");
    assert_eq!(response.headers()["cache-control"], "public, no-cache", "a live playlist changes with every part");
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    let (_, recording_so_far) = server.get_text(&format!("/hls/{video_id}/high/recording.m3u8")).await;
    assert!(recording_so_far.contains("#EXT-X-PLAYLIST-TYPE:EVENT") && recording_so_far.contains("00000000.m4s"), "{recording_so_far}");
    let (_, video) = server.get_json(&format!("/api/videos/{video_id}")).await;
    assert_eq!(video["status"], "live");

    assert!(ffmpeg.wait().expect("ffmpeg").success(), "ffmpeg published without error");

    // After the publisher stops (and the grace period): a recording with ENDLIST and the full length.
    let video = server.wait_for_status(&video_id, "ready", Duration::from_secs(30)).await;
    let duration = video["duration_secs"].as_f64().expect("duration");
    assert!((duration - f64::from(published_secs)).abs() <= 1.0, "recorded {duration} s of {published_secs} s");
    let (_, channel) = server.get_json("/api/channels/keerti-live").await;
    assert_eq!(channel["live"], false);
    for (rung, width, height) in [("low", 640, 360), ("mid", 854, 480), ("high", 1280, 720)] {
        let (status, playlist) = server.get_text(&format!("/hls/{video_id}/{rung}/index.m3u8")).await;
        assert_eq!(status, 200);
        assert!(playlist.contains("#EXT-X-PLAYLIST-TYPE:VOD") && playlist.trim_end().ends_with("#EXT-X-ENDLIST"), "{playlist}");
        let listed: f64 = segment_durations(&playlist).iter().sum();
        assert!((listed - f64::from(published_secs)).abs() <= 1.0, "{rung}: {listed} s listed");
        let (w, h, probed, frames) = probe(&server.url(&format!("/hls/{video_id}/{rung}/index.m3u8")));
        assert_eq!((w, h), (width, height), "{rung} decodes at its resolution");
        assert!((probed - f64::from(published_secs)).abs() <= 1.0, "{rung}: ffprobe saw {probed} s");
        assert!(frames >= u64::from(published_secs) * 30 * 9 / 10, "{rung}: {frames} frames decoded");
    }
    let thumbnail = server.client.get(server.url(&format!("/hls/{video_id}/thumbnail.jpg"))).send().await.expect("thumbnail");
    assert_eq!(thumbnail.headers()["content-type"], "image/jpeg");
    assert!(thumbnail.bytes().await.expect("bytes").starts_with(&[0xff, 0xd8]), "a JPEG");

    let metrics = server.get_text("/metrics").await.1;
    assert!(metrics.contains("ferrocast_rtmp_publishes_total{result=\"accepted\"} 1"), "{metrics}");
    assert!(metrics.contains("ferrocast_segments_written_total"), "{metrics}");
    // Per-stream series name the channel; a video id (a playback link, for unlisted videos) never.
    assert!(metrics.contains("ferrocast_live_viewers{channel=\"keerti-live\"}"), "{metrics}");
    assert!(!metrics.contains(&video_id), "{metrics}");
    assert!(server.terminate().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_key_is_refused_and_creates_nothing_and_junk_does_not_hurt() {
    let dir = DataDir::new();
    let server = Server::start(&dir.0, &[]);
    let (_token, key) = server.streamer("alice", "alice-live").await;

    // Garbage, a truncated handshake and an unknown app: each closes its own connection only.
    let mut garbage = TcpStream::connect(&server.rtmp).expect("connect");
    garbage.write_all(&[0x47; 4096]).expect("write");
    let mut sink = Vec::new();
    garbage.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let _ = garbage.read_to_end(&mut sink);
    let mut half = TcpStream::connect(&server.rtmp).expect("connect");
    half.write_all(&[3; 700]).expect("write");

    let wrong = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=15", "-t", "3"])
        .args(["-c:v", "libx264", "-f", "flv", &server.rtmp_url("live_0000000000000000000000000000000000000000")])
        .output()
        .expect("ffmpeg");
    assert!(!wrong.status.success(), "a wrong key must be refused");
    let (_, videos) = server.get_json("/api/videos").await;
    assert_eq!(videos["items"].as_array().map(Vec::len), Some(0), "no video for a refused publish");
    let (_, channel) = server.get_json("/api/channels/alice-live").await;
    assert_eq!(channel["live"], false);

    // The server still takes a real publish (the half handshake is still open meanwhile).
    let mut ffmpeg = ffmpeg_publish(&server.rtmp_url(&key), 640, 360, 4);
    let video_id = server.wait_until_live("alice-live").await;
    assert!(ffmpeg.wait().expect("ffmpeg").success());
    drop(half);
    let metrics = server.get_text("/metrics").await.1;
    assert!(metrics.contains("ferrocast_rtmp_publishes_total{result=\"refused\"} 1"), "{metrics}");
    assert!(!video_id.is_empty());
    assert!(server.terminate().success(), "shutdown ends the live video cleanly");
    // Shutdown finalised the video: a restart finds it ready, not live.
    let server = Server::start(&dir.0, &[]);
    let (_, video) = server.get_json(&format!("/api/videos/{video_id}")).await;
    assert_eq!(video["status"], "ready", "{video}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_publisher_that_comes_back_within_the_grace_period_continues_the_same_video() {
    let dir = DataDir::new();
    let server = Server::start(&dir.0, &[("FERROCAST_RTMP__RECONNECT_GRACE_SECS", "8")]);
    let (_token, key) = server.streamer("bob", "bob-live").await;

    let mut first = ffmpeg_publish(&server.rtmp_url(&key), 640, 360, 5);
    let video_id = server.wait_until_live("bob-live").await;
    assert!(first.wait().expect("ffmpeg").success());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut second = ffmpeg_publish(&server.rtmp_url(&key), 640, 360, 5);
    assert!(second.wait().expect("ffmpeg").success());
    let (_, channel) = server.get_json("/api/channels/bob-live").await;
    assert_eq!(channel["live_video_id"].as_str(), Some(video_id.as_str()), "same video after the reconnect");

    let video = server.wait_for_status(&video_id, "ready", Duration::from_secs(30)).await;
    let (_, playlist) = server.get_text(&format!("/hls/{video_id}/low/index.m3u8")).await;
    assert_eq!(playlist.matches("#EXT-X-DISCONTINUITY\n").count(), 1, "{playlist}");
    assert!(video["duration_secs"].as_f64().is_some_and(|d| (8.0..=11.0).contains(&d)), "{video}");
    let (_, videos) = server.get_json("/api/videos").await;
    assert_eq!(videos["items"].as_array().map(Vec::len), Some(1), "one video for both connections");
    let (_, _, probed, _) = probe(&server.url(&format!("/hls/{video_id}/low/index.m3u8")));
    assert!(probed > 8.0, "both halves decode: {probed} s");
}

#[tokio::test(flavor = "multi_thread")]
async fn gstreamer_rtmp2sink_publishes_too() {
    let dir = DataDir::new();
    let server = Server::start(&dir.0, &[GRACE]);
    let (_token, key) = server.streamer("carol", "carol-live").await;
    let pipeline = format!(
        "videotestsrc is-live=true num-buffers=180 ! video/x-raw,width=640,height=360,framerate=30/1 ! x264enc tune=zerolatency key-int-max=60 ! \
         h264parse ! flvmux name=mux streamable=true ! rtmp2sink location={} \
         audiotestsrc is-live=true num-buffers=280 ! audioconvert ! avenc_aac ! aacparse ! mux.",
        server.rtmp_url(&key)
    );
    let status = Command::new("gst-launch-1.0").arg("-q").args(pipeline.split_whitespace()).status().expect("gst-launch-1.0");
    assert!(status.success(), "rtmp2sink published");
    let video_id = server
        .poll(Duration::from_secs(10), || async {
            let (_, videos) = server.get_json("/api/channels/carol-live/videos").await;
            videos["items"][0]["id"].as_str().map(str::to_string)
        })
        .await
        .expect("a video was created");
    let video = server.wait_for_status(&video_id, "ready", Duration::from_secs(30)).await;
    assert!(video["duration_secs"].as_f64().is_some_and(|d| d >= 4.0), "{video}");
    let (w, h, _, _) = probe(&server.url(&format!("/hls/{video_id}/low/index.m3u8")));
    assert_eq!((w, h), (640, 360));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_origin_answers_only_for_files_it_has() {
    let dir = DataDir::new();
    let server = Server::start(&dir.0, &[]);
    for path in [
        "/hls/../data/ferrocast.db",
        "/hls/..%2f..%2fjwt_secret",
        "/hls/0190f0e0a0b07c0d8e0f0a0b0c0d0e0f/master.m3u8",
        "/hls/0190f0e0a0b07c0d8e0f0a0b0c0d0e0f/low/../../jwt_secret",
        "/hls/not-a-video/master.m3u8",
        "/hls/0190f0e0a0b07c0d8e0f0a0b0c0d0e0f/low/00000000.exe",
    ] {
        let (status, _) = server.get_text(path).await;
        assert_eq!(status, 404, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unlisted_and_private_recordings_play_only_with_their_token() {
    let dir = DataDir::new();
    let server = Server::start(&dir.0, &[("FERROCAST_RTMP__RECONNECT_GRACE_SECS", "1")]);
    let (token, key) = server.streamer("dana", "dana-live").await;
    // Dana's streams start unlisted: the channel's default.
    let channel = server.client.patch(server.url("/api/channels/dana-live")).bearer_auth(&token);
    let channel: serde_json::Value =
        channel.json(&serde_json::json!({"default_visibility": "unlisted"})).send().await.expect("patch").json().await.expect("json");
    assert_eq!(channel["default_visibility"], "unlisted");
    let mut ffmpeg = ffmpeg_publish(&server.rtmp_url(&key), 640, 360, 4);
    let owner_view = || async {
        let view = server.client.get(server.url("/api/channels/dana-live")).bearer_auth(&token).send().await.expect("channel");
        view.json::<serde_json::Value>().await.expect("json")["live_video_id"].as_str().map(str::to_string)
    };
    let video_id = server.poll(Duration::from_secs(30), owner_view).await.expect("live");
    let (_, public_view) = server.get_json("/api/channels/dana-live").await;
    assert_eq!(public_view["live"], false, "an unlisted stream is not announced: {public_view}");
    let (status, _) = server.get_text(&format!("/hls/{video_id}/master.m3u8")).await;
    assert_eq!(status, 403, "an unlisted live video needs its link");
    assert!(ffmpeg.wait().expect("ffmpeg").success());
    server.wait_for_status(&video_id, "ready", Duration::from_secs(30)).await;

    let mut earlier_url: Option<String> = None;
    for (visibility, refused) in [("unlisted", 403), ("private", 404)] {
        let patched = server
            .client
            .patch(server.url(&format!("/api/videos/{video_id}")))
            .bearer_auth(&token)
            .json(&serde_json::json!({ "visibility": visibility }))
            .send()
            .await
            .expect("patch");
        let video: serde_json::Value = patched.json().await.expect("json");
        let playback_url = video["playback_url"].as_str().expect("playback url").to_string();
        let query = playback_url.split_once('?').map(|(_, q)| q.to_string()).expect("a token query");

        let (status, _) = server.get_text(&format!("/hls/{video_id}/master.m3u8")).await;
        assert_eq!(status, refused, "{visibility} without a token");
        let (status, _) = server.get_text(&format!("/hls/{video_id}/low/00000000.m4s")).await;
        assert_eq!(status, refused, "{visibility} segment without a token");

        let master = server.client.get(&playback_url).send().await.expect("master");
        assert_eq!(master.status(), 200);
        assert!(master.headers()["cache-control"].to_str().expect("ascii").starts_with("private"));
        let master = master.text().await.expect("text");
        assert!(master.contains(&format!("low/index.m3u8?{query}")), "{master}");
        let (_, playlist) = server.get_text(&format!("/hls/{video_id}/low/index.m3u8?{query}")).await;
        assert!(playlist.contains(&format!("00000000.m4s?{query}")), "the token is carried to every segment: {playlist}");
        let (w, h, _, _) = probe(&playback_url.replace("master.m3u8", "low/index.m3u8"));
        assert_eq!((w, h), (640, 360), "a player following the signed URLs decodes the video");
        let (status, _) = server.get_text(&format!("/hls/{video_id}/low/index.m3u8?token=1.forged")).await;
        assert_eq!(status, refused, "a forged token is refused");
        if let Some(earlier) = earlier_url.replace(playback_url) {
            let status = server.client.get(&earlier).send().await.expect("master").status();
            assert_eq!(status, 404, "turning the video private revoked the link handed out while it was unlisted");
        }
    }

    // Public again: no token, and shared caches keep it only briefly.
    let patch = server.client.patch(server.url(&format!("/api/videos/{video_id}"))).bearer_auth(&token);
    assert_eq!(patch.json(&serde_json::json!({"visibility": "public"})).send().await.expect("patch").status(), 200);
    let master = server.client.get(server.url(&format!("/hls/{video_id}/master.m3u8"))).send().await.expect("master");
    assert_eq!(master.status(), 200);
    let cache = master.headers()["cache-control"].to_str().expect("ascii").to_string();
    assert!(cache.starts_with("public") && cache.contains("s-maxage=300"), "{cache}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_never_leaves_a_video_live_forever() {
    let dir = DataDir::new();
    let server = Server::start(&dir.0, &[]);
    let (_token, key) = server.streamer("erin", "erin-live").await;
    let mut ffmpeg = ffmpeg_publish(&server.rtmp_url(&key), 640, 360, 30);
    let video_id = server.wait_until_live("erin-live").await;
    server.wait_for_text(&format!("/hls/{video_id}/low/index.m3u8"), "00000002.m4s", Duration::from_secs(30)).await;
    server.crash();
    let _ = ffmpeg.kill();
    let _ = ffmpeg.wait();

    // Start-up finalises what the crash left: ready, with what was recorded, ENDLIST and all.
    let server = Server::start(&dir.0, &[]);
    let (_, video) = server.get_json(&format!("/api/videos/{video_id}")).await;
    assert_eq!(video["status"], "ready", "{video}");
    assert!(video["duration_secs"].as_f64().is_some_and(|d| d >= 6.0), "{video}");
    let (status, playlist) = server.get_text(&format!("/hls/{video_id}/low/index.m3u8")).await;
    assert_eq!(status, 200);
    assert!(playlist.contains("#EXT-X-PLAYLIST-TYPE:VOD") && playlist.contains("#EXT-X-ENDLIST"), "{playlist}");
    let (status, master) = server.get_text(&format!("/hls/{video_id}/master.m3u8")).await;
    assert!(status == 200 && master.contains("low/index.m3u8"), "{master}");
    let (w, _, probed, _) = probe(&server.url(&format!("/hls/{video_id}/low/index.m3u8")));
    assert!(w == 640 && probed >= 6.0, "{probed} s decoded");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_relay_serves_the_source_untouched() {
    let dir = DataDir::new();
    let config = write_config(&dir.0, "relay.toml", RELAY_CONFIG);
    let server = Server::start(&dir.0.join("data"), &[GRACE, ("FERROCAST_CONFIG", &config)]);
    let (_token, key) = server.streamer("rita", "rita-live").await;
    let mut ffmpeg = ffmpeg_publish(&server.rtmp_url(&key), 1280, 720, 8);
    let video_id = server.wait_until_live("rita-live").await;
    assert!(ffmpeg.wait().expect("ffmpeg").success());
    server.wait_for_status(&video_id, "ready", Duration::from_secs(30)).await;
    let (_, master) = server.get_text(&format!("/hls/{video_id}/master.m3u8")).await;
    assert!(master.contains("source/index.m3u8") && !master.contains("low/"), "{master}");
    assert!(master.contains("CODECS=\"avc1.64"), "the source's own High profile is announced: {master}");
    let (w, h, probed, _) = probe(&server.url(&format!("/hls/{video_id}/source/index.m3u8")));
    assert_eq!((w, h), (1280, 720));
    assert!((probed - 8.0).abs() <= 1.0, "{probed} s");
    let thumbnail = server.client.get(server.url(&format!("/hls/{video_id}/thumbnail.jpg"))).send().await.expect("thumbnail");
    assert_eq!(thumbnail.status(), 200, "thumbnails come from decoded keyframes");
}

#[tokio::test(flavor = "multi_thread")]
async fn rotating_the_stream_key_disconnects_its_publisher() {
    let dir = DataDir::new();
    let server = Server::start(&dir.0, &[GRACE]);
    let (token, key) = server.streamer("rosa", "rosa-live").await;
    let mut ffmpeg = ffmpeg_publish(&server.rtmp_url(&key), 320, 240, 60);
    let video_id = server.wait_until_live("rosa-live").await;
    let rotated = server.client.post(server.url("/api/channels/rosa-live/stream-key")).bearer_auth(&token).send().await.expect("rotate");
    assert_eq!(rotated.status(), 200);
    // The publisher using the old key is cut off now, not at the end of its 60 s.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let ended = loop {
        match ffmpeg.try_wait().expect("ffmpeg") {
            Some(status) => break Some(status),
            None if std::time::Instant::now() > deadline => break None,
            None => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    };
    assert!(ended.is_some_and(|status| !status.success()), "ffmpeg was disconnected: {ended:?}");
    server.wait_for_status(&video_id, "ready", Duration::from_secs(60)).await;
    // And the old key is refused.
    let mut again = ffmpeg_publish(&server.rtmp_url(&key), 320, 240, 3);
    assert!(!again.wait().expect("ffmpeg").success(), "the old key no longer publishes");
}

/// A vertical 60 fps OBS canvas: a portrait ladder, 60 fps on the 720p rung and 30 below.
#[tokio::test(flavor = "multi_thread")]
async fn a_vertical_sixty_fps_stream_gets_a_portrait_ladder_at_the_usual_rates() {
    let dir = DataDir::new();
    let server = Server::start(&dir.0, &[GRACE, DEEP_ENCODER_QUEUES]);
    let (_token, key) = server.streamer("vera", "vera-live").await;
    let mut ffmpeg = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc2=size=720x1280:rate=60", "-t", "8"])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-g", "120", "-pix_fmt", "yuv420p", "-f", "flv", &server.rtmp_url(&key)])
        .spawn()
        .expect("ffmpeg");
    let video_id = server.wait_until_live("vera-live").await;
    // The master lists each rung once it has made its first part, in whatever order they come.
    for rung in ["low", "mid", "high"] {
        server.wait_for_text(&format!("/hls/{video_id}/master.m3u8"), &format!("{rung}/index.m3u8"), Duration::from_secs(30)).await;
    }
    let (_, master) = server.get_text(&format!("/hls/{video_id}/master.m3u8")).await;
    for (rung, resolution, rate) in [("low", "360x640", "30.000"), ("mid", "480x854", "30.000"), ("high", "720x1280", "60.000")] {
        let line = master.lines().take_while(|l| *l != format!("{rung}/index.m3u8")).last().unwrap_or_default();
        assert!(line.contains(&format!("RESOLUTION={resolution}")) && line.contains(&format!("FRAME-RATE={rate}")), "{rung}: {master}");
    }
    assert!(ffmpeg.wait().expect("ffmpeg").success());
    server.wait_for_status(&video_id, "ready", Duration::from_secs(60)).await;
    for (rung, size) in [("low", (360, 640)), ("high", (720, 1280))] {
        let (w, h, duration, frames) = probe(&server.url(&format!("/hls/{video_id}/{rung}/index.m3u8")));
        assert_eq!((w, h), size, "{rung}");
        let rate = frames as f64 / duration;
        let expected = if rung == "high" { 60.0 } else { 30.0 };
        assert!((rate - expected).abs() < expected * 0.15, "{rung}: {frames} frames in {duration:.1} s");
    }
}

/// The CPU-aware ladder, for real: a 1080p60 publish whose 1080p60 rung one x264 thread cannot
/// encode in real time with the `medium` preset (two rungs on two cores get one thread each; with
/// `superfast` this machine keeps up) sheds that
/// rung — the master stops offering it, the health names it, its viewers get the low rung's
/// picture after a discontinuity — while the low rung drops nothing; a few quiet seconds later it
/// is tried again (its own 1080p picture comes back) and, still too slow, shed again. Both
/// renditions keep the same segment numbers throughout.
#[tokio::test(flavor = "multi_thread")]
async fn a_ladder_the_machine_cannot_encode_sheds_its_top_rung_and_tries_it_again() {
    let dir = DataDir::new();
    let config = write_config(
        &dir.0,
        "shedding.toml",
        "[media]\nlive_x264_preset = \"medium\"\nencoder_queue_frames = 60\nshed_restore_after_secs = 4\n\n\
         [[media.ladder]]\nname = \"low\"\nwidth = 320\nheight = 180\nvideo_bitrate_kbps = 300\n\n\
         [[media.ladder]]\nname = \"top\"\nwidth = 1920\nheight = 1080\nvideo_bitrate_kbps = 6000\n",
    );
    let server = Server::start(&dir.0, &[GRACE, CPU_AWARE_LADDER, ("FERROCAST_CONFIG", config.as_str())]);
    let (token, key) = server.streamer("carla", "carla-live").await;
    // Encoded beforehand and sent as it is, so the publisher costs no CPU.
    let clip = support::uploader::make_clip(
        &dir.0,
        "1080p60.mp4",
        "testsrc2=size=1920x1080:rate=60",
        6,
        &["-preset", "ultrafast", "-crf", "30", "-g", "60"],
    );
    let mut ffmpeg = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1"])
        .arg("-i")
        .arg(&clip)
        .args(["-t", "40", "-c", "copy", "-f", "flv", &server.rtmp_url(&key)])
        .spawn()
        .expect("ffmpeg");
    let video_id = server.wait_until_live("carla-live").await;
    let health = || async {
        let response = server.client.get(server.url(&format!("/api/videos/{video_id}"))).bearer_auth(&token).send().await.expect("video");
        let video: serde_json::Value = response.json().await.expect("json");
        video["health"].clone()
    };
    let shed = server
        .poll(Duration::from_secs(30), || async { Some(health().await).filter(|h| h["shed_rungs"] == serde_json::json!(["top"])) })
        .await;
    assert!(shed.is_some(), "the top rung was never shed: {}\n{}", health().await, server.recent_lines(30));
    let (_, master) = server.get_text(&format!("/hls/{video_id}/master.m3u8")).await;
    assert!(master.contains("low/index.m3u8") && !master.contains("top/index.m3u8"), "a shed rung is not offered: {master}");

    assert!(ffmpeg.wait().expect("ffmpeg").success());
    server.wait_for_status(&video_id, "ready", Duration::from_secs(60)).await;
    let (_, low) = server.get_text(&format!("/hls/{video_id}/low/index.m3u8")).await;
    let (_, top) = server.get_text(&format!("/hls/{video_id}/top/index.m3u8")).await;
    let segments = |playlist: &str| playlist.lines().filter(|l| l.ends_with(".m4s")).map(str::to_string).collect::<Vec<_>>();
    assert_eq!(segments(&top), segments(&low), "both renditions number the same segments alike:\n{top}\n{low}");

    // The widths of the top rendition's pictures, in order, one per init segment.
    let mut widths = Vec::new();
    for init in top.lines().filter_map(|l| l.strip_prefix("#EXT-X-MAP:URI=\"")).map(|l| l.trim_end_matches('"')) {
        let (width, _, _, _) = probe(&server.url(&format!("/hls/{video_id}/top/{init}")));
        widths.push(width);
    }
    let shed_then_back = widths.windows(3).any(|w| w == [1920, 320, 1920]);
    assert!(shed_then_back, "the top rendition went to the low rung's picture and back: {widths:?}");

    // The rung that stayed drops nothing.
    let (_, _, duration, frames) = probe(&server.url(&format!("/hls/{video_id}/low/index.m3u8")));
    let expected = duration * 30.0;
    assert!(frames as f64 >= expected - 3.0, "low: {frames} frames in {duration:.2} s");
}
