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

use crate::chat::service::leave_events;
use crate::event_store::EventStore;
use crate::events::MemberLeftRoom;
use crate::events::id::derived_event_id;

/// Runs until the task is dropped; looks every third of `timeout`.
pub async fn run(db: PgPool, store: EventStore, timeout: Duration) {
    let mut ticker = tokio::time::interval(timeout / 3);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut leadership = super::Leadership::new("onair.reactor.presence");
    loop {
        ticker.tick().await;
        if !leadership.lead(&db).await {
            continue;
        }
        match reap(&db, &store, timeout).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(connections = n, "left rooms for silent chat instances"),
            Err(e) => {
                tracing::warn!(error = %e, "presence reaping failed; will retry");
                leadership.step_down().await;
            }
        }
    }
}

/// Publishes the leaves of every connection held by an instance silent for longer than `timeout`;
/// returns how many.
pub async fn reap(db: &PgPool, store: &EventStore, timeout: Duration) -> anyhow::Result<usize> {
    let orphans: Vec<(String, String, String, Option<String>)> = sqlx::query_as(
        "SELECT p.room, p.connection_id, p.member_id, m.nickname
         FROM rm_room_presence p LEFT JOIN members m ON m.member_id = p.member_id
         WHERE p.instance_id IS NOT NULL AND NOT EXISTS (
             SELECT 1 FROM chat_instances i
             WHERE i.instance_id = p.instance_id
               AND i.last_seen > now() - make_interval(secs => $1))
         ORDER BY p.since",
    )
    .bind(timeout.as_secs_f64())
    .fetch_all(db)
    .await?;
    let now = OffsetDateTime::now_utc();
    let mut events = Vec::with_capacity(orphans.len() * 2);
    for (room, connection_id, member_id, nickname) in &orphans {
        let id = derived_event_id(&["presence-expired", room, connection_id]);
        let fact = MemberLeftRoom {
            room: room.clone(),
            member_id: member_id.clone(),
            connection_id: connection_id.clone(),
        };
        events.extend(leave_events(
            fact,
            nickname.clone().unwrap_or_default(),
            now,
            Some(id),
        ));
    }
    if !events.is_empty() {
        store.publish_all(events).await?;
    }
    // Instances silent for a day are forgotten.
    sqlx::query("DELETE FROM chat_instances WHERE last_seen < now() - interval '1 day'")
        .execute(db)
        .await?;
    Ok(orphans.len())
}
