//! What `GET /health` asks Postgres.

use std::time::Duration;

use sqlx::PgPool;

/// Whether Postgres answers a trivial query within `within` (`postgres` of `/health`).
pub async fn postgres_answers(db: &PgPool, within: Duration) -> bool {
    tokio::time::timeout(within, sqlx::query("SELECT 1").execute(db))
        .await
        .is_ok_and(|r| r.is_ok())
}
