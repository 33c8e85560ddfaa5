//! `setRoomInfo` is a guarded command: it decides on the room's info as the stream has it and
//! publishes under the sequence it saw, so concurrent edits of one room never lose a change.

use serde_json::{Value, json};

use crate::gateway_support::Gateway;
use crate::helpers::Services;

const STAR: &str = "star@mabu.mabumaster";

/// `getRoomInfo` read once the rooms projection has reached `sequence`.
async fn room_at(gw: &Gateway, sequence: u64) -> Value {
    let answer = gw
        .app
        .client
        .post(format!("{}/api/action/getRoomInfo", gw.app.address))
        .header("X-Min-Sequence", sequence.to_string())
        .json(&json!({"query": json!({"streamerID": STAR}).to_string()}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    answer.json::<Value>().await.unwrap()["data"].clone()
}

#[tokio::test]
async fn concurrent_edits_of_different_fields_of_one_room_are_both_kept() {
    let services = Services::start().await;
    let gw = Gateway::start(&services).await;
    let star = gw.member(STAR, "streamer").await;

    for round in 0..8 {
        let title = format!("Show {round}");
        let announcement = format!("Welcome, round {round}");
        let cover = format!("https://cdn.example.com/{round}.png");
        // Three requests at once, each setting one field of the same room.
        let (a, b, c) = tokio::join!(
            gw.action("setRoomInfo", json!({"title": title}), Some(&star)),
            gw.action(
                "setRoomInfo",
                json!({"announcement": announcement}),
                Some(&star)
            ),
            gw.action("setRoomInfo", json!({"cover": cover}), Some(&star)),
        );
        for answer in [&a, &b, &c] {
            assert_eq!(answer.status, 200, "round {round}: {}", answer.body);
        }
        // The answer of the one stored last carries every field.
        let last = [&a, &b, &c]
            .into_iter()
            .max_by_key(|answer| answer.event_sequence())
            .unwrap();
        assert_eq!(last.data()["title"], title, "round {round}");
        assert_eq!(last.data()["announcement"], announcement, "round {round}");
        assert_eq!(last.data()["cover"], cover, "round {round}");

        let room = room_at(&gw, last.event_sequence()).await;
        assert_eq!(room["title"], title, "round {round}: {room}");
        assert_eq!(room["announcement"], announcement, "round {round}: {room}");
        assert_eq!(room["cover"], cover, "round {round}: {room}");
    }
}

#[tokio::test]
async fn a_room_edit_keeps_the_fields_the_stream_has_even_before_the_read_model_catches_up() {
    let services = Services::start().await;
    // No projectors: the rooms read model never moves, so whatever the edits keep came from
    // the stream.
    let gw = Gateway::start_with(&services, |s| {
        s.roles = vec![onair::server::config::ServeRole::Api]
    })
    .await;
    let star = gw.member(STAR, "streamer").await;
    let first = gw
        .action("setRoomInfo", json!({"title": "Kept"}), Some(&star))
        .await;
    assert_eq!(first.status, 200, "{}", first.body);
    let second = gw
        .action(
            "setRoomInfo",
            json!({"announcement": "Also kept"}),
            Some(&star),
        )
        .await;
    assert_eq!(second.status, 200, "{}", second.body);
    assert_eq!(second.data()["title"], "Kept");
    assert_eq!(second.data()["announcement"], "Also kept");
    assert!(second.event_sequence() > first.event_sequence());
}
