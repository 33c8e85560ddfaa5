//! The presence store of this chat instance: its id (carried by its `member_joined_room` events),
//! its announcements in `chat_instances` (the presence reactor, src/reactors/presence.rs, reaps
//! the members of instances silent for longer than the timeout), and the verified members present
//! in a room on the other instances (`roomView`). The announcements are records
//! ([`crate::records::chat_presence`]); the presence rows are read from
//! [`crate::read_models::presence`].

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use uuid::Uuid;

use crate::read_models::presence::{self, PresentConnection};
use crate::records::chat_presence;

/// This instance's presence: its id and the database its rows are in.
#[derive(Clone, Debug)]
pub struct PresenceStore {
    db: PgPool,
    instance_id: String,
}

impl PresenceStore {
    /// The presence store of a new instance, with a fresh id (UUID v4).
    pub fn new(db: PgPool) -> Self {
        Self {
            db,
            instance_id: Uuid::new_v4().to_string(),
        }
    }

    /// This instance's id.
    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    /// Records that this instance is alive now.
    pub async fn announce(&self) -> Result<(), sqlx::Error> {
        chat_presence::announce_instance(&self.db, &self.instance_id).await
    }

    /// Connections of verified members present in `room` on other instances, with their join
    /// time.
    pub async fn present_elsewhere(
        &self,
        room: &str,
    ) -> Result<Vec<PresentConnection>, sqlx::Error> {
        presence::present_elsewhere(&self.db, room, &self.instance_id).await
    }
}

/// Announces the instance every `every` (a failure is logged and retried at the next tick). Runs
/// until the task is dropped.
pub async fn keep_announcing(store: Arc<PresenceStore>, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if let Err(e) = store.announce().await {
            tracing::warn!(error = %e, "chat instance not announced; will retry");
        }
    }
}
