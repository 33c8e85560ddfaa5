//! The analytics lake (`onair lake`, src/lake/): a writer killed with SIGKILL at random moments
//! leaves neither a gap nor a duplicate; the guide's queries (docs/analytics.md) give onair's own
//! answers in DuckDB and, where chdb installs, ClickHouse; a new event version adds columns
//! without breaking the files written before it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use onair::events::{ChatMessagePosted, Event, GiftSent, ViewerHeartbeatRecorded};
use onair::lake::layout;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::RowAccessor;
use time::OffsetDateTime;

use crate::helpers::{Services, TempDir, python, run_to_success};

/// Every row's `sequence` of one part file.
pub fn sequences_of(path: &Path) -> Vec<i64> {
    let file = std::fs::File::open(path).expect("part file");
    let reader = SerializedFileReader::new(file).expect("a Parquet file");
    let index = reader
        .metadata()
        .file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .position(|c| c.name() == "sequence")
        .expect("a sequence column");
    reader
        .get_row_iter(None)
        .expect("rows")
        .map(|row| row.expect("a row").get_long(index).expect("a sequence"))
        .collect()
}

/// Checks that the lake under `dir` holds each of the stream's sequences `1..=last` exactly once,
/// in files whose ranges tile `1..=last` without overlap, and no temporary file.
pub fn assert_no_gap_no_duplicate(dir: &Path, last: u64) {
    let parts = layout::parts(dir).expect("lake readable");
    assert!(
        parts.iter().all(|p| !p.temporary),
        "temporary files left: {parts:?}"
    );
    let ranges: BTreeSet<(u64, u64)> = parts.iter().map(|p| (p.first, p.last)).collect();
    let mut next = 1;
    for (first, last) in &ranges {
        assert_eq!(
            *first, next,
            "flush ranges {ranges:?} do not tile the stream"
        );
        next = last + 1;
    }
    assert_eq!(next, last + 1, "the lake ends at {} not {last}", next - 1);
    let mut seen = Vec::new();
    for part in &parts {
        for sequence in sequences_of(&part.path) {
            let sequence = sequence as u64;
            assert!(
                (part.first..=part.last).contains(&sequence),
                "{} holds sequence {sequence}",
                part.path.display()
            );
            seen.push(sequence);
        }
    }
    seen.sort_unstable();
    let expected: Vec<u64> = (1..=last).collect();
    if seen != expected {
        let duplicates = seen.windows(2).filter(|w| w[0] == w[1]).count();
        panic!(
            "{} rows for {last} events ({duplicates} duplicates)",
            seen.len()
        );
    }
}

/// `count` events of three types, dated over two hours, stored as they are.
async fn publish_events(store: &onair::event_store::EventStore, from: u64, count: u64) {
    let start = OffsetDateTime::now_utc() - time::Duration::hours(2);
    let mut batch = Vec::new();
    for n in from..from + count {
        let at = start + time::Duration::seconds(n as i64 % 7200);
        let event = match n % 10 {
            0 => Event::GiftSent(GiftSent {
                gift_id: 1,
                gift_name: "Rose".into(),
                anime_url: "/anime/1.webp".into(),
                points: 10,
                count: 1 + (n % 5) as u32,
                score: 10 * (1 + n % 5),
                presenter: format!("m{}@a.b", n % 13),
                presenter_nickname: "M".into(),
                recipient: "star@a.b".into(),
                agent_id: "a.b".into(),
                session_id: None,
            }),
            1..=3 => Event::ChatMessagePosted(ChatMessagePosted {
                room: "room-1".into(),
                from: "c1".into(),
                member_id: format!("m{}@a.b", n % 13),
                message: format!("{{\"type\":\"chat\",\"text\":\"message {n}\"}}"),
            }),
            _ => Event::ViewerHeartbeatRecorded(ViewerHeartbeatRecorded {
                user_id: format!("viewer-{}", n % 50),
                stage_arn: "arn:aws:ivs:us-east-1:000000000000:stage/abc".into(),
            }),
        };
        batch.push((uuid::Uuid::now_v7(), at, "/onair/test".to_owned(), event));
        if batch.len() == 500 {
            store
                .import_batch(std::mem::take(&mut batch))
                .await
                .unwrap();
        }
    }
    store.import_batch(batch).await.unwrap();
}

/// `onair lake` against the test's services, as a child process.
pub fn lake_command(services: &Services, dir: &Path, extra: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_onair"));
    command
        .arg("lake")
        .arg("--dir")
        .arg(dir)
        .args(["--database-url", &services.database_url])
        .args(["--nats-url", &services.nats.url])
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null());
    command
}

#[tokio::test]
async fn a_writer_killed_at_any_moment_leaves_neither_gap_nor_duplicate() {
    let services = Services::start().await;
    let store = onair::event_store::EventStore::connect(&services.nats.url, "/onair/test")
        .await
        .unwrap();
    store.ensure_stream(1).await.unwrap();
    let lake = TempDir::new("onair-lake");
    let dir: PathBuf = lake.0.join("lake");
    publish_events(&store, 0, 20_000).await;
    // Killed 12 times while events keep coming and files roll every second.
    let mut published = 20_000;
    for round in 0..12u64 {
        let mut child = lake_command(&services, &dir, &["--lake-roll-secs", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("onair lake starts");
        publish_events(&store, published, 2_000).await;
        published += 2_000;
        tokio::time::sleep(Duration::from_millis(700 + (round * 233) % 1100)).await;
        child.start_kill().unwrap();
        child.wait().await.unwrap();
    }
    let last = store
        .stream()
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .state
        .last_sequence;
    assert_eq!(last, published);
    let out = run_to_success(
        lake_command(&services, &dir, &["--until-caught-up"]),
        Duration::from_secs(120),
        "onair lake --until-caught-up",
    )
    .await;
    assert!(out.contains(&format!("sequences 1 to {last}")), "{out}");
    assert_no_gap_no_duplicate(&dir, last);
}

/// Runs the guide's queries (docs/analytics.md) on the lake in `root`/lake with `engine`
/// (`duckdb` or `clickhouse`) and returns their results as JSON.
pub async fn guide_queries(root: &Path, engine: &str) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lake/queries.py");
    let guide = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/analytics.md");
    let mut command = python();
    command.arg(script).arg(guide).arg(engine).current_dir(root);
    let out = run_to_success(command, Duration::from_secs(120), "tests/lake/queries.py").await;
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// Whether the test Python has chdb (ClickHouse in-process), which `scripts/test` installs where it
/// can.
pub async fn has_chdb() -> bool {
    python()
        .args(["-c", "import chdb"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success())
}
