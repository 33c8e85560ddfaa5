//! Operator records kept in PostgreSQL rather than in the stream, because they hold secrets or
//! counters that must never be replayed: API keys (hashed), operators (hashed keys), the member
//! token secret and token versions, the rate-limit buckets, the idempotency records, and the chat
//! instances' presence records (announcements, welcomes).

pub mod api_keys;
pub mod chat_presence;
pub mod idempotency;
pub mod member_auth;
pub mod operators;
pub mod rate_limit;
