//! The room read models rebuild from the stream to the same rows, and the rebuild publishes no
//! second chat notice (docs/design.md#invariants, 2 and 3).

use serde_json::json;

use crate::gateway_support::Gateway;
use crate::helpers::Services;

const STAR: &str = "star@mabu.mabumaster";
const MOON: &str = "moon@mabu.mabumaster";

const TABLES: [(&str, &str); 6] = [
    ("rm_rooms", "streamer_id"),
    ("rm_followers", "streamer_id, follower_id"),
    ("rm_gift_records", "sequence"),
    ("rm_gift_rankings", "streamer_id, scope, member_id"),
    ("rm_gift_ranking_counters", "streamer_id, scope"),
    ("rm_room_activity", "streamer_id, bucket_start"),
];

async fn snapshot(db: &sqlx::PgPool) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for (table, order) in TABLES {
        let rows: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT row_to_json(t)::text FROM {table} t ORDER BY {order}"
        )))
        .fetch_all(db)
        .await
        .unwrap();
        out.push((table.to_owned(), rows.into_iter().map(|r| r.0).collect()));
    }
    out
}

async fn projection_checkpoints(db: &sqlx::PgPool) -> Vec<(String, i64)> {
    sqlx::query_as(
        "SELECT projection, last_sequence FROM projection_checkpoints
         WHERE projection IN ('rooms', 'followers', 'gifts', 'room_activity') ORDER BY projection",
    )
    .fetch_all(db)
    .await
    .unwrap()
}

#[tokio::test]
async fn room_read_models_rebuild_to_the_same_rows_without_repeating_notices() {
    let services = Services::start().await;
    // No popularity ticks during the test: its rows must stay still between the two snapshots.
    let gw = Gateway::start_with(&services, |s| s.popularity_interval_ms = 3_600_000).await;
    let star = gw.member(STAR, "streamer").await;
    let moon = gw.member(MOON, "streamer").await;
    let mut members = Vec::new();
    for i in 0..6 {
        let id = format!("m{i}@mabu.mabumaster");
        let token = gw.member(&id, "member").await;
        members.push((id, token));
    }
    gw.set_gift(1, "Rose", 10).await;
    gw.set_gift(2, "Rocket", 500).await;
    gw.action("setRoomInfo", json!({"title": "Star show"}), Some(&star))
        .await;
    gw.action("startStream", json!({}), Some(&star)).await;
    gw.action("startStream", json!({}), Some(&moon)).await;
    for (round, (id, token)) in members.iter().enumerate() {
        gw.action("follow", json!({"streamerID": STAR}), Some(token))
            .await;
        if round % 2 == 0 {
            gw.action("follow", json!({"streamerID": MOON}), Some(token))
                .await;
            gw.action("unfollow", json!({"streamerID": STAR}), Some(token))
                .await;
        }
        for gift in 0..5 {
            let a = gw
                .send_gift(
                    token,
                    id,
                    [STAR, MOON][gift % 2],
                    1 + (round % 2) as i64,
                    1 + gift as i64,
                )
                .await;
            assert_eq!(a.status, 200, "{}", a.body);
        }
        if round == 3 {
            gw.action("endStream", json!({}), Some(&star)).await;
            gw.action("startStream", json!({}), Some(&star)).await;
        }
    }
    gw.app.wait_for_projections().await;
    gw.notice_of_type("giftRank", 30).await;
    let notices_before = gw.notices().await.len();
    let before = snapshot(&gw.app.db).await;
    let checkpoints = projection_checkpoints(&gw.app.db).await;
    assert!(
        before.iter().all(|(_, rows)| !rows.is_empty()),
        "{before:?}"
    );

    // Drop the room read models and rebuild them from the stream.
    gw.app.projectors.kill();
    for (table, _) in TABLES {
        sqlx::query(sqlx::AssertSqlSafe(format!("TRUNCATE {table}")))
            .execute(&gw.app.db)
            .await
            .unwrap();
    }
    sqlx::query(
        "DELETE FROM projection_checkpoints
         WHERE projection IN ('rooms', 'followers', 'gifts', 'room_activity')",
    )
    .execute(&gw.app.db)
    .await
    .unwrap();
    gw.app.projectors.start();
    crate::helpers::eventually(std::time::Duration::from_secs(20), || async {
        (projection_checkpoints(&gw.app.db).await == checkpoints).then_some(())
    })
    .await;

    let after = snapshot(&gw.app.db).await;
    assert_eq!(after, before);
    assert_eq!(
        gw.notices().await.len(),
        notices_before,
        "the rebuild's notices were dropped as duplicates"
    );
}
