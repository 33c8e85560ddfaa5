//! The `local` stage provider: stages are ARNs in IVS's format that onair keeps itself (their life is
//! in the event stream), and tokens are self-signed.

use std::collections::BTreeMap;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;

use super::arn::{random_id, stage_arn};
use super::token::TokenSigner;
use super::{
    ParticipantToken, ProvidedStage, ProviderError, ReservedParticipant, StageProvider,
    TokenRequest,
};

/// The `local` [`StageProvider`]: stage ARNs in IVS's format with a random 12-character id,
/// no AWS calls, tokens signed by a [`TokenSigner`].
pub struct LocalStageProvider {
    region: String,
    account_id: String,
    signer: TokenSigner,
}

impl LocalStageProvider {
    /// A provider whose stage ARNs name `region` and `account_id`.
    pub fn new(region: String, account_id: String, signer: TokenSigner) -> Self {
        Self {
            region,
            account_id,
            signer,
        }
    }
}

impl StageProvider for LocalStageProvider {
    fn name(&self) -> &'static str {
        "local"
    }

    fn create_stage(
        &self,
        name: String,
        tags: BTreeMap<String, String>,
    ) -> BoxFuture<'_, Result<ProvidedStage, ProviderError>> {
        let arn = stage_arn(&self.region, &self.account_id, &random_id(12));
        async move {
            Ok(ProvidedStage {
                arn,
                name,
                tags,
                active_session_id: None,
            })
        }
        .boxed()
    }

    fn update_stage(
        &self,
        arn: String,
        name: String,
    ) -> BoxFuture<'_, Result<ProvidedStage, ProviderError>> {
        async move {
            Ok(ProvidedStage {
                arn,
                name,
                tags: BTreeMap::new(),
                active_session_id: None,
            })
        }
        .boxed()
    }

    fn delete_stage(&self, _arn: String) -> BoxFuture<'_, Result<(), ProviderError>> {
        async { Ok(()) }.boxed()
    }

    /// The local provider keeps no stages of its own: the stream is their only record.
    fn get_stage(
        &self,
        _arn: String,
    ) -> BoxFuture<'_, Result<Option<ProvidedStage>, ProviderError>> {
        async { Ok(None) }.boxed()
    }

    fn list_stages(&self) -> BoxFuture<'_, Result<Vec<ProvidedStage>, ProviderError>> {
        async { Ok(Vec::new()) }.boxed()
    }

    fn create_participant_token(
        &self,
        request: TokenRequest,
    ) -> BoxFuture<'_, Result<ParticipantToken, ProviderError>> {
        let result = self.signer.sign(&request);
        async move { result }.boxed()
    }

    /// The local signer picks the participant id itself, so it can be chosen before the token.
    fn reserve_participant(&self, request: &TokenRequest) -> Option<ReservedParticipant> {
        self.signer.reserve(request).ok()
    }

    fn mint_reserved(
        &self,
        request: TokenRequest,
        reserved: ReservedParticipant,
    ) -> BoxFuture<'_, Result<ParticipantToken, ProviderError>> {
        let result = self.signer.sign_reserved(&request, &reserved);
        async move { result }.boxed()
    }
}
