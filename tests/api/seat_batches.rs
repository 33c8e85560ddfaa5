//! Seat decisions in batches: a burst of viewer token requests on two instances is
//! seated with no error and with the pool's rules kept, in batches; a chain of events is stored as
//! a prefix exactly as decided, never past a refused guard or a break.

use std::collections::HashMap;

use futures_util::future::join_all;
use onair::event_store::{EventStore, EventStoreError, NewEvent};
use onair::events::{Event, ViewerJoined, pool_subject_filter};

use crate::helpers::{Services, spawn_app_with};
use crate::nats_cluster::NatsCluster;

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

/// Sends `count` viewer token requests at once, alternating between `a` and `b`, and checks
/// every answer is 200 with no stage over 50; then reads the stream: one join per viewer, nobody
/// twice. Returns the stream sequences of the joins.
async fn burst_seats_everyone_once(
    a: &crate::helpers::TestApp,
    b: &crate::helpers::TestApp,
    count: usize,
    nats_url: &str,
) -> Vec<u64> {
    let requests = (0..count).map(|i| {
        let app = if i % 2 == 0 { a } else { b };
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

    let store = EventStore::connect(nats_url, "/test").await.unwrap();
    let stream = store.stream().await.unwrap();
    let mut joins: HashMap<String, u32> = HashMap::new();
    let mut sequences = Vec::new();
    for sequence in 1..=stream.cached_info().state.last_sequence {
        if let Some(e) = store.get(sequence).await.unwrap()
            && let Event::ViewerJoined(j) = e.event
        {
            *joins.entry(j.user_id).or_default() += 1;
            sequences.push(sequence);
        }
    }
    assert_eq!(joins.len(), count);
    assert!(joins.values().all(|&n| n == 1), "seated twice");
    sequences
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_on_two_instances_is_seated_in_batches_without_an_error() {
    let services = Services::start().await;
    let a = spawn_app_with(&services, |_| {}).await;
    let b = spawn_app_with(&services, |_| {}).await;
    burst_seats_everyone_once(&a, &b, 400, &services.nats.url).await;

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

/// The chain's contract, on `store`'s stream: a stale guard stores nothing; a fresh one stores
/// the chain at consecutive sequences; an event stored already (a retried idempotency key) is
/// acknowledged with its sequence and the chain breaks after it. Returns the fresh chain's events
/// and their sequences.
async fn a_chain_keeps_its_contract(store: &EventStore) -> (Vec<NewEvent>, Vec<u64>) {
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
    let sequences: Vec<u64> = stored.iter().map(|p| p.sequence).collect();
    assert_eq!(
        sequences,
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
    (chain, sequences)
}

#[tokio::test]
async fn a_chain_is_stored_as_a_prefix_never_past_a_refused_guard_or_a_break() {
    let services = Services::start().await;
    let store = EventStore::connect(&services.nats.url, "/test")
        .await
        .unwrap();
    store.apply_stream_config(1).await.unwrap();
    a_chain_keeps_its_contract(&store).await;
}

/// The `Nats-Batch-Id` a stored message was published with (none when it was not in a batch).
async fn batch_id_of(
    stream: &async_nats::jetstream::stream::Stream,
    sequence: u64,
) -> Option<String> {
    let message = stream.get_raw_message(sequence).await.unwrap();
    message
        .headers
        .get("Nats-Batch-Id")
        .map(|v| v.as_str().to_owned())
}

#[tokio::test]
async fn on_a_replicated_stream_a_chain_is_one_atomic_batch() {
    let cluster = NatsCluster::start().await;
    let store = EventStore::connect(&cluster.url(), "/test").await.unwrap();
    let stream = store.apply_stream_config(3).await.unwrap();
    assert!(stream.cached_info().config.allow_atomic_publish);
    let (chain, sequences) = a_chain_keeps_its_contract(&store).await;

    // The fresh chain was stored as one batch.
    let mut ids = Vec::new();
    for (sequence, new) in sequences.iter().zip(&chain) {
        let read = store.get(*sequence).await.unwrap().unwrap();
        assert_eq!(read.id, new.id);
        ids.push(batch_id_of(&stream, *sequence).await);
    }
    assert!(
        ids[0].is_some() && ids.iter().all(|id| *id == ids[0]),
        "{ids:?}"
    );

    // Two writers with the same guard at once: one batch stored whole, the other refused whole.
    let guard = store
        .stream()
        .await
        .unwrap()
        .cached_info()
        .state
        .last_sequence;
    let mine: Vec<_> = ["m1", "m2", "m3"].map(joined).into();
    let theirs: Vec<_> = ["t1", "t2", "t3"].map(joined).into();
    let guarded = |mut chain: Vec<NewEvent>| {
        chain[0] = chain[0].clone().expecting(pool_subject_filter(), guard);
        chain
    };
    let (mine, theirs) = (guarded(mine), guarded(theirs));
    let other = EventStore::connect(&cluster.url(), "/test").await.unwrap();
    other.open_stream(3).await.unwrap();
    let (a, b) = tokio::join!(store.publish_chain(&mine), other.publish_chain(&theirs));
    let whole = |r: &[Result<_, _>]| r.iter().all(Result::is_ok);
    let refused = |r: &[Result<onair::event_store::Published, EventStoreError>]| {
        matches!(r[0], Err(EventStoreError::Conflict { .. }))
            && r[1..]
                .iter()
                .all(|r| matches!(r, Err(EventStoreError::ChainBroken)))
    };
    assert!(
        (whole(&a) && refused(&b)) || (whole(&b) && refused(&a)),
        "{a:?} {b:?}"
    );
    assert_eq!(
        store
            .stream()
            .await
            .unwrap()
            .cached_info()
            .state
            .last_sequence,
        guard + 3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_on_two_instances_over_a_replicated_stream_is_seated_without_an_error() {
    let cluster = NatsCluster::start().await;
    let database_url = crate::helpers::fresh_database().await;
    let app = || {
        let mut settings =
            onair::server::config::ServeSettings::with_connection(&database_url, &cluster.url());
        settings.listen = "127.0.0.1:0".parse().unwrap();
        settings.connection.stream_replicas = 3;
        crate::helpers::spawn_configured(settings)
    };
    let a = app().await;
    let b = app().await;
    let joins = burst_seats_everyone_once(&a, &b, 300, &cluster.url()).await;

    // Seats were stored in atomic batches.
    let store = EventStore::connect(&cluster.url(), "/test").await.unwrap();
    let stream = store.stream().await.unwrap();
    let mut batched = 0;
    for sequence in joins {
        batched += usize::from(batch_id_of(&stream, sequence).await.is_some());
    }
    assert!(batched > 0, "no seat was stored in an atomic batch");
}
