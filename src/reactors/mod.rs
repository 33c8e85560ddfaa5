//! Reactors: side effects driven by events or time, kept apart from projectors
//! (docs/design.md#flow-of-data).

pub mod expiry;
pub mod outbox_relay;
pub mod popularity;
pub mod presence;
pub mod reconciler;
pub mod scale_down;

/// Leadership of a reactor that must run on one instance at a time: a Postgres advisory lock held
/// on a dedicated connection (released when the connection or the process goes away).
pub(crate) struct Leadership {
    lock: &'static str,
    conn: Option<sqlx::PgConnection>,
}

impl Leadership {
    /// `lock` names the advisory lock (`onair.reactor.<name>`).
    pub(crate) fn new(lock: &'static str) -> Self {
        Self { lock, conn: None }
    }

    /// Whether this instance leads, taking the lock when it is free.
    pub(crate) async fn lead(&mut self, db: &sqlx::PgPool) -> bool {
        use sqlx::Connection;
        if self.conn.is_none() {
            let Ok(mut conn) = sqlx::PgConnection::connect_with(&db.connect_options()).await else {
                return false;
            };
            let locked: Result<(bool,), _> =
                sqlx::query_as("SELECT pg_try_advisory_lock(hashtext($1)::bigint)")
                    .bind(self.lock)
                    .fetch_one(&mut conn)
                    .await;
            if matches!(locked, Ok((true,))) {
                self.conn = Some(conn);
            }
        }
        self.conn.is_some()
    }

    /// Gives the lead up after a failure (its connection may be gone too); the next
    /// [`lead`](Self::lead) takes the lock again if it can.
    pub(crate) async fn step_down(&mut self) {
        use sqlx::Connection;
        if let Some(conn) = self.conn.take() {
            let _ = conn.close().await;
        }
    }
}
