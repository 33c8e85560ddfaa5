//! The outbox relay: publishes the rows of the transactional outbox
//! ([`crate::event_store::outbox`]) that no request publishes itself: the chat notices the
//! projectors derive (committed with their batch, to publish at once) and member events a crash
//! or a NATS outage left behind (past their [`outbox::REQUEST_GRACE`]).
//!
//! It wakes on `NOTIFY onair_outbox` (sent by the transaction that wrote rows to publish at once)
//! and every [`POLL_INTERVAL`] (rows whose grace ran out, a missed notification). Each row is
//! published with `Nats-Msg-Id` = its event id and then marked with its stream sequence; a crash
//! between the two publishes it again on the next run, and JetStream drops the copy as a
//! duplicate. Several relays (one per `reactors` instance) are safe: the rows of one ordering key
//! are published under their row locks, in order, by one of them at a time.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgListener, PgPoolOptions};
use time::OffsetDateTime;

use crate::event_store::EventStore;
use crate::event_store::outbox::{self, OutboxError};
use crate::runtime::clock::Clock;

/// How often the relay looks for due rows without being woken: 1 s.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Runs until the task is dropped; returns (to be restarted by its supervisor) when its
/// `LISTEN` connection fails. "Now", against which a row's `relay_after` is compared, is
/// `clock`'s.
pub async fn run(db: PgPool, store: EventStore, clock: Clock) {
    // The LISTEN connection is its own (a pool of one), not one taken from the request pool.
    let listen_pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_lazy_with((*db.connect_options()).clone());
    let mut listener = match PgListener::connect_with(&listen_pool).await {
        Ok(listener) => listener,
        Err(e) => {
            tracing::warn!(error = %e, "outbox relay cannot listen; will restart");
            return;
        }
    };
    if let Err(e) = listener.listen(outbox::CHANNEL).await {
        tracing::warn!(error = %e, "outbox relay cannot listen; will restart");
        return;
    }
    let mut ticker = tokio::time::interval(POLL_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        match relay_due(&db, &store, clock.now()).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(events = n, "outbox rows published"),
            Err(e) => tracing::warn!(error = %e, "outbox rows not published; will retry"),
        }
        tokio::select! {
            notified = listener.recv() => {
                if let Err(e) = notified {
                    tracing::warn!(error = %e, "outbox relay lost its LISTEN connection; will restart");
                    return;
                }
            }
            _ = ticker.tick() => {
                if let Err(e) = outbox::forget_published(&db).await {
                    tracing::warn!(error = %e, "published outbox rows not deleted; will retry");
                }
            }
        }
    }
}

/// One pass: publishes every ordering key's unpublished rows when at least one of them is due at
/// `now` (a key's rows go in order, the not yet due ones with them). Returns how many events it
/// stored (duplicates of events stored before included). A key that fails is logged and left
/// for the next pass while the other keys go on; a pass that stored nothing and failed answers
/// its last failure.
pub async fn relay_due(
    db: &PgPool,
    store: &EventStore,
    now: OffsetDateTime,
) -> Result<usize, OutboxError> {
    let mut relayed = 0;
    let mut failure = None;
    for key in outbox::due_keys(db, now).await? {
        match outbox::flush(db, store, &key).await {
            Ok(published) => {
                metrics::counter!("onair_outbox_relayed_total").increment(published.len() as u64);
                relayed += published.len();
            }
            Err(e) => {
                tracing::warn!(ordering_key = %key, error = %e, "outbox rows not published");
                failure = Some(e);
            }
        }
    }
    match failure {
        Some(e) if relayed == 0 => Err(e),
        _ => Ok(relayed),
    }
}
