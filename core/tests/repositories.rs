//! Every repository function, on a fresh SQLite database and a fresh Postgres database.

use ferrocast_core::both_engines;
use ferrocast_core::db::videos::{NewVideo, VideoKind, VideoStatus, Visibility};
use ferrocast_core::db::{channels, refresh_tokens, users, videos};
use ferrocast_core::testing::TestDb;
use ferrocast_core::{stream_key, DbError};

async fn user(db: &ferrocast_core::Db, name: &str) -> users::User {
    users::create(db, name, &format!("{name}@example.com"), "$argon2id$fake").await.expect("create user")
}

async fn channel(db: &ferrocast_core::Db, owner: &users::User, slug: &str) -> (channels::Channel, String) {
    let key = stream_key::generate();
    let channel = channels::create(db, &owner.id, slug, "A title", "", &key.hash).await.expect("create channel");
    (channel, key.plain)
}

fn new_video<'a>(channel_id: &'a str, title: &'a str, status: VideoStatus, visibility: Visibility) -> NewVideo<'a> {
    NewVideo { channel_id, kind: VideoKind::Upload, status, title, description: "", visibility }
}

both_engines!(users_are_created_found_and_unique, |t: TestDb| async move {
    let db = &t.db;
    let alice = users::create(db, "alice", "alice@example.com", "hash-1").await.expect("create");
    assert_eq!(users::find(db, &alice.id).await.expect("find"), Some(alice.clone()));
    let by_name = users::find_credentials(db, "alice").await.expect("by name").expect("found");
    assert_eq!(by_name.password_hash, "hash-1");
    let by_email = users::find_credentials(db, "alice@example.com").await.expect("by email").expect("found");
    assert_eq!(by_email.user.id, alice.id);
    assert!(users::find_credentials(db, "nobody").await.expect("query").is_none());

    let dup_name = users::create(db, "alice", "other@example.com", "h").await.expect_err("duplicate username");
    assert!(matches!(&dup_name, DbError::Conflict(c) if c == "username"), "{dup_name:?}");
    let dup_email = users::create(db, "alice2", "alice@example.com", "h").await.expect_err("duplicate email");
    assert!(matches!(&dup_email, DbError::Conflict(c) if c == "email"), "{dup_email:?}");

    // The schema itself refuses names and emails that are not lowercase.
    let upper = users::create(db, "Carol", "carol@example.com", "h").await.expect_err("uppercase username");
    assert!(matches!(upper, DbError::Sqlx(_)), "{upper:?}");
    let upper = users::create(db, "carol", "Carol@example.com", "h").await.expect_err("uppercase email");
    assert!(matches!(upper, DbError::Sqlx(_)), "{upper:?}");

    assert!(users::delete(db, &alice.id).await.expect("delete"));
    assert!(users::find(db, &alice.id).await.expect("find").is_none());
    assert!(!users::delete(db, &alice.id).await.expect("delete again"));
});

both_engines!(only_user_facing_unique_constraints_are_conflicts, |t: TestDb| async move {
    let db = &t.db;
    let alice = user(db, "alice").await;
    let key = stream_key::generate();
    channels::create(db, &alice.id, "first", "t", "", &key.hash).await.expect("create");
    // A colliding key hash is not the caller's fault and must not name an internal column.
    let err = channels::create(db, &alice.id, "second", "t", "", &key.hash).await.expect_err("same key hash");
    assert!(matches!(&err, DbError::Sqlx(_)), "{err:?}");
    let expires = chrono::Utc::now() + chrono::Duration::days(1);
    refresh_tokens::insert(db, &alice.id, "family-1", "hash-a", expires).await.expect("insert");
    let err = refresh_tokens::insert(db, &alice.id, "family-2", "hash-a", expires).await.expect_err("same token hash");
    assert!(matches!(&err, DbError::Sqlx(_)), "{err:?}");

    // Writing on behalf of an account that no longer exists is a missing reference.
    assert!(users::delete(db, &alice.id).await.expect("delete"));
    let err = channels::create(db, &alice.id, "third", "t", "", &stream_key::generate().hash).await.expect_err("owner gone");
    assert!(matches!(&err, DbError::MissingReference), "{err:?}");
    let err = refresh_tokens::insert(db, &alice.id, "family-3", "hash-b", expires).await.expect_err("user gone");
    assert!(matches!(&err, DbError::MissingReference), "{err:?}");
});

both_engines!(refresh_tokens_are_used_once_and_revoked_by_family, |t: TestDb| async move {
    let db = &t.db;
    let alice = user(db, "alice").await;
    let expires = chrono::Utc::now() + chrono::Duration::days(1);
    refresh_tokens::insert(db, &alice.id, "family-1", "hash-a", expires).await.expect("insert a");
    refresh_tokens::insert(db, &alice.id, "family-1", "hash-b", expires).await.expect("insert b");
    refresh_tokens::insert(db, &alice.id, "family-2", "hash-c", expires).await.expect("insert c");

    let a = refresh_tokens::find_by_hash(db, "hash-a").await.expect("find").expect("exists");
    assert_eq!(a.family_id, "family-1");
    assert!(a.used_at.is_none());
    assert!(refresh_tokens::mark_used(db, &a.id).await.expect("first use"));
    assert!(!refresh_tokens::mark_used(db, &a.id).await.expect("second use"), "a token is exchanged once");

    refresh_tokens::revoke_family(db, "family-1").await.expect("revoke");
    let b = refresh_tokens::find_by_hash(db, "hash-b").await.expect("find").expect("exists");
    assert!(b.revoked_at.is_some());
    assert!(!refresh_tokens::mark_used(db, &b.id).await.expect("use revoked"));
    let c = refresh_tokens::find_by_hash(db, "hash-c").await.expect("find").expect("exists");
    assert!(c.revoked_at.is_none(), "other sessions stay valid");
    assert!(refresh_tokens::find_by_hash(db, "hash-x").await.expect("find").is_none());
    assert!(refresh_tokens::family_revoked(db, "family-1").await.expect("family-1"));
    assert!(!refresh_tokens::family_revoked(db, "family-2").await.expect("family-2"));
});

// The race between a rotation and reuse detection, replayed step by step: request A has checked
// token a and is about to insert its successor when request B, presenting a again, revokes the
// family. A's successor must not outlive the family.
both_engines!(a_rotation_that_loses_to_a_revocation_is_revoked_too, |t: TestDb| async move {
    let db = &t.db;
    let alice = user(db, "alice").await;
    let expires = chrono::Utc::now() + chrono::Duration::days(1);
    refresh_tokens::insert(db, &alice.id, "family-1", "hash-a", expires).await.expect("insert a");
    let a = refresh_tokens::find_by_hash(db, "hash-a").await.expect("find").expect("exists");
    assert!(refresh_tokens::mark_used(db, &a.id).await.expect("A exchanges a"));
    refresh_tokens::revoke_family(db, "family-1").await.expect("B detects reuse of a");
    let kept = refresh_tokens::insert_rotated(db, &alice.id, "family-1", "hash-b", expires).await.expect("A inserts b");
    assert!(!kept, "the successor of a revoked family is refused");
    let b = refresh_tokens::find_by_hash(db, "hash-b").await.expect("find").expect("exists");
    assert!(b.revoked_at.is_some(), "and revoked, so it can never be exchanged");

    // Without a revocation the rotation stands.
    refresh_tokens::insert(db, &alice.id, "family-2", "hash-c", expires).await.expect("insert c");
    assert!(refresh_tokens::insert_rotated(db, &alice.id, "family-2", "hash-d", expires).await.expect("insert d"));
    let d = refresh_tokens::find_by_hash(db, "hash-d").await.expect("find").expect("exists");
    assert!(d.revoked_at.is_none());
});

both_engines!(channels_crud_and_unique_slugs, |t: TestDb| async move {
    let db = &t.db;
    let alice = user(db, "alice").await;
    let bob = user(db, "bob").await;
    let (first, _) = channel(db, &alice, "alice-live").await;
    let (second, _) = channel(db, &alice, "alice-games").await;
    channel(db, &bob, "bob-live").await;
    assert_eq!(first.owner_username, "alice");
    assert_eq!(first.live_video_id, None);

    let err = channels::create(db, &bob.id, "alice-live", "t", "", "other-hash").await.expect_err("slug taken");
    assert!(matches!(&err, DbError::Conflict(c) if c == "slug"), "{err:?}");

    let mine: Vec<String> = channels::list_by_owner(db, &alice.id).await.expect("list").into_iter().map(|c| c.slug).collect();
    assert_eq!(mine, vec!["alice-live", "alice-games"]);
    assert_eq!(channels::find_by_slug(db, "alice-games").await.expect("find"), Some(second.clone()));

    let updated = channels::update(db, &first.id, channels::ChannelChanges { title: Some("New title"), ..Default::default() })
        .await
        .expect("update")
        .expect("exists");
    assert_eq!(updated.title, "New title");
    assert_eq!(updated.description, first.description);

    assert!(channels::delete(db, &second.id).await.expect("delete"));
    assert!(channels::find_by_slug(db, "alice-games").await.expect("find").is_none());
    assert!(!channels::delete(db, &second.id).await.expect("delete again"));
});

both_engines!(stream_key_lookup_accepts_the_current_key_only, |t: TestDb| async move {
    let db = &t.db;
    let alice = user(db, "alice").await;
    let (ch, old_key) = channel(db, &alice, "alice-live").await;
    let found = channels::find_by_stream_key(db, &old_key).await.expect("lookup").expect("current key opens the channel");
    assert_eq!(found.id, ch.id);
    assert!(channels::find_by_stream_key(db, "live_0000").await.expect("lookup").is_none());

    let rotated = stream_key::generate();
    assert!(channels::set_stream_key_hash(db, &ch.id, &rotated.hash).await.expect("rotate"));
    assert!(channels::find_by_stream_key(db, &old_key).await.expect("lookup").is_none(), "rotated key stops at once");
    assert_eq!(channels::find_by_stream_key(db, &rotated.plain).await.expect("lookup").map(|c| c.id), Some(ch.id));
});

both_engines!(videos_list_newest_first_with_cursor_and_visibility, |t: TestDb| async move {
    let db = &t.db;
    let alice = user(db, "alice").await;
    let (ch, _) = channel(db, &alice, "alice-live").await;
    let mut public_ids = Vec::new();
    for i in 0..5 {
        let v =
            videos::create(db, new_video(&ch.id, &format!("public {i}"), VideoStatus::Ready, Visibility::Public)).await.expect("create");
        public_ids.push(v.id);
    }
    let private = videos::create(db, new_video(&ch.id, "private", VideoStatus::Ready, Visibility::Private)).await.expect("create");
    let unlisted = videos::create(db, new_video(&ch.id, "unlisted", VideoStatus::Ready, Visibility::Unlisted)).await.expect("create");
    let processing =
        videos::create(db, new_video(&ch.id, "processing", VideoStatus::Processing, Visibility::Public)).await.expect("create");
    public_ids.reverse();

    let page1 = videos::list_public(db, 3, None).await.expect("page 1");
    let page2 = videos::list_public(db, 3, Some(&page1[2].id)).await.expect("page 2");
    let listed: Vec<String> = page1.iter().chain(&page2).map(|v| v.id.clone()).collect();
    assert_eq!(listed, public_ids, "public ready videos, newest first, across pages");

    let everything = videos::list_by_channel(db, &ch.id, true, 100, None).await.expect("owner list");
    assert_eq!(everything.len(), 8);
    assert_eq!(everything[0].id, processing.id);
    let public_only = videos::list_by_channel(db, &ch.id, false, 100, None).await.expect("public list");
    assert_eq!(public_only.len(), 5);
    assert!(public_only.iter().all(|v| v.id != private.id && v.id != unlisted.id));

    let found = videos::find(db, &private.id).await.expect("find").expect("exists");
    assert_eq!(
        (found.channel_slug.as_str(), found.owner_id.as_str(), found.visibility),
        ("alice-live", alice.id.as_str(), Visibility::Private)
    );
});

both_engines!(videos_update_finish_delete_and_mark_the_channel_live, |t: TestDb| async move {
    let db = &t.db;
    let alice = user(db, "alice").await;
    let (ch, _) = channel(db, &alice, "alice-live").await;
    let live =
        videos::create(db, NewVideo { kind: VideoKind::Live, ..new_video(&ch.id, "Live now", VideoStatus::Live, Visibility::Public) })
            .await
            .expect("create");
    let ch_now = channels::find_by_id(db, &ch.id).await.expect("find").expect("exists");
    assert_eq!(ch_now.live_video_id.as_deref(), Some(live.id.as_str()));
    assert_eq!(ch_now.public_live_video_id.as_deref(), Some(live.id.as_str()));

    let edited = videos::update(db, &live.id, None, Some("about"), Some(Visibility::Unlisted)).await.expect("update").expect("exists");
    assert_eq!((edited.title.as_str(), edited.description.as_str(), edited.visibility), ("Live now", "about", Visibility::Unlisted));
    let ch_now = channels::find_by_slug(db, "alice-live").await.expect("find").expect("exists");
    assert_eq!(ch_now.live_video_id.as_deref(), Some(live.id.as_str()), "the owner still sees it");
    assert_eq!(ch_now.public_live_video_id, None, "an unlisted live video is not public");

    videos::finish(db, &live.id, VideoStatus::Ready, Some(20_500), None).await.expect("finish");
    let done = videos::find(db, &live.id).await.expect("find").expect("exists");
    assert_eq!((done.status, done.duration_ms, done.ended_at.is_some()), (VideoStatus::Ready, Some(20_500), true));
    assert!(channels::find_by_id(db, &ch.id).await.expect("find").expect("exists").live_video_id.is_none());

    let failed = videos::create(db, new_video(&ch.id, "upload", VideoStatus::Processing, Visibility::Public)).await.expect("create");
    videos::finish(db, &failed.id, VideoStatus::Failed, None, Some("no decodable video stream")).await.expect("fail");
    let failed = videos::find(db, &failed.id).await.expect("find").expect("exists");
    assert_eq!(failed.error.as_deref(), Some("no decodable video stream"));

    assert!(videos::delete(db, &failed.id).await.expect("delete"));
    assert!(videos::find(db, &failed.id).await.expect("find").is_none());
    // Deleting a channel takes its videos with it.
    channels::delete(db, &ch.id).await.expect("delete channel");
    assert!(videos::find(db, &live.id).await.expect("find").is_none());
});

both_engines!(ping_answers, |t: TestDb| async move {
    t.db.ping().await.expect("ping");
});

both_engines!(recordings_keep_renditions_and_segments_in_order, |t: TestDb| async move {
    use ferrocast_core::db::recordings::{self, RenditionRow, SegmentRow};
    let db = &t.db;
    let alice = user(db, "alice").await;
    let (ch, _) = channel(db, &alice, "alice-live").await;
    let live = videos::create(db, NewVideo { kind: VideoKind::Live, ..new_video(&ch.id, "Live", VideoStatus::Live, Visibility::Public) })
        .await
        .expect("create");
    assert_eq!(videos::live_ids(db).await.expect("live ids"), vec![live.id.clone()]);

    let rung = |name: &str, height: i64| RenditionRow {
        video_id: live.id.clone(),
        name: name.into(),
        width: height * 16 / 9,
        height,
        frame_rate_milli: 30_000,
        codecs: "avc1.64001f,mp4a.40.2".into(),
        video_bitrate_kbps: 800,
    };
    recordings::add_rendition(db, &rung("high", 720)).await.expect("add");
    recordings::add_rendition(db, &rung("low", 360)).await.expect("add");
    recordings::add_rendition(db, &RenditionRow { width: 1, ..rung("low", 360) }).await.expect("a reconnect keeps the first");
    let names: Vec<(String, i64)> =
        recordings::renditions(db, &live.id).await.expect("list").into_iter().map(|r| (r.name, r.width)).collect();
    assert_eq!(names, vec![("low".to_string(), 640), ("high".to_string(), 1280)]);

    for sequence in [1_i64, 0, 2] {
        let segment = SegmentRow {
            video_id: live.id.clone(),
            rendition: "low".into(),
            sequence,
            uri: format!("{sequence:08}.ts"),
            duration_us: 2_000_000,
            bytes: 1000 + sequence,
            discontinuity: sequence == 2,
            program_date_time: "2026-11-22T12:00:00.000Z".into(),
        };
        recordings::add_segment(db, &segment).await.expect("add segment");
    }
    let listed = recordings::segments(db, &live.id, "low").await.expect("segments");
    assert_eq!(listed.iter().map(|s| s.sequence).collect::<Vec<_>>(), vec![0, 1, 2]);
    assert!(listed[2].discontinuity && !listed[0].discontinuity);
    assert!(recordings::segments(db, &live.id, "high").await.expect("segments").is_empty());

    videos::finish(db, &live.id, VideoStatus::Ready, Some(6000), None).await.expect("finish");
    assert!(videos::live_ids(db).await.expect("live ids").is_empty());
    videos::delete(db, &live.id).await.expect("delete");
    assert!(recordings::renditions(db, &live.id).await.expect("list").is_empty(), "rows go with their video");
});
