//! `onair audit`: after a mixed workload the rebuilt read models equal the live ones; a tampered
//! live row is reported.

use serde_json::json;

use crate::chat_support::ChatClient;
use crate::gateway_support::Gateway;
use crate::helpers::Services;

const STAR: &str = "star@mabu.mabumaster";
const BEN: &str = "ben@mabu.mabumaster";
const ROOM: &str = "chatroomSystem-chatroom-mabu.mabumaster-star@mabu.mabumaster";

#[tokio::test]
async fn an_audit_of_a_mixed_workload_finds_no_difference_until_a_row_is_tampered_with() {
    let services = Services::start().await;
    let gw = Gateway::start_with(&services, |s| {
        s.heartbeat_timeout_secs = 3600.0;
        s.popularity_interval_ms = 3_600_000;
    })
    .await;
    let star = gw.member(STAR, "streamer").await;
    let ben = gw.member(BEN, "member").await;
    gw.set_gift(1, "Rose", 10).await;
    gw.action("startStream", json!({}), Some(&star)).await;
    gw.action("follow", json!({"streamerID": STAR}), Some(&ben))
        .await;
    for count in 1..=4 {
        gw.send_gift(&ben, BEN, STAR, 1, count).await;
    }
    let master = gw.app.master_stage_arn().await;
    for i in 0..6 {
        gw.app.seat(&format!("a{i}")).await;
    }
    gw.app.heartbeat("a0", &master).await;
    gw.app
        .post(
            "/api/viewer/leave",
            &json!({"userId": "a1", "stageArn": master}),
        )
        .await;
    let mut chat = ChatClient::verified(&gw.app.address, ROOM, BEN, &ben).await;
    chat.chat(ROOM, BEN, "hello").await;
    let mut streamer = ChatClient::verified(&gw.app.address, ROOM, STAR, &star).await;
    streamer
        .action(
            "mute",
            json!({"memberID": BEN, "chatroom": ROOM, "seconds": 60}),
        )
        .await;
    gw.action("endStream", json!({}), Some(&star)).await;
    gw.notice_of_type("giftRank", 4).await;
    gw.app.wait_for_projections().await;

    let store = &gw.app.state.store;
    let report = onair::audit::run(&gw.app.db, store, false).await.unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.events, gw.app.stream_messages().await);

    // Tamper with one live row: the audit names the table and both versions of the row.
    sqlx::query("UPDATE rm_gift_records SET score = score + 1 WHERE gift_count = 2")
        .execute(&gw.app.db)
        .await
        .unwrap();
    let report = onair::audit::run(&gw.app.db, store, false).await.unwrap();
    assert!(!report.is_clean());
    assert_eq!(report.differences.len(), 1, "{report:?}");
    let difference = &report.differences[0];
    assert_eq!(difference.table, "rm_gift_records");
    assert_eq!(difference.count, 2);
    assert!(
        difference.only_live[0].contains("\"score\": 21"),
        "{difference:?}"
    );
    assert!(
        difference.only_rebuilt[0].contains("\"score\": 20"),
        "{difference:?}"
    );

    let (scratch,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM information_schema.schemata WHERE schema_name LIKE 'onair_audit_%'",
    )
    .fetch_one(&gw.app.db)
    .await
    .unwrap();
    assert_eq!(scratch, 0, "scratch schemas are dropped");
}
