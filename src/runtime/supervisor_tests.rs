use std::sync::atomic::{AtomicU32, Ordering};

use super::*;

/// Waits until `check` holds on the statuses (at most 5 s).
async fn until(supervisor: &Supervisor, check: impl Fn(&[TaskStatus]) -> bool) -> Vec<TaskStatus> {
    for _ in 0..500 {
        let statuses = supervisor.statuses();
        if check(&statuses) {
            return statuses;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the statuses never got there: {:?}", supervisor.statuses());
}

#[tokio::test]
async fn given_a_task_that_panics_when_supervised_then_it_is_restarted_with_its_cause() {
    let supervisor = Supervisor::new();
    let runs = Arc::new(AtomicU32::new(0));
    let counted = runs.clone();
    supervisor.spawn("flaky", Restart::Always, true, move || {
        let run = counted.fetch_add(1, Ordering::SeqCst);
        async move {
            if run == 0 {
                panic!("lost the connection");
            }
            std::future::pending::<()>().await
        }
    });

    let statuses = until(&supervisor, |s| s[0].restarts == 1).await;

    assert_eq!(statuses[0].name, "flaky");
    assert_eq!(statuses[0].state, TaskState::Running);
    assert_eq!(
        statuses[0].last_error.as_deref(),
        Some("panicked: lost the connection")
    );
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert!(supervisor.essentials_running());
}

#[tokio::test]
async fn given_a_task_that_returns_when_supervised_then_it_is_restarted_too() {
    let supervisor = Supervisor::new();
    supervisor.spawn("short", Restart::Always, false, || async {});

    let statuses = until(&supervisor, |s| s[0].restarts >= 2).await;

    assert_eq!(statuses[0].last_error.as_deref(), Some("returned"));
}

#[tokio::test]
async fn given_a_task_that_cannot_restart_when_it_stops_then_it_fails_the_instance() {
    let supervisor = Supervisor::new();
    supervisor.watch(
        "chat-delivery",
        true,
        tokio::spawn(async { panic!("boom") }),
    );

    let failure = tokio::time::timeout(Duration::from_secs(5), supervisor.failure())
        .await
        .expect("a failure is reported");

    assert_eq!(failure, "chat-delivery: panicked: boom");
    let statuses = supervisor.statuses();
    assert_eq!(statuses[0].state, TaskState::Failed);
    assert!(!supervisor.essentials_running());
}

#[tokio::test]
async fn given_a_task_stopped_on_purpose_then_it_is_not_restarted_and_its_work_stops() {
    let supervisor = Supervisor::new();
    let ticks = Arc::new(AtomicU32::new(0));
    let counted = ticks.clone();
    let handle = supervisor.spawn("ticker", Restart::Always, false, move || {
        let counted = counted.clone();
        async move {
            loop {
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    });
    until(&supervisor, |_| ticks.load(Ordering::SeqCst) > 2).await;

    handle.abort();
    tokio::time::sleep(Duration::from_millis(30)).await;
    let after_abort = ticks.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(50)).await;

    assert_eq!(ticks.load(Ordering::SeqCst), after_abort);
    let statuses = supervisor.statuses();
    assert_eq!(statuses[0].state, TaskState::Stopped);
    assert_eq!(statuses[0].restarts, 0);
}
