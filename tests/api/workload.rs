//! A mixed workload over every part of the product, for the tests that compare read models:
//! stage changes (create, rename, delete), viewers (seats, a heartbeat, a leave), members, live
//! status, a follow, gifts, chat and moderation. Timers are set so nothing happens on its own meanwhile.

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
pub fn quiet(s: &mut onair::server::config::ServeSettings) {
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
    let created = gw
        .app
        .post("/api/stage", &json!({"name": "extra-stage"}))
        .await;
    assert_eq!(created.status, 200, "{}", created.body);
    let extra = created.data()["stage"]["arn"].as_str().unwrap().to_owned();
    let path = format!("/api/stage/{}", crate::helpers::encode(&extra));
    assert_eq!(
        gw.app
            .put(&path, &json!({"name": "renamed-stage"}))
            .await
            .status,
        200
    );
    let spare = gw
        .app
        .post("/api/stage", &json!({"name": "spare-stage"}))
        .await;
    let spare = spare.data()["stage"]["arn"].as_str().unwrap().to_owned();
    let deleted = gw
        .app
        .delete(&format!("/api/stage/{}", crate::helpers::encode(&spare)))
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
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
    // Close the sockets and wait for their leaves, so nothing is published after this returns.
    drop(chat);
    drop(streamer);
    gw.notice_of_type("leaveRoom", 2).await;
    gw.notice_of_type("giftRank", GIFTS as usize).await;
    gw.app.wait_for_projections().await;
}
