//! Pure domain rules: no I/O, no clock, no tokio, sqlx, NATS or poem. Commands carry the time and
//! every other outside fact a decision needs.

pub mod chat;
pub mod gift_ranking;
pub mod member;
pub mod operator;
pub mod popularity;
pub mod room;
pub mod stage_pool;
pub mod user_id;
pub mod watch_time;
