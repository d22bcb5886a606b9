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

#[tokio::test(flavor = "multi_thread")]
async fn the_web_ui_works_in_chromium() {
    let web = repo().join("web");
    require(&web.join("dist/index.html"), "the built web UI");
    require(&web.join("node_modules/playwright-core"), "the browser test's npm packages");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    require(Path::new(&chromium), "Debian's chromium package; `make test` installs it");

    let dir = DataDir::new();
    let web_dir = web.join("dist");
    let server = Server::start(
        &dir.0,
        &[
            ("FERROCAST_WEB_DIR", web_dir.to_str().expect("UTF-8 path")),
            ("FERROCAST_RTMP__RECONNECT_GRACE_SECS", "3"),
            ("FERROCAST_AUTH__ACCESS_TOKEN_TTL_SECS", ACCESS_TTL_SECS),
        ],
    );

    let artifacts = repo().join("test-artifacts/browser");
    // Screenshots of an earlier run must not pass for this one's.
    let _ = std::fs::remove_dir_all(&artifacts);
    let status = Command::new("node")
        .arg(web.join("test/browser.mjs"))
        .current_dir(&web)
        .env("FERROCAST_URL", &server.http)
        .env("ARTIFACTS_DIR", &artifacts)
        .env("FERROCAST_ACCESS_TTL_SECS", ACCESS_TTL_SECS)
        .env("CHROMIUM", &chromium)
        .status()
        .expect("node (make test installs Node.js)");
    assert!(status.success(), "browser checks failed (see the lines above; screenshots in {})", artifacts.display());
    assert!(artifacts.join("home.png").exists() && artifacts.join("watch.png").exists() && artifacts.join("dashboard.png").exists());
}
