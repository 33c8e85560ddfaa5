//! Heartbeat group commit: heartbeats that arrive together are stored as one
//! `onair.viewer.heartbeats_recorded.v1`, each request answered with that message's sequence; the
//! read models, every instance's pool and a replay or an audit all see each heartbeat at its time.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::future::join_all;

use crate::helpers::{Services, eventually, spawn_app_with};

const VIEWERS: usize = 24;

async fn list(app: &crate::helpers::TestApp, stage_arn: &str) -> crate::helpers::Answer {
    let path = format!("/api/viewer/list/{}", crate::helpers::encode(stage_arn));
    app.get(&path).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_sent_together_share_one_message_and_replay_and_audit_to_the_same_read_models() {
    let services = Services::start().await;
    // A wide window so that concurrent requests surely meet in one batch.
    let batching = |s: &mut onair::server::config::ServeSettings| {
        s.heartbeat_batch_window_us = 50_000;
        s.heartbeat_batch_max = 256;
    };
    let app = spawn_app_with(&services, batching).await;
    let other = spawn_app_with(&services, batching).await;
    let users: Vec<String> = (0..VIEWERS).map(|i| format!("beat-{i}")).collect();
    let mut stage_of = HashMap::new();
    for user in &users {
        stage_of.insert(user.clone(), app.seat(user).await);
    }

    let answers = join_all(users.iter().map(|u| app.heartbeat(u, &stage_of[u]))).await;
    let mut by_sequence: HashMap<u64, Vec<&str>> = HashMap::new();
    let mut beat_at = HashMap::new();
    for (user, answer) in users.iter().zip(&answers) {
        assert_eq!(answer.status, 200, "{}", answer.body);
        by_sequence
            .entry(answer.event_sequence())
            .or_default()
            .push(user);
        let at = answer.data()["lastHeartbeat"].as_str().unwrap().to_owned();
        beat_at.insert(user.clone(), at);
    }
    assert!(
        by_sequence.len() < VIEWERS,
        "concurrent heartbeats were stored one by one: {by_sequence:?}"
    );
    // The shared message is the batch event and holds exactly the heartbeats answered with it.
    let stream = app.state.store.stream().await.unwrap();
    let (sequence, members) = by_sequence.iter().max_by_key(|(_, m)| m.len()).unwrap();
    let message = stream.get_raw_message(*sequence).await.unwrap();
    assert_eq!(
        message.headers.get("ce-type").map(|v| v.as_str()),
        Some("onair.viewer.heartbeats_recorded.v1")
    );
    let payload: serde_json::Value = serde_json::from_slice(&message.payload).unwrap();
    let mut held: Vec<&str> = payload["heartbeats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["userId"].as_str().unwrap())
        .collect();
    let mut expected = members.clone();
    held.sort_unstable();
    expected.sort_unstable();
    assert_eq!(held, expected);

    // The read model and both instances' pools have each heartbeat at the time it was answered.
    app.wait_for_projections().await;
    let master = app.master_stage_arn().await;
    let listed = list(&app, &master).await;
    for viewer in listed.data()["viewers"].as_array().unwrap() {
        let user = viewer["userId"].as_str().unwrap();
        assert_eq!(viewer["lastHeartbeat"], beat_at[user].as_str(), "{user}");
    }
    for pool in [&app.state.pool, &other.state.pool] {
        eventually(Duration::from_secs(5), || async {
            users
                .iter()
                .all(|u| {
                    pool.read(|p| {
                        p.seat_of(u).is_some_and(|(_, seat)| {
                            let answered = time::OffsetDateTime::parse(
                                &beat_at[u],
                                &time::format_description::well_known::Rfc3339,
                            )
                            .unwrap();
                            seat.last_seen_at == answered
                        })
                    })
                })
                .then_some(())
        })
        .await;
    }

    // A rebuild from the stream gives the same read models; a replay swaps in the same rows.
    let audit = onair::ops::audit::run(&app.db, &app.state.store, false)
        .await
        .unwrap();
    assert!(audit.is_clean(), "{audit:?}");
    let chosen = onair::ops::replay::select(None).unwrap();
    onair::ops::replay::run(&app.db, &app.state.store, chosen)
        .await
        .unwrap();
    let audit = onair::ops::audit::run(&app.db, &app.state.store, false)
        .await
        .unwrap();
    assert!(audit.is_clean(), "{audit:?}");
    assert_eq!(
        list(&app, &master).await.data()["viewers"],
        listed.data()["viewers"]
    );
}

#[tokio::test]
async fn with_a_batch_of_one_every_heartbeat_is_its_own_message() {
    let services = Services::start().await;
    let app = spawn_app_with(&services, |s| s.heartbeat_batch_max = 1).await;
    let stage = app.seat("solo").await;
    let answers = join_all((0..4).map(|_| app.heartbeat("solo", &stage))).await;
    let mut sequences: Vec<u64> = answers.iter().map(|a| a.event_sequence()).collect();
    sequences.sort_unstable();
    sequences.dedup();
    assert_eq!(sequences.len(), 4);
    let stream = app.state.store.stream().await.unwrap();
    let message = stream.get_raw_message(sequences[0]).await.unwrap();
    assert_eq!(
        message.headers.get("ce-type").map(|v| v.as_str()),
        Some("onair.viewer.heartbeat_recorded.v1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_window_heartbeats_that_arrive_during_a_store_share_the_next_message() {
    let services = Services::start().await;
    // The defaults: no timer, one message awaiting its acknowledgement at a time.
    let app = spawn_app_with(&services, |_| {}).await;
    let users: Vec<String> = (0..64).map(|i| format!("natural-{i}")).collect();
    let mut stage_of = HashMap::new();
    for user in &users {
        stage_of.insert(user.clone(), app.seat(user).await);
    }

    // A heartbeat alone waits for nothing and is stored as it always was.
    let alone = app.heartbeat(&users[0], &stage_of[&users[0]]).await;
    assert_eq!(alone.status, 200, "{}", alone.body);
    let stream = app.state.store.stream().await.unwrap();
    let message = stream
        .get_raw_message(alone.event_sequence())
        .await
        .unwrap();
    assert_eq!(
        message.headers.get("ce-type").map(|v| v.as_str()),
        Some("onair.viewer.heartbeat_recorded.v1")
    );

    // Many at once: those that arrive while a message is being stored share the next one, and
    // each counts in the instance's own pool by the time it is answered.
    let answers = join_all(users.iter().map(|u| async {
        let answer = app.heartbeat(u, &stage_of[u]).await;
        let seen = app
            .state
            .pool
            .read(|p| p.seat_of(u).map(|(_, seat)| seat.last_seen_at));
        (answer, seen)
    }))
    .await;
    let mut sequences = Vec::new();
    for (user, (answer, seen)) in users.iter().zip(&answers) {
        assert_eq!(answer.status, 200, "{}", answer.body);
        let answered = time::OffsetDateTime::parse(
            answer.data()["lastHeartbeat"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        assert!(
            seen.is_some_and(|at| at >= answered),
            "{user}: answered at {answered}, own pool has {seen:?}"
        );
        sequences.push(answer.event_sequence());
    }
    sequences.sort_unstable();
    sequences.dedup();
    assert!(
        sequences.len() < users.len(),
        "64 concurrent heartbeats were stored one message each"
    );
}
