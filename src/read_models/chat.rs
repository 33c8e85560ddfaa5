//! Queries of the chat socket: a room's recent messages (read from the stream, which keeps every
//! `chat.message_posted`) and which of a set of members follow a streamer (`rm_followers`).

use std::collections::HashSet;
use std::time::Duration;

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use futures_util::StreamExt;
use sqlx::PgPool;
use time::OffsetDateTime;

use crate::event_store::EventStore;
use crate::events::{Event, cloudevents, subject};

/// How far back [`last_messages`] looks.
pub const HISTORY_WINDOW: time::Duration = time::Duration::hours(24);

/// One message of a room's history, as it was posted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostedMessage {
    /// The chat message's JSON text (the seed's `{"type":"chat",...}`).
    pub message: String,
    /// The room it was said in.
    pub room: String,
    /// The connection (socket) id that said it.
    pub from: String,
    /// When it was said (event time, UTC).
    pub sent_at: OffsetDateTime,
}

/// The last `limit` messages said in `room` during the [`HISTORY_WINDOW`] before `now`, oldest
/// first. Errors: the stream or its consumer is unavailable.
pub async fn last_messages(
    store: &EventStore,
    room: &str,
    limit: usize,
    now: OffsetDateTime,
) -> anyhow::Result<Vec<PostedMessage>> {
    let stream = store.stream().await?;
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            filter_subject: subject::subject("chat", room, "message_posted"),
            deliver_policy: DeliverPolicy::ByStartTime {
                start_time: now - HISTORY_WINDOW,
            },
            ..Default::default()
        })
        .await?;
    let mut info = consumer.clone();
    let pending = info.info().await?.num_pending as usize;
    let mut out = std::collections::VecDeque::with_capacity(limit);
    if pending > 0 {
        let mut messages = consumer.messages().await?;
        let mut read = 0;
        while read < pending {
            let Ok(Some(Ok(m))) =
                tokio::time::timeout(Duration::from_secs(2), messages.next()).await
            else {
                break;
            };
            read += 1;
            if let Ok(e) = cloudevents::decode(m.headers.as_ref(), &m.payload, 0)
                && let Event::ChatMessagePosted(p) = e.event
            {
                if out.len() == limit {
                    out.pop_front();
                }
                out.push_back(PostedMessage {
                    message: p.message,
                    room: p.room,
                    from: p.from,
                    sent_at: e.occurred_at,
                });
            }
        }
    }
    Ok(out.into())
}

/// Which of `members` follow `streamer`.
pub async fn followers_among(
    db: &PgPool,
    streamer: &str,
    members: &[String],
) -> Result<HashSet<String>, sqlx::Error> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT follower_id FROM rm_followers WHERE streamer_id = $1 AND follower_id = ANY($2)",
    )
    .bind(streamer)
    .bind(members)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|(f,)| f).collect())
}
