use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use onair::ivs::token::ParticipantClaims;
use serde_json::json;

use crate::helpers::{Services, TestApp, spawn_app};

async fn verify_with_served_key(app: &TestApp, token: &str) -> ParticipantClaims {
    let key = reqwest::get(format!("{}/api/token/public-key", app.address))
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    let pem = key["data"]["publicKeyPem"]
        .as_str()
        .expect("public key pem");
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, Algorithm::ES384);
    assert_eq!(header.kid.as_deref(), key["data"]["kid"].as_str());
    assert!(header.kid.unwrap().contains(":public-key/"));
    let key = DecodingKey::from_ec_pem(pem.as_bytes()).unwrap();
    jsonwebtoken::decode::<ParticipantClaims>(token, &key, &Validation::new(Algorithm::ES384))
        .expect("the token verifies with the served public key")
        .claims
}

#[tokio::test]
async fn a_publisher_token_is_an_es384_ivs_token_for_the_master_stage_valid_4_hours() {
    let services = Services::start().await;
    let app = spawn_app(&services).await;

    let answer = app
        .post(
            "/api/token/publisher",
            &json!({"userId": "broadcaster-001", "attributes": {"displayName": "主播小明"}}),
        )
        .await;

    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["success"], true);
    let data = answer.data();
    assert_eq!(data["userId"], "broadcaster-broadcaster-001");
    assert_eq!(data["capabilities"], json!(["PUBLISH"]));
    assert_eq!(data["stageArn"], app.master_stage_arn().await);
    assert_eq!(data["attributes"]["displayName"], "主播小明");
    let claims = verify_with_served_key(&app, data["token"].as_str().unwrap()).await;
    assert_eq!(claims.exp - claims.iat, 4 * 3600);
    assert_eq!(claims.jti, data["participantId"].as_str().unwrap());
    assert_eq!(claims.resource, data["stageArn"].as_str().unwrap());
    assert!(claims.capabilities.allow_publish && !claims.capabilities.allow_subscribe);
    assert_eq!(claims.user_id, "broadcaster-broadcaster-001");
    let expires_at = data["expiresAt"].as_str().unwrap();
    assert!(
        expires_at.ends_with(".000Z") && expires_at.len() == 24,
        "{expires_at}"
    );
    assert!(answer.event_sequence() > 0);
}

#[tokio::test]
async fn a_viewer_token_seats_the_viewer_and_subscribes_for_1_hour() {
    let services = Services::start().await;
    let app = spawn_app(&services).await;

    let answer = app
        .post(
            "/api/token/viewer",
            &json!({"userId": "viewer-001", "attributes": {"displayName": "觀眾小華", "level": 3}}),
        )
        .await;

    assert_eq!(answer.status, 200, "{}", answer.body);
    let data = answer.data();
    assert_eq!(data["userId"], "viewer-viewer-001");
    assert_eq!(data["capabilities"], json!(["SUBSCRIBE"]));
    assert_eq!(data["currentViewers"], 1);
    assert_eq!(data["attributes"]["level"], 3);
    let claims = verify_with_served_key(&app, data["token"].as_str().unwrap()).await;
    assert_eq!(claims.exp - claims.iat, 3600);
    assert!(claims.capabilities.allow_subscribe && !claims.capabilities.allow_publish);
    assert_eq!(claims.attributes["level"], "3");
    assert_eq!(claims.topic, claims.resource.rsplit('/').next().unwrap());
}

#[tokio::test]
async fn asking_again_renews_the_token_on_the_same_seat() {
    let services = Services::start().await;
    let app = spawn_app(&services).await;

    let first = app.viewer_token("viewer-001").await;
    let second = app.viewer_token("viewer-001").await;

    assert_eq!(second.status, 200);
    assert_eq!(first.data()["stageArn"], second.data()["stageArn"]);
    assert_ne!(
        first.data()["participantId"],
        second.data()["participantId"]
    );
    assert_eq!(second.data()["currentViewers"], 1);
    app.wait_for_projections().await;
    let list = app
        .get(&format!(
            "/api/viewer/list/{}",
            crate::helpers::encode(first.data()["stageArn"].as_str().unwrap())
        ))
        .await;
    assert_eq!(list.data()["totalViewers"], 1);
    assert_eq!(
        list.data()["viewers"][0]["participantId"],
        second.data()["participantId"]
    );
}

#[tokio::test]
async fn a_retry_with_the_same_idempotency_key_gets_the_first_answer_and_stores_nothing_new() {
    let services = Services::start().await;
    let app = spawn_app(&services).await;
    let before = app.stream_messages().await;
    let send = |key: &'static str, user: &'static str| {
        app.client
            .post(format!("{}/api/token/viewer", app.address))
            .header("x-api-key", &app.api_key)
            .header("Idempotency-Key", key)
            .json(&json!({"userId": user}))
            .send()
    };

    let first = send("retry-42", "viewer-001").await.unwrap();
    let second = send("retry-42", "viewer-001").await.unwrap();

    assert_eq!(first.status(), 200);
    assert_eq!(second.status(), 200);
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    assert_eq!(
        first.headers()["x-event-sequence"],
        second.headers()["x-event-sequence"]
    );
    let first: serde_json::Value = first.json().await.unwrap();
    let second: serde_json::Value = second.json().await.unwrap();
    assert_eq!(first, second, "the same token, participant and seat");
    assert_eq!(app.stream_messages().await, before + 1);

    let reused = send("retry-42", "someone-else").await.unwrap();
    assert_eq!(reused.status(), 422);
    let body: serde_json::Value = reused.json().await.unwrap();
    assert_eq!(body["error"], "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(app.stream_messages().await, before + 1);

    let other_key = send("retry-43", "viewer-002").await.unwrap();
    assert_eq!(other_key.status(), 200);
    assert!(other_key.headers().get("idempotent-replayed").is_none());
}

#[tokio::test]
async fn a_failed_request_does_not_keep_its_idempotency_key() {
    let services = Services::start().await;
    let app = spawn_app(&services).await;
    let send = |body: serde_json::Value| {
        app.client
            .post(format!("{}/api/token/publisher", app.address))
            .header("x-api-key", &app.api_key)
            .header("Idempotency-Key", "fix-and-retry")
            .json(&body)
            .send()
    };

    let bad = send(json!({"userId": ""})).await.unwrap();
    assert_eq!(bad.status(), 400);
    let fixed = send(json!({"userId": "broadcaster-001"})).await.unwrap();
    assert_eq!(fixed.status(), 200);
}

#[tokio::test]
async fn every_instance_signs_with_the_same_kept_key() {
    let services = Services::start().await;
    let first = spawn_app(&services).await;
    let second = spawn_app(&services).await;

    let a = reqwest::get(format!("{}/api/token/public-key", first.address))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let b = reqwest::get(format!("{}/api/token/public-key", second.address))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(a, b);
    assert_eq!(
        first.master_stage_arn().await,
        second.master_stage_arn().await
    );
}
