//! The live tail of the event stream for the operations dashboard (`/dashboard`): each event's
//! stream sequence, type, subject and time, read with an ordered JetStream consumer (no durable
//! state on the server), starting a few events back so a new page has something to show.

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use futures_util::{Stream, StreamExt};
use serde::Serialize;

use crate::event_store::EventStore;
use crate::events::cloudevents;

/// One event of the tail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FeedEvent {
    /// Its stream sequence.
    pub sequence: u64,
    /// Its CloudEvents type (`onair.viewer.joined.v1`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Its CloudEvents subject (what it is about: a stage ARN, a user, a room).
    pub subject: String,
    /// When it happened (`ce-time`, RFC 3339 UTC).
    pub time: String,
}

/// Follows the stream from `backlog` events before its end: every event stored from then on, in
/// stream order, for as long as the returned stream is polled. Messages that cannot be read end
/// the stream (the dashboard reconnects).
pub async fn follow(
    store: &EventStore,
    backlog: u64,
) -> anyhow::Result<impl Stream<Item = FeedEvent> + Send + 'static> {
    let mut stream = store.stream().await?;
    let last = stream.info().await?.state.last_sequence;
    let deliver_policy = if last == 0 {
        DeliverPolicy::New
    } else {
        DeliverPolicy::ByStartSequence {
            start_sequence: last.saturating_sub(backlog.saturating_sub(1)).max(1),
        }
    };
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            filter_subject: "onair.>".into(),
            deliver_policy,
            ..Default::default()
        })
        .await?;
    let messages = consumer.messages().await?;
    Ok(messages
        .take_while(|m| std::future::ready(m.is_ok()))
        .filter_map(|message| async move {
            let message = message.ok()?;
            let sequence = message.info().ok()?.stream_sequence;
            let get = |name: &str| {
                message
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(name))
                    .map(|v| v.as_str().to_owned())
                    .unwrap_or_default()
            };
            Some(FeedEvent {
                sequence,
                kind: get(cloudevents::TYPE),
                subject: get(cloudevents::SUBJECT),
                time: get(cloudevents::TIME),
            })
        }))
}
