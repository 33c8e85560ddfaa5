//! `onair audit`: rebuilds every read model from sequence 1 into a scratch schema and compares it
//! with the live read models row by row (docs/design.md#invariants, 3: a rebuild gives exactly the
//! rows the live projectors built). Also reports gaps in the stream's sequences and events that no
//! projector understands (unknown types, unreadable payloads).
//!
//! The scratch tables are made `LIKE` the live ones and filled by the same projection code on a
//! connection whose `search_path` is the scratch schema, with their chat notices discarded. The
//! comparison runs when each live projection's checkpoint equals the rebuild's (the live side is
//! read in one snapshot); a live system that keeps moving is compared at a point both reached.

use std::collections::BTreeMap;
use std::time::Duration;

use sqlx::{Connection, PgConnection, PgPool};

use crate::event_store::EventStore;
use crate::events::EventEnvelope;
use crate::ops::stream_range::{ReadFindings, Selection, StreamMessage, read_range};
use crate::projections::{self, Projection};

/// Every read-model table, in the order they are compared.
pub const READ_MODEL_TABLES: &[&str] = &[
    "rm_stages",
    "rm_viewer_seats",
    "rm_watch_time",
    "rm_publisher_status",
    "rm_rooms",
    "rm_followers",
    "rm_gift_records",
    "rm_gift_rankings",
    "rm_gift_ranking_counters",
    "rm_room_activity",
    "rm_room_presence",
];

/// Rows that differ in one table.
#[derive(Debug, Default)]
pub struct TableDifference {
    /// The read-model table, e.g. `rm_stages`.
    pub table: String,
    /// Rows the live table has and the rebuild does not (JSON), at most 20.
    pub only_live: Vec<String>,
    /// Rows the rebuild has and the live table does not, at most 20.
    pub only_rebuilt: Vec<String>,
    /// Rows found on one side only, both sides together (a changed row counts twice).
    pub count: u64,
}

/// What an audit found.
#[derive(Debug, Default)]
pub struct AuditReport {
    /// Events read from the stream, up to the sequence the comparison was made at.
    pub events: u64,
    /// Tables whose live and rebuilt rows differ; empty when every table matches.
    pub differences: Vec<TableDifference>,
    /// Missing sequence ranges `(first, last)`.
    pub gaps: Vec<(u64, u64)>,
    /// `(sequence, type or reason)` of events no projector could read.
    pub unknown: Vec<(u64, String)>,
}

impl AuditReport {
    /// Adds what a reader found: its events, gaps and unreadable events.
    pub(crate) fn add(&mut self, found: ReadFindings) {
        self.events += found.events;
        self.gaps.extend(found.gaps);
        self.unknown.extend(found.unknown);
    }

    /// No differences, gaps or unreadable events: `onair audit` exits 0.
    pub fn is_clean(&self) -> bool {
        self.differences.is_empty() && self.gaps.is_empty() && self.unknown.is_empty()
    }
}

/// Projections applied into a scratch schema (audit, replay): their notices are discarded.
pub(crate) struct Rebuild {
    pub(crate) conn: PgConnection,
    pub(crate) projections: Vec<std::sync::Arc<dyn Projection>>,
    /// The last sequence applied, per projection.
    pub(crate) checkpoints: BTreeMap<&'static str, u64>,
}

impl Rebuild {
    async fn apply(&mut self, batch: Vec<StreamMessage>) -> anyhow::Result<()> {
        apply_on(
            &mut self.conn,
            &self.projections,
            &mut self.checkpoints,
            batch,
        )
        .await
    }
}

/// Applies a batch of `(subject, event)` to each projection whose subjects match (the reader
/// marked which: [`StreamMessage::projections`], in the order of `projections`), in one
/// transaction for the whole batch, on `conn` and its `search_path`. Each event is moved to the
/// last projection that reads it and cloned only for the others.
pub(crate) async fn apply_on(
    conn: &mut PgConnection,
    projections: &[std::sync::Arc<dyn Projection>],
    checkpoints: &mut BTreeMap<&'static str, u64>,
    batch: Vec<StreamMessage>,
) -> anyhow::Result<()> {
    let mut events: Vec<Vec<EventEnvelope>> = vec![Vec::new(); projections.len()];
    // Like the live projector, the checkpoint passes unreadable events too.
    let mut last: Vec<Option<u64>> = vec![None; projections.len()];
    for message in batch {
        let mut mask = message.projections;
        while mask != 0 {
            let at = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            let Some(reached) = last.get_mut(at) else {
                break;
            };
            *reached = Some(message.sequence);
            match &message.event {
                Some(event) if mask != 0 => events[at].push(event.clone()),
                _ => {}
            }
            if mask == 0
                && let Some(event) = message.event
            {
                events[at].push(event);
                break;
            }
        }
    }
    // One transaction for the whole batch, every projection: a rebuild commits once per batch.
    let mut tx = conn.begin().await?;
    let mut reached = Vec::with_capacity(projections.len());
    for ((projection, events), last) in projections.iter().zip(events).zip(last) {
        let Some(last) = last else { continue };
        if !events.is_empty() {
            projection.apply_batch(&mut tx, &events).await?;
            let _ = projection.take_notices();
        }
        reached.push((projection.name(), last));
    }
    tx.commit().await?;
    checkpoints.extend(reached);
    Ok(())
}

/// Settings of a rebuild's connection: its writes go to scratch tables that an interrupted run
/// drops, so it does not wait for each commit to reach the disk (`synchronous_commit = off`; a
/// replay's swap commits durably and flushes everything before it).
pub(crate) async fn fast_rebuild(conn: &mut PgConnection) -> anyhow::Result<()> {
    sqlx::query("SET synchronous_commit TO off")
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Creates `schema` with an empty copy (`LIKE ... INCLUDING ALL`) of each table.
pub(crate) async fn create_scratch(
    db: &PgPool,
    schema: &str,
    tables: &[&str],
) -> anyhow::Result<()> {
    let mut setup = db.acquire().await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut *setup)
        .await?;
    for table in tables {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE TABLE {schema}.{table} (LIKE public.{table} INCLUDING ALL)"
        )))
        .execute(&mut *setup)
        .await?;
    }
    Ok(())
}

/// Runs an audit; the scratch schema is dropped at the end unless `keep_schema`.
pub async fn run(
    db: &PgPool,
    store: &EventStore,
    keep_schema: bool,
) -> anyhow::Result<AuditReport> {
    let schema = format!("onair_audit_{}", uuid::Uuid::new_v4().simple());
    let mut tables = READ_MODEL_TABLES.to_vec();
    tables.push("projection_checkpoints");
    create_scratch(db, &schema, &tables).await?;
    let result = audit_into(db, store, &schema).await;
    if !keep_schema {
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .execute(db)
            .await?;
    } else {
        eprintln!("the rebuilt read models are kept in schema {schema}");
    }
    result
}

async fn audit_into(db: &PgPool, store: &EventStore, schema: &str) -> anyhow::Result<AuditReport> {
    let mut conn = PgConnection::connect_with(&db.connect_options()).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("SET search_path TO {schema}")))
        .execute(&mut conn)
        .await?;
    fast_rebuild(&mut conn).await?;
    let mut rebuild = Rebuild {
        conn,
        projections: projections::all(),
        checkpoints: BTreeMap::new(),
    };
    let mut report = AuditReport::default();
    let mut stream = store.stream().await?;
    let first = stream.info().await?.state.first_sequence;
    if first > 1 {
        report.gaps.push((1, first - 1));
    }
    // Reading starts at the first sequence the stream holds; the hole before it is reported
    // once, here (an empty stream is not waited for).
    let mut done = first.saturating_sub(1);
    let mut target = stream.info().await?.state.last_sequence;

    for _attempt in 0..20 {
        let mut found = ReadFindings::default();
        read_range(
            store,
            done + 1,
            target,
            Selection::of(&rebuild.projections, true),
            &mut found,
            async |batch| rebuild.apply(batch).await,
        )
        .await?;
        report.add(found);
        done = done.max(target);
        // The live side, in one snapshot: compare when every live checkpoint is where the rebuild
        // stands for that projection (no newer event applied live), else catch up and retry.
        let mut live = db.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            .execute(&mut *live)
            .await?;
        let checkpoints: Vec<(String, i64)> =
            sqlx::query_as("SELECT projection, last_sequence FROM projection_checkpoints")
                .fetch_all(&mut *live)
                .await?;
        let live_max = checkpoints.iter().map(|c| c.1 as u64).max().unwrap_or(0);
        let settled = rebuild.projections.iter().all(|p| {
            let live = checkpoints
                .iter()
                .find(|c| c.0 == p.name())
                .map_or(0, |c| c.1 as u64);
            live == rebuild.checkpoints.get(p.name()).copied().unwrap_or(0)
        });
        if settled {
            report.differences = compare(&mut live, schema).await?;
            return Ok(report);
        }
        drop(live);
        if live_max > done {
            target = live_max;
        } else {
            // The live projectors are behind the rebuild: give them a moment.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    anyhow::bail!(
        "the live read models kept moving or stayed behind the stream; run the audit again \
         when the projectors have caught up (see /health)"
    )
}

async fn compare(live: &mut PgConnection, schema: &str) -> anyhow::Result<Vec<TableDifference>> {
    let mut out = Vec::new();
    for table in READ_MODEL_TABLES {
        let side = |a: &str, b: &str| {
            format!(
                "SELECT to_jsonb(x)::text FROM (SELECT * FROM {a}.{table} EXCEPT ALL \
                 SELECT * FROM {b}.{table}) x ORDER BY 1"
            )
        };
        let only_live: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(side("public", schema)))
            .fetch_all(&mut *live)
            .await?;
        let only_rebuilt: Vec<(String,)> =
            sqlx::query_as(sqlx::AssertSqlSafe(side(schema, "public")))
                .fetch_all(&mut *live)
                .await?;
        let count = (only_live.len() + only_rebuilt.len()) as u64;
        if count > 0 {
            out.push(TableDifference {
                table: (*table).to_owned(),
                only_live: only_live.into_iter().take(20).map(|r| r.0).collect(),
                only_rebuilt: only_rebuilt.into_iter().take(20).map(|r| r.0).collect(),
                count,
            });
        }
    }
    Ok(out)
}
