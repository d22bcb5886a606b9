//! Uploading video files for real: the `ferrocast` binary, parts sent over HTTP the way a browser
//! or a resumable client sends them, the worker transcoding, ffprobe decoding the result.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{json, Value};
use support::uploader::{digest, make_clip, make_mp4, Uploader};
use support::{probe, segment_durations, write_config, DataDir, Server};

const PART_BYTES: usize = 256 * 1024;
const SMALL_PARTS: (&str, &str) = ("FERROCAST_UPLOADS__PART_BYTES", "262144");

/// Sends the headers of a part and half its body, then drops the connection, as a network
/// failure would.
fn interrupted_put(server: &Server, token: &str, id: &str, n: usize, part: &[u8]) {
    let address = server.http.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).expect("connect");
    let head = format!(
        "PUT /api/uploads/{id}/parts/{n} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nContent-Digest: {}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        digest(part),
        part.len()
    );
    stream.write_all(head.as_bytes()).expect("headers");
    stream.write_all(&part[..part.len() / 2]).expect("half a body");
    stream.flush().expect("flush");
    drop(stream);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_sent_out_of_order_resent_and_resumed_becomes_a_playable_video() {
    let dir = DataDir::new();
    std::fs::create_dir_all(&dir.0).expect("dir");
    let server = Server::start(&dir.0.join("data"), &[SMALL_PARTS]);
    let (token, _key) = server.streamer("keerti", "keerti-live").await;
    let uploader = Uploader { server: &server, token: token.clone() };
    let seconds = 10;
    let file = make_mp4(&dir.0, "holiday.mp4", 1280, 720, seconds);
    let bytes = std::fs::read(&file).expect("read");
    let (status, created) = uploader.create("keerti-live", "holiday.mp4", bytes.len()).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_string();
    let part_count = created["part_count"].as_u64().expect("part count") as usize;
    assert_eq!(created["part_size"], PART_BYTES);
    assert_eq!(part_count, bytes.len().div_ceil(PART_BYTES));
    assert!(part_count >= 4, "the test needs several parts: {part_count}");
    let parts: Vec<&[u8]> = bytes.chunks(PART_BYTES).collect();

    // A wrong digest is refused and nothing of the part is kept.
    assert_eq!(uploader.put(&id, 2, parts[1], &digest(b"something else")).await, 400);
    // So is a part of the wrong length.
    assert_eq!(uploader.put(&id, 2, &parts[1][1..], &digest(&parts[1][1..])).await, 400);
    assert_eq!(uploader.status(&id).await["parts"], json!([]));

    // Out of order, the last part first, one part twice, one interrupted mid-way.
    let mut order: Vec<usize> = (1..=part_count).rev().collect();
    order.push(1);
    let interrupted = 2;
    for &n in &order {
        if n == interrupted {
            interrupted_put(&server, &token, &id, n, parts[n - 1]);
            continue;
        }
        assert_eq!(uploader.put(&id, n, parts[n - 1], &digest(parts[n - 1])).await, 200, "part {n}");
    }
    // Completing now says what is missing; the status tells the client what to resume.
    let (status, body) = uploader.complete(&id).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("1 parts missing: 2")), "{body}");
    let resumed = uploader.status(&id).await;
    let received: Vec<u64> = resumed["parts"].as_array().expect("parts").iter().filter_map(Value::as_u64).collect();
    assert_eq!(received, (1..=part_count as u64).filter(|&n| n != interrupted as u64).collect::<Vec<_>>());
    assert_eq!(uploader.put(&id, interrupted, parts[interrupted - 1], &digest(parts[interrupted - 1])).await, 200);

    // Twelve completions at once (a client retrying impatiently): one wins, the rest get 409.
    let outcomes = futures_util::future::join_all((0..12).map(|_| uploader.complete(&id))).await;
    let statuses: Vec<u16> = outcomes.iter().map(|(status, _)| *status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 202).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 11, "{statuses:?}");
    let completed = &outcomes.iter().find(|(status, _)| *status == 202).expect("the winner").1;
    let video_id = completed["video_id"].as_str().expect("video id").to_string();
    let (status, _) = uploader.complete(&id).await;
    assert_eq!(status, 409, "completing again is refused");
    let videos: Value = server
        .client
        .get(server.url("/api/channels/keerti-live/videos"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("videos")
        .json()
        .await
        .expect("json");
    assert_eq!(videos["items"].as_array().map(Vec::len), Some(1), "one video, not one per completion: {videos}");

    let (_, processing) = server.get_json(&format!("/api/videos/{video_id}")).await;
    assert!(["processing", "ready"].contains(&processing["status"].as_str().unwrap_or("")), "{processing}");
    let video = server.wait_for_status(&video_id, "ready", Duration::from_secs(120)).await;
    let duration = video["duration_secs"].as_f64().expect("duration");
    assert!((duration - f64::from(seconds)).abs() <= 1.0, "{duration} s of {seconds} s");
    assert_eq!(video["kind"], "upload");
    let (_, master) = server.get_text(&format!("/hls/{video_id}/master.m3u8")).await;
    for (rung, width, height) in [("low", 640, 360), ("mid", 854, 480), ("high", 1280, 720)] {
        assert!(master.contains(&format!("{rung}/index.m3u8")), "{master}");
        let (_, playlist) = server.get_text(&format!("/hls/{video_id}/{rung}/index.m3u8")).await;
        assert!(playlist.contains("#EXT-X-ENDLIST") && playlist.contains("#EXT-X-PLAYLIST-TYPE:VOD"), "{playlist}");
        assert!(segment_durations(&playlist).iter().all(|d| *d <= 4.5), "4 s VOD segments: {playlist}");
        let (w, h, probed, _) = probe(&server.url(&format!("/hls/{video_id}/{rung}/index.m3u8")));
        assert_eq!((w, h), (width, height));
        assert!((probed - f64::from(seconds)).abs() <= 1.0, "{rung}: {probed} s");
    }
    let thumbnail = server.client.get(server.url(&format!("/hls/{video_id}/thumbnail.jpg"))).send().await.expect("thumbnail");
    assert_eq!(thumbnail.status(), 200);
    assert!(!dir.0.join("data/uploads").join(&id).exists(), "parts are removed once assembled");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_that_is_not_video_fails_its_job_with_a_message_and_nothing_else() {
    let dir = DataDir::new();
    std::fs::create_dir_all(&dir.0).expect("dir");
    let server = Server::start(&dir.0.join("data"), &[]);
    let (token, _key) = server.streamer("sam", "sam-live").await;
    let (other_token, _) = server.streamer("eve", "eve-live").await;
    let uploader = Uploader { server: &server, token: token.clone() };

    // Someone else's channel: 403.
    let intruder = Uploader { server: &server, token: other_token };
    let (status, _) = intruder.create("sam-live", "x.mp4", 100).await;
    assert_eq!(status, 403);
    let (status, body) = uploader.create("sam-live", "huge.mp4", 21 * 1024 * 1024 * 1024).await;
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("size")), "{body}");

    let notes = dir.0.join("notes.mp4");
    std::fs::write(&notes, "shopping list: eggs, flour, a camera\n".repeat(500)).expect("write");
    let video_id = uploader.upload("sam-live", &notes).await;
    server.wait_for_status(&video_id, "failed", Duration::from_secs(60)).await;
    let failed: Value = server
        .client
        .get(server.url(&format!("/api/videos/{video_id}")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("video")
        .json()
        .await
        .expect("json");
    assert_eq!(failed["error"], "no decodable video stream", "the owner reads why: {failed}");
    let (_, anonymous) = server.get_json(&format!("/api/videos/{video_id}")).await;
    assert!(anonymous.get("error").is_none(), "the message is for the owner only");

    // The server carries on: a real video uploaded next becomes ready.
    let clip = make_mp4(&dir.0, "clip.mp4", 640, 360, 3);
    let video_id = uploader.upload("sam-live", &clip).await;
    server.wait_for_status(&video_id, "ready", Duration::from_secs(60)).await;
    let (_, master) = server.get_text(&format!("/hls/{video_id}/master.m3u8")).await;
    assert!(master.contains("low/index.m3u8") && !master.contains("high/index.m3u8"), "no upscaling: {master}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_killed_mid_job_is_replaced_and_the_job_completes() {
    let dir = DataDir::new();
    std::fs::create_dir_all(&dir.0).expect("dir");
    let data = dir.0.join("data");
    let env = [("FERROCAST_JOBS__LEASE_SECS", "3"), ("FERROCAST_JOBS__VOD_X264_PRESET", "medium")];
    let server = Server::start(&data, &env);
    let (token, _key) = server.streamer("kim", "kim-live").await;
    let clip = make_mp4(&dir.0, "long.mp4", 1280, 720, 30);
    let video_id = Uploader { server: &server, token }.upload("kim-live", &clip).await;

    // Wait until the transcode is under way, then kill the process outright.
    server
        .poll(Duration::from_secs(60), || async {
            let (_, video) = server.get_json(&format!("/api/videos/{video_id}")).await;
            video["progress"].as_f64().filter(|p| *p > 0.0)
        })
        .await
        .expect("the transcode started");
    server.crash();

    // A new process finds the job's lease expired, takes it over and finishes it.
    let server = Server::start(&data, &env);
    let video = server.wait_for_status(&video_id, "ready", Duration::from_secs(240)).await;
    assert!(video["duration_secs"].as_f64().is_some_and(|d| (d - 30.0).abs() <= 1.0), "{video}");
    let config = ferrocast_core::Config { data_dir: data.clone(), ..ferrocast_core::Config::default() };
    let db = ferrocast_core::Db::connect(&config).await.expect("the server's database");
    let job = ferrocast_core::db::jobs::for_video(&db, &video_id).await.expect("query").expect("the job");
    assert_eq!((job.attempts, job.status), (2, ferrocast_core::db::jobs::JobStatus::Done), "the second worker finished it: {job:?}");
    let (_, playlist) = server.get_text(&format!("/hls/{video_id}/high/index.m3u8")).await;
    assert_eq!(playlist.matches("#EXTINF").count(), 8, "one clean set of segments, none left from the first attempt: {playlist}");
    let mut stream = TcpStream::connect(server.http.trim_start_matches("http://")).expect("connect");
    let _ = stream.write_all(b"GET /readyz HTTP/1.0\r\n\r\n");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// A server of its own on a fresh data dir (kept until the test ends).
fn fresh_server() -> (DataDir, Server) {
    let dir = DataDir::new();
    std::fs::create_dir_all(&dir.0).expect("dir");
    let server = Server::start(&dir.0.join("data"), &[]);
    (dir, server)
}

/// Runs ffmpeg quietly with `args` (overwriting outputs) and expects success.
fn ffmpeg(args: &[&str]) {
    let status =
        std::process::Command::new("ffmpeg").args(["-hide_banner", "-loglevel", "error", "-y"]).args(args).status().expect("ffmpeg");
    assert!(status.success(), "ffmpeg {args:?}");
}

/// The most common laptop screen, and its odd-height cousin: both used to hang before their first
/// frame. Uploaded one after the other, so the second also shows that nothing is held up.
#[tokio::test(flavor = "multi_thread")]
async fn laptop_sized_recordings_become_ladders_of_even_sizes_with_the_source_aspect() {
    let (dir, server) = fresh_server();
    let (token, _key) = server.streamer("lea", "lea-live").await;
    let uploader = Uploader { server: &server, token };
    for (width, height) in [(1366u64, 768u64), (1366, 766)] {
        let clip = make_mp4(&dir.0, &format!("screen-{width}x{height}.mp4"), width as u32, height as u32, 2);
        let video_id = uploader.upload("lea-live", &clip).await;
        server.wait_for_status(&video_id, "ready", Duration::from_secs(120)).await;
        let (_, master) = server.get_text(&format!("/hls/{video_id}/master.m3u8")).await;
        let rungs: Vec<&str> = master.lines().filter(|l| l.ends_with("/index.m3u8")).collect();
        assert!(rungs.len() >= 3, "{master}");
        for rung in rungs {
            let (w, h, _, frames) = probe(&server.url(&format!("/hls/{video_id}/{rung}")));
            assert!(w % 2 == 0 && h % 2 == 0 && w <= width && h <= height, "{width}x{height} {rung}: {w}x{h}");
            let aspect = (w as f64 / h as f64) / (width as f64 / height as f64);
            assert!((aspect - 1.0).abs() < 0.01, "{width}x{height} {rung}: {w}x{h} changes the aspect");
            assert!(frames >= 55, "{width}x{height} {rung}: {frames} frames of 60");
        }
    }
}

/// One frame of `input` (its first, or the one at `at` seconds), scaled to `w`x`h` grey pixels, as
/// ffmpeg decodes it: ffmpeg applies a file's display matrix itself, so it is the reference for
/// which way up a picture belongs.
fn grey_frame(input: &str, w: u32, h: u32) -> Vec<u8> {
    let output = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-i", input, "-frames:v", "1"])
        .args(["-vf", &format!("scale={w}:{h},format=gray"), "-f", "rawvideo", "-"])
        .output()
        .expect("ffmpeg");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    output.stdout
}

fn mean_difference(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| f64::from(x.abs_diff(*y))).sum::<f64>() / a.len() as f64
}

/// A phone's portrait video (landscape pixels, a 90° display matrix) comes out upright as a
/// portrait ladder; PAL anamorphic (720x576 at 64:45) comes out 16:9 in square pixels.
#[tokio::test(flavor = "multi_thread")]
async fn phone_and_camera_files_come_out_upright_and_the_right_shape() {
    let (dir, server) = fresh_server();
    let (token, _key) = server.streamer("pia", "pia-live").await;
    let uploader = Uploader { server: &server, token };

    // The phone: 1280x720 coded, shown turned a quarter: 720x1280 upright.
    let coded = make_clip(&dir.0, "coded.mp4", "testsrc2=size=1280x720:rate=30", 2, &[]);
    let phone = dir.0.join("phone.mp4");
    let (coded_s, phone_s) = (coded.to_str().expect("utf-8"), phone.to_str().expect("utf-8"));
    ffmpeg(&["-i", coded_s, "-c", "copy", "-metadata:s:v:0", "rotate=90", phone_s]);
    let video_id = uploader.upload("pia-live", &phone).await;
    server.wait_for_status(&video_id, "ready", Duration::from_secs(120)).await;
    let (_, master) = server.get_text(&format!("/hls/{video_id}/master.m3u8")).await;
    assert!(master.contains("RESOLUTION=720x1280") && master.contains("RESOLUTION=360x640"), "a portrait ladder: {master}");
    let high = server.url(&format!("/hls/{video_id}/high/index.m3u8"));
    let (w, h, _, _) = probe(&high);
    assert_eq!((w, h), (720, 1280));
    let reference = grey_frame(phone_s, 36, 64);
    let ours = grey_frame(&high, 36, 64);
    let upside_down: Vec<u8> = reference.iter().rev().copied().collect();
    let (same, flipped) = (mean_difference(&ours, &reference), mean_difference(&ours, &upside_down));
    assert!(same < 12.0 && same * 3.0 < flipped, "upright as ffmpeg shows it: {same:.1} vs {flipped:.1} turned");

    // The camera: PAL 720x576 with 64:45 pixels is 1024x576 on screen.
    let pal = make_clip(&dir.0, "pal.mp4", "testsrc2=size=720x576:rate=25", 2, &["-vf", "setsar=64/45"]);
    let video_id = uploader.upload("pia-live", &pal).await;
    server.wait_for_status(&video_id, "ready", Duration::from_secs(120)).await;
    let (_, master) = server.get_text(&format!("/hls/{video_id}/master.m3u8")).await;
    for (rung, size) in [("low", (640, 360)), ("mid", (854, 480))] {
        let (w, h, _, _) = probe(&server.url(&format!("/hls/{video_id}/{rung}/index.m3u8")));
        assert_eq!((w, h), size, "{rung} at 16:9 in square pixels: {master}");
    }
    assert!(!master.contains("high/"), "576 lines make no 720p: {master}");
}

/// A 60 fps file keeps 60 fps on its 720p rung and is halved below, as announced in the master.
#[tokio::test(flavor = "multi_thread")]
async fn sixty_fps_stays_on_the_top_rung_and_is_halved_below() {
    let (dir, server) = fresh_server();
    let (token, _key) = server.streamer("gus", "gus-live").await;
    let uploader = Uploader { server: &server, token };
    let clip = make_clip(&dir.0, "sixty.mp4", "testsrc2=size=1280x720:rate=60", 2, &[]);
    let video_id = uploader.upload("gus-live", &clip).await;
    server.wait_for_status(&video_id, "ready", Duration::from_secs(120)).await;
    let (_, master) = server.get_text(&format!("/hls/{video_id}/master.m3u8")).await;
    for (rung, rate, frames) in [("low", "30.000", 60), ("mid", "30.000", 60), ("high", "60.000", 120)] {
        let line = master.lines().take_while(|l| *l != format!("{rung}/index.m3u8")).last().unwrap_or_default();
        assert!(line.contains(&format!("FRAME-RATE={rate}")), "{rung} announced at {rate}: {master}");
        let (_, _, _, decoded) = probe(&server.url(&format!("/hls/{video_id}/{rung}/index.m3u8")));
        assert!(decoded.abs_diff(frames) <= 2, "{rung}: {decoded} frames, expected {frames}");
    }
}

/// A camera's 5.1 AAC comes out stereo.
#[tokio::test(flavor = "multi_thread")]
async fn surround_sound_is_downmixed_to_stereo() {
    let (dir, server) = fresh_server();
    let (token, _key) = server.streamer("sol", "sol-live").await;
    let uploader = Uploader { server: &server, token };
    let clip = make_clip(&dir.0, "surround.mp4", "testsrc2=size=640x360:rate=30", 2, &["-ac", "6"]);
    let video_id = uploader.upload("sol-live", &clip).await;
    server.wait_for_status(&video_id, "ready", Duration::from_secs(120)).await;
    let output = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "a:0", "-show_entries", "stream=channels,codec_name", "-of", "csv=p=0"])
        .arg(server.url(&format!("/hls/{video_id}/low/index.m3u8")))
        .output()
        .expect("ffprobe");
    let probed = String::from_utf8_lossy(&output.stdout);
    let streams: Vec<&str> = probed.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!streams.is_empty() && streams.iter().all(|s| *s == "aac,2"), "{probed} {}", String::from_utf8_lossy(&output.stderr));
}

/// What ffmpeg's `idet` makes of `input`'s first 50 frames: (interlaced, progressive) counts.
fn interlace_detection(input: &str) -> (u32, u32) {
    let output = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-i", input, "-vf", "idet", "-frames:v", "50", "-f", "null", "-"])
        .output()
        .expect("ffmpeg");
    let log = String::from_utf8_lossy(&output.stderr);
    let line = log.lines().find(|l| l.contains("Multi frame detection")).unwrap_or_else(|| panic!("no idet summary: {log}"));
    let count = |label: &str| -> u32 {
        let rest = line.split(label).nth(1).unwrap_or("");
        rest.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0)
    };
    (count("TFF:") + count("BFF:"), count("Progressive:"))
}

/// An interlaced camera file comes out progressive. The ladder has a rung at the source's own
/// height: a downscale would hide combing from `idet` whether or not it was removed.
#[tokio::test(flavor = "multi_thread")]
async fn interlaced_files_come_out_progressive() {
    let dir = DataDir::new();
    let config =
        write_config(&dir.0, "ladder.toml", "[[media.ladder]]\nname = \"full\"\nwidth = 720\nheight = 576\nvideo_bitrate_kbps = 3000\n");
    let server = Server::start(&dir.0.join("data"), &[("FERROCAST_CONFIG", config.as_str())]);
    let (token, _key) = server.streamer("ivo", "ivo-live").await;
    let uploader = Uploader { server: &server, token };
    let clip = make_clip(
        &dir.0,
        "interlaced.mp4",
        "testsrc2=size=720x576:rate=50",
        2,
        &["-vf", "tinterlace=interleave_top,fieldorder=tff", "-flags", "+ilme+ildct", "-x264opts", "tff=1"],
    );
    let (interlaced, _) = interlace_detection(clip.to_str().expect("utf-8"));
    assert!(interlaced >= 40, "the source is interlaced to begin with: {interlaced} of 50 frames");
    let video_id = uploader.upload("ivo-live", &clip).await;
    server.wait_for_status(&video_id, "ready", Duration::from_secs(120)).await;
    let (interlaced, progressive) = interlace_detection(&server.url(&format!("/hls/{video_id}/full/index.m3u8")));
    assert!(progressive >= 40 && interlaced <= 10, "{interlaced} interlaced, {progressive} progressive of 50");
}

/// What browsers, phones and editors write: each becomes a ladder that decodes, or fails at once
/// with a message (audio only).
#[tokio::test(flavor = "multi_thread")]
async fn browser_phone_and_editor_formats_become_ladders_or_fail_with_a_message() {
    let (dir, server) = fresh_server();
    let (token, _key) = server.streamer("cora", "cora-live").await;
    let uploader = Uploader { server: &server, token: token.clone() };
    // make_clip's H.264 and AAC options come first; the codecs named here override them.
    let make = |name: &str, args: &[&str]| make_clip(&dir.0, name, "testsrc2=size=640x360:rate=30", 2, args);
    let corpus = [
        (
            "browser.webm (VP9 + Opus)",
            make("browser.webm", &["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-c:a", "libopus"]),
        ),
        (
            "phone.mp4 (HEVC 10-bit)",
            make("phone.mp4", &["-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p10le", "-tag:v", "hvc1", "-c:a", "aac"]),
        ),
        (
            "editor.mov (PCM audio)",
            make("editor.mov", &["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "pcm_s16le"]),
        ),
        ("silent.mp4 (no audio)", make("silent.mp4", &["-map", "0:v", "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"])),
    ];
    for (what, path) in &corpus {
        let video_id = uploader.upload("cora-live", path).await;
        server.wait_for_status(&video_id, "ready", Duration::from_secs(120)).await;
        let (w, h, _, frames) = probe(&server.url(&format!("/hls/{video_id}/low/index.m3u8")));
        assert_eq!((w, h), (640, 360), "{what}");
        assert!(frames >= 55, "{what}: {frames} frames");
    }
    let audio_only = dir.0.join("voice.m4a");
    let status = std::process::Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            "2",
            "-c:a",
            "aac",
        ])
        .arg(&audio_only)
        .status()
        .expect("ffmpeg");
    assert!(status.success());
    let video_id = uploader.upload("cora-live", &audio_only).await;
    let failed = server.wait_for_status(&video_id, "failed", Duration::from_secs(60)).await;
    let (_, owner_view) = {
        let response = server.client.get(server.url(&format!("/api/videos/{video_id}"))).bearer_auth(&token).send().await.expect("video");
        (response.status(), response.json::<Value>().await.expect("json"))
    };
    assert_eq!(owner_view["error"], "no decodable video stream", "{failed} {owner_view}");
}
