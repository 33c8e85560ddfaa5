//! The `aws` stage provider with the real `aws-sdk-ivsrealtime` client against the local IVS
//! stub ([`crate::ivs_stub`]). These tests need no NATS and no PostgreSQL.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_sdk_ivsrealtime::config::Credentials;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use onair::ivs::arn::{is_stage_arn, public_key_arn, stage_arn, stage_id};
use onair::ivs::aws::{AwsProviderSettings, AwsStageProvider};
use onair::ivs::keys::generate_key_pair;
use onair::ivs::token::{ParticipantClaims, TokenSigner};
use onair::ivs::{Capability, ProviderError, StageProvider, TokenRequest};
use serde_json::json;
use time::OffsetDateTime;

use crate::ivs_stub::{IvsStub, STUB_ACCOUNT, STUB_REGION};

fn settings(endpoint_url: &str) -> AwsProviderSettings {
    AwsProviderSettings {
        region: "us-east-1".into(),
        endpoint_url: Some(endpoint_url.to_owned()),
        max_attempts: 2,
        credentials: Some(Credentials::new(
            "AKIDTEST",
            "test-secret",
            None,
            None,
            "static-test",
        )),
    }
}

async fn provider(stub: &IvsStub) -> AwsStageProvider {
    AwsStageProvider::from_settings(&settings(&stub.url), None).await
}

/// A signer whose own URLs are placeholders, so tokens show which endpoints they were given.
fn signer() -> (TokenSigner, String) {
    let pair = generate_key_pair();
    let signer = TokenSigner::new(
        &pair.private_key_pem,
        public_key_arn(STUB_REGION, STUB_ACCOUNT, "test-key"),
        "wss://signer-default.invalid".into(),
        "https://signer-default.invalid".into(),
    )
    .unwrap();
    (signer, pair.public_key_pem)
}

fn viewer_request(stage_arn: &str, user: &str) -> TokenRequest {
    TokenRequest {
        stage_arn: stage_arn.to_owned(),
        user_id: format!("viewer-{user}"),
        capabilities: vec![Capability::Subscribe],
        duration_seconds: 3601,
        attributes: BTreeMap::from([("level".to_owned(), "VIP".to_owned())]),
        issued_at: OffsetDateTime::now_utc(),
    }
}

fn managed_tags() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("ManagedBy".to_owned(), "onair".to_owned()),
        ("Environment".to_owned(), "test".to_owned()),
    ])
}

fn unknown_arn() -> String {
    stage_arn(STUB_REGION, STUB_ACCOUNT, "doesNotExist1")
}

fn verify(token: &str, public_key_pem: &str) -> ParticipantClaims {
    let key = DecodingKey::from_ec_pem(public_key_pem.as_bytes()).unwrap();
    jsonwebtoken::decode::<ParticipantClaims>(token, &key, &Validation::new(Algorithm::ES384))
        .expect("the token verifies with the signer's public key")
        .claims
}

#[tokio::test]
async fn a_stage_is_created_read_renamed_listed_across_pages_and_deleted() {
    let stub = IvsStub::start().await;
    stub.set_max_page_size(2);
    let aws = provider(&stub).await;

    let created = aws
        .create_stage("master-stage".into(), managed_tags())
        .await
        .unwrap();
    assert!(is_stage_arn(&created.arn), "{}", created.arn);
    assert_eq!(created.name, "master-stage");
    assert_eq!(created.tags, managed_tags());
    assert_eq!(created.active_session_id, None);
    assert_eq!(
        stub.bodies("CreateStage")[0],
        json!({"name": "master-stage", "tags": {"ManagedBy": "onair", "Environment": "test"}})
    );

    let read = aws.get_stage(created.arn.clone()).await.unwrap();
    assert_eq!(read.as_ref(), Some(&created));

    let renamed = aws
        .update_stage(created.arn.clone(), "renamed-stage".into())
        .await
        .unwrap();
    assert_eq!(renamed.arn, created.arn);
    assert_eq!(renamed.name, "renamed-stage");
    assert_eq!(stub.stage(&created.arn).unwrap().name, "renamed-stage");

    let mut arns = BTreeSet::from([created.arn.clone()]);
    for i in 0..4 {
        let stage = aws
            .create_stage(format!("stage-{i}"), managed_tags())
            .await
            .unwrap();
        arns.insert(stage.arn);
    }
    stub.set_active_session(&created.arn, Some("st-1CVugbu2cf2n8"));

    let listed = aws.list_stages().await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|s| s.arn.clone())
            .collect::<BTreeSet<_>>(),
        arns
    );
    assert_eq!(listed.len(), 5, "no stage is listed twice");
    let master = listed.iter().find(|s| s.arn == created.arn).unwrap();
    assert_eq!(master.name, "renamed-stage");
    assert_eq!(master.tags, managed_tags());
    assert_eq!(
        master.active_session_id.as_deref(),
        Some("st-1CVugbu2cf2n8")
    );
    let pages = stub.bodies("ListStages");
    assert_eq!(pages.len(), 3, "5 stages in pages of 2 take 3 calls");
    assert_eq!(pages[0], json!({"maxResults": 100}));
    assert_eq!(pages[1], json!({"maxResults": 100, "nextToken": "2"}));
    assert_eq!(pages[2], json!({"maxResults": 100, "nextToken": "4"}));

    aws.delete_stage(created.arn.clone()).await.unwrap();
    assert_eq!(stub.stage_count(), 4);
    assert!(stub.stage(&created.arn).is_none());
    assert_eq!(aws.get_stage(created.arn.clone()).await.unwrap(), None);
}

#[tokio::test]
async fn creating_a_stage_beyond_the_ivs_quota_reports_quota_exceeded() {
    let stub = IvsStub::start().await;
    stub.set_stage_quota(1);
    let aws = provider(&stub).await;

    aws.create_stage("first".into(), managed_tags())
        .await
        .unwrap();
    let refused = aws.create_stage("second".into(), managed_tags()).await;

    match refused {
        Err(ProviderError::QuotaExceeded(reason)) => {
            assert!(reason.contains("quota"), "{reason}")
        }
        other => panic!("expected QuotaExceeded, got {other:?}"),
    }
    assert_eq!(stub.stage_count(), 1);
    assert_eq!(
        stub.calls("CreateStage"),
        2,
        "a quota refusal is not retried"
    );
}

#[tokio::test]
async fn renaming_deleting_or_reading_a_stage_ivs_does_not_know_reports_not_found() {
    let stub = IvsStub::start().await;
    let aws = provider(&stub).await;
    let arn = unknown_arn();

    match aws.update_stage(arn.clone(), "new-name".into()).await {
        Err(ProviderError::NotFound(missing)) => assert_eq!(missing, arn),
        other => panic!("expected NotFound, got {other:?}"),
    }
    match aws.delete_stage(arn.clone()).await {
        Err(ProviderError::NotFound(missing)) => assert_eq!(missing, arn),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert_eq!(aws.get_stage(arn.clone()).await.unwrap(), None);
    match aws
        .create_participant_token(viewer_request(&arn, "1"))
        .await
    {
        Err(ProviderError::NotFound(missing)) => assert_eq!(missing, arn),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert_eq!(stub.calls("UpdateStage"), 1, "a 404 is not retried");
    assert_eq!(stub.calls("DeleteStage"), 1, "a 404 is not retried");
}

#[tokio::test]
async fn a_call_throttled_once_is_retried_by_the_sdk_and_succeeds() {
    let stub = IvsStub::start().await;
    let aws = provider(&stub).await;

    stub.throttle_next(1);
    let stage = aws
        .create_stage("after-throttle".into(), managed_tags())
        .await
        .unwrap();

    assert_eq!(stub.calls("CreateStage"), 2);
    assert_eq!(
        stub.stage_count(),
        1,
        "only the retried call created a stage"
    );
    assert_eq!(stub.stage(&stage.arn).unwrap().name, "after-throttle");
}

#[tokio::test]
async fn throttling_beyond_the_attempt_limit_reports_ivs_unavailable() {
    let stub = IvsStub::start().await;
    let aws = provider(&stub).await;
    let stage = aws
        .create_stage("busy".into(), managed_tags())
        .await
        .unwrap();

    stub.throttle_next(10);
    let result = aws.get_stage(stage.arn.clone()).await;

    match result {
        Err(ProviderError::Unavailable(reason)) => {
            assert!(reason.contains("ThrottlingException"), "{reason}")
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert_eq!(stub.calls("GetStage"), 2, "max_attempts is 2");
}

#[tokio::test]
async fn server_errors_are_retried_and_beyond_the_attempt_limit_report_ivs_unavailable() {
    let stub = IvsStub::start().await;
    let aws = provider(&stub).await;
    aws.create_stage("one".into(), managed_tags())
        .await
        .unwrap();

    stub.fail_next(1);
    assert_eq!(aws.list_stages().await.unwrap().len(), 1);
    assert_eq!(stub.calls("ListStages"), 2);

    stub.fail_next(2);
    match aws.list_stages().await {
        Err(ProviderError::Unavailable(reason)) => {
            assert!(reason.contains("InternalServerException"), "{reason}")
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert_eq!(stub.calls("ListStages"), 4);
}

#[tokio::test]
async fn an_unreachable_ivs_endpoint_reports_ivs_unavailable() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let aws = AwsStageProvider::from_settings(&settings(&url), None).await;

    let result = tokio::time::timeout(Duration::from_secs(30), aws.list_stages())
        .await
        .expect("the SDK gives up within its attempts");

    assert!(
        matches!(result, Err(ProviderError::Unavailable(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn without_a_signer_each_participant_token_comes_from_create_participant_token() {
    let stub = IvsStub::start().await;
    let aws = provider(&stub).await;
    let stage = aws
        .create_stage("tokens".into(), managed_tags())
        .await
        .unwrap();

    let before = OffsetDateTime::now_utc();
    let viewer = aws
        .create_participant_token(viewer_request(&stage.arn, "001"))
        .await
        .unwrap();
    let publisher = aws
        .create_participant_token(TokenRequest {
            stage_arn: stage.arn.clone(),
            user_id: "broadcaster-7".into(),
            capabilities: vec![Capability::Publish, Capability::Subscribe],
            duration_seconds: 14_400,
            attributes: BTreeMap::new(),
            issued_at: OffsetDateTime::now_utc(),
        })
        .await
        .unwrap();

    assert_eq!(stub.calls("CreateParticipantToken"), 2);
    let bodies = stub.bodies("CreateParticipantToken");
    assert_eq!(
        bodies[0],
        json!({
            "stageArn": stage.arn,
            "userId": "viewer-001",
            "capabilities": ["SUBSCRIBE"],
            "duration": 61,
            "attributes": {"level": "VIP"},
        }),
        "3601 s round up to 61 minutes"
    );
    assert_eq!(bodies[1]["capabilities"], json!(["PUBLISH", "SUBSCRIBE"]));
    assert_eq!(bodies[1]["duration"], json!(240));

    assert_eq!(viewer.participant_id.len(), 12);
    assert_eq!(
        viewer.token,
        format!("stub-token-{}", viewer.participant_id)
    );
    assert_ne!(viewer.participant_id, publisher.participant_id);
    let lifetime = viewer.expires_at - before;
    assert!(
        lifetime > time::Duration::minutes(60) && lifetime <= time::Duration::minutes(62),
        "{lifetime}"
    );
}

#[tokio::test]
async fn with_a_signer_tokens_are_signed_locally_after_a_single_get_stage() {
    let stub = IvsStub::start().await;
    // A stage the provider has not seen yet (made elsewhere, or before a restart).
    let stage = stub.insert_stage("adopted");
    let (signer, public_key_pem) = signer();
    let kid = signer.kid().to_owned();
    let aws = AwsStageProvider::from_settings(&settings(&stub.url), Some(signer)).await;

    let mut tokens = Vec::new();
    for user in ["1", "2", "3"] {
        tokens.push(
            aws.create_participant_token(viewer_request(&stage.arn, user))
                .await
                .unwrap(),
        );
    }

    assert_eq!(stub.calls("GetStage"), 1, "endpoints are fetched once");
    assert_eq!(stub.calls("CreateParticipantToken"), 0);
    assert_eq!(stub.requests().len(), 1, "no AWS call per token");
    for (token, user) in tokens.iter().zip(["1", "2", "3"]) {
        let header = jsonwebtoken::decode_header(&token.token).unwrap();
        assert_eq!(header.alg, Algorithm::ES384);
        assert_eq!(header.kid.as_deref(), Some(kid.as_str()));
        let claims = verify(&token.token, &public_key_pem);
        assert_eq!(claims.events_url, stage.events);
        assert_eq!(claims.whip_url, stage.whip);
        assert_eq!(claims.resource, stage.arn);
        assert_eq!(claims.topic, stage_id(&stage.arn));
        assert_eq!(claims.jti, token.participant_id);
        assert_eq!(claims.user_id, format!("viewer-{user}"));
        assert_eq!(claims.exp - claims.iat, 3601);
        assert_eq!(claims.exp, token.expires_at.unix_timestamp());
        assert!(claims.capabilities.allow_subscribe && !claims.capabilities.allow_publish);
    }
}

#[tokio::test]
async fn with_a_signer_a_stage_created_through_the_provider_needs_no_get_stage() {
    let stub = IvsStub::start().await;
    let (signer, public_key_pem) = signer();
    let aws = AwsStageProvider::from_settings(&settings(&stub.url), Some(signer)).await;
    let created = aws
        .create_stage("fresh".into(), managed_tags())
        .await
        .unwrap();

    let token = aws
        .create_participant_token(viewer_request(&created.arn, "9"))
        .await
        .unwrap();

    assert_eq!(stub.calls("GetStage"), 0);
    assert_eq!(stub.calls("CreateParticipantToken"), 0);
    let stage = stub.stage(&created.arn).unwrap();
    let claims = verify(&token.token, &public_key_pem);
    assert_eq!(claims.events_url, stage.events);
    assert_eq!(claims.whip_url, stage.whip);
    assert_eq!(
        aws.cached_endpoints(&created.arn).map(|e| e.whip),
        Some(stage.whip)
    );
}

#[tokio::test]
async fn with_a_signer_a_token_for_a_deleted_or_unknown_stage_reports_not_found() {
    let stub = IvsStub::start().await;
    let (signer, _) = signer();
    let aws = AwsStageProvider::from_settings(&settings(&stub.url), Some(signer)).await;
    let created = aws
        .create_stage("short-lived".into(), managed_tags())
        .await
        .unwrap();
    aws.delete_stage(created.arn.clone()).await.unwrap();
    assert_eq!(aws.cached_endpoints(&created.arn), None);

    for arn in [created.arn.clone(), unknown_arn()] {
        match aws
            .create_participant_token(viewer_request(&arn, "1"))
            .await
        {
            Err(ProviderError::NotFound(missing)) => assert_eq!(missing, arn),
            other => panic!("expected NotFound for {arn}, got {other:?}"),
        }
    }
    assert_eq!(stub.calls("GetStage"), 2);
}
