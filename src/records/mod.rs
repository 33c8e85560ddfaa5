//! Operator records kept in PostgreSQL rather than in the stream, because they hold secrets or
//! counters that must never be replayed: API keys (hashed), operators (hashed keys), the member
//! token secret and token versions, the rate-limit buckets, and the idempotency records.

pub mod api_keys;
pub mod idempotency;
pub mod member_auth;
pub mod operators;
pub mod rate_limit;
