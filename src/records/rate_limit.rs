//! Per-API-key rate limits (seeds/ivs-api.md: "API 請求頻率限制 100 次/分鐘, 每個 API Key 的限制";
//! DESIGN.md: each key has its own limit, default 100/min, in `api_keys.rate_limit_per_minute`).
//!
//! # Algorithm
//!
//! GCRA, the "generic cell rate algorithm" (a leaky bucket kept as one timestamp). With a limit of
//! `L` requests per minute the emission interval is `T = 60 s / L` and the burst is `L`: a fresh
//! key may make `L` requests at once, then one every `T`. Each key has a "theoretical arrival time"
//! `tat`; a request at `now` is allowed when `max(tat, now) + T <= now + 60 s`, and only an allowed
//! request moves `tat` to `max(tat, now) + T`. So `tat - now` is the part of the minute's budget in
//! use, `floor((60 s - (tat - now)) / T)` requests remain, and the whole burst is back at `tat`.
//! Since the window is always 60 s, a changed limit (`onair apikey set-limit`) applies smoothly to
//! the budget already used.
//!
//! # Shared state
//!
//! The limit holds across any number of instances: `tat` lives in Postgres (table
//! `api_key_rate_limits`, migrations/0002) and each counted request costs one atomic statement
//! ([`CHECK_SQL`]), timed by the database clock (`statement_timestamp()`), so instances with
//! skewed clocks still agree. The SQL is written here by hand: the `governor` crate implements GCRA
//! in memory only (one process), and no crate keeps GCRA state in Postgres.
//!
//! # HTTP
//!
//! [`crate::http::rate_limit::enforce`] is a poem middleware around the API routes (not `/docs` or `/openapi.*`). A request
//! whose `x-api-key` is a valid key (looked up through the key cache, so an unknown key is left to
//! the API-key auth, which answers 401) is counted against that key. Over the limit it is answered
//! 429 `TOO_MANY_REQUESTS` with `Retry-After` and never reaches the handler (nothing is published).
//! Every counted answer, 2xx and errors alike, carries the IETF draft headers
//! (draft-ietf-httpapi-ratelimit-headers):
//!
//! - `RateLimit-Limit`: the key's limit per minute (also the burst);
//! - `RateLimit-Remaining`: requests that may be made right now (0 on a 429);
//! - `RateLimit-Reset`: whole seconds (rounded up) until the **full** burst is available again,
//!   i.e. until `tat`. The wait for the *next* request is `Retry-After` on a 429 (whole seconds, at
//!   least 1); while `RateLimit-Remaining` is above 0 it is none.
//!
//! **Fail open**: when Postgres does not answer the check, the request goes through uncounted and
//! a warning is logged. A rate limit protects the service from a client; refusing every client
//! while the limiter's store is down would turn a database hiccup into a full outage, and a route
//! that needs Postgres fails on its own anyway.

use sqlx::PgPool;
use sqlx::postgres::types::PgInterval;
use time::OffsetDateTime;
use uuid::Uuid;

/// The window every limit is expressed in: one minute.
pub const WINDOW_MICROS: i64 = 60_000_000;

/// The GCRA check of one request, in one atomic statement. `$1` is the key's id, `$2` the emission
/// interval `T`, `$3` the window (60 s).
///
/// The upsert advances `tat` only when the request is allowed: a key's first request inserts
/// `now + T` (always allowed, `T` being at most 60 s); later ones update the row only when the
/// `WHERE` holds, so a refused request writes nothing. Postgres evaluates that `WHERE` on the latest
/// committed row after locking it, so concurrent requests from any number of instances are counted
/// one after the other. A refused request returns no row from the upsert; the second branch then
/// reads the row as it is, to tell the client when to come back.
pub const CHECK_SQL: &str = "\
WITH upsert AS (
    INSERT INTO api_key_rate_limits AS r (api_key_id, tat)
    VALUES ($1, statement_timestamp() + $2)
    ON CONFLICT (api_key_id) DO UPDATE
        SET tat = greatest(r.tat, statement_timestamp()) + $2
        WHERE greatest(r.tat, statement_timestamp()) + $2 <= statement_timestamp() + $3
    RETURNING r.tat
)
SELECT true AS allowed, tat, statement_timestamp() AS now FROM upsert
UNION ALL
SELECT false, tat, statement_timestamp() FROM api_key_rate_limits
WHERE api_key_id = $1 AND NOT EXISTS (SELECT 1 FROM upsert)";

/// Whether rate limits are enforced (`ONAIR_RATE_LIMITS`).
#[derive(Clone, Copy, Debug)]
pub struct RateLimiter {
    enabled: bool,
}

impl RateLimiter {
    /// A limiter; with `enabled` false every request goes through uncounted.
    pub fn new(enabled: bool) -> Self {
        Self { enabled }
    }

    /// Whether requests are counted and limited.
    pub fn enabled(&self) -> bool {
        self.enabled
    }
}

/// The outcome of one counted request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may go on; a refused one is answered 429 `TOO_MANY_REQUESTS`.
    pub allowed: bool,
    /// The key's limit per minute (`RateLimit-Limit`).
    pub limit: u32,
    /// Requests that may be made right now (`RateLimit-Remaining`).
    pub remaining: u32,
    /// Whole seconds until the full burst is available again (`RateLimit-Reset`).
    pub reset_secs: u64,
    /// Whole seconds, at least 1, until the next request is allowed (`Retry-After`); refused only.
    pub retry_after_secs: Option<u64>,
}

/// The emission interval of a limit, in microseconds: `60 s / limit`, rounded down so that `limit`
/// requests fit in the window.
pub fn emission_interval_micros(limit_per_minute: u32) -> i64 {
    (WINDOW_MICROS / i64::from(limit_per_minute.max(1))).max(1)
}

fn ceil_secs(micros: i64) -> u64 {
    (micros.max(0) as u64).div_ceil(1_000_000)
}

/// The decision from the statement's answer: whether the request was allowed and how far the key's
/// `tat` is ahead of the database's `now` (after the request when it was allowed).
pub fn decide(allowed: bool, limit_per_minute: u32, ahead_micros: i64) -> Decision {
    let interval = emission_interval_micros(limit_per_minute);
    let ahead = ahead_micros.clamp(0, WINDOW_MICROS);
    let reset_secs = ceil_secs(ahead);
    if allowed {
        let remaining = ((WINDOW_MICROS - ahead) / interval).clamp(0, i64::from(limit_per_minute));
        Decision {
            allowed,
            limit: limit_per_minute,
            remaining: remaining as u32,
            reset_secs,
            retry_after_secs: None,
        }
    } else {
        // Allowed again once max(tat, t) + T <= t + window, i.e. at t = tat + T - window.
        let wait = ahead + interval - WINDOW_MICROS;
        Decision {
            allowed,
            limit: limit_per_minute,
            remaining: 0,
            reset_secs,
            retry_after_secs: Some(ceil_secs(wait).max(1)),
        }
    }
}

/// Counts one request of key `api_key_id` against `limit_per_minute` (one statement).
pub async fn check(
    db: &PgPool,
    api_key_id: Uuid,
    limit_per_minute: i32,
) -> Result<Decision, sqlx::Error> {
    let limit = u32::try_from(limit_per_minute).unwrap_or(1).max(1);
    let row: Option<(bool, OffsetDateTime, OffsetDateTime)> = sqlx::query_as(CHECK_SQL)
        .bind(api_key_id)
        .bind(micros_interval(emission_interval_micros(limit)))
        .bind(micros_interval(WINDOW_MICROS))
        .fetch_optional(db)
        .await?;
    Ok(match row {
        Some((allowed, tat, now)) => {
            let ahead = i64::try_from((tat - now).whole_microseconds()).unwrap_or(i64::MAX);
            decide(allowed, limit, ahead)
        }
        // Refused, and the row was written by a concurrent request after this statement's
        // snapshot, so it cannot be read: assume the whole budget is in use.
        None => decide(false, limit, WINDOW_MICROS),
    })
}

fn micros_interval(microseconds: i64) -> PgInterval {
    PgInterval {
        months: 0,
        days: 0,
        microseconds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: i64 = 1_000_000;

    #[test]
    fn a_fresh_key_has_its_whole_burst() {
        // The first request of a limit-5 key: tat = now + 12 s.
        let d = decide(true, 5, 12 * SEC);
        assert_eq!(
            (d.remaining, d.reset_secs, d.retry_after_secs),
            (4, 12, None)
        );
        // The fifth at once: tat = now + 60 s.
        let d = decide(true, 5, 60 * SEC);
        assert_eq!((d.remaining, d.reset_secs), (0, 60));
    }

    #[test]
    fn a_refused_request_waits_for_one_interval_to_free_up() {
        // tat = now + 60 s: the next request fits once tat + 12 s <= t + 60 s, in 12 s.
        let d = decide(false, 5, 60 * SEC);
        assert_eq!(
            (d.allowed, d.remaining, d.reset_secs, d.retry_after_secs),
            (false, 0, 60, Some(12))
        );
        // Almost free again: still at least one second.
        let d = decide(false, 5, 48 * SEC + 1);
        assert_eq!(d.retry_after_secs, Some(1));
    }

    #[test]
    fn limits_that_do_not_divide_a_minute_still_allow_their_burst() {
        for limit in [1, 7, 99, 100, 1000, 100_000] {
            let t = emission_interval_micros(limit);
            assert!(i64::from(limit) * t <= WINDOW_MICROS, "limit {limit}");
            assert!(i64::from(limit + 1) * t > WINDOW_MICROS, "limit {limit}");
            assert_eq!(decide(true, limit, t).remaining, limit - 1, "limit {limit}");
            assert_eq!(decide(true, limit, i64::from(limit) * t).remaining, 0);
        }
    }
}
