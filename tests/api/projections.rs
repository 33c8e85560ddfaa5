use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use futures_util::StreamExt;
use futures_util::future::join_all;
use onair::domain::stage_pool::StagePool;
use onair::events::{Event, cloudevents};
use serde_json::json;

use crate::helpers::{Services, TestApp, spawn_app};

/// What the read models must hold, folded straight from the stream with the domain's own rules.
struct Expected {
    seats: BTreeMap<String, (String, String, i64)>,
    viewer_counts: BTreeMap<String, i64>,
    watch_time: BTreeMap<(String, String), (i64, i64)>,
}

async fn fold_stream(app: &TestApp) -> Expected {
    let stream = app.state.store.stream().await.unwrap();
    let last = stream.get_info().await.unwrap().state.last_sequence;
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let mut pool = StagePool::default();
    let mut watch_time = BTreeMap::new();
    while let Some(message) = messages.next().await {
        let message = message.unwrap();
        let sequence = message.info().unwrap().stream_sequence;
        let envelope =
            cloudevents::decode(message.headers.as_ref(), &message.payload, sequence).unwrap();
        match &envelope.event {
            Event::ViewerLeft(e) => {
                let entry = watch_time
                    .entry((e.user_id.clone(), e.stage_arn.clone()))
                    .or_insert((0, 0));
                entry.0 += e.watch_duration_seconds as i64;
                entry.1 += 1;
            }
            Event::ViewerExpired(e) => {
                let entry = watch_time
                    .entry((e.user_id.clone(), e.stage_arn.clone()))
                    .or_insert((0, 0));
                entry.0 += e.watch_duration_seconds as i64;
                entry.1 += 1;
            }
            _ => {}
        }
        pool.apply(&envelope);
        if sequence >= last {
            break;
        }
    }
    let mut seats = BTreeMap::new();
    let mut viewer_counts = BTreeMap::new();
    for stage in pool.stages() {
        viewer_counts.insert(stage.arn.clone(), stage.viewer_count() as i64);
        for (user, seat) in &stage.seats {
            seats.insert(
                user.clone(),
                (
                    stage.arn.clone(),
                    seat.participant_id.clone(),
                    (seat.last_seen_at.unix_timestamp_nanos() / 1_000_000) as i64,
                ),
            );
        }
    }
    Expected {
        seats,
        viewer_counts,
        watch_time,
    }
}

async fn assert_read_models_match_the_stream(app: &TestApp) {
    let expected = fold_stream(app).await;
    let seats: Vec<(String, String, String, time::OffsetDateTime)> = sqlx::query_as(
        "SELECT user_id, stage_arn, participant_id, last_heartbeat_at FROM rm_viewer_seats",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    let seats: BTreeMap<_, _> = seats
        .into_iter()
        .map(|(u, s, p, at)| (u, (s, p, (at.unix_timestamp_nanos() / 1_000_000) as i64)))
        .collect();
    assert_eq!(seats, expected.seats, "rm_viewer_seats");

    let counts: Vec<(String, i32)> =
        sqlx::query_as("SELECT stage_arn, viewer_count FROM rm_stages")
            .fetch_all(&app.db)
            .await
            .unwrap();
    let counts: BTreeMap<_, _> = counts.into_iter().map(|(s, n)| (s, n as i64)).collect();
    assert_eq!(counts, expected.viewer_counts, "rm_stages.viewer_count");

    let watch: Vec<(String, String, i64, i32)> = sqlx::query_as(
        "SELECT user_id, stage_arn, completed_seconds, completed_sessions FROM rm_watch_time",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    let watch: BTreeMap<_, _> = watch
        .into_iter()
        .map(|(u, s, secs, n)| ((u, s), (secs, n as i64)))
        .collect();
    assert_eq!(watch, expected.watch_time, "rm_watch_time");
}

async fn workload(app: &TestApp, round: usize) {
    let joins = (0..40).map(|i| async move { app.viewer_token(&format!("r{round}-v{i}")).await });
    let answers = join_all(joins).await;
    let stages: Vec<String> = answers
        .iter()
        .map(|a| a.data()["stageArn"].as_str().unwrap().to_owned())
        .collect();
    let stages = &stages;
    let beats =
        (0..40).map(|i| async move { app.heartbeat(&format!("r{round}-v{i}"), &stages[i]).await });
    join_all(beats).await;
    let leaves = (0..40).step_by(3).map(|i| async move {
        app.post(
            "/api/viewer/leave",
            &json!({"userId": format!("r{round}-v{i}"), "stageArn": stages[i]}),
        )
        .await
    });
    join_all(leaves).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projector_killed_mid_stream_resumes_without_losing_or_repeating_events() {
    let services = Services::start().await;
    let app = spawn_app(&services).await;

    let killer = async {
        for _ in 0..8 {
            // The fault schedule: kill the projectors every 40 ms of work and keep them down for
            // 20 ms, so kills land mid-batch; these pauses are the schedule, not waits.
            tokio::time::sleep(Duration::from_millis(40)).await;
            app.projectors.kill();
            tokio::time::sleep(Duration::from_millis(20)).await;
            app.projectors.start();
        }
    };
    let work = async {
        for round in 0..4 {
            workload(&app, round).await;
        }
    };
    tokio::join!(killer, work);

    app.wait_for_projections().await;
    assert_read_models_match_the_stream(&app).await;

    // A restart from the checkpoint changes nothing.
    app.projectors.kill();
    app.projectors.start();
    // The checkpoints already stand at the end, so there is nothing to wait for: the pause gives
    // the restarted runners time to take their locks and (wrongly) apply anything again.
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.wait_for_projections().await;
    assert_read_models_match_the_stream(&app).await;
}

#[tokio::test]
async fn a_second_instance_takes_over_projection_when_the_first_stops() {
    let services = Services::start().await;
    let first = spawn_app(&services).await;
    let second = spawn_app(&services).await;
    workload(&first, 0).await;
    first.wait_for_projections().await;

    first.projectors.kill();
    workload(&second, 1).await;

    second.wait_for_projections().await;
    assert_read_models_match_the_stream(&second).await;
}

/// The `viewers` projection's batches so far, from `/metrics`.
async fn viewers_batches(app: &TestApp) -> f64 {
    app.get_text("/metrics")
        .await
        .lines()
        .find(|l| l.starts_with("onair_projection_batch_messages_count{projection=\"viewers\"}"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_steady_flow_is_applied_in_lingering_batches_and_a_lone_event_after_a_quiet_spell_at_once()
 {
    const LINGER: Duration = Duration::from_millis(1500);
    let services = Services::start().await;
    let app = crate::helpers::spawn_app_with(&services, |s| {
        s.projection_linger_ms = LINGER.as_millis() as u64;
    })
    .await;
    let stage = app.seat("steady").await;
    app.wait_for_projections().await;
    tokio::time::sleep(LINGER + Duration::from_millis(300)).await;

    // A lone event after a quiet spell: readable long before the linger would end.
    let started = std::time::Instant::now();
    let beat = app.heartbeat("steady", &stage).await;
    assert_eq!(beat.status, 200, "{}", beat.body);
    let path = format!("/api/viewer/list/{}", crate::helpers::encode(&stage));
    let read = crate::read_your_writes::get_at(&app, &path, beat.event_sequence()).await;
    assert_eq!(read.status, 200, "{}", read.body);
    assert!(
        started.elapsed() < LINGER / 2,
        "a lone heartbeat waited {:?} for the viewers read model",
        started.elapsed()
    );

    // A steady flow, one message every 20 ms: gathered into a few batches, not one per message.
    let before = viewers_batches(&app).await;
    let mut last = 0;
    for _ in 0..20 {
        let beat = app.heartbeat("steady", &stage).await;
        assert_eq!(beat.status, 200, "{}", beat.body);
        assert!(
            beat.event_sequence() > last,
            "each heartbeat its own message"
        );
        last = beat.event_sequence();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Every one of them is applied, at the latest once the linger ends.
    let read = crate::read_your_writes::get_at(&app, &path, last).await;
    assert_eq!(read.status, 200, "{}", read.body);
    let batches = viewers_batches(&app).await - before;
    assert!(
        (1.0..=5.0).contains(&batches),
        "20 heartbeats 20 ms apart took {batches} batches of the viewers projection"
    );
}
