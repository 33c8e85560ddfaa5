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
/// in files whose ranges tile `1..=last` without overlap, and no temporary file; `last` is where
/// the lake ends, at least `at_least`.
pub fn assert_no_gap_no_duplicate(dir: &Path, at_least: u64) {
    let parts = layout::parts(dir).expect("lake readable");
    let last = parts.iter().map(|p| p.last).max().unwrap_or(0);
    assert!(
        last >= at_least,
        "the lake ends at {last}, before {at_least}"
    );
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
    store.open_stream(1).await.unwrap();
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
        // The fault schedule: the writer is killed after a varying 1.0-2.1 s of work, so kills
        // land before, during and after its 1 s rolls; not a wait on a condition.
        tokio::time::sleep(Duration::from_millis(1000 + (round * 233) % 1100)).await;
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
    let flushes: BTreeSet<(u64, u64)> = layout::parts(&dir)
        .unwrap()
        .iter()
        .map(|p| (p.first, p.last))
        .collect();
    assert!(
        flushes.len() > 4,
        "the killed writers flushed {} times: they were not killed while writing",
        flushes.len()
    );
}

/// Runs the guide's queries (docs/analytics.md) on the lake in `root`/lake with `engine`
/// (`duckdb` or `clickhouse`) and returns their results as JSON.
pub async fn guide_queries(root: &Path, engine: &str) -> serde_json::Value {
    guide_queries_named(root, engine, &[]).await
}

/// [`guide_queries`], only those named (all when none is).
pub async fn guide_queries_named(root: &Path, engine: &str, names: &[&str]) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lake/queries.py");
    let guide = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/analytics.md");
    let mut command = python();
    command
        .arg(script)
        .arg(guide)
        .arg(engine)
        .args(names)
        .current_dir(root);
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

/// A gift as the first releases stored it (`onair.gift.sent.v1`, no `score`): `(sequence, time,
/// presenter, count)` given, 10 points each, to `star@a.b`.
async fn publish_gift_v1(
    store: &onair::event_store::EventStore,
    at: OffsetDateTime,
    presenter: &str,
    count: u32,
) -> u64 {
    let v1 = onair::events::room::GiftSentV1 {
        gift_id: 1,
        gift_name: "Rose".into(),
        anime_url: "/anime/1.webp".into(),
        points: 10,
        count,
        presenter: presenter.into(),
        presenter_nickname: "P".into(),
        recipient: "star@a.b".into(),
        agent_id: "a.b".into(),
        session_id: None,
    };
    let id = uuid::Uuid::now_v7();
    let mut headers = onair::events::cloudevents::headers(
        id,
        at,
        "/onair/gateway",
        &Event::GiftSent(v1.clone().upcast()),
    );
    headers.insert(onair::events::cloudevents::TYPE, "onair.gift.sent.v1");
    let subject = Event::GiftSent(v1.clone().upcast()).subject();
    store
        .jetstream()
        .publish_with_headers(subject, headers, serde_json::to_vec(&v1).unwrap().into())
        .await
        .unwrap()
        .await
        .unwrap()
        .sequence
}

fn gift_v2(presenter: &str, count: u32) -> Event {
    Event::GiftSent(GiftSent {
        gift_id: 1,
        gift_name: "Rose".into(),
        anime_url: "/anime/1.webp".into(),
        points: 10,
        count,
        score: 10 * u64::from(count),
        presenter: presenter.into(),
        presenter_nickname: "P".into(),
        recipient: "star@a.b".into(),
        agent_id: "a.b".into(),
        session_id: None,
    })
}

/// The columns of a part file.
fn columns_of(path: &Path) -> Vec<String> {
    let reader = SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
    reader
        .metadata()
        .file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .map(|c| c.name().to_owned())
        .collect()
}

#[tokio::test]
async fn a_new_event_version_adds_columns_and_old_files_still_answer() {
    let services = Services::start().await;
    let store = onair::event_store::EventStore::connect(&services.nats.url, "/onair/test")
        .await
        .unwrap();
    store.open_stream(1).await.unwrap();
    let root = TempDir::new("onair-lake-versions");
    let dir = root.0.join("lake");
    let hour_ago = OffsetDateTime::now_utc() - time::Duration::hours(1);

    // What the release before v2 stored and wrote: v1 gifts, in v1 files without `score`.
    let old = [("a@a.b", 3), ("b@a.b", 1), ("a@a.b", 2)];
    let mut last = 0;
    for (presenter, count) in old {
        last = publish_gift_v1(&store, hour_ago, presenter, count).await;
    }
    let catalog = onair::events::schema::catalog();
    let v1 = catalog
        .iter()
        .find(|e| e.event_type == "onair.gift.sent.v1")
        .unwrap();
    let shape = std::sync::Arc::new(
        onair::lake::columns::TableShape::derive(v1.event_type, &v1.schema).unwrap(),
    );
    let mut buffer = onair::lake::parquet_file::TableBuffer::new(shape.clone());
    for (n, (presenter, count)) in old.iter().enumerate() {
        let payload = serde_json::json!({"giftID": 1, "giftName": "Rose", "animeUrl": "/anime/1.webp",
            "points": 10, "count": count, "presenter": presenter, "presenterNickname": "P",
            "recipient": "star@a.b", "agentID": "a.b"});
        let attributes = onair::lake::columns::Attributes {
            id: "00000000-0000-0000-0000-000000000000",
            time: hour_ago,
            source: "/onair/gateway",
            event_type: v1.event_type,
            sequence: n as u64 + 1,
        };
        for row in shape.rows(&attributes, &payload) {
            buffer.push(row);
        }
    }
    std::fs::create_dir_all(&dir).unwrap();
    let partition = layout::Partition::of(v1.event_type, hour_ago);
    layout::prepare(&dir, 1, last, &[(partition, buffer)])
        .unwrap()
        .publish()
        .unwrap();

    // This release: v2 gifts, and one more v1 gift stored late (written upcast, as v2). (Another
    // streamer's live session, so the ranking's view has its file.)
    let now = OffsetDateTime::now_utc();
    let started = Event::BroadcastStarted(onair::events::BroadcastStarted {
        streamer: "other@a.b".into(),
        session_id: uuid::Uuid::now_v7(),
    });
    store
        .import_batch(vec![
            (uuid::Uuid::now_v7(), now, "/onair/gateway".into(), started),
            (
                uuid::Uuid::now_v7(),
                now,
                "/onair/gateway".into(),
                gift_v2("b@a.b", 5),
            ),
            (
                uuid::Uuid::now_v7(),
                now,
                "/onair/gateway".into(),
                gift_v2("c@a.b", 4),
            ),
        ])
        .await
        .unwrap();
    let last = publish_gift_v1(&store, now, "c@a.b", 1).await;
    run_to_success(
        lake_command(&services, &dir, &["--until-caught-up"]),
        Duration::from_secs(60),
        "onair lake --until-caught-up",
    )
    .await;
    assert_no_gap_no_duplicate(&dir, last);
    let parts = layout::parts(&dir).unwrap();
    for part in &parts {
        let columns = columns_of(&part.path);
        assert_eq!(
            columns.contains(&"score".to_owned()),
            part.event_type == "onair.gift.sent.v2",
            "{}: {columns:?}",
            part.path.display()
        );
    }
    assert_eq!(
        parts
            .iter()
            .filter(|p| p.event_type == "onair.gift.sent.v2")
            .flat_map(|p| sequences_of(&p.path))
            .collect::<BTreeSet<_>>(),
        BTreeSet::from([5, 6, 7]),
        "the late v1 gift is written as v2"
    );

    // The guide's gift queries over the old and the new folders.
    let hour = |t: OffsetDateTime| {
        format!(
            "{}T{:02}:00:00Z",
            t.date(),
            t.to_offset(time::UtcOffset::UTC).hour()
        )
    };
    let mut points = std::collections::BTreeMap::new();
    *points.entry(hour(hour_ago)).or_insert((0, 0)) = (60, 3);
    let entry = points.entry(hour(now)).or_insert((0, 0));
    *entry = (entry.0 + 100, entry.1 + 3);
    let expected_points: Vec<serde_json::Value> = points
        .into_iter()
        .map(|(h, (p, n))| serde_json::json!(["star@a.b", h, p, n]))
        .collect();
    let expected_givers = serde_json::json!([
        ["star@a.b", "b@a.b", 60, 1],
        ["star@a.b", "a@a.b", 50, 2],
        ["star@a.b", "c@a.b", 50, 3],
    ]);
    let mut engines = vec!["duckdb"];
    if has_chdb().await {
        engines.push("clickhouse");
    }
    for engine in engines {
        let results = guide_queries_named(&root.0, engine, &["gift_points", "top_givers"]).await;
        assert_eq!(
            results["queries"]["gift_points"]["rows"],
            serde_json::json!(expected_points),
            "{engine}"
        );
        assert_eq!(
            results["queries"]["top_givers"]["rows"], expected_givers,
            "{engine}"
        );
    }
}

/// The stream's last sequence.
async fn last_sequence(store: &onair::event_store::EventStore) -> u64 {
    let mut stream = store.stream().await.unwrap();
    stream.info().await.unwrap().state.last_sequence
}

/// The highest sequence the lake in `dir` holds.
fn checkpoint(dir: &Path) -> u64 {
    layout::parts(dir)
        .unwrap_or_default()
        .iter()
        .filter(|p| !p.temporary)
        .map(|p| p.last)
        .max()
        .unwrap_or(0)
}

#[tokio::test]
async fn one_instance_of_the_lake_role_writes_and_another_takes_over() {
    let services = Services::start().await;
    let root = TempDir::new("onair-lake-role");
    let dir = root.0.join("lake");
    let with_lake = |s: &mut onair::server::config::ServeSettings| {
        s.roles.push(onair::server::config::ServeRole::Lake);
        s.lake.lake_dir = Some(dir.clone());
        s.lake.lake_roll_secs = 1;
    };
    let first = crate::helpers::spawn_app_with(&services, with_lake).await;
    let store = first.state.store.clone();
    let caught_up = async |from: u64| {
        publish_events(&store, from, 3_000).await;
        let target = last_sequence(&store).await;
        crate::helpers::eventually(Duration::from_secs(30), || async {
            (checkpoint(&dir) >= target).then_some(())
        })
        .await;
        target
    };
    caught_up(0).await;
    // A second instance stands by while the first writes: every event once.
    let second = crate::helpers::spawn_app_with(&services, with_lake).await;
    let target = caught_up(3_000).await;
    assert_no_gap_no_duplicate(&dir, target);
    // The first stops (its lock connection goes, as in a crash); the second goes on from the files.
    drop(first);
    let target = caught_up(6_000).await;
    assert_no_gap_no_duplicate(&dir, target);
    drop(second);
}
