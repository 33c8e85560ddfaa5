//! What a cluster needs from one instance: `/health` names the NATS server the instance
//! is connected to and the stream's replica state, and says which projections this instance
//! leads; a projection leader whose lock is lost stops applying, and a standby takes over, so
//! nothing is applied twice.

use std::time::{Duration, Instant};

use onair::server::config::ServeRole;

use crate::helpers::{Services, TestApp, eventually, spawn_app, spawn_app_with};

const PROJECTIONS: usize = 7;

#[tokio::test]
async fn health_names_the_nats_server_and_the_streams_replicas() {
    let services = Services::start().await;
    let app = spawn_app(&services).await;

    let health = eventually(Duration::from_secs(10), || async {
        let answer = app.get("/health").await;
        let led = answer.body["projections"]
            .as_object()
            .map(|p| p.values().filter(|p| p["leader"] == true).count());
        (answer.status == 200 && led == Some(PROJECTIONS)).then_some(answer.body)
    })
    .await;

    let server = &health["natsServer"];
    assert_eq!(server["url"], services.nats.url.as_str(), "{health}");
    assert!(!server["name"].as_str().unwrap().is_empty(), "{health}");
    assert!(
        server["version"].as_str().unwrap().starts_with('2'),
        "{health}"
    );
    // A single node: one replica, no followers, nothing lagging or offline.
    let stream = &health["stream"];
    assert_eq!(stream["replicas"], 1, "{health}");
    assert_eq!(stream["current"], 0, "{health}");
    assert_eq!(stream["lagging"], 0, "{health}");
    assert_eq!(stream["offline"], 0, "{health}");
    assert_eq!(stream["peers"].as_array().unwrap().len(), 0, "{health}");
    if !stream["leader"].is_null() {
        assert_eq!(stream["leader"], server["name"], "{health}");
    }
}

#[tokio::test]
async fn an_api_instance_leads_no_projection() {
    let services = Services::start().await;
    let api = spawn_app_with(&services, |s| s.roles = vec![ServeRole::Api]).await;
    let health = api.get("/health").await;
    let projections = health.body["projections"].as_object().unwrap();
    assert_eq!(projections.len(), PROJECTIONS, "{}", health.body);
    assert!(
        projections.values().all(|p| p["leader"] == false),
        "{}",
        health.body
    );
}

/// How many projections `worker` leads, from its own `/health`.
async fn led_by(worker: &TestApp) -> usize {
    worker.get("/health").await.body["projections"]
        .as_object()
        .map(|p| p.values().filter(|p| p["leader"] == true).count())
        .unwrap_or(0)
}

/// Ends the Postgres sessions that hold the projections' advisory locks (as a Postgres restart,
/// a network cut or an operator's `pg_terminate_backend` would); returns how many.
async fn kill_lock_connections(db: &sqlx::PgPool) -> i64 {
    let names: Vec<String> = onair::projections::all()
        .iter()
        .map(|p| p.name().to_owned())
        .collect();
    let (killed,): (i64,) = sqlx::query_as(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_locks
         WHERE locktype = 'advisory' AND granted AND objsubid = 1
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
           AND ((classid::bigint << 32) | objid::bigint) IN
               (SELECT hashtext('onair.projection.' || n)::bigint FROM unnest($1::text[]) n)",
    )
    .bind(&names)
    .fetch_one(db)
    .await
    .unwrap();
    killed
}

/// An API instance and a projectors-only worker that leads every projection.
async fn api_and_leading_worker(services: &Services) -> (TestApp, TestApp) {
    let api = spawn_app_with(services, |s| s.roles = vec![ServeRole::Api]).await;
    let worker = spawn_app_with(services, |s| s.roles = vec![ServeRole::Projectors]).await;
    eventually(Duration::from_secs(10), || async {
        (worker.projectors.leading().len() == PROJECTIONS).then_some(())
    })
    .await;
    (api, worker)
}

/// The stage lists `viewers` viewers, and a rebuild from the stream finds no difference (nothing
/// was applied twice or lost).
async fn assert_viewers_once(api: &TestApp, arn: &str, viewers: usize) {
    let list = api
        .get(&format!("/api/viewer/list/{}", crate::helpers::encode(arn)))
        .await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert_eq!(
        list.body["data"]["viewers"].as_array().unwrap().len(),
        viewers,
        "{}",
        list.body
    );
    let report = onair::ops::audit::run(&api.db, &api.state.store, false)
        .await
        .unwrap();
    assert!(report.is_clean(), "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_loses_its_projection_locks_stops_applying_and_one_leader_goes_on() {
    let services = Services::start().await;
    let (api, a) = api_and_leading_worker(&services).await;
    let arn = api.master_stage_arn().await;
    for i in 0..5 {
        let token = api.viewer_token(&format!("before-{i}")).await;
        assert_eq!(token.status, 200, "{}", token.body);
    }
    api.wait_for_projections().await;

    // A alone: its lock connections end while NATS and its consumers are fine. Only its lock
    // check can tell it, and it must stop leading (within the check's interval and timeout,
    // 1 s + 3 s), then take the free locks again.
    assert_eq!(kill_lock_connections(&api.db).await, PROJECTIONS as i64);
    eventually(Duration::from_secs(6), || async {
        (a.projectors.leading().len() < PROJECTIONS).then_some(())
    })
    .await;
    eventually(Duration::from_secs(10), || async {
        (led_by(&a).await == PROJECTIONS).then_some(())
    })
    .await;

    // With a standby B: A loses its locks again, and must not go on applying beside B.
    let b = spawn_app_with(&services, |s| s.roles = vec![ServeRole::Projectors]).await;
    assert_eq!(led_by(&b).await, 0, "the second worker stands by");
    assert_eq!(kill_lock_connections(&api.db).await, PROJECTIONS as i64);

    // Meanwhile the events keep coming; afterwards each projection has exactly one leader, A or
    // B, and no projection is ever led by both for longer than a lock check.
    for i in 0..5 {
        let token = api.viewer_token(&format!("after-{i}")).await;
        assert_eq!(token.status, 200, "{}", token.body);
    }
    let mut both_since: Option<Instant> = None;
    let settled = Instant::now();
    loop {
        let (la, lb) = (a.projectors.leading(), b.projectors.leading());
        let both = la.iter().any(|p| lb.contains(p));
        match (both, both_since) {
            (true, None) => both_since = Some(Instant::now()),
            (true, Some(since)) => assert!(
                since.elapsed() < Duration::from_secs(5),
                "A {la:?} and B {lb:?} both lead"
            ),
            (false, _) => both_since = None,
        }
        if la.len() + lb.len() == PROJECTIONS && !both && settled.elapsed() > Duration::from_secs(3)
        {
            break;
        }
        assert!(
            settled.elapsed() < Duration::from_secs(20),
            "no single leader per projection: A {la:?}, B {lb:?}"
        );
        // The pause between two polls of the leaders (the condition above).
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // /health says what the runners say.
    let (la, lb) = (a.projectors.leading().len(), b.projectors.leading().len());
    assert_eq!((led_by(&a).await, led_by(&b).await), (la, lb));

    // Everything applied once: the read model holds the ten viewers, and a rebuild from the
    // stream finds no difference.
    api.wait_for_projections().await;
    assert_viewers_once(&api, &arn, 10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_under_a_superseded_leader_epoch_is_refused_and_the_runner_leads_again() {
    let services = Services::start().await;
    let (api, worker) = api_and_leading_worker(&services).await;
    let arn = api.master_stage_arn().await;
    let token = api.viewer_token("before").await;
    assert_eq!(token.status, 200, "{}", token.body);
    api.wait_for_projections().await;

    // Another leader's token, as a runner that took the lock would raise it, while this
    // worker's lock connection is fine: only the fence can tell the worker.
    let (epoch,): (i64,) = sqlx::query_as(
        "UPDATE projection_checkpoints SET leader_epoch = leader_epoch + 1
         WHERE projection = 'viewers' RETURNING leader_epoch",
    )
    .fetch_one(&api.db)
    .await
    .unwrap();
    let token = api.viewer_token("after").await;
    assert_eq!(token.status, 200, "{}", token.body);

    // Its next batch is refused, so it stops leading `viewers` (for the 1 s pause before it
    // contends again) ...
    eventually(Duration::from_secs(5), || async {
        (!worker.projectors.leading().contains(&"viewers")).then_some(())
    })
    .await;
    // ... then takes the lock again with a token of its own and applies the viewer once.
    api.wait_for_projections().await;
    let (now,): (i64,) = sqlx::query_as(
        "SELECT leader_epoch FROM projection_checkpoints WHERE projection = 'viewers'",
    )
    .fetch_one(&api.db)
    .await
    .unwrap();
    assert!(
        now > epoch,
        "the runner leads again under epoch {now}, after {epoch}"
    );
    assert_viewers_once(&api, &arn, 2).await;
}
