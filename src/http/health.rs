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
use crate::projections;

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

/// Answer of `GET /health` (not wrapped in the success envelope).
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct Health {
    /// `ok`, or `degraded` when a service is down.
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
}

/// Answer of `GET /health`: 200 when NATS and Postgres are up, else 503 with the same body.
#[derive(ApiResponse)]
pub enum HealthResponse {
    /// Every service is up.
    #[oai(status = 200)]
    Ok(Json<Health>),
    /// NATS or Postgres is down.
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
        let pg_up = tokio::time::timeout(
            Duration::from_secs(2),
            sqlx::query("SELECT 1").execute(&state.db),
        )
        .await
        .is_ok_and(|r| r.is_ok());

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

        let status = |up: bool| if up { "connected" } else { "disconnected" }.to_owned();
        let health = Health {
            status: if nats_up && pg_up { "ok" } else { "degraded" }.to_owned(),
            timestamp: now_timestamp(),
            uptime: state.started_at.elapsed().as_secs(),
            services: ServiceStates {
                nats: status(nats_up),
                postgres: status(pg_up),
                ivs: "ready".to_owned(),
            },
            stage_provider: state.provider_name.to_owned(),
            projections: lags,
        };
        if nats_up && pg_up {
            HealthResponse::Ok(Json(health))
        } else {
            HealthResponse::Degraded(Json(health))
        }
    }
}
