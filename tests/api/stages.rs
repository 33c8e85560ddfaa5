use std::time::Duration;

use serde_json::json;

use crate::helpers::{Services, TestApp, encode, eventually, spawn_app, spawn_app_with};

async fn delete(app: &TestApp, arn: &str) -> crate::helpers::Answer {
    app.delete(&format!("/api/stage/{}", encode(arn))).await
}

async fn put(app: &TestApp, arn: &str, body: serde_json::Value) -> crate::helpers::Answer {
    app.put(&format!("/api/stage/{}", encode(arn)), &body).await
}

#[tokio::test]
async fn a_stage_is_created_renamed_listed_and_deleted() {
    let services = Services::start().await;
    let app = spawn_app(&services).await;

    let created = app
        .post(
            "/api/stage",
            &json!({"name": "my-custom-stage", "tags": {"Purpose": "special-event"}}),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.body);
    let stage = &created.data()["stage"];
    let arn = stage["arn"].as_str().unwrap().to_owned();
    assert_eq!(stage["name"], "my-custom-stage");
    assert_eq!(stage["tags"]["Purpose"], "special-event");
    assert_eq!(stage["tags"]["ManagedBy"], "onair");
    assert_eq!(stage["tags"]["Environment"], "development");

    let renamed = put(&app, &arn, json!({"name": "updated-stage-name"})).await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    assert_eq!(renamed.data()["stage"]["name"], "updated-stage-name");
    app.wait_for_projections().await;

    let info = app.get(&format!("/api/stage/{}", encode(&arn))).await;
    assert_eq!(info.status, 200, "{}", info.body);
    assert_eq!(info.data()["stage"]["name"], "updated-stage-name");
    assert_eq!(info.data()["viewerCount"], 0);
    let master = app.get("/api/stage/master/info").await;
    assert_eq!(master.status, 200, "{}", master.body);
    assert_eq!(master.data()["isMaster"], true);
    assert_eq!(master.data()["stage"]["name"], "master-stage");
    let list = app.get("/api/stage/list").await;
    assert_eq!(list.data()["totalStages"], 2);
    assert_eq!(list.data()["nextToken"], serde_json::Value::Null);

    let deleted = delete(&app, &arn).await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert_eq!(deleted.body["success"], true);
    assert_eq!(deleted.body["message"], "Stage 已刪除");
    app.wait_for_projections().await;
    app.get(&format!("/api/stage/{}", encode(&arn)))
        .await
        .expect_error(404, "NOT_FOUND");
    delete(&app, &arn).await.expect_error(404, "NOT_FOUND");
    put(&app, &arn, json!({"name": "x"}))
        .await
        .expect_error(404, "NOT_FOUND");
}

#[tokio::test]
async fn the_master_stage_and_stages_with_viewers_cannot_be_deleted() {
    let services = Services::start().await;
    let app = spawn_app(&services).await;
    let master = app.master_stage_arn().await;
    assert_eq!(app.viewer_token("v").await.status, 200);

    delete(&app, &master).await.expect_error(403, "FORBIDDEN");

    let busy = app
        .post("/api/stage", &json!({"name": "busy"}))
        .await
        .data()["stage"]["arn"]
        .as_str()
        .unwrap()
        .to_owned();
    // Fill master to the scale-up threshold so the next viewer lands on `busy`.
    for i in 1..45 {
        assert_eq!(app.viewer_token(&format!("m{i}")).await.status, 200);
    }
    let on_busy = app.viewer_token("on-busy").await;
    assert_eq!(on_busy.data()["stageArn"], busy);
    let message = delete(&app, &busy)
        .await
        .expect_error(400, "VALIDATION_ERROR");
    assert!(message.contains("viewers"), "{message}");
}

#[tokio::test]
async fn stage_creation_stops_at_the_stage_limit_and_validates_its_input() {
    let services = Services::start().await;
    let app = spawn_app_with(&services, |s| s.max_stages = 2).await;
    let before = app.stream_messages().await;

    for (body, field) in [
        (json!({}), "name"),
        (json!({"name": ""}), "name"),
        (json!({"name": "has space"}), "name"),
        (json!({"name": "x".repeat(129)}), "name"),
        (
            json!({"name": "ok", "tags": {"k": "x".repeat(257)}}),
            "tags",
        ),
        (json!({"name": "ok", "tags": "x"}), "tags"),
        // A NUL could never be stored (Postgres text and jsonb refuse it): the stages projection
        // would stop at the event.
        (json!({"name": "ok", "tags": {"k": "a\u{0}b"}}), "tags"),
        (json!({"name": "ok", "tags": {"k\u{0}": "v"}}), "tags"),
        (json!({"name": "ok", "tags": {"k": "line\nbreak"}}), "tags"),
    ] {
        let message = app
            .post("/api/stage", &body)
            .await
            .expect_error(400, "VALIDATION_ERROR");
        assert!(message.contains(field), "{body}: {message}");
    }
    assert_eq!(app.stream_messages().await, before);

    assert_eq!(
        app.post("/api/stage", &json!({"name": "second"}))
            .await
            .status,
        200
    );
    app.post("/api/stage", &json!({"name": "third"}))
        .await
        .expect_error(503, "STAGE_LIMIT_REACHED");
}

#[tokio::test]
async fn the_stage_list_pages_with_next_token() {
    let services = Services::start().await;
    let app = spawn_app(&services).await;
    for i in 0..4 {
        assert_eq!(
            app.post("/api/stage", &json!({"name": format!("s{i}")}))
                .await
                .status,
            200
        );
    }
    app.wait_for_projections().await;

    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let path = match &token {
            Some(t) => format!("/api/stage/list?maxResults=2&nextToken={t}"),
            None => "/api/stage/list?maxResults=2".to_owned(),
        };
        let page = app.get(&path).await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert_eq!(page.data()["totalStages"], 5);
        for stage in page.data()["stages"].as_array().unwrap() {
            seen.push(stage["name"].as_str().unwrap().to_owned());
        }
        match page.data()["nextToken"].as_str() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ["master-stage", "s0", "s1", "s2", "s3"]);
    app.get("/api/stage/list?maxResults=0")
        .await
        .expect_error(400, "VALIDATION_ERROR");
    app.get("/api/stage/list?nextToken=garbage")
        .await
        .expect_error(400, "VALIDATION_ERROR");
}

/// The Stage API's scale-down with short thresholds: an auto-scaled stage with fewer than 5
/// viewers, older than the minimum age, drains (no new viewers), keeps its viewers, and is deleted
/// when the last one leaves.
#[tokio::test]
async fn an_auto_scaled_stage_drains_and_is_deleted_once_empty() {
    let services = Services::start().await;
    let app = spawn_app_with(&services, |s| {
        s.scale_up_threshold = 2;
        s.scale_down_threshold = 2;
        s.scale_down_min_age_secs = 60.0;
        s.scale_down_check_interval_ms = 100;
        s.heartbeat_timeout_secs = 600.0;
    })
    .await;
    let master = app.master_stage_arn().await;
    assert_eq!(app.viewer_token("a").await.data()["stageArn"], master);
    assert_eq!(app.viewer_token("b").await.data()["stageArn"], master);
    let auto = app.seat("c").await;
    assert_ne!(auto, master);

    // The auto-scaled stage has 1 viewer (< 2): once older than 60 s it drains, without kicking c.
    app.state.clock.advance(Duration::from_secs(61));
    let stage = eventually(Duration::from_secs(5), || async {
        let info = app.get("/api/stage/list").await;
        let stages = info.data()["stages"].as_array().unwrap().clone();
        stages
            .into_iter()
            .find(|s| s["stageArn"] == auto.as_str() && s["draining"] == true)
    })
    .await;
    assert_eq!(stage["viewerCount"], 1);
    assert_eq!(app.heartbeat("c", &auto).await.status, 200);

    // A viewer leaving master frees a seat there: the next viewer goes to master, not to the
    // draining stage.
    app.post(
        "/api/viewer/leave",
        &json!({"userId": "b", "stageArn": master}),
    )
    .await;
    assert_eq!(app.viewer_token("d").await.data()["stageArn"], master);

    app.post(
        "/api/viewer/leave",
        &json!({"userId": "c", "stageArn": auto}),
    )
    .await;
    eventually(Duration::from_secs(5), || async {
        let info = app.get(&format!("/api/stage/{}", encode(&auto))).await;
        (info.status == 404).then_some(())
    })
    .await;
    assert!(app.state.pool.read(|p| p.stage(&auto).is_none()));
}

#[tokio::test]
async fn a_draining_stage_reopens_when_the_pool_needs_its_seats() {
    let services = Services::start().await;
    let app = spawn_app_with(&services, |s| {
        s.scale_up_threshold = 2;
        s.max_viewers_per_stage = 2;
        s.max_stages = 2;
        s.scale_down_threshold = 2;
        s.scale_down_min_age_secs = 60.0;
        s.scale_down_check_interval_ms = 100;
        s.heartbeat_timeout_secs = 600.0;
    })
    .await;
    assert_eq!(app.viewer_token("a").await.status, 200);
    assert_eq!(app.viewer_token("b").await.status, 200);
    let auto = app.seat("c").await;
    app.state.clock.advance(Duration::from_secs(61));
    eventually(Duration::from_secs(5), || async {
        app.state
            .pool
            .read(|p| p.stage(&auto).is_some_and(|s| s.draining))
            .then_some(())
    })
    .await;

    // Master is full and the pool is at its stage limit: the draining stage takes the viewer.
    let d = app.viewer_token("d").await;
    assert_eq!(d.status, 200, "{}", d.body);
    assert_eq!(d.data()["stageArn"], auto);
}
