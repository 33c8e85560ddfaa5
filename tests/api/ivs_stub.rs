//! A local stub of Amazon IVS real-time's control plane (restJson1: `POST /<Operation>`, JSON)
//! on 127.0.0.1, port 0, for driving the real `aws-sdk-ivsrealtime` client in tests.
//!
//! Operations: `POST /CreateStage`, `/GetStage`, `/ListStages` (honours `maxResults`, returns
//! `nextToken`), `/UpdateStage`, `/DeleteStage`, `/CreateParticipantToken`. Stages live in memory.
//! Errors carry the `x-amzn-ErrorType` header (the SDK maps errors by it, not by the status) and
//! `{"message", "exceptionMessage"}`: 404 ResourceNotFoundException, 402
//! ServiceQuotaExceededException (CreateStage beyond the stage quota), 429 ThrottlingException
//! and 500 InternalServerException (switches for the next N calls), 400 ValidationException. No signature check. Every request is recorded.

use std::sync::{Arc, Mutex, MutexGuard};

use onair::ivs::arn::{random_id, stage_arn};
use poem::http::StatusCode;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{Request, Response, Server};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The stub's region and account in the ARNs it makes.
pub const STUB_REGION: &str = "us-east-1";
pub const STUB_ACCOUNT: &str = "123456789012";

/// One request the stub received.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// The operation, e.g. `CreateStage` (the path without its `/`).
    pub operation: String,
    /// The JSON body (`Null` when it did not parse).
    pub body: Value,
}

/// A stage as the stub keeps it.
#[derive(Clone, Debug)]
pub struct StubStage {
    pub arn: String,
    pub name: String,
    pub tags: Map<String, Value>,
    pub active_session_id: Option<String>,
    pub events: String,
    pub whip: String,
}

impl StubStage {
    fn to_json(&self) -> Value {
        let mut stage = json!({
            "arn": self.arn,
            "name": self.name,
            "tags": self.tags,
            "endpoints": {
                "events": self.events,
                "whip": self.whip,
                "rtmp": format!("rtmp://{}.global-contribute-staging.live-video.net/app/", self.id()),
                "rtmps": format!("rtmps://{}.global-contribute-staging.live-video.net:443/app/", self.id()),
            },
        });
        if let Some(session) = &self.active_session_id {
            stage["activeSessionId"] = json!(session);
        }
        stage
    }

    fn summary_json(&self) -> Value {
        let mut summary = json!({ "arn": self.arn, "name": self.name, "tags": self.tags });
        if let Some(session) = &self.active_session_id {
            summary["activeSessionId"] = json!(session);
        }
        summary
    }

    fn id(&self) -> &str {
        self.arn.rsplit('/').next().unwrap_or_default()
    }
}

struct State {
    stages: Vec<StubStage>,
    stage_quota: usize,
    max_page_size: usize,
    throttle_next: u32,
    fail_next: u32,
    requests: Vec<RecordedRequest>,
}

/// The running stub; stops when dropped.
pub struct IvsStub {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    state: Arc<Mutex<State>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for IvsStub {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl IvsStub {
    /// Starts a stub with IVS's default quota of 100 stages and pages of at most 100.
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(State {
            stages: Vec::new(),
            stage_quota: 100,
            max_page_size: 100,
            throttle_next: 0,
            fail_next: 0,
            requests: Vec::new(),
        }));
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .expect("bind the IVS stub");
        let port = acceptor.local_addr()[0]
            .as_socket_addr()
            .expect("a TCP address")
            .port();
        let shared = state.clone();
        let endpoint = poem::endpoint::make(move |req: Request| {
            let state = shared.clone();
            async move { handle(&state, req).await }
        });
        let server = tokio::spawn(async move {
            let _ = Server::new_with_acceptor(acceptor).run(endpoint).await;
        });
        Self {
            url: format!("http://127.0.0.1:{port}"),
            state,
            server,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    /// CreateStage answers 402 ServiceQuotaExceededException once `quota` stages exist.
    pub fn set_stage_quota(&self, quota: usize) {
        self.state().stage_quota = quota;
    }

    /// ListStages returns at most `size` stages per page, whatever `maxResults` asks for.
    pub fn set_max_page_size(&self, size: usize) {
        self.state().max_page_size = size.max(1);
    }

    /// The next `n` calls (any operation) answer 429 ThrottlingException.
    pub fn throttle_next(&self, n: u32) {
        self.state().throttle_next = n;
    }

    /// The next `n` calls (any operation) answer 500 InternalServerException.
    pub fn fail_next(&self, n: u32) {
        self.state().fail_next = n;
    }

    /// Marks a stage as having an active session (`activeSessionId`), or none.
    pub fn set_active_session(&self, arn: &str, session: Option<&str>) {
        let mut state = self.state();
        let stage = state
            .stages
            .iter_mut()
            .find(|s| s.arn == arn)
            .expect("a stub stage");
        stage.active_session_id = session.map(str::to_owned);
    }

    /// Adds a stage directly, as if another client had created it; returns it.
    pub fn insert_stage(&self, name: &str) -> StubStage {
        let stage = new_stage(name, Map::new());
        self.state().stages.push(stage.clone());
        stage
    }

    /// Adds a stage with tags directly, as if another client had created it; returns it.
    pub fn insert_stage_with_tags(&self, name: &str, tags: &[(&str, &str)]) -> StubStage {
        let tags = tags
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect();
        let stage = new_stage(name, tags);
        self.state().stages.push(stage.clone());
        stage
    }

    /// The stub's stage with this ARN.
    pub fn stage(&self, arn: &str) -> Option<StubStage> {
        self.state().stages.iter().find(|s| s.arn == arn).cloned()
    }

    /// How many stages the stub holds.
    pub fn stage_count(&self) -> usize {
        self.state().stages.len()
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state().requests.clone()
    }

    /// How many calls of `operation` were received (each SDK attempt counts).
    pub fn calls(&self, operation: &str) -> usize {
        self.state()
            .requests
            .iter()
            .filter(|r| r.operation == operation)
            .count()
    }

    /// The bodies of the `operation` calls received, in order.
    pub fn bodies(&self, operation: &str) -> Vec<Value> {
        self.state()
            .requests
            .iter()
            .filter(|r| r.operation == operation)
            .map(|r| r.body.clone())
            .collect()
    }
}

fn new_stage(name: &str, tags: Map<String, Value>) -> StubStage {
    let id = random_id(12);
    StubStage {
        arn: stage_arn(STUB_REGION, STUB_ACCOUNT, &id),
        name: name.to_owned(),
        tags,
        active_session_id: None,
        events: "wss://global.events.live-video.net".to_owned(),
        whip: format!(
            "https://{}.global-bm.whip.live-video.net",
            id.to_lowercase()
        ),
    }
}

fn ok(body: Value) -> Response {
    Response::builder()
        .status(StatusCode::OK)
        .content_type("application/json")
        .body(body.to_string())
}

fn error(status: u16, code: &str, message: &str) -> Response {
    Response::builder()
        .status(StatusCode::from_u16(status).expect("a status"))
        .content_type("application/json")
        .header("x-amzn-ErrorType", code)
        .body(json!({ "message": message, "exceptionMessage": message }).to_string())
}

fn not_found(arn: &str) -> Response {
    error(
        404,
        "ResourceNotFoundException",
        &format!("stage {arn} not found"),
    )
}

fn validation(message: &str) -> Response {
    error(400, "ValidationException", message)
}

async fn handle(state: &Mutex<State>, req: Request) -> Response {
    let operation = req.uri().path().trim_start_matches('/').to_owned();
    let method = req.method().clone();
    let bytes = req
        .into_body()
        .into_bytes()
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    let body: Value = if bytes.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    };

    let mut state = state.lock().unwrap();
    state.requests.push(RecordedRequest {
        operation: operation.clone(),
        body: body.clone(),
    });
    if state.throttle_next > 0 {
        state.throttle_next -= 1;
        return error(429, "ThrottlingException", "Rate exceeded");
    }
    if state.fail_next > 0 {
        state.fail_next -= 1;
        return error(500, "InternalServerException", "internal failure");
    }
    if method != poem::http::Method::POST {
        return validation("only POST operations are stubbed");
    }
    let Value::Object(input) = body else {
        return validation("the body is not a JSON object");
    };
    let text = |field: &str| input.get(field).and_then(Value::as_str).map(str::to_owned);

    match operation.as_str() {
        "CreateStage" => {
            if state.stages.len() >= state.stage_quota {
                return error(
                    402,
                    "ServiceQuotaExceededException",
                    &format!("stage quota of {} reached", state.stage_quota),
                );
            }
            let tags = input
                .get("tags")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let stage = new_stage(&text("name").unwrap_or_default(), tags);
            state.stages.push(stage.clone());
            ok(json!({ "stage": stage.to_json(), "participantTokens": [] }))
        }
        "GetStage" => {
            let arn = text("arn").unwrap_or_default();
            match state.stages.iter().find(|s| s.arn == arn) {
                Some(stage) => ok(json!({ "stage": stage.to_json() })),
                None => not_found(&arn),
            }
        }
        "UpdateStage" => {
            let arn = text("arn").unwrap_or_default();
            let name = text("name");
            match state.stages.iter_mut().find(|s| s.arn == arn) {
                Some(stage) => {
                    if let Some(name) = name {
                        stage.name = name;
                    }
                    ok(json!({ "stage": stage.to_json() }))
                }
                None => not_found(&arn),
            }
        }
        "DeleteStage" => {
            let arn = text("arn").unwrap_or_default();
            let before = state.stages.len();
            state.stages.retain(|s| s.arn != arn);
            if state.stages.len() == before {
                not_found(&arn)
            } else {
                ok(json!({}))
            }
        }
        "ListStages" => {
            let requested = match input.get("maxResults") {
                None => 50,
                Some(v) => match v.as_u64() {
                    Some(n @ 1..=100) => n as usize,
                    _ => return validation("maxResults must be 1-100"),
                },
            };
            let start = match text("nextToken") {
                None => 0,
                Some(token) => match token.parse::<usize>() {
                    Ok(n) => n,
                    Err(_) => return validation("bad nextToken"),
                },
            };
            let size = requested.min(state.max_page_size);
            let page: Vec<Value> = state
                .stages
                .iter()
                .skip(start)
                .take(size)
                .map(StubStage::summary_json)
                .collect();
            let mut answer = json!({ "stages": page });
            if start + size < state.stages.len() {
                answer["nextToken"] = json!((start + size).to_string());
            }
            ok(answer)
        }
        "CreateParticipantToken" => {
            let arn = text("stageArn").unwrap_or_default();
            if !state.stages.iter().any(|s| s.arn == arn) {
                return not_found(&arn);
            }
            let duration = match input.get("duration") {
                None => 720,
                Some(v) => match v.as_i64() {
                    Some(n @ 1..=20160) => n,
                    _ => return validation("duration must be 1-20160 minutes"),
                },
            };
            let participant_id = random_id(12);
            let expiration = (OffsetDateTime::now_utc() + time::Duration::minutes(duration))
                .replace_nanosecond(0)
                .expect("zero nanoseconds")
                .format(&Rfc3339)
                .expect("an RFC 3339 time");
            let capabilities = input
                .get("capabilities")
                .cloned()
                .unwrap_or_else(|| json!(["PUBLISH", "SUBSCRIBE"]));
            ok(json!({
                "participantToken": {
                    "participantId": participant_id,
                    "token": format!("stub-token-{participant_id}"),
                    "userId": text("userId").unwrap_or_default(),
                    "attributes": input.get("attributes").cloned().unwrap_or_else(|| json!({})),
                    "duration": duration,
                    "capabilities": capabilities,
                    "expirationTime": expiration,
                }
            }))
        }
        other => validation(&format!("operation {other} is not stubbed")),
    }
}
