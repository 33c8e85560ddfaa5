//! The transactional outbox (table `event_outbox`, migration 0014): an event is written in the
//! same Postgres transaction as the rows it speaks of, then published to the stream.
//!
//! Who writes rows: the member commands ([`crate::commands::members`]: the member's row and its
//! `member.registered` / `member.edited` commit together) and the projector runner (the chat
//! notices a batch derives, committed with the batch and its checkpoint). Who publishes them:
//!
//! 1. a request publishes the rows of its own ordering key right after its commit ([`flush`]),
//!    so it still answers after its event is stored, with its stream sequence;
//! 2. the outbox relay ([`crate::reactors::outbox_relay`]) publishes what is left: rows a crash
//!    left behind (past their `relay_after`) and the notices, woken by `NOTIFY onair_outbox`.
//!
//! Each row is published with `Nats-Msg-Id` = its event id (the row holds the message exactly as
//! [`EventStore::encode`] built it: subject, CloudEvents headers, payload), so publishing a row a
//! second time (a crash between the publish and the mark, two flushes racing) is a duplicate that
//! JetStream's duplicate window (120 s, `nats/stream.json`) drops and acknowledges with the
//! original sequence. Rows of one ordering key are published one after the other in `position`
//! order, under their row locks, so a member's edits reach the stream in the order they committed.

use std::collections::BTreeMap;
use std::str::FromStr;

use async_nats::HeaderMap;
use async_nats::header::HeaderName;
use async_nats::jetstream;
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{EventStore, EventStoreError, NewEvent, Published};
use crate::events::cloudevents;

/// The Postgres `NOTIFY` channel that wakes the relay when rows to publish at once were committed.
pub const CHANNEL: &str = "onair_outbox";

/// How long after its commit a row that its request publishes itself ([`publish_own`]) is left to
/// that request: the relay publishes it only after this (30 s of the application clock, past the
/// request's publish retry window of 8 s and the 9 s request deadline), so it only picks up rows
/// a crash or a NATS outage left behind.
pub const REQUEST_GRACE: time::Duration = time::Duration::seconds(30);

/// An event encoded as the message JetStream stores, ready to be kept in the outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedEvent {
    /// `ce-id` and `Nats-Msg-Id`.
    pub id: Uuid,
    /// The stream subject, `onair.<context>.<aggregate id>.<event>`.
    pub subject: String,
    /// The CloudEvents headers (binary mode) and `Nats-Msg-Id`, name to value.
    pub headers: BTreeMap<String, String>,
    /// The event's JSON data, as published.
    pub payload: Vec<u8>,
}

/// Why an outbox step failed. Nothing is lost: an unpublished row stays for the relay.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// JetStream did not store the event (see [`EventStoreError`]).
    #[error(transparent)]
    Store(#[from] EventStoreError),
    /// Postgres failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl EventStore {
    /// The message [`EventStore::publish`] would send for `new` (its guard aside: events of the
    /// outbox are never guarded), as a value to keep in the outbox.
    pub fn encode(&self, new: &NewEvent) -> EncodedEvent {
        let headers = cloudevents::headers(new.id, new.occurred_at, self.source(), &new.event);
        EncodedEvent {
            id: new.id,
            subject: new.event.subject(),
            headers: headers
                .iter()
                .filter_map(|(name, values)| {
                    let value = values.first()?;
                    Some((name.to_string(), value.as_str().to_owned()))
                })
                .collect(),
            payload: new.event.to_json(),
        }
    }

    /// Publishes encoded events as they are, pipelined, retrying transient failures with the same
    /// ids as [`EventStore::publish_all`] does. A header name NATS cannot carry is
    /// [`EventStoreError::Rejected`] (only a row edited by hand can hold one).
    pub async fn publish_encoded(
        &self,
        events: &[EncodedEvent],
    ) -> Result<Vec<Published>, EventStoreError> {
        let mut messages = Vec::with_capacity(events.len());
        for event in events {
            let mut headers = HeaderMap::new();
            for (name, value) in &event.headers {
                let name = HeaderName::from_str(name).map_err(|e| {
                    EventStoreError::Rejected(format!("outbox header {name:?}: {e}"))
                })?;
                headers.insert(name, value.as_str());
            }
            messages.push((
                event.id,
                event.subject.clone(),
                headers,
                event.payload.clone(),
            ));
        }
        self.retrying(|| async {
            let mut pending = Vec::with_capacity(messages.len());
            for (id, subject, headers, payload) in &messages {
                let message = jetstream::message::PublishMessage::build()
                    .payload(payload.clone().into())
                    .headers(headers.clone());
                let ack = self
                    .jetstream
                    .send_publish(subject.clone(), message)
                    .await
                    .map_err(|e| super::refusals::publish_error(&e, 0))?;
                pending.push((*id, ack));
            }
            let mut published = Vec::with_capacity(pending.len());
            for (id, ack) in pending {
                let ack = ack
                    .await
                    .map_err(|e| super::refusals::publish_error(&e, 0))?;
                published.push(Published {
                    id,
                    sequence: ack.sequence,
                    duplicate: ack.duplicate,
                });
            }
            Ok(published)
        })
        .await
    }
}

/// Writes `event` into the outbox inside the caller's transaction, under `ordering_key`.
/// `relay_after`: when the relay may publish it (`None`: at once). A row with this event id
/// already there is kept as it is (a batch applied again after a crash derives the same ids).
pub async fn enqueue(
    tx: &mut PgConnection,
    ordering_key: &str,
    event: &EncodedEvent,
    relay_after: Option<OffsetDateTime>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO event_outbox (event_id, ordering_key, subject, headers, payload, relay_after)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(event.id)
    .bind(ordering_key)
    .bind(&event.subject)
    .bind(sqlx::types::Json(&event.headers))
    .bind(&event.payload)
    .bind(relay_after)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Wakes the relay when the caller's transaction commits (`NOTIFY onair_outbox`).
pub async fn notify(tx: &mut PgConnection, ordering_key: &str) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(ordering_key)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// An unpublished row, as read for publishing.
#[derive(sqlx::FromRow)]
struct PendingRow {
    position: i64,
    event_id: Uuid,
    subject: String,
    headers: sqlx::types::Json<BTreeMap<String, String>>,
    payload: Vec<u8>,
}

/// Publishes every unpublished row of `ordering_key`, in `position` order, and marks each with its
/// stream sequence. The rows stay locked (`FOR UPDATE`) from the read to the mark, so a second
/// flush of the same key waits, then finds them published. Returns the events it stored. When
/// the publish fails, nothing is marked (the rows stay for the relay; any event that did get
/// stored is a duplicate the next time).
pub async fn flush(
    db: &PgPool,
    store: &EventStore,
    ordering_key: &str,
) -> Result<Vec<Published>, OutboxError> {
    let mut tx = db.begin().await?;
    let rows: Vec<PendingRow> = sqlx::query_as(
        "SELECT position, event_id, subject, headers, payload FROM event_outbox
         WHERE ordering_key = $1 AND sequence IS NULL
         ORDER BY position FOR UPDATE",
    )
    .bind(ordering_key)
    .fetch_all(&mut *tx)
    .await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let events: Vec<EncodedEvent> = rows
        .iter()
        .map(|row| EncodedEvent {
            id: row.event_id,
            subject: row.subject.clone(),
            headers: row.headers.0.clone(),
            payload: row.payload.clone(),
        })
        .collect();
    let published = store.publish_encoded(&events).await?;
    let positions: Vec<i64> = rows.iter().map(|row| row.position).collect();
    let sequences: Vec<i64> = published.iter().map(|p| p.sequence as i64).collect();
    sqlx::query(
        "UPDATE event_outbox o SET sequence = p.sequence, published_at = now()
         FROM unnest($1::bigint[], $2::bigint[]) AS p(position, sequence)
         WHERE o.position = p.position",
    )
    .bind(&positions)
    .bind(&sequences)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(published)
}

/// A request's step after its commit: publishes the rows of `ordering_key` in order (its own,
/// `event_id`, among them) and answers its event's stream sequence. When the stream does not
/// store it, [`OutboxError::Store`]: the row stays for the relay.
pub async fn publish_own(
    db: &PgPool,
    store: &EventStore,
    ordering_key: &str,
    event_id: Uuid,
) -> Result<u64, OutboxError> {
    flush(db, store, ordering_key).await?;
    // Published by this flush, or by one that ran first (another request on the same key, the
    // relay): its row holds the sequence either way.
    take_published(db, event_id).await?.ok_or_else(|| {
        OutboxError::Store(EventStoreError::Unavailable(
            "the event is still waiting in the outbox".into(),
        ))
    })
}

/// The stream sequence of an event of the outbox once published (by this request's flush or
/// another's), and removes its row. `None` while it is not published.
pub async fn take_published(db: &PgPool, event_id: Uuid) -> Result<Option<u64>, sqlx::Error> {
    let row: Option<(i64,)> = sqlx::query_as(
        "DELETE FROM event_outbox WHERE event_id = $1 AND sequence IS NOT NULL
         RETURNING sequence",
    )
    .bind(event_id)
    .fetch_optional(db)
    .await?;
    Ok(row.map(|(sequence,)| sequence as u64))
}

/// The ordering keys with rows the relay may publish at `now`, oldest row first (at most 100).
pub async fn due_keys(db: &PgPool, now: OffsetDateTime) -> Result<Vec<String>, sqlx::Error> {
    let keys: Vec<(String, i64)> = sqlx::query_as(
        "SELECT ordering_key, min(position) AS first FROM event_outbox
         WHERE sequence IS NULL AND (relay_after IS NULL OR relay_after <= $1)
         GROUP BY ordering_key ORDER BY first LIMIT 100",
    )
    .bind(now)
    .fetch_all(db)
    .await?;
    Ok(keys.into_iter().map(|(key, _)| key).collect())
}

/// Deletes rows published more than a minute ago (their request has read its sequence, or is
/// gone); returns how many.
pub async fn forget_published(db: &PgPool) -> Result<u64, sqlx::Error> {
    sqlx::query(
        "DELETE FROM event_outbox
         WHERE sequence IS NOT NULL AND published_at < now() - interval '1 minute'",
    )
    .execute(db)
    .await
    .map(|r| r.rows_affected())
}

/// How many rows wait to be published (`/metrics`, tests).
pub async fn pending(db: &PgPool) -> Result<i64, sqlx::Error> {
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM event_outbox WHERE sequence IS NULL")
        .fetch_one(db)
        .await?;
    Ok(n)
}
