//! Amazon IVS real-time behind one port, [`StageProvider`] (docs/design.md#decided-open-points).
//!
//! The default `local` provider ([`local::LocalStageProvider`]) keeps stages itself and mints
//! self-signed ES384 participant tokens with IVS's header and claim set (src/ivs/token.rs), so no
//! AWS account is needed.

pub mod arn;
pub mod aws;
pub mod keys;
pub mod local;
pub mod token;

use std::collections::BTreeMap;

use futures_util::future::BoxFuture;
use time::OffsetDateTime;

/// What a participant may do on a stage (IVS `capabilities`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Capability {
    /// May publish audio and video (`PUBLISH`): the publisher token.
    Publish,
    /// May subscribe to the stage's publishers (`SUBSCRIBE`): viewer tokens.
    Subscribe,
}

impl Capability {
    /// IVS's spelling: `PUBLISH` / `SUBSCRIBE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Publish => "PUBLISH",
            Capability::Subscribe => "SUBSCRIBE",
        }
    }
}

/// A stage as the provider reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProvidedStage {
    /// Stage ARN, `arn:aws:ivs:<region>:<account>:stage/<id>`.
    pub arn: String,
    /// Stage name; empty when IVS reports none.
    pub name: String,
    /// IVS tags; stages the pool creates carry `Environment` and `ManagedBy=onair`.
    pub tags: BTreeMap<String, String>,
    /// IVS `activeSessionId` (`st-...`), present while the stage has an active session.
    pub active_session_id: Option<String>,
}

/// A participant token request.
#[derive(Clone, Debug)]
pub struct TokenRequest {
    /// The stage the token admits to.
    pub stage_arn: String,
    /// IVS participant user id (`viewer-<userId>` / `broadcaster-<userId>`), at most 128 characters.
    pub user_id: String,
    /// `[Publish]` for the publisher, `[Subscribe]` for viewers.
    pub capabilities: Vec<Capability>,
    /// Token lifetime in seconds (seed: publisher 14400, viewer 3600).
    pub duration_seconds: u64,
    /// String-to-string attributes, at most 1 KB in total (IVS rule).
    pub attributes: BTreeMap<String, String>,
    /// Issue time; self-signed tokens put it in `iat` and expire `duration_seconds` later.
    pub issued_at: OffsetDateTime,
}

/// A minted participant token.
#[derive(Clone, Debug)]
pub struct ParticipantToken {
    /// The participant token (a JWT) the client joins the stage with.
    pub token: String,
    /// The participant id (the token's `jti`), 12 characters of `[A-Za-z0-9]`.
    pub participant_id: String,
    /// When the token expires (UTC).
    pub expires_at: OffsetDateTime,
}

/// A participant chosen before its token is minted, by a provider that signs its tokens itself
/// ([`StageProvider::reserve_participant`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReservedParticipant {
    /// The participant id the token will carry (its `jti`), 12 characters of `[A-Za-z0-9]`.
    pub participant_id: String,
    /// When the token will expire (UTC, whole seconds: `issued_at` + `duration_seconds`).
    pub expires_at: OffsetDateTime,
}

/// Why a stage provider operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// IVS's stage quota is used up (IVS `ServiceQuotaExceededException`).
    #[error("stage quota exceeded: {0}")]
    QuotaExceeded(String),
    /// The provider does not know this stage ARN (IVS `ResourceNotFoundException`).
    #[error("stage {0} not found")]
    NotFound(String),
    /// No participant token: the signing key is unusable, signing failed, or IVS refused
    /// `CreateParticipantToken` (HTTP 500 `TOKEN_GENERATION_FAILED`).
    #[error("token generation failed: {0}")]
    Token(String),
    /// IVS failed or did not answer after the SDK's retries (HTTP 503 `SERVICE_UNAVAILABLE`).
    #[error("IVS unavailable: {0}")]
    Unavailable(String),
}

/// The stage and token operations onair needs from IVS.
pub trait StageProvider: Send + Sync {
    /// Short name for `/health` (`local`, `aws`).
    fn name(&self) -> &'static str;
    /// Creates a stage; [`ProviderError::QuotaExceeded`] when IVS's stage quota is used up.
    fn create_stage(
        &self,
        name: String,
        tags: BTreeMap<String, String>,
    ) -> BoxFuture<'_, Result<ProvidedStage, ProviderError>>;
    /// Renames a stage.
    fn update_stage(
        &self,
        arn: String,
        name: String,
    ) -> BoxFuture<'_, Result<ProvidedStage, ProviderError>>;
    /// Deletes a stage (IVS disconnects everyone on it: callers make sure it is empty).
    fn delete_stage(&self, arn: String) -> BoxFuture<'_, Result<(), ProviderError>>;
    /// One stage; `Ok(None)` when the provider does not know it.
    fn get_stage(&self, arn: String)
    -> BoxFuture<'_, Result<Option<ProvidedStage>, ProviderError>>;
    /// Every stage the provider has (all pages), for adoption and reconciliation at start.
    fn list_stages(&self) -> BoxFuture<'_, Result<Vec<ProvidedStage>, ProviderError>>;
    /// Mints a participant token for `request`.
    fn create_participant_token(
        &self,
        request: TokenRequest,
    ) -> BoxFuture<'_, Result<ParticipantToken, ProviderError>>;
    /// For a provider that signs its tokens itself: the participant id and expiry of the token
    /// for `request`, chosen now without minting it. A caller can then store the seat's event
    /// first and mint ([`mint_reserved`](Self::mint_reserved)) only the tokens whose events were
    /// stored. `None` (the default): the provider names the participant (an IVS call), so the
    /// token is minted first.
    fn reserve_participant(&self, _request: &TokenRequest) -> Option<ReservedParticipant> {
        None
    }
    /// Mints the token of a participant reserved by
    /// [`reserve_participant`](Self::reserve_participant) for the same `request`.
    ///
    /// Errors: [`ProviderError::Token`] when the token cannot be signed, or when this provider
    /// does not reserve participants (the default).
    fn mint_reserved(
        &self,
        _request: TokenRequest,
        _reserved: ReservedParticipant,
    ) -> BoxFuture<'_, Result<ParticipantToken, ProviderError>> {
        Box::pin(async {
            Err(ProviderError::Token(
                "this stage provider does not reserve participants".into(),
            ))
        })
    }
}
