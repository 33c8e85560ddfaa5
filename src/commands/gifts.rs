//! `sendGift` (docs/api.md#client-gateway): a member sends gifts of the catalog to a streamer. The
//! command checks the parties ([`crate::domain::gift`]), loads the streamer's room, the catalog
//! entry, the sender's record and the streamer's live session, and publishes
//! `onair.gift.sent.v2`.
//!
//! With an `Idempotency-Key`, the event id is derived from the key (scoped to the sender), so a
//! retry sends the gift once: within JetStream's duplicate window the store answers `duplicate`,
//! later the gift record is found by its event id; either way the first gift is answered again,
//! unless the key was used for another gift, count or streamer.

use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::commands::{gift_catalog, members, rooms};
use crate::domain::gift::{self, GiftRuleError};
use crate::domain::idempotency::{self, IdempotencyKey};
use crate::domain::member::MemberId;
use crate::domain::room::BroadcastState;
use crate::event_store::{EventStore, EventStoreError, NewEvent};
use crate::events::{Event, EventEnvelope, GiftSent};
use crate::read_models::{gift_records, rooms as room_queries};

/// The route name idempotency keys of gifts are scoped to (with the sender).
const ROUTE: &str = "sendGift";

/// A `sendGift`.
#[derive(Clone, Debug)]
pub struct SendGift {
    /// The token's member: who asks.
    pub caller: String,
    /// The sender (`memberID`); must be the caller.
    pub presenter: MemberId,
    /// The streamer (`gameID`).
    pub streamer: MemberId,
    /// The room's agent (`agentID`); must be the streamer's.
    pub agent_id: String,
    /// The catalog gift (`giftID`).
    pub gift_id: i64,
    /// How many, 1 to 9999 (checked by the caller with `domain::room::check_gift_count`).
    pub count: u32,
    /// The `Idempotency-Key` header, if any.
    pub idempotency_key: Option<IdempotencyKey>,
}

/// A stored gift: the first answer, also for a retry with the same key.
#[derive(Clone, Debug)]
pub struct SentGift {
    /// The gift record's id: the `gift.sent` event id.
    pub record_id: Uuid,
    /// The event's stream sequence.
    pub sequence: u64,
    /// The event as stored.
    pub gift: GiftSent,
    /// When it was sent (the event time).
    pub sent_at: OffsetDateTime,
}

/// Why a gift was not sent; nothing was published.
#[derive(Debug, thiserror::Error)]
pub enum SendGiftError {
    /// The parties are wrong (HTTP 403 `FORBIDDEN` for another member's token, else 400).
    #[error(transparent)]
    Rule(#[from] GiftRuleError),
    /// The key was used for another gift, count or streamer (HTTP 422 `IDEMPOTENCY_KEY_REUSED`).
    #[error("this Idempotency-Key was used for another gift, count or streamer")]
    IdempotencyKeyReused,
    /// No such streamer (HTTP 404 `STREAMER_NOT_FOUND`).
    #[error("streamer {0} not found")]
    StreamerNotFound(String),
    /// No such gift, or it is disabled (HTTP 404 `GIFT_NOT_FOUND`).
    #[error("gift {0} not found")]
    GiftNotFound(i64),
    /// The sender has no member record (HTTP 404 `MEMBER_NOT_FOUND`).
    #[error("member {0} not found")]
    MemberNotFound(String),
    /// The event store did not answer (HTTP 503).
    #[error(transparent)]
    Store(#[from] EventStoreError),
    /// Postgres failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Sends a gift; see the module docs.
#[tracing::instrument(
    skip_all,
    fields(member.id = %cmd.presenter, streamer.id = %cmd.streamer, gift.id = cmd.gift_id),
    err(level = "info")
)]
pub async fn send_gift(
    db: &PgPool,
    store: &EventStore,
    cmd: SendGift,
    now: OffsetDateTime,
) -> Result<SentGift, SendGiftError> {
    gift::check_parties(&cmd.caller, &cmd.presenter, &cmd.streamer, &cmd.agent_id)?;
    let event_id =
        idempotency::event_id(cmd.presenter.as_str(), ROUTE, cmd.idempotency_key.as_ref());
    // A retry of a gift already projected (any time later) gets its first answer.
    if let Some(id) = event_id
        && let Some(sequence) = gift_records::recorded_sequence(db, id).await?
    {
        return sent_again(store, sequence, &cmd).await;
    }
    if room_queries::room(db, cmd.streamer.as_str())
        .await?
        .is_none()
    {
        return Err(SendGiftError::StreamerNotFound(cmd.streamer.to_string()));
    }
    let entry = gift_catalog::get(db, cmd.gift_id)
        .await?
        .filter(|g| g.enabled)
        .ok_or(SendGiftError::GiftNotFound(cmd.gift_id))?;
    let sender = members::find(db, cmd.presenter.as_str())
        .await?
        .ok_or_else(|| SendGiftError::MemberNotFound(cmd.presenter.to_string()))?;
    let (broadcast, _) = rooms::broadcast_state(store, cmd.streamer.as_str()).await?;
    let session_id = match broadcast {
        BroadcastState::Live { session_id } => Some(session_id),
        BroadcastState::Offline => None,
    };
    let points = entry.points as u32;
    let event = GiftSent {
        gift_id: cmd.gift_id,
        gift_name: entry.name,
        anime_url: entry.anime_url,
        points,
        count: cmd.count,
        score: gift::score(points, cmd.count),
        presenter: cmd.presenter.to_string(),
        presenter_nickname: sender.nickname,
        recipient: cmd.streamer.to_string(),
        agent_id: cmd.agent_id.clone(),
        session_id,
    };
    let mut new = NewEvent::new(now, Event::GiftSent(event.clone()));
    if let Some(id) = event_id {
        new = new.with_id(id);
    }
    let published = store.publish(new).await?;
    if published.duplicate {
        // A retry within JetStream's duplicate window, before the projection has the record.
        return sent_again(store, published.sequence, &cmd).await;
    }
    Ok(SentGift {
        record_id: published.id,
        sequence: published.sequence,
        gift: event,
        sent_at: now,
    })
}

/// The first gift sent with this key, read from the stream; [`SendGiftError::IdempotencyKeyReused`]
/// when it was another gift, count or streamer.
async fn sent_again(
    store: &EventStore,
    sequence: u64,
    cmd: &SendGift,
) -> Result<SentGift, SendGiftError> {
    match store.get(sequence).await? {
        Some(EventEnvelope {
            id,
            occurred_at,
            event: Event::GiftSent(e),
            ..
        }) if e.gift_id == cmd.gift_id
            && e.count == cmd.count
            && e.recipient == cmd.streamer.as_str() =>
        {
            Ok(SentGift {
                record_id: id,
                sequence,
                gift: e,
                sent_at: occurred_at,
            })
        }
        _ => Err(SendGiftError::IdempotencyKeyReused),
    }
}
