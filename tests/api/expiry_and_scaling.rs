use std::time::Duration;

use crate::helpers::{Services, encode, eventually, spawn_app, spawn_app_with};

#[tokio::test]
async fn a_silent_viewer_expires_and_a_heartbeating_one_stays() {
    let services = Services::start().await;
    let app = spawn_app_with(&services, |s| {
        s.heartbeat_timeout_secs = 60.0;
        s.expiry_check_interval_ms = 100;
    })
    .await;
    let stage = app.seat("quiet").await;
    assert_eq!(app.viewer_token("chatty").await.status, 200);

    // 80 s pass: chatty beats every 40 s; quiet says nothing.
    for _ in 0..2 {
        app.state.clock.advance(Duration::from_secs(40));
        assert_eq!(app.heartbeat("chatty", &stage).await.status, 200);
    }

    // The expiry reactor looks every 100 ms.
    eventually(Duration::from_secs(5), || async {
        app.state
            .pool
            .read(|p| p.seat_of("quiet").is_none())
            .then_some(())
    })
    .await;
    app.heartbeat("quiet", &stage)
        .await
        .expect_error(404, "NOT_FOUND");
    assert_eq!(app.heartbeat("chatty", &stage).await.status, 200);
    let list = eventually(Duration::from_secs(5), || async {
        let list = app
            .get(&format!("/api/viewer/list/{}", encode(&stage)))
            .await;
        (list.data()["totalViewers"] == 1).then_some(list)
    })
    .await;
    assert_eq!(list.data()["viewers"][0]["userId"], "chatty");
    // The stats read another read model, which may apply the expiry a batch later.
    app.wait_for_projections().await;
    let stats = app.get("/api/stats/viewers").await;
    assert_eq!(stats.data()["totalViewers"], 1);
    // The expired session counts up to quiet's last sign of life (the join): 0 s.
    let duration = app
        .get(&format!(
            "/api/viewer/duration?userId=quiet&stageArn={}",
            encode(&stage)
        ))
        .await;
    assert_eq!(duration.data()["watchDuration"], 0);
}

#[tokio::test]
async fn the_46th_viewer_gets_a_new_auto_scaled_stage() {
    let services = Services::start().await;
    let app = spawn_app(&services).await;
    let master = app.master_stage_arn().await;

    for i in 0..45 {
        let answer = app.viewer_token(&format!("viewer-{i:03}")).await;
        assert_eq!(answer.data()["stageArn"], master, "viewer {i}");
    }
    let the_46th = app.viewer_token("viewer-045").await;

    assert_eq!(the_46th.status, 200);
    let new_stage = the_46th.data()["stageArn"].as_str().unwrap().to_owned();
    assert_ne!(new_stage, master);
    assert_eq!(the_46th.data()["currentViewers"], 1);
    // The next viewer goes to the least-loaded stage: the new one.
    assert_eq!(
        app.viewer_token("viewer-046").await.data()["stageArn"],
        new_stage
    );
    app.wait_for_projections().await;
    let stages = app.get("/api/stats/stages").await;
    assert_eq!(stages.data()["totalStages"], 2);
    let auto = &stages.data()["stages"][1];
    assert_eq!(auto["stageArn"], new_stage);
    assert_eq!(auto["autoScaled"], true);
    assert_eq!(auto["viewerCount"], 2);
    assert_eq!(auto["tags"]["AutoScaled"], "true");
    assert!(
        auto["stageName"]
            .as_str()
            .unwrap()
            .starts_with("auto-stage-")
    );
    assert_eq!(app.get("/api/stats").await.data()["totalViewers"], 47);
}

#[tokio::test]
async fn when_every_stage_is_full_viewers_get_stage_full() {
    let services = Services::start().await;
    let app = spawn_app_with(&services, |s| {
        s.max_stages = 1;
        s.max_viewers_per_stage = 3;
        s.scale_up_threshold = 2;
    })
    .await;
    for i in 0..3 {
        assert_eq!(app.viewer_token(&format!("v{i}")).await.status, 200);
    }
    let before = app.stream_messages().await;

    app.viewer_token("one-too-many")
        .await
        .expect_error(503, "STAGE_FULL");

    assert_eq!(app.stream_messages().await, before);
    // A seated viewer can still renew.
    assert_eq!(app.viewer_token("v0").await.status, 200);
}

/// A new instance reads recent heartbeats at start-up, so it does not expire viewers who are alive.
#[tokio::test]
async fn an_instance_started_later_knows_recent_heartbeats() {
    let services = Services::start().await;
    let quick = |s: &mut onair::server::config::ServeSettings| {
        s.heartbeat_timeout_secs = 60.0;
        s.expiry_check_interval_ms = 100;
    };
    let first = spawn_app_with(&services, quick).await;
    let stage = first.seat("alive").await;
    // 90 s pass on the first instance, with a heartbeat every 30 s: without them the viewer
    // would be expired.
    for _ in 0..3 {
        first.state.clock.advance(Duration::from_secs(30));
        assert_eq!(first.heartbeat("alive", &stage).await.status, 200);
    }

    let second = spawn_app_with(&services, quick).await;
    second.state.clock.advance(Duration::from_secs(90));
    assert!(
        second.state.pool.read(|p| p
            .seat_of("alive")
            .is_some_and(|(_, seat)| seat.last_seen_at > seat.joined_at)),
        "the second instance saw the heartbeats"
    );
    // 90 s more on both instances, the heartbeats now going to the second.
    for _ in 0..3 {
        first.state.clock.advance(Duration::from_secs(30));
        second.state.clock.advance(Duration::from_secs(30));
        assert_eq!(second.heartbeat("alive", &stage).await.status, 200);
    }
    // Both instances' expiry reactors have had their turns. This proves an absence (no expiry is
    // published), which no condition can be waited on for: the pause spans several of the
    // reactors' ticks.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(first.heartbeat("alive", &stage).await.status, 200);
    assert_eq!(second.heartbeat("alive", &stage).await.status, 200);
}

/// A crowd that goes silent at once is expired in one pass, not a few at a time.
#[tokio::test]
async fn many_silent_viewers_expire_in_one_pass() {
    let services = Services::start().await;
    let app = spawn_app(&services).await;
    for i in 0..60 {
        app.seat(&format!("crowd-{i}")).await;
    }
    app.state.clock.advance(Duration::from_secs(120));

    let expired = app
        .state
        .pool
        .expire_silent_viewers(Duration::from_secs(60))
        .await
        .unwrap();

    assert_eq!(expired, 60);
    assert_eq!(app.state.pool.read(|p| p.total_viewers()), 0);
}
