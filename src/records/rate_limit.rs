//! Per-API-key rate limits (the Stage API description: "API 請求頻率限制 100 次/分鐘, 每個 API Key 的限制";
//! docs/api.md#rate-limits: each key has its own limit, default 100/min, in
//! `api_keys.rate_limit_per_minute`).
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
//! skewed clocks still agree. A key with a large limit is not charged per request but per slice:
//! [`RateLimiter::check`] leases a slice of its budget at once ([`lease`]) and spends it in memory,
//! within the bound documented on [`RateLimiter`]. The SQL is written here by hand: the `governor` crate implements GCRA
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

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
/// reads the row as it is, to tell the client when to come back. The `now` it answers with is
/// `clock_timestamp()`, read after the row lock: a request that waited for another one's lock
/// reports what remains after that one, so concurrent answers count down without repeats.
pub const CHECK_SQL: &str = "\
WITH upsert AS (
    INSERT INTO api_key_rate_limits AS r (api_key_id, tat)
    VALUES ($1, statement_timestamp() + $2)
    ON CONFLICT (api_key_id) DO UPDATE
        SET tat = greatest(r.tat, statement_timestamp()) + $2
        WHERE greatest(r.tat, statement_timestamp()) + $2 <= statement_timestamp() + $3
    RETURNING r.tat
)
SELECT true AS allowed, tat, clock_timestamp() AS now FROM upsert
UNION ALL
SELECT false, tat, clock_timestamp() FROM api_key_rate_limits
WHERE api_key_id = $1 AND NOT EXISTS (SELECT 1 FROM upsert)";

/// How an instance spends a key's budget: in slices leased from the shared bucket
/// (`ONAIR_RATE_LIMIT_SLICE_PERCENT`, `ONAIR_RATE_LIMIT_MAX_SLICE`, `ONAIR_RATE_LIMIT_LEASE_MS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseSettings {
    /// Share of a key's per-minute limit one lease takes, in percent; a slice is
    /// `limit × percent / 100` requests, at least 1 and at most [`Self::max_slice`]. A slice of 1
    /// asks Postgres on every request (exact, as [`check`]).
    pub slice_percent: u32,
    /// Most requests one lease takes.
    pub max_slice: u32,
    /// How long leased requests may be spent; those left unspent after it are dropped (they stay
    /// counted in the shared bucket).
    pub ttl: Duration,
}

impl Default for LeaseSettings {
    /// 1 % of the limit, at most 1,000 requests, spent within 1 s: a key of the default
    /// 100/min asks Postgres on every request.
    fn default() -> Self {
        Self {
            slice_percent: 1,
            max_slice: 1000,
            ttl: Duration::from_secs(1),
        }
    }
}

impl LeaseSettings {
    /// Requests one lease of a key with `limit_per_minute` takes: `limit × percent / 100`,
    /// clamped to `1..=max_slice`.
    pub fn slice(&self, limit_per_minute: u32) -> u32 {
        let slice = u64::from(limit_per_minute) * u64::from(self.slice_percent) / 100;
        slice.clamp(1, u64::from(self.max_slice.max(1))) as u32
    }
}

/// The per-key rate limiter of one instance (`ONAIR_RATE_LIMITS`), held in `AppState`.
///
/// Its hot path is in memory: the instance leases a slice of a key's budget from the shared
/// Postgres bucket ([`lease`]: the bucket's `tat` moves forward by the whole slice at once) and
/// spends it locally, one request at a time, asking Postgres again once the slice is spent or
/// [`LeaseSettings::ttl`] has passed.
///
/// # Bound across instances
///
/// A slice is counted in the shared bucket when it is leased, before its requests are made, so
/// instances together never spend more than the bucket granted. What differs from one bucket
/// charged per request: a slice leased just before a window may be spent inside it, so in any
/// 60 s window a key makes at most `instances × slice` requests more than the single bucket
/// would allow; and a request may be refused on one instance while another still holds unspent
/// requests (at most `instances × slice` of them, dropped after the TTL).
pub struct RateLimiter {
    enabled: bool,
    lease: LeaseSettings,
    keys: std::sync::Mutex<HashMap<Uuid, Arc<KeyLease>>>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("enabled", &self.enabled)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

/// One key's leased slice on this instance.
#[derive(Default)]
struct KeyLease {
    local: std::sync::Mutex<Local>,
    /// One lease at a time per key; the others wait and spend its slice.
    leasing: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Local {
    /// The limit the slice was leased under (a changed limit leases again).
    limit: u32,
    /// Requests of the slice not spent yet.
    tokens: u32,
    /// When the unspent requests are dropped.
    expires: Option<Instant>,
    /// The shared bucket's remaining requests right after the lease.
    shared_remaining: u32,
    /// When the shared bucket's full burst is back (its `tat`).
    reset_at: Option<Instant>,
    /// A refusal and until when it holds (no request fits before).
    refused_until: Option<(Instant, Decision)>,
}

impl Local {
    /// Spends one leased request, if one is left and still valid.
    fn spend(&mut self, limit: u32, now: Instant) -> Option<Decision> {
        if self.limit != limit {
            return None;
        }
        if let Some((until, decision)) = self.refused_until {
            if now < until {
                let wait = until.saturating_duration_since(now).as_micros() as i64;
                return Some(Decision {
                    retry_after_secs: Some(ceil_secs(wait).max(1)),
                    ..decision
                });
            }
            self.refused_until = None;
        }
        if self.tokens == 0 || self.expires.is_none_or(|e| now >= e) {
            return None;
        }
        self.tokens -= 1;
        let reset = self
            .reset_at
            .map_or(0, |r| r.saturating_duration_since(now).as_micros() as i64);
        Some(Decision {
            allowed: true,
            limit,
            remaining: self.shared_remaining.saturating_add(self.tokens).min(limit),
            reset_secs: ceil_secs(reset),
            retry_after_secs: None,
        })
    }
}

impl RateLimiter {
    /// A limiter with the default [`LeaseSettings`]; with `enabled` false every request goes
    /// through uncounted.
    pub fn new(enabled: bool) -> Self {
        Self::with_lease(enabled, LeaseSettings::default())
    }

    /// A limiter that leases slices as `lease` says.
    pub fn with_lease(enabled: bool, lease: LeaseSettings) -> Self {
        Self {
            enabled,
            lease,
            keys: Default::default(),
        }
    }

    /// Whether requests are counted and limited.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Counts one request of key `api_key_id` against `limit_per_minute`: from the key's leased
    /// slice when one is left (no I/O), else after leasing a new slice from the shared bucket.
    /// With a slice of 1 it is [`check`] (one statement per request).
    pub async fn check(
        &self,
        db: &PgPool,
        api_key_id: Uuid,
        limit_per_minute: i32,
    ) -> Result<Decision, sqlx::Error> {
        let limit = u32::try_from(limit_per_minute).unwrap_or(1).max(1);
        let slice = self.lease.slice(limit);
        if slice <= 1 {
            return Box::pin(check(db, api_key_id, limit_per_minute)).await;
        }
        let key = {
            let mut keys = self.keys.lock().expect("rate limit keys");
            keys.entry(api_key_id).or_default().clone()
        };
        let spend_local = || {
            key.local
                .lock()
                .expect("lease")
                .spend(limit, Instant::now())
        };
        if let Some(decision) = spend_local() {
            return Ok(decision);
        }
        let _leasing = key.leasing.lock().await;
        // Another request may have leased while this one waited.
        if let Some(decision) = spend_local() {
            return Ok(decision);
        }
        // Boxed, as the other database path above: the in-memory path is what every request
        // takes, and its future stays small.
        let leased = Box::pin(lease(db, api_key_id, limit, slice)).await?;
        let now = Instant::now();
        let mut local = key.local.lock().expect("lease");
        *local = Local {
            limit,
            ..Local::default()
        };
        if leased.granted == 0 {
            let decision = decide(false, limit, leased.ahead_micros);
            let wait = leased.ahead_micros + emission_interval_micros(limit) - WINDOW_MICROS;
            local.refused_until = Some((now + Duration::from_micros(wait.max(0) as u64), decision));
            return Ok(decision);
        }
        let after = decide(true, limit, leased.ahead_micros);
        local.tokens = leased.granted - 1;
        local.expires = Some(now + self.lease.ttl);
        local.shared_remaining = after.remaining;
        local.reset_at = Some(now + Duration::from_micros(leased.ahead_micros.max(0) as u64));
        Ok(Decision {
            remaining: after.remaining.saturating_add(local.tokens).min(limit),
            ..after
        })
    }
}

/// The outcome of one [`lease`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    /// Requests granted to the instance (0: the bucket is empty, the request is refused).
    pub granted: u32,
    /// How far the bucket's `tat` is ahead of the database's `now` after the lease, in µs.
    pub ahead_micros: i64,
}

/// Takes up to `slice` requests of key `api_key_id`'s budget at once from the shared bucket (one
/// transaction: the row is locked, `tat` moves forward by one emission interval per request
/// granted, as many as fit in the window).
pub async fn lease(
    db: &PgPool,
    api_key_id: Uuid,
    limit_per_minute: u32,
    slice: u32,
) -> Result<Lease, sqlx::Error> {
    let interval = emission_interval_micros(limit_per_minute);
    let mut tx = db.begin().await?;
    // Creates the row of a fresh key (full bucket) or locks the existing one, and reads it.
    let (tat, now): (OffsetDateTime, OffsetDateTime) = sqlx::query_as(
        "INSERT INTO api_key_rate_limits AS r (api_key_id, tat) VALUES ($1, statement_timestamp())
         ON CONFLICT (api_key_id) DO UPDATE SET tat = r.tat
         RETURNING r.tat, clock_timestamp()",
    )
    .bind(api_key_id)
    .fetch_one(&mut *tx)
    .await?;
    let ahead = i64::try_from((tat - now).whole_microseconds())
        .unwrap_or(i64::MAX)
        .max(0);
    let fits = ((WINDOW_MICROS - ahead) / interval).max(0);
    let granted = fits.min(i64::from(slice)) as u32;
    if granted == 0 {
        tx.commit().await?;
        return Ok(Lease {
            granted,
            ahead_micros: ahead,
        });
    }
    let ahead = ahead + i64::from(granted) * interval;
    sqlx::query("UPDATE api_key_rate_limits SET tat = $2 WHERE api_key_id = $1")
        .bind(api_key_id)
        .bind(now + time::Duration::microseconds(ahead))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Lease {
        granted,
        ahead_micros: ahead,
    })
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
    fn a_slice_is_a_share_of_the_limit_within_its_bounds() {
        let lease = LeaseSettings::default();
        assert_eq!(lease.slice(100), 1);
        assert_eq!(lease.slice(5), 1);
        assert_eq!(lease.slice(10_000), 100);
        assert_eq!(lease.slice(100_000_000), 1000);
        let none = LeaseSettings {
            slice_percent: 0,
            ..lease
        };
        assert_eq!(none.slice(100_000_000), 1);
    }

    #[test]
    fn a_leased_slice_is_spent_locally_until_empty_or_expired() {
        let now = Instant::now();
        let mut local = Local {
            limit: 100,
            tokens: 2,
            expires: Some(now + Duration::from_secs(1)),
            shared_remaining: 50,
            reset_at: Some(now + Duration::from_secs(30)),
            refused_until: None,
        };
        let d = local.spend(100, now).expect("a leased request");
        assert_eq!((d.allowed, d.remaining, d.reset_secs), (true, 51, 30));
        assert!(local.spend(100, now).is_some());
        assert_eq!(local.spend(100, now), None, "the slice is spent");
        local.tokens = 5;
        assert_eq!(local.spend(200, now), None, "a changed limit leases again");
        assert_eq!(
            local.spend(100, now + Duration::from_secs(2)),
            None,
            "expired"
        );
    }

    #[test]
    fn a_refusal_holds_until_a_request_fits_again() {
        let now = Instant::now();
        let refused = decide(false, 100, WINDOW_MICROS);
        let mut local = Local {
            limit: 100,
            refused_until: Some((now + Duration::from_millis(1500), refused)),
            ..Local::default()
        };
        let d = local.spend(100, now).expect("the refusal");
        assert_eq!((d.allowed, d.retry_after_secs), (false, Some(2)));
        assert_eq!(local.spend(100, now + Duration::from_secs(2)), None);
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
