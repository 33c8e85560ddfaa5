//! Projection checkpoints (`projection_checkpoints`): how far each read model has applied the
//! stream, as read-your-writes (`X-Min-Sequence`) asks.

use sqlx::PgPool;

/// Every projection's last applied stream sequence, as `(projection, last_sequence)`.
pub async fn all(db: &PgPool) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT projection, last_sequence FROM projection_checkpoints")
        .fetch_all(db)
        .await
}
