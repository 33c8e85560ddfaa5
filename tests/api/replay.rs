//! `onair replay`: read models rebuilt from the stream and swapped in while the server serves and
//! keeps writing give the same rows as before (the audit finds nothing), and nothing is applied
//! twice.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use sqlx::Connection;

use crate::helpers::Services;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_all_while_serving_gives_identical_read_models() {
    let services = Services::start().await;
    let gw = crate::workload::quiet_gateway(&services).await;
    crate::workload::run(&gw).await;
    let app = Arc::new(gw);

    // Writes and reads go on during the replay.
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let traffic = {
        let (app, stop, served) = (app.clone(), stop.clone(), served.clone());
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                assert_eq!(
                    app.app.viewer_token(&format!("during-{i}")).await.status,
                    200
                );
                assert_eq!(app.app.get("/api/stats").await.status, 200);
                served.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        })
    };

    let names_before = index_names(&app.app.db).await;
    let chosen = onair::ops::replay::select(None).unwrap();
    let report = onair::ops::replay::run(&app.app.db, &app.app.state.store, chosen)
        .await
        .unwrap();
    assert_eq!(report.projections.len(), onair::projections::all().len());
    assert!(report.events > 0);
    stop.store(true, Ordering::Relaxed);
    traffic.await.unwrap();
    assert!(
        served.load(Ordering::Relaxed) > 0,
        "the server served during the replay"
    );

    app.app.wait_for_projections().await;
    let audit = onair::ops::audit::run(&app.app.db, &app.app.state.store, false)
        .await
        .unwrap();
    assert!(audit.is_clean(), "{audit:?}");
    // The swapped-in tables kept the live index and constraint names (later migrations use them).
    assert_eq!(index_names(&app.app.db).await, names_before);

    // A single projection by name; an unknown name is refused with the list.
    let one = onair::ops::replay::select(Some(&["gifts".to_owned()])).unwrap();
    onair::ops::replay::run(&app.app.db, &app.app.state.store, one)
        .await
        .unwrap();
    let unknown = onair::ops::replay::select(Some(&["nope".to_owned()]))
        .err()
        .unwrap();
    assert!(unknown.to_string().contains("room_activity"), "{unknown}");
    app.app.wait_for_projections().await;
    assert!(
        onair::ops::audit::run(&app.app.db, &app.app.state.store, false)
            .await
            .unwrap()
            .is_clean()
    );
}

/// A second replay while one runs is refused with a clear error and changes nothing.
#[tokio::test]
async fn a_second_replay_is_refused_while_one_runs() {
    let services = Services::start().await;
    let app = crate::helpers::spawn_app(&services).await;
    app.viewer_token("v-1").await;
    app.wait_for_projections().await;

    // Another replay holds the lock (what `onair replay` takes for its whole run).
    let mut other = sqlx::PgConnection::connect_with(&app.db.connect_options())
        .await
        .unwrap();
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(0x6f6e_6169_725f_7270_i64)
        .execute(&mut other)
        .await
        .unwrap();
    let replay_all = || async {
        onair::ops::replay::run(
            &app.db,
            &app.state.store,
            onair::ops::replay::select(None).unwrap(),
        )
        .await
    };
    let refused = replay_all().await.unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("another onair replay is running"),
        "{refused}"
    );
    other.close().await.unwrap();

    // Once it has finished, a replay runs.
    assert!(replay_all().await.unwrap().events > 0);
}

async fn index_names(db: &sqlx::PgPool) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT tablename::text, indexname::text FROM pg_indexes
         WHERE schemaname = 'public' ORDER BY 1, 2",
    )
    .fetch_all(db)
    .await
    .unwrap()
}

/// A replay interrupted before its swap (here: stopped while the swap waits for a checkpoint row)
/// changes nothing; the next run cleans up after it and swaps.
#[tokio::test]
async fn an_interrupted_replay_changes_nothing_and_the_next_run_completes() {
    let services = Services::start().await;
    let gw = crate::workload::quiet_gateway(&services).await;
    crate::workload::run(&gw).await;
    let app = &gw.app;
    let scratch_schemas = || async {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM information_schema.schemata
             WHERE schema_name LIKE 'onair\\_replay\\_%'",
        )
        .fetch_one(&app.db)
        .await
        .unwrap();
        n
    };
    let tables_before: Vec<(i64,)> =
        sqlx::query_as("SELECT 'public.rm_gift_records'::regclass::oid::bigint")
            .fetch_all(&app.db)
            .await
            .unwrap();

    // Hold one checkpoint row, so the swap waits; stop the replay there, as Ctrl-C would.
    let mut holder = app.db.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM projection_checkpoints WHERE projection = 'gifts' FOR UPDATE")
        .execute(&mut *holder)
        .await
        .unwrap();
    {
        let replay = onair::ops::replay::run(
            &app.db,
            &app.state.store,
            onair::ops::replay::select(None).unwrap(),
        );
        let swap_waits = crate::helpers::eventually(std::time::Duration::from_secs(10), || async {
            let (waiting,): (i64,) = sqlx::query_as(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE wait_event_type = 'Lock' AND query LIKE '%FOR UPDATE%'",
            )
            .fetch_one(&app.db)
            .await
            .unwrap();
            (waiting > 0).then_some(())
        });
        tokio::select! {
            done = replay => panic!("the replay ended while its swap should wait: {done:?}"),
            () = swap_waits => {}
        }
        // Leaving the block drops the replay mid-swap.
    }
    holder.rollback().await.unwrap();
    assert_eq!(
        scratch_schemas().await,
        1,
        "the interrupted run's scratch schema"
    );
    let tables_after: Vec<(i64,)> =
        sqlx::query_as("SELECT 'public.rm_gift_records'::regclass::oid::bigint")
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(tables_after, tables_before, "nothing was swapped");

    // The next run (once the interrupted one's lock is released) swaps and cleans up.
    let report = crate::helpers::eventually(std::time::Duration::from_secs(10), || async {
        onair::ops::replay::run(
            &app.db,
            &app.state.store,
            onair::ops::replay::select(None).unwrap(),
        )
        .await
        .ok()
    })
    .await;
    assert!(report.events > 0);
    assert_eq!(scratch_schemas().await, 0);
    app.wait_for_projections().await;
    let audit = onair::ops::audit::run(&app.db, &app.state.store, false)
        .await
        .unwrap();
    assert!(audit.is_clean(), "{audit:?}");
}
