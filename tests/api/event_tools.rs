//! `onair events export` -> `import` into an empty stream -> the read models built from the
//! imported stream equal the original ones; upcasting on read; `tail --durable`.

use std::io::Cursor;

use crate::helpers::{Services, spawn_app_with};
use onair::ops::events::{Selection, export, import};

/// Every read model, as JSON rows (popularity columns aside: they come from a timer).
const READ_MODELS: [(&str, &str); 12] = [
    (
        "rm_stages",
        "SELECT stage_arn, name, auto_scaled, is_master, tags, created_at, viewer_count, draining FROM rm_stages ORDER BY stage_arn",
    ),
    (
        "rm_viewer_seats",
        "SELECT * FROM rm_viewer_seats ORDER BY user_id",
    ),
    (
        "rm_watch_time",
        "SELECT * FROM rm_watch_time ORDER BY user_id, stage_arn",
    ),
    (
        "rm_publisher_status",
        "SELECT * FROM rm_publisher_status ORDER BY stage_arn",
    ),
    (
        "rm_rooms",
        "SELECT streamer_id, agent_id, title, announcement, cover, is_live, session_id, live_since FROM rm_rooms ORDER BY streamer_id",
    ),
    (
        "rm_followers",
        "SELECT * FROM rm_followers ORDER BY streamer_id, follower_id",
    ),
    (
        "rm_gift_records",
        "SELECT * FROM rm_gift_records ORDER BY sequence",
    ),
    (
        "rm_gift_rankings",
        "SELECT * FROM rm_gift_rankings ORDER BY streamer_id, scope, member_id",
    ),
    (
        "rm_gift_ranking_counters",
        "SELECT * FROM rm_gift_ranking_counters ORDER BY streamer_id, scope",
    ),
    (
        "rm_room_activity",
        "SELECT * FROM rm_room_activity ORDER BY streamer_id, bucket_start",
    ),
    (
        "rm_room_presence",
        "SELECT * FROM rm_room_presence ORDER BY room, connection_id",
    ),
    (
        "projection_checkpoints",
        "SELECT projection, last_sequence FROM projection_checkpoints ORDER BY projection",
    ),
];

async fn snapshot(db: &sqlx::PgPool) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for (name, sql) in READ_MODELS {
        let rows: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT row_to_json(t)::text FROM ({sql}) t"
        )))
        .fetch_all(db)
        .await
        .unwrap();
        out.push((name.to_owned(), rows.into_iter().map(|r| r.0).collect()));
    }
    out
}

#[tokio::test]
async fn an_export_imported_into_an_empty_stream_rebuilds_the_same_read_models() {
    let services = Services::start().await;
    let gw = crate::workload::quiet_gateway(&services).await;
    crate::workload::run(&gw).await;
    let original = snapshot(&gw.app.db).await;

    // Export everything, and a filtered export for good measure.
    let mut file = Vec::new();
    let exported = export(&gw.app.state.store, &Selection::default(), false, &mut file)
        .await
        .unwrap();
    assert_eq!(exported, gw.app.stream_messages().await);
    let mut gifts_only = Vec::new();
    let selection = Selection {
        types: vec!["onair.gift.sent.v2".into()],
        ..Default::default()
    };
    assert_eq!(
        export(&gw.app.state.store, &selection, false, &mut gifts_only)
            .await
            .unwrap(),
        crate::workload::GIFTS as u64
    );
    let first: serde_json::Value =
        serde_json::from_slice(gifts_only.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(first["specversion"], "1.0");
    assert_eq!(first["type"], "onair.gift.sent.v2");
    assert_eq!(first["data"]["giftID"], 1);

    // Import into an empty stream of another NATS, then build the read models from it.
    let elsewhere = Services::start().await;
    let store = onair::event_store::EventStore::connect(&elsewhere.nats.url, "/test")
        .await
        .unwrap();
    store.open_stream(1).await.unwrap();
    let imported = import(&store, &mut Cursor::new(&file)).await.unwrap();
    assert_eq!(imported, exported);
    let again = import(&store, &mut Cursor::new(&file)).await;
    assert!(again.unwrap_err().to_string().contains("empty stream"));

    let rebuilt = spawn_app_with(&elsewhere, crate::workload::quiet).await;
    rebuilt.wait_for_projections().await;
    crate::helpers::eventually(std::time::Duration::from_secs(20), || async {
        let checkpoints = snapshot(&rebuilt.db).await;
        (checkpoints.last() == original.last()).then_some(())
    })
    .await;
    assert_eq!(snapshot(&rebuilt.db).await, original);

    // A replay on the restored stream gives the same read models again.
    onair::ops::replay::run(
        &rebuilt.db,
        &rebuilt.state.store,
        onair::ops::replay::select(None).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(snapshot(&rebuilt.db).await, original);
}

/// An event of an older version in the stream is upcast when read: a `gift.sent.v1` (no `score`)
/// becomes a gift record with its score, like a v2 one.
#[tokio::test]
async fn an_old_event_version_in_the_stream_is_upcast_on_read() {
    let services = Services::start().await;
    let gw = crate::workload::quiet_gateway(&services).await;
    gw.create_member(crate::workload::STAR, "streamer").await;
    let mut headers = async_nats::HeaderMap::new();
    let id = uuid::Uuid::now_v7().to_string();
    for (k, v) in [
        ("ce-specversion", "1.0"),
        ("ce-id", id.as_str()),
        ("Nats-Msg-Id", id.as_str()),
        ("ce-source", "/onair/stage-api"),
        ("ce-type", "onair.gift.sent.v1"),
        ("ce-time", "2026-11-22T10:00:00.000Z"),
        ("ce-subject", crate::workload::STAR),
        ("ce-datacontenttype", "application/json"),
    ] {
        headers.insert(k, v);
    }
    let v1 = serde_json::json!({"giftID": 9, "giftName": "Old rose", "animeUrl": "", "points": 7,
        "count": 3, "presenter": "old@mabu.mabumaster", "presenterNickname": "Old",
        "recipient": crate::workload::STAR, "agentID": "mabu.mabumaster"});
    let subject = onair::events::subject::subject("gift", crate::workload::STAR, "sent");
    gw.app
        .state
        .store
        .jetstream()
        .publish_with_headers(subject, headers, v1.to_string().into())
        .await
        .unwrap()
        .await
        .unwrap();
    gw.app.wait_for_projections().await;
    let (score,): (i64,) =
        sqlx::query_as("SELECT score FROM rm_gift_records WHERE gift_name = 'Old rose'")
            .fetch_one(&gw.app.db)
            .await
            .unwrap();
    assert_eq!(score, 21);
}

/// `events tail --durable NAME`: a consumer that stops goes on after the last event it printed,
/// whatever was stored meanwhile; the type filter applies; a bad name is refused.
#[tokio::test]
async fn a_durable_tail_goes_on_after_the_last_event_it_printed() {
    use onair::ops::events::{Position, tail_durable};
    let services = Services::start().await;
    let app = spawn_app_with(&services, |_| {}).await;
    let store = &app.state.store;
    let from = store
        .stream()
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .state
        .last_sequence
        + 1;
    let joined = Selection {
        since: Some(Position::Sequence(from)),
        types: vec!["onair.viewer.joined.v1".into()],
        ..Default::default()
    };
    let user_ids = |lines: &[u8]| -> Vec<String> {
        lines
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| {
                let event: serde_json::Value = serde_json::from_slice(l).unwrap();
                event["data"]["userId"].as_str().unwrap().to_owned()
            })
            .collect()
    };

    for i in 0..2 {
        assert_eq!(app.viewer_token(&format!("u-{i}")).await.status, 200);
    }
    let mut first = Vec::new();
    assert_eq!(
        tail_durable(store, &joined, "etl", Some(2), &mut first)
            .await
            .unwrap(),
        2
    );
    assert_eq!(user_ids(&first), ["u-0", "u-1"]);

    // Stopped; two more viewers join meanwhile; the next run starts after u-1.
    for i in 2..4 {
        assert_eq!(app.viewer_token(&format!("u-{i}")).await.status, 200);
    }
    let mut second = Vec::new();
    tail_durable(store, &joined, "etl", Some(2), &mut second)
        .await
        .unwrap();
    assert_eq!(user_ids(&second), ["u-2", "u-3"]);

    let refused = tail_durable(store, &joined, "no spaces", Some(1), &mut Vec::new())
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("--durable"), "{refused}");
}

/// `--since/--until` with times select by each event's `ce-time` (when it happened), not by when
/// it was stored, so an imported stream gives the same selection as the original.
#[tokio::test]
async fn a_time_range_selects_by_event_time_in_the_original_and_an_imported_stream() {
    use onair::event_store::{EventStore, NewEvent};
    use onair::events::{Event, MaintenanceModeSet};
    use onair::ops::events::Position;
    use time::macros::datetime;

    let ids_of = |lines: &[u8]| -> Vec<String> {
        lines
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice::<serde_json::Value>(l).unwrap()["id"].to_string())
            .collect()
    };
    let services = Services::start().await;
    let store = EventStore::connect(&services.nats.url, "/test")
        .await
        .unwrap();
    store.open_stream(1).await.unwrap();
    // Six events that happened on the first of January to June, all stored now.
    for month in 1..=6u8 {
        let at = datetime!(2026-01-01 12:00 UTC)
            .replace_month(time::Month::try_from(month).unwrap())
            .unwrap();
        let event = Event::MaintenanceModeSet(MaintenanceModeSet {
            enabled: month % 2 == 1,
        });
        store.publish(NewEvent::new(at, event)).await.unwrap();
    }
    let spring = Selection {
        since: Some(Position::Time(datetime!(2026-02-15 00:00 UTC))),
        until: Some(Position::Time(datetime!(2026-04-01 12:00 UTC))),
        ..Default::default()
    };
    let mut selected = Vec::new();
    assert_eq!(
        export(&store, &spring, false, &mut selected).await.unwrap(),
        2
    );
    let times: Vec<String> = selected
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice::<serde_json::Value>(l).unwrap()["time"].to_string())
        .collect();
    assert_eq!(
        times,
        [
            "\"2026-03-01T12:00:00.000Z\"",
            "\"2026-04-01T12:00:00.000Z\""
        ],
        "March and April, the end inclusive"
    );

    // The same range over an import of the whole stream, elsewhere.
    let mut everything = Vec::new();
    export(&store, &Selection::default(), false, &mut everything)
        .await
        .unwrap();
    let elsewhere = Services::start().await;
    let restored = EventStore::connect(&elsewhere.nats.url, "/test")
        .await
        .unwrap();
    restored.open_stream(1).await.unwrap();
    import(&restored, &mut Cursor::new(&everything))
        .await
        .unwrap();
    let mut selected_there = Vec::new();
    export(&restored, &spring, false, &mut selected_there)
        .await
        .unwrap();
    assert_eq!(ids_of(&selected_there), ids_of(&selected));

    // A sequence range is still by sequence.
    let by_sequence = Selection {
        since: Some(Position::Sequence(2)),
        until: Some(Position::Sequence(3)),
        ..Default::default()
    };
    let mut two = Vec::new();
    assert_eq!(
        export(&store, &by_sequence, false, &mut two).await.unwrap(),
        2
    );

    // A tail (which follows new events) with `until` ends there, by sequence or by time.
    for bounded in [by_sequence, spring] {
        let mut tailed = Vec::new();
        let tail = export(&store, &bounded, true, &mut tailed);
        let written = tokio::time::timeout(std::time::Duration::from_secs(10), tail)
            .await
            .expect("a tail with --until stops at it")
            .unwrap();
        assert_eq!(written, 2, "{bounded:?}");
    }
}
