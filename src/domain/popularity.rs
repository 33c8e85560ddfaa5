//! A room's popularity (the seed's `popularity` message, "頻道火熱度").
//!
//! # Formula
//!
//! Over a sliding window of [`WINDOW_SECONDS`] (5 minutes) of event time, ending at the moment of
//! computation:
//!
//! ```text
//! popularity = 10 × viewers + giftPoints + 2 × chatMessages
//! ```
//!
//! - `viewers`: verified members present in the room's chat at that moment (each once, however
//!   many sockets; guests are known to their own instance only and are not counted);
//! - `giftPoints`: the sum of `points × count` of the gifts the streamer received in the window;
//! - `chatMessages`: chat messages posted in the room in the window.
//!
//! A present viewer is worth ten points (one small gift), a message two: presence and spending
//! weigh most, chatter breaks ties between rooms of the same size. Gifts and messages leave the
//! window after five minutes, so a room that goes quiet cools down.
//!
//! The inputs come from events bucketed by their `occurred_at` in [`BUCKET_SECONDS`] buckets, and
//! the value is itself published as an event (`onair.popularity.changed.v1`) carrying the inputs,
//! so a replay gives the same values without reading the clock.

/// Length of the sliding window, in seconds.
pub const WINDOW_SECONDS: i64 = 300;

/// Width of one activity bucket, in seconds. The window covers the `WINDOW_SECONDS /
/// BUCKET_SECONDS` buckets that end with the current one.
pub const BUCKET_SECONDS: i64 = 10;

/// Points per viewer present.
pub const VIEWER_WEIGHT: u64 = 10;

/// Points per chat message in the window.
pub const CHAT_MESSAGE_WEIGHT: u64 = 2;

/// What the popularity of a room is computed from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PopularityInputs {
    /// Viewers present in the room's chat when computed: verified members, each once.
    pub viewers: u64,
    /// Sum of `points × count` of the gifts in the window.
    pub gift_points: u64,
    /// Chat messages posted in the room in the window.
    pub chat_messages: u64,
}

/// The formula of the module docs; saturates instead of overflowing.
pub fn popularity(inputs: PopularityInputs) -> u64 {
    VIEWER_WEIGHT
        .saturating_mul(inputs.viewers)
        .saturating_add(inputs.gift_points)
        .saturating_add(CHAT_MESSAGE_WEIGHT.saturating_mul(inputs.chat_messages))
}

/// The start (Unix seconds) of the bucket holding `unix_seconds`.
pub fn bucket_start(unix_seconds: i64) -> i64 {
    unix_seconds.div_euclid(BUCKET_SECONDS) * BUCKET_SECONDS
}

/// The first bucket start inside the window that ends at `now_unix_seconds`.
pub fn window_start(now_unix_seconds: i64) -> i64 {
    bucket_start(now_unix_seconds) - WINDOW_SECONDS + BUCKET_SECONDS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viewers_gifts_and_chat_weigh_as_documented() {
        let value = popularity(PopularityInputs {
            viewers: 3,
            gift_points: 250,
            chat_messages: 7,
        });
        assert_eq!(value, 30 + 250 + 14);
        assert_eq!(popularity(PopularityInputs::default()), 0);
    }

    #[test]
    fn huge_inputs_saturate() {
        let value = popularity(PopularityInputs {
            viewers: u64::MAX,
            gift_points: u64::MAX,
            chat_messages: 1,
        });
        assert_eq!(value, u64::MAX);
    }

    #[test]
    fn the_window_is_thirty_buckets_ending_with_the_current_one() {
        assert_eq!(bucket_start(1_000_009), 1_000_000);
        assert_eq!(bucket_start(-1), -10);
        let now = 1_000_009;
        let start = window_start(now);
        assert_eq!(start, 1_000_000 - 290);
        assert_eq!((bucket_start(now) - start) / BUCKET_SECONDS + 1, 30);
    }
}
