//! `onair audit`: after a mixed workload the rebuilt read models equal the live ones; a tampered
//! live row is reported; so are holes in the stream and events no projector can read.

use crate::helpers::Services;

#[tokio::test]
async fn an_audit_of_a_mixed_workload_finds_no_difference_until_a_row_is_tampered_with() {
    let services = Services::start().await;
    let gw = crate::workload::quiet_gateway(&services).await;
    crate::workload::run(&gw).await;

    let store = &gw.app.state.store;
    let report = onair::ops::audit::run(&gw.app.db, store, false)
        .await
        .unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.events, gw.app.stream_messages().await);

    // Tamper with one live row: the audit names the table and both versions of the row.
    sqlx::query("UPDATE rm_gift_records SET score = score + 1 WHERE gift_count = 2")
        .execute(&gw.app.db)
        .await
        .unwrap();
    let report = onair::ops::audit::run(&gw.app.db, store, false)
        .await
        .unwrap();
    assert!(!report.is_clean());
    assert_eq!(report.differences.len(), 1, "{report:?}");
    let difference = &report.differences[0];
    assert_eq!(difference.table, "rm_gift_records");
    assert_eq!(difference.count, 2);
    assert!(
        difference.only_live[0].contains("\"score\": 21"),
        "{difference:?}"
    );
    assert!(
        difference.only_rebuilt[0].contains("\"score\": 20"),
        "{difference:?}"
    );

    let (scratch,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM information_schema.schemata WHERE schema_name LIKE 'onair_audit_%'",
    )
    .fetch_one(&gw.app.db)
    .await
    .unwrap();
    assert_eq!(scratch, 0, "scratch schemas are dropped");
}

/// A hole in the stream's sequences and events no projector can read are reported, and the
/// command exits 1 with both named.
#[tokio::test]
async fn an_audit_reports_gaps_and_unreadable_events_and_exits_1() {
    let services = Services::start().await;
    // A stream created by hand, without `deny_delete` (which onair sets and which cannot be
    // lifted): four events of a type this version does not know, on a subject a projector
    // reads; the first and the third are deleted, leaving a hole at the start (the stream's
    // first sequence is then 2) and one in the middle.
    let jetstream =
        async_nats::jetstream::new(async_nats::connect(&services.nats.url).await.unwrap());
    let stream = jetstream
        .create_stream(async_nats::jetstream::stream::Config {
            name: "ONAIR".into(),
            subjects: vec!["onair.>".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    for n in 1..=4 {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("ce-specversion", "1.0");
        headers.insert("ce-type", "onair.gift.wrapped.v1");
        headers.insert("ce-id", uuid::Uuid::now_v7().to_string().as_str());
        headers.insert("ce-source", "/elsewhere");
        headers.insert("ce-time", "2026-11-23T00:00:00Z");
        let ack = jetstream
            .publish_with_headers(format!("onair.gift.x{n}"), headers, "{}".into())
            .await
            .unwrap()
            .await
            .unwrap();
        assert_eq!(ack.sequence, n);
    }
    assert!(stream.delete_message(1).await.unwrap());
    assert!(stream.delete_message(3).await.unwrap());

    let app = crate::helpers::spawn_app(&services).await;
    assert_eq!(app.viewer_token("v-1").await.status, 200);
    app.wait_for_projections().await;
    let report = onair::ops::audit::run(&app.db, &app.state.store, false)
        .await
        .unwrap();
    assert!(report.differences.is_empty(), "{report:?}");
    assert_eq!(report.gaps, vec![(1, 1), (3, 3)], "each hole once");
    let unknown: Vec<u64> = report.unknown.iter().map(|u| u.0).collect();
    assert_eq!(unknown, vec![2, 4], "{report:?}");

    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_onair"))
        .args(["audit", "--database-url", &services.database_url])
        .args(["--nats-url", &services.nats.url])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("gap: sequences 3 to 3 are missing"),
        "{stdout}"
    );
    assert!(
        stdout.contains("sequence 4: no projector can read it"),
        "{stdout}"
    );
}
