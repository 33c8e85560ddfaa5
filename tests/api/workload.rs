//! A mixed workload over every part of the product, for the tests that compare read models:
//! stages and viewers (seats, a heartbeat, a leave), members, live status, a follow, gifts, chat
//! and moderation. Timers are set so nothing happens on its own meanwhile.

use serde_json::json;

use crate::chat_support::ChatClient;
use crate::gateway_support::Gateway;
use crate::helpers::Services;

pub const STAR: &str = "star@mabu.mabumaster";
pub const BEN: &str = "ben@mabu.mabumaster";
pub const ROOM: &str = "chatroomSystem-chatroom-mabu.mabumaster-star@mabu.mabumaster";
/// Gifts the workload sends (counts 1 to `GIFTS`).
pub const GIFTS: i64 = 4;

/// Settings with no expiry and no popularity tick during a test.
pub fn quiet(s: &mut onair::config::ServeSettings) {
    s.heartbeat_timeout_secs = 3600.0;
    s.popularity_interval_ms = 3_600_000;
}

/// A gateway with quiet timers.
pub async fn quiet_gateway(services: &Services) -> Gateway {
    Gateway::start_with(services, quiet).await
}

/// Runs the workload and waits until the read models have applied it.
pub async fn run(gw: &Gateway) {
    let star = gw.member(STAR, "streamer").await;
    let ben = gw.member(BEN, "member").await;
    gw.set_gift(1, "Rose", 10).await;
    gw.action("startStream", json!({}), Some(&star)).await;
    gw.action("follow", json!({"streamerID": STAR}), Some(&ben))
        .await;
    for count in 1..=GIFTS {
        assert_eq!(gw.send_gift(&ben, BEN, STAR, 1, count).await.status, 200);
    }
    for i in 0..6 {
        gw.app.seat(&format!("viewer-{i}")).await;
    }
    let master = gw.app.master_stage_arn().await;
    gw.app.heartbeat("viewer-0", &master).await;
    gw.app
        .post(
            "/api/viewer/leave",
            &json!({"userId": "viewer-1", "stageArn": master}),
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
    gw.notice_of_type("giftRank", GIFTS as usize).await;
    gw.app.wait_for_projections().await;
}
