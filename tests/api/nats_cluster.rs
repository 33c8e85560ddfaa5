//! Three nats-server nodes with JetStream in one cluster on loopback, for the tests of a
//! replicated stream.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use async_nats::jetstream;

use crate::helpers::{TempDir, eventually, free_port};

/// A client of every server in `urls` (comma-separated).
pub async fn connect(urls: &str) -> async_nats::Client {
    let servers: Vec<async_nats::ServerAddr> =
        urls.split(',').map(|u| u.parse().unwrap()).collect();
    async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connect(servers)
        .await
        .unwrap()
}

/// Three nats-server nodes with JetStream in one cluster, on loopback; killed on drop.
pub struct NatsCluster {
    nodes: Vec<Option<Child>>,
    pub ports: Vec<u16>,
    _dirs: Vec<TempDir>,
}

impl NatsCluster {
    pub async fn start() -> Self {
        let binary =
            std::env::var("ONAIR_TEST_NATS_SERVER").unwrap_or_else(|_| "nats-server".into());
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let routes: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let name = format!("t{}", uuid::Uuid::new_v4().simple());
        let mut nodes = Vec::new();
        let mut dirs = Vec::new();
        for i in 0..3 {
            let dir = TempDir::new("onair-nats-cluster");
            let others: Vec<String> = (0..3)
                .filter(|&j| j != i)
                .map(|j| format!("nats-route://127.0.0.1:{}", routes[j]))
                .collect();
            let child = Command::new(&binary)
                .args(["-js", "-a", "127.0.0.1", "-p", &ports[i].to_string()])
                .args(["--server_name", &format!("{name}-{i}")])
                .args(["--cluster_name", &name])
                .args(["--cluster", &format!("nats://127.0.0.1:{}", routes[i])])
                .args(["--routes", &others.join(",")])
                .arg("-sd")
                .arg(&dir.0)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("nats-server starts; run the tests with scripts/test");
            nodes.push(Some(child));
            dirs.push(dir);
        }
        let cluster = Self {
            nodes,
            ports,
            _dirs: dirs,
        };
        // JetStream is ready once the meta group has a leader: a stream can be created.
        let client = connect(&cluster.url()).await;
        let js = jetstream::new(client);
        eventually(Duration::from_secs(30), || async {
            js.query_account().await.ok().map(|_| ())
        })
        .await;
        cluster
    }

    /// Every node's client URL, comma-separated (as `ONAIR_NATS_URL` takes them).
    pub fn url(&self) -> String {
        self.ports
            .iter()
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn kill(&mut self, node: usize) {
        if let Some(mut child) = self.nodes[node].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..3 {
            self.kill(i);
        }
    }
}
