//! Leadership: what this instance does alone in a cluster, each part under a Postgres advisory lock
//! held on a dedicated connection (released when the connection or the process goes away). The
//! projectors take and fence their locks themselves (`projections/mod.rs`) and record here what
//! they apply ([`Leadership::lead`]); a reactor that must run on one instance at a time takes its
//! lock through [`Leadership::lead_by_lock`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use sqlx::{Connection, PgConnection, PgPool};

/// What this instance leads: the projections it applies now and the reactor locks it holds.
/// Shared by the runners, `/health` (`projections.<name>.leader`) and tests. Cheap to clone.
#[derive(Clone, Default)]
pub struct Leadership(Arc<Mutex<Led>>);

/// The parts led, behind [`Leadership`]'s lock.
#[derive(Default)]
struct Led {
    /// Projections applied here.
    projections: BTreeSet<&'static str>,
    /// Reactor locks held, each on its own connection.
    locks: BTreeMap<&'static str, PgConnection>,
}

impl std::fmt::Debug for Leadership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let led = self.0.lock().expect("leadership");
        f.debug_struct("Leadership")
            .field("projections", &led.projections)
            .field("locks", &led.locks.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Leadership {
    fn set(&self, projection: &'static str, leads: bool) {
        let mut led = self.0.lock().expect("leadership");
        if leads {
            led.projections.insert(projection);
        } else {
            led.projections.remove(projection);
        }
        metrics::gauge!("onair_projection_leader", "projection" => projection).set(if leads {
            1.0
        } else {
            0.0
        });
    }

    /// Marks `projection` as applied here until the guard is dropped (the runner stops leading,
    /// returns, or its task is aborted).
    pub(crate) fn lead(&self, projection: &'static str) -> Leading {
        self.set(projection, true);
        Leading {
            leadership: self.clone(),
            projection,
        }
    }

    /// Whether this instance applies `projection` now, or holds the reactor lock of that name.
    pub fn leads(&self, name: &str) -> bool {
        let led = self.0.lock().expect("leadership");
        led.projections.contains(name) || led.locks.contains_key(name)
    }

    /// The projections this instance applies now, by name.
    pub fn projections(&self) -> Vec<&'static str> {
        let led = self.0.lock().expect("leadership");
        led.projections.iter().copied().collect()
    }

    /// Whether this instance leads under `lock` (`onair.reactor.<name>`), taking the advisory lock
    /// on a dedicated connection when it is free.
    pub(crate) async fn lead_by_lock(&self, db: &PgPool, lock: &'static str) -> bool {
        if self.leads(lock) {
            return true;
        }
        let Ok(mut conn) = PgConnection::connect_with(&db.connect_options()).await else {
            return false;
        };
        let locked: Result<(bool,), _> =
            sqlx::query_as("SELECT pg_try_advisory_lock(hashtext($1)::bigint)")
                .bind(lock)
                .fetch_one(&mut conn)
                .await;
        if !matches!(locked, Ok((true,))) {
            return false;
        }
        self.0.lock().expect("leadership").locks.insert(lock, conn);
        true
    }

    /// Gives the lead under `lock` up after a failure (its connection may be gone too); the next
    /// [`lead_by_lock`](Self::lead_by_lock) takes the lock again if it can.
    pub(crate) async fn step_down(&self, lock: &'static str) {
        let conn = self.0.lock().expect("leadership").locks.remove(lock);
        if let Some(conn) = conn {
            let _ = conn.close().await;
        }
    }
}

/// See [`Leadership::lead`].
pub(crate) struct Leading {
    leadership: Leadership,
    projection: &'static str,
}

impl Drop for Leading {
    fn drop(&mut self) {
        self.leadership.set(self.projection, false);
    }
}
