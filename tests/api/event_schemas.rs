//! The published event schemas: the committed files are what the Rust types generate, and a
//! consumer outside Rust (Python, nats-py + jsonschema) validates every event of a mixed workload
//! against them.

use std::time::Duration;

use serde_json::json;

use crate::chat_support::ChatClient;
use crate::gateway_support::Gateway;
use crate::helpers::Services;

const STAR: &str = "star@mabu.mabumaster";
const BEN: &str = "ben@mabu.mabumaster";
const ROOM: &str = "chatroomSystem-chatroom-mabu.mabumaster-star@mabu.mabumaster";

#[test]
fn the_committed_schemas_match_the_code() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi");
    for (path, generated) in onair::events::schema::files() {
        let committed = std::fs::read_to_string(format!("{dir}/{path}")).unwrap_or_default();
        assert!(
            committed == generated,
            "openapi/{path} is out of date: run `cargo run -- schemas`"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_consumer_validates_every_event_against_the_published_schemas() {
    let services = Services::start().await;
    let gw = Gateway::start_with(&services, |s| {
        s.popularity_interval_ms = 100;
        s.heartbeat_timeout_secs = 1.0;
        s.expiry_check_interval_ms = 100;
    })
    .await;
    // A mixed workload: stages and viewers, members, rooms, follows, gifts, chat, moderation.
    let star = gw.member(STAR, "streamer").await;
    let ben = gw.member(BEN, "member").await;
    gw.set_gift(1, "Rose", 10).await;
    gw.action("setRoomInfo", json!({"title": "t"}), Some(&star))
        .await;
    gw.action("startStream", json!({}), Some(&star)).await;
    gw.action("follow", json!({"streamerID": STAR}), Some(&ben))
        .await;
    gw.send_gift(&ben, BEN, STAR, 1, 2).await;
    let master = gw.app.master_stage_arn().await;
    gw.app.seat("v1").await;
    gw.app.heartbeat("v1", &master).await;
    gw.app.seat("v2").await;
    gw.app
        .post("/api/token/publisher", &json!({"userId": "host"}))
        .await;
    let mut chat = ChatClient::verified(&gw.app.address, ROOM, BEN, &ben).await;
    chat.chat(ROOM, BEN, "hi").await;
    let mut streamer = ChatClient::connect(&gw.app.address, "").await;
    streamer.room_add(ROOM).await;
    streamer.verify(STAR, ROOM, &star).await;
    streamer
        .action(
            "mute",
            json!({"memberID": BEN, "chatroom": ROOM, "seconds": 5}),
        )
        .await;
    gw.backoffice("SetMaintenance", json!({"enabled": false}))
        .await;
    gw.backoffice("BroadcastSystemMessage", json!({"message": "hello all"}))
        .await;
    gw.action("endStream", json!({}), Some(&star)).await;
    drop(chat);
    gw.notice_of_type("popularity", 1).await;
    // v2 never beats: past the 1 s heartbeat timeout by the app's clock, the expiry reactor
    // (every 100 ms) publishes its `viewer.expired`.
    gw.app.state.clock.advance(Duration::from_millis(1500));
    let store = gw.app.state.store.clone();
    crate::helpers::eventually(Duration::from_secs(10), || {
        let store = store.clone();
        async move {
            let subject = onair::events::subject::subject("pool", "default", "viewer_expired");
            store
                .last_on_subject(&subject)
                .await
                .ok()
                .flatten()
                .map(|_| ())
        }
    })
    .await;

    let mut command = crate::helpers::python();
    command
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/seed/validate_events.py"
        ))
        .arg(&services.nats.url)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi"));
    let stdout =
        crate::helpers::run_to_success(command, Duration::from_secs(60), "the Python consumer")
            .await;
    for event_type in [
        "onair.stage.created.v1",
        "onair.viewer.joined.v1",
        "onair.viewer.heartbeat_recorded.v1",
        "onair.viewer.expired.v1",
        "onair.publisher.token_issued.v1",
        "onair.member.registered.v1",
        "onair.gift.sent.v2",
        "onair.follow.followed.v1",
        "onair.broadcast.ended.v1",
        "onair.notice.published_to_room.v1",
        "onair.notice.published_to_followers.v1",
        "onair.notice.published_to_all_rooms.v1",
        "onair.chat.message_posted.v1",
        "onair.moderation.member_moderated.v1",
        "onair.system.maintenance_mode_set.v1",
        "onair.popularity.changed.v1",
    ] {
        assert!(
            stdout.contains(&format!("ok {event_type} ")),
            "{event_type} not seen:\n{stdout}"
        );
    }
}
