//! Test harness: a real nats-server (JetStream) per test, a fresh PostgreSQL database per test on the
//! server `scripts/test` starts, and the application on port 0.

use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use onair::server::config::ServeSettings;
use onair::server::startup::{Application, ProjectorControl};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A nats-server with JetStream in a temporary store, killed on drop.
pub struct NatsServer {
    child: Child,
    pub url: String,
    _dir: TempDir,
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A loopback port free at the moment of the call.
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .expect("bind port 0")
        .local_addr()
        .unwrap()
        .port()
}

impl NatsServer {
    pub async fn start() -> Self {
        let binary =
            std::env::var("ONAIR_TEST_NATS_SERVER").unwrap_or_else(|_| "nats-server".into());
        let dir = TempDir::new("onair-nats");
        for _ in 0..5 {
            let port = free_port();
            let child = Command::new(&binary)
                .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
                .arg(&dir.0)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("cannot start {binary}: {e}; run the tests with scripts/test")
                });
            let mut server = NatsServer {
                child,
                url: format!("nats://127.0.0.1:{port}"),
                _dir: TempDir(dir.0.clone()),
            };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = server.child.try_wait() {
                    break;
                }
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    std::mem::forget(dir);
                    return server;
                }
                // Polls for the condition above (the port accepts), every 20 ms until the deadline.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let _ = server.child.kill();
            std::mem::forget(std::mem::replace(&mut server._dir, TempDir(PathBuf::new())));
        }
        panic!("nats-server did not start");
    }
}

/// A fresh database on the test PostgreSQL server.
pub async fn fresh_database() -> String {
    let admin_url = std::env::var("ONAIR_TEST_DATABASE_URL").expect(
        "ONAIR_TEST_DATABASE_URL is not set: run the tests with scripts/test, which starts PostgreSQL",
    );
    let name = format!("onair_test_{}", uuid::Uuid::new_v4().simple());
    let admin = sqlx::PgPool::connect(&admin_url)
        .await
        .expect("connect to the test PostgreSQL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .expect("create test database");
    admin.close().await;
    let base = admin_url
        .rsplit_once('/')
        .expect("database URL with a path")
        .0;
    format!("{base}/{name}")
}

/// The services one test uses: NATS and a database.
pub struct Services {
    pub nats: NatsServer,
    pub database_url: String,
}

impl Services {
    pub async fn start() -> Self {
        Self {
            nats: NatsServer::start().await,
            database_url: fresh_database().await,
        }
    }

    /// Settings for an app on these services, port 0, fast expiry checks.
    pub fn settings(&self) -> ServeSettings {
        let mut settings = ServeSettings::with_connection(&self.database_url, &self.nats.url);
        settings.listen = "127.0.0.1:0".parse().unwrap();
        settings.expiry_check_interval_ms = 100;
        settings
    }
}

/// A running application and a client with a valid API key.
pub struct TestApp {
    pub address: String,
    pub api_key: String,
    pub client: reqwest::Client,
    pub db: sqlx::PgPool,
    pub projectors: ProjectorControl,
    pub state: Arc<onair::http::AppState>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.projectors.kill();
    }
}

pub async fn spawn_app(services: &Services) -> TestApp {
    spawn_app_with(services, |_| {}).await
}

pub async fn spawn_app_with(
    services: &Services,
    customize: impl FnOnce(&mut ServeSettings),
) -> TestApp {
    let mut settings = services.settings();
    customize(&mut settings);
    spawn_configured(settings).await
}

/// Starts an app with exactly these settings (e.g. on a NATS cluster of the test's own).
pub async fn spawn_configured(settings: ServeSettings) -> TestApp {
    init_test_logs();
    let app = Application::build(settings).await.expect("the app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let projectors = app.projectors();
    let state = app.state();
    let db = state.db.clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
    }));
    let (_, api_key) = onair::records::api_keys::create(&db, "test", 100_000)
        .await
        .expect("api key");
    TestApp {
        address,
        api_key,
        client: reqwest::Client::new(),
        db,
        projectors,
        state,
        shutdown: Some(tx),
    }
}

fn init_test_logs() {
    if std::env::var("TEST_LOG").is_ok() {
        let _ = tracing_subscriber::fmt().with_env_filter("info").try_init();
    }
}

/// A response's status and JSON body (Null when not JSON).
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn data(&self) -> &Value {
        &self.body["data"]
    }

    /// Asserts an error answer with this status and code (and `success: false`, which the seeds'
    /// clients branch on; a `VALIDATION_ERROR` with `details`) and returns its message.
    pub fn expect_error(&self, status: u16, code: &str) -> String {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        assert_eq!(self.body["error"], code, "body: {}", self.body);
        assert_eq!(self.body["success"], false, "body: {}", self.body);
        if code == "VALIDATION_ERROR" {
            assert!(
                self.body["details"].as_str().is_some_and(|d| !d.is_empty()),
                "details: {}",
                self.body
            );
        }
        self.body["message"].as_str().expect("message").to_owned()
    }

    pub fn event_sequence(&self) -> u64 {
        self.headers["x-event-sequence"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap()
    }
}

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    Answer {
        status,
        headers,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
    }
}

/// URL-encodes a path segment (a stage ARN).
pub fn encode(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, percent_encoding::NON_ALPHANUMERIC).to_string()
}

impl TestApp {
    /// The body of a GET as text (`/metrics`).
    pub async fn get_text(&self, path: &str) -> String {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("request")
            .text()
            .await
            .expect("body")
    }

    pub async fn get(&self, path: &str) -> Answer {
        answer(
            self.client
                .get(format!("{}{path}", self.address))
                .header("x-api-key", &self.api_key)
                .send()
                .await
                .expect("request"),
        )
        .await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Answer {
        self.post_raw(path, body.to_string()).await
    }

    pub async fn post_raw(&self, path: &str, body: String) -> Answer {
        answer(
            self.client
                .post(format!("{}{path}", self.address))
                .header("x-api-key", &self.api_key)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("request"),
        )
        .await
    }

    /// A POST without `x-api-key` with one extra header.
    pub async fn post_public_with(&self, path: &str, body: &Value, header: (&str, &str)) -> Answer {
        answer(
            self.client
                .post(format!("{}{path}", self.address))
                .header(header.0, header.1)
                .json(body)
                .send()
                .await
                .expect("request"),
        )
        .await
    }

    /// A POST without `x-api-key`, as front ends and back offices call the gateways.
    pub async fn post_public(&self, path: &str, body: &Value) -> Answer {
        answer(
            self.client
                .post(format!("{}{path}", self.address))
                .json(body)
                .send()
                .await
                .expect("request"),
        )
        .await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Answer {
        answer(
            self.client
                .put(format!("{}{path}", self.address))
                .header("x-api-key", &self.api_key)
                .json(body)
                .send()
                .await
                .expect("request"),
        )
        .await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        answer(
            self.client
                .delete(format!("{}{path}", self.address))
                .header("x-api-key", &self.api_key)
                .send()
                .await
                .expect("request"),
        )
        .await
    }

    /// Seats `user_id` and returns the stage ARN.
    pub async fn seat(&self, user_id: &str) -> String {
        let answer = self.viewer_token(user_id).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.data()["stageArn"].as_str().unwrap().to_owned()
    }

    pub async fn viewer_token(&self, user_id: &str) -> Answer {
        self.post("/api/token/viewer", &json!({ "userId": user_id }))
            .await
    }

    pub async fn heartbeat(&self, user_id: &str, stage_arn: &str) -> Answer {
        self.post(
            "/api/viewer/heartbeat",
            &json!({ "userId": user_id, "stageArn": stage_arn }),
        )
        .await
    }

    pub async fn leave(&self, user_id: &str, stage_arn: &str) -> Answer {
        self.post(
            "/api/viewer/leave",
            &json!({ "userId": user_id, "stageArn": stage_arn }),
        )
        .await
    }

    pub async fn master_stage_arn(&self) -> String {
        self.state
            .pool
            .read(|p| p.master().map(|s| s.arn.clone()))
            .expect("master stage")
    }

    /// How many messages the stream holds.
    pub async fn stream_messages(&self) -> u64 {
        let mut stream = self.state.store.stream().await.unwrap();
        stream.info().await.unwrap().state.messages
    }

    /// Waits until both projections have applied everything stored so far.
    pub async fn wait_for_projections(&self) {
        let mut stream = self.state.store.stream().await.unwrap();
        let last = stream.info().await.unwrap().state.last_sequence;
        eventually(Duration::from_secs(10), || async {
            for name in onair::projections::all().iter().map(|p| p.name()) {
                let (checkpoint,): (i64,) = sqlx::query_as(
                    "SELECT last_sequence FROM projection_checkpoints WHERE projection = $1",
                )
                .bind(name)
                .fetch_optional(&self.db)
                .await
                .unwrap()
                .unwrap_or((0,));
                if (checkpoint as u64) < last && self.consumer_pending(name).await > 0 {
                    return None;
                }
            }
            Some(())
        })
        .await;
    }

    async fn consumer_pending(&self, name: &str) -> u64 {
        let stream = self.state.store.stream().await.unwrap();
        match stream
            .get_consumer::<async_nats::jetstream::consumer::pull::Config>(&format!(
                "projector-{name}"
            ))
            .await
        {
            Ok(mut consumer) => match consumer.info().await {
                Ok(info) => info.num_pending + info.num_ack_pending as u64,
                Err(_) => u64::MAX,
            },
            Err(_) => u64::MAX,
        }
    }
}

/// Polls `f` until it gives `Some`, or panics after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("condition not met within {timeout:?}");
        }
        // The pause between two polls of the condition.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The Python interpreter that scripts/test prepared (`ONAIR_TEST_PYTHON`: it has requests,
/// nats-py, jsonschema and schemathesis), else `python3`.
pub fn python() -> tokio::process::Command {
    tokio::process::Command::new(
        std::env::var("ONAIR_TEST_PYTHON").unwrap_or_else(|_| "python3".into()),
    )
}

/// Runs an outside program to its end within `limit` and returns its standard output. Panics,
/// naming `what` and showing both outputs, when it cannot start, runs over or exits non-zero.
pub async fn run_to_success(
    mut command: tokio::process::Command,
    limit: Duration,
    what: &str,
) -> String {
    let output = tokio::time::timeout(limit, command.kill_on_drop(true).output())
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {limit:?}"))
        .unwrap_or_else(|e| panic!("{what} could not start ({e}); scripts/test installs it"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{what} failed ({})\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}
