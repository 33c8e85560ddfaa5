//! The supervisor of an instance's background tasks (the pool follower, reactors, the stats feed,
//! chat's loops, projector runners). Each task is started by name. A task that returns or panics
//! is logged at error level with its name and cause, then either
//! - restarted after a backoff ([`Restart::Always`]: 100 ms, doubling up to 30 s, back to 100 ms
//!   once it has run for a minute), for loops that can start over, or
//! - reported as failed ([`Restart::Never`]), for tasks that cannot be started again: the
//!   instance then stops with an error ([`Supervisor::failure`]), so the process exits non-zero
//!   and its orchestrator starts a fresh one.
//!
//! Its [`TaskStatus`]es (state, restarts, last error) are what `GET /health` shows under `tasks`;
//! a task marked `essential` that is not running makes `/health` answer 503 `degraded`.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinHandle};

/// The first backoff before a restart.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest backoff before a restart.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A task that ran this long before it stopped restarts after the first backoff again.
const STABLE_AFTER: Duration = Duration::from_secs(60);

/// What happens when a task stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restart {
    /// Start it again after a backoff (a loop that keeps its state elsewhere or rebuilds it).
    Always,
    /// It cannot be started again: mark it failed and stop the instance with an error.
    Never,
}

/// Where a task is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskState {
    /// Running.
    Running,
    /// Stopped by a return or a panic; starts again after its backoff.
    Restarting,
    /// Stopped and not restartable: the instance is stopping.
    Failed,
    /// Stopped on purpose ([`TaskHandle::abort`], shutdown).
    Stopped,
}

impl TaskState {
    /// `running`, `restarting`, `failed` or `stopped` (the `state` of `/health`'s tasks).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Restarting => "restarting",
            Self::Failed => "failed",
            Self::Stopped => "stopped",
        }
    }
}

/// A task as the supervisor sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskStatus {
    /// The task's name, e.g. `pool-follower`, `reactor-expiry`, `projector-stages`.
    pub name: String,
    /// Where it is.
    pub state: TaskState,
    /// How many times it was restarted since the instance started.
    pub restarts: u32,
    /// Why it last stopped (`returned`, or the panic's message); `None` until it stops.
    pub last_error: Option<String>,
    /// `/health` is degraded while this task is not running.
    pub essential: bool,
}

/// A supervised task: aborting it stops the task and its supervision (it is not restarted).
pub struct TaskHandle {
    name: String,
    supervision: JoinHandle<()>,
    tasks: Arc<Mutex<BTreeMap<String, TaskStatus>>>,
}

impl TaskHandle {
    /// Stops the task at once, as a crash would, and marks it `stopped`.
    pub fn abort(&self) {
        self.supervision.abort();
        if let Some(task) = self.tasks.lock().expect("tasks lock").get_mut(&self.name) {
            task.state = TaskState::Stopped;
        }
    }
}

/// Aborts the task it holds when dropped: aborting the supervision aborts the task too.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts, watches and restarts background tasks; cheap to clone, clones share the tasks.
#[derive(Clone)]
pub struct Supervisor {
    tasks: Arc<Mutex<BTreeMap<String, TaskStatus>>>,
    handles: Arc<Mutex<Vec<AbortHandle>>>,
    /// The first failure of a task that cannot restart (`name: cause`).
    failed: watch::Sender<Option<String>>,
}

impl Default for Supervisor {
    fn default() -> Self {
        Self::new()
    }
}

impl Supervisor {
    /// A supervisor with no tasks.
    pub fn new() -> Self {
        Self {
            tasks: Arc::default(),
            handles: Arc::default(),
            failed: watch::Sender::new(None),
        }
    }

    /// Starts `make()` as task `name`, supervised by `restart`; `essential` tasks degrade
    /// `/health` while not running. A name started again replaces the earlier entry (keeping its
    /// restart count).
    pub fn spawn<F, Fut>(
        &self,
        name: impl Into<String>,
        restart: Restart,
        essential: bool,
        make: F,
    ) -> TaskHandle
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let name = name.into();
        self.register(&name, essential);
        let supervisor = self.clone();
        let task_name = name.clone();
        let supervision = tokio::spawn(async move {
            let mut backoff = FIRST_BACKOFF;
            loop {
                let started = Instant::now();
                let task = AbortOnDrop(tokio::spawn(make()));
                let cause = supervisor.stopped(&task_name, task).await;
                if restart == Restart::Never {
                    supervisor.fail(&task_name, cause);
                    return;
                }
                if started.elapsed() >= STABLE_AFTER {
                    backoff = FIRST_BACKOFF;
                }
                supervisor.set(&task_name, TaskState::Restarting, Some(cause));
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                supervisor.restarted(&task_name);
            }
        });
        self.handles
            .lock()
            .expect("handles lock")
            .push(supervision.abort_handle());
        TaskHandle {
            name,
            supervision,
            tasks: self.tasks.clone(),
        }
    }

    /// Watches a task that was started elsewhere and cannot be started again (chat's loops): when
    /// it stops, it is failed ([`Restart::Never`]).
    pub fn watch(&self, name: impl Into<String>, essential: bool, task: JoinHandle<()>) {
        let name = name.into();
        self.register(&name, essential);
        let supervisor = self.clone();
        let supervision = tokio::spawn(async move {
            let cause = supervisor.stopped(&name, AbortOnDrop(task)).await;
            supervisor.fail(&name, cause);
        });
        self.handles
            .lock()
            .expect("handles lock")
            .push(supervision.abort_handle());
    }

    /// Every task's status, by name.
    pub fn statuses(&self) -> Vec<TaskStatus> {
        self.tasks
            .lock()
            .expect("tasks lock")
            .values()
            .cloned()
            .collect()
    }

    /// Whether every essential task is running.
    pub fn essentials_running(&self) -> bool {
        self.tasks
            .lock()
            .expect("tasks lock")
            .values()
            .all(|t| !t.essential || t.state == TaskState::Running)
    }

    /// Completes with `name: cause` once a task that cannot restart has stopped.
    pub async fn failure(&self) -> String {
        let mut rx = self.failed.subscribe();
        let failure = rx
            .wait_for(Option::is_some)
            .await
            .map(|failure| failure.clone().unwrap_or_default());
        match failure {
            Ok(failure) => failure,
            // The sender lives in `self`: it cannot be dropped while we wait.
            Err(_) => std::future::pending().await,
        }
    }

    /// Stops every task (shutdown); they are not restarted.
    pub fn shutdown(&self) {
        for handle in self.handles.lock().expect("handles lock").drain(..) {
            handle.abort();
        }
        for task in self.tasks.lock().expect("tasks lock").values_mut() {
            task.state = TaskState::Stopped;
        }
    }

    fn register(&self, name: &str, essential: bool) {
        let mut tasks = self.tasks.lock().expect("tasks lock");
        let restarts = tasks.get(name).map_or(0, |t| t.restarts);
        tasks.insert(
            name.to_owned(),
            TaskStatus {
                name: name.to_owned(),
                state: TaskState::Running,
                restarts,
                last_error: None,
                essential,
            },
        );
    }

    /// Waits for the task to stop and logs why; returns the cause.
    async fn stopped(&self, name: &str, mut task: AbortOnDrop) -> String {
        let cause = match (&mut task.0).await {
            Ok(()) => "returned".to_owned(),
            Err(e) if e.is_panic() => format!("panicked: {}", panic_message(e.into_panic())),
            Err(e) => format!("cancelled: {e}"),
        };
        tracing::error!(task = name, cause = %cause, "background task stopped");
        cause
    }

    fn fail(&self, name: &str, cause: String) {
        self.set(name, TaskState::Failed, Some(cause.clone()));
        tracing::error!(
            task = name,
            "background task cannot restart; the instance stops"
        );
        self.failed.send_if_modified(|failed| {
            if failed.is_none() {
                *failed = Some(format!("{name}: {cause}"));
                true
            } else {
                false
            }
        });
    }

    fn set(&self, name: &str, state: TaskState, last_error: Option<String>) {
        if let Some(task) = self.tasks.lock().expect("tasks lock").get_mut(name) {
            task.state = state;
            if last_error.is_some() {
                task.last_error = last_error;
            }
        }
    }

    fn restarted(&self, name: &str) {
        if let Some(task) = self.tasks.lock().expect("tasks lock").get_mut(name) {
            task.state = TaskState::Running;
            task.restarts += 1;
        }
    }
}

/// The text of a panic's payload (`panic!("...")` gives a `&str` or a `String`).
fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

#[cfg(test)]
#[path = "supervisor_tests.rs"]
mod tests;
