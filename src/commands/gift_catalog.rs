//! The gift catalog (`sendGift`, docs/api.md#client-gateway: "the gift must exist"): operator
//! records in Postgres table `gift_catalog`, managed by the back office (`SetGift`) and `onair
//! gift set`. Every change is also published as `onair.gift_catalog.defined.v1`, through the
//! transactional outbox ([`crate::event_store::outbox`]) as member changes are: the row and its event commit in
//! one transaction, the request then publishes the gift's outbox rows in commit order and answers
//! with the sequence; rows a crash left behind are published by the outbox relay.

use sqlx::PgPool;
use time::OffsetDateTime;

use crate::event_store::outbox::{self, OutboxError};
use crate::event_store::{EventStore, EventStoreError, NewEvent};
use crate::events::{Event, GiftDefined};

/// Longest gift name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest animation URL, in characters.
pub const MAX_ANIME_URL_CHARS: usize = 2048;

/// A catalog entry.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Gift {
    /// Gift id, at least 1: `giftID` in the back office, `gift.id` in the chat's `gift` message.
    pub gift_id: i64,
    /// Display name, 1 to [`MAX_NAME_CHARS`] characters.
    pub name: String,
    /// Ranking points per gift (at least 1).
    pub points: i32,
    /// Animation URL (`animeUrl`), at most [`MAX_ANIME_URL_CHARS`] characters; may be empty.
    pub anime_url: String,
    /// A disabled gift cannot be sent (it stays in past records).
    pub enabled: bool,
}

/// Why a gift could not be stored; nothing was stored or published, [`GiftCatalogError::Store`]
/// aside.
#[derive(Debug, thiserror::Error)]
pub enum GiftCatalogError {
    /// A field is out of range; the message names it (HTTP 400 `VALIDATION_ERROR`).
    #[error("{0}")]
    Invalid(String),
    /// The `gift_catalog.defined` event was not stored yet (HTTP 503): the entry is committed
    /// with its event in the outbox, which the outbox relay publishes once the stream answers.
    #[error(transparent)]
    Store(#[from] EventStoreError),
    /// Postgres failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Checks an entry: id >= 1, a name of 1 to 100 characters, points >= 1, an animation URL of at
/// most 2048 characters.
pub fn check(gift: &Gift) -> Result<(), GiftCatalogError> {
    let invalid = |m: &str| Err(GiftCatalogError::Invalid(m.to_owned()));
    if gift.gift_id < 1 {
        return invalid("giftID must be a whole number of at least 1");
    }
    let name_chars = gift.name.trim().chars().count();
    if name_chars == 0 || gift.name.chars().count() > MAX_NAME_CHARS {
        return invalid("name must be 1 to 100 characters");
    }
    if gift.points < 1 {
        return invalid("points must be a whole number of at least 1");
    }
    if gift.anime_url.chars().count() > MAX_ANIME_URL_CHARS
        || gift.anime_url.chars().any(char::is_control)
    {
        return invalid("animeUrl must be at most 2048 characters, without control characters");
    }
    Ok(())
}

/// Creates or replaces a catalog entry and publishes `onair.gift_catalog.defined.v1`; returns the
/// entry and the event's stream sequence.
#[tracing::instrument(skip_all, fields(gift.id = gift.gift_id), err(level = "info"))]
pub async fn define(
    db: &PgPool,
    store: &EventStore,
    gift: Gift,
    now: OffsetDateTime,
) -> Result<(Gift, u64), GiftCatalogError> {
    check(&gift)?;
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO gift_catalog (gift_id, name, points, anime_url, enabled)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (gift_id) DO UPDATE SET name = EXCLUDED.name, points = EXCLUDED.points,
             anime_url = EXCLUDED.anime_url, enabled = EXCLUDED.enabled, updated_at = now()",
    )
    .bind(gift.gift_id)
    .bind(&gift.name)
    .bind(gift.points)
    .bind(&gift.anime_url)
    .bind(gift.enabled)
    .execute(&mut *tx)
    .await?;
    let event = store.encode(&NewEvent::new(
        now,
        Event::GiftDefined(GiftDefined {
            gift_id: gift.gift_id,
            name: gift.name.clone(),
            points: gift.points as u32,
            anime_url: gift.anime_url.clone(),
            enabled: gift.enabled,
        }),
    ));
    // The upsert holds the gift's row lock until the commit, so the outbox rows of one gift are
    // numbered in commit order.
    let key = format!("gift.{}", gift.gift_id);
    outbox::enqueue(&mut tx, &key, &event, Some(now + outbox::REQUEST_GRACE)).await?;
    tx.commit().await?;
    match outbox::publish_own(db, store, &key, event.id).await {
        Ok(sequence) => Ok((gift, sequence)),
        Err(OutboxError::Store(e)) => Err(GiftCatalogError::Store(e)),
        Err(OutboxError::Database(e)) => Err(GiftCatalogError::Database(e)),
    }
}

/// One entry by id.
pub async fn get(db: &PgPool, gift_id: i64) -> Result<Option<Gift>, sqlx::Error> {
    sqlx::query_as(
        "SELECT gift_id, name, points, anime_url, enabled FROM gift_catalog WHERE gift_id = $1",
    )
    .bind(gift_id)
    .fetch_optional(db)
    .await
}

/// Every entry, by id.
pub async fn list(db: &PgPool) -> Result<Vec<Gift>, sqlx::Error> {
    sqlx::query_as(
        "SELECT gift_id, name, points, anime_url, enabled FROM gift_catalog ORDER BY gift_id",
    )
    .fetch_all(db)
    .await
}
