use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{Services, TestApp, eventually, spawn_app};

fn stage_update(stage: &str, event_name: &str, at: &str) -> Value {
    json!({
        "version": "0", "id": "db65fc17-0000", "detail-type": "IVS Stage Update",
        "source": "aws.ivs", "account": "123456789012", "time": at, "region": "us-east-1",
        "resources": [stage],
        "detail": {"session_id": "st-1CVugbu2cf2n8", "event_name": event_name,
                   "event_time": at, "user_id": "", "participant_id": "03JY4smU3eXc"}
    })
}

async fn is_live(app: &TestApp) -> bool {
    app.get("/api/stats/publisher").await.data()["isLive"]
        .as_bool()
        .unwrap()
}

#[tokio::test]
async fn eventbridge_publish_events_drive_is_publisher_live_and_late_ones_change_nothing() {
    let services = Services::start().await;
    let app = spawn_app(&services).await;
    let master = app.master_stage_arn().await;
    assert!(!is_live(&app).await);

    let published = app
        .post(
            "/api/ingest/eventbridge",
            &stage_update(&master, "Participant Published", "2025-04-23T06:36:53Z"),
        )
        .await;
    assert_eq!(published.status, 200, "{}", published.body);
    assert_eq!(published.data()["eventType"], "onair.stream.started.v1");
    eventually(Duration::from_secs(5), || async {
        is_live(&app).await.then_some(())
    })
    .await;
    assert_eq!(app.get("/api/stats").await.data()["isPublisherLive"], true);

    // An Unpublished from before the Published arrives late: still live.
    let late = app
        .post(
            "/api/ingest/eventbridge",
            &stage_update(&master, "Participant Unpublished", "2025-04-23T06:30:00Z"),
        )
        .await;
    assert_eq!(late.status, 200);
    app.wait_for_projections().await;
    assert!(is_live(&app).await);

    app.post(
        "/api/ingest/eventbridge",
        &stage_update(&master, "Participant Unpublished", "2025-04-23T07:00:00Z"),
    )
    .await;
    eventually(Duration::from_secs(5), || async {
        (!is_live(&app).await).then_some(())
    })
    .await;
}

#[tokio::test]
async fn other_stages_and_events_are_acknowledged_and_ignored_and_bad_ones_refused() {
    let services = Services::start().await;
    let app = spawn_app(&services).await;
    let master = app.master_stage_arn().await;
    let before = app.stream_messages().await;

    let other_stage = app
        .post(
            "/api/ingest/eventbridge",
            &stage_update(
                "arn:aws:ivs:us-east-1:123456789012:stage/other",
                "Participant Published",
                "2025-04-23T06:36:53Z",
            ),
        )
        .await;
    assert_eq!(other_stage.status, 202, "{}", other_stage.body);
    assert_eq!(other_stage.data()["accepted"], false);
    let other_event = app
        .post(
            "/api/ingest/eventbridge",
            &stage_update(&master, "Participant Publish Error", "2025-04-23T06:36:53Z"),
        )
        .await;
    assert_eq!(other_event.status, 202);

    let mut wrong_source = stage_update(&master, "Participant Published", "2025-04-23T06:36:53Z");
    wrong_source["source"] = json!("aws.s3");
    let message = app
        .post("/api/ingest/eventbridge", &wrong_source)
        .await
        .expect_error(400, "VALIDATION_ERROR");
    assert!(message.contains("source"), "{message}");
    let mut no_detail = stage_update(&master, "Participant Published", "2025-04-23T06:36:53Z");
    no_detail.as_object_mut().unwrap().remove("detail");
    let message = app
        .post("/api/ingest/eventbridge", &no_detail)
        .await
        .expect_error(400, "VALIDATION_ERROR");
    assert!(message.contains("detail"), "{message}");

    assert_eq!(app.stream_messages().await, before);
}
