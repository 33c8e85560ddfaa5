//! The clock every command, chat verb and reactor reads "now" from (UTC).
//!
//! In production it is the system clock. Tests move it forward with [`Clock::advance`] instead
//! of sleeping through a mute, a token expiry or a scale-down age: the clock is the system time
//! plus an offset that only grows, so time never runs backwards for anyone holding it. Every
//! clone shares the offset. Projectors never read it (docs/design.md#flow-of-data: their time comes
//! from the events).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use time::OffsetDateTime;

/// A UTC wall clock that tests can move forward; cheap to clone, clones share their offset.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// Nanoseconds added to the system time (never negative).
    offset_nanos: Arc<AtomicI64>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self::default()
    }

    /// Now, in UTC.
    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
            + time::Duration::nanoseconds(self.offset_nanos.load(Ordering::Relaxed))
    }

    /// Now, in whole milliseconds since the Unix epoch (chat's `sentAt`, Primus pings).
    pub fn now_ms(&self) -> i64 {
        (self.now().unix_timestamp_nanos() / 1_000_000) as i64
    }

    /// Moves this clock and all its clones forward by `by` (tests: a timer runs out at once).
    pub fn advance(&self, by: Duration) {
        let nanos = i64::try_from(by.as_nanos()).unwrap_or(i64::MAX);
        self.offset_nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_advanced_clock_is_ahead_by_the_advance_and_its_clones_follow() {
        let clock = Clock::system();
        let clone = clock.clone();
        let before = OffsetDateTime::now_utc();
        clock.advance(Duration::from_secs(3600));
        let now = clone.now();
        assert!(now - before >= time::Duration::seconds(3600));
        assert!(now - before < time::Duration::seconds(3660));
    }

    #[test]
    fn the_system_clock_is_the_system_time() {
        let before = OffsetDateTime::now_utc();
        let now = Clock::system().now();
        assert!(now >= before && now - before < time::Duration::seconds(5));
        assert_eq!(
            Clock::system().now_ms() / 1000,
            OffsetDateTime::now_utc().unix_timestamp()
        );
    }
}
