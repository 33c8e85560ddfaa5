//! `GET /health` (seeds/ivs-api.md "健康檢查"): open, no API key.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::common::now_timestamp;
use super::tags::ApiTags;
use crate::app::AppState;
use crate::{projections, read_models};

/// States of the services onair depends on.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct ServiceStates {
    /// `connected` or `disconnected`.
    pub nats: String,
    /// `connected` or `disconnected`.
    pub postgres: String,
    /// `ready` (the stage provider: `local` or `aws`).
    pub ivs: String,
}

/// A projector's progress.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct ProjectionLag {
    /// Last stream sequence applied to the read model.
    pub checkpoint: u64,
    /// Events of its subjects stored but not yet applied (the lag, in events); absent when unknown.
    #[oai(nullable)]
    pub pending: Option<u64>,
}

/// A background task of this instance, as its supervisor sees it.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct TaskHealth {
    /// The task, e.g. `pool-follower`, `reactor-expiry`, `projector-stages`, `chat-0`.
    pub name: String,
    /// `running`, `restarting` (it stopped and starts again after a backoff), `failed` (it stopped
    /// and cannot restart: the instance is stopping) or `stopped` (on purpose).
    pub state: String,
    /// Restarts since the instance started.
    pub restarts: u32,
    /// Why it last stopped (`returned`, or the panic's message); absent until it stops.
    #[oai(nullable)]
    pub last_error: Option<String>,
}

/// Answer of `GET /health` (not wrapped in the success envelope).
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct Health {
    /// `ok`, or `degraded` when a service or an essential background task is down.
    pub status: String,
    /// RFC 3339 UTC with ms.
    pub timestamp: String,
    /// Seconds since this instance started.
    pub uptime: u64,
    /// States of NATS, Postgres and IVS.
    pub services: ServiceStates,
    /// The stage provider in use (`local` or `aws`).
    pub stage_provider: String,
    /// Per projection.
    pub projections: BTreeMap<String, ProjectionLag>,
    /// This instance's background tasks, by name.
    pub tasks: Vec<TaskHealth>,
}

/// Answer of `GET /health`: 200 when NATS and Postgres are up and the essential background tasks
/// (the pool follower, chat's tasks) run, else 503 with the same body.
#[derive(ApiResponse)]
pub enum HealthResponse {
    /// Every service is up.
    #[oai(status = 200)]
    Ok(Json<Health>),
    /// NATS or Postgres is down, or an essential background task is not running.
    #[oai(status = 503)]
    Degraded(Json<Health>),
}

/// `GET /health`, open without an API key.
#[derive(Default)]
pub struct HealthApi;

#[OpenApi]
impl HealthApi {
    /// Service health
    ///
    /// States of NATS, Postgres and the stage provider, and each projector's lag. No API key needed.
    #[oai(
        path = "/health",
        method = "get",
        tag = "ApiTags::Health",
        operation_id = "getHealth"
    )]
    async fn health(&self, state: Data<&Arc<AppState>>) -> HealthResponse {
        let state = &*state;
        let nats_up =
            state.store.client().connection_state() == async_nats::connection::State::Connected;
        let pg_up = read_models::health::postgres_answers(&state.db, Duration::from_secs(2)).await;

        let mut lags = BTreeMap::new();
        let stream = if nats_up {
            state.store.stream().await.ok()
        } else {
            None
        };
        for name in &state.projection_names {
            let checkpoint = if pg_up {
                projections::checkpoint(&state.db, name).await.unwrap_or(0)
            } else {
                0
            };
            let pending = match &stream {
                Some(stream) => projections::consumer_backlog(stream, name).await,
                None => None,
            };
            lags.insert(
                name.to_string(),
                ProjectionLag {
                    checkpoint,
                    pending,
                },
            );
        }

        let tasks = state
            .supervisor
            .statuses()
            .into_iter()
            .map(|t| TaskHealth {
                name: t.name,
                state: t.state.as_str().to_owned(),
                restarts: t.restarts,
                last_error: t.last_error,
            })
            .collect();
        let up = nats_up && pg_up && state.supervisor.essentials_running();

        let status = |up: bool| if up { "connected" } else { "disconnected" }.to_owned();
        let health = Health {
            status: if up { "ok" } else { "degraded" }.to_owned(),
            timestamp: now_timestamp(&state.clock),
            uptime: state.started_at.elapsed().as_secs(),
            services: ServiceStates {
                nats: status(nats_up),
                postgres: status(pg_up),
                ivs: "ready".to_owned(),
            },
            stage_provider: state.provider_name.to_owned(),
            projections: lags,
            tasks,
        };
        if up {
            HealthResponse::Ok(Json(health))
        } else {
            HealthResponse::Degraded(Json(health))
        }
    }
}
