//! Projectors: build Postgres read models from the stream (docs/design.md#flow-of-data).
//!
//! Each projection has a durable pull consumer `projector-<name>` and a row in
//! `projection_checkpoints`. A batch of events is applied in **one** transaction together with the new
//! checkpoint (the last stream sequence applied); the batch is acknowledged only after the commit.
//! Events at or below the checkpoint are skipped, so redelivery after a crash changes nothing twice.
//!
//! Only one instance applies a given projection at a time: the runner holds a Postgres advisory lock
//! (`pg_try_advisory_lock`) on a dedicated connection while it works; the other instances wait and
//! take over when that connection goes away. When the runner (re)starts it recreates the consumer at
//! `checkpoint + 1`, so delivery is strictly in stream order. Projectors never read the clock.
//!
//! A leader that loses its lock stops applying rather than apply alongside the next one: it checks
//! its lock connection every [`LOCK_CHECK_INTERVAL`] (a connection that does not answer within
//! [`LOCK_CHECK_TIMEOUT`] counts as lost, as after a Postgres restart or a killed backend) and
//! drops its consumer at once. Each batch is also fenced by a token: a runner that takes the lock
//! raises the projection's `leader_epoch` (in `projection_checkpoints`) before it reads its
//! checkpoint, and a batch commits only while the row, locked by the batch, still carries the
//! runner's epoch. A batch of a runner that lost its lock to another is refused and rolled back,
//! whether or not its lock check has noticed yet. A consumer that ends or is
//! deleted (a new leader recreates it) also stops the runner, which then contends for the lock
//! again.
//!
//! Projectors have no side effects outside their transaction: the chat notices a projection
//! derives (`gift`, `giftRank`, `follow`, `streamStatus`, `sub`, `popularity`) are written into the
//! transactional outbox in the batch's transaction, and the outbox relay, a reactor
//! (src/reactors/outbox_relay.rs), publishes them. A batch applied again (after a crash before its
//! checkpoint was kept) derives the same notice ids, which the outbox keeps once; a rebuild
//! (`onair replay`, `onair audit`) discards them, so no notice is published twice.

pub mod followers;
pub mod gifts;
mod projection;
pub mod publisher;
pub mod room_activity;
pub mod rooms;
mod seat_batch;
pub mod stages;
pub mod viewers;

pub use projection::{Notices, Projection, ReadModelProjection};

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use futures_util::{FutureExt, StreamExt};
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::watch;

use crate::event_store::{EventStore, outbox};
use crate::events::cloudevents;

/// The projections the server runs.
pub fn all() -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(stages::StagesProjection),
        Arc::new(viewers::ViewersProjection),
        Arc::new(publisher::PublisherProjection),
        Arc::new(rooms::RoomsProjection::default()),
        Arc::new(followers::FollowersProjection::default()),
        Arc::new(gifts::GiftsProjection::default()),
        Arc::new(room_activity::RoomActivityProjection),
    ]
}

/// The durable consumer's name for a projection.
pub fn consumer_name(projection: &str) -> String {
    format!("projector-{projection}")
}

/// Events a projection's consumer still has to apply (pending plus delivered but unacknowledged),
/// or `None` when the consumer cannot be asked (it does not exist, NATS is down).
pub async fn consumer_backlog(
    stream: &async_nats::jetstream::stream::Stream,
    projection: &str,
) -> Option<u64> {
    let mut consumer = tokio::time::timeout(
        Duration::from_secs(1),
        stream.get_consumer::<pull::Config>(&consumer_name(projection)),
    )
    .await
    .ok()?
    .ok()?;
    let info = consumer.info().await.ok()?;
    Some(info.num_pending + info.num_ack_pending as u64)
}

/// Reads a projection's checkpoint (0 when it has none).
pub async fn checkpoint(db: &PgPool, projection: &str) -> Result<u64, sqlx::Error> {
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT last_sequence FROM projection_checkpoints WHERE projection = $1")
            .bind(projection)
            .fetch_optional(db)
            .await?;
    Ok(row.map(|r| r.0 as u64).unwrap_or(0))
}

/// How long a projector waits with nothing to apply before its `onair_projection_lag_seconds`
/// reads 0: the gauge is the lag of the last batch applied (now minus the newest event's time, at
/// its commit) while events keep coming, and 0 once the projector has caught up and stayed idle.
pub const LAG_IDLE: Duration = Duration::from_secs(1);

/// A lingering batch stops gathering once it holds this many events.
const LINGER_ENOUGH: usize = 256;

/// How often a leader checks that its lock connection still answers.
pub const LOCK_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// How long a leader waits for its lock connection's answer before it takes the lock as lost.
pub const LOCK_CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// The projections this instance applies now (holds the lock of), among the rest it leads.
pub use crate::runtime::leadership::Leadership;

// The advisory-lock key of a projection is `hashtext('onair.projection.<name>')::bigint`.

/// The lock a leader holds: its dedicated connection and the fencing token it raised.
struct LeaderLock {
    connection: PgConnection,
    epoch: i64,
}

/// Runs one projection.
pub struct ProjectorRunner {
    db: PgPool,
    store: EventStore,
    projection: Arc<dyn Projection>,
    batch_size: usize,
    applied: watch::Sender<u64>,
    leadership: Leadership,
    linger: Duration,
}

impl ProjectorRunner {
    /// A runner of `projection` that applies up to 500 events per batch and transaction.
    pub fn new(db: PgPool, store: EventStore, projection: Arc<dyn Projection>) -> Self {
        Self {
            db,
            store,
            projection,
            batch_size: 500,
            applied: watch::Sender::new(0),
            leadership: Leadership::default(),
            linger: Duration::ZERO,
        }
    }

    /// Gathers a steady flow of events for up to `linger` before applying them as one batch
    /// (`ONAIR_PROJECTION_LINGER_MS`); zero (the default of [`new`](Self::new)): applies what has
    /// arrived at once.
    pub fn with_linger(mut self, linger: Duration) -> Self {
        self.linger = linger;
        self
    }

    /// Reports this runner's leadership into `leadership` (shared by the instance's runners).
    pub fn with_leadership(mut self, leadership: Leadership) -> Self {
        self.leadership = leadership;
        self
    }

    /// The last sequence this runner committed (0 until it commits a batch).
    pub fn applied(&self) -> watch::Receiver<u64> {
        self.applied.subscribe()
    }

    /// Runs until the task is dropped; restarts itself after errors.
    pub async fn run(self) {
        let name = self.projection.name();
        loop {
            if let Err(e) = self.run_as_leader().await {
                tracing::warn!(projection = name, error.cause_chain = ?e, "projector stopped; restarting");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    async fn run_as_leader(&self) -> anyhow::Result<()> {
        let name = self.projection.name();
        let mut connection = PgConnection::connect_with(&self.db.connect_options()).await?;
        loop {
            let (locked,): (bool,) = sqlx::query_as(
                "SELECT pg_try_advisory_lock(hashtext('onair.projection.' || $1)::bigint)",
            )
            .bind(name)
            .fetch_one(&mut connection)
            .await?;
            if locked {
                break;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        // The fencing token: raising it waits for a batch the previous leader may still be
        // committing (its transaction holds the row), and refuses every batch of that leader after.
        let (epoch,): (i64,) = sqlx::query_as(
            "INSERT INTO projection_checkpoints (projection, leader_epoch) VALUES ($1, 1)
             ON CONFLICT (projection) DO UPDATE
                 SET leader_epoch = projection_checkpoints.leader_epoch + 1
             RETURNING leader_epoch",
        )
        .bind(name)
        .fetch_one(&mut connection)
        .await?;
        let mut lock = LeaderLock { connection, epoch };
        tracing::info!(projection = name, "projector started as leader");
        let leading = self.leadership.lead(name);
        let result = tokio::select! {
            result = self.consume(lock.epoch) => result,
            lost = hold(&mut lock.connection) => Err(lost),
        };
        drop(leading);
        if let Err(e) = &result {
            tracing::warn!(projection = name, error = %e, "projector stopped leading");
        }
        // Closing the connection releases the lock.
        let _ = tokio::time::timeout(LOCK_CHECK_TIMEOUT, lock.connection.close()).await;
        result
    }

    async fn consume(&self, epoch: i64) -> anyhow::Result<()> {
        let name = self.projection.name();
        let start = checkpoint(&self.db, name).await?;
        self.applied.send_replace(start);

        let stream = self.store.stream().await?;
        let durable = consumer_name(name);
        // Recreate the consumer at the checkpoint: delivery restarts in stream order, whatever the
        // previous leader left unacknowledged.
        let _ = stream.delete_consumer(&durable).await;
        let consumer = stream
            .create_consumer(pull::Config {
                durable_name: Some(durable.clone()),
                description: Some(format!("onair projection {name}")),
                filter_subjects: self.projection.subjects(),
                deliver_policy: if start == 0 {
                    DeliverPolicy::All
                } else {
                    DeliverPolicy::ByStartSequence {
                        start_sequence: start + 1,
                    }
                },
                ack_policy: AckPolicy::All,
                ack_wait: Duration::from_secs(60),
                max_ack_pending: 20_000,
                // The checkpoint is kept in Postgres and the consumer is made anew at every
                // start, so its state is not replicated: one replica, in memory. On a 3-replica
                // stream that spares a quorum write per acknowledgement.
                num_replicas: 1,
                memory_storage: true,
                ..Default::default()
            })
            .await?;
        let mut messages = consumer
            .stream()
            .max_messages_per_batch(self.batch_size)
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await?;

        // Batches are applied on a connection of their own, so a busy pool (requests) never
        // delays them.
        let mut connection = PgConnection::connect_with(&self.db.connect_options()).await?;
        // The watchdog (event_store::followers) tells when the consumer stops delivering while
        // the stream moves on: this run then ends, and the next one recreates the consumer at
        // the checkpoint. Only a leader follows; the registration ends with its run.
        let follower = format!("projector-{name}");
        let progress = self
            .store
            .followers()
            .register(&follower, self.projection.subjects());
        let _registration = Deregister(&self.store, &follower);
        progress.started(start);
        // When the last batch was applied (none yet: the first batch does not linger).
        let mut previous_end: Option<std::time::Instant> = None;
        loop {
            let next = tokio::select! {
                next = tokio::time::timeout(LAG_IDLE, messages.next()) => match next {
                    Ok(next) => next,
                    Err(_) => {
                        // Nothing to apply: the read model is not behind.
                        metrics::gauge!("onair_projection_lag_seconds", "projection" => name).set(0.0);
                        tokio::select! {
                            next = messages.next() => next,
                            () = progress.stalled() => anyhow::bail!("consumer {durable} stalled"),
                        }
                    }
                },
                () = progress.stalled() => anyhow::bail!("consumer {durable} stalled"),
            };
            let Some(first) = next else {
                anyhow::bail!("consumer {durable} ended");
            };
            let mut batch = vec![first?];
            // Events keep coming (the previous batch ended within the linger): gather for up
            // to the linger before applying, so a steady flow is applied in fewer, larger
            // transactions. A lone event after a quiet spell is applied at once.
            let linger = previous_end
                .is_some_and(|end| end.elapsed() < self.linger)
                .then(|| tokio::time::Instant::now() + self.linger);
            while batch.len() < self.batch_size {
                match messages.next().now_or_never() {
                    Some(Some(message)) => batch.push(message?),
                    Some(None) => break,
                    None => {
                        let Some(until) = linger else { break };
                        if batch.len() >= LINGER_ENOUGH {
                            break;
                        }
                        match tokio::time::timeout_at(until, messages.next()).await {
                            Ok(Some(message)) => batch.push(message?),
                            Ok(None) | Err(_) => break,
                        }
                    }
                }
            }
            self.apply_batch(&mut connection, &batch, epoch).await?;
            previous_end = Some(std::time::Instant::now());
            if let Some(info) = batch.last().and_then(|m| m.info().ok()) {
                progress.applied(info.stream_sequence, info.pending);
            }
        }
    }

    async fn apply_batch(
        &self,
        connection: &mut PgConnection,
        batch: &[async_nats::jetstream::Message],
        epoch: i64,
    ) -> anyhow::Result<()> {
        let name = self.projection.name();
        let mut tx = connection.begin().await?;
        // The batch commits without waiting for the disk (`synchronous_commit` off for this
        // transaction): the checkpoint commits with the rows, and a runner starts again from the
        // checkpoint in Postgres, not from what it acknowledged, so a Postgres crash that loses
        // the last commits only makes the next leader apply those events again.
        // The row stays locked until the commit, so the epoch read here holds for the whole batch:
        // a new leader raises it only after this transaction ends.
        let (checkpoint, current_epoch, _): (i64, i64, String) = sqlx::query_as(
            "SELECT last_sequence, leader_epoch, set_config('synchronous_commit', 'off', true)
             FROM projection_checkpoints WHERE projection = $1 FOR UPDATE",
        )
        .bind(name)
        .fetch_one(&mut *tx)
        .await?;
        if current_epoch != epoch {
            anyhow::bail!(
                "the projection lock was taken over (epoch {current_epoch}, ours {epoch}); batch rolled back"
            );
        }
        let mut last = checkpoint as u64;
        let mut events = Vec::with_capacity(batch.len());
        for message in batch {
            let sequence = message
                .info()
                .map_err(|e| anyhow::anyhow!("message without metadata: {e}"))?
                .stream_sequence;
            if sequence <= last {
                continue;
            }
            match cloudevents::decode(message.headers.as_ref(), &message.payload, sequence) {
                Ok(envelope) => events.push(envelope),
                Err(e) => {
                    tracing::warn!(projection = name, sequence, error = %e, "event skipped")
                }
            }
            last = sequence;
        }
        // Notices left over from a batch that failed belong to a rolled-back transaction.
        let _ = self.projection.take_notices();
        self.projection.apply_batch(&mut tx, &events).await?;
        // The notices the batch derived are committed with it into the outbox; publishing them
        // is the outbox relay's (src/reactors/outbox_relay.rs), woken by the commit's NOTIFY.
        let notices = self.projection.take_notices();
        if !notices.is_empty() {
            let key = format!("notices.{name}");
            for notice in &notices {
                outbox::enqueue(&mut tx, &key, &self.store.encode(notice), None).await?;
            }
            outbox::notify(&mut tx, &key).await?;
        }
        // The row is still this batch's (locked above, its epoch checked).
        sqlx::query(
            "UPDATE projection_checkpoints SET last_sequence = $2, updated_at = now()
             WHERE projection = $1",
        )
        .bind(name)
        .bind(last as i64)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        if let Some(message) = batch.last() {
            message
                .ack()
                .await
                .map_err(|e| anyhow::anyhow!("ack failed: {e}"))?;
        }
        self.applied.send_replace(last);
        metrics::counter!("onair_projection_events_applied_total", "projection" => name)
            .increment(events.len() as u64);
        metrics::histogram!("onair_projection_batch_messages", "projection" => name)
            .record(batch.len() as f64);
        metrics::gauge!("onair_projection_checkpoint", "projection" => name).set(last as f64);
        if let Some(newest) = events.last() {
            let lag = time::OffsetDateTime::now_utc() - newest.occurred_at;
            metrics::gauge!("onair_projection_lag_seconds", "projection" => name)
                .set(lag.as_seconds_f64().max(0.0));
        }
        Ok(())
    }
}

/// Deregisters a projector's follower when its run as leader ends.
struct Deregister<'a>(&'a EventStore, &'a str);

impl Drop for Deregister<'_> {
    fn drop(&mut self) {
        self.0.followers().deregister(self.1);
    }
}

/// Checks the lock connection every [`LOCK_CHECK_INTERVAL`]; returns when it fails or does not
/// answer within [`LOCK_CHECK_TIMEOUT`] (the lock is then gone, or about to be).
async fn hold(connection: &mut PgConnection) -> anyhow::Error {
    loop {
        tokio::time::sleep(LOCK_CHECK_INTERVAL).await;
        match tokio::time::timeout(LOCK_CHECK_TIMEOUT, connection.ping()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return anyhow::anyhow!("the lock connection failed: {e}"),
            Err(_) => return anyhow::anyhow!("the lock connection did not answer"),
        }
    }
}
