//! The REST API through the real router on an ephemeral port, on SQLite and on Postgres.

mod common;

use base64::Engine as _;
use common::{expect_error, TestApp, JWT_SECRET};
use ferrocast_core::db::videos::{self, NewVideo, VideoKind, VideoStatus, Visibility};
use ferrocast_core::db::{channels, refresh_tokens};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// `live_` followed by exactly 40 lowercase hex digits (160 random bits).
fn is_stream_key(key: &str) -> bool {
    key.strip_prefix("live_").is_some_and(|hex| hex.len() == 40 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

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
    assert!(is_stream_key(&first_key), "`live_` and 160 random bits as lowercase hex: {first_key}");
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
    assert!(is_stream_key(second_key), "{second_key}");
    assert!(channels::find_by_stream_key(db, &first_key).await.expect("lookup").is_none());
    assert_eq!(channels::find_by_stream_key(db, second_key).await.expect("lookup").map(|c| c.slug).as_deref(), Some("keerti-live"));

    // Refresh rotates the refresh token.
    let response = app.post("/api/auth/refresh", json!({"refresh_token": refresh}), None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let renewed: Value = response.json().await.expect("json");
    let refresh2 = renewed["refresh_token"].as_str().expect("new refresh").to_string();
    assert_ne!(refresh2, refresh);
    let renewed_access = renewed["access_token"].as_str().expect("access").to_string();
    assert_eq!(app.get("/api/me", Some(&renewed_access)).await.status(), StatusCode::OK);

    // Presenting the already-used token again is theft: it fails and revokes the whole family,
    // the session's access tokens included.
    expect_error(app.post("/api/auth/refresh", json!({"refresh_token": refresh}), None).await, StatusCode::UNAUTHORIZED, "unauthorized")
        .await;
    expect_error(app.post("/api/auth/refresh", json!({"refresh_token": refresh2}), None).await, StatusCode::UNAUTHORIZED, "unauthorized")
        .await;
    expect_error(app.get("/api/me", Some(&renewed_access)).await, StatusCode::UNAUTHORIZED, "unauthorized").await;

    // A fresh login, refreshed through the cookie alone (from our own pages), then logout revokes
    // it and clears cookies.
    let tokens = app.login("keerti").await;
    let refresh3 = tokens["refresh_token"].as_str().expect("refresh").to_string();
    let access3 = tokens["access_token"].as_str().expect("access").to_string();
    assert_eq!(app.get("/api/me", Some(&access3)).await.status(), StatusCode::OK);
    let by_cookie = app
        .client
        .post(app.url("/api/auth/refresh"))
        .header("cookie", format!("ferrocast_refresh={refresh3}"))
        .header("origin", "http://ferrocast.test")
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
    // Logged out: the access token stops too.
    expect_error(app.get("/api/me", Some(&access3)).await, StatusCode::UNAUTHORIZED, "unauthorized").await;
});

// Another node revoking a session (here: the database changed behind this node's back) stops its
// access tokens here within `auth.session_check_secs`.
#[tokio::test]
async fn a_session_revoked_elsewhere_stops_within_seconds() {
    let app = TestApp::spawn_with(ferrocast_core::testing::Engine::Sqlite, |config| config.auth.session_check_secs = 1).await;
    app.signup("olga").await;
    let tokens = app.login("olga").await;
    let access = tokens["access_token"].as_str().expect("access").to_string();
    assert_eq!(app.get("/api/me", Some(&access)).await.status(), StatusCode::OK);
    let refresh = tokens["refresh_token"].as_str().expect("refresh");
    let stored = refresh_tokens::find_by_hash(&app.test_db.db, &ferrocast_api::tokens::hash_refresh_token(refresh))
        .await
        .expect("lookup")
        .expect("stored");
    refresh_tokens::revoke_family(&app.test_db.db, &stored.family_id).await.expect("revoke");
    let started = std::time::Instant::now();
    while app.get("/api/me", Some(&access)).await.status() == StatusCode::OK {
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "the revoked session still works after 10 s");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

api_test!(duplicates_conflict_and_bad_input_names_the_field, |app: TestApp| async move {
    let token = app.user("alice").await;
    let body = expect_error(
        app.post("/api/auth/signup", json!({"username": "ALICE", "email": "new@example.com", "password": "another long one"}), None).await,
        StatusCode::CONFLICT,
        "conflict",
    )
    .await;
    assert_eq!(body["error"]["field"], "username");
    let body = expect_error(
        app.post("/api/auth/signup", json!({"username": "alice2", "email": "ALICE@example.com", "password": "another long one"}), None)
            .await,
        StatusCode::CONFLICT,
        "conflict",
    )
    .await;
    assert_eq!(body["error"]["field"], "email");

    for (request, field) in [
        (json!({"username": "al", "email": "a@example.com", "password": "another long one"}), "username"),
        (json!({"username": "al ice", "email": "a@example.com", "password": "another long one"}), "username"),
        (json!({"username": "alice3", "email": "not-an-email", "password": "another long one"}), "email"),
        (json!({"username": "alice3", "email": "a@example.com", "password": "short"}), "password"),
        (json!({"username": "alice3", "email": "a@example.com"}), "password"),
        (json!({"username": 7, "email": "a@example.com", "password": "another long one"}), "username"),
        (json!({"username": "alice3", "email": "a\0@example.com", "password": "another long one"}), "email"),
    ] {
        let body =
            expect_error(app.post("/api/auth/signup", request, None).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(body["error"]["field"], field, "{body}");
    }
    // A NUL in a text field is the same 422 on both engines (Postgres would refuse to store it).
    let body = expect_error(
        app.post("/api/channels", json!({"slug": "nul-show", "title": "before\0after"}), Some(&token)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(body["error"]["field"], "title", "{body}");

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
    // The real token's session, so that each forgery below differs from a good token in one way.
    let payload = token.split('.').nth(1).expect("payload");
    let claims: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).expect("base64")).expect("claims");
    let sid = claims["sid"].as_str().expect("sid").to_string();

    expect_error(app.get("/api/me", None).await, StatusCode::UNAUTHORIZED, "unauthorized").await;

    // A flipped signature character.
    let mut tampered = token.clone();
    let last = tampered.pop().expect("non-empty");
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    expect_error(app.get("/api/me", Some(&tampered)).await, StatusCode::UNAUTHORIZED, "unauthorized").await;

    // alg: none, with no signature.
    let none =
        forge(&json!({"alg": "none", "typ": "JWT"}), &json!({"sub": user_id, "iat": now, "exp": now + 600, "iss": issuer, "sid": sid}), "");
    expect_error(app.get("/api/me", Some(&none)).await, StatusCode::UNAUTHORIZED, "unauthorized").await;

    // Correctly signed, but expired an hour ago.
    let key = jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes());
    let expired_claims = json!({"sub": user_id, "iat": now - 7200, "exp": now - 3600, "iss": issuer, "sid": sid});
    let expired = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &expired_claims, &key).expect("encode");
    expect_error(app.get("/api/me", Some(&expired)).await, StatusCode::UNAUTHORIZED, "unauthorized").await;

    // Correctly signed, but for another issuer, or with no exp at all.
    let foreign = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({"sub": user_id, "iat": now, "exp": now + 600, "iss": "http://other", "sid": sid}),
        &key,
    )
    .expect("encode");
    expect_error(app.get("/api/me", Some(&foreign)).await, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let forever =
        jsonwebtoken::encode(&jsonwebtoken::Header::default(), &json!({"sub": user_id, "iat": now, "iss": issuer, "sid": sid}), &key)
            .expect("encode");
    expect_error(app.get("/api/me", Some(&forever)).await, StatusCode::UNAUTHORIZED, "unauthorized").await;

    // Correctly signed, but "issued" an hour from now (jsonwebtoken alone would accept it).
    let future = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({"sub": user_id, "iat": now + 3600, "exp": now + 7200, "iss": issuer, "sid": sid}),
        &key,
    )
    .expect("encode");
    expect_error(app.get("/api/me", Some(&future)).await, StatusCode::UNAUTHORIZED, "unauthorized").await;

    // Without a session id.
    let sessionless =
        jsonwebtoken::encode(&jsonwebtoken::Header::default(), &json!({"sub": user_id, "iat": now, "exp": now + 600, "iss": issuer}), &key)
            .expect("encode");
    expect_error(app.get("/api/me", Some(&sessionless)).await, StatusCode::UNAUTHORIZED, "unauthorized").await;

    // The same claims, properly signed, do work: the failures above are about the token, not the user.
    let good = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({"sub": user_id, "iat": now, "exp": now + 600, "iss": issuer, "sid": sid}),
        &key,
    )
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

// The limiter is in memory, so this argon2-heavy story runs once, on SQLite.
#[tokio::test]
async fn logins_are_rate_limited_per_account_and_address() {
    let app = TestApp::spawn_with(ferrocast_core::testing::Engine::Sqlite, |config| {
        config.auth.login_max_failures_per_account_and_address = 3;
        config.auth.login_max_failures_per_address = 8;
    })
    .await;
    app.signup("carol").await;
    // The owner logs in from another address of this machine.
    let owner = reqwest::Client::builder().local_address(std::net::IpAddr::from([127, 0, 0, 2])).build().expect("client");
    let attempt = |client: &reqwest::Client, user: &str, password: &str| {
        client.post(app.url("/api/auth/login")).json(&json!({"username_or_email": user, "password": password})).send()
    };

    // Ten wrong passwords at once: exactly the three the account allows from here reach the check.
    let statuses: Vec<StatusCode> = futures_util::future::join_all((0..10).map(|_| attempt(&app.client, "carol", "wrong password")))
        .await
        .into_iter()
        .map(|r| r.expect("request").status())
        .collect();
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::UNAUTHORIZED).count(), 3, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count(), 7, "{statuses:?}");

    // The guesser's address is throttled for that name, even with the right password...
    let locked = attempt(&app.client, "carol", "correct horse battery").await.expect("request");
    let retry_after: u64 =
        locked.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).expect("Retry-After");
    assert!(retry_after > 0 && retry_after <= 900, "{retry_after}");
    expect_error(locked, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // ...but the owner, from her own address, is not locked out.
    assert_eq!(attempt(&owner, "carol", "correct horse battery").await.expect("request").status(), StatusCode::OK);
    // The e-mail of the throttled name is a bucket of its own: a 429 does not link the two.
    expect_error(
        attempt(&app.client, "CAROL@example.com", "wrong password").await.expect("request"),
        StatusCode::UNAUTHORIZED,
        "bad_credentials",
    )
    .await;

    // An over-long password is refused without hashing and counts as a failure, and so does a
    // name longer than any account's (nothing of it is kept).
    let long = "x".repeat(ferrocast_api::validate::PASSWORD_MAX_BYTES + 1);
    expect_error(attempt(&app.client, "dave", &long).await.expect("request"), StatusCode::UNAUTHORIZED, "bad_credentials").await;
    let long_name = "n".repeat(100_000);
    expect_error(attempt(&app.client, &long_name, "whatever1").await.expect("request"), StatusCode::UNAUTHORIZED, "bad_credentials").await;

    // The address is limited across accounts too: 3 + 1 + 2 failures so far, 2 more allowed.
    for name in ["erin", "frank"] {
        assert_eq!(attempt(&app.client, name, "wrong password").await.expect("request").status(), StatusCode::UNAUTHORIZED);
    }
    expect_error(attempt(&app.client, "a-third-name", "whatever1").await.expect("request"), StatusCode::TOO_MANY_REQUESTS, "rate_limited")
        .await;
}

#[tokio::test]
async fn signups_are_rate_limited_per_address() {
    let app = TestApp::spawn_with(ferrocast_core::testing::Engine::Sqlite, |config| config.auth.login_max_failures_per_address = 2).await;
    app.signup("first").await;
    app.signup("second").await;
    let third = app
        .post("/api/auth/signup", json!({"username": "third", "email": "third@example.com", "password": "correct horse battery"}), None)
        .await;
    assert!(third.headers().contains_key("retry-after"));
    expect_error(third, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
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

    // The channel's default visibility for new live videos is the owner's to set and see.
    let updated: Value = patch(alice.clone(), json!({"default_visibility": "private"})).await.expect("request").json().await.expect("json");
    assert_eq!(updated["default_visibility"], "private");
    let public: Value = app.get("/api/channels/alice-live", None).await.json().await.expect("json");
    assert!(public.get("default_visibility").is_none(), "{public}");
    let bad = patch(alice.clone(), json!({"default_visibility": "secret"})).await.expect("request");
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // A video with files and an unfinished upload with parts: deleting the channel removes them all.
    let channel = channels::find_by_slug(&app.test_db.db, "alice-live").await.expect("find").expect("exists");
    let new_video = NewVideo {
        channel_id: &channel.id,
        kind: VideoKind::Upload,
        status: VideoStatus::Ready,
        title: "old show",
        description: "",
        visibility: Visibility::Public,
    };
    let video = videos::create(&app.test_db.db, new_video).await.expect("video");
    let file = ferrocast_core::storage::Storage::key(&[&video.id, "low", "00000000.m4s"]);
    app.storage.put(&file, bytes::Bytes::from_static(b"segment")).await.expect("put");
    let upload: Value = app
        .post("/api/uploads", json!({"channel": "alice-live", "filename": "a.mp4", "size": 1000, "title": "a"}), Some(&alice))
        .await
        .json()
        .await
        .expect("json");
    let parts_dir = app.config.data_dir.join("uploads").join(upload["id"].as_str().expect("upload id"));
    std::fs::create_dir_all(&parts_dir).expect("parts dir");
    std::fs::write(parts_dir.join("000001.part"), b"part").expect("part");

    let delete = |token: String| app.client.delete(app.url("/api/channels/alice-live")).bearer_auth(token).send();
    expect_error(delete(eve).await.expect("request"), StatusCode::FORBIDDEN, "forbidden").await;
    assert_eq!(delete(alice.clone()).await.expect("request").status(), StatusCode::NO_CONTENT);
    expect_error(app.get("/api/channels/alice-live", None).await, StatusCode::NOT_FOUND, "not_found").await;
    assert!(app.storage.head(&file).await.is_err(), "the videos' files went with the channel");
    assert!(!parts_dir.exists(), "so did the uploads' parts");
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

    // Integrators narrow it: what is live now, one channel's.
    let ids_of = |body: Value| -> Vec<String> {
        body["items"].as_array().into_iter().flatten().filter_map(|v| v["id"].as_str().map(str::to_string)).collect()
    };
    let live_now: Value = app.get("/api/videos?live=true", None).await.json().await.expect("json");
    assert_eq!(ids_of(live_now), vec![live.id.clone()]);
    let of_channel: Value = app.get("/api/videos?channel=Alice-Live&limit=10", None).await.json().await.expect("json");
    assert_eq!(ids_of(of_channel).len(), 4, "the channel's public live and ready videos");
    let elsewhere: Value = app.get("/api/videos?channel=nobody-here", None).await.json().await.expect("json");
    assert!(ids_of(elsewhere).is_empty());
    let body =
        expect_error(app.get("/api/videos?q=one&live=true", None).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(body["error"]["field"], "q");
    expect_error(app.get("/api/videos?live=maybe", None).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    expect_error(app.get("/api/videos?limit=0", None).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    for path in ["/api/videos?limit=abc", "/api/channels/alice-live/videos?limit=-1"] {
        let body = expect_error(app.get(path, None).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(body["error"]["field"], "limit", "{path}: {body}");
    }
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
    assert_eq!(broken["status"].as_str(), Some("failed"));
    assert!(broken.get("error").is_none(), "the failure message is for the owner only: {broken}");
    let broken: Value = app.get(&format!("/api/videos/{}", failed.id), Some(&bob)).await.json().await.expect("json");
    assert!(broken.get("error").is_none(), "not for another signed-in user either: {broken}");
    let broken: Value = app.get(&format!("/api/videos/{}", failed.id), Some(&alice)).await.json().await.expect("json");
    assert_eq!((broken["status"].as_str(), broken["error"].as_str()), (Some("failed"), Some("no decodable video stream")));
    let owners: Value = app.get("/api/channels/alice-live/videos", Some(&alice)).await.json().await.expect("json");
    assert!(owners.to_string().contains("no decodable video stream"), "the owner's channel listing shows it");
    let theirs: Value = app.get("/api/channels/alice-live/videos", Some(&bob)).await.json().await.expect("json");
    assert!(!theirs.to_string().contains("no decodable video stream"));
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
        ("/api/server", "get"),
    ] {
        assert!(paths.get(path).and_then(|p| p.get(method)).is_some(), "{method} {path} documented");
    }
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
});

#[tokio::test]
async fn the_server_says_where_obs_publishes() {
    // Unset: no URL to show, so the dashboard builds one from its own host and the bound port.
    let app = TestApp::spawn_with(ferrocast_core::testing::Engine::Sqlite, |config| {
        config.rtmp_addr = "127.0.0.1:19350".parse().expect("address");
    })
    .await;
    let info: Value = app.get("/api/server", None).await.json().await.expect("json");
    assert_eq!(info, json!({"rtmp_url": null, "rtmp_port": 19350, "rtmps_port": null}));

    let app = TestApp::spawn_with(ferrocast_core::testing::Engine::Sqlite, |config| {
        config.rtmp.public_url = Some("rtmps://live.example.com:443/live/".into());
        config.rtmp.tls_addr = Some("0.0.0.0:1936".parse().expect("address"));
    })
    .await;
    let response = app.get("/api/server", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let info: Value = response.json().await.expect("json");
    assert_eq!(info["rtmp_url"], "rtmps://live.example.com:443/live", "as configured, without the trailing slash");
    assert_eq!((info["rtmp_port"].as_u64(), info["rtmps_port"].as_u64()), (Some(1935), Some(1936)));
}

#[tokio::test]
async fn readyz_reports_an_unreachable_database() {
    let app = TestApp::spawn(ferrocast_core::testing::Engine::Sqlite).await;
    app.test_db.db.close().await;
    let response = app.get("/readyz", None).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.json::<Value>().await.expect("json")["status"], "unavailable");
}

api_test!(a_live_video_is_announced_on_the_channel_only_when_public, |app: TestApp| async move {
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    app.post("/api/channels", json!({"slug": "alice-live", "title": "Alice"}), Some(&alice)).await;
    let db = &app.test_db.db;
    let channel = channels::find_by_slug(db, "alice-live").await.expect("find").expect("exists");
    let live = videos::create(
        db,
        NewVideo {
            channel_id: &channel.id,
            kind: VideoKind::Live,
            status: VideoStatus::Live,
            title: "rehearsal",
            description: "",
            visibility: Visibility::Unlisted,
        },
    )
    .await
    .expect("create");
    let live_state = |body: Value| (body["live"].as_bool(), body["live_video_id"].as_str().map(str::to_string));

    for viewer in [None, Some(bob.as_str())] {
        let seen: Value = app.get("/api/channels/alice-live", viewer).await.json().await.expect("json");
        assert_eq!(live_state(seen), (Some(false), None), "an unlisted stream is not announced");
    }
    let own: Value = app.get("/api/channels/alice-live", Some(&alice)).await.json().await.expect("json");
    assert_eq!(live_state(own), (Some(true), Some(live.id.clone())), "the owner always sees it");

    videos::update(db, &live.id, None, None, Some(Visibility::Public)).await.expect("update");
    let seen: Value = app.get("/api/channels/alice-live", None).await.json().await.expect("json");
    assert_eq!(live_state(seen), (Some(true), Some(live.id.clone())));
});

api_test!(slugs_in_paths_are_case_insensitive, |app: TestApp| async move {
    let alice = app.user("alice").await;
    app.post("/api/channels", json!({"slug": "alice-live", "title": "Alice"}), Some(&alice)).await;
    let shown: Value = app.get("/api/channels/Alice-LIVE", None).await.json().await.expect("json");
    assert_eq!(shown["slug"], "alice-live");
    let response = app.client.patch(app.url("/api/channels/ALICE-live")).bearer_auth(&alice).json(&json!({"title": "A"})).send().await;
    assert_eq!(response.expect("request").status(), StatusCode::OK);
    assert_eq!(app.get("/api/channels/ALICE-LIVE/videos", None).await.status(), StatusCode::OK);
});

api_test!(cookie_authenticated_writes_must_come_from_our_origin, |app: TestApp| async move {
    let tokens = app.login_new("alice").await;
    let access = tokens["access_token"].as_str().expect("access").to_string();
    let cookie = format!("ferrocast_access={access}");
    let create = |slug: &str, headers: &[(&str, &str)]| {
        let mut request =
            app.client.post(app.url("/api/channels")).header("cookie", &cookie).json(&json!({"slug": slug, "title": "A channel"}));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send()
    };

    for headers in [
        &[][..],
        &[("origin", "http://evil.test")][..],
        &[("origin", "https://ferrocast.test")][..],
        &[("origin", "null")][..],
        &[("sec-fetch-site", "cross-site")][..],
        &[("sec-fetch-site", "same-site"), ("origin", "http://sub.ferrocast.test")][..],
    ] {
        let response = create("refused", headers).await.expect("request");
        expect_error(response, StatusCode::FORBIDDEN, "forbidden").await;
    }
    assert!(channels::find_by_slug(&app.test_db.db, "refused").await.expect("find").is_none(), "nothing was created");

    assert_eq!(create("by-origin", &[("origin", "http://ferrocast.test")]).await.expect("request").status(), StatusCode::CREATED);
    assert_eq!(create("by-fetch-site", &[("sec-fetch-site", "same-origin")]).await.expect("request").status(), StatusCode::CREATED);
    // Reads by cookie need no origin; a bearer token never does.
    let me = app.client.get(app.url("/api/me")).header("cookie", &cookie).send().await.expect("request");
    assert_eq!(me.status(), StatusCode::OK);
    let bearer = app.post("/api/channels", json!({"slug": "by-bearer", "title": "A"}), Some(&access)).await;
    assert_eq!(bearer.status(), StatusCode::CREATED);

    // Refresh and logout by cookie follow the same rule.
    let refresh = tokens["refresh_token"].as_str().expect("refresh").to_string();
    let by_cookie = |path: &str| app.client.post(app.url(path)).header("cookie", format!("ferrocast_refresh={refresh}"));
    expect_error(by_cookie("/api/auth/refresh").send().await.expect("request"), StatusCode::FORBIDDEN, "forbidden").await;
    expect_error(
        by_cookie("/api/auth/logout").header("origin", "http://evil.test").send().await.expect("request"),
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let response = by_cookie("/api/auth/refresh").header("sec-fetch-site", "same-origin").send().await.expect("request");
    assert_eq!(response.status(), StatusCode::OK, "the refused attempts did not use the token up");
});

#[tokio::test]
async fn cookies_are_secure_when_the_public_url_is_https() {
    let app =
        TestApp::spawn_with(ferrocast_core::testing::Engine::Sqlite, |config| config.public_url = Some("https://ferrocast.test".into()))
            .await;
    app.signup("alice").await;
    let response = app.post("/api/auth/login", json!({"username_or_email": "alice", "password": "correct horse battery"}), None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookies = set_cookies(&response);
    assert_eq!(cookies.len(), 2, "{cookies:?}");
    assert!(cookies.iter().all(|c| c.contains("; Secure") && c.contains("HttpOnly")), "{cookies:?}");
}

api_test!(expired_and_unknown_refresh_tokens_are_401, |app: TestApp| async move {
    app.signup("alice").await;
    let db = &app.test_db.db;
    let user = ferrocast_core::db::users::find_credentials(db, "alice").await.expect("find").expect("exists").user;
    let (token, hash) = ferrocast_api::tokens::new_refresh_token();
    let expired_at = chrono::Utc::now() - chrono::Duration::minutes(1);
    ferrocast_core::db::refresh_tokens::insert(db, &user.id, "family-x", &hash, expired_at).await.expect("insert");
    expect_error(app.post("/api/auth/refresh", json!({"refresh_token": token}), None).await, StatusCode::UNAUTHORIZED, "unauthorized")
        .await;
    let stored = ferrocast_core::db::refresh_tokens::find_by_hash(db, &hash).await.expect("find").expect("exists");
    assert!(stored.used_at.is_none(), "an expired token is not exchanged");
    expect_error(
        app.post("/api/auth/refresh", json!({"refresh_token": "rt_never_issued"}), None).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
});

api_test!(the_database_never_holds_plain_keys_or_refresh_tokens, |app: TestApp| async move {
    let tokens = app.login_new("alice").await;
    let access = tokens["access_token"].as_str().expect("access");
    let refresh = tokens["refresh_token"].as_str().expect("refresh").to_string();
    let created: Value =
        app.post("/api/channels", json!({"slug": "alice-live", "title": "A"}), Some(access)).await.json().await.expect("json");
    let key = created["stream_key"].as_str().expect("key").to_string();
    let rotated: Value = app.post("/api/channels/alice-live/stream-key", json!({}), Some(access)).await.json().await.expect("json");
    let rotated_key = rotated["stream_key"].as_str().expect("key").to_string();
    let renewed: Value = app.post("/api/auth/refresh", json!({"refresh_token": refresh}), None).await.json().await.expect("json");
    let refresh2 = renewed["refresh_token"].as_str().expect("refresh").to_string();

    let channel_rows: Vec<(String, String, String, String, String, String)> = ferrocast_core::db::on_pool!(&app.test_db.db, |pool| {
        sqlx::query_as("SELECT id, owner_id, slug, title, description, stream_key_hash FROM channels").fetch_all(pool).await
    })
    .expect("channels");
    let token_rows: Vec<(String, String, String, String)> = ferrocast_core::db::on_pool!(&app.test_db.db, |pool| {
        sqlx::query_as("SELECT id, user_id, family_id, token_hash FROM refresh_tokens").fetch_all(pool).await
    })
    .expect("refresh tokens");
    assert_eq!((channel_rows.len(), token_rows.len()), (1, 2));
    let stored = format!("{channel_rows:?}{token_rows:?}");
    for secret in [&key, &rotated_key, &refresh, &refresh2] {
        let plain_part = secret.trim_start_matches("live_").trim_start_matches("rt_");
        assert!(!stored.contains(plain_part), "{secret} is stored in plain: {stored}");
    }
    assert_eq!(channel_rows[0].5, ferrocast_core::stream_key::hash(&rotated_key), "the hash is what is stored");
});

api_test!(a_deleted_account_cannot_write_with_its_old_token, |app: TestApp| async move {
    let token = app.user("alice").await;
    let db = &app.test_db.db;
    let user = ferrocast_core::db::users::find_credentials(db, "alice").await.expect("find").expect("exists").user;
    assert!(ferrocast_core::db::users::delete(db, &user.id).await.expect("delete"));
    expect_error(
        app.post("/api/channels", json!({"slug": "ghost-live", "title": "Ghost"}), Some(&token)).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    expect_error(app.get("/api/me", Some(&token)).await, StatusCode::UNAUTHORIZED, "unauthorized").await;
});

#[tokio::test]
async fn errors_from_outside_the_handlers_are_json_too() {
    let app = TestApp::spawn_with(ferrocast_core::testing::Engine::Sqlite, |config| {
        config.http.max_body_bytes = 1024;
        config.http.request_timeout_secs = 1;
    })
    .await;

    // The body limit on a raw body (refresh reads bytes, not JSON).
    let big = json!({"refresh_token": "x".repeat(4096)});
    expect_error(app.post("/api/auth/refresh", big.clone(), None).await, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    expect_error(app.post("/api/auth/signup", big, None).await, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;

    // A method the path does not have.
    let response = app.client.delete(app.url("/api/videos")).send().await.expect("request");
    expect_error(response, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;

    // A body that never finishes arriving runs into the request timeout.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(app.base.trim_start_matches("http://")).await.expect("connect");
    stream
        .write_all(b"POST /api/auth/signup HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"us")
        .await
        .expect("write");
    let mut response = Vec::new();
    let read = async {
        let mut chunk = [0u8; 1024];
        // Until the end of the JSON body (or of the connection).
        while !response.ends_with(b"}}") {
            let n = stream.read(&mut chunk).await.expect("read");
            if n == 0 {
                break;
            }
            response.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), read).await.expect("answered within the timeout");
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(response.to_lowercase().contains("content-type: application/json"), "{response}");
    assert!(response.contains(r#""code":"request_timeout""#), "{response}");
}

#[tokio::test]
async fn live_videos_show_playback_viewers_and_health_to_the_right_people() {
    use ferrocast_core::playback_token::PlaybackKey;
    let app = TestApp::spawn(ferrocast_core::testing::Engine::Sqlite).await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    app.post("/api/channels", json!({"slug": "alice-live", "title": "Alice"}), Some(&alice)).await;
    let db = &app.test_db.db;
    let channel = channels::find_by_slug(db, "alice-live").await.expect("find").expect("exists");
    let new =
        |title, status, visibility| NewVideo { channel_id: &channel.id, kind: VideoKind::Live, status, title, description: "", visibility };
    let live = videos::create(db, new("on air", VideoStatus::Live, Visibility::Public)).await.expect("create");
    let entry = app.live.insert(&live.id);
    entry.update_health(|h| {
        h.input_width = 1280;
        h.input_height = 720;
        h.encoder = "obs-output module".into();
        h.dropped_frames = 3;
    });
    entry.saw_viewer([10, 0, 0, 1].into(), "hls.js", std::time::Instant::now(), 4);
    entry.saw_viewer([10, 0, 0, 2].into(), "hls.js", std::time::Instant::now(), 4);

    // Until its first segments exist, the channel does not send viewers to the video.
    let starting: Value = app.get("/api/channels/alice-live", None).await.json().await.expect("json");
    assert_eq!((starting["live"].as_bool(), starting["live_video_id"].as_str()), (Some(false), None), "{starting}");
    let mine: Value = app.get("/api/channels/alice-live", Some(&alice)).await.json().await.expect("json");
    assert_eq!(mine["live_video_id"].as_str(), Some(live.id.as_str()), "the owner sees it starting");
    entry.set_playlists(ferrocast_core::live::LivePlaylists { master: "#EXTM3U\n".into(), ..Default::default() });

    let public: Value = app.get(&format!("/api/videos/{}", live.id), None).await.json().await.expect("json");
    assert_eq!(public["playback_url"], format!("http://ferrocast.test/hls/{}/master.m3u8", live.id));
    assert_eq!(public["thumbnail_url"], format!("http://ferrocast.test/hls/{}/thumbnail.jpg", live.id));
    assert_eq!(public["viewers"], 2);
    assert!(public.get("health").is_none(), "health is for the owner: {public}");
    let ch: Value = app.get("/api/channels/alice-live", None).await.json().await.expect("json");
    assert_eq!(ch["viewers"], 2);
    let owner: Value = app.get(&format!("/api/videos/{}", live.id), Some(&alice)).await.json().await.expect("json");
    assert_eq!((owner["health"]["input_width"].as_u64(), owner["health"]["dropped_frames"].as_u64()), (Some(1280), Some(3)));
    assert_eq!(owner["health"]["encoder"], "obs-output module");

    // A live video cannot be deleted from under its stream.
    let response = app.client.delete(app.url(&format!("/api/videos/{}", live.id))).bearer_auth(&alice).send().await.expect("delete");
    expect_error(response, StatusCode::CONFLICT, "invalid_state").await;

    // Unlisted and private videos come with a token that opens exactly that video; processing ones have no URL.
    let unlisted = videos::create(db, new("link only", VideoStatus::Ready, Visibility::Unlisted)).await.expect("create");
    let private = videos::create(db, new("secret", VideoStatus::Ready, Visibility::Private)).await.expect("create");
    let processing = videos::create(db, new("soon", VideoStatus::Processing, Visibility::Public)).await.expect("create");
    let key = PlaybackKey::derive(JWT_SECRET.as_bytes());
    let now = chrono::Utc::now().timestamp();
    for (video, token) in [(&unlisted, None), (&private, Some(&alice))] {
        let shown: Value = app.get(&format!("/api/videos/{}", video.id), token.map(String::as_str)).await.json().await.expect("json");
        let url = shown["playback_url"].as_str().expect("playback url");
        let token = url.split_once("?token=").map(|(_, t)| t).expect("a token");
        assert!(key.verify(&video.id, 0, token, now), "valid for its own video");
        assert!(!key.verify(&live.id, 0, token, now), "and no other");
    }
    // Turning the unlisted video private revokes every token handed out before; a title edit does not
    // bump the generation again.
    let shown: Value = app.get(&format!("/api/videos/{}", unlisted.id), None).await.json().await.expect("json");
    let old_token = shown["playback_url"].as_str().and_then(|u| u.split_once("?token=")).map(|(_, t)| t.to_string()).expect("token");
    let patch = |body: Value| app.client.patch(app.url(&format!("/api/videos/{}", unlisted.id))).bearer_auth(&alice).json(&body).send();
    assert_eq!(patch(json!({"visibility": "private"})).await.expect("patch").status(), StatusCode::OK);
    assert_eq!(patch(json!({"title": "still secret"})).await.expect("patch").status(), StatusCode::OK);
    let generation = videos::find(db, &unlisted.id).await.expect("find").expect("exists").playback_generation;
    assert_eq!(generation, 1);
    assert!(!key.verify(&unlisted.id, generation, &old_token, now), "the old token is revoked");
    let shown: Value = app.get(&format!("/api/videos/{}", unlisted.id), Some(&alice)).await.json().await.expect("json");
    let new_token = shown["playback_url"].as_str().and_then(|u| u.split_once("?token=")).map(|(_, t)| t.to_string()).expect("token");
    assert!(key.verify(&unlisted.id, generation, &new_token, now), "the owner gets a new one");
    let soon: Value = app.get(&format!("/api/videos/{}", processing.id), Some(&bob)).await.json().await.expect("json");
    assert!(soon["playback_url"].is_null());

    // Deleting a finished video removes its files.
    let file = ferrocast_core::storage::Storage::key(&[&unlisted.id, "low", "00000000.ts"]);
    app.storage.put(&file, bytes::Bytes::from_static(b"ts")).await.expect("put");
    let response = app.client.delete(app.url(&format!("/api/videos/{}", unlisted.id))).bearer_auth(&alice).send().await.expect("delete");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(app.storage.head(&file).await.is_err(), "files deleted with the video");
}

// The document is good enough to generate a client from: a validator from PyPI (installed by
// `make test`) checks it against the OpenAPI 3 specification.
#[tokio::test]
async fn the_openapi_document_passes_a_validator() {
    let app = TestApp::spawn(ferrocast_core::testing::Engine::Sqlite).await;
    let document = app.get("/api/openapi.json", None).await.text().await.expect("document");
    let path = std::env::temp_dir().join(format!("ferrocast-openapi-{}.json", ferrocast_core::ids::new_id()));
    std::fs::write(&path, &document).expect("write");
    let output = std::process::Command::new("python3")
        .args(["-m", "openapi_spec_validator"])
        .arg(&path)
        .output()
        .expect("python3 (make test installs openapi-spec-validator)");
    let _ = std::fs::remove_file(&path);
    let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the validator refused the document (run `make test` if it is missing): {said}");
    let parsed: Value = serde_json::from_str(&document).expect("JSON");
    let ids: Vec<&str> = parsed["paths"]
        .as_object()
        .expect("paths")
        .values()
        .flat_map(|item| item.as_object().into_iter().flat_map(|ops| ops.values()))
        .filter_map(|op| op["operationId"].as_str())
        .collect();
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "operation ids are unique: {ids:?}");
}

api_test!(personal_access_tokens_do_what_their_scopes_allow_and_stop_when_revoked, |app: TestApp| async move {
    let session = app.user("scripter").await;
    let other = app.user("bystander").await;
    assert_eq!(
        app.post("/api/channels", json!({"slug": "scripter-live", "title": "Live"}), Some(&session)).await.status(),
        StatusCode::CREATED
    );

    // Made by the signed-in owner; the token is shown this once.
    let request = json!({"name": "CI upload script", "scopes": ["uploads:write", "read", "read"], "expires_in_days": 30});
    let response = app.post("/api/tokens", request, Some(&session)).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.expect("json");
    let token = created["token"].as_str().expect("token").to_string();
    assert!(token.starts_with("fct_") && token.starts_with(created["token_hint"].as_str().expect("hint")), "{created}");
    assert_eq!(created["scopes"], json!(["read", "uploads:write"]));
    assert!(created["expires_at"].is_string() && created["last_used_at"].is_null(), "{created}");

    // Reading and uploading work and act as the owner.
    let me: Value = app.get("/api/me", Some(&token)).await.json().await.expect("json");
    assert_eq!(me["username"], "scripter");
    assert_eq!(app.get("/api/channels", Some(&token)).await.status(), StatusCode::OK);
    let upload = json!({"channel": "scripter-live", "filename": "a.mp4", "size": 1000, "title": "From CI"});
    assert_eq!(app.post("/api/uploads", upload, Some(&token)).await.status(), StatusCode::CREATED);

    // Everything else is refused with the reason, and nothing happens.
    let body = expect_error(
        app.post("/api/channels", json!({"slug": "sneaky", "title": "No"}), Some(&token)).await,
        StatusCode::FORBIDDEN,
        "insufficient_scope",
    )
    .await;
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("channels:write")), "{body}");
    expect_error(app.get("/api/channels/sneaky", None).await, StatusCode::NOT_FOUND, "not_found").await;
    let read_only: Value =
        app.post("/api/tokens", json!({"name": "dashboard reader", "scopes": ["read"]}), Some(&session)).await.json().await.expect("json");
    let read_only = read_only["token"].as_str().expect("token");
    assert_eq!(app.get("/api/channels", Some(read_only)).await.status(), StatusCode::OK);
    let channel = json!({"slug": "read-only-made-this", "title": "No"});
    expect_error(app.post("/api/channels", channel, Some(read_only)).await, StatusCode::FORBIDDEN, "insufficient_scope").await;
    expect_error(app.get("/api/channels/read-only-made-this", None).await, StatusCode::NOT_FOUND, "not_found").await;
    let mint = json!({"name": "another", "scopes": ["read"]});
    expect_error(app.post("/api/tokens", mint.clone(), Some(&token)).await, StatusCode::FORBIDDEN, "insufficient_scope").await;
    expect_error(app.get("/api/tokens", Some(&token)).await, StatusCode::FORBIDDEN, "insufficient_scope").await;
    // A token is only ever a bearer header: as a cookie it is no session.
    let as_cookie = app.client.get(app.url("/api/me")).header("cookie", format!("ferrocast_access={token}")).send().await.expect("request");
    expect_error(as_cookie, StatusCode::UNAUTHORIZED, "unauthorized").await;
    expect_error(app.get("/api/me", Some("fct_0000000000000000")).await, StatusCode::UNAUTHORIZED, "unauthorized").await;

    // The owner sees it (without the secret) and when it was used; nobody else does.
    let list: Value = app.get("/api/tokens", Some(&session)).await.json().await.expect("json");
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "{list}");
    assert_eq!(items[0]["name"], "CI upload script");
    assert!(items[0]["last_used_at"].is_string() && items[0].get("token").is_none() && !list.to_string().contains(&token[4..]), "{list}");
    let theirs: Value = app.get("/api/tokens", Some(&other)).await.json().await.expect("json");
    assert_eq!(theirs["items"], json!([]));

    // Bad requests say which field is wrong.
    for (request, field) in [
        (json!({"name": "x", "scopes": ["admin"]}), "scopes"),
        (json!({"name": "x", "scopes": []}), "scopes"),
        (json!({"name": " ", "scopes": ["read"]}), "name"),
        (json!({"name": "x", "scopes": ["read"], "expires_in_days": 0}), "expires_in_days"),
    ] {
        let body =
            expect_error(app.post("/api/tokens", request, Some(&session)).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
                .await;
        assert_eq!(body["error"]["field"], field, "{body}");
    }

    // Revoked by its owner only; then it stops working at once.
    let id = created["id"].as_str().expect("id");
    let revoke = |as_user: &str| app.client.delete(app.url(&format!("/api/tokens/{id}"))).bearer_auth(as_user.to_string()).send();
    expect_error(revoke(&other).await.expect("request"), StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(app.get("/api/me", Some(&token)).await.status(), StatusCode::OK);
    assert_eq!(revoke(&session).await.expect("request").status(), StatusCode::NO_CONTENT);
    expect_error(app.get("/api/me", Some(&token)).await, StatusCode::UNAUTHORIZED, "unauthorized").await;
});

api_test!(the_owner_reveals_the_current_stream_key_with_her_password, |app: TestApp| async move {
    let session = app.user("rhea").await;
    let other = app.user("theo").await;
    let created: Value =
        app.post("/api/channels", json!({"slug": "rhea-live", "title": "Rhea"}), Some(&session)).await.json().await.expect("json");
    let key = created["stream_key"].as_str().expect("key").to_string();
    let reveal = |token: String, password: &'static str| {
        let request = app.client.post(app.url("/api/channels/rhea-live/stream-key/reveal")).bearer_auth(token);
        async move { request.json(&json!({ "password": password })).send().await.expect("reveal") }
    };

    // The right password shows the same key, as often as asked; a wrong one is 401.
    for _ in 0..2 {
        let shown: Value = reveal(session.clone(), "correct horse battery").await.json().await.expect("json");
        assert_eq!(shown["stream_key"], key.as_str());
    }
    expect_error(reveal(session.clone(), "not my password").await, StatusCode::UNAUTHORIZED, "bad_credentials").await;
    // Someone else's channel, and a script's token, never see it.
    expect_error(reveal(other, "correct horse battery").await, StatusCode::FORBIDDEN, "forbidden").await;
    let token: Value = app
        .post("/api/tokens", json!({"name": "all", "scopes": ["read", "channels:write"]}), Some(&session))
        .await
        .json()
        .await
        .expect("json");
    let token = token["token"].as_str().expect("token").to_string();
    expect_error(reveal(token, "correct horse battery").await, StatusCode::FORBIDDEN, "insufficient_scope").await;

    // After a rotation the new key is the one shown.
    let rotated: Value = app.post("/api/channels/rhea-live/stream-key", json!({}), Some(&session)).await.json().await.expect("json");
    let shown: Value = reveal(session.clone(), "correct horse battery").await.json().await.expect("json");
    assert_eq!(shown["stream_key"], rotated["stream_key"]);
    assert_ne!(shown["stream_key"], key.as_str());

    // Wrong passwords count against the login limit: the sixth in a row is 429.
    for _ in 0..5 {
        expect_error(reveal(session.clone(), "guess").await, StatusCode::UNAUTHORIZED, "bad_credentials").await;
    }
    expect_error(reveal(session.clone(), "guess").await, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
});

api_test!(changing_the_password_signs_out_every_other_session, |app: TestApp| async move {
    app.signup("nora").await;
    let here = app.login("nora").await;
    let elsewhere = app.login("nora").await;
    let here_token = here["access_token"].as_str().expect("token").to_string();
    let elsewhere_token = elsewhere["access_token"].as_str().expect("token").to_string();

    let change = |current: &str, new: &str| json!({"current_password": current, "new_password": new});
    expect_error(
        app.post("/api/me/password", change("wrong", "a new long passphrase"), Some(&here_token)).await,
        StatusCode::UNAUTHORIZED,
        "bad_credentials",
    )
    .await;
    let body = expect_error(
        app.post("/api/me/password", change("correct horse battery", "Password123"), Some(&here_token)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(body["error"]["field"], "new_password", "{body}");
    assert_eq!(
        app.post("/api/me/password", change("correct horse battery", "a new long passphrase"), Some(&here_token)).await.status(),
        StatusCode::NO_CONTENT
    );

    // This session goes on; the other one is out at once, its refresh token too.
    assert_eq!(app.get("/api/me", Some(&here_token)).await.status(), StatusCode::OK);
    expect_error(app.get("/api/me", Some(&elsewhere_token)).await, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let refresh = json!({"refresh_token": elsewhere["refresh_token"]});
    expect_error(app.post("/api/auth/refresh", refresh, None).await, StatusCode::UNAUTHORIZED, "unauthorized").await;
    // The old password no longer signs in; the new one does.
    let old = app.post("/api/auth/login", json!({"username_or_email": "nora", "password": "correct horse battery"}), None).await;
    expect_error(old, StatusCode::UNAUTHORIZED, "bad_credentials").await;
    let new = app.post("/api/auth/login", json!({"username_or_email": "nora", "password": "a new long passphrase"}), None).await;
    assert_eq!(new.status(), StatusCode::OK);
    // A common password is refused at sign-up too.
    let signup = json!({"username": "lazy", "email": "lazy@example.com", "password": "qwerty123"});
    let body = expect_error(app.post("/api/auth/signup", signup, None).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(body["error"]["field"], "password", "{body}");
});
