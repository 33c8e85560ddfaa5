//! `onair audit`: after a mixed workload the rebuilt read models equal the live ones; a tampered
//! live row is reported.

use crate::helpers::Services;

#[tokio::test]
async fn an_audit_of_a_mixed_workload_finds_no_difference_until_a_row_is_tampered_with() {
    let services = Services::start().await;
    let gw = crate::workload::quiet_gateway(&services).await;
    crate::workload::run(&gw).await;

    let store = &gw.app.state.store;
    let report = onair::audit::run(&gw.app.db, store, false).await.unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.events, gw.app.stream_messages().await);

    // Tamper with one live row: the audit names the table and both versions of the row.
    sqlx::query("UPDATE rm_gift_records SET score = score + 1 WHERE gift_count = 2")
        .execute(&gw.app.db)
        .await
        .unwrap();
    let report = onair::audit::run(&gw.app.db, store, false).await.unwrap();
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
