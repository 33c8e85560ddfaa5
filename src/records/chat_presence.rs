//! Chat presence records: the chat instances that announce they are alive (`chat_instances`) and
//! when a member's `welcome` was last shown in a room (`chat_welcomes`). Both are written by the
//! chat instances themselves, not by a projector: they say what this deployment's instances did,
//! not what happened in the stream, so they are records (never rebuilt from the stream). Their
//! reads, with the presence read model, are in [`crate::read_models::presence`].
//!
//! Times are Postgres' `now()`, so instances whose clocks differ agree on who is silent.

use std::time::Duration;

use sqlx::PgPool;

/// Records that the chat instance `instance_id` is alive now (`chat_instances.last_seen`, in
/// Postgres time, so instances whose clocks differ agree on who is silent).
pub async fn announce_instance(db: &PgPool, instance_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO chat_instances (instance_id, last_seen) VALUES ($1, now())
         ON CONFLICT (instance_id) DO UPDATE SET last_seen = now()",
    )
    .bind(instance_id)
    .execute(db)
    .await?;
    Ok(())
}

/// Claims the `welcome` of `member` in `room`: `true` (and the time is recorded) when none was
/// shown there within the last `window`, on any instance; `false` otherwise.
pub async fn claim_welcome(
    db: &PgPool,
    room: &str,
    member: &str,
    window: Duration,
) -> Result<bool, sqlx::Error> {
    sqlx::query(
        "INSERT INTO chat_welcomes (room, member_id, shown_at) VALUES ($1, $2, now())
         ON CONFLICT (room, member_id) DO UPDATE SET shown_at = now()
         WHERE chat_welcomes.shown_at < now() - make_interval(secs => $3)",
    )
    .bind(room)
    .bind(member)
    .bind(window.as_secs_f64())
    .execute(db)
    .await
    .map(|r| r.rows_affected() > 0)
}

/// Forgets the instances silent for a day; returns how many.
pub async fn forget_silent_instances(db: &PgPool) -> Result<u64, sqlx::Error> {
    sqlx::query("DELETE FROM chat_instances WHERE last_seen < now() - interval '1 day'")
        .execute(db)
        .await
        .map(|r| r.rows_affected())
}
