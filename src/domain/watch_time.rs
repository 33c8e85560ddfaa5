//! Watch durations.

use time::OffsetDateTime;

/// Whole seconds from `from` to `to`, never negative.
pub fn seconds_between(from: OffsetDateTime, to: OffsetDateTime) -> u64 {
    (to - from).whole_seconds().max(0) as u64
}

/// Formats seconds the way the Stage API shows them: `1850` -> `30分 50秒`; hours are added when
/// there are any (`3725` -> `1時 2分 5秒`), minutes always shown (`5` -> `0分 5秒`).
pub fn format_watch_duration(seconds: u64) -> String {
    let (hours, minutes, secs) = (seconds / 3600, (seconds % 3600) / 60, seconds % 60);
    if hours > 0 {
        format!("{hours}時 {minutes}分 {secs}秒")
    } else {
        format!("{minutes}分 {secs}秒")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn formats_like_the_seed() {
        assert_eq!(format_watch_duration(1850), "30分 50秒");
        assert_eq!(format_watch_duration(5), "0分 5秒");
        assert_eq!(format_watch_duration(0), "0分 0秒");
        assert_eq!(format_watch_duration(3725), "1時 2分 5秒");
    }

    #[test]
    fn durations_are_whole_seconds_and_never_negative() {
        let a = datetime!(2025-10-19 12:00:00.900 UTC);
        let b = datetime!(2025-10-19 12:30:50.100 UTC);
        assert_eq!(seconds_between(a, b), 1849);
        assert_eq!(seconds_between(b, a), 0);
    }
}
