//! Followers of the stream and the watchdog that keeps them honest.
//!
//! A follower is a loop that applies the stream's events of some subjects to in-memory state (the
//! stage pool, the chat rules, the member sessions) or to a read model (a projector). Each one
//! registers here and reports every event it applies. Once a second the watchdog ([`watch`])
//! compares what each follower applied with the newest event the stream holds on its subjects:
//!
//! - a follower behind the stream is **lagging**: its lag in events (the consumer's pending count
//!   at its last delivery, at least 1) and in seconds (since it was first seen behind) are on
//!   `/health` and `/metrics` (`onair_follower_lag_events`, `onair_follower_lag_seconds`);
//! - a follower behind the stream that has applied nothing for [`STALL_AFTER`] is **stalled**: its
//!   consumer stopped delivering (a stream update, a leader change, a paused node, a reconnect the
//!   client did not notice). The watchdog tells it ([`FollowerProgress::stalled`]); the follower
//!   then drops its consumer and creates a new one from the last sequence it applied. A follower
//!   is found behind within one [`TICK`] of the event and stalled `STALL_AFTER` later, checked on
//!   the next tick: within 3 s of the first event it did not get.
//!
//! The newest event on a follower's subjects is read with one `STREAM.MSG.GET` (`last_by_subj`,
//! which takes wildcards) per filter, and only for a follower that has delivered nothing in the
//! last tick: a follower that is busy delivering costs the server nothing.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::EventStore;

/// How often the watchdog looks at every follower.
pub const TICK: Duration = Duration::from_secs(1);
/// How long a follower behind the stream may apply nothing before it is told it stalled.
pub const STALL_AFTER: Duration = Duration::from_millis(1500);
/// A follower lagging longer than this makes `/health` `degraded` (issue: "more than 5 s").
pub const DEGRADED_AFTER: Duration = Duration::from_secs(5);

/// The followers of one process; cheap to clone.
#[derive(Clone, Default)]
pub struct Followers {
    followers: Arc<Mutex<Vec<Arc<FollowerProgress>>>>,
}

/// One follower's progress, shared between the follower (which reports what it applies) and the
/// watchdog (which checks it against the stream).
pub struct FollowerProgress {
    name: String,
    filters: Vec<String>,
    state: Mutex<ProgressState>,
    stalled: Notify,
}

#[derive(Clone, Debug)]
struct ProgressState {
    /// Stream sequence of the last event applied (0: none yet).
    applied: u64,
    /// The consumer's pending count at the last delivery.
    pending: u64,
    /// When the follower last applied an event (or started).
    last_progress: Instant,
    /// Since when the follower has been behind the stream; `None` while caught up.
    behind_since: Option<Instant>,
    /// Stalls detected since the process started.
    stalls: u64,
}

/// What `/health` shows of one follower.
#[derive(Clone, Debug, PartialEq)]
pub struct FollowerStatus {
    /// e.g. `pool`, `pool-heartbeats`, `chat-rules`, `projector-viewers`.
    pub name: String,
    /// Stream sequence of the last event it applied (0: none yet).
    pub applied_sequence: u64,
    /// Events of its subjects stored but not applied yet (0 when caught up).
    pub lag_events: u64,
    /// Seconds it has been behind the stream (0 when caught up).
    pub lag_seconds: f64,
    /// Times the watchdog found it stalled and had it recreate its consumer.
    pub stalls: u64,
}

impl FollowerStatus {
    /// Whether it lags more than [`DEGRADED_AFTER`].
    pub fn degraded(&self) -> bool {
        self.lag_seconds > DEGRADED_AFTER.as_secs_f64()
    }
}

impl Followers {
    /// Registers a follower of the stream's `filters`; a follower registered again under the same
    /// name (a restarted task) gets the same progress back.
    pub fn register(&self, name: &str, filters: Vec<String>) -> Arc<FollowerProgress> {
        let mut followers = self.followers.lock().expect("followers lock");
        if let Some(existing) = followers.iter().find(|f| f.name == name) {
            return existing.clone();
        }
        let progress = Arc::new(FollowerProgress {
            name: name.to_owned(),
            filters,
            state: Mutex::new(ProgressState {
                applied: 0,
                pending: 0,
                last_progress: Instant::now(),
                behind_since: None,
                stalls: 0,
            }),
            stalled: Notify::new(),
        });
        followers.push(progress.clone());
        progress
    }

    /// Forgets a follower that stopped on purpose (a projector that no longer leads), so that it
    /// is not reported as lagging.
    pub fn deregister(&self, name: &str) {
        self.followers
            .lock()
            .expect("followers lock")
            .retain(|f| f.name != name);
    }

    /// Every follower's status, by registration order.
    pub fn statuses(&self) -> Vec<FollowerStatus> {
        let now = Instant::now();
        self.all().iter().map(|f| f.status(now)).collect()
    }

    fn all(&self) -> Vec<Arc<FollowerProgress>> {
        self.followers.lock().expect("followers lock").clone()
    }
}

impl FollowerProgress {
    /// The follower's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Reports one event applied: its stream sequence and the consumer's pending count at its
    /// delivery (the message metadata's `num_pending`).
    pub fn applied(&self, stream_sequence: u64, pending: u64) {
        let now = Instant::now();
        let mut state = self.state.lock().expect("progress lock");
        state.applied = state.applied.max(stream_sequence);
        state.pending = pending;
        state.last_progress = now;
        if pending == 0 {
            state.behind_since = None;
        } else {
            state.behind_since.get_or_insert(now);
        }
    }

    /// Reports that the follower (re)started from `sequence` (the last one it had applied): the
    /// stall clock starts again.
    pub fn started(&self, sequence: u64) {
        let mut state = self.state.lock().expect("progress lock");
        state.applied = state.applied.max(sequence);
        state.last_progress = Instant::now();
    }

    /// The last stream sequence reported applied.
    pub fn applied_sequence(&self) -> u64 {
        self.state.lock().expect("progress lock").applied
    }

    /// Resolves when the watchdog finds this follower stalled (a stall found while nobody waited
    /// is kept for the next call).
    pub async fn stalled(&self) {
        self.stalled.notified().await;
    }

    fn status(&self, now: Instant) -> FollowerStatus {
        let state = self.state.lock().expect("progress lock").clone();
        let lag_seconds = state
            .behind_since
            .map(|since| now.duration_since(since).as_secs_f64())
            .unwrap_or(0.0);
        FollowerStatus {
            name: self.name.clone(),
            applied_sequence: state.applied,
            lag_events: if state.behind_since.is_some() {
                state.pending.max(1)
            } else {
                0
            },
            lag_seconds,
            stalls: state.stalls,
        }
    }

    /// One watchdog look at this follower, given the newest sequence the stream holds on its
    /// subjects (`None`: not asked, because the follower delivered within the last tick).
    fn check(&self, newest: Option<u64>, now: Instant) -> Check {
        let mut state = self.state.lock().expect("progress lock");
        let Some(newest) = newest else {
            return Check::Fine;
        };
        if newest <= state.applied {
            state.behind_since = None;
            state.pending = 0;
            return Check::Fine;
        }
        let behind_since = *state.behind_since.get_or_insert(now);
        if now.duration_since(behind_since) >= STALL_AFTER
            && now.duration_since(state.last_progress) >= STALL_AFTER
        {
            state.stalls += 1;
            // The restart gets a full STALL_AFTER before it can be found stalled again.
            state.last_progress = now;
            return Check::Stalled {
                applied: state.applied,
                newest,
            };
        }
        Check::Fine
    }

    /// Whether the watchdog should ask the stream about this follower: it delivered nothing in the
    /// last tick, or the server said more was pending.
    fn needs_look(&self, now: Instant) -> bool {
        let state = self.state.lock().expect("progress lock");
        state.pending > 0 || now.duration_since(state.last_progress) >= TICK
    }
}

enum Check {
    Fine,
    Stalled { applied: u64, newest: u64 },
}

/// The watchdog: every [`TICK`], checks each follower of `followers` against the newest event on
/// its subjects in `store`'s stream, publishes the lag gauges, and tells a stalled follower to
/// recreate its consumer. Runs until the task is dropped.
pub async fn watch(followers: Followers, store: EventStore) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Ok(Ok(stream)) = tokio::time::timeout(TICK, store.stream()).await else {
            // NATS does not answer: the followers cannot be checked, and their own consumers
            // report the failure.
            continue;
        };
        record_stream_gauges(&stream);
        for follower in followers.all() {
            let now = Instant::now();
            let newest = if follower.needs_look(now) {
                match tokio::time::timeout(TICK, newest_on(&stream, &follower.filters)).await {
                    Ok(Ok(newest)) => Some(newest),
                    _ => None,
                }
            } else {
                None
            };
            if let Check::Stalled { applied, newest } = follower.check(newest, Instant::now()) {
                tracing::warn!(
                    follower = follower.name,
                    applied,
                    newest,
                    "follower stalled: its consumer delivers nothing while the stream moves on; recreating it"
                );
                metrics::counter!("onair_follower_stalls_total", "follower" => follower.name.clone())
                    .increment(1);
                follower.stalled.notify_one();
            }
            let status = follower.status(Instant::now());
            metrics::gauge!("onair_follower_lag_events", "follower" => status.name.clone())
                .set(status.lag_events as f64);
            metrics::gauge!("onair_follower_lag_seconds", "follower" => status.name.clone())
                .set(status.lag_seconds);
            metrics::gauge!("onair_follower_applied_sequence", "follower" => status.name)
                .set(status.applied_sequence as f64);
        }
    }
}

/// The stream's replication as gauges: `onair_stream_replicas` (configured), `_offline`,
/// `_lagging` (followers of the stream's RAFT group) and `onair_stream_leader_known` (0 while an
/// election runs).
fn record_stream_gauges(stream: &async_nats::jetstream::stream::Stream) {
    let info = stream.cached_info();
    metrics::gauge!("onair_stream_replicas").set(info.config.num_replicas as f64);
    let replicas = info
        .cluster
        .as_ref()
        .map(|c| c.replicas.as_slice())
        .unwrap_or_default();
    let offline = replicas.iter().filter(|p| p.offline).count();
    let lagging = replicas.iter().filter(|p| !p.offline && !p.current).count();
    metrics::gauge!("onair_stream_replicas_offline").set(offline as f64);
    metrics::gauge!("onair_stream_replicas_lagging").set(lagging as f64);
    let leader =
        info.config.num_replicas <= 1 || info.cluster.as_ref().is_some_and(|c| c.leader.is_some());
    metrics::gauge!("onair_stream_leader_known").set(if leader { 1.0 } else { 0.0 });
}

/// The stream sequence of the newest event on any of `filters` (0: none).
pub(super) async fn newest_on(
    stream: &async_nats::jetstream::stream::Stream,
    filters: &[String],
) -> anyhow::Result<u64> {
    use async_nats::jetstream::stream::LastRawMessageErrorKind;
    let mut newest = 0;
    for filter in filters {
        match stream.get_last_raw_message_by_subject(filter).await {
            Ok(message) => newest = newest.max(message.sequence),
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(newest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_follower_behind_the_stream_that_applies_nothing_then_it_is_found_stalled_once() {
        let followers = Followers::default();
        let f = followers.register("pool", vec!["onair.pool.>".into()]);
        f.applied(10, 0);
        let t0 = Instant::now() + STALL_AFTER;
        assert!(matches!(f.check(Some(10), t0), Check::Fine));
        assert!(
            matches!(f.check(Some(12), t0), Check::Fine),
            "just behind, though idle for long: the event may be on its way"
        );
        let later = t0 + STALL_AFTER + Duration::from_millis(10);
        assert!(matches!(
            f.check(Some(12), later),
            Check::Stalled {
                applied: 10,
                newest: 12
            }
        ));
        assert!(
            matches!(f.check(Some(12), later + TICK), Check::Fine),
            "the restart gets time"
        );
        let status = f.status(later);
        assert_eq!((status.lag_events, status.stalls), (1, 1));
        assert!(status.lag_seconds > 1.0);
    }

    #[test]
    fn given_a_busy_follower_applying_a_backlog_then_it_lags_but_is_not_stalled() {
        let followers = Followers::default();
        let f = followers.register("projector-viewers", vec!["onair.viewer.>".into()]);
        f.applied(100, 500);
        let status = f.status(Instant::now());
        assert_eq!(status.lag_events, 500);
        assert!(matches!(f.check(Some(600), Instant::now()), Check::Fine));
        f.applied(600, 0);
        assert_eq!(f.status(Instant::now()).lag_events, 0);
        assert_eq!(f.status(Instant::now()).lag_seconds, 0.0);
    }

    #[test]
    fn a_follower_registered_again_keeps_its_progress() {
        let followers = Followers::default();
        followers.register("chat-rules", vec![]).applied(7, 0);
        assert_eq!(
            followers.register("chat-rules", vec![]).applied_sequence(),
            7
        );
        assert_eq!(followers.statuses().len(), 1);
    }

    #[test]
    fn lagging_more_than_five_seconds_is_degraded() {
        let status = FollowerStatus {
            name: "pool".into(),
            applied_sequence: 1,
            lag_events: 3,
            lag_seconds: 5.5,
            stalls: 0,
        };
        assert!(status.degraded());
        assert!(
            !FollowerStatus {
                lag_seconds: 4.0,
                ..status
            }
            .degraded()
        );
    }
}
