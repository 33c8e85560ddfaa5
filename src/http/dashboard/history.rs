//! Viewers over the last hour for the dashboard's line chart: a ring of one sample per
//! [`SLOT_SECONDS`] slot (360 slots: an hour), fed by this instance's stats feed (the `/ws`
//! figures, recomputed every `ONAIR_STATS_PUSH_INTERVAL_MS`). The current slot's sample is
//! replaced by each newer figure, so the chart's last point moves with every update. The ring is
//! kept in memory from the moment the instance serves: a restarted instance starts a new hour.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::watch;

use crate::read_models::stats_feed::StatsSnapshot;

/// Seconds per sample.
pub const SLOT_SECONDS: i64 = 10;
/// Samples kept: an hour.
pub const SLOTS: usize = 360;

/// The ring; cheap to clone (shared).
#[derive(Clone, Default)]
pub struct ViewerHistory {
    samples: Arc<Mutex<VecDeque<(i64, u32)>>>,
}

impl ViewerHistory {
    /// Records `viewers` at `at_unix` (seconds): replaces the sample of the same slot, else
    /// appends one and drops those older than an hour.
    pub fn record(&self, at_unix: i64, viewers: u32) {
        let slot = at_unix.div_euclid(SLOT_SECONDS) * SLOT_SECONDS;
        let mut samples = self.samples.lock().expect("history lock");
        match samples.back_mut() {
            Some(last) if last.0 == slot => last.1 = viewers,
            Some(last) if last.0 > slot => {}
            _ => samples.push_back((slot, viewers)),
        }
        while samples
            .front()
            .is_some_and(|(t, _)| *t <= slot - SLOT_SECONDS * SLOTS as i64)
        {
            samples.pop_front();
        }
    }

    /// The samples, oldest first: `(slot start in unix seconds, viewers)`.
    pub fn samples(&self) -> Vec<(i64, u32)> {
        self.samples
            .lock()
            .expect("history lock")
            .iter()
            .copied()
            .collect()
    }

    /// Starts recording every figure of `feed`; the task ends when the feed does (the instance
    /// stops).
    pub fn follow(&self, mut feed: watch::Receiver<Option<StatsSnapshot>>) {
        let history = self.clone();
        tokio::spawn(async move {
            loop {
                if let Some(snapshot) = feed.borrow_and_update().clone()
                    && let Ok(at) = OffsetDateTime::parse(&snapshot.timestamp, &Rfc3339)
                {
                    history.record(at.unix_timestamp(), snapshot.viewer_count);
                }
                if feed.changed().await.is_err() {
                    return;
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sample_per_slot_the_latest_wins_and_an_hour_is_kept() {
        let history = ViewerHistory::default();
        history.record(1000, 1);
        history.record(1005, 3);
        assert_eq!(history.samples(), vec![(1000, 3)]);
        history.record(1010, 4);
        history.record(1001, 9); // older than the last slot: ignored
        assert_eq!(history.samples(), vec![(1000, 3), (1010, 4)]);
        history.record(1000 + 3600, 7);
        assert_eq!(history.samples(), vec![(1010, 4), (4600, 7)]);
    }
}
