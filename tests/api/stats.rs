use crate::helpers::{Services, encode, spawn_app};

#[tokio::test]
async fn stats_sum_the_viewers_of_every_stage() {
    let services = Services::start().await;
    let app = spawn_app(&services).await;
    for i in 0..3 {
        assert_eq!(app.viewer_token(&format!("v{i}")).await.status, 200);
    }
    app.wait_for_projections().await;
    let master = app.master_stage_arn().await;

    let stats = app.get("/api/stats").await;
    assert_eq!(stats.status, 200, "{}", stats.body);
    let data = stats.data();
    assert_eq!(data["totalViewers"], 3);
    assert_eq!(data["activeStages"], 1);
    assert_eq!(data["isPublisherLive"], false);
    assert_eq!(data["stages"][0]["stageArn"], master);
    assert_eq!(data["stages"][0]["stageName"], "master-stage");
    assert_eq!(data["stages"][0]["viewerCount"], 3);
    assert_eq!(data["stages"][0]["autoScaled"], false);

    let viewers = app.get("/api/stats/viewers").await;
    assert_eq!(viewers.data()["totalViewers"], 3);
    assert_eq!(viewers.data()["calculatedFrom"], "real-time sum");

    let stages = app.get("/api/stats/stages").await;
    assert_eq!(stages.data()["totalStages"], 1);
    assert_eq!(stages.data()["stages"][0]["tags"]["ManagedBy"], "onair");
    assert_eq!(
        stages.data()["stages"][0]["tags"]["Environment"],
        "development"
    );

    let one = app
        .get(&format!("/api/stats/stages/{}", encode(&master)))
        .await;
    assert_eq!(one.status, 200, "{}", one.body);
    assert_eq!(one.data()["viewerCount"], 3);
    assert_eq!(one.data()["info"]["name"], "master-stage");
    assert_eq!(one.data()["info"]["autoScaled"], false);

    let publisher = app.get("/api/stats/publisher").await;
    assert_eq!(publisher.status, 200);
    assert_eq!(publisher.data()["isLive"], false);
}

#[tokio::test]
async fn health_is_open_and_reports_services_and_projection_lag() {
    let services = Services::start().await;
    let app = spawn_app(&services).await;
    let _ = app.viewer_token("v").await;
    app.wait_for_projections().await;

    let health = reqwest::get(format!("{}/health", app.address))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let body: serde_json::Value = health.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["services"]["nats"], "connected");
    assert_eq!(body["services"]["postgres"], "connected");
    assert_eq!(body["services"]["ivs"], "ready");
    assert!(body["uptime"].is_u64());
    assert!(
        body["projections"]["stages"]["checkpoint"]
            .as_u64()
            .unwrap()
            >= 2
    );
    assert_eq!(body["projections"]["viewers"]["pending"], 0);
}
