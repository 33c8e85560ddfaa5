//! Seat decisions in batches: a burst of viewer token requests on two instances is
//! seated with no error and with the pool's rules kept, in batches; a chain of events is stored as
//! a prefix exactly as decided, never past a refused guard or a break.

use std::collections::HashMap;

use futures_util::future::join_all;
use onair::event_store::{EventStore, EventStoreError, NewEvent};
use onair::events::{Event, ViewerJoined, pool_subject_filter};

use crate::helpers::{Services, spawn_app_with};

fn joined(user: &str) -> NewEvent {
    NewEvent::new(
        time::OffsetDateTime::now_utc(),
        Event::ViewerJoined(ViewerJoined {
            user_id: user.into(),
            stage_arn: "arn:aws:ivs:us-east-1:123456789012:stage/abcdEFGH1234".into(),
            participant_id: format!("p-{user}"),
            token_expires_at: time::OffsetDateTime::now_utc(),
            attributes: Default::default(),
        }),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_on_two_instances_is_seated_in_batches_without_an_error() {
    let services = Services::start().await;
    let a = spawn_app_with(&services, |_| {}).await;
    let b = spawn_app_with(&services, |_| {}).await;
    let requests = (0..400).map(|i| {
        let app = if i % 2 == 0 { &a } else { &b };
        let user = format!("burst-{i}");
        async move { (user.clone(), app.viewer_token(&user).await) }
    });
    let answers = join_all(requests).await;
    let mut per_stage: HashMap<String, u32> = HashMap::new();
    for (user, answer) in &answers {
        assert_eq!(answer.status, 200, "{user}: {}", answer.body);
        *per_stage
            .entry(answer.data()["stageArn"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert!(per_stage.values().all(|&n| n <= 50), "{per_stage:?}");

    // From the stream: one join per viewer, nobody twice.
    let store = EventStore::connect(&services.nats.url, "/test")
        .await
        .unwrap();
    let stream = store.stream().await.unwrap();
    let mut joins: HashMap<String, u32> = HashMap::new();
    for sequence in 1..=stream.cached_info().state.last_sequence {
        if let Some(e) = store.get(sequence).await.unwrap()
            && let Event::ViewerJoined(j) = e.event
        {
            *joins.entry(j.user_id).or_default() += 1;
        }
    }
    assert_eq!(joins.len(), 400);
    assert!(joins.values().all(|&n| n == 1), "seated twice");

    // The burst was decided in batches, not one seat per decision.
    let metrics = a.get_text("/metrics").await + &b.get_text("/metrics").await;
    let sum = |name: &str| -> f64 {
        metrics
            .lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let (seats, batches) = (
        sum("onair_seat_batch_size_sum"),
        sum("onair_seat_batch_size_count"),
    );
    assert!(
        batches > 0.0 && seats / batches > 1.5,
        "{seats} seats in {batches} batches"
    );
}

#[tokio::test]
async fn a_chain_is_stored_as_a_prefix_never_past_a_refused_guard_or_a_break() {
    let services = Services::start().await;
    let store = EventStore::connect(&services.nats.url, "/test")
        .await
        .unwrap();
    store.apply_stream_config(1).await.unwrap();

    // A stale guard: nothing is stored.
    let first = store.publish(joined("seed")).await.unwrap();
    let stale = vec![
        joined("a").expecting(pool_subject_filter(), first.sequence - 1),
        joined("b"),
        joined("c"),
    ];
    let results = store.publish_chain(&stale).await;
    assert!(matches!(results[0], Err(EventStoreError::Conflict { .. })));
    assert!(
        results[1..]
            .iter()
            .all(|r| matches!(r, Err(EventStoreError::ChainBroken)))
    );
    let stream = store.stream().await.unwrap();
    assert_eq!(stream.cached_info().state.last_sequence, first.sequence);

    // A fresh guard: all stored, in order, consecutive.
    let chain = vec![
        joined("a").expecting(pool_subject_filter(), first.sequence),
        joined("b"),
        joined("c"),
    ];
    let stored: Vec<_> = store
        .publish_chain(&chain)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        stored.iter().map(|p| p.sequence).collect::<Vec<_>>(),
        vec![first.sequence + 1, first.sequence + 2, first.sequence + 3]
    );

    // An event stored already (a retried idempotency key) is acknowledged with its sequence, and
    // the chain breaks after it: what follows was not decided after it.
    let retried = vec![
        joined("d").expecting(pool_subject_filter(), first.sequence + 3),
        chain[1].clone(),
        joined("e"),
    ];
    let results = store.publish_chain(&retried).await;
    let d = results[0].as_ref().unwrap();
    assert_eq!(d.sequence, first.sequence + 4);
    let b = results[1].as_ref().unwrap();
    assert!(b.duplicate);
    assert_eq!(b.sequence, first.sequence + 2);
    assert!(matches!(results[2], Err(EventStoreError::ChainBroken)));
    let stream = store.stream().await.unwrap();
    assert_eq!(stream.cached_info().state.last_sequence, first.sequence + 4);
}
