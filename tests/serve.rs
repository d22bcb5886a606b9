//! The real `ferrocast` binary, started the way an operator starts it: configuration from the
//! environment, a fresh data dir, ephemeral ports; then curl-like requests, then SIGTERM.

mod support;

use ferrocast_core::testing::TestDb;
use serde_json::json;
use support::{ferrocast, DataDir, Server};

async fn sign_up_and_create_a_channel(server: &Server) {
    let (_token, key) = server.streamer("newcomer", "first-stream").await;
    assert!(key.starts_with("live_") && key.len() == 45, "{key}");
    let (status, _) = server.get_json("/readyz").await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_with_defaults_on_sqlite_then_sigterm() {
    let data = DataDir::new();
    let dir = data.0.clone();
    let server = Server::start(&dir, &[]);
    sign_up_and_create_a_channel(&server).await;
    // Requests are counted by route template, method and status.
    let (_, metrics) = server.get_text("/metrics").await;
    let created = metrics
        .lines()
        .find(|l| l.starts_with("ferrocast_http_requests_total") && l.contains("route=\"/api/channels\"") && l.contains("status=\"201\""));
    assert!(created.is_some_and(|l| l.contains("method=\"POST\"") && l.ends_with(" 1")), "{metrics}");

    // `/hls/` is answered before the router, except a path with escapes, which goes through it:
    // both ways give the same answer, with the same headers, counted under the same route.
    let direct = reqwest::get(server.url("/hls/0190f0e0a0b07c0d8e0f0a0b0c0d0e0f/master.m3u8")).await.expect("direct");
    let routed = reqwest::get(server.url("/hls/%30190f0e0a0b07c0d8e0f0a0b0c0d0e0f/master.m3u8")).await.expect("routed");
    assert_eq!(direct.status(), 404);
    assert_eq!(routed.status(), 404);
    let mut direct_headers: Vec<_> = direct.headers().iter().filter(|(name, _)| *name != "date").collect();
    let mut routed_headers: Vec<_> = routed.headers().iter().filter(|(name, _)| *name != "date").collect();
    direct_headers.sort_by_key(|(name, _)| name.as_str());
    routed_headers.sort_by_key(|(name, _)| name.as_str());
    assert_eq!(direct_headers, routed_headers);
    assert_eq!(direct.headers()["access-control-allow-origin"], "*");
    assert_eq!(direct.headers()["x-content-type-options"], "nosniff");
    let (_, metrics) = server.get_text("/metrics").await;
    let counted = metrics
        .lines()
        .find(|l| l.starts_with("ferrocast_http_requests_total") && l.contains("route=\"/hls/{*path}\"") && l.contains("status=\"404\""));
    assert!(counted.is_some_and(|l| l.contains("method=\"GET\"") && l.ends_with(" 2")), "{metrics}");

    // The generated JWT secret and the data dir are private to the server's user, and the SQLite
    // file is in the data dir.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("jwt_secret")).expect("jwt secret file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let mode = std::fs::metadata(&dir).expect("data dir").permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "the data dir the server created is private too");
        for file in ["ferrocast.db", "ferrocast.db-wal", "ferrocast.db-shm"] {
            let mode = std::fs::metadata(dir.join(file)).map(|m| m.permissions().mode()).unwrap_or(0o600);
            assert_eq!(mode & 0o777, 0o600, "{file} is readable by the server's user only");
        }
    }
    assert!(dir.join("ferrocast.db").exists());

    let status = server.terminate();
    assert!(status.success(), "exit status {status}");

    // A restart reuses the database and the secret: the account is still there.
    let server = Server::start(&dir, &[]);
    let login = server
        .client
        .post(server.url("/api/auth/login"))
        .json(&json!({"username_or_email": "newcomer", "password": "a long password"}))
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), 200);
    assert!(server.terminate().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_on_postgres() {
    let test_db = TestDb::postgres().await;
    let data = DataDir::new();
    let server = Server::start(&data.0, &[("FERROCAST_DATABASE_URL", &test_db.url)]);
    sign_up_and_create_a_channel(&server).await;
    assert!(server.terminate().success());
    assert!(!data.0.join("ferrocast.db").exists(), "Postgres was used, not a SQLite file");
}

#[test]
fn migrate_applies_and_exits() {
    let dir = std::env::temp_dir().join(format!("ferrocast-migrate-{}", ferrocast_core::ids::new_id()));
    let output = ferrocast().arg("migrate").env("FERROCAST_DATA_DIR", &dir).output().expect("run");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(dir.join("ferrocast.db").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// The first word of each line in a `--help` section (`Commands:`, `Options:`).
fn section_entries(help: &str, heading: &str) -> Vec<String> {
    help.lines()
        .skip_while(|line| line.trim() != heading)
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .filter_map(|line| line.split_whitespace().next().map(|word| word.trim_end_matches(',').to_string()))
        .collect()
}

#[test]
fn help_documents_every_subcommand_and_bad_config_is_a_clear_error() {
    let help = ferrocast().arg("--help").output().expect("run");
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    let commands = section_entries(&text, "Commands:");
    for command in ["serve", "migrate", "config"] {
        assert!(commands.iter().any(|c| c == command), "a `{command}` line under Commands: {commands:?}\n{text}");
    }
    assert!(text.lines().any(|line| line.trim_start().starts_with("-c, --config <FILE>")), "the --config option is listed:\n{text}");
    let bad = ferrocast().arg("config").env("FERROCAST_HTTP_ADDR", "nowhere").output().expect("run");
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr).to_lowercase();
    assert!(err.contains("http_addr"), "{err}");
    let missing = ferrocast().args(["--config", "/nonexistent/ferrocast.toml", "config"]).output().expect("run");
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/ferrocast.toml"));
}
