//! The real `ferrocast` binary, started the way an operator starts it: configuration from the
//! environment, a fresh data dir, ephemeral ports; then curl-like requests, then SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use ferrocast_core::testing::TestDb;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_ferrocast");

/// The binary with none of the test runner's own `FERROCAST_*` settings: each test sets exactly the
/// ones it means (a `FERROCAST_DATABASE_URL` in the developer's shell must not leak in).
fn ferrocast() -> Command {
    let mut command = Command::new(BIN);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("FERROCAST_") {
            command.env_remove(name);
        }
    }
    command
}

struct Server {
    child: Child,
    base: String,
    lines: mpsc::Receiver<String>,
}

impl Server {
    /// Starts `ferrocast serve` and waits for the line that says where it listens.
    fn start(data_dir: &std::path::Path, database_url: Option<&str>) -> Server {
        let mut command = ferrocast();
        command
            .arg("serve")
            .env("FERROCAST_HTTP_ADDR", "127.0.0.1:0")
            .env("FERROCAST_RTMP_ADDR", "127.0.0.1:0")
            .env("FERROCAST_DATA_DIR", data_dir)
            .env("FERROCAST_LOG_FORMAT", "json")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(url) = database_url {
            command.env("FERROCAST_DATABASE_URL", url);
        }
        let mut child = command.spawn().expect("spawn ferrocast");
        let stderr = child.stderr.take().expect("stderr");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Server { child, base: String::new(), lines };
        let listening = server.wait_for_line(|l| l.contains("ferrocast listening"));
        let event: Value = serde_json::from_str(&listening).expect("JSON log line");
        server.base = format!("http://{}", event["http"].as_str().expect("http address in the start-up line"));
        server
    }

    fn wait_for_line(&mut self, matches: impl Fn(&str) -> bool) -> String {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(60)) {
                Ok(line) if matches(&line) => return line,
                Ok(_) => {}
                Err(e) => panic!("ferrocast did not print the expected line: {e}"),
            }
        }
    }

    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).expect("pid fits in pid_t"));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("send SIGTERM");
        self.wait_for_line(|l| l.contains("shut down cleanly"));
        self.child.wait().expect("wait")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

async fn sign_up_log_in_and_create_a_channel(base: &str) {
    let client = reqwest::Client::new();
    let signup = client
        .post(format!("{base}/api/auth/signup"))
        .json(&json!({"username": "newcomer", "email": "newcomer@example.com", "password": "a long password"}))
        .send()
        .await
        .expect("signup");
    assert_eq!(signup.status(), 201);
    let tokens: Value = client
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"username_or_email": "newcomer", "password": "a long password"}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    let access = tokens["access_token"].as_str().expect("token");
    let channel = client
        .post(format!("{base}/api/channels"))
        .bearer_auth(access)
        .json(&json!({"slug": "first-stream", "title": "My first stream"}))
        .send()
        .await
        .expect("create channel");
    assert_eq!(channel.status(), 201);
    let channel: Value = channel.json().await.expect("json");
    assert!(channel["stream_key"].as_str().is_some_and(|k| k.len() >= 32));
    let ready = client.get(format!("{base}/readyz")).send().await.expect("readyz");
    assert_eq!(ready.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_with_defaults_on_sqlite_then_sigterm() {
    let dir = std::env::temp_dir().join(format!("ferrocast-serve-{}", ferrocast_core::ids::new_id()));
    let server = Server::start(&dir, None);
    sign_up_log_in_and_create_a_channel(&server.base).await;

    // The generated JWT secret and the data dir are private to the server's user, and the SQLite
    // file is in the data dir.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("jwt_secret")).expect("jwt secret file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let mode = std::fs::metadata(&dir).expect("data dir").permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "the data dir the server created is private too");
    }
    assert!(dir.join("ferrocast.db").exists());

    let status = server.terminate();
    assert!(status.success(), "exit status {status}");

    // A restart reuses the database and the secret: the account is still there.
    let server = Server::start(&dir, None);
    let login = reqwest::Client::new()
        .post(format!("{}/api/auth/login", server.base))
        .json(&json!({"username_or_email": "newcomer", "password": "a long password"}))
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), 200);
    assert!(server.terminate().success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_on_postgres() {
    let test_db = TestDb::postgres().await;
    let dir = std::env::temp_dir().join(format!("ferrocast-serve-{}", ferrocast_core::ids::new_id()));
    let server = Server::start(&dir, Some(&test_db.url));
    sign_up_log_in_and_create_a_channel(&server.base).await;
    assert!(server.terminate().success());
    assert!(!dir.join("ferrocast.db").exists(), "Postgres was used, not a SQLite file");
    let _ = std::fs::remove_dir_all(&dir);
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
