//! `onair replay [--projection NAME | --all]`: rebuilds read models from the stream into fresh
//! tables and swaps them in while the server keeps serving (blue/green).
//!
//! 1. The chosen projections are rebuilt from sequence 1 into a scratch schema `onair_replay_*`
//!    (same projection code, notices discarded), with a progress bar.
//! 2. The swap is one transaction: it locks the projections' checkpoint rows (`FOR UPDATE`: the
//!    live projector's next batch waits), applies to the fresh tables whatever the live side got
//!    meanwhile, replaces each live table by its fresh twin, and sets the checkpoint to where the
//!    fresh tables stand, so the live projector goes on from there without applying anything
//!    twice. Readers wait for the swap's locks for a moment, then see the fresh tables.
//!
//! Interrupting it before the swap changes nothing; a later run drops the scratch schemas that an
//! interrupted one left. One replay runs at a time (a Postgres advisory lock); a second one is
//! refused while the first runs. The swapped-in tables keep the live tables' index and constraint
//! names, so later migrations that name them still apply.

use std::collections::BTreeMap;
use std::sync::Arc;

use sqlx::{Connection, PgConnection, PgPool};

use crate::event_store::EventStore;
use crate::ops::audit::{
    AuditReport, Rebuild, Selection, apply_on, create_scratch, fast_rebuild, read_range,
};
use crate::projections::{self, Projection};

/// What a replay did.
#[derive(Debug)]
pub struct ReplayReport {
    /// Names of the projections rebuilt and swapped in.
    pub projections: Vec<&'static str>,
    /// Events read from the stream: the rebuild plus the catch-up inside the swap (only those on
    /// the chosen projections' subjects).
    pub events: u64,
    /// The last stream sequence the rebuild covered (the stream's events 1 to it were gone
    /// through).
    pub through: u64,
    /// The checkpoint each swapped read model stands at.
    pub checkpoints: BTreeMap<&'static str, u64>,
}

/// The projections named (`None`: all); an unknown name is an error listing the known ones.
pub fn select(names: Option<&[String]>) -> anyhow::Result<Vec<Arc<dyn Projection>>> {
    let all = projections::all();
    let Some(names) = names else { return Ok(all) };
    names
        .iter()
        .map(|name| {
            all.iter()
                .find(|p| p.name() == name)
                .cloned()
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "unknown projection {name:?}; projections: {}",
                        all.iter().map(|p| p.name()).collect::<Vec<_>>().join(", ")
                    )
                })
        })
        .collect()
}

/// Key of the advisory lock held for the whole of a replay ("onair-replay" in ASCII, truncated).
const REPLAY_LOCK: i64 = 0x6f6e_6169_725f_7270;

/// Runs a replay of `chosen`.
///
/// Errors: another replay holds the lock; Postgres or NATS unreachable; an event a projection
/// cannot apply. Before the swap commits, an error leaves the live read models as they were.
pub async fn run(
    db: &PgPool,
    store: &EventStore,
    chosen: Vec<Arc<dyn Projection>>,
) -> anyhow::Result<ReplayReport> {
    // Held on its own connection until the end of the run (the lock goes with the session).
    let mut lock = PgConnection::connect_with(&db.connect_options()).await?;
    let (locked,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock($1)")
        .bind(REPLAY_LOCK)
        .fetch_one(&mut lock)
        .await?;
    anyhow::ensure!(
        locked,
        "another onair replay is running against this database; run again when it has finished"
    );
    let result = run_locked(db, store, chosen).await;
    let _ = lock.close().await;
    result
}

async fn run_locked(
    db: &PgPool,
    store: &EventStore,
    chosen: Vec<Arc<dyn Projection>>,
) -> anyhow::Result<ReplayReport> {
    // Scratch schemas of interrupted runs.
    let stale: Vec<(String,)> = sqlx::query_as(
        "SELECT schema_name::text FROM information_schema.schemata
         WHERE schema_name LIKE 'onair\\_replay\\_%'",
    )
    .fetch_all(db)
    .await?;
    for (schema,) in stale {
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .execute(db)
            .await?;
    }
    let schema = format!("onair_replay_{}", uuid::Uuid::new_v4().simple());
    let tables: Vec<&str> = chosen
        .iter()
        .flat_map(|p| p.tables().iter().copied())
        .collect();
    create_scratch(db, &schema, &tables).await?;
    let result = replay_into(db, store, &schema, chosen).await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE"
    )))
    .execute(db)
    .await?;
    result
}

async fn replay_into(
    db: &PgPool,
    store: &EventStore,
    schema: &str,
    chosen: Vec<Arc<dyn Projection>>,
) -> anyhow::Result<ReplayReport> {
    let mut conn = PgConnection::connect_with(&db.connect_options()).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SET search_path TO {schema}, public"
    )))
    .execute(&mut conn)
    .await?;
    fast_rebuild(&mut conn).await?;
    let mut rebuild = Rebuild {
        conn,
        projections: chosen,
        checkpoints: BTreeMap::new(),
    };
    let mut report = AuditReport::default();
    let last = store.stream().await?.info().await?.state.last_sequence;
    // Only the events the chosen projections apply are read (the stream filters them).
    let selection = Selection::of(&rebuild.projections, false);
    read_range(
        store,
        1,
        last,
        selection.clone(),
        &mut report,
        async |batch| {
            apply_on(
                &mut rebuild.conn,
                &rebuild.projections,
                &mut rebuild.checkpoints,
                batch,
            )
            .await
        },
    )
    .await?;
    let done = last;

    // The swap.
    let names: Vec<String> = rebuild
        .projections
        .iter()
        .map(|p| p.name().to_owned())
        .collect();
    let mut swap = PgConnection::connect_with(&db.connect_options()).await?;
    let mut tx = swap.begin().await?;
    let live: Vec<(String, i64)> = sqlx::query_as(
        "SELECT projection, last_sequence FROM public.projection_checkpoints
         WHERE projection = ANY($1) FOR UPDATE",
    )
    .bind(&names)
    .fetch_all(&mut *tx)
    .await?;
    let live_max = live.iter().map(|l| l.1 as u64).max().unwrap_or(0);
    if live_max > done {
        // Catch the fresh tables up with what the live side applied meanwhile, inside the swap.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SET LOCAL search_path TO {schema}, public"
        )))
        .execute(&mut *tx)
        .await?;
        read_range(
            store,
            done + 1,
            live_max,
            selection,
            &mut report,
            async |batch| {
                apply_on(
                    &mut tx,
                    &rebuild.projections,
                    &mut rebuild.checkpoints,
                    batch,
                )
                .await
            },
        )
        .await?;
        sqlx::query("SET LOCAL search_path TO public")
            .execute(&mut *tx)
            .await?;
    }
    for projection in &rebuild.projections {
        for table in projection.tables() {
            let live_indexes = indexes(&mut tx, "public", table).await?;
            let fresh_indexes = indexes(&mut tx, schema, table).await?;
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE public.{table}")))
                .execute(&mut *tx)
                .await?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "ALTER TABLE {schema}.{table} SET SCHEMA public"
            )))
            .execute(&mut *tx)
            .await?;
            // `LIKE … INCLUDING ALL` names the copies' indexes itself: give them the live names
            // back (renaming a constraint's index renames the constraint too).
            for (name, shape) in &fresh_indexes {
                let Some((live_name, _)) = live_indexes.iter().find(|(_, s)| s == shape) else {
                    continue;
                };
                if live_name != name {
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "ALTER INDEX public.{name} RENAME TO {live_name}"
                    )))
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        // Where the fresh tables stand: at least every event up to `done` the projection reads.
        let checkpoint = live
            .iter()
            .find(|l| l.0 == projection.name())
            .map_or(0, |l| l.1 as u64)
            .max(
                rebuild
                    .checkpoints
                    .get(projection.name())
                    .copied()
                    .unwrap_or(0),
            );
        sqlx::query(
            "INSERT INTO public.projection_checkpoints (projection, last_sequence) VALUES ($1, $2)
             ON CONFLICT (projection) DO UPDATE SET last_sequence = EXCLUDED.last_sequence,
                 updated_at = now()",
        )
        .bind(projection.name())
        .bind(checkpoint as i64)
        .execute(&mut *tx)
        .await?;
        rebuild.checkpoints.insert(projection.name(), checkpoint);
    }
    tx.commit().await?;
    Ok(ReplayReport {
        projections: rebuild.projections.iter().map(|p| p.name()).collect(),
        events: report.events,
        through: done.max(live_max),
        checkpoints: rebuild.checkpoints,
    })
}

/// The indexes of `schema.table` as (name, shape), the shape being the definition without the
/// index's name and table (`UNIQUE USING btree (stage_arn)`), so a copy's index matches its original.
async fn indexes(
    conn: &mut PgConnection,
    schema: &str,
    table: &str,
) -> anyhow::Result<Vec<(String, String)>> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT indexname::text, indexdef FROM pg_indexes
         WHERE schemaname = $1 AND tablename = $2 ORDER BY indexname",
    )
    .bind(schema)
    .bind(table)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(name, def)| {
            let unique = def.starts_with("CREATE UNIQUE INDEX");
            let using = def.find(" USING ").map_or(def.as_str(), |at| &def[at..]);
            (
                name,
                format!("{}{using}", if unique { "UNIQUE" } else { "" }),
            )
        })
        .collect())
}
