//! Several `ferrocast` processes on one Postgres database and one S3 bucket (SeaweedFS), each with
//! its own roles and its own data dir, as an operator would run an api/origin tier and an
//! ingest/worker tier.

mod support;

use std::path::Path;
use std::time::Duration;

use ferrocast_core::testing::{test_s3_config, TestDb};
use support::uploader::{make_mp4, Uploader};
use support::{ffmpeg_publish, node_env, probe, start, DataDir, Server};

/// Files a node keeps of videos on its own disk (none, with a bucket).
fn media_files(data_dir: &Path) -> usize {
    let media = data_dir.join("media");
    walk(&media)
}

fn walk(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries.flatten().map(|e| if e.path().is_dir() { walk(&e.path()) } else { 1 }).sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ingest_worker_node_and_an_api_origin_node_share_postgres_and_a_bucket() {
    let db = TestDb::postgres().await;
    let storage = test_s3_config();
    let (dir_a, dir_b) = (DataDir::new(), DataDir::new());
    let node_a = start(&dir_a.0, &node_env(&db.url, &storage, "ingest,worker"));
    let node_b = start(&dir_b.0, &node_env(&db.url, &storage, "api,origin"));
    assert!(!node_a.rtmp.is_empty(), "the ingest node listens for RTMP");
    assert!(node_b.rtmp.is_empty(), "the api/origin node does not");
    for node in [&node_a, &node_b] {
        let (status, health) = node.get_json("/readyz").await;
        assert_eq!(status, 200, "database and bucket answer: {health}");
    }
    // Node A has no API; node B has no ingest.
    assert_eq!(node_a.get_json("/api/videos").await.0, 404);

    // A streamer signs up on B and publishes to A; viewers watch live through B, which passes
    // their requests to A, low-latency parts and blocking reloads included.
    let (token, key) = node_b.streamer("nadia", "nadia-live").await;
    let mut ffmpeg = ffmpeg_publish(&node_a.rtmp_url(&key), 640, 360, 10);
    let video_id = node_b.wait_until_live("nadia-live").await;
    let playlist = node_b.wait_for_text(&format!("/hls/{video_id}/low/index.m3u8"), "#EXT-X-PRELOAD-HINT", Duration::from_secs(30)).await;
    let hint = playlist
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\""))
        .and_then(|rest| rest.split('"').next())
        .expect("a preload hint")
        .to_string();
    let (msn, part) = hint.trim_end_matches(".m4s").split_once("-p").expect("NNNNNNNN-pK.m4s");
    let (msn, part): (u64, u32) = (msn.parse().expect("msn"), part.parse().expect("part"));
    let hinted = node_b.client.get(node_b.url(&format!("/hls/{video_id}/low/{hint}"))).send().await.expect("hinted part");
    assert_eq!(hinted.status(), 200, "the hinted part, waited for at A, arrives through B");
    assert!(!hinted.bytes().await.expect("part").is_empty());
    let reload = format!("/hls/{video_id}/low/index.m3u8?_HLS_msn={msn}&_HLS_part={part}");
    let (status, blocked) = node_b.get_text(&reload).await;
    assert_eq!(status, 200);
    assert!(blocked.contains(&hint), "a blocking reload through B lists the part it waited for: {blocked}");
    let (status, master) = node_b.get_text(&format!("/hls/{video_id}/master.m3u8")).await;
    assert!(status == 200 && master.contains("low/index.m3u8"), "{master}");
    // Two viewers on other addresses, both through B: A counts them, not B (one address), and the
    // streamer sees them through B's API. Each node counts at most one viewer per address here.
    for last in [2u8, 3] {
        let viewer = reqwest::Client::builder().local_address(std::net::IpAddr::from([127, 0, 0, last])).build().expect("client");
        let playlist = viewer.get(node_b.url(&format!("/hls/{video_id}/low/index.m3u8"))).send().await.expect("playlist");
        assert_eq!(playlist.status(), 200);
    }
    let counted = node_b
        .poll(Duration::from_secs(15), || async {
            let video = node_b.client.get(node_b.url(&format!("/api/videos/{video_id}"))).bearer_auth(&token).send().await.ok()?;
            let viewers = video.json::<serde_json::Value>().await.ok()?["viewers"].as_u64()?;
            (viewers >= 2).then_some(viewers)
        })
        .await;
    assert!(counted.is_some(), "viewers behind the origin are counted one by one");
    assert!(ffmpeg.wait().expect("ffmpeg").success());
    // Then the recording, from the bucket.
    node_b.wait_for_status(&video_id, "ready", Duration::from_secs(60)).await;
    let (w, h, seconds, _) = probe(&node_b.url(&format!("/hls/{video_id}/low/index.m3u8")));
    assert_eq!((w, h), (640, 360));
    assert!((seconds - 10.0).abs() <= 1.0, "the whole recording plays through the other node: {seconds} s");

    // An upload sent to B is transcoded by A's worker, from and into the bucket.
    let scratch = DataDir::new();
    std::fs::create_dir_all(&scratch.0).expect("scratch dir");
    let file = make_mp4(&scratch.0, "trip.mp4", 640, 360, 3);
    let uploader = Uploader { server: &node_b, token };
    let uploaded = uploader.upload("nadia-live", &file).await;
    node_b.wait_for_status(&uploaded, "ready", Duration::from_secs(90)).await;
    let (w, h, seconds, _) = probe(&node_b.url(&format!("/hls/{uploaded}/low/index.m3u8")));
    assert_eq!((w, h), (640, 360));
    assert!((seconds - 3.0).abs() <= 1.0, "{seconds} s");

    // Rotating the stream key through B cuts off a publisher connected to A.
    let mut ffmpeg = ffmpeg_publish(&node_a.rtmp_url(&key), 640, 360, 60);
    let live = node_b
        .poll(Duration::from_secs(30), || async {
            let (_, channel) = node_b.get_json("/api/channels/nadia-live").await;
            channel["live_video_id"].as_str().filter(|id| *id != video_id).map(str::to_string)
        })
        .await;
    assert!(live.is_some(), "the second stream went live");
    let rotated =
        node_b.client.post(node_b.url("/api/channels/nadia-live/stream-key")).bearer_auth(&uploader.token).send().await.expect("rotate");
    assert_eq!(rotated.status(), 200);
    let rotated_at = std::time::Instant::now();
    let exited = loop {
        if let Some(status) = ffmpeg.try_wait().expect("ffmpeg") {
            break Some(status);
        }
        if rotated_at.elapsed() > Duration::from_secs(15) {
            let _ = ffmpeg.kill();
            break None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(exited.is_some(), "the publisher on the other node was disconnected after the rotation");

    // Nothing of either video stays on a node's disk.
    assert_eq!(media_files(&dir_a.0), 0, "node A keeps no media");
    assert_eq!(media_files(&dir_b.0), 0, "node B keeps no media");
    assert_eq!(walk(&dir_a.0.join("work")), 0, "the worker's scratch space is emptied");
}

/// Two ingest nodes (A and C) and an api,origin node (B) with a 2 s lease and a 10 s grace.
fn three_nodes(db: &TestDb, storage: &ferrocast_core::config::StorageConfig, dirs: [&DataDir; 3]) -> [Server; 3] {
    let with_short_lease = |roles: &str| {
        let mut env = node_env(&db.url, storage, roles);
        env.retain(|(k, _)| *k != "FERROCAST_RTMP__RECONNECT_GRACE_SECS");
        env.push(("FERROCAST_RTMP__RECONNECT_GRACE_SECS", "10".to_string()));
        env.push(("FERROCAST_RTMP__LEASE_SECS", "2".to_string()));
        env
    };
    [
        start(&dirs[0].0, &with_short_lease("ingest")),
        start(&dirs[1].0, &with_short_lease("api,origin")),
        start(&dirs[2].0, &with_short_lease("ingest")),
    ]
}

/// A streamer signed up on `node_b` publishing to `node_a`, three segments in: (key, video, ffmpeg).
async fn streaming_to(node_a: &Server, node_b: &Server) -> (String, String, std::process::Child) {
    let (_token, key) = node_b.streamer("olek", "olek-live").await;
    let ffmpeg = ffmpeg_publish(&node_a.rtmp_url(&key), 640, 360, 60);
    let video_id = node_b.wait_until_live("olek-live").await;
    node_b.wait_for_text(&format!("/hls/{video_id}/low/index.m3u8"), "00000002.m4s", Duration::from_secs(30)).await;
    (key, video_id, ffmpeg)
}

/// Publishes to `node_c` what continues `video_id` and checks the one video ends with both parts.
async fn continue_on(node_b: &Server, node_c: &Server, key: &str, video_id: &str) {
    let mut second = ffmpeg_publish(&node_c.rtmp_url(key), 640, 360, 6);
    let live_again = node_b
        .poll(Duration::from_secs(20), || async {
            let (_, channel) = node_b.get_json("/api/channels/olek-live").await;
            channel["live_video_id"].as_str().map(str::to_string).filter(|_| channel["live"] == true)
        })
        .await;
    assert_eq!(live_again.as_deref(), Some(video_id), "the same video goes on");
    // Viewers keep watching through B, now passed to C.
    node_b.wait_for_text(&format!("/hls/{video_id}/low/index.m3u8"), "#EXT-X-DISCONTINUITY", Duration::from_secs(20)).await;
    assert!(second.wait().expect("ffmpeg").success(), "the reconnect to node C was accepted");

    // C ends it after its grace period: one recording with both parts.
    let video = node_b.wait_for_status(video_id, "ready", Duration::from_secs(60)).await;
    let duration = video["duration_secs"].as_f64().expect("duration");
    assert!(duration >= 10.0, "both parts are in the recording: {duration} s");
    let (_, playlist) = node_b.get_text(&format!("/hls/{video_id}/low/index.m3u8")).await;
    assert_eq!(playlist.matches("#EXT-X-DISCONTINUITY\n").count(), 1, "{playlist}");
    let (w, _, probed, _) = probe(&node_b.url(&format!("/hls/{video_id}/low/index.m3u8")));
    assert!(w == 640 && probed >= 10.0, "{probed} s decoded");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_continues_on_another_ingest_node_when_its_node_dies() {
    let db = TestDb::postgres().await;
    let storage = test_s3_config();
    let dirs = [DataDir::new(), DataDir::new(), DataDir::new()];
    let [node_a, node_b, node_c] = three_nodes(&db, &storage, [&dirs[0], &dirs[1], &dirs[2]]);
    let (key, video_id, mut first) = streaming_to(&node_a, &node_b).await;

    // Node A dies mid-stream; OBS reconnects, and the load balancer sends it to node C once A's
    // lease has lapsed.
    node_a.crash();
    let _ = first.kill();
    let _ = first.wait();
    tokio::time::sleep(Duration::from_secs(3)).await;
    continue_on(&node_b, &node_c, &key, &video_id).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ingest_node_shut_down_cleanly_hands_its_stream_over() {
    let db = TestDb::postgres().await;
    let storage = test_s3_config();
    let dirs = [DataDir::new(), DataDir::new(), DataDir::new()];
    let [node_a, node_b, node_c] = three_nodes(&db, &storage, [&dirs[0], &dirs[1], &dirs[2]]);
    let (key, video_id, mut first) = streaming_to(&node_a, &node_b).await;

    // SIGTERM (a deploy): A lets the video go instead of ending it, and the reconnect to C continues
    // it at once, with no lease to wait out.
    assert!(node_a.terminate().success());
    let _ = first.kill();
    let _ = first.wait();
    let (_, video) = node_b.get_json(&format!("/api/videos/{video_id}")).await;
    assert_eq!(video["status"], "live", "not ended by the shutdown: {video}");
    continue_on(&node_b, &node_c, &key, &video_id).await;
}

/// A TCP forwarder to the S3 server that the test can cut: while cut, it drops every connection
/// it holds and every new one, as a store that went away would.
struct Cuttable {
    address: String,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
    connections: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Cuttable {
    async fn to(upstream: String) -> Cuttable {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address").to_string();
        let cut = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let connections = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (flag, held) = (cut.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if flag.load(std::sync::atomic::Ordering::SeqCst) {
                    continue;
                }
                let upstream = upstream.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                held.lock().expect("lock").push(task);
            }
        });
        Cuttable { address, cut, connections }
    }

    fn set_cut(&self, cut: bool) {
        self.cut.store(cut, std::sync::atomic::Ordering::SeqCst);
        if cut {
            for task in self.connections.lock().expect("lock").drain(..) {
                task.abort();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_that_goes_away_for_seconds_delays_segments_and_loses_none() {
    let db = TestDb::postgres().await;
    let mut storage = test_s3_config();
    let upstream = storage.endpoint.clone().expect("endpoint").trim_start_matches("http://").to_string();
    let store = Cuttable::to(upstream).await;
    storage.endpoint = Some(format!("http://{}", store.address));
    let dir = DataDir::new();
    let server = start(&dir.0, &node_env(&db.url, &storage, "api,ingest,origin,worker"));
    let (_token, key) = server.streamer("pia", "pia-live").await;
    let mut ffmpeg = ffmpeg_publish(&server.rtmp_url(&key), 640, 360, 16);
    let video_id = server.wait_until_live("pia-live").await;
    server.wait_for_text(&format!("/hls/{video_id}/low/index.m3u8"), "00000001.m4s", Duration::from_secs(30)).await;

    // The store is gone for four seconds: two segments' worth of writes must wait and go through.
    store.set_cut(true);
    tokio::time::sleep(Duration::from_secs(4)).await;
    store.set_cut(false);
    assert!(ffmpeg.wait().expect("ffmpeg").success(), "the publisher was never cut off");

    let video = server.wait_for_status(&video_id, "ready", Duration::from_secs(120)).await;
    let duration = video["duration_secs"].as_f64().expect("duration");
    assert!((duration - 16.0).abs() <= 1.5, "nothing acknowledged was lost: {duration} s of 16");
    let (_, playlist) = server.get_text(&format!("/hls/{video_id}/low/index.m3u8")).await;
    let numbers: Vec<u64> =
        playlist.lines().filter(|l| l.ends_with(".m4s")).map(|l| l.trim_end_matches(".m4s").parse().expect("segment number")).collect();
    assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "no segment is missing: {numbers:?}");
    assert!(!playlist.contains("#EXT-X-DISCONTINUITY"), "the stream itself never broke: {playlist}");
    let (_, _, probed, _) = probe(&server.url(&format!("/hls/{video_id}/low/index.m3u8")));
    assert!((probed - 16.0).abs() <= 1.5, "{probed} s decoded");
}
