//! What `GET /health` asks Postgres and NATS.

use std::time::Duration;

use async_nats::jetstream::stream::Stream;
use sqlx::PgPool;

/// Whether Postgres answers a trivial query within `within` (`postgres` of `/health`).
pub async fn postgres_answers(db: &PgPool, within: Duration) -> bool {
    tokio::time::timeout(within, sqlx::query("SELECT 1").execute(db))
        .await
        .is_ok_and(|r| r.is_ok())
}

/// The NATS server this instance's connection is on, from the server's `INFO` (async-nats
/// `Client::server_info`): after a failover it names the node the client reconnected to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NatsServer {
    /// `server_name` of the node, e.g. `onair-nats-2` (`nats/cluster/node-2.conf`).
    pub name: String,
    /// `nats://<host>:<port>` as the node announces its client listener.
    pub url: String,
    /// The node's cluster name (`onair` in `nats/cluster/`); absent on a single node.
    pub cluster: Option<String>,
    /// nats-server's version, e.g. `2.12.1`.
    pub version: String,
}

/// The NATS server the client is connected to (the last `INFO` it received).
pub fn nats_server(client: &async_nats::Client) -> NatsServer {
    let info = client.server_info();
    NatsServer {
        name: info.server_name,
        url: format!("nats://{}:{}", info.host, info.port),
        cluster: info.cluster.filter(|c| !c.is_empty()),
        version: info.version,
    }
}

/// One replica of the stream as its RAFT group reports it (the stream info's `cluster` block).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamPeer {
    /// The node's `server_name`.
    pub name: String,
    /// `current` (caught up with the leader), `lagging` (behind by `lag` operations) or
    /// `offline` (the group considers it gone).
    pub state: &'static str,
    /// Operations behind the leader (absent when the server does not say).
    pub lag: Option<u64>,
    /// Milliseconds since the leader last heard from it.
    pub active_ms: u64,
}

/// The `ONAIR` stream's replicas: who leads, and the state of each follower.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamReplicas {
    /// Replicas configured (`num_replicas`, `ONAIR_STREAM_REPLICAS`).
    pub configured: usize,
    /// `server_name` of the node leading the stream (absent while an election runs).
    pub leader: Option<String>,
    /// The followers (the leader is not listed).
    pub peers: Vec<StreamPeer>,
}

impl StreamReplicas {
    /// Followers in the given state (`current`, `lagging` or `offline`).
    pub fn count(&self, state: &str) -> usize {
        self.peers.iter().filter(|p| p.state == state).count()
    }
}

/// The replica state of `stream` from the info fetched with it (`Stream::cached_info`).
pub fn stream_replicas(stream: &Stream) -> StreamReplicas {
    let info = stream.cached_info();
    let cluster = info.cluster.as_ref();
    StreamReplicas {
        configured: info.config.num_replicas,
        leader: cluster.and_then(|c| c.leader.clone()),
        peers: cluster
            .map(|c| {
                c.replicas
                    .iter()
                    .map(|p| StreamPeer {
                        name: p.name.clone(),
                        state: if p.offline {
                            "offline"
                        } else if p.current {
                            "current"
                        } else {
                            "lagging"
                        },
                        lag: p.lag,
                        active_ms: p.active.as_millis() as u64,
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}
