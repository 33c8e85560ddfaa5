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
use crate::ops::audit::{AuditReport, Rebuild, apply_on, create_scratch, fast_rebuild};
use crate::ops::stream_range::{
    Batches, Progress, RangeReader, ReadFindings, Selection, read_range, subject_matches,
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
    let last = store.stream().await?.info().await?.state.last_sequence;
    let (groups, weight) = share_out(store, chosen, workers()).await?;
    let progress = Arc::new(Progress::new(last, groups.len()));
    // One reader fetches and decodes the range once and hands each event to the worker that
    // applies it; each worker writes its projections on a Postgres connection of its own, in a
    // task of its own. When the projections read at least half of the range, the stream sends
    // it all and the reader drops the rest (see `Selection::unfiltered`).
    let all: Vec<Arc<dyn Projection>> = groups.iter().flatten().cloned().collect();
    let mut selection = Selection::of(&all, false);
    if weight.saturating_mul(2) >= last {
        selection = selection.unfiltered();
    }
    let mut routes = Vec::with_capacity(groups.len());
    let mut first = 0;
    for group in &groups {
        routes.push(first..first + group.len() as u32);
        first += group.len() as u32;
    }
    let (reader, outputs) = match RangeReader::start_routed(store, 1, last, selection, routes) {
        Some((reader, outputs)) => (Some(reader), outputs.into_iter().map(Some).collect()),
        None => (None, groups.iter().map(|_| None).collect::<Vec<_>>()),
    };
    let mut tasks = Vec::new();
    for (slot, (group, batches)) in groups.into_iter().zip(outputs).enumerate() {
        let (db, schema, progress) = (db.clone(), schema.to_owned(), progress.clone());
        tasks.push(tokio::spawn(async move {
            rebuild_group(&db, &schema, group, batches, &progress, slot).await
        }));
    }
    let mut rebuild_projections = Vec::new();
    let mut checkpoints = BTreeMap::new();
    let mut report = AuditReport::default();
    let mut failed = None;
    for task in tasks {
        match task.await {
            Ok(Ok((projections, group_checkpoints))) => {
                rebuild_projections.extend(projections);
                checkpoints.extend(group_checkpoints);
            }
            Ok(Err(e)) => failed = failed.or(Some(e)),
            Err(e) => failed = failed.or(Some(anyhow::anyhow!("a replay worker failed: {e}"))),
        }
    }
    if let Some(reader) = reader {
        if let Some(e) = failed {
            reader.abort();
            return Err(e);
        }
        let mut found = ReadFindings::default();
        report.events = reader.finish(&mut found).await?;
    } else if let Some(e) = failed {
        return Err(e);
    }
    progress.finish();
    let conn = PgConnection::connect_with(&db.connect_options()).await?;
    let mut rebuild = Rebuild {
        conn,
        projections: rebuild_projections,
        checkpoints,
    };
    let selection = Selection::of(&rebuild.projections, false);
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
        let mut found = ReadFindings::default();
        read_range(
            store,
            done + 1,
            live_max,
            selection,
            &mut found,
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
        report.add(found);
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

/// Workers a replay runs at once: one per core (`ONAIR_REPLAY_WORKERS` overrides, at least 1).
fn workers() -> usize {
    std::env::var("ONAIR_REPLAY_WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1)
}

/// Shares `chosen` out among at most `workers` groups of about equal work, never splitting
/// projections that read the same subjects (the reader hands each event to one group only):
/// projections whose filters overlap form one part, each part weighs the events on its
/// subjects (the stream counts them for a consumer's filters), and the heaviest parts go first,
/// each to the lightest group so far. Also answers the events of all groups together.
async fn share_out(
    store: &EventStore,
    chosen: Vec<Arc<dyn Projection>>,
    workers: usize,
) -> anyhow::Result<(Vec<Vec<Arc<dyn Projection>>>, u64)> {
    let mut parts: Vec<Part> = Vec::new();
    for projection in chosen {
        let filters = projection.subjects();
        let (overlapping, mut rest): (Vec<_>, Vec<_>) = parts
            .into_iter()
            .partition(|(part, _)| filters_overlap(part, &filters));
        let mut merged = (filters, vec![projection]);
        for (part_filters, part_projections) in overlapping {
            merged.0.extend(part_filters);
            merged.1.extend(part_projections);
        }
        rest.push(merged);
        parts = rest;
    }
    let stream = store.stream().await?;
    let mut weighed = Vec::new();
    for (mut filters, projections) in parts {
        filters.sort();
        filters.dedup();
        let consumer = stream
            .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig {
                filter_subjects: filters,
                ..Default::default()
            })
            .await?;
        weighed.push((consumer.cached_info().num_pending, projections));
    }
    weighed.sort_by_key(|(weight, _)| std::cmp::Reverse(*weight));
    let mut groups: Vec<(u64, Vec<Arc<dyn Projection>>)> = Vec::new();
    for (weight, projections) in weighed {
        if groups.len() < workers {
            groups.push((weight, projections));
            continue;
        }
        let lightest = groups
            .iter_mut()
            .min_by_key(|(total, _)| *total)
            .expect("at least one group");
        lightest.0 += weight;
        lightest.1.extend(projections);
    }
    let weight = groups.iter().map(|(total, _)| total).sum();
    Ok((groups.into_iter().map(|(_, group)| group).collect(), weight))
}

/// Projections that read overlapping subjects, with all their filters.
type Part = (Vec<String>, Vec<Arc<dyn Projection>>);

/// Whether two sets of subject filters may select the same subject (one filter matches the
/// other as a subject, wildcards included).
fn filters_overlap(a: &[String], b: &[String]) -> bool {
    a.iter().any(|x| {
        b.iter()
            .any(|y| subject_matches(x, y) || subject_matches(y, x))
    })
}

/// Rebuilds `projections` into `schema` from the reader's `batches` (`None`: an empty stream)
/// on a connection of its own; returns them with their checkpoints.
async fn rebuild_group(
    db: &PgPool,
    schema: &str,
    projections: Vec<Arc<dyn Projection>>,
    batches: Option<Batches>,
    progress: &Progress,
    slot: usize,
) -> anyhow::Result<(Vec<Arc<dyn Projection>>, BTreeMap<&'static str, u64>)> {
    let mut conn = PgConnection::connect_with(&db.connect_options()).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SET search_path TO {schema}, public"
    )))
    .execute(&mut conn)
    .await?;
    fast_rebuild(&mut conn).await?;
    let mut checkpoints = BTreeMap::new();
    if let Some(mut batches) = batches {
        while let Some((batch, events_read)) = batches.recv().await {
            let at = batch.last().map_or(1, |m| m.sequence);
            apply_on(&mut conn, &projections, &mut checkpoints, batch).await?;
            progress.update(slot, at, events_read);
        }
    }
    Ok((projections, checkpoints))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projections_reading_the_same_subjects_stay_together() {
        let pool = vec!["onair.pool.default.*".to_owned()];
        let beats = vec![
            "onair.pool.default.*".to_owned(),
            "onair.viewer.*.heartbeat_recorded".to_owned(),
        ];
        let gifts = vec!["onair.gift.>".to_owned(), "onair.broadcast.>".to_owned()];
        let chat = vec!["onair.gift.>".to_owned(), "onair.chat.>".to_owned()];
        assert!(filters_overlap(&pool, &beats));
        assert!(filters_overlap(&gifts, &chat));
        assert!(!filters_overlap(&pool, &gifts));
        assert!(filters_overlap(&["onair.>".to_owned()], &pool));
    }
}
