//! Read-your-writes (docs/api.md#read-your-writes): a read with `X-Min-Sequence` from a write's
//! answer always sees that write; a read model that cannot get there in time answers 503
//! `READ_MODEL_BEHIND`.

use serde_json::{Value, json};

use crate::gateway_support::Gateway;
use crate::helpers::{Answer, Services, TestApp, encode};

const STAR: &str = "star@mabu.mabumaster";

/// `GET path` with `X-Min-Sequence: sequence` and the API key.
pub(crate) async fn get_at(app: &TestApp, path: &str, sequence: u64) -> Answer {
    let response = app
        .client
        .get(format!("{}{path}", app.address))
        .header("x-api-key", &app.api_key)
        .header("X-Min-Sequence", sequence.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        body,
    }
}

#[tokio::test]
async fn a_read_after_a_write_with_its_sequence_sees_the_write() {
    let services = Services::start().await;
    let gw = Gateway::start(&services).await;
    let star = gw.member(STAR, "streamer").await;
    let master = gw.app.master_stage_arn().await;

    for i in 0..25 {
        // Stage API: a new viewer is in the list read at the token's sequence.
        let token = gw.app.viewer_token(&format!("ryw-{i}")).await;
        assert_eq!(token.status, 200, "{}", token.body);
        let list = get_at(
            &gw.app,
            &format!("/api/viewer/list/{}", encode(&master)),
            token.event_sequence(),
        )
        .await;
        assert_eq!(list.status, 200, "{}", list.body);
        let users: Vec<&str> = list.data()["viewers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["userId"].as_str().unwrap())
            .collect();
        assert!(
            users.contains(&format!("ryw-{i}").as_str()),
            "round {i}: {users:?}"
        );

        // Client gateway: a room's new title is in getRoomInfo read at setRoomInfo's sequence.
        let title = format!("Show {i}");
        let set = gw
            .action("setRoomInfo", json!({"title": title}), Some(&star))
            .await;
        assert_eq!(set.status, 200, "{}", set.body);
        let info = gw
            .app
            .client
            .post(format!("{}/api/action/getRoomInfo", gw.app.address))
            .header("X-Min-Sequence", set.event_sequence().to_string())
            .json(&json!({"query": json!({"streamerID": STAR}).to_string()}))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap();
        assert_eq!(info["data"]["title"], title, "round {i}");
    }
}

#[tokio::test]
async fn every_write_answer_carries_its_sequence() {
    let services = Services::start().await;
    let gw = Gateway::start(&services).await;
    let created = gw
        .backoffice(
            "CreateMember",
            json!({"memberID": "a@b.c", "password": "long-enough", "nickname": "A"}),
        )
        .await;
    let edited = gw
        .backoffice("EditMember", json!({"memberID": "a@b.c", "vip": "2"}))
        .await;
    let gift = gw
        .backoffice("SetGift", json!({"giftID": 1, "name": "Rose", "points": 1}))
        .await;
    let maintenance = gw
        .backoffice("SetMaintenance", json!({"enabled": false}))
        .await;
    let sequences: Vec<u64> = [&created, &edited, &gift, &maintenance]
        .iter()
        .map(|a| {
            assert_eq!(a.status, 200, "{}", a.body);
            a.event_sequence()
        })
        .collect();
    assert!(sequences.windows(2).all(|w| w[0] < w[1]), "{sequences:?}");
}

#[tokio::test]
async fn a_sequence_the_read_models_cannot_reach_in_time_is_a_clear_503() {
    let services = Services::start().await;
    let gw = Gateway::start_with(&services, |s| s.min_sequence_wait_ms = 200).await;
    let projectors_before = gw.app.stream_messages().await;
    // Stop the projectors: the next write cannot be read back.
    gw.app.projectors.kill();
    let token = gw.app.viewer_token("late").await;
    assert!(token.event_sequence() > projectors_before);
    let answer = get_at(&gw.app, "/api/stats", token.event_sequence()).await;
    let message = answer.expect_error(503, "READ_MODEL_BEHIND");
    assert!(message.contains("200 ms"), "{message}");

    let bad = gw
        .app
        .client
        .get(format!("{}/api/stats", gw.app.address))
        .header("x-api-key", &gw.app.api_key)
        .header("X-Min-Sequence", "soon")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

/// A read waits only for the read models its route uses: with the projectors stopped, a gift's
/// sequence holds up a room read (503 naming the room read models) but not a Stage API read,
/// whose read models have nothing of it to apply.
#[tokio::test]
async fn a_read_waits_only_for_the_read_models_its_route_uses() {
    const BEN: &str = "ben@mabu.mabumaster";
    let services = Services::start().await;
    let gw = Gateway::start_with(&services, |s| s.min_sequence_wait_ms = 300).await;
    gw.member(STAR, "streamer").await;
    let ben = gw.member(BEN, "member").await;
    gw.set_gift(1, "Rose", 10).await;
    gw.app.wait_for_projections().await;
    gw.app.projectors.kill();
    let gift = gw.send_gift(&ben, BEN, STAR, 1, 1).await;
    assert_eq!(gift.status, 200, "{}", gift.body);
    let sequence = gift.event_sequence().to_string();

    let stats = get_at(&gw.app, "/api/stats", gift.event_sequence()).await;
    assert_eq!(stats.status, 200, "{}", stats.body);
    let room = gw
        .app
        .post_public_with(
            "/api/action/getRoomInfo",
            &json!({"query": json!({"streamerID": STAR}).to_string()}),
            ("X-Min-Sequence", &sequence),
        )
        .await;
    let message = room.expect_error(503, "READ_MODEL_BEHIND");
    assert!(message.contains("gifts"), "{message}");
    assert!(!message.contains("viewers"), "{message}");
}
