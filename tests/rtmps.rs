//! RTMPS for real: the `ferrocast` binary with a TLS listener and a throw-away self-signed
//! certificate (made by the `openssl` CLI, so the certificate does not come from the TLS stack under
//! test), ffmpeg and GStreamer's rtmp2sink publishing over TLS, ffprobe decoding the recording; and
//! what a misconfigured or misbehaving client gets.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::{ferrocast, ffmpeg_publish_with, probe, DataDir, Server};

/// Short grace so tests do not wait ten seconds for a video to end.
const GRACE: (&str, &str) = ("FERROCAST_RTMP__RECONNECT_GRACE_SECS", "3");

/// A self-signed certificate for 127.0.0.1 and its key (PKCS#8 PEM), written into `dir`.
fn self_signed_certificate(dir: &Path) -> (PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).expect("certificate dir");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let output = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
        .args(["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl (installed by make test)");
    assert!(output.status.success(), "openssl req: {}", String::from_utf8_lossy(&output.stderr));
    (cert, key)
}

/// `Server::start` with an RTMPS listener on an ephemeral port and the certificate in the data dir.
fn start_with_tls(dir: &DataDir, extra: &[(&str, &str)]) -> (Server, String) {
    let (cert, key) = self_signed_certificate(&dir.0.join("tls"));
    let (cert, key) = (cert.to_string_lossy().into_owned(), key.to_string_lossy().into_owned());
    let mut env = vec![
        ("FERROCAST_RTMP__TLS_ADDR", "127.0.0.1:0"),
        ("FERROCAST_RTMP__TLS_CERT_FILE", cert.as_str()),
        ("FERROCAST_RTMP__TLS_KEY_FILE", key.as_str()),
        support::DEEP_ENCODER_QUEUES,
    ];
    env.extend_from_slice(extra);
    let server = Server::start(&dir.0, &env);
    let rtmps = server.rtmps.clone().expect("the listening line names the rtmps address");
    assert_ne!(rtmps, server.rtmp);
    (server, rtmps)
}

/// Waits until `slug` has a video and that video is ready; returns its id.
async fn ready_video(server: &Server, slug: &str) -> String {
    let video_id = server
        .poll(Duration::from_secs(20), || async {
            let (_, videos) = server.get_json(&format!("/api/channels/{slug}/videos")).await;
            videos["items"][0]["id"].as_str().map(str::to_string)
        })
        .await
        .unwrap_or_else(|| panic!("{slug}: no video was created"));
    server.wait_for_status(&video_id, "ready", Duration::from_secs(40)).await;
    video_id
}

#[tokio::test(flavor = "multi_thread")]
async fn ffmpeg_and_rtmp2sink_publish_over_rtmps_and_plain_rtmp_on_the_tls_port_harms_nothing() {
    let dir = DataDir::new();
    let (mut server, rtmps) = start_with_tls(&dir, &[GRACE]);

    // An RTMP client that dialled the TLS port: its handshake bytes are not TLS, so it is closed at
    // once (well before the handshake deadline), and the server carries on.
    let started = Instant::now();
    let mut plain = TcpStream::connect(&rtmps).expect("connect");
    plain.set_read_timeout(Some(Duration::from_secs(8))).expect("timeout");
    let mut c0c1 = vec![3u8];
    c0c1.extend_from_slice(&[0; 1536]);
    plain.write_all(&c0c1).expect("write C0+C1");
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(!answer.starts_with(&[3]), "no RTMP handshake answer (S0) on the TLS port");
    assert!(started.elapsed() < Duration::from_secs(5), "closed at once, not at the deadline: {:?}", started.elapsed());
    server.wait_for_line(|l| l.contains("TLS handshake failed"));

    // ffmpeg over RTMPS.
    let (_token, key) = server.streamer("tess", "tess-live").await;
    let published_secs = 6;
    let url = format!("rtmps://{rtmps}/live/{key}");
    let ffmpeg = ffmpeg_publish_with(&url, 640, 360, published_secs, &["-tls_verify", "0"]);
    server.wait_until_live("tess-live").await;
    let output = ffmpeg.wait_with_output().expect("ffmpeg");
    assert!(output.status.success(), "ffmpeg published over rtmps: {}", String::from_utf8_lossy(&output.stderr));
    let video_id = ready_video(&server, "tess-live").await;
    let (w, h, duration, frames) = probe(&server.url(&format!("/hls/{video_id}/low/index.m3u8")));
    assert_eq!((w, h), (640, 360));
    assert!((duration - f64::from(published_secs)).abs() <= 1.0, "recorded {duration} s of {published_secs} s");
    assert!(frames >= u64::from(published_secs) * 30 * 9 / 10, "{frames} frames decoded");

    // GStreamer's rtmp2sink over RTMPS (GIO's TLS), told to accept the self-signed certificate.
    let (_token, key) = server.streamer("uma", "uma-live").await;
    let pipeline = format!(
        "videotestsrc is-live=true num-buffers=150 ! video/x-raw,width=640,height=360,framerate=30/1 ! x264enc tune=zerolatency key-int-max=60 ! \
         h264parse ! flvmux name=mux streamable=true ! rtmp2sink location=rtmps://{rtmps}/live/{key} tls-validation-flags=0 \
         audiotestsrc is-live=true num-buffers=235 ! audioconvert ! avenc_aac ! aacparse ! mux."
    );
    let output = Command::new("gst-launch-1.0").args(pipeline.split_whitespace()).output().expect("gst-launch-1.0");
    assert!(output.status.success(), "rtmp2sink published over rtmps: {}", String::from_utf8_lossy(&output.stdout));
    let video_id = ready_video(&server, "uma-live").await;
    let (_, video) = server.get_json(&format!("/api/videos/{video_id}")).await;
    assert!(video["duration_secs"].as_f64().is_some_and(|d| d >= 4.0), "{video}");
    let (w, h, _, frames) = probe(&server.url(&format!("/hls/{video_id}/low/index.m3u8")));
    assert_eq!((w, h), (640, 360));
    assert!(frames >= 120, "{frames} frames decoded");

    let metrics = server.get_text("/metrics").await.1;
    assert!(metrics.contains("ferrocast_rtmp_publishes_total{result=\"accepted\"} 2"), "{metrics}");
    assert!(server.terminate().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_connections_count_against_the_cap_and_the_handshake_deadline() {
    let dir = DataDir::new();
    let (server, rtmps) =
        start_with_tls(&dir, &[("FERROCAST_RTMP__MAX_CONNECTIONS", "1"), ("FERROCAST_RTMP__HANDSHAKE_TIMEOUT_SECS", "3")]);

    // A client that opens the TLS port and never says hello holds the only connection slot...
    let started = Instant::now();
    let mut silent = TcpStream::connect(&rtmps).expect("connect");
    silent.set_read_timeout(Some(Duration::from_secs(15))).expect("timeout");
    let held = server
        .poll(Duration::from_secs(10), || async {
            let metrics = server.get_text("/metrics").await.1;
            metrics.contains("ferrocast_rtmp_connections_active 1").then_some(())
        })
        .await;
    assert!(held.is_some(), "the TLS connection holds a slot");

    // ...so a plain RTMP client is turned away right after accept: one cap for both listeners.
    let mut plain = TcpStream::connect(&server.rtmp).expect("connect");
    plain.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut c0c1 = vec![3u8];
    c0c1.extend_from_slice(&[0; 1536]);
    let _ = plain.write_all(&c0c1);
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(answer.is_empty(), "refused without a handshake answer");

    // The silent client is closed at the deadline fixed at accept, which the TLS handshake counts in.
    let _ = silent.read_to_end(&mut Vec::new());
    let held_for = started.elapsed();
    assert!(held_for >= Duration::from_secs(2) && held_for < Duration::from_secs(10), "closed after {held_for:?}");
    // Its slot comes back (the task lets go just after the socket closes): a plain client is
    // answered again.
    let admitted = server
        .poll(Duration::from_secs(5), || async {
            let mut plain = TcpStream::connect(&server.rtmp).ok()?;
            plain.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
            plain.write_all(&c0c1).ok()?;
            let mut s0 = [0u8; 1];
            plain.read_exact(&mut s0).ok().map(|()| s0[0])
        })
        .await;
    assert_eq!(admitted, Some(3), "the slot was given back: the handshake is answered with version 3");
}

#[test]
fn a_missing_certificate_file_stops_start_up_naming_the_file() {
    let dir = DataDir::new();
    let (_cert, key) = self_signed_certificate(&dir.0.join("tls"));
    let missing = dir.0.join("tls").join("no-such-cert.pem");
    let output = ferrocast()
        .arg("serve")
        .env("FERROCAST_HTTP_ADDR", "127.0.0.1:0")
        .env("FERROCAST_RTMP_ADDR", "127.0.0.1:0")
        .env("FERROCAST_DATA_DIR", &dir.0)
        .env("FERROCAST_RTMP__TLS_ADDR", "127.0.0.1:0")
        .env("FERROCAST_RTMP__TLS_CERT_FILE", &missing)
        .env("FERROCAST_RTMP__TLS_KEY_FILE", &key)
        .output()
        .expect("run ferrocast");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "start-up fails: {stderr}");
    assert!(stderr.contains(&*missing.to_string_lossy()), "the message names the file: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    // Half of the TLS settings is a configuration error, before anything is opened.
    let output = ferrocast()
        .arg("serve")
        .env("FERROCAST_DATA_DIR", &dir.0)
        .env("FERROCAST_RTMP__TLS_ADDR", "127.0.0.1:0")
        .output()
        .expect("run ferrocast");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "start-up fails: {stderr}");
    assert!(stderr.contains("tls_cert_file"), "the message names the missing settings: {stderr}");
}
