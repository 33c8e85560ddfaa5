//! The `aws` stage provider: stages live in Amazon IVS real-time, reached with
//! `aws-sdk-ivsrealtime` (restJson1: `POST /<Operation>` with a JSON body, SigV4 signed).
//!
//! Stage operations map one to one onto `CreateStage`, `UpdateStage`, `DeleteStage`, `GetStage`
//! and `ListStages`. Participant tokens are either self-signed with a [`TokenSigner`] (no AWS
//! call per viewer; IVS checks the signature against the imported public key when the
//! participant joins; the `events_url` / `whip_url` claims come from the stage's `endpoints`,
//! cached per ARN) or, without a signer, issued by `CreateParticipantToken`.
//!
//! The SDK retries throttling (429) and server errors (5xx) itself, up to
//! [`AwsProviderSettings::max_attempts`] attempts with exponential backoff; whatever is
//! left after that becomes [`ProviderError::Unavailable`].

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;

use aws_config::BehaviorVersion;
use aws_sdk_ivsrealtime::Client;
use aws_sdk_ivsrealtime::config::Credentials;
use aws_sdk_ivsrealtime::config::Region;
use aws_sdk_ivsrealtime::config::retry::RetryConfig;
use aws_sdk_ivsrealtime::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_ivsrealtime::types::{ParticipantTokenCapability, Stage};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use time::OffsetDateTime;

use super::token::TokenSigner;
use super::{
    Capability, ParticipantToken, ProvidedStage, ProviderError, StageProvider, TokenRequest,
};

/// `ListStages` page size: the service maximum (`maxResults` is 1 to 100, default 50), so that
/// listing costs as few calls as possible against its quota of 5 calls a second.
pub const LIST_STAGES_PAGE_SIZE: i32 = 100;

/// Shortest `CreateParticipantToken` duration, in minutes (IVS accepts 1 to 20,160).
pub const MIN_TOKEN_MINUTES: i32 = 1;

/// Longest `CreateParticipantToken` duration, in minutes: 14 days (IVS accepts 1 to 20,160).
pub const MAX_TOKEN_MINUTES: i32 = 20_160;

/// How to reach IVS real-time.
#[derive(Clone, Debug)]
pub struct AwsProviderSettings {
    /// AWS region of the stages, e.g. `us-east-1`. Empty: taken from the environment
    /// (`AWS_REGION`) or the shared profile, as `aws-config` does.
    pub region: String,
    /// Endpoint override, e.g. a local stub `http://127.0.0.1:5066`. `None`: the regional
    /// endpoint `https://ivsrealtime.<region>.amazonaws.com`, or `AWS_ENDPOINT_URL_IVS_REALTIME` /
    /// `AWS_ENDPOINT_URL` when set (the SDK's shared configuration reads both).
    pub endpoint_url: Option<String>,
    /// Attempts per call, the first included (standard retry mode; 1 = no retries, 0 is read
    /// as 1). Throttling and 5xx answers are retried with exponential backoff.
    pub max_attempts: u32,
    /// Fixed credentials (tests, stubs). `None`: the default chain of `aws-config`
    /// (environment, shared profile files, web identity, ECS / EC2 instance roles).
    pub credentials: Option<Credentials>,
}

/// A stage's connection endpoints (IVS `Stage.endpoints`), the `events_url` / `whip_url` claims
/// of self-signed tokens (`GetStage` answers them; a `ListStages` summary has none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageEndpoints {
    /// WebSocket events endpoint, e.g. `wss://global.events.live-video.net`.
    pub events: String,
    /// WHIP ingest endpoint, e.g. `https://<id>.global-bm.whip.live-video.net`.
    pub whip: String,
}

/// [`StageProvider`] on Amazon IVS real-time through `aws_sdk_ivsrealtime::Client`.
pub struct AwsStageProvider {
    client: Client,
    signer: Option<TokenSigner>,
    /// Endpoints per stage ARN, filled by CreateStage / GetStage / UpdateStage answers.
    endpoints: RwLock<HashMap<String, StageEndpoints>>,
    /// Serialises GetStage calls on cache misses so that a burst of viewers for a stage not yet
    /// cached costs one GetStage, not one per viewer (GetStage is limited to 5 calls a second).
    endpoint_fetch: tokio::sync::Mutex<()>,
}

impl AwsStageProvider {
    /// A provider on a ready client. With `signer`, participant tokens are self-signed
    /// (ES384, no AWS call); without, each one is a `CreateParticipantToken` call.
    pub fn new(client: Client, signer: Option<TokenSigner>) -> Self {
        Self {
            client,
            signer,
            endpoints: RwLock::new(HashMap::new()),
            endpoint_fetch: tokio::sync::Mutex::new(()),
        }
    }

    /// Builds the client from `aws_config::defaults(BehaviorVersion::latest())` with the
    /// settings' region, endpoint, standard retries of `max_attempts` attempts and credentials
    /// (or the default credential chain), then [`AwsStageProvider::new`].
    ///
    /// Makes no IVS call, and none at all when `region` and `credentials` are given; otherwise
    /// `aws-config` may read the environment, profile files or instance metadata for them.
    /// Credentials are resolved (and refreshed) on the first request.
    pub async fn from_settings(
        settings: &AwsProviderSettings,
        signer: Option<TokenSigner>,
    ) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::standard().with_max_attempts(settings.max_attempts.max(1)))
            // A hung IVS call must not hold the stage pool's decision lock for long.
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(std::time::Duration::from_secs(3))
                    .operation_attempt_timeout(std::time::Duration::from_secs(5))
                    .operation_timeout(std::time::Duration::from_secs(15))
                    .build(),
            );
        if !settings.region.is_empty() {
            loader = loader.region(Region::new(settings.region.clone()));
        }
        if let Some(url) = &settings.endpoint_url {
            loader = loader.endpoint_url(url.clone());
        }
        if let Some(credentials) = &settings.credentials {
            loader = loader.credentials_provider(credentials.clone());
        }
        let shared = loader.load().await;
        Self::new(Client::new(&shared), signer)
    }

    /// The cached endpoints of a stage, if a CreateStage / GetStage / UpdateStage answer for it
    /// has been seen since the stage was last deleted.
    pub fn cached_endpoints(&self, arn: &str) -> Option<StageEndpoints> {
        self.endpoints
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(arn)
            .cloned()
    }

    /// Records a stage's endpoints (when the answer has both `events` and `whip`).
    fn remember(&self, stage: &Stage) {
        let Some(endpoints) = stage.endpoints() else {
            return;
        };
        let (Some(events), Some(whip)) = (endpoints.events(), endpoints.whip()) else {
            return;
        };
        self.endpoints
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                stage.arn().to_owned(),
                StageEndpoints {
                    events: events.to_owned(),
                    whip: whip.to_owned(),
                },
            );
    }

    fn forget(&self, arn: &str) {
        self.endpoints
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(arn);
    }

    /// GetStage; `Ok(None)` for ResourceNotFoundException. Caches the endpoints.
    async fn fetch_stage(&self, arn: &str) -> Result<Option<Stage>, ProviderError> {
        match self.client.get_stage().arn(arn).send().await {
            Ok(out) => {
                let stage = out.stage;
                match &stage {
                    Some(stage) => self.remember(stage),
                    None => self.forget(arn),
                }
                Ok(stage)
            }
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                self.forget(arn);
                Ok(None)
            }
            Err(err) => Err(map_error("GetStage", Some(arn), err)),
        }
    }

    /// The stage's endpoints from the cache, or from one GetStage on a miss.
    async fn endpoints_of(&self, arn: &str) -> Result<StageEndpoints, ProviderError> {
        if let Some(endpoints) = self.cached_endpoints(arn) {
            return Ok(endpoints);
        }
        let _guard = self.endpoint_fetch.lock().await;
        if let Some(endpoints) = self.cached_endpoints(arn) {
            return Ok(endpoints);
        }
        let stage = self
            .fetch_stage(arn)
            .await?
            .ok_or_else(|| ProviderError::NotFound(arn.to_owned()))?;
        self.cached_endpoints(arn).ok_or_else(|| {
            ProviderError::Token(format!(
                "stage {} has no events/whip endpoints to put in the token",
                stage.arn()
            ))
        })
    }

    async fn create_stage_call(
        &self,
        name: String,
        tags: BTreeMap<String, String>,
    ) -> Result<ProvidedStage, ProviderError> {
        let out = self
            .client
            .create_stage()
            .name(name)
            .set_tags((!tags.is_empty()).then(|| tags.into_iter().collect()))
            .send()
            .await
            .map_err(|e| map_error("CreateStage", None, e))?;
        let stage = out
            .stage
            .ok_or_else(|| ProviderError::Unavailable("CreateStage answered no stage".into()))?;
        self.remember(&stage);
        Ok(provided(&stage))
    }

    async fn update_stage_call(
        &self,
        arn: String,
        name: String,
    ) -> Result<ProvidedStage, ProviderError> {
        let out = self
            .client
            .update_stage()
            .arn(&arn)
            .name(name)
            .send()
            .await
            .map_err(|e| map_error("UpdateStage", Some(&arn), e))?;
        let stage = out
            .stage
            .ok_or_else(|| ProviderError::Unavailable("UpdateStage answered no stage".into()))?;
        self.remember(&stage);
        Ok(provided(&stage))
    }

    async fn delete_stage_call(&self, arn: String) -> Result<(), ProviderError> {
        let result = self.client.delete_stage().arn(&arn).send().await;
        match result {
            Ok(_) => {
                self.forget(&arn);
                Ok(())
            }
            Err(err) => {
                let mapped = map_error("DeleteStage", Some(&arn), err);
                if matches!(mapped, ProviderError::NotFound(_)) {
                    self.forget(&arn);
                }
                Err(mapped)
            }
        }
    }

    async fn list_stages_call(&self) -> Result<Vec<ProvidedStage>, ProviderError> {
        let mut stages = Vec::new();
        let mut next_token: Option<String> = None;
        loop {
            let out = self
                .client
                .list_stages()
                .max_results(LIST_STAGES_PAGE_SIZE)
                .set_next_token(next_token.take())
                .send()
                .await
                .map_err(|e| map_error("ListStages", None, e))?;
            stages.extend(out.stages().iter().map(|s| ProvidedStage {
                arn: s.arn().to_owned(),
                name: s.name().unwrap_or_default().to_owned(),
                tags: tag_map(s.tags()),
                active_session_id: s.active_session_id().map(str::to_owned),
            }));
            match out.next_token() {
                Some(token) if !token.is_empty() => next_token = Some(token.to_owned()),
                _ => return Ok(stages),
            }
        }
    }

    async fn issue_token(&self, request: TokenRequest) -> Result<ParticipantToken, ProviderError> {
        if let Some(signer) = &self.signer {
            let endpoints = self.endpoints_of(&request.stage_arn).await?;
            return signer.sign_with_endpoints(&request, &endpoints.events, &endpoints.whip);
        }
        let minutes = token_minutes(request.duration_seconds);
        let capabilities = request
            .capabilities
            .iter()
            .map(|c| match c {
                Capability::Publish => ParticipantTokenCapability::Publish,
                Capability::Subscribe => ParticipantTokenCapability::Subscribe,
            })
            .collect();
        let out = self
            .client
            .create_participant_token()
            .stage_arn(&request.stage_arn)
            .user_id(&request.user_id)
            // Always sent, even empty: IVS grants PUBLISH and SUBSCRIBE when it is absent.
            .set_capabilities(Some(capabilities))
            .duration(minutes)
            .set_attributes(
                (!request.attributes.is_empty())
                    .then(|| request.attributes.clone().into_iter().collect()),
            )
            .send()
            .await
            .map_err(|err| {
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_validation_exception())
                {
                    ProviderError::Token(format!(
                        "CreateParticipantToken rejected the request: {}",
                        err.message().unwrap_or("ValidationException")
                    ))
                } else {
                    map_error("CreateParticipantToken", Some(&request.stage_arn), err)
                }
            })?;
        let token = out.participant_token.ok_or_else(|| {
            ProviderError::Token("CreateParticipantToken answered no participantToken".into())
        })?;
        let (Some(participant_id), Some(value)) = (token.participant_id(), token.token()) else {
            return Err(ProviderError::Token(
                "CreateParticipantToken answered no participantId or token".into(),
            ));
        };
        let expires_at = match token.expiration_time() {
            Some(t) => OffsetDateTime::from_unix_timestamp_nanos(t.as_nanos())
                .map_err(|e| ProviderError::Token(format!("bad expirationTime: {e}")))?,
            None => request.issued_at + time::Duration::minutes(i64::from(minutes)),
        };
        Ok(ParticipantToken {
            token: value.to_owned(),
            participant_id: participant_id.to_owned(),
            expires_at,
        })
    }
}

impl StageProvider for AwsStageProvider {
    /// `"aws"`.
    fn name(&self) -> &'static str {
        "aws"
    }

    /// CreateStage with `name` and `tags` (the caller includes `ManagedBy=onair`); caches the
    /// new stage's endpoints. Errors: ServiceQuotaExceededException →
    /// [`ProviderError::QuotaExceeded`]; anything else → [`ProviderError::Unavailable`].
    fn create_stage(
        &self,
        name: String,
        tags: BTreeMap<String, String>,
    ) -> BoxFuture<'_, Result<ProvidedStage, ProviderError>> {
        self.create_stage_call(name, tags).boxed()
    }

    /// UpdateStage (rename). Errors: ResourceNotFoundException → [`ProviderError::NotFound`].
    fn update_stage(
        &self,
        arn: String,
        name: String,
    ) -> BoxFuture<'_, Result<ProvidedStage, ProviderError>> {
        self.update_stage_call(arn, name).boxed()
    }

    /// DeleteStage (IVS disconnects everyone on it); drops the cached endpoints.
    /// Errors: ResourceNotFoundException → [`ProviderError::NotFound`].
    fn delete_stage(&self, arn: String) -> BoxFuture<'_, Result<(), ProviderError>> {
        self.delete_stage_call(arn).boxed()
    }

    /// GetStage; `Ok(None)` for ResourceNotFoundException. Caches the endpoints.
    fn get_stage(
        &self,
        arn: String,
    ) -> BoxFuture<'_, Result<Option<ProvidedStage>, ProviderError>> {
        async move { Ok(self.fetch_stage(&arn).await?.as_ref().map(provided)) }.boxed()
    }

    /// ListStages, [`LIST_STAGES_PAGE_SIZE`] per page, following `nextToken` to the last page.
    /// The summaries carry no endpoints, so nothing is cached.
    fn list_stages(&self) -> BoxFuture<'_, Result<Vec<ProvidedStage>, ProviderError>> {
        self.list_stages_call().boxed()
    }

    /// With a signer: a self-signed token whose `events_url` / `whip_url` are the stage's
    /// endpoints (cache, or one GetStage on a miss; unknown stage → [`ProviderError::NotFound`]).
    /// Without: CreateParticipantToken with `duration_seconds` rounded up to whole minutes and
    /// clamped to 1..=20160; ValidationException → [`ProviderError::Token`].
    fn create_participant_token(
        &self,
        request: TokenRequest,
    ) -> BoxFuture<'_, Result<ParticipantToken, ProviderError>> {
        self.issue_token(request).boxed()
    }
}

/// `duration_seconds` as CreateParticipantToken minutes: rounded up, clamped to 1..=20160.
fn token_minutes(duration_seconds: u64) -> i32 {
    let minutes = duration_seconds.div_ceil(60);
    minutes.clamp(MIN_TOKEN_MINUTES as u64, MAX_TOKEN_MINUTES as u64) as i32
}

fn tag_map(tags: Option<&HashMap<String, String>>) -> BTreeMap<String, String> {
    tags.map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

fn provided(stage: &Stage) -> ProvidedStage {
    ProvidedStage {
        arn: stage.arn().to_owned(),
        name: stage.name().unwrap_or_default().to_owned(),
        tags: tag_map(stage.tags()),
        active_session_id: stage.active_session_id().map(str::to_owned),
    }
}

/// Maps an SDK error (after the SDK's own retries) onto [`ProviderError`] by error code
/// (the SDK reads it from `x-amzn-ErrorType`, not from the HTTP status; a quota error is a 402):
/// ServiceQuotaExceededException → `QuotaExceeded`, ResourceNotFoundException → `NotFound(arn)`,
/// everything else (validation, access denied, throttling, 5xx, timeouts, connection failures)
/// → `Unavailable` with the code and message.
fn map_error<E, R>(operation: &str, arn: Option<&str>, err: SdkError<E, R>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let message = err.message().unwrap_or_default().to_owned();
    match (&err, err.code()) {
        (SdkError::ServiceError(_), Some("ServiceQuotaExceededException")) => {
            ProviderError::QuotaExceeded(if message.is_empty() {
                format!("{operation}: ServiceQuotaExceededException")
            } else {
                message
            })
        }
        (SdkError::ServiceError(_), Some("ResourceNotFoundException")) => {
            ProviderError::NotFound(arn.unwrap_or_default().to_owned())
        }
        (SdkError::ServiceError(_), Some(code)) => {
            ProviderError::Unavailable(format!("{operation}: {code}: {message}"))
        }
        _ => ProviderError::Unavailable(format!("{operation}: {}", DisplayErrorContext(&err))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_durations_round_up_to_whole_minutes_within_ivs_limits() {
        assert_eq!(token_minutes(0), 1);
        assert_eq!(token_minutes(1), 1);
        assert_eq!(token_minutes(60), 1);
        assert_eq!(token_minutes(61), 2);
        assert_eq!(token_minutes(3600), 60);
        assert_eq!(token_minutes(14_400), 240);
        assert_eq!(token_minutes(u64::MAX), 20_160);
    }
}
