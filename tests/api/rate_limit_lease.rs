//! The rate limiter's in-memory hot path: each instance leases slices of a key's budget from the
//! shared Postgres bucket and spends them locally, and the key's limit still holds across
//! instances within the documented bound (at most instances × slice over the limit).

use std::time::Instant;

use futures_util::future::join_all;

use crate::helpers::{Services, TestApp, spawn_app_with};

const LIMIT: i32 = 600;
/// 5 % of 600.
const SLICE: u64 = 30;

async fn status(app: &TestApp, key: &str) -> u16 {
    app.client
        .get(format!("{}/api/stats", app.address))
        .header("x-api-key", key)
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_keys_limit_within_instances_times_slice() {
    let services = Services::start().await;
    let leasing = |s: &mut onair::server::config::ServeSettings| {
        s.rate_limit_slice_percent = 5;
        s.rate_limit_lease_ms = 60_000;
    };
    let a = spawn_app_with(&services, leasing).await;
    let b = spawn_app_with(&services, leasing).await;
    let (record, key) = onair::records::api_keys::create(&a.db, "shared", LIMIT)
        .await
        .expect("api key");

    // One request leases a whole slice: the shared bucket is charged 30 intervals (3 s) at once.
    assert_eq!(status(&a, &key).await, 200);
    let (ahead,): (f64,) = sqlx::query_as(
        "SELECT extract(epoch FROM tat - now())::float8 FROM api_key_rate_limits \
         WHERE api_key_id = $1",
    )
    .bind(record.id)
    .fetch_one(&a.db)
    .await
    .unwrap();
    assert!((2.5..=3.0).contains(&ahead), "tat ahead by {ahead} s");

    // Both instances spend the key's budget until well past it.
    let started = Instant::now();
    let mut allowed = 1u64;
    let mut refused_late = [0u64; 2];
    for round in 0..45 {
        let answers = join_all((0..20).map(|i| {
            let app = if i % 2 == 0 { &a } else { &b };
            status(app, &key)
        }))
        .await;
        for (i, s) in answers.into_iter().enumerate() {
            assert!(s == 200 || s == 429, "status {s}");
            allowed += u64::from(s == 200);
            if round >= 40 && s == 429 {
                refused_late[i % 2] += 1;
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64() + 0.5;
    // The bucket refills one request per 100 ms while the test runs.
    let refill = (elapsed * f64::from(LIMIT) / 60.0).ceil() as u64;
    let limit = LIMIT as u64;
    assert!(
        allowed <= limit + 2 * SLICE + refill,
        "{allowed} allowed: more than {limit} + 2 x {SLICE} + {refill} refilled"
    );
    assert!(
        allowed + 2 * SLICE >= limit,
        "{allowed} allowed: the instances wasted more than 2 slices of {limit}"
    );
    // Over the limit, both instances refuse.
    assert!(refused_late.iter().all(|&n| n > 0), "{refused_late:?}");
}
