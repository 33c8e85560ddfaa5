//! The whole server on the `aws` stage provider, the real aws-sdk-ivsrealtime talking to the local
//! IVS stub.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use onair::ivs::token::ParticipantClaims;
use serde_json::json;

use crate::helpers::{Services, TestApp, encode, spawn_app_with};
use crate::ivs_stub::IvsStub;

async fn spawn_on_aws(
    services: &Services,
    stub: &IvsStub,
    public_key_arn: Option<&str>,
) -> TestApp {
    // The SDK's default credential chain reads these; the stub does not check signatures.
    // SAFETY: set before the app starts its clients; each test runs in its own process.
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", "AKIDTEST");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "test-secret");
    }
    let url = stub.url.clone();
    let key_arn = public_key_arn.map(str::to_owned);
    spawn_app_with(services, move |s| {
        s.stage_provider = onair::server::config::StageProviderKind::Aws;
        s.aws_endpoint_url = Some(url);
        s.aws_max_attempts = 2;
        s.ivs_public_key_arn = key_arn;
    })
    .await
}

#[tokio::test]
async fn on_aws_the_master_stage_is_created_in_ivs_and_viewer_tokens_come_from_ivs() {
    let services = Services::start().await;
    let stub = IvsStub::start().await;
    let app = spawn_on_aws(&services, &stub, None).await;

    let master = app.master_stage_arn().await;
    let in_ivs = stub.stage(&master).expect("the master stage exists in IVS");
    assert_eq!(in_ivs.name, "master-stage");
    assert_eq!(in_ivs.tags["ManagedBy"], "onair");

    let token = app.viewer_token("viewer-001").await;
    assert_eq!(token.status, 200, "{}", token.body);
    assert_eq!(token.data()["stageArn"], master);
    assert_eq!(stub.calls("CreateParticipantToken"), 1);
    let sent = &stub.bodies("CreateParticipantToken")[0];
    assert_eq!(sent["userId"], "viewer-viewer-001");
    assert_eq!(sent["duration"], 60);
    assert_eq!(sent["capabilities"], json!(["SUBSCRIBE"]));

    let health = reqwest::get(format!("{}/health", app.address))
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(health["stageProvider"], "aws");
}

#[tokio::test]
async fn on_aws_with_an_imported_public_key_tokens_are_self_signed_with_the_stage_endpoints() {
    let services = Services::start().await;
    let stub = IvsStub::start().await;
    let key_arn = "arn:aws:ivs:us-east-1:123456789012:public-key/imported";
    let app = spawn_on_aws(&services, &stub, Some(key_arn)).await;
    let master = app.master_stage_arn().await;

    let first = app.viewer_token("a").await;
    let second = app.viewer_token("b").await;

    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(stub.calls("CreateParticipantToken"), 0);
    let token = second.data()["token"].as_str().unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.kid.as_deref(), Some(key_arn));
    let key = app.state.public_key.pem.clone();
    let claims = jsonwebtoken::decode::<ParticipantClaims>(
        token,
        &DecodingKey::from_ec_pem(key.as_bytes()).unwrap(),
        &Validation::new(Algorithm::ES384),
    )
    .unwrap()
    .claims;
    let in_ivs = stub.stage(&master).unwrap();
    assert_eq!(claims.whip_url, in_ivs.whip);
    assert_eq!(claims.events_url, in_ivs.events);
}

#[tokio::test]
async fn on_aws_managed_stages_are_adopted_and_orphans_are_found_and_deleted() {
    let services = Services::start().await;
    let stub = IvsStub::start().await;
    let existing = stub.insert_stage_with_tags(
        "auto-stage-1",
        &[("ManagedBy", "onair"), ("AutoScaled", "true")],
    );
    let foreign = stub.insert_stage_with_tags("someone-elses", &[("Owner", "marketing")]);
    let app = spawn_on_aws(&services, &stub, None).await;

    app.wait_for_projections().await;
    let adopted = app
        .get(&format!("/api/stage/{}", encode(&existing.arn)))
        .await;
    assert_eq!(adopted.status, 200, "{}", adopted.body);
    app.get(&format!("/api/stage/{}", encode(&foreign.arn)))
        .await
        .expect_error(404, "NOT_FOUND");
    assert!(
        app.state
            .pool
            .read(|p| p.stage(&existing.arn).is_some_and(|s| s.auto_scaled))
    );

    let orphan = stub.insert_stage_with_tags("leftover", &[("ManagedBy", "onair")]);
    let (orphans, missing) = app.state.pool.reconcile(false).await.unwrap();
    assert_eq!(orphans, vec![orphan.arn.clone()]);
    assert!(missing.is_empty());
    assert!(
        stub.stage(&orphan.arn).is_some(),
        "only reported without the flag"
    );

    app.state.pool.reconcile(true).await.unwrap();
    assert!(stub.stage(&orphan.arn).is_none());
    assert!(
        stub.stage(&foreign.arn).is_some(),
        "stages onair does not manage are left alone"
    );
}

#[tokio::test]
async fn on_aws_an_ivs_quota_refusal_is_stage_limit_reached() {
    let services = Services::start().await;
    let stub = IvsStub::start().await;
    let app = spawn_on_aws(&services, &stub, None).await;
    stub.set_stage_quota(1);

    app.post("/api/stage", &json!({"name": "one-more"}))
        .await
        .expect_error(503, "STAGE_LIMIT_REACHED");
}
