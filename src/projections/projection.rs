//! What a projection is: [`ReadModelProjection`], which each projection file implements with plain
//! `async fn`s, and the object-safe [`Projection`] the runner drives, which follows for every
//! implementor; and the [`Notices`] a projection derives.

use std::future::Future;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use sqlx::PgConnection;

use crate::event_store::NewEvent;
use crate::events::id::derived_event_id;
use crate::events::{Event, EventEnvelope};

/// One read model, as the runner drives it (object-safe: the runner holds `Arc<dyn Projection>`).
/// Every [`ReadModelProjection`] is one; implement that trait, not this one.
pub trait Projection: Send + Sync + 'static {
    /// Stable name: the checkpoint key and the consumer `projector-<name>`.
    fn name(&self) -> &'static str;
    /// The read-model tables it writes (and only it writes): what a replay swaps.
    fn tables(&self) -> &'static [&'static str];
    /// The subjects whose events it applies.
    fn subjects(&self) -> Vec<String>;
    /// Applies one event inside the batch's transaction. Must not read the clock.
    fn apply<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        event: &'a EventEnvelope,
    ) -> BoxFuture<'a, Result<(), sqlx::Error>>;
    /// Applies a batch in stream order, inside one transaction.
    fn apply_batch<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        events: &'a [EventEnvelope],
    ) -> BoxFuture<'a, Result<(), sqlx::Error>>;
    /// Chat-facing notices derived from the batch just applied (see [`Notices`]); the runner
    /// writes them into the outbox in the batch's transaction, for the outbox relay to publish.
    /// Most projections derive none.
    fn take_notices(&self) -> Vec<NewEvent>;
}

/// What each projection file implements: its name, tables and subjects, and how it applies
/// events (plain `async fn`s). The runner's [`Projection`] follows for every implementor.
pub trait ReadModelProjection: Send + Sync + 'static {
    /// Stable name: the checkpoint key and the consumer `projector-<name>`.
    const NAME: &'static str;
    /// The read-model tables it writes (and only it writes): what a replay swaps.
    const TABLES: &'static [&'static str];
    /// The subjects whose events it applies.
    fn subjects() -> Vec<String>;
    /// Applies one event inside the batch's transaction. Must not read the clock.
    fn apply(
        &self,
        tx: &mut PgConnection,
        event: &EventEnvelope,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;

    /// Applies a batch in stream order, inside one transaction. The default applies each event; a
    /// projection may override it to write several events in one statement, with the same result.
    fn apply_batch(
        &self,
        tx: &mut PgConnection,
        events: &[EventEnvelope],
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send {
        async move {
            for event in events {
                self.apply(tx, event).await?;
            }
            Ok(())
        }
    }

    /// The notices it derives while applying (see [`Notices`]); `None` for most projections.
    fn notices(&self) -> Option<&Notices> {
        None
    }
}

impl<P: ReadModelProjection> Projection for P {
    fn name(&self) -> &'static str {
        P::NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        P::TABLES
    }

    fn subjects(&self) -> Vec<String> {
        P::subjects()
    }

    fn apply<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        event: &'a EventEnvelope,
    ) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        ReadModelProjection::apply(self, tx, event).boxed()
    }

    fn apply_batch<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        events: &'a [EventEnvelope],
    ) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        ReadModelProjection::apply_batch(self, tx, events).boxed()
    }

    fn take_notices(&self) -> Vec<NewEvent> {
        self.notices().map(Notices::take).unwrap_or_default()
    }
}

/// Notices a projection derives while applying events (the seed's `gift`, `giftRank`, `follow`,
/// `streamStatus`, `sub`, `popularity` chat messages). Each gets an id derived from the fact it
/// comes from and its kind, and that fact's time, so applying the fact again (a batch applied
/// again after a crash) derives the same notice, which the outbox keeps once
/// (`event_outbox.event_id` is unique) and JetStream's duplicate window drops if it was already
/// published.
#[derive(Default)]
pub struct Notices(std::sync::Mutex<Vec<NewEvent>>);

impl Notices {
    /// Queues `event`, derived from `source`; `kind` tells the notices of one fact apart.
    pub fn push(&self, source: &EventEnvelope, kind: &str, event: Event) {
        let id = derived_event_id(&["notice", &source.id.to_string(), kind]);
        self.0
            .lock()
            .expect("notices lock")
            .push(NewEvent::new(source.occurred_at, event).with_id(id));
    }

    /// Everything queued since the last call.
    pub fn take(&self) -> Vec<NewEvent> {
        std::mem::take(&mut *self.0.lock().expect("notices lock"))
    }
}
