//! The REST API through the real router on an ephemeral port, on SQLite and on Postgres.

mod common;

use base64::Engine as _;
use common::{expect_error, TestApp, JWT_SECRET};
use ferrocast_core::db::channels;
use ferrocast_core::db::videos::{self, NewVideo, VideoKind, VideoStatus, Visibility};
use reqwest::StatusCode;
use serde_json::{json, Value};

fn set_cookies(response: &reqwest::Response) -> Vec<String> {
    response.headers().get_all("set-cookie").iter().map(|v| v.to_str().expect("ascii cookie").to_string()).collect()
}

api_test!(the_whole_account_and_channel_story, |app: TestApp| async move {
    // Sign up: the user comes back, never the hash.
    let response = app
        .post("/api/auth/signup", json!({"username": "Keerti", "email": "Keerti@Example.com", "password": "correct horse battery"}), None)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let user: Value = response.json().await.expect("json");
    assert_eq!(user["username"], "keerti");
    assert_eq!(user["email"], "keerti@example.com");
    assert!(user.get("password_hash").is_none() && !user.to_string().contains("argon2"), "{user}");

    // Log in by email: tokens in the body and as HttpOnly cookies.
    let response =
        app.post("/api/auth/login", json!({"username_or_email": "KEERTI@example.com", "password": "correct horse battery"}), None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookies = set_cookies(&response);
    let tokens: Value = response.json().await.expect("json");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 900);
    let access = tokens["access_token"].as_str().expect("access token").to_string();
    let refresh = tokens["refresh_token"].as_str().expect("refresh token").to_string();
    for (name, value) in [("ferrocast_access", &access), ("ferrocast_refresh", &refresh)] {
        let cookie = cookies.iter().find(|c| c.starts_with(&format!("{name}="))).unwrap_or_else(|| panic!("{name} cookie in {cookies:?}"));
        assert!(cookie.contains(value.as_str()) && cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
        assert!(!cookie.contains("Secure"), "public URL is http, so no Secure flag: {cookie}");
    }

    // Who am I, by bearer token and by cookie alone.
    let me: Value = app.get("/api/me", Some(&access)).await.json().await.expect("json");
    assert_eq!(me["id"], user["id"]);
    let by_cookie =
        app.client.get(app.url("/api/me")).header("cookie", format!("ferrocast_access={access}")).send().await.expect("request");
    assert_eq!(by_cookie.status(), StatusCode::OK);

    // Create a channel: the key is shown this once.
    let response =
        app.post("/api/channels", json!({"slug": "keerti-live", "title": "Keerti live", "description": "Cooking"}), Some(&access)).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let channel: Value = response.json().await.expect("json");
    let first_key = channel["stream_key"].as_str().expect("stream key").to_string();
    assert!(first_key.len() >= 32, "≥128 random bits: {first_key}");
    assert_eq!(
        (channel["slug"].as_str(), channel["owner"].as_str(), channel["live"].as_bool()),
        (Some("keerti-live"), Some("keerti"), Some(false))
    );

    // The public view never shows the key.
    let public: Value = app.get("/api/channels/keerti-live", None).await.json().await.expect("json");
    assert_eq!(public["title"], "Keerti live");
    assert!(public.get("stream_key").is_none() && !public.to_string().contains(&first_key), "{public}");
    let mine: Value = app.get("/api/channels", Some(&access)).await.json().await.expect("json");
    assert_eq!(mine["items"].as_array().map(Vec::len), Some(1));
    assert!(!mine.to_string().contains(&first_key));

    // Rotate: the old key stops opening the channel, the new one does.
    let db = &app.test_db.db;
    assert!(channels::find_by_stream_key(db, &first_key).await.expect("lookup").is_some());
    let response = app.post("/api/channels/keerti-live/stream-key", json!({}), Some(&access)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let rotated: Value = response.json().await.expect("json");
    let second_key = rotated["stream_key"].as_str().expect("new key");
    assert_ne!(second_key, first_key);
    assert!(channels::find_by_stream_key(db, &first_key).await.expect("lookup").is_none());
    assert_eq!(channels::find_by_stream_key(db, second_key).await.expect("lookup").map(|c| c.slug).as_deref(), Some("keerti-live"));

    // Refresh rotates the refresh token.
    let response = app.post("/api/auth/refresh", json!({"refresh_token": refresh}), None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let renewed: Value = response.json().await.expect("json");
    let refresh2 = renewed["refresh_token"].as_str().expect("new refresh").to_string();
    assert_ne!(refresh2, refresh);
    assert_eq!(app.get("/api/me", renewed["access_token"].as_str()).await.status(), StatusCode::OK);

    // Presenting the already-used token again is theft: it fails and revokes the whole family.
    expect_error(app.post("/api/auth/refresh", json!({"refresh_token": refresh}), None).await, StatusCode::UNAUTHORIZED, "unauthorized")
        .await;
    expect_error(app.post("/api/auth/refresh", json!({"refresh_token": refresh2}), None).await, StatusCode::UNAUTHORIZED, "unauthorized")
        .await;

    // A fresh login, refreshed through the cookie alone, then logout revokes it and clears cookies.
    let tokens = app.login("keerti").await;
    let refresh3 = tokens["refresh_token"].as_str().expect("refresh").to_string();
    let by_cookie = app
        .client
        .post(app.url("/api/auth/refresh"))
        .header("cookie", format!("ferrocast_refresh={refresh3}"))
        .send()
        .await
        .expect("request");
    assert_eq!(by_cookie.status(), StatusCode::OK);
    let refresh4 = by_cookie.json::<Value>().await.expect("json")["refresh_token"].as_str().expect("refresh").to_string();
    let response = app.post("/api/auth/logout", json!({"refresh_token": refresh4}), None).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let cleared = set_cookies(&response);
    assert!(cleared.iter().any(|c| c.starts_with("ferrocast_access=;") && c.contains("Max-Age=0")), "{cleared:?}");
    expect_error(app.post("/api/auth/refresh", json!({"refresh_token": refresh4}), None).await, StatusCode::UNAUTHORIZED, "unauthorized")
        .await;
});

api_test!(duplicates_conflict_and_bad_input_names_the_field, |app: TestApp| async move {
    let token = app.user("alice").await;
    let body = expect_error(
        app.post("/api/auth/signup", json!({"username": "ALICE", "email": "new@example.com", "password": "12345678"}), None).await,
        StatusCode::CONFLICT,
        "conflict",
    )
    .await;
    assert_eq!(body["error"]["field"], "username");
    let body = expect_error(
        app.post("/api/auth/signup", json!({"username": "alice2", "email": "ALICE@example.com", "password": "12345678"}), None).await,
        StatusCode::CONFLICT,
        "conflict",
    )
    .await;
    assert_eq!(body["error"]["field"], "email");

    for (request, field) in [
        (json!({"username": "al", "email": "a@example.com", "password": "12345678"}), "username"),
        (json!({"username": "al ice", "email": "a@example.com", "password": "12345678"}), "username"),
        (json!({"username": "alice3", "email": "not-an-email", "password": "12345678"}), "email"),
        (json!({"username": "alice3", "email": "a@example.com", "password": "short"}), "password"),
        (json!({"username": "alice3", "email": "a@example.com"}), "password"),
        (json!({"username": 7, "email": "a@example.com", "password": "12345678"}), "username"),
    ] {
        let body =
            expect_error(app.post("/api/auth/signup", request, None).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(body["error"]["field"], field, "{body}");
    }

    // Not JSON at all is a 400 with a JSON error, not a crash or an HTML page.
    let response = app
        .client
        .post(app.url("/api/auth/signup"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("request");
    expect_error(response, StatusCode::BAD_REQUEST, "bad_request").await;

    app.post("/api/channels", json!({"slug": "alice-live", "title": "Alice"}), Some(&token)).await;
    let body = expect_error(
        app.post("/api/channels", json!({"slug": "alice-live", "title": "Again"}), Some(&token)).await,
        StatusCode::CONFLICT,
        "conflict",
    )
    .await;
    assert_eq!(body["error"]["field"], "slug");
    let body = expect_error(
        app.post("/api/channels", json!({"slug": "a_b", "title": "Bad"}), Some(&token)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(body["error"]["field"], "slug");
    let body = expect_error(
        app.post("/api/channels", json!({"slug": "okay-slug", "title": ""}), Some(&token)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(body["error"]["field"], "title");

    expect_error(app.get("/api/nothing-here", None).await, StatusCode::NOT_FOUND, "not_found").await;
    expect_error(app.get("/api/channels/no-such-channel", None).await, StatusCode::NOT_FOUND, "not_found").await;
    let response = app.client.put(app.url("/api/me")).send().await.expect("request");
    expect_error(response, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
});

fn forge(header: &Value, claims: &Value, signature: &str) -> String {
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!("{}.{}.{signature}", b64(header), b64(claims))
}

api_test!(bad_tokens_are_401, |app: TestApp| async move {
    let token = app.user("mallory").await;
    let user_id = app.get("/api/me", Some(&token)).await.json::<Value>().await.expect("json")["id"].clone();
    let now = chrono::Utc::now().timestamp();
    let issuer = "http://ferrocast.test";

    expect_error(app.get("/api/me", None).await, StatusCode::UNAUTHORIZED, "unauthorized").await;

    // A flipped signature character.
    let mut tampered = token.clone();
    let last = tampered.pop().expect("non-empty");
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    expect_error(app.get("/api/me", Some(&tampered)).await, StatusCode::UNAUTHORIZED, "unauthorized").await;

    // alg: none, with no signature.
    let none = forge(&json!({"alg": "none", "typ": "JWT"}), &json!({"sub": user_id, "iat": now, "exp": now + 600, "iss": issuer}), "");
    expect_error(app.get("/api/me", Some(&none)).await, StatusCode::UNAUTHORIZED, "unauthorized").await;

    // Correctly signed, but expired an hour ago.
    let key = jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes());
    let expired_claims = json!({"sub": user_id, "iat": now - 7200, "exp": now - 3600, "iss": issuer});
    let expired = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &expired_claims, &key).expect("encode");
    expect_error(app.get("/api/me", Some(&expired)).await, StatusCode::UNAUTHORIZED, "unauthorized").await;

    // Correctly signed, but for another issuer, or with no exp at all.
    let foreign = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({"sub": user_id, "iat": now, "exp": now + 600, "iss": "http://other"}),
        &key,
    )
    .expect("encode");
    expect_error(app.get("/api/me", Some(&foreign)).await, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let forever =
        jsonwebtoken::encode(&jsonwebtoken::Header::default(), &json!({"sub": user_id, "iat": now, "iss": issuer}), &key).expect("encode");
    expect_error(app.get("/api/me", Some(&forever)).await, StatusCode::UNAUTHORIZED, "unauthorized").await;

    // The same claims, properly signed, do work: the failures above are about the token, not the user.
    let good =
        jsonwebtoken::encode(&jsonwebtoken::Header::default(), &json!({"sub": user_id, "iat": now, "exp": now + 600, "iss": issuer}), &key)
            .expect("encode");
    assert_eq!(app.get("/api/me", Some(&good)).await.status(), StatusCode::OK);
});

api_test!(wrong_password_and_unknown_user_look_the_same, |app: TestApp| async move {
    app.signup("bob").await;
    let wrong = app.post("/api/auth/login", json!({"username_or_email": "bob", "password": "not the password"}), None).await;
    let body_wrong = expect_error(wrong, StatusCode::UNAUTHORIZED, "bad_credentials").await;
    let unknown = app.post("/api/auth/login", json!({"username_or_email": "nobody", "password": "not the password"}), None).await;
    let body_unknown = expect_error(unknown, StatusCode::UNAUTHORIZED, "bad_credentials").await;
    assert_eq!(body_wrong, body_unknown);
});

mod rate_limit {
    use super::*;

    async fn story(engine: ferrocast_core::testing::Engine) {
        let app = TestApp::spawn_with(engine, |config| {
            config.auth.login_max_failures_per_account = 3;
            config.auth.login_max_failures_per_address = 6;
        })
        .await;
        app.signup("carol").await;
        let attempt = |user: &'static str, password: &'static str| {
            let app = &app;
            async move { app.post("/api/auth/login", json!({"username_or_email": user, "password": password}), None).await }
        };
        for _ in 0..3 {
            assert_eq!(attempt("carol", "wrong password").await.status(), StatusCode::UNAUTHORIZED);
        }
        // The account is locked for now, even with the right password.
        let locked = attempt("carol", "correct horse battery").await;
        let retry_after: u64 =
            locked.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).expect("Retry-After");
        assert!(retry_after > 0 && retry_after <= 900, "{retry_after}");
        expect_error(locked, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;

        // The address is limited across accounts too.
        for _ in 0..3 {
            assert_eq!(attempt("someone-else", "wrong password").await.status(), StatusCode::UNAUTHORIZED);
        }
        expect_error(attempt("a-third-name", "whatever1").await, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    }

    #[tokio::test]
    async fn sqlite() {
        story(ferrocast_core::testing::Engine::Sqlite).await;
    }

    #[tokio::test]
    async fn postgres() {
        story(ferrocast_core::testing::Engine::Postgres).await;
    }
}

api_test!(channels_are_edited_and_deleted_only_by_their_owner, |app: TestApp| async move {
    let alice = app.user("alice").await;
    let eve = app.user("eve").await;
    app.post("/api/channels", json!({"slug": "alice-live", "title": "Alice"}), Some(&alice)).await;

    let patch = |token: String, body: Value| app.client.patch(app.url("/api/channels/alice-live")).bearer_auth(token).json(&body).send();
    expect_error(patch(eve.clone(), json!({"title": "Owned"})).await.expect("request"), StatusCode::FORBIDDEN, "forbidden").await;
    expect_error(app.post("/api/channels/alice-live/stream-key", json!({}), Some(&eve)).await, StatusCode::FORBIDDEN, "forbidden").await;
    expect_error(app.post("/api/channels", json!({"slug": "x-live", "title": "X"}), None).await, StatusCode::UNAUTHORIZED, "unauthorized")
        .await;

    let updated: Value = patch(alice.clone(), json!({"description": "Speedruns"})).await.expect("request").json().await.expect("json");
    assert_eq!((updated["title"].as_str(), updated["description"].as_str()), (Some("Alice"), Some("Speedruns")));

    let delete = |token: String| app.client.delete(app.url("/api/channels/alice-live")).bearer_auth(token).send();
    expect_error(delete(eve).await.expect("request"), StatusCode::FORBIDDEN, "forbidden").await;
    assert_eq!(delete(alice.clone()).await.expect("request").status(), StatusCode::NO_CONTENT);
    expect_error(app.get("/api/channels/alice-live", None).await, StatusCode::NOT_FOUND, "not_found").await;
});

api_test!(videos_are_listed_shown_edited_and_deleted, |app: TestApp| async move {
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    app.post("/api/channels", json!({"slug": "alice-live", "title": "Alice"}), Some(&alice)).await;
    let db = &app.test_db.db;
    let channel = channels::find_by_slug(db, "alice-live").await.expect("find").expect("exists");
    let make = |title: &'static str, status: VideoStatus, visibility: Visibility| {
        let channel_id = channel.id.clone();
        async move {
            videos::create(db, NewVideo { channel_id: &channel_id, kind: VideoKind::Live, status, title, description: "", visibility })
                .await
                .expect("create")
        }
    };
    let mut public = Vec::new();
    for title in ["one", "two", "three"] {
        public.push(make(title, VideoStatus::Ready, Visibility::Public).await.id);
    }
    let private = make("secret", VideoStatus::Ready, Visibility::Private).await;
    let unlisted = make("link only", VideoStatus::Ready, Visibility::Unlisted).await;
    let live = make("on air", VideoStatus::Live, Visibility::Public).await;
    let failed = make("broken", VideoStatus::Failed, Visibility::Public).await;
    videos::finish(db, &failed.id, VideoStatus::Failed, None, Some("no decodable video stream")).await.expect("fail");

    // Public listing: newest first, paginated by cursor, only public live/ready videos.
    let page1: Value = app.get("/api/videos?limit=2", None).await.json().await.expect("json");
    let cursor = page1["next_cursor"].as_str().expect("a next page").to_string();
    let page2: Value = app.get(&format!("/api/videos?limit=2&cursor={cursor}"), None).await.json().await.expect("json");
    assert!(page2["next_cursor"].is_null(), "{page2}");
    let ids: Vec<&str> =
        page1["items"].as_array().into_iter().chain(page2["items"].as_array()).flatten().filter_map(|v| v["id"].as_str()).collect();
    assert_eq!(ids, vec![live.id.as_str(), public[2].as_str(), public[1].as_str(), public[0].as_str()]);
    expect_error(app.get("/api/videos?limit=0", None).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    expect_error(app.get("/api/videos?cursor=../../x", None).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;

    // The channel shows its live video.
    let ch: Value = app.get("/api/channels/alice-live", None).await.json().await.expect("json");
    assert_eq!((ch["live"].as_bool(), ch["live_video_id"].as_str()), (Some(true), Some(live.id.as_str())));

    // One video: statuses, the failure message, private only for the owner.
    let shown: Value = app.get(&format!("/api/videos/{}", live.id), None).await.json().await.expect("json");
    assert_eq!(
        (shown["status"].as_str(), shown["channel"]["slug"].as_str(), shown["owned"].as_bool()),
        (Some("live"), Some("alice-live"), Some(false))
    );
    let broken: Value = app.get(&format!("/api/videos/{}", failed.id), None).await.json().await.expect("json");
    assert_eq!((broken["status"].as_str(), broken["error"].as_str()), (Some("failed"), Some("no decodable video stream")));
    assert_eq!(app.get(&format!("/api/videos/{}", unlisted.id), None).await.status(), StatusCode::OK);
    expect_error(app.get(&format!("/api/videos/{}", private.id), None).await, StatusCode::NOT_FOUND, "not_found").await;
    expect_error(app.get(&format!("/api/videos/{}", private.id), Some(&bob)).await, StatusCode::NOT_FOUND, "not_found").await;
    let own: Value = app.get(&format!("/api/videos/{}", private.id), Some(&alice)).await.json().await.expect("json");
    assert_eq!(own["owned"], true);
    expect_error(app.get("/api/videos/not-a-video", None).await, StatusCode::NOT_FOUND, "not_found").await;

    // The owner sees everything on the channel page; others see the public list.
    let theirs: Value = app.get("/api/channels/alice-live/videos", None).await.json().await.expect("json");
    assert_eq!(theirs["items"].as_array().map(Vec::len), Some(4));
    let owners: Value = app.get("/api/channels/alice-live/videos", Some(&alice)).await.json().await.expect("json");
    assert_eq!(owners["items"].as_array().map(Vec::len), Some(7));

    // Edits and deletes by the owner only.
    let url = app.url(&format!("/api/videos/{}", public[0]));
    let response = app.client.patch(&url).bearer_auth(&bob).json(&json!({"title": "mine now"})).send().await.expect("request");
    expect_error(response, StatusCode::FORBIDDEN, "forbidden").await;
    let response = app.client.patch(&url).bearer_auth(&alice).json(&json!({"visibility": "secret"})).send().await.expect("request");
    let body = expect_error(response, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(body["error"]["field"], "visibility");
    let edited: Value = app
        .client
        .patch(&url)
        .bearer_auth(&alice)
        .json(&json!({"title": "First!", "visibility": "unlisted"}))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!((edited["title"].as_str(), edited["visibility"].as_str()), (Some("First!"), Some("unlisted")));
    let listed: Value = app.get("/api/videos", None).await.json().await.expect("json");
    assert!(!listed.to_string().contains(&public[0]), "unlisted videos leave the public listing");
    assert_eq!(app.client.delete(&url).bearer_auth(&alice).send().await.expect("request").status(), StatusCode::NO_CONTENT);
    expect_error(app.get(&format!("/api/videos/{}", public[0]), None).await, StatusCode::NOT_FOUND, "not_found").await;
});

api_test!(health_and_openapi, |app: TestApp| async move {
    let health: Value = app.get("/healthz", None).await.json().await.expect("json");
    assert_eq!(health["status"], "ok");
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status(), StatusCode::OK);

    let doc: Value = app.get("/api/openapi.json", None).await.json().await.expect("json");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "{}", doc["openapi"]);
    let paths = doc["paths"].as_object().expect("paths");
    for (path, method) in [
        ("/api/auth/signup", "post"),
        ("/api/auth/login", "post"),
        ("/api/auth/refresh", "post"),
        ("/api/auth/logout", "post"),
        ("/api/me", "get"),
        ("/api/channels", "post"),
        ("/api/channels", "get"),
        ("/api/channels/{slug}", "get"),
        ("/api/channels/{slug}", "patch"),
        ("/api/channels/{slug}", "delete"),
        ("/api/channels/{slug}/stream-key", "post"),
        ("/api/videos", "get"),
        ("/api/videos/{id}", "get"),
        ("/api/videos/{id}", "patch"),
        ("/api/videos/{id}", "delete"),
        ("/healthz", "get"),
        ("/readyz", "get"),
    ] {
        assert!(paths.get(path).and_then(|p| p.get(method)).is_some(), "{method} {path} documented");
    }
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
});

#[tokio::test]
async fn readyz_reports_an_unreachable_database() {
    let app = TestApp::spawn(ferrocast_core::testing::Engine::Sqlite).await;
    app.test_db.db.close().await;
    let response = app.get("/readyz", None).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.json::<Value>().await.expect("json")["status"], "unavailable");
}
