use serde_json::json;

use crate::helpers::{Services, encode, spawn_app};

#[tokio::test]
async fn a_heartbeat_is_recorded_for_a_seated_viewer() {
    let services = Services::start().await;
    let app = spawn_app(&services).await;
    let stage = app.seat("viewer-001").await;

    let answer = app.heartbeat("viewer-001", &stage).await;

    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.data()["userId"], "viewer-001");
    assert_eq!(answer.data()["stageArn"], stage);
    let beat = answer.data()["lastHeartbeat"].as_str().unwrap().to_owned();
    app.wait_for_projections().await;
    let list = app
        .get(&format!("/api/viewer/list/{}", encode(&stage)))
        .await;
    assert_eq!(list.data()["viewers"][0]["lastHeartbeat"], beat);
}

#[tokio::test]
async fn a_heartbeat_from_someone_without_a_seat_is_not_found_and_stores_nothing() {
    let services = Services::start().await;
    let app = spawn_app(&services).await;
    let stage = app.master_stage_arn().await;
    let before = app.stream_messages().await;

    let answer = app.heartbeat("stranger", &stage).await;
    answer.expect_error(404, "NOT_FOUND");
    let answer = app
        .heartbeat("stranger", "arn:aws:ivs:us-east-1:000000000000:stage/nope")
        .await;
    answer.expect_error(404, "NOT_FOUND");

    assert_eq!(app.stream_messages().await, before);
}

#[tokio::test]
async fn leaving_frees_the_seat_and_answers_the_watch_duration() {
    let services = Services::start().await;
    let app = spawn_app(&services).await;
    let stage = app.seat("viewer-001").await;
    // The watch duration is measured by the app's clock: a second and a bit passes at once.
    app.state
        .clock
        .advance(std::time::Duration::from_millis(1100));

    let answer = app
        .post(
            "/api/viewer/leave",
            &json!({"userId": "viewer-001", "stageArn": stage}),
        )
        .await;

    assert_eq!(answer.status, 200, "{}", answer.body);
    let seconds = answer.data()["watchDuration"].as_u64().unwrap();
    assert!((1..=3).contains(&seconds), "{seconds}");
    assert_eq!(
        answer.data()["watchDurationFormatted"],
        format!("0分 {seconds}秒")
    );
    app.wait_for_projections().await;
    let list = app
        .get(&format!("/api/viewer/list/{}", encode(&stage)))
        .await;
    assert_eq!(list.data()["totalViewers"], 0);
    let duration = app
        .get(&format!(
            "/api/viewer/duration?userId=viewer-001&stageArn={}",
            encode(&stage)
        ))
        .await;
    assert_eq!(duration.status, 200, "{}", duration.body);
    assert_eq!(duration.data()["watchDuration"], seconds);
    let again = app
        .post(
            "/api/viewer/leave",
            &json!({"userId": "viewer-001", "stageArn": stage}),
        )
        .await;
    again.expect_error(404, "NOT_FOUND");
}

#[tokio::test]
async fn the_viewer_list_has_the_seeds_shape() {
    let services = Services::start().await;
    let app = spawn_app(&services).await;
    let first = app.viewer_token("viewer-001").await;
    let _ = app.viewer_token("viewer-002").await;
    let stage = first.data()["stageArn"].as_str().unwrap().to_owned();
    app.wait_for_projections().await;

    let list = app
        .get(&format!("/api/viewer/list/{}", encode(&stage)))
        .await;

    assert_eq!(list.status, 200, "{}", list.body);
    assert_eq!(list.data()["stageArn"], stage);
    assert_eq!(list.data()["totalViewers"], 2);
    let viewer = &list.data()["viewers"][0];
    assert_eq!(viewer["userId"], "viewer-001");
    assert_eq!(viewer["participantId"], first.data()["participantId"]);
    assert!(viewer["joinedAt"].as_str().unwrap().ends_with('Z'));
    assert!(list.data()["timestamp"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn user_ids_with_subject_syntax_and_unicode_work_end_to_end() {
    let services = Services::start().await;
    let app = spawn_app(&services).await;

    for user in ["a.b", "evil.>", "*", "with space", "觀眾小華", "🎉.*.>"] {
        let token = app.viewer_token(user).await;
        assert_eq!(token.status, 200, "{user}: {}", token.body);
        let stage = token.data()["stageArn"].as_str().unwrap().to_owned();
        let beat = app.heartbeat(user, &stage).await;
        assert_eq!(beat.status, 200, "{user}: {}", beat.body);
    }
    app.wait_for_projections().await;
    let stage = app.master_stage_arn().await;
    let list = app
        .get(&format!("/api/viewer/list/{}", encode(&stage)))
        .await;
    assert_eq!(list.data()["totalViewers"], 6);
    let duration = app
        .get(&format!(
            "/api/viewer/duration?userId={}&stageArn={}",
            encode("evil.>"),
            encode(&stage)
        ))
        .await;
    assert_eq!(duration.status, 200, "{}", duration.body);
    assert_eq!(duration.data()["userId"], "evil.>");
}

#[tokio::test]
async fn an_unknown_stage_is_not_found_on_every_stage_route() {
    let services = Services::start().await;
    let app = spawn_app(&services).await;
    let unknown = encode("arn:aws:ivs:us-east-1:000000000000:stage/unknown123");

    app.get(&format!("/api/viewer/list/{unknown}"))
        .await
        .expect_error(404, "NOT_FOUND");
    app.get(&format!("/api/stats/stages/{unknown}"))
        .await
        .expect_error(404, "NOT_FOUND");
    app.get(&format!("/api/viewer/duration?userId=u&stageArn={unknown}"))
        .await
        .expect_error(404, "NOT_FOUND");
}
