//! `TestApp`: the real API router on an ephemeral port over a fresh database, and a client for it.

use std::net::SocketAddr;

use std::sync::Arc;

use ferrocast_core::config::{Config, Secret};
use ferrocast_core::live::LiveRegistry;
use ferrocast_core::storage::Storage;
use ferrocast_core::testing::{Engine, TempDir, TestDb};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};

pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret!";

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    /// The configuration the app was started with (not every test reads it).
    #[allow(dead_code)]
    pub config: Config,
    pub test_db: TestDb,
    /// The live registry the API reads viewers and stream health from.
    #[allow(dead_code)]
    pub live: Arc<LiveRegistry>,
    #[allow(dead_code)]
    pub storage: Storage,
    _media: TempDir,
}

impl TestApp {
    pub async fn spawn(engine: Engine) -> TestApp {
        Self::spawn_with(engine, |_| {}).await
    }

    pub async fn spawn_with(engine: Engine, adjust: impl FnOnce(&mut Config)) -> TestApp {
        let test_db = TestDb::new(engine).await;
        let media = TempDir::new();
        let mut config =
            Config { public_url: Some("http://ferrocast.test".into()), data_dir: media.path().join("data"), ..Config::default() };
        adjust(&mut config);
        let storage = Storage::local(media.path()).expect("media storage");
        let live = Arc::new(LiveRegistry::new());
        let state = ferrocast_api::AppState::new(test_db.db.clone(), storage.clone(), live.clone(), &config, &Secret::new(JWT_SECRET));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let app = ferrocast_api::router(state);
        tokio::spawn(async move {
            axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await.expect("serve");
        });
        TestApp { base: format!("http://{addr}"), client: reqwest::Client::new(), config, test_db, live, storage, _media: media }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn post(&self, path: &str, body: Value, token: Option<&str>) -> Response {
        let mut request = self.client.post(self.url(path)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request")
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request")
    }

    pub async fn signup(&self, username: &str) -> Value {
        let response = self
            .post(
                "/api/auth/signup",
                json!({"username": username, "email": format!("{username}@example.com"), "password": "correct horse battery"}),
                None,
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.expect("json")
    }

    /// Logs in and returns the token response.
    pub async fn login(&self, username: &str) -> Value {
        let response =
            self.post("/api/auth/login", json!({"username_or_email": username, "password": "correct horse battery"}), None).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.expect("json")
    }

    /// Signs up and logs in; returns the token response.
    pub async fn login_new(&self, username: &str) -> Value {
        self.signup(username).await;
        self.login(username).await
    }

    /// Signs up and logs in; returns the access token.
    pub async fn user(&self, username: &str) -> String {
        self.signup(username).await;
        self.login(username).await["access_token"].as_str().expect("access token").to_string()
    }
}

/// Asserts a JSON error with `status` and `code` and returns its body.
pub async fn expect_error(response: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(response.status(), status, "status");
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    assert!(content_type.starts_with("application/json"), "content type {content_type}");
    let body: Value = response.json().await.expect("json error body");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    body
}

/// Declares one async API test per engine, each with its own `TestApp`.
#[macro_export]
macro_rules! api_test {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;

            #[tokio::test]
            async fn sqlite() {
                ($body)(TestApp::spawn(ferrocast_core::testing::Engine::Sqlite).await).await;
            }

            #[tokio::test]
            async fn postgres() {
                ($body)(TestApp::spawn(ferrocast_core::testing::Engine::Postgres).await).await;
            }
        }
    };
}
