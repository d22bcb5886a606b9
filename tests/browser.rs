//! The web UI in a real browser: starts the `ferrocast` binary serving `web/dist`, then runs
//! `web/test/browser.mjs`, which drives Debian's headless Chromium with playwright-core through
//! sign-up, the dashboard, going live with ffmpeg, watching live and the recording, editing,
//! the session's silent refresh, and (where the server has them) uploads and search. Screenshots
//! land in `test-artifacts/browser/`.
//!
//! `make test` builds the web UI and installs Node.js and Chromium first; run alone, this test
//! says what is missing instead of skipping.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::{DataDir, Server};

/// Short enough that the script outlives an access token and must refresh it silently.
const ACCESS_TTL_SECS: &str = "90";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn require(path: &Path, what: &str) {
    assert!(path.exists(), "{} is missing ({what}): run `make test`, or `cd web && npm ci && npm run build`", path.display());
}

/// Runs `web/test/browser.mjs` against the web UI at `url`; screenshots go to
/// `test-artifacts/<artifacts>/`.
fn run_browser_script(url: &str, artifacts: &str) {
    run_script("browser.mjs", url, artifacts, &[]);
    let artifacts = repo().join("test-artifacts").join(artifacts);
    assert!(artifacts.join("home.png").exists() && artifacts.join("watch.png").exists() && artifacts.join("dashboard.png").exists());
}

/// Runs `web/test/{script}` with `env` against the web UI at `url`.
fn run_script(script: &str, url: &str, artifacts: &str, env: &[(&str, &str)]) {
    let web = repo().join("web");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let artifacts = repo().join("test-artifacts").join(artifacts);
    // Screenshots of an earlier run must not pass for this one's.
    let _ = std::fs::remove_dir_all(&artifacts);
    let status = Command::new("node")
        .arg(web.join("test").join(script))
        .current_dir(&web)
        .env("FERROCAST_URL", url)
        .env("ARTIFACTS_DIR", &artifacts)
        .env("FERROCAST_ACCESS_TTL_SECS", ACCESS_TTL_SECS)
        .env("CHROMIUM", &chromium)
        .envs(env.iter().copied())
        .status()
        .expect("node (make test installs Node.js)");
    assert!(status.success(), "browser checks of {script} failed (see the lines above; screenshots in {})", artifacts.display());
}

fn require_browser_setup() -> PathBuf {
    let web = repo().join("web");
    require(&web.join("dist/index.html"), "the built web UI");
    require(&web.join("node_modules/playwright-core"), "the browser test's npm packages");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    require(Path::new(&chromium), "Debian's chromium package; `make test` installs it");
    web.join("dist")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_web_ui_works_in_chromium() {
    let web_dir = require_browser_setup();
    let dir = DataDir::new();
    let server = Server::start(
        &dir.0,
        &[
            ("FERROCAST_WEB_DIR", web_dir.to_str().expect("UTF-8 path")),
            ("FERROCAST_RTMP__RECONNECT_GRACE_SECS", "3"),
            ("FERROCAST_AUTH__ACCESS_TOKEN_TTL_SECS", ACCESS_TTL_SECS),
            ("FERROCAST_RESTREAM__ALLOW_PRIVATE_TARGETS", "true"),
            ("FERROCAST_WEBHOOKS__ALLOW_PRIVATE_TARGETS", "true"),
        ],
    );
    run_browser_script(&server.http, "browser");
}

/// The streamer's and the viewers' product in two browsers at once (`web/test/product.mjs`): the
/// channel page showing the stream the moment it starts, chat between two users with moderation,
/// the replay, an iframe on another site, a password reset through a real SMTP server, a
/// keyboard-only sign-up, and the layout with chat at laptop and phone sizes.
#[tokio::test(flavor = "multi_thread")]
async fn the_product_works_in_two_browsers() {
    let web_dir = require_browser_setup();
    let dir = DataDir::new();
    let mail_dir = DataDir::new();
    let smtp = support::mail::SmtpServer::start(&mail_dir.0);
    let port = smtp.port.to_string();
    let server = Server::start(
        &dir.0,
        &[
            ("FERROCAST_WEB_DIR", web_dir.to_str().expect("UTF-8 path")),
            ("FERROCAST_RTMP__RECONNECT_GRACE_SECS", "2"),
            ("FERROCAST_MAIL__HOST", "127.0.0.1"),
            ("FERROCAST_MAIL__PORT", &port),
            ("FERROCAST_MAIL__TLS", "none"),
        ],
    );
    let maildir = smtp.maildir().to_str().expect("UTF-8 path").to_string();
    // The public URL (and so the cookies' and the chat's origin) is http://localhost:{port}.
    let url = server.http.replace("127.0.0.1", "localhost");
    run_script(
        "product.mjs",
        &url,
        "product",
        &[("FERROCAST_MAILDIR", &maildir), ("FERROCAST_RTMP_URL", &format!("rtmp://{}/live", server.rtmp))],
    );
    drop(smtp);
}

/// The same story on two nodes sharing Postgres and a bucket: the browser talks to an api,origin
/// node; ffmpeg publishes to an ingest,worker node (what the dashboard tells it, from
/// `rtmp.public_url`); hls.js plays live through the origin's proxy and uploads are transcoded by
/// the other node.
#[tokio::test(flavor = "multi_thread")]
async fn the_web_ui_works_in_chromium_across_two_nodes() {
    let web_dir = require_browser_setup();
    let db = ferrocast_core::testing::TestDb::postgres().await;
    let storage = ferrocast_core::testing::test_s3_config();
    let shared = |roles: &str| -> Vec<(&'static str, String)> {
        vec![
            ("FERROCAST_DATABASE_URL", db.url.clone()),
            ("FERROCAST_JWT_SECRET", "a shared secret of every node, 32+ bytes".to_string()),
            ("FERROCAST_ROLES", roles.to_string()),
            ("FERROCAST_STORAGE__URL", storage.url.clone().expect("url")),
            ("FERROCAST_STORAGE__ENDPOINT", storage.endpoint.clone().expect("endpoint")),
            ("FERROCAST_STORAGE__ALLOW_HTTP", "true".to_string()),
            ("FERROCAST_RTMP__RECONNECT_GRACE_SECS", "3".to_string()),
            ("FERROCAST_AUTH__ACCESS_TOKEN_TTL_SECS", ACCESS_TTL_SECS.to_string()),
            ("FERROCAST_RESTREAM__ALLOW_PRIVATE_TARGETS", "true".to_string()),
            ("FERROCAST_WEBHOOKS__ALLOW_PRIVATE_TARGETS", "true".to_string()),
            ("AWS_ACCESS_KEY_ID", std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_default()),
            ("AWS_SECRET_ACCESS_KEY", std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_default()),
        ]
    };
    let (dir_a, dir_b) = (DataDir::new(), DataDir::new());
    let env_a = shared("ingest,worker");
    let node_a = Server::start(&dir_a.0, &env_a.iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>());
    let mut env_b = shared("api,origin");
    env_b.push(("FERROCAST_WEB_DIR", web_dir.to_str().expect("UTF-8 path").to_string()));
    env_b.push(("FERROCAST_RTMP__PUBLIC_URL", format!("rtmp://{}/live", node_a.rtmp)));
    let node_b = Server::start(&dir_b.0, &env_b.iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>());
    run_browser_script(&node_b.http, "browser-two-nodes");
}
