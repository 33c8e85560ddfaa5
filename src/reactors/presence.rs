//! Presence: members on a chat instance that stopped answering (a crash, a killed process, a lost
//! machine) would stay present forever, since their sockets never close on a live instance. Every
//! chat instance announces itself in `chat_instances` every third of
//! `ONAIR_CHAT_INSTANCE_TIMEOUT_MS` (45 s by default); this reactor publishes
//! `chat.member_left_room` and the `leaveRoom` notice for each connection whose instance has been
//! silent for longer, so the `room_activity` projection drops them and popularity stops counting
//! them. The leaves are events like any other, so a replay gives the same presence.
//!
//! One instance reaps at a time (a Postgres advisory lock on a dedicated connection). Event ids are
//! derived from the connection, so two reapers, or a retry, publish each leave once.

use std::time::Duration;

use sqlx::PgPool;
use time::OffsetDateTime;

use crate::commands::chat::leave_events;
use crate::event_store::EventStore;
use crate::events::MemberLeftRoom;
use crate::events::id::derived_event_id;
use crate::read_models::presence::orphaned_connections;
use crate::records::chat_presence::forget_silent_instances;
use crate::runtime::clock::Clock;
use crate::runtime::leadership::Leadership;

/// Runs until the task is dropped; looks every third of `timeout`. The leaves' time is `clock`'s.
pub async fn run(db: PgPool, store: EventStore, timeout: Duration, clock: Clock) {
    let mut ticker = tokio::time::interval(timeout / 3);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    const LOCK: &str = "onair.reactor.presence";
    let leadership = Leadership::default();
    loop {
        ticker.tick().await;
        if !leadership.lead_by_lock(&db, LOCK).await {
            continue;
        }
        match reap(&db, &store, timeout, clock.now()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(connections = n, "left rooms for silent chat instances"),
            Err(e) => {
                tracing::warn!(error = %e, "presence reaping failed; will retry");
                leadership.step_down(LOCK).await;
            }
        }
    }
}

/// Publishes the leaves of every connection held by an instance silent for longer than `timeout`;
/// returns how many. `now` is the leaves' time (the silence itself is measured in Postgres time,
/// which every instance's announcements share).
pub async fn reap(
    db: &PgPool,
    store: &EventStore,
    timeout: Duration,
    now: OffsetDateTime,
) -> anyhow::Result<usize> {
    let orphans = orphaned_connections(db, timeout).await?;
    let mut events = Vec::with_capacity(orphans.len() * 2);
    for orphan in &orphans {
        let id = derived_event_id(&["presence-expired", &orphan.room, &orphan.connection_id]);
        let fact = MemberLeftRoom {
            room: orphan.room.clone(),
            member_id: orphan.member_id.clone(),
            connection_id: orphan.connection_id.clone(),
        };
        events.extend(leave_events(
            fact,
            orphan.nickname.clone().unwrap_or_default(),
            now,
            Some(id),
        ));
    }
    if !events.is_empty() {
        store.publish_all(events).await?;
    }
    // Instances silent for a day are forgotten.
    forget_silent_instances(db).await?;
    Ok(orphans.len())
}
