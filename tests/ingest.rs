//! End-to-end ingest through the real binary with our spec-written RTMP publisher: chunking that
//! ffmpeg and OBS never produce (interleaved chunk streams, tiny and huge chunk sizes) must record
//! the publisher's frames exactly, and hostile input must close only its own connection.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use support::rtmp_publisher::{publish, read_flv, PublishOptions};
use support::{frame_hashes, write_config, DataDir, Server, RELAY_CONFIG};

const GRACE: (&str, &str) = ("FERROCAST_RTMP__RECONNECT_GRACE_SECS", "1");

/// A 4 s H.264 (with B-frames) + AAC FLV file made by ffmpeg.
fn source_flv(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("source.flv");
    let made = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "4"])
        .args(["-c:v", "libx264", "-preset", "veryfast", "-bf", "2", "-g", "30", "-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "flv"])
        .arg(&path)
        .status()
        .expect("ffmpeg");
    assert!(made.success());
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn a_relay_records_interleaved_publishes_frame_for_frame_whatever_the_chunk_size() {
    let dir = DataDir::new();
    let config = write_config(&dir.0, "relay.toml", RELAY_CONFIG);
    let server = Server::start(&dir.0.join("data"), &[GRACE, ("FERROCAST_CONFIG", &config)]);
    let (_token, key) = server.streamer("ines", "ines-live").await;
    let source = source_flv(&dir.0);
    let tags = read_flv(&std::fs::read(&source).expect("flv"));
    let expected = frame_hashes(source.to_str().expect("utf-8 path"));
    assert_eq!(expected.len(), 120, "4 s at 30 fps");

    for (round, options) in
        [PublishOptions { chunk_size: 60, interleave: true }, PublishOptions { chunk_size: 0x7fff_ffff, interleave: false }]
            .into_iter()
            .enumerate()
    {
        // The key may also come as a `key` query parameter.
        let name = if round == 0 { key.clone() } else { format!("stream?key={key}") };
        publish(&server.rtmp, &name, &tags, options).await.expect("published");
        let video_id = server
            .poll(Duration::from_secs(20), || async {
                let (_, videos) = server.get_json("/api/channels/ines-live/videos").await;
                let items = videos["items"].as_array().cloned().unwrap_or_default();
                (items.len() == round + 1).then(|| items[0]["id"].as_str().map(str::to_string)).flatten()
            })
            .await
            .expect("a video per publish");
        server.wait_for_status(&video_id, "ready", Duration::from_secs(30)).await;
        let recorded = frame_hashes(&server.url(&format!("/hls/{video_id}/source/index.m3u8")));
        assert_eq!(recorded, expected, "{options:?}: the recording holds exactly the publisher's frames");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_rtmp_input_closes_only_its_own_connection() {
    let dir = DataDir::new();
    let server = Server::start(
        &dir.0,
        &[GRACE, ("FERROCAST_RTMP__HANDSHAKE_TIMEOUT_SECS", "3"), ("FERROCAST_RTMP__MAX_CONNECTIONS_PER_ADDRESS", "3")],
    );
    let (_token, key) = server.streamer("mallory", "mallory-live").await;

    // The review's process killer: after the handshake, a connect command of 80 KB of AMF0 objects
    // nested 20,000 deep, sent with a chunk size large enough to carry it.
    let mut attacker = TcpStream::connect(&server.rtmp).expect("connect");
    attacker.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut c0c1 = vec![3u8];
    c0c1.extend(vec![7u8; 1536]);
    attacker.write_all(&c0c1).expect("c0c1");
    let mut s0s1s2 = vec![0u8; 3073];
    attacker.read_exact(&mut s0s1s2).expect("s0s1s2");
    attacker.write_all(&s0s1s2[1..1537]).expect("c2");
    let mut payload = vec![0x02, 0, 7];
    payload.extend(b"connect");
    payload.push(0);
    payload.extend(1f64.to_be_bytes());
    payload.push(0x03);
    for _ in 0..20_000 {
        payload.extend([0, 1, b'a', 0x03]);
    }
    let mut chunk = vec![0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0, 0x10, 0, 0];
    chunk.extend([0x03, 0, 0, 0]);
    chunk.extend(&(payload.len() as u32).to_be_bytes()[1..]);
    chunk.extend([20, 0, 0, 0, 0]);
    chunk.extend(&payload);
    let _ = attacker.write_all(&chunk);
    let mut rest = Vec::new();
    let _ = attacker.read_to_end(&mut rest);

    // A client that trickles its handshake one byte a second is cut off at the deadline.
    let mut slow = TcpStream::connect(&server.rtmp).expect("connect");
    slow.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let started = std::time::Instant::now();
    let mut closed = false;
    for _ in 0..8 {
        if slow.write_all(&[3]).is_err() {
            closed = true;
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    let mut buf = [0u8; 1];
    closed = closed || matches!(slow.read(&mut buf), Ok(0) | Err(_));
    assert!(closed && started.elapsed() < Duration::from_secs(9), "a trickling handshake is closed at its deadline");

    // The server is alive and takes a real publish.
    let (status, _) = server.get_text("/healthz").await;
    assert_eq!(status, 200, "the process survived");
    let dir2 = DataDir::new();
    std::fs::create_dir_all(&dir2.0).expect("dir");
    let tags = read_flv(&std::fs::read(source_flv(&dir2.0)).expect("flv"));
    // One address (127.0.0.2) holding its three slots does not keep a streamer elsewhere out;
    // its fourth connection is closed at once.
    let mut held = Vec::new();
    for _ in 0..4 {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.bind("127.0.0.2:0".parse().expect("address")).expect("bind 127.0.0.2");
        held.push(socket.connect(server.rtmp.parse().expect("rtmp address")).await.expect("connect"));
    }
    let mut probe = [0u8; 1];
    let fourth = tokio::time::timeout(Duration::from_secs(2), tokio::io::AsyncReadExt::read(&mut held[3], &mut probe)).await;
    assert!(matches!(fourth, Ok(Ok(0)) | Ok(Err(_))), "the fourth connection from one address is closed: {fourth:?}");
    publish(&server.rtmp, &key, &tags, PublishOptions { chunk_size: 4096, interleave: false }).await.expect("published");
    drop(held);
    let refused = publish(
        &server.rtmp,
        "live_0000000000000000000000000000000000000000",
        &tags,
        PublishOptions { chunk_size: 4096, interleave: false },
    )
    .await;
    assert_eq!(refused, Err("NetStream.Publish.BadName".to_string()));
}
