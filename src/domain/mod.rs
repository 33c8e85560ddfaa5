//! Pure domain rules: no I/O, no clock, no tokio, sqlx, NATS or poem. Commands carry the time and
//! every other outside fact a decision needs.

pub mod chat;
pub mod gift;
pub mod gift_ranking;
pub mod idempotency;
pub mod member;
pub mod operator;
pub mod popularity;
pub mod room;
pub mod room_info;
pub mod stage_pool;
pub mod user_id;
pub mod watch_time;
