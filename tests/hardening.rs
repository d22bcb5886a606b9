//! Attacks from the security review, replayed against the real binary: one client must not be able
//! to hold the HTTP listener or grow the server's memory without bound. (The RTMP ones are in
//! tests/ingest.rs.)

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::{DataDir, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A TCP connection to the server from `source` (another loopback address stands for another host).
async fn connect_from(source: &str, server: &Server) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.bind(format!("{source}:0").parse().expect("address")).expect("bind");
    socket.connect(server.http.trim_start_matches("http://").parse().expect("http address")).await.expect("connect")
}

/// True once the server has closed `stream` (EOF or reset), waiting at most `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 512];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn http_clients_that_never_finish_their_headers_are_cut_off_and_capped_per_address() {
    let dir = DataDir::new();
    let server =
        Server::start(&dir.0, &[("FERROCAST_HTTP__HEADER_READ_TIMEOUT_SECS", "3"), ("FERROCAST_HTTP__MAX_CONNECTIONS_PER_ADDRESS", "20")]);

    // 127.0.0.2 opens its twenty slots and trickles a header byte every half second on each.
    let started = Instant::now();
    let mut trickling = Vec::new();
    for _ in 0..20 {
        let mut stream = connect_from("127.0.0.2", &server).await;
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.expect("request line");
        trickling.push(stream);
    }
    // Its twenty-first connection is closed at once.
    let mut extra = connect_from("127.0.0.2", &server).await;
    assert!(closed_within(&mut extra, Duration::from_secs(2)).await, "a connection past the per-address cap is closed");

    // Meanwhile a viewer elsewhere is served.
    let (status, _) = server.get_text("/healthz").await;
    assert_eq!(status, 200);

    // Trickling does not extend the header deadline: every one of them is closed by it.
    let trickle = async {
        for _ in 0..20 {
            for stream in trickling.iter_mut() {
                let _ = stream.write_all(b"X").await;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(4), trickle).await;
    for stream in &mut trickling {
        assert!(closed_within(stream, Duration::from_secs(3)).await, "a trickling client is cut off at the header deadline");
    }
    assert!(started.elapsed() < Duration::from_secs(15), "closed by the 3 s deadline, not by something later");

    // Their slots came back: the same address is served again.
    let mut again = connect_from("127.0.0.2", &server).await;
    again.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.expect("request");
    let mut response = String::new();
    again.read_to_string(&mut response).await.expect("response");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_logins_with_huge_names_do_not_grow_memory() {
    let dir = DataDir::new();
    let server = Server::start(&dir.0, &[("FERROCAST_AUTH__LOGIN_MAX_FAILURES_PER_ADDRESS", "1000")]);
    let login = |name: String| {
        server.client.post(server.url("/api/auth/login")).json(&json!({"username_or_email": name, "password": "guess"})).send()
    };
    // Warm up: allocator arenas and connection pools settle before the baseline.
    for i in 0..5 {
        let response = login(format!("{}{i}", "w".repeat(1_000_000))).await.expect("login");
        assert_eq!(response.status(), 401);
    }
    let before = server.rss_bytes();
    for i in 0..60 {
        let response = login(format!("{}{i}", "n".repeat(1_000_000))).await.expect("login");
        assert_eq!(response.status(), 401, "a name no account can have is a failed login, not an error");
    }
    let grown = server.rss_bytes().saturating_sub(before);
    // 60 names of 1 MB each kept as throttling keys would be 60 MB and more.
    assert!(grown < 24 << 20, "memory grew by {} MB over 60 failed logins", grown >> 20);
}

/// Chat sockets are connections like any other: they hold their slot of the per-address cap for
/// as long as they are open, so one host cannot pile them up beyond it.
#[tokio::test(flavor = "multi_thread")]
async fn chat_sockets_count_against_the_per_address_cap() {
    let dir = DataDir::new();
    let server =
        Server::start(&dir.0, &[("FERROCAST_HTTP__MAX_CONNECTIONS_PER_ADDRESS", "3"), ("FERROCAST_HTTP__HEADER_READ_TIMEOUT_SECS", "1")]);
    server.streamer("ana", "ana-live").await;
    // The sign-up's idle keep-alive connection is closed by the 1 s deadline and gives its slot back.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut sockets = Vec::new();
    for _ in 0..3 {
        let mut socket = support::events::chat(&server.http, "ana-live", "", &[]).await;
        support::events::frame_of(&mut socket, "welcome", Duration::from_secs(5)).await;
        sockets.push(socket);
    }
    let mut fourth = connect_from("127.0.0.1", &server).await;
    assert!(closed_within(&mut fourth, Duration::from_secs(2)).await, "a fourth connection from the same host is refused");
    drop(sockets.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut again = connect_from("127.0.0.1", &server).await;
        again.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("write");
        let mut answer = [0u8; 12];
        if again.read_exact(&mut answer).await.is_ok() && answer.starts_with(b"HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "a closed socket gives its slot back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A shell's soft limit of open files (often 1024) would make `accept` fail far below
/// `http.max_connections`: started with a soft limit of 128, the server still holds 300
/// connections open at once and answers each.
#[tokio::test(flavor = "multi_thread")]
async fn connections_past_the_starting_soft_limit_of_open_files_are_served() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("open files limit");
    assert!(hard >= 1024, "this test needs a hard limit of open files of at least 1024, not {hard}");
    // The server inherits this process's limits when it starts (nextest runs each test in a
    // process of its own); the test's own clients then need theirs back.
    setrlimit(Resource::RLIMIT_NOFILE, 128, hard).expect("lower the soft limit");
    let dir = DataDir::new();
    let server = Server::start(&dir.0, &[("FERROCAST_HTTP__MAX_CONNECTIONS_PER_ADDRESS", "1000")]);
    setrlimit(Resource::RLIMIT_NOFILE, soft.max(1024), hard).expect("restore the soft limit");

    let mut held = Vec::new();
    for i in 0..300 {
        let mut stream = connect_from("127.0.0.1", &server).await;
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("request");
        let mut status = [0u8; 12];
        let answered = tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut status)).await;
        assert!(matches!(answered, Ok(Ok(_))) && status == *b"HTTP/1.1 200", "connection {i} was not answered");
        held.push(stream);
    }
    assert_eq!(held.len(), 300);
}
