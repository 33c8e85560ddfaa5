//! Per-API-key rate limits (docs/api.md#rate-limits: 100 requests per minute per key): GCRA kept in
//! Postgres, so the limit holds across instances; over it, 429 `TOO_MANY_REQUESTS` with
//! `Retry-After`, and nothing reaches the handler.

use std::time::Duration;

use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::helpers::{Services, TestApp, eventually, spawn_app, spawn_app_with};

/// One answer: status, headers and JSON body (Null when not JSON).
struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Reply {
    fn header(&self, name: &str) -> Option<u64> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().parse().unwrap())
    }

    fn remaining(&self) -> u64 {
        self.header("ratelimit-remaining")
            .expect("RateLimit-Remaining")
    }
}

async fn reply(request: reqwest::RequestBuilder) -> Reply {
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    Reply {
        status,
        headers,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
    }
}

async fn get(app: &TestApp, key: &str, path: &str) -> Reply {
    reply(
        app.client
            .get(format!("{}{path}", app.address))
            .header("x-api-key", key),
    )
    .await
}

async fn post(app: &TestApp, key: &str, path: &str, body: &Value) -> Reply {
    reply(
        app.client
            .post(format!("{}{path}", app.address))
            .header("x-api-key", key)
            .json(body),
    )
    .await
}

async fn key_with_limit(app: &TestApp, name: &str, limit: i32) -> (uuid::Uuid, String) {
    let (record, key) = onair::records::api_keys::create(&app.db, name, limit)
        .await
        .expect("api key");
    (record.id, key)
}

fn assert_refused(reply: &Reply, limit: u64) {
    assert_eq!(reply.status, 429, "body: {}", reply.body);
    assert_eq!(reply.body["error"], "TOO_MANY_REQUESTS", "{}", reply.body);
    assert!(
        reply.body["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{}",
        reply.body
    );
    let retry_after = reply.header("retry-after").expect("Retry-After");
    // One emission interval (60 s / limit) frees one request.
    assert!(
        (1..=60 / limit).contains(&retry_after),
        "Retry-After {retry_after}"
    );
    assert_eq!(reply.header("ratelimit-limit"), Some(limit));
    assert_eq!(reply.remaining(), 0);
    assert!(reply.header("ratelimit-reset").unwrap() >= retry_after);
}

#[tokio::test]
async fn a_key_gets_its_limit_then_429_and_other_keys_are_unaffected() {
    let services = Services::start().await;
    let app = spawn_app(&services).await;
    let (_, key) = key_with_limit(&app, "limited", 5).await;
    let (_, other) = key_with_limit(&app, "other", 5).await;

    for expected_remaining in (0..5).rev() {
        let answer = get(&app, &key, "/api/stats").await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.header("ratelimit-limit"), Some(5));
        assert_eq!(answer.remaining(), expected_remaining);
        // The full burst is back one interval (12 s) per request made.
        let reset = answer.header("ratelimit-reset").unwrap();
        assert!(
            (1..=12 * (5 - expected_remaining)).contains(&reset),
            "reset {reset}"
        );
        assert_eq!(answer.header("retry-after"), None);
    }
    let refused = get(&app, &key, "/api/stats").await;
    assert_refused(&refused, 5);
    // Refused requests do not use up more of the budget.
    let again = get(&app, &key, "/api/stats").await;
    assert_refused(&again, 5);
    assert!(again.header("retry-after") <= refused.header("retry-after"));

    // Another key has its own budget; so has the harness's key.
    let answer = get(&app, &other, "/api/stats").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.remaining(), 4);
    assert_eq!(app.get("/api/stats").await.status, 200);

    // The docs and the spec are not counted.
    let spec = get(&app, &key, "/openapi.json").await;
    assert_eq!(spec.status, 200);
    assert_eq!(spec.header("ratelimit-limit"), None);
}

#[tokio::test]
async fn error_answers_are_counted_and_carry_the_headers() {
    let services = Services::start().await;
    let app = spawn_app(&services).await;
    let (_, key) = key_with_limit(&app, "limited", 3).await;

    let bad = post(&app, &key, "/api/token/viewer", &json!({})).await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert_eq!(bad.body["error"], "VALIDATION_ERROR");
    assert_eq!(bad.remaining(), 2);
    let missing = get(&app, &key, "/api/no-such-route").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body["error"], "NOT_FOUND");
    assert_eq!(missing.remaining(), 1);

    // Unknown keys and requests without a key are left to the auth: 401, not counted.
    let unknown = get(&app, "onair_unknown", "/api/stats").await;
    assert_eq!(unknown.status, 401);
    assert_eq!(unknown.header("ratelimit-limit"), None);
    let health = reply(app.client.get(format!("{}/health", app.address))).await;
    assert_eq!(health.status, 200);
    assert_eq!(health.header("ratelimit-limit"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_the_limit() {
    let services = Services::start().await;
    let a = spawn_app(&services).await;
    let b = spawn_app(&services).await;
    let (_, key) = key_with_limit(&a, "shared", 5).await;

    let mut statuses = Vec::new();
    for app in [&a, &a, &a, &b, &b, &b] {
        statuses.push(get(app, &key, "/api/stats").await.status);
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429]);

    // Concurrently, over both instances: still exactly the burst.
    let (_, key) = key_with_limit(&a, "shared-concurrent", 5).await;
    let answers = join_all((0..16).map(|i| {
        let app = if i % 2 == 0 { &a } else { &b };
        let key = key.clone();
        async move { get(app, &key, "/api/stats").await }
    }))
    .await;
    let passed = answers.iter().filter(|r| r.status == 200).count();
    let refused: Vec<_> = answers.iter().filter(|r| r.status == 429).collect();
    assert_eq!((passed, refused.len()), (5, 11));
    for r in refused {
        assert_refused(r, 5);
    }
    let mut remaining: Vec<u64> = answers
        .iter()
        .filter(|r| r.status == 200)
        .map(Reply::remaining)
        .collect();
    remaining.sort_unstable();
    assert_eq!(remaining, [0, 1, 2, 3, 4]);
}

#[tokio::test]
async fn a_refused_request_publishes_nothing() {
    let services = Services::start().await;
    let app = spawn_app(&services).await;
    let (_, key) = key_with_limit(&app, "one-a-minute", 1).await;

    let first = post(
        &app,
        &key,
        "/api/token/viewer",
        &json!({"userId": "viewer-1"}),
    )
    .await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.remaining(), 0);

    let before = app.stream_messages().await;
    let refused = post(
        &app,
        &key,
        "/api/token/viewer",
        &json!({"userId": "viewer-2"}),
    )
    .await;
    assert_refused(&refused, 1);
    assert_eq!(app.stream_messages().await, before);
    app.wait_for_projections().await;
    let seated: i64 = sqlx::query_scalar("SELECT count(*) FROM rm_viewer_seats WHERE user_id = $1")
        .bind("viewer-2")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(seated, 0);
}

#[tokio::test]
async fn a_changed_limit_applies_within_the_key_cache_time() {
    let services = Services::start().await;
    let app = spawn_app_with(&services, |s| s.api_key_cache_secs = 1).await;
    let (id, key) = key_with_limit(&app, "raised", 1).await;
    assert_eq!(get(&app, &key, "/api/stats").await.status, 200);
    assert_refused(&get(&app, &key, "/api/stats").await, 1);

    assert!(
        onair::records::api_keys::set_rate_limit(&app.db, id, 100)
            .await
            .unwrap()
    );
    let answer = eventually(Duration::from_secs(5), || async {
        let answer = get(&app, &key, "/api/stats").await;
        (answer.status == 200).then_some(answer)
    })
    .await;
    assert_eq!(answer.header("ratelimit-limit"), Some(100));

    assert!(
        !onair::records::api_keys::set_rate_limit(&app.db, uuid::Uuid::nil(), 5)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn limits_fail_open_when_their_table_cannot_be_used() {
    let services = Services::start().await;
    let app = spawn_app(&services).await;
    let (_, key) = key_with_limit(&app, "fail-open", 1).await;
    sqlx::query("DROP TABLE api_key_rate_limits")
        .execute(&app.db)
        .await
        .unwrap();
    for _ in 0..3 {
        let answer = get(&app, &key, "/api/stats").await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.header("ratelimit-limit"), None);
    }
}

#[tokio::test]
async fn limits_can_be_turned_off() {
    let services = Services::start().await;
    let app = spawn_app_with(&services, |s| s.rate_limits = false).await;
    let (_, key) = key_with_limit(&app, "unlimited", 1).await;
    for _ in 0..3 {
        let answer = get(&app, &key, "/api/stats").await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.header("ratelimit-limit"), None);
    }
}
