//! `GET /health` (docs/operations.md#health-and-metrics): open, no API key.

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
    /// Whether this instance applies it now (holds its leader lock); one worker does at a time.
    pub leader: bool,
}

/// The NATS server this instance is connected to (from the server's `INFO`).
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct NatsServerHealth {
    /// The node's `server_name`, e.g. `onair-nats-2`.
    pub name: String,
    /// `nats://<host>:<port>` of the node's client listener.
    pub url: String,
    /// The node's cluster name; absent on a single node.
    #[oai(nullable)]
    pub cluster: Option<String>,
    /// nats-server's version.
    pub version: String,
}

/// A follower replica of the `ONAIR` stream.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct StreamPeerHealth {
    /// The node's `server_name`.
    pub name: String,
    /// `current`, `lagging` or `offline`.
    pub state: String,
    /// Operations behind the leader; absent when unknown.
    #[oai(nullable)]
    pub lag: Option<u64>,
    /// Milliseconds since the leader last heard from it.
    pub active_ms: u64,
}

/// The replica state of the `ONAIR` stream (the stream info's `cluster` block).
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct StreamHealth {
    /// Replicas configured (`ONAIR_STREAM_REPLICAS`).
    pub replicas: u64,
    /// `server_name` of the node leading the stream; absent while an election runs.
    #[oai(nullable)]
    pub leader: Option<String>,
    /// Followers caught up with the leader.
    pub current: u64,
    /// Followers behind the leader.
    pub lagging: u64,
    /// Followers the group considers offline.
    pub offline: u64,
    /// Each follower (the leader is not listed).
    pub peers: Vec<StreamPeerHealth>,
}

/// A follower of the stream in this instance: the stage pool, chat rules and sessions, and the
/// projectors it leads (`event_store::followers`).
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct FollowerHealth {
    /// e.g. `pool`, `pool-heartbeats`, `chat-rules`, `chat-sessions`, `projector-viewers`.
    pub name: String,
    /// Stream sequence of the last event it applied.
    pub applied_sequence: u64,
    /// Events of its subjects stored but not applied yet (0 when caught up).
    pub lag_events: u64,
    /// Seconds it has been behind the stream (0 when caught up); over 5 s makes `status`
    /// `degraded`.
    pub lag_seconds: f64,
    /// Times its consumer stopped delivering while the stream moved on and was recreated.
    pub stalls: u64,
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
    /// `ok`, or `degraded` when something needs attention (see `reasons`): a service or an
    /// essential background task is down (HTTP 503), or the instance serves but the stream runs
    /// with fewer replicas than `ONAIR_STREAM_REPLICAS`, a replica is offline or lagging, or a
    /// follower lags more than 5 s (HTTP 200).
    pub status: String,
    /// Why `status` is `degraded`, one sentence each; empty when `ok`.
    pub reasons: Vec<String>,
    /// RFC 3339 UTC with ms.
    pub timestamp: String,
    /// Seconds since this instance started.
    pub uptime: u64,
    /// States of NATS, Postgres and IVS.
    pub services: ServiceStates,
    /// The stage provider in use (`local` or `aws`).
    pub stage_provider: String,
    /// The NATS server this instance is connected to; absent while disconnected.
    #[oai(nullable)]
    pub nats_server: Option<NatsServerHealth>,
    /// The stream's replicas; absent when the stream info cannot be read within 2 s.
    #[oai(nullable)]
    pub stream: Option<StreamHealth>,
    /// Per projection.
    pub projections: BTreeMap<String, ProjectionLag>,
    /// This instance's background tasks, by name.
    pub tasks: Vec<TaskHealth>,
    /// This instance's followers of the stream, with their lag.
    pub followers: Vec<FollowerHealth>,
}

/// Answer of `GET /health`: 200 when NATS and Postgres are up and the essential background tasks
/// (the pool follower, chat's tasks) run, else 503 with the same body. A 200 may still say
/// `degraded` (the stream's replicas, a lagging follower): the instance serves, an operator
/// should look.
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
    /// States of NATS, Postgres and the stage provider, the NATS server this instance is connected
    /// to, the stream's replicas, and each projector's lag. No API key needed.
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
            tokio::time::timeout(Duration::from_secs(2), state.store.stream())
                .await
                .ok()
                .and_then(|r| r.ok())
        } else {
            None
        };
        let nats_server = nats_up.then(|| {
            let server = read_models::health::nats_server(state.store.client());
            NatsServerHealth {
                name: server.name,
                url: server.url,
                cluster: server.cluster,
                version: server.version,
            }
        });
        let stream_health = stream.as_ref().map(|stream| {
            let replicas = read_models::health::stream_replicas(stream);
            StreamHealth {
                replicas: replicas.configured as u64,
                current: replicas.count("current") as u64,
                lagging: replicas.count("lagging") as u64,
                offline: replicas.count("offline") as u64,
                leader: replicas.leader,
                peers: replicas
                    .peers
                    .into_iter()
                    .map(|p| StreamPeerHealth {
                        name: p.name,
                        state: p.state.to_owned(),
                        lag: p.lag,
                        active_ms: p.active_ms,
                    })
                    .collect(),
            }
        });
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
                    leader: state.projection_leaders.leads(name),
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
        let essentials = state.supervisor.essentials_running();
        let up = nats_up && pg_up && essentials;
        let followers: Vec<FollowerHealth> = state
            .store
            .followers()
            .statuses()
            .into_iter()
            .map(|f| FollowerHealth {
                name: f.name,
                applied_sequence: f.applied_sequence,
                lag_events: f.lag_events,
                lag_seconds: (f.lag_seconds * 10.0).round() / 10.0,
                stalls: f.stalls,
            })
            .collect();
        let mut reasons = Vec::new();
        if !nats_up {
            reasons.push("NATS is disconnected".to_owned());
        }
        if !pg_up {
            reasons.push("Postgres does not answer".to_owned());
        }
        if !essentials {
            reasons.push("an essential background task is not running".to_owned());
        }
        if let Some(stream) = &stream_health {
            reasons.extend(stream_reasons(stream, state.stream_replicas));
        }
        for f in &followers {
            if f.lag_seconds > crate::event_store::followers::DEGRADED_AFTER.as_secs_f64() {
                reasons.push(format!(
                    "follower {} lags {:.0} s ({} events)",
                    f.name, f.lag_seconds, f.lag_events
                ));
            }
        }

        let status = |up: bool| if up { "connected" } else { "disconnected" }.to_owned();
        let health = Health {
            status: if reasons.is_empty() { "ok" } else { "degraded" }.to_owned(),
            reasons,
            timestamp: now_timestamp(&state.clock),
            uptime: state.started_at.elapsed().as_secs(),
            services: ServiceStates {
                nats: status(nats_up),
                postgres: status(pg_up),
                ivs: "ready".to_owned(),
            },
            stage_provider: state.provider_name.to_owned(),
            nats_server,
            stream: stream_health,
            projections: lags,
            tasks,
            followers,
        };
        if up {
            HealthResponse::Ok(Json(health))
        } else {
            HealthResponse::Degraded(Json(health))
        }
    }
}

/// What is wrong with the stream's replication: fewer replicas than `expected`
/// (`ONAIR_STREAM_REPLICAS`), no leader, or followers offline or lagging. Also sets the
/// `onair_stream_*` gauges.
fn stream_reasons(stream: &StreamHealth, expected: usize) -> Vec<String> {
    metrics::gauge!("onair_stream_replicas").set(stream.replicas as f64);
    metrics::gauge!("onair_stream_replicas_expected").set(expected as f64);
    metrics::gauge!("onair_stream_replicas_offline").set(stream.offline as f64);
    metrics::gauge!("onair_stream_replicas_lagging").set(stream.lagging as f64);
    let mut reasons = Vec::new();
    if (stream.replicas as usize) < expected {
        reasons.push(format!(
            "the stream runs with {} replicas; ONAIR_STREAM_REPLICAS is {expected}",
            stream.replicas
        ));
    }
    if stream.replicas > 1 && stream.leader.is_none() {
        reasons.push("the stream has no leader (an election is running)".to_owned());
    }
    if stream.offline > 0 {
        reasons.push(format!("{} stream replicas are offline", stream.offline));
    }
    if stream.lagging > 0 {
        reasons.push(format!("{} stream replicas are lagging", stream.lagging));
    }
    reasons
}
