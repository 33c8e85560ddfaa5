use serde_json::json;

use std::time::Duration;

use crate::helpers::{Services, eventually, spawn_app, spawn_app_with};

#[tokio::test]
async fn every_api_route_needs_a_valid_api_key() {
    let services = Services::start().await;
    let app = spawn_app(&services).await;
    let client = reqwest::Client::new();

    for key in [None, Some("onair_wrong"), Some("")] {
        let mut request = client
            .post(format!("{}/api/token/viewer", app.address))
            .json(&json!({"userId": "v"}));
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "key {key:?}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"], "UNAUTHORIZED");
    }
    let stats = client
        .get(format!("{}/api/stats", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(stats.status(), 401);
}

#[tokio::test]
async fn a_revoked_key_is_refused_within_the_cache_time() {
    let services = Services::start().await;
    let app = spawn_app_with(&services, |s| s.api_key_cache_secs = 1).await;
    let (record, key) = onair::records::api_keys::create(&app.db, "temp", 100)
        .await
        .unwrap();
    let call = || {
        app.client
            .get(format!("{}/api/stats", app.address))
            .header("x-api-key", &key)
            .send()
    };
    assert_eq!(call().await.unwrap().status(), 200);

    assert!(
        onair::records::api_keys::revoke(&app.db, record.id)
            .await
            .unwrap()
    );

    eventually(Duration::from_secs(3), || async {
        (call().await.unwrap().status() == 401).then_some(())
    })
    .await;
}

#[tokio::test]
async fn bad_input_gets_a_validation_error_naming_the_field_and_stores_nothing() {
    let services = Services::start().await;
    let app = spawn_app(&services).await;
    let before = app.stream_messages().await;
    let master = app.master_stage_arn().await;

    let cases = [
        ("/api/token/viewer", json!({}).to_string(), "userId"),
        (
            "/api/token/viewer",
            json!({"userId": ""}).to_string(),
            "userId",
        ),
        (
            "/api/token/viewer",
            json!({"userId": "   "}).to_string(),
            "userId",
        ),
        (
            "/api/token/viewer",
            json!({"userId": "x".repeat(101)}).to_string(),
            "userId",
        ),
        (
            "/api/token/viewer",
            json!({"userId": 123}).to_string(),
            "userId",
        ),
        (
            "/api/token/viewer",
            json!({"userId": "a\nb"}).to_string(),
            "userId",
        ),
        (
            "/api/token/viewer",
            json!({"userId": "v", "attributes": "x"}).to_string(),
            "attributes",
        ),
        (
            "/api/token/viewer",
            json!({"userId": "v", "attributes": {"a": "x".repeat(1100)}}).to_string(),
            "attributes",
        ),
        ("/api/token/publisher", "{not json".to_owned(), ""),
        (
            "/api/token/publisher",
            json!({"attributes": {}}).to_string(),
            "userId",
        ),
        (
            "/api/viewer/heartbeat",
            json!({"userId": "v"}).to_string(),
            "stageArn",
        ),
        (
            "/api/viewer/heartbeat",
            json!({"userId": "v", "stageArn": "not-an-arn"}).to_string(),
            "stageArn",
        ),
        (
            "/api/viewer/heartbeat",
            json!({"stageArn": master}).to_string(),
            "userId",
        ),
        (
            "/api/viewer/leave",
            json!({"userId": "", "stageArn": master}).to_string(),
            "userId",
        ),
    ];
    for (path, body, field) in cases {
        let answer = app.post_raw(path, body.clone()).await;
        let message = answer.expect_error(400, "VALIDATION_ERROR");
        assert!(message.contains(field), "{path} {body}: {message}");
        let details = answer.body["details"].as_str().unwrap();
        assert!(details.starts_with(field), "{path} {body}: {details}");
    }
    // As the seed's example: `{"error": "VALIDATION_ERROR", ..., "details": "userId is required"}`.
    let missing = app.post_raw("/api/token/viewer", "{}".to_owned()).await;
    assert_eq!(
        missing.body["details"], "userId is required",
        "{}",
        missing.body
    );
    let missing_query = app.get("/api/viewer/duration?userId=v").await;
    let message = missing_query.expect_error(400, "VALIDATION_ERROR");
    assert!(message.contains("stageArn"), "{message}");

    assert_eq!(app.stream_messages().await, before, "nothing was published");
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_get_the_error_body() {
    let services = Services::start().await;
    let app = spawn_app(&services).await;

    app.get("/api/nothing-here")
        .await
        .expect_error(404, "NOT_FOUND");
    let wrong_method = app.get("/api/token/viewer").await;
    assert_eq!(wrong_method.status, 405, "{}", wrong_method.body);
    assert_eq!(wrong_method.body["error"], "METHOD_NOT_ALLOWED");
    assert_eq!(wrong_method.body["success"], false);
    // RFC 9110: a 405 lists the path's methods in `Allow`.
    assert_eq!(
        wrong_method.headers.get("allow").unwrap().to_str().unwrap(),
        "POST"
    );
    let stage = app
        .post(
            "/api/stage/arn%3Aaws%3Aivs%3Aus-east-1%3A1%3Astage%2Fabc",
            &json!({}),
        )
        .await;
    assert_eq!(stage.status, 405, "{}", stage.body);
    assert_eq!(
        stage.headers.get("allow").unwrap().to_str().unwrap(),
        "GET, PUT, DELETE"
    );
    let big = app
        .post_raw(
            "/api/token/viewer",
            format!("{{\"userId\":\"{}\"}}", "x".repeat(70_000)),
        )
        .await;
    assert_eq!(big.status, 413, "{}", big.body);
    assert_eq!(big.body["error"], "PAYLOAD_TOO_LARGE");
}

/// A text Postgres refuses (a NUL) is the request's fault: a 400 that says so, not a 503 that
/// invites a retry. Every route validates its text first; this is the net under them. A broken
/// query is a 500, and only an unreachable database a 503.
#[tokio::test]
async fn database_errors_map_to_400_for_a_nul_500_for_a_bug_and_503_for_an_outage() {
    let services = Services::start().await;
    let app = spawn_app(&services).await;
    let refused = sqlx::query("SELECT $1::text")
        .bind("a\u{0}b")
        .execute(&app.db)
        .await
        .unwrap_err();
    let response =
        poem::IntoResponse::into_response(onair::http::api_error::ApiError::from(refused));
    assert_eq!(response.status(), 400);
    let body: serde_json::Value =
        serde_json::from_slice(&response.into_body().into_vec().await.unwrap()).unwrap();
    assert_eq!(body["error"], "VALIDATION_ERROR");
    assert!(body["message"].as_str().unwrap().contains("NUL"), "{body}");

    // A broken query is a bug, not an outage: 500 INTERNAL_ERROR, not a 503 inviting retries.
    let broken = sqlx::query("SELECT * FROM no_such_table")
        .execute(&app.db)
        .await
        .unwrap_err();
    let response =
        poem::IntoResponse::into_response(onair::http::api_error::ApiError::from(broken));
    assert_eq!(response.status(), 500);
    let body: serde_json::Value =
        serde_json::from_slice(&response.into_body().into_vec().await.unwrap()).unwrap();
    assert_eq!(body["error"], "INTERNAL_ERROR");
    assert_eq!(body["message"], "internal server error");

    // Postgres out of reach is an outage: 503 SERVICE_UNAVAILABLE, and the client may retry.
    let closed = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_lazy_with(app.db.connect_options().as_ref().clone());
    closed.close().await;
    let unreachable = sqlx::query("SELECT 1").execute(&closed).await.unwrap_err();
    let response =
        poem::IntoResponse::into_response(onair::http::api_error::ApiError::from(unreachable));
    assert_eq!(response.status(), 503);
    let body: serde_json::Value =
        serde_json::from_slice(&response.into_body().into_vec().await.unwrap()).unwrap();
    assert_eq!(body["error"], "SERVICE_UNAVAILABLE");
}

/// A stage ARN in a path or a query, and an `Idempotency-Key` header, are checked by their types'
/// rules as the request is read: 400 `VALIDATION_ERROR` whose `details` lead with the field.
#[tokio::test]
async fn typed_path_query_and_header_values_are_refused_naming_the_field() {
    let services = Services::start().await;
    let app = spawn_app(&services).await;
    let before = app.stream_messages().await;
    for path in [
        "/api/viewer/list/not-an-arn",
        "/api/stage/arn%3Aaws%3Aivs%3AUS-EAST-1%3A1%3Astage%2Fabc",
        "/api/stats/stages/arn%3Aaws%3Aivs%3Aus-east-1%3A1%3Astage%2Fa.b",
        "/api/viewer/duration?userId=u&stageArn=not-an-arn",
        "/api/viewer/duration?userId=u&stageArn=",
    ] {
        let answer = app.get(path).await;
        let message = answer.expect_error(400, "VALIDATION_ERROR");
        assert!(message.contains("stageArn"), "{path}: {message}");
        let details = answer.body["details"].as_str().unwrap();
        assert!(details.starts_with("stageArn"), "{path}: {details}");
    }
    for key in ["a b", &"k".repeat(256)] {
        let answer = app
            .client
            .post(format!("{}/api/token/viewer", app.address))
            .header("x-api-key", &app.api_key)
            .header("Idempotency-Key", key)
            .json(&json!({"userId": "v"}))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 400, "{key}");
        let body: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(body["error"], "VALIDATION_ERROR", "{body}");
        let details = body["details"].as_str().unwrap();
        assert!(details.starts_with("Idempotency-Key"), "{details}");
    }
    assert_eq!(app.stream_messages().await, before, "nothing was published");
}
