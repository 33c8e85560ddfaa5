//! The cluster holds: an operator command never changes the stream's settings, `/health`
//! says when the stream runs with fewer replicas than configured, a follower whose consumer stops
//! delivering is noticed and recreated within seconds, a heartbeat for a seat another instance
//! made waits for this instance's follower instead of answering 404, and a publish retried across
//! a stream leader election is stored once.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use onair::event_store::{EventStore, NewEvent, STREAM_NAME};
use onair::events::{Event, ViewerJoined};
use serde_json::{Value, json};

use crate::helpers::{Services, eventually, fresh_database, spawn_app, spawn_app_with};
use crate::nats_cluster::{NatsCluster, connect};

async fn stream_info(url: &str) -> jetstream::stream::Info {
    let js = jetstream::new(connect(url).await);
    let mut stream = js.get_stream(STREAM_NAME).await.unwrap();
    stream.info().await.unwrap().clone()
}

fn onair_cli(database_url: &str, nats_url: &str, args: &[&str]) -> std::process::Output {
    Command::new(PathBuf::from(env!("CARGO_BIN_EXE_onair")))
        .args(args)
        .env("ONAIR_DATABASE_URL", database_url)
        .env("ONAIR_NATS_URL", nats_url)
        .env_remove("ONAIR_STREAM_REPLICAS")
        .output()
        .expect("the onair binary runs")
}

#[tokio::test]
async fn an_operator_command_keeps_the_streams_replicas_and_health_says_when_they_drop() {
    let cluster = NatsCluster::start().await;
    let database_url = fresh_database().await;
    let mut settings =
        onair::server::config::ServeSettings::with_connection(&database_url, &cluster.url());
    settings.listen = "127.0.0.1:0".parse().unwrap();
    settings.connection.stream_replicas = 3;
    let app = crate::helpers::spawn_configured(settings).await;
    assert_eq!(stream_info(&cluster.url()).await.config.num_replicas, 3);

    // The operator's commands, as a newcomer runs them against the live cluster (no
    // ONAIR_STREAM_REPLICAS in their environment).
    let gift = onair_cli(
        &database_url,
        &cluster.url(),
        &[
            "gift",
            "set",
            "--gift-id",
            "7",
            "--name",
            "rose",
            "--points",
            "5",
        ],
    );
    assert!(
        gift.status.success(),
        "{}",
        String::from_utf8_lossy(&gift.stderr)
    );
    let events = onair_cli(&database_url, &cluster.url(), &["events", "export"]);
    assert!(
        events.status.success(),
        "{}",
        String::from_utf8_lossy(&events.stderr)
    );
    assert_eq!(
        stream_info(&cluster.url()).await.config.num_replicas,
        3,
        "an operator command changed the stream's replicas"
    );
    let health = eventually(Duration::from_secs(20), || async {
        let h = app.get("/health").await;
        (h.body["status"] == "ok").then_some(h.body)
    })
    .await;
    assert_eq!(health["stream"]["replicas"], 3, "{health}");

    // Lowered by hand (as `nats stream edit --replicas 1` would): /health and /metrics say so.
    let js = jetstream::new(connect(&cluster.url()).await);
    let mut config = stream_info(&cluster.url()).await.config;
    config.num_replicas = 1;
    js.update_stream(config).await.unwrap();
    let health = eventually(Duration::from_secs(10), || async {
        let h = app.get("/health").await;
        (h.body["status"] == "degraded").then_some(h.body)
    })
    .await;
    let reasons = health["reasons"].to_string();
    assert!(
        reasons.contains("runs with 1 replicas; ONAIR_STREAM_REPLICAS is 3"),
        "{health}"
    );
    let metrics = eventually(Duration::from_secs(5), || async {
        let text = app
            .client
            .get(format!("{}/metrics", app.address))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.lines()
            .any(|l| l == "onair_stream_replicas 1")
            .then_some(text)
    })
    .await;
    assert!(metrics.contains("onair_stream_replicas_expected 3"));
}

#[tokio::test]
async fn a_publish_retried_across_a_stream_leader_election_is_stored_once() {
    let mut cluster = NatsCluster::start().await;
    // The deduplication is under test, not the election's speed: on a loaded machine an election
    // may outlast the default 8 s retry window, so this publisher waits longer.
    let store = EventStore::connect(&cluster.url(), "/test")
        .await
        .unwrap()
        .with_publish_retry_window(Duration::from_secs(30));
    store.apply_stream_config(3).await.unwrap();
    let leader = stream_info(&cluster.url())
        .await
        .cluster
        .and_then(|c| c.leader)
        .expect("a stream leader");
    let leader_node: usize = leader.rsplit('-').next().unwrap().parse().unwrap();

    // Publish while the leader dies: every publish is answered (after the election), none twice.
    let publisher = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(6) {
                let new = NewEvent::new(
                    time::OffsetDateTime::now_utc(),
                    Event::ViewerJoined(ViewerJoined {
                        user_id: format!("u{}", ids.len()),
                        stage_arn: "arn:aws:ivs:us-east-1:123456789012:stage/abcdEFGH1234".into(),
                        participant_id: "p".into(),
                        token_expires_at: time::OffsetDateTime::now_utc(),
                        attributes: Default::default(),
                    }),
                );
                let id = new.id;
                store.publish(new).await.expect("stored after the election");
                ids.push(id);
                // Paces the publisher (one event per 20 ms) across the election; not a wait.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            ids
        })
    };
    // The fault schedule: the leader is killed with publishes under way for a while before it.
    tokio::time::sleep(Duration::from_millis(800)).await;
    cluster.kill(leader_node);
    let ids = publisher.await.unwrap();
    assert!(ids.len() > 20, "{} publishes", ids.len());

    let survivor = (0..3).find(|&n| n != leader_node).unwrap();
    let url = format!("nats://127.0.0.1:{}", cluster.ports[survivor]);
    let js = jetstream::new(connect(&url).await);
    // The two survivors may still be settling (503 "JetStream system temporarily unavailable"):
    // the stream is read again until a read goes through.
    let stored: Vec<String> = eventually(Duration::from_secs(30), || async {
        let stream = js.get_stream(STREAM_NAME).await.ok()?;
        let mut stored = Vec::new();
        for sequence in 1..=stream.cached_info().state.last_sequence {
            let message = stream.get_raw_message(sequence).await.ok()?;
            stored.push(message.headers.get("ce-id")?.to_string());
        }
        Some(stored)
    })
    .await;
    let mut unique = stored.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), stored.len(), "an event was stored twice");
    for id in &ids {
        assert!(stored.contains(&id.to_string()), "acked event {id} lost");
    }
}

/// Pauses every consumer of the stream until `until` (NATS 2.11+ consumer pause), as a node that
/// stops delivering would; returns how many were paused.
async fn pause_consumers(nats_url: &str, for_how_long: Duration) -> usize {
    let client = async_nats::connect(nats_url).await.unwrap();
    let js = jetstream::new(client.clone());
    let stream = js.get_stream(STREAM_NAME).await.unwrap();
    let names: Vec<String> = {
        use futures_util::TryStreamExt;
        stream.consumer_names().try_collect().await.unwrap()
    };
    let until = time::OffsetDateTime::now_utc() + for_how_long;
    let until = until
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    for name in &names {
        let answer = client
            .request(
                format!("$JS.API.CONSUMER.PAUSE.{STREAM_NAME}.{name}"),
                json!({ "pause_until": until }).to_string().into(),
            )
            .await
            .unwrap();
        let answer: Value = serde_json::from_slice(&answer.payload).unwrap();
        assert!(answer["paused"] == true, "{answer}");
    }
    names.len()
}

/// Stores a viewer's join as another instance would (straight into the stream).
async fn join_elsewhere(store: &EventStore, user: &str, stage_arn: &str) {
    store
        .publish(NewEvent::new(
            time::OffsetDateTime::now_utc(),
            Event::ViewerJoined(ViewerJoined {
                user_id: user.into(),
                stage_arn: stage_arn.into(),
                participant_id: format!("p-{user}"),
                token_expires_at: time::OffsetDateTime::now_utc() + time::Duration::hours(1),
                attributes: Default::default(),
            }),
        ))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_follower_whose_consumer_stops_delivering_is_recreated_within_seconds() {
    let services = Services::start().await;
    let app = spawn_app(&services).await;
    let stage = app.seat("seated-here").await;
    let store = EventStore::connect(&services.nats.url, "/test")
        .await
        .unwrap();
    assert!(pause_consumers(&services.nats.url, Duration::from_secs(120)).await > 0);

    let joined = Instant::now();
    join_elsewhere(&store, "seated-elsewhere", &stage).await;
    let beat = eventually(Duration::from_secs(8), || async {
        let answer = app.heartbeat("seated-elsewhere", &stage).await;
        (answer.status == 200).then_some(answer)
    })
    .await;
    let took = joined.elapsed();
    assert_eq!(beat.status, 200);
    assert!(
        took < Duration::from_secs(5),
        "the stall was noticed after {took:?}"
    );
    let health = app.get("/health").await.body;
    let pool = health["followers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "pool")
        .cloned()
        .unwrap();
    assert!(pool["stalls"].as_u64().unwrap() >= 1, "{health}");
}

#[tokio::test]
async fn a_heartbeat_for_a_seat_this_instance_has_not_seen_yet_waits_for_its_follower() {
    let services = Services::start().await;
    let app = spawn_app(&services).await;
    let stage = app.seat("first").await;
    let store = EventStore::connect(&services.nats.url, "/test")
        .await
        .unwrap();
    for round in 0..3 {
        // This instance's follower is held back for a second (its consumer paused), as one busy
        // or failing over would be; the seat is made elsewhere meanwhile.
        pause_consumers(&services.nats.url, Duration::from_millis(1000)).await;
        let user = format!("elsewhere-{round}");
        join_elsewhere(&store, &user, &stage).await;
        let answer = app.heartbeat(&user, &stage).await;
        assert_eq!(answer.status, 200, "round {round}: {}", answer.body);
        let answer = app.leave(&user, &stage).await;
        assert_eq!(answer.status, 200, "round {round}: {}", answer.body);
    }
    // A seat nobody made is still refused, once the follower has caught up (without waiting out
    // the bound).
    let started = Instant::now();
    app.heartbeat("nobody", &stage)
        .await
        .expect_error(404, "NOT_FOUND");
    assert!(started.elapsed() < Duration::from_millis(2500));
}

#[tokio::test]
async fn every_follower_reports_its_lag_on_health() {
    let services = Services::start().await;
    let app = spawn_app_with(&services, |_| {}).await;
    let health = eventually(Duration::from_secs(10), || async {
        let h = app.get("/health").await.body;
        let names: Vec<String> = h["followers"]
            .as_array()?
            .iter()
            .map(|f| f["name"].as_str().unwrap_or_default().to_owned())
            .collect();
        (names.iter().any(|n| n == "pool")
            && names.iter().any(|n| n == "chat-rules")
            && names.iter().any(|n| n.starts_with("projector-")))
        .then_some(h)
    })
    .await;
    for follower in health["followers"].as_array().unwrap() {
        assert!(follower["lagEvents"].is_u64(), "{follower}");
        assert!(follower["lagSeconds"].is_number(), "{follower}");
    }
    assert_eq!(health["status"], "ok", "{health}");
}

/// Heartbeats older than the pool's start-up lookback are not owed to a new instance: its
/// heartbeat follower starts past them, and neither reports lag nor keeps restarting for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_before_the_lookback_are_not_counted_as_lag() {
    let services = Services::start().await;
    let first = spawn_app_with(&services, |_| {}).await;
    let stage = first.seat("old-beat").await;
    assert_eq!(first.heartbeat("old-beat", &stage).await.status, 200);
    // The lookback (2 × heartbeat timeout + 5 s) is measured on the NATS server's wall clock,
    // which the test clock does not move: the heartbeat has to age for real.
    tokio::time::sleep(Duration::from_millis(5_500)).await;
    let later = spawn_app_with(&services, |s| s.heartbeat_timeout_secs = 0.001).await;
    // Longer than the watchdog's stall threshold (1.5 s): a follower owed the old heartbeat
    // would have been told it stalled by now.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let health = later.get("/health").await.body;
    let beats = health["followers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "pool-heartbeats")
        .cloned()
        .unwrap();
    assert_eq!(beats["lagEvents"], 0, "{health}");
    assert_eq!(beats["stalls"], 0, "{health}");
    assert_eq!(health["status"], "ok", "{health}");
}
