//! `sendGift`: a member sends gifts to a streamer ([`crate::commands::gifts`]).

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::payload::Json;

use super::action::{Action, ActionRequest, member_id};
use super::answers::{GiftAnswer, GiftResponse};
use crate::app::AppState;
use crate::commands::gifts::{self, SendGift, SentGift};
use crate::domain::room;
use crate::http::api_error::ApiError;
use crate::http::common::IdempotencyHeader;
use crate::http::envelope::{Envelope, timestamp};
use crate::http::tags::ApiTags;

/// The client gateway's gift action.
#[derive(Default)]
pub struct GiftActionsApi;

#[OpenApi(prefix_path = "/api/action", tag = "ApiTags::Gateway")]
impl GiftActionsApi {
    /// sendGift: a member sends gifts to a streamer
    ///
    /// `query` (as the gateway description shows it): `{"giftID": 1, "giftCount": 1, "memberID":
    /// "member@agent.masterAgent", "gameID": "streamer@agent.masterAgent", "agentID":
    /// "agent.masterAgent", "Authorization"?: "..."}`. `memberID` must be the token's member (403
    /// `FORBIDDEN` otherwise); `giftCount` 1 to 9999; `agentID` the streamer's agent; the gift must
    /// exist and be enabled (404 `GIFT_NOT_FOUND`); the streamer must exist (404
    /// `STREAMER_NOT_FOUND`); the sender's member record must exist (404
    /// `MEMBER_NOT_FOUND`). The room gets `gift` and `giftRank` chat messages.
    ///
    /// With an `Idempotency-Key` header (1 to 255 visible ASCII characters, scoped to the member),
    /// a retry sends the gift once and gets the first answer again (same `recordID` and
    /// `X-Event-Sequence`), whenever it comes; the same key with another gift, count or streamer
    /// answers 422 `IDEMPOTENCY_KEY_REUSED`.
    #[oai(path = "/sendGift", method = "post", operation_id = "sendGift")]
    async fn send_gift(
        &self,
        state: Data<&Arc<AppState>>,
        body: Json<ActionRequest>,
        /// Optional idempotency key: a retry with the same key sends the gift once.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: IdempotencyHeader,
    ) -> Result<GiftResponse, ApiError> {
        let action = Action::parse(body.0)?;
        let q = &action.query;
        let gift_id = q.integer("giftID")?;
        let count = room::check_gift_count(q.integer("giftCount")?)
            .map_err(|e| ApiError::validation(format!("query.{e}")))?;
        let presenter = member_id(q, "memberID")?;
        let streamer = member_id(q, "gameID")?;
        let agent_id = q.text("agentID")?;
        let claims = action.member(&state).await?;
        let command = SendGift {
            caller: claims.sub,
            presenter,
            streamer,
            agent_id,
            gift_id,
            count,
            idempotency_key: idempotency_key.0,
        };
        let sent = gifts::send_gift(&state.db, &state.store, command, state.clock.now()).await?;
        Ok(gift_answer(sent))
    }
}

/// The answer of a stored `gift.sent`.
fn gift_answer(sent: SentGift) -> GiftResponse {
    let e = sent.gift;
    GiftResponse::Ok(
        Json(Envelope::ok(GiftAnswer {
            record_id: sent.record_id.to_string(),
            gift_id: e.gift_id,
            score: u64::from(e.points) * u64::from(e.count),
            gift_name: e.gift_name,
            gift_count: e.count,
            points: e.points,
            member_id: e.presenter,
            game_id: e.recipient,
            agent_id: e.agent_id,
            sent_at: timestamp(sent.sent_at),
        })),
        sent.sequence,
    )
}
