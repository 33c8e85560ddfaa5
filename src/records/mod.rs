//! Operator records kept in PostgreSQL rather than in the stream, because they hold secrets or
//! counters that must never be replayed: API keys (hashed), operators (hashed keys), the member
//! token secret and token versions, and the rate-limit buckets.

pub mod api_keys;
pub mod member_auth;
pub mod operators;
pub mod rate_limit;
