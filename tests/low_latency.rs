//! LL-HLS over plain HTTP against the real binary: parts near the live edge, a blocking playlist
//! reload held until the part it asks for exists, the preload-hinted part served the moment it is
//! made, delta updates, and the errors RFC 8216bis names.

mod support;

use std::time::Duration;

use support::{ffmpeg_publish, write_config, DataDir, Server, RELAY_CONFIG};

/// `(segment, part)` of the EXT-X-PRELOAD-HINT in a playlist.
fn preload_hint(playlist: &str) -> Option<(u64, u32)> {
    let line = playlist.lines().find(|l| l.starts_with("#EXT-X-PRELOAD-HINT:"))?;
    let uri = line.split("URI=\"").nth(1)?.split('"').next()?;
    let (segment, part) = uri.strip_suffix(".m4s")?.split_once("-p")?;
    Some((segment.parse().ok()?, part.parse().ok()?))
}

fn part_uri(segment: u64, part: u32) -> String {
    format!("{segment:08}-p{part}.m4s")
}

#[tokio::test(flavor = "multi_thread")]
async fn blocking_reloads_preload_hints_and_delta_updates() {
    let dir = DataDir::new();
    // A relay keeps the machine free for the test; a long window makes old segments skippable.
    let config = write_config(&dir.0, "relay.toml", &format!("{RELAY_CONFIG}live_window_segments = 12\n"));
    let server = Server::start(&dir.0.join("data"), &[("FERROCAST_CONFIG", &config)]);
    let (_token, key) = server.streamer("lena", "lena-live").await;
    let mut ffmpeg = ffmpeg_publish(&server.rtmp_url(&key), 640, 360, 34);
    let video_id = server.wait_until_live("lena-live").await;
    let index = format!("/hls/{video_id}/source/index.m3u8");
    let playlist = server.wait_for_text(&index, "#EXT-X-PART:", Duration::from_secs(30)).await;
    assert!(playlist.contains("#EXT-X-VERSION:9") && playlist.contains("#EXT-X-PART-INF:PART-TARGET=0.25"), "{playlist}");
    assert!(playlist.contains("CAN-BLOCK-RELOAD=YES") && playlist.contains("PART-HOLD-BACK=0.75"), "{playlist}");
    assert!(playlist.contains("#EXT-X-MAP:URI=\"init-"), "{playlist}");

    // Ask for the hinted part, which does not exist yet: the answer waits for it and lists it.
    let (segment, part) = preload_hint(&playlist).expect("a preload hint");
    let listed = |text: &str, uri: &str| text.lines().any(|l| l.starts_with("#EXT-X-PART:") && l.contains(&format!("URI=\"{uri}\"")));
    assert!(!listed(&playlist, &part_uri(segment, part)), "the hinted part is not listed yet");
    let (status, held) = server.get_text(&format!("{index}?_HLS_msn={segment}&_HLS_part={part}")).await;
    assert_eq!(status, 200);
    assert!(listed(&held, &part_uri(segment, part)), "{held}");

    // The next hinted part, requested before it exists, arrives as soon as it is made.
    let (next_segment, next_part) = preload_hint(&held).expect("a newer preload hint");
    let response =
        server.client.get(server.url(&format!("/hls/{video_id}/source/{}", part_uri(next_segment, next_part)))).send().await.expect("part");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "video/mp4");
    let body = response.bytes().await.expect("body");
    assert_eq!(&body[4..8], b"moof", "a part is one CMAF fragment");

    // Once its segment is complete, a part is served from the stored segment: the same bytes.
    let later = server.get_text(&format!("{index}?_HLS_msn={}", next_segment + 1)).await.1;
    assert!(later.contains(&format!("{next_segment:08}.m4s")), "{later}");
    let get = |file: String| {
        let url = server.url(&format!("/hls/{video_id}/source/{file}"));
        let client = server.client.clone();
        async move { client.get(url).send().await.expect("get").bytes().await.expect("body") }
    };
    let whole = get(format!("{next_segment:08}.m4s")).await;
    let first_part = get(part_uri(next_segment, 0)).await;
    assert!(!first_part.is_empty() && whole.starts_with(&first_part), "a segment is its parts back to back");

    // RFC 8216bis: a part without a segment, or a segment more than two ahead, is a 400.
    assert_eq!(server.get_text(&format!("{index}?_HLS_part=0")).await.0, 400);
    assert_eq!(server.get_text(&format!("{index}?_HLS_msn={}", next_segment + 5)).await.0, 400);
    // A part far from the live edge is not waited for.
    let response =
        server.client.get(server.url(&format!("/hls/{video_id}/source/{}", part_uri(next_segment + 9, 0)))).send().await.expect("part");
    assert_eq!(response.status(), 404);
    assert_eq!(response.headers()["cache-control"], "max-age=1");

    // Once more than CAN-SKIP-UNTIL (6 target durations) is listed, a delta update skips the oldest.
    let delta = server
        .poll(Duration::from_secs(40), || async {
            let (_, text) = server.get_text(&format!("{index}?_HLS_skip=YES")).await;
            text.contains("#EXT-X-SKIP:SKIPPED-SEGMENTS=").then_some(text)
        })
        .await
        .expect("a delta update");
    assert!(delta.contains("#EXT-X-MAP:URI=\"init-"), "the map applies after the skip: {delta}");
    let (_, full) = server.get_text(&index).await;
    assert!(!full.contains("#EXT-X-SKIP"), "without _HLS_skip the whole window: {full}");
    let (_, recording) = server.get_text(&format!("/hls/{video_id}/source/recording.m3u8")).await;
    assert!(recording.contains("#EXT-X-PLAYLIST-TYPE:EVENT") && !recording.contains("#EXT-X-PART:"), "{recording}");

    assert!(ffmpeg.wait().expect("ffmpeg").success());
    server.wait_for_status(&video_id, "ready", Duration::from_secs(30)).await;
    let (_, vod) = server.get_text(&index).await;
    assert!(vod.contains("#EXT-X-ENDLIST") && !vod.contains("#EXT-X-PART") && !vod.contains("PRELOAD-HINT"), "{vod}");
    assert!(vod.contains("#EXT-X-VERSION:6") && vod.contains("#EXT-X-MAP:URI=\"init-"), "{vod}");
}
