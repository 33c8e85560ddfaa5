use std::time::Duration;

use crate::helpers::{Services, encode, eventually, spawn_app};

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
    let tasks = body["tasks"].as_array().unwrap();
    let task = |name: &str| {
        tasks
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("no task {name} in {tasks:?}"))
    };
    for name in [
        "pool-follower",
        "reactor-expiry",
        "reactor-scale-down",
        "stats-feed",
        "projector-stages",
        "chat-0",
    ] {
        assert_eq!(task(name)["state"], "running", "{name}");
        assert_eq!(task(name)["restarts"], 0, "{name}");
    }
}

#[tokio::test]
async fn a_background_task_that_panics_is_restarted_and_health_shows_it() {
    let services = Services::start().await;
    let app = spawn_app(&services).await;
    let runs = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counted = runs.clone();
    app.state.supervisor.spawn(
        "test-panics-once",
        onair::runtime::supervisor::Restart::Always,
        false,
        move || {
            let run = counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move {
                if run == 0 {
                    panic!("the first run fails");
                }
                std::future::pending::<()>().await
            }
        },
    );

    let task = eventually(Duration::from_secs(5), || async {
        let body: serde_json::Value = reqwest::get(format!("{}/health", app.address))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let task = body["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "test-panics-once")
            .cloned()?;
        (task["restarts"] == 1 && task["state"] == "running").then_some(task)
    })
    .await;

    assert_eq!(task["lastError"], "panicked: the first run fails");
    assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 2);
    let health = reqwest::get(format!("{}/health", app.address))
        .await
        .unwrap();
    assert_eq!(health.status(), 200, "the task is not essential");
}
