//! Search over videos (`db::search`), on a fresh SQLite database and a fresh Postgres database, and
//! the same data searched on both at once: the same videos in the same order.

use ferrocast_core::both_engines;
use ferrocast_core::db::search::{self, SearchQuery, MAX_CANDIDATES};
use ferrocast_core::db::videos::{NewVideo, Video, VideoKind, VideoStatus, Visibility};
use ferrocast_core::db::{channels, execute, users, videos};
use ferrocast_core::testing::TestDb;
use ferrocast_core::{stream_key, Db};

async fn channel(db: &Db, owner: &str, slug: &str, title: &str) -> channels::Channel {
    let user = users::create(db, owner, &format!("{owner}@example.com"), "$argon2id$fake").await.expect("create user");
    channels::create(db, &user.id, slug, title, "", &stream_key::generate().hash).await.expect("create channel")
}

async fn video(db: &Db, channel: &channels::Channel, title: &str, description: &str, status: VideoStatus, visibility: Visibility) -> Video {
    let new = NewVideo { channel_id: &channel.id, kind: VideoKind::Upload, status, title, description, visibility };
    videos::create(db, new).await.expect("create video")
}

async fn ready(db: &Db, channel: &channels::Channel, title: &str, description: &str) -> Video {
    video(db, channel, title, description, VideoStatus::Ready, Visibility::Public).await
}

/// The titles `q` finds, best first.
async fn titles(db: &Db, q: &str) -> Vec<String> {
    let query = SearchQuery::parse(q).unwrap_or_else(|e| panic!("{q:?}: {e}"));
    search::search_public(db, &query, 100).await.unwrap_or_else(|e| panic!("{q:?}: {e}")).into_iter().map(|v| v.title).collect()
}

/// A small catalogue. In creation order (so a later one is newer and wins ties):
/// on "Monsoon Kitchen" (slug spice-route): Cooking with Keerti, Sourdough bread;
/// on "Alice Plays" (slug alice-plays): Speedrun night (live), Gardening basics (mentions Keerti),
/// F1 race recap, Crème BRÛLÉE at home, and four that must never be found: private, unlisted,
/// processing and failed.
struct Catalogue {
    kitchen: channels::Channel,
    cooking: Video,
    hidden: Vec<Video>,
}

async fn catalogue(db: &Db) -> Catalogue {
    let kitchen = channel(db, "keerti", "spice-route", "Monsoon Kitchen").await;
    let alice = channel(db, "alice", "alice-plays", "Alice Plays").await;
    let cooking = ready(db, &kitchen, "Cooking with Keerti", "Fresh pasta from scratch").await;
    ready(db, &kitchen, "Sourdough bread", "A slow weekend bake").await;
    video(db, &alice, "Speedrun night", "Any percent, no glitches", VideoStatus::Live, Visibility::Public).await;
    ready(db, &alice, "Gardening basics", "Tomatoes and herbs, with Keerti").await;
    ready(db, &alice, "F1 race recap", "Lap by lap").await;
    ready(db, &alice, "Crème BRÛLÉE at home", "Custard and caramel").await;
    let mut hidden = Vec::new();
    for (title, status, visibility) in [
        ("Keerti cooking in private", VideoStatus::Ready, Visibility::Private),
        ("Keerti cooking unlisted", VideoStatus::Ready, Visibility::Unlisted),
        ("Keerti cooking processing", VideoStatus::Processing, Visibility::Public),
        ("Keerti cooking failed", VideoStatus::Failed, Visibility::Public),
    ] {
        hidden.push(video(db, &alice, title, "pasta", status, visibility).await);
    }
    Catalogue { kitchen, cooking, hidden }
}

both_engines!(a_typo_or_two_still_finds_the_video, |t: TestDb| async move {
    let db = &t.db;
    catalogue(db).await;
    // Exact in the title first, then the description that mentions her.
    assert_eq!(titles(db, "keerti").await, ["Cooking with Keerti", "Gardening basics"]);
    assert_eq!(titles(db, "KEERTI").await, ["Cooking with Keerti", "Gardening basics"]);
    // Two letters swapped, a letter missing, two typos in a longer word.
    assert_eq!(titles(db, "keetri").await, ["Cooking with Keerti", "Gardening basics"]);
    assert_eq!(titles(db, "cookng").await, ["Cooking with Keerti"]);
    assert_eq!(titles(db, "kooknig").await, ["Cooking with Keerti"]);
    assert_eq!(titles(db, "gardning basix").await, ["Gardening basics"]);
    // Search as you type: a prefix, and a prefix with a typo.
    assert_eq!(titles(db, "sourd").await, ["Sourdough bread"]);
    assert_eq!(titles(db, "suordo").await, ["Sourdough bread"]);
    // Beyond the budget is another word: sharing letters is not enough.
    assert!(titles(db, "lowq").await.is_empty(), "two typos from \"slow\", in four letters");
    assert!(titles(db, "ast").await.is_empty(), "three letters inside \"pasta\" are not a word");
    assert!(titles(db, "baking").await.is_empty());
    // Non-ASCII letters fold case too, in the query and in the videos.
    assert_eq!(titles(db, "crème brûlée").await, ["Crème BRÛLÉE at home"]);
    assert_eq!(titles(db, "CRÈME").await, ["Crème BRÛLÉE at home"]);
});

both_engines!(channel_title_slug_and_description_match, |t: TestDb| async move {
    let db = &t.db;
    catalogue(db).await;
    // Every video of the channel; equal scores, so newest first.
    assert_eq!(titles(db, "monsoon").await, ["Sourdough bread", "Cooking with Keerti"]);
    assert_eq!(titles(db, "monsoom kitchen").await, ["Sourdough bread", "Cooking with Keerti"]);
    assert_eq!(titles(db, "spice route").await, ["Sourdough bread", "Cooking with Keerti"]);
    assert_eq!(titles(db, "pasta").await, ["Cooking with Keerti"]);
    assert_eq!(titles(db, "tomatos").await, ["Gardening basics"]);
    // Live videos are searchable like ready ones.
    assert_eq!(titles(db, "glitches").await, ["Speedrun night"]);
    // Words an FTS engine would read as operators are plain words here.
    assert_eq!(titles(db, "and").await, ["Crème BRÛLÉE at home", "Gardening basics"]);
    assert_eq!(titles(db, "not keerti").await, ["Cooking with Keerti", "Gardening basics"]);
    // Words too short for a three-letter sequence still match exactly or as a prefix.
    assert_eq!(titles(db, "f1").await, ["F1 race recap"]);
    assert_eq!(titles(db, "f1 recap").await, ["F1 race recap"]);
    assert_eq!(titles(db, "at").await, ["Crème BRÛLÉE at home"]);
});

both_engines!(ranking_prefers_more_words_then_title_then_newest, |t: TestDb| async move {
    let db = &t.db;
    let c = catalogue(db).await;
    let plain = channel(db, "bob", "bobs-channel", "Bob").await;
    ready(db, &plain, "Keerti", "").await;
    ready(db, &plain, "Keerti and friends", "").await;
    ready(db, &plain, "Cooking tonight", "").await;
    ready(db, &plain, "Tonight", "cooking with keerti").await;
    // All three words in the title; all three in the description; two of three in the description.
    // "Cooking tonight" and "Keerti" match one word of three: not enough.
    assert_eq!(titles(db, "cooking with keerti").await, ["Cooking with Keerti", "Tonight", "Gardening basics"]);
    // Equal title matches: newest first; then the descriptions, newest first.
    assert_eq!(titles(db, "keerti").await, ["Keerti and friends", "Keerti", "Cooking with Keerti", "Tonight", "Gardening basics"]);
    // What comes back is the same video `find` returns.
    let query = SearchQuery::parse("pasta").expect("query");
    let found = search::search_public(db, &query, 10).await.expect("search");
    assert_eq!(found, vec![videos::find(db, &c.cooking.id).await.expect("find").expect("exists")]);
    // `limit` keeps the best.
    let query = SearchQuery::parse("keerti").expect("query");
    let top: Vec<String> = search::search_public(db, &query, 2).await.expect("search").into_iter().map(|v| v.title).collect();
    assert_eq!(top, ["Keerti and friends", "Keerti"]);
});

both_engines!(private_unlisted_processing_and_failed_videos_are_never_found, |t: TestDb| async move {
    let db = &t.db;
    let c = catalogue(db).await;
    for q in ["keerti", "cooking", "pasta", "private", "unlisted", "processing", "failed"] {
        let found = titles(db, q).await;
        assert!(c.hidden.iter().all(|h| !found.contains(&h.title)), "{q}: {found:?}");
    }
    // It is the visibility and status that keep them out: made public and ready, they are found.
    let private = &c.hidden[0];
    videos::update(db, &private.id, None, None, Some(Visibility::Public)).await.expect("publish");
    assert_eq!(titles(db, "private").await, [private.title.as_str()]);
    let processing = &c.hidden[2];
    videos::finish(db, &processing.id, VideoStatus::Ready, Some(1000), None).await.expect("finish");
    assert_eq!(titles(db, "processing").await, [processing.title.as_str()]);
});

both_engines!(special_characters_are_words_apart_never_syntax, |t: TestDb| async move {
    let db = &t.db;
    catalogue(db).await;
    for q in [r#""*^:()%_'"#, "%", "_", "%%", "*", "\"", "'", "\\", "-", "^", ":", "()", "--", ";", "NEAR()"] {
        let found = titles(db, q).await;
        // NEAR is a word; nothing is called "near".
        assert!(found.is_empty(), "{q:?} found {found:?}");
    }
    // With syntax around them, words find what they find alone: nothing is a wildcard, an
    // operator, a column filter or a string delimiter.
    let nasty = [
        r#""keerti"#,
        r#"keerti" OR "x"#,
        "keerti*",
        "^keerti",
        "title:keerti",
        "keerti AND",
        "NOT pasta",
        "kee%rti",
        "k_erti",
        "(keerti",
        "keerti'; DROP TABLE videos; --",
        "pasta' OR '1'='1",
        "%pasta%",
        "past_",
        "NEAR(keerti pasta)",
        "keerti\\",
        "{title description}: pasta",
        "crème + brûlée",
    ];
    for q in nasty {
        let plain: String = q.chars().map(|c| if c.is_alphanumeric() { c } else { ' ' }).collect();
        assert_eq!(titles(db, q).await, titles(db, &plain).await, "{q:?} is {plain:?}");
    }
    assert_eq!(titles(db, "keerti'; --").await, ["Cooking with Keerti", "Gardening basics"]);
    assert_eq!(videos::list_public(db, 100, None).await.expect("still there").len(), 6);
});

both_engines!(the_index_follows_edits_renames_and_deletes, |t: TestDb| async move {
    let db = &t.db;
    let c = catalogue(db).await;
    // A video's new title is found, its old one no longer.
    videos::update(db, &c.cooking.id, Some("Biryani with Keerti"), Some("Rice, slowly"), None).await.expect("edit");
    assert_eq!(titles(db, "biryani").await, ["Biryani with Keerti"]);
    assert!(titles(db, "cooking").await.is_empty());
    assert!(titles(db, "pasta").await.is_empty());
    // A channel's new title and slug are found for all its videos, the old ones no longer.
    channels::update(db, &c.kitchen.id, channels::ChannelChanges { title: Some("Tandoor Nights"), ..Default::default() })
        .await
        .expect("rename");
    assert_eq!(titles(db, "tandoor").await, ["Sourdough bread", "Biryani with Keerti"]);
    assert!(titles(db, "monsoon").await.is_empty());
    let sql = "UPDATE channels SET slug = 'hearth-stone' WHERE id = $1";
    execute!(db, sqlx::query(sql).bind(&c.kitchen.id)).expect("new slug");
    assert_eq!(titles(db, "hearth stone").await, ["Sourdough bread", "Biryani with Keerti"]);
    assert!(titles(db, "spice").await.is_empty());
    // Deleted videos, one by one or with their channel, are gone from the index too.
    assert!(videos::delete(db, &c.cooking.id).await.expect("delete"));
    assert!(titles(db, "biryani").await.is_empty());
    assert!(channels::delete(db, &c.kitchen.id).await.expect("delete channel"));
    assert!(titles(db, "sourdough").await.is_empty());
    if let Db::Sqlite(pool) = db {
        let indexed: i64 = sqlx::query_scalar("SELECT count(*) FROM video_search").fetch_one(pool).await.expect("count");
        let keys: i64 = sqlx::query_scalar("SELECT count(*) FROM video_search_keys").fetch_one(pool).await.expect("count");
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM videos").fetch_one(pool).await.expect("count");
        assert_eq!((indexed, keys), (rows, rows), "one index row per video, no leftovers");
    }
});

// More candidates than the cap: the ones sharing the most of the query's letter sequences are
// kept, so an old, exact match is not crowded out by many newer partial ones.
both_engines!(the_candidate_cap_keeps_the_closest_matches, |t: TestDb| async move {
    let db = &t.db;
    let kitchen = channel(db, "keerti", "spice-route", "Monsoon Kitchen").await;
    ready(db, &kitchen, "Cooking with Keerti", "").await;
    for i in 0..MAX_CANDIDATES + 20 {
        ready(db, &kitchen, &format!("Cooking show {i}"), "").await;
    }
    let found = titles(db, "cooking keerti").await;
    assert_eq!(found.first().map(String::as_str), Some("Cooking with Keerti"), "{found:?}");
    assert_eq!(found.len(), 100, "the limit");
    let query = SearchQuery::parse("cooking").expect("query");
    let all = search::search_public(db, &query, u32::MAX).await.expect("search");
    assert_eq!(all.len(), MAX_CANDIDATES as usize, "at most the cap is ranked");
});

/// Each line a query; every one is run on both engines over the same catalogue.
const QUERIES: &[&str] = &[
    "keerti",
    "keetri",
    "kerti",
    "cookng",
    "cooking with keerti",
    "kooknig",
    "monsoon",
    "spice",
    "alice",
    "plays",
    "pasta",
    "tomatoes herbs",
    "and",
    "with",
    "f1",
    "at",
    "a",
    "crème",
    "CREME",
    "speedrun",
    "spedrun nite",
    "night",
    "bread bake",
    "sourdoug",
    "glitch",
    "percent",
    "lap",
    "recap race",
    "the",
    "r",
    r#""*^:()%_'"#,
];

#[tokio::test]
async fn both_engines_give_the_same_results_in_the_same_order() {
    let sqlite = TestDb::sqlite().await;
    let postgres = TestDb::postgres().await;
    for db in [&sqlite.db, &postgres.db] {
        catalogue(db).await;
        let plain = channel(db, "bob", "bobs-channel", "Bob").await;
        ready(db, &plain, "Keerti", "").await;
        ready(db, &plain, "Keerti and friends", "").await;
        ready(db, &plain, "Tonight", "cooking with keerti").await;
        ready(db, &plain, "Kerti's café", "Night owls").await;
    }
    let mut found_something = 0;
    for q in QUERIES {
        let (on_sqlite, on_postgres) = (titles(&sqlite.db, q).await, titles(&postgres.db, q).await);
        assert_eq!(on_sqlite, on_postgres, "{q:?}");
        found_something += usize::from(!on_sqlite.is_empty());
    }
    assert!(found_something > QUERIES.len() / 2, "the queries find things: {found_something}");
}
