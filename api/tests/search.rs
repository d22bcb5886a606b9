//! `GET /api/videos?q=…` through the real router, on SQLite and on Postgres.

// Shared with api.rs; this file uses only part of it.
#[allow(dead_code)]
mod common;

use common::{expect_error, TestApp};
use ferrocast_core::db::channels;
use ferrocast_core::db::search::MAX_QUERY_CHARS;
use ferrocast_core::db::videos::{self, NewVideo, VideoKind, VideoStatus, Visibility};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};

async fn search(app: &TestApp, params: &[(&str, &str)], token: Option<&str>) -> Response {
    let mut request = app.client.get(app.url("/api/videos")).query(params);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("request")
}

/// The titles of a successful search, best first; the page is always the last one.
async fn titles(app: &TestApp, params: &[(&str, &str)]) -> Vec<String> {
    let response = search(app, params, None).await;
    assert_eq!(response.status(), StatusCode::OK, "{params:?}");
    let page: Value = response.json().await.expect("json");
    assert!(page["next_cursor"].is_null(), "{page}");
    page["items"].as_array().expect("items").iter().map(|v| v["title"].as_str().expect("title").to_string()).collect()
}

api_test!(search_finds_public_videos_despite_typos, |app: TestApp| async move {
    let keerti = app.user("keerti").await;
    let response = app.post("/api/channels", json!({"slug": "spice-route", "title": "Monsoon Kitchen"}), Some(&keerti)).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let db = &app.test_db.db;
    let channel = channels::find_by_slug(db, "spice-route").await.expect("find").expect("exists");
    let make = |title: &'static str, description: &'static str, status: VideoStatus, visibility: Visibility| {
        let channel_id = channel.id.clone();
        async move {
            let new = NewVideo { channel_id: &channel_id, kind: VideoKind::Upload, status, title, description, visibility };
            videos::create(db, new).await.expect("create")
        }
    };
    let cooking = make("Cooking with Keerti", "Fresh pasta", VideoStatus::Ready, Visibility::Public).await;
    make("Sourdough bread", "A slow bake", VideoStatus::Ready, Visibility::Public).await;
    make("Keerti cooking in private", "", VideoStatus::Ready, Visibility::Private).await;
    make("Keerti cooking unlisted", "", VideoStatus::Ready, Visibility::Unlisted).await;
    make("Keerti cooking soon", "", VideoStatus::Processing, Visibility::Public).await;

    // The examples from the issue: letters swapped, a letter missing.
    assert_eq!(titles(&app, &[("q", "keetri")]).await, ["Cooking with Keerti"]);
    assert_eq!(titles(&app, &[("q", "cookng")]).await, ["Cooking with Keerti"]);
    // By channel: every video on it, newest first.
    assert_eq!(titles(&app, &[("q", "Monsoon")]).await, ["Sourdough bread", "Cooking with Keerti"]);
    assert_eq!(titles(&app, &[("q", "  pasta ")]).await, ["Cooking with Keerti"]);
    assert_eq!(titles(&app, &[("q", "Monsoon"), ("limit", "1")]).await, ["Sourdough bread"]);
    // Only public, watchable videos, also for their owner.
    let response = search(&app, &[("q", "keerti cooking")], Some(&keerti)).await;
    let page: Value = response.json().await.expect("json");
    let items = page["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{page}");
    // Each hit is the same video the listing shows.
    let listed: Value = app.get(&format!("/api/videos/{}", cooking.id), Some(&keerti)).await.json().await.expect("json");
    assert_eq!(items[0], listed);
    // Search syntax of any engine is just punctuation here.
    for q in [r#""*^:()%_'"#, "%", "_", "*", "NEAR(", "\" OR 1=1 --", "'; DROP TABLE videos; --"] {
        assert!(titles(&app, &[("q", q)]).await.is_empty(), "{q:?}");
    }
    assert_eq!(titles(&app, &[("q", r#"keerti" OR "*"#)]).await, ["Cooking with Keerti"]);
    // Without q, the listing is what it was.
    let listing: Value = app.get("/api/videos", None).await.json().await.expect("json");
    assert_eq!(listing["items"].as_array().map(Vec::len), Some(2));
});

api_test!(search_rejects_empty_and_long_queries_and_cursors, |app: TestApp| async move {
    for q in ["", "   ", "\t\n"] {
        let body = expect_error(search(&app, &[("q", q)], None).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(body["error"]["field"], "q", "{body}");
    }
    let longest = "é".repeat(MAX_QUERY_CHARS);
    assert!(titles(&app, &[("q", &longest)]).await.is_empty());
    let too_long = format!("{longest}x");
    let body = expect_error(search(&app, &[("q", &too_long)], None).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(body["error"]["field"], "q", "{body}");
    let cursor = ferrocast_core::ids::new_id();
    let body = expect_error(
        search(&app, &[("q", "keerti"), ("cursor", &cursor)], None).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(body["error"]["field"], "cursor", "{body}");
    let body =
        expect_error(search(&app, &[("q", "keerti"), ("limit", "0")], None).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
            .await;
    assert_eq!(body["error"]["field"], "limit", "{body}");

    // The OpenAPI document describes q and the listing filters next to the page parameters.
    let doc: Value = app.get("/api/openapi.json", None).await.json().await.expect("json");
    let params = doc["paths"]["/api/videos"]["get"]["parameters"].as_array().expect("parameters").clone();
    let names: Vec<&str> = params.iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(names, ["cursor", "limit", "q", "live", "channel"]);
    let q = params.iter().find(|p| p["name"] == "q").expect("q");
    assert_eq!((q["in"].as_str(), q["schema"]["maxLength"].as_u64()), (Some("query"), Some(MAX_QUERY_CHARS as u64)), "{q}");
});
