use std::collections::{HashMap, HashSet};

use futures_util::future::join_all;

use crate::helpers::{Services, spawn_app_with};

/// Invariant 1 of docs/design.md#invariants under load: 300 concurrent viewer-token requests spread
/// over two instances. The pool allows 3 stages of 50: exactly 150 are seated, nobody twice, no
/// stage above 50.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seat_cap_holds_under_concurrent_requests_on_two_instances() {
    let services = Services::start().await;
    let limits = |s: &mut onair::server::config::ServeSettings| {
        s.max_stages = 3;
        s.max_viewers_per_stage = 50;
        s.scale_up_threshold = 45;
        // On a loaded machine the 300 requests may take longer than the 60 s heartbeat timeout;
        // an early seat expiring mid-test would be handed out again and break the count.
        s.heartbeat_timeout_secs = 3600.0;
        // A burst of 300 on a loaded test machine may queue longer than the 8 s decision deadline
        // meant for a stalled event store.
        s.seat_decision_deadline_ms = 120_000;
        s.request_deadline_ms = 120_000;
    };
    let a = spawn_app_with(&services, limits).await;
    let b = spawn_app_with(&services, limits).await;

    let requests = (0..300).map(|i| {
        let app = if i % 2 == 0 { &a } else { &b };
        // 20 users ask twice (once on each instance).
        let user = format!("viewer-{}", if i >= 280 { i - 280 } else { i });
        async move { (user.clone(), app.viewer_token(&user).await) }
    });
    let answers = join_all(requests).await;

    let mut seat_of: HashMap<String, String> = HashMap::new();
    let mut full = 0;
    for (user, answer) in &answers {
        match answer.status.as_u16() {
            200 => {
                let stage = answer.data()["stageArn"].as_str().unwrap().to_owned();
                if let Some(previous) = seat_of.insert(user.clone(), stage.clone()) {
                    assert_eq!(previous, stage, "{user} was seated on two stages");
                }
            }
            503 => {
                assert_eq!(answer.body["error"], "STAGE_FULL", "{}", answer.body);
                full += 1;
            }
            other => panic!("unexpected {other}: {}", answer.body),
        }
    }
    let users: HashSet<_> = answers.iter().map(|(u, _)| u.clone()).collect();
    assert_eq!(users.len(), 280);
    assert_eq!(seat_of.len(), 150, "seated users");
    assert!(full >= 130, "{full} refused");

    for app in [&a, &b] {
        app.wait_for_projections().await;
        let stats = app.get("/api/stats/stages").await;
        let stages = stats.data()["stages"].as_array().unwrap();
        assert_eq!(stages.len(), 3);
        for stage in stages {
            assert!(stage["viewerCount"].as_u64().unwrap() <= 50, "{stage}");
        }
        assert_eq!(app.get("/api/stats").await.data()["totalViewers"], 150);
        let in_memory = app.state.pool.read(|p| {
            p.stages()
                .iter()
                .map(|s| s.viewer_count())
                .collect::<Vec<_>>()
        });
        assert!(in_memory.iter().all(|&n| n <= 50), "{in_memory:?}");
        assert_eq!(in_memory.iter().sum::<u32>(), 150);
    }
}
