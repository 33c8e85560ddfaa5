//! Popularity: every interval, recomputes the popularity of each live room (and of rooms cooling
//! down to 0 after going offline) from the activity read model and publishes
//! `onair.popularity.changed.v1` when the value changed (src/domain/popularity.rs). The `rooms`
//! projection stores it and derives the `popularity` chat message.
//!
//! Time drives this, so it is a reactor: the value and its inputs travel in the event, and a
//! replay reproduces them without reading the clock. One instance computes at a time (a Postgres
//! advisory lock on a dedicated connection), so two instances never publish competing values.

use std::time::Duration;

use sqlx::PgPool;
use time::OffsetDateTime;

use crate::domain::popularity::{PopularityInputs, WINDOW_SECONDS, popularity, window_start};
use crate::event_store::{EventStore, NewEvent};
use crate::events::{Event, PopularityChanged};
use crate::read_models::rooms::{activity_since, present_viewers, rooms_for_popularity};
use crate::runtime::clock::Clock;
use crate::runtime::leadership::Leadership;

/// Runs until the task is dropped; "now" (the window's end, the event's time) comes from `clock`.
pub async fn run(db: PgPool, store: EventStore, clock: Clock, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    const LOCK: &str = "onair.reactor.popularity";
    let leadership = Leadership::default();
    // The first computation comes one interval after start, when the read models have caught up.
    ticker.tick().await;
    loop {
        ticker.tick().await;
        if !leadership.lead_by_lock(&db, LOCK).await {
            continue;
        }
        if let Err(e) = update_all(&db, &store, clock.now()).await {
            tracing::warn!(error = %e, "popularity update failed; will retry");
            // The lock connection may be gone too: take the lock again next time.
            leadership.step_down(LOCK).await;
        }
    }
}

/// One pass over the rooms as of `now`; returns how many changed.
#[tracing::instrument(level = "debug", skip_all, err)]
pub async fn update_all(
    db: &PgPool,
    store: &EventStore,
    now: OffsetDateTime,
) -> anyhow::Result<usize> {
    let since = OffsetDateTime::from_unix_timestamp(window_start(now.unix_timestamp()))?;
    let mut changed = 0;
    for (streamer, _is_live, current) in rooms_for_popularity(db).await? {
        let (gift_points, chat_messages) = activity_since(db, &streamer, since).await?;
        let viewers = present_viewers(db, &streamer).await?;
        let inputs = PopularityInputs {
            viewers: viewers.max(0) as u64,
            gift_points: gift_points.max(0) as u64,
            chat_messages: chat_messages.max(0) as u64,
        };
        let value = popularity(inputs);
        if i64::try_from(value).unwrap_or(i64::MAX) == current {
            continue;
        }
        store
            .publish(NewEvent::new(
                now,
                Event::PopularityChanged(PopularityChanged {
                    streamer,
                    value,
                    viewers: inputs.viewers,
                    gift_points: inputs.gift_points,
                    chat_messages: inputs.chat_messages,
                    window_seconds: WINDOW_SECONDS as u64,
                }),
            ))
            .await?;
        changed += 1;
    }
    Ok(changed)
}
