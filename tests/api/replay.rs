//! `onair replay`: read models rebuilt from the stream and swapped in while the server serves and
//! keeps writing give the same rows as before (the audit finds nothing), and nothing is applied
//! twice.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

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

    let chosen = onair::replay::select(None).unwrap();
    let report = onair::replay::run(&app.app.db, &app.app.state.store, chosen)
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
    let audit = onair::audit::run(&app.app.db, &app.app.state.store, false)
        .await
        .unwrap();
    assert!(audit.is_clean(), "{audit:?}");

    // A single projection by name; an unknown name is refused with the list.
    let one = onair::replay::select(Some(&["gifts".to_owned()])).unwrap();
    onair::replay::run(&app.app.db, &app.app.state.store, one)
        .await
        .unwrap();
    let unknown = onair::replay::select(Some(&["nope".to_owned()]))
        .err()
        .unwrap();
    assert!(unknown.to_string().contains("room_activity"), "{unknown}");
    app.app.wait_for_projections().await;
    assert!(
        onair::audit::run(&app.app.db, &app.app.state.store, false)
            .await
            .unwrap()
            .is_clean()
    );
}
