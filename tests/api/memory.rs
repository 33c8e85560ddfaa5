//! Memory given back: a server that held 5,000 chat sockets in one room and hashed a burst of
//! passwords (Argon2, 19 MiB each) returns to within 25 % of its resident memory before them,
//! within 30 s of the last close (src/runtime/memory.rs). The server runs as its own process, so
//! its RSS is its own.

use std::process::Stdio;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use futures_util::{StreamExt, stream};
use serde_json::{Value, json};

use crate::chat_support::ChatClient;
use crate::helpers::{Services, free_port};

const SOCKETS: usize = 5_000;
const REGISTRATIONS: usize = 12;
const STAR: &str = "star@memory.site";
const ROOM: &str = "chatroomSystem-chatroom-memory.site-star@memory.site";
const PASSWORD: &str = "Memory-test-pass1";

fn onair(services: &Services) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_onair"));
    command
        .env("ONAIR_DATABASE_URL", &services.database_url)
        .env("ONAIR_NATS_URL", &services.nats.url)
        .env("ONAIR_LOG", "warn")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

/// The process's resident memory, in bytes (`VmRSS` of /proc/PID/status).
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// RSS once it has stopped moving (two readings 1 s apart within 2 %), at most 10 s.
async fn settled_rss(pid: u32) -> u64 {
    let mut last = rss(pid);
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = rss(pid);
        if now.abs_diff(last) * 50 <= last {
            return now;
        }
        last = now;
    }
    last
}

async fn post(client: &reqwest::Client, url: String, body: Value) -> Value {
    let answer = client.post(&url).json(&body).send().await.unwrap();
    let status = answer.status();
    let body: Value = answer.json().await.unwrap();
    assert_eq!(status, 200, "{url}: {body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_returns_near_its_base_after_5000_sockets_close_and_a_burst_of_registrations() {
    let services = Services::start().await;
    let status = onair(&services).arg("migrate").status().await.unwrap();
    assert!(status.success());
    let created = onair(&services)
        .args(["operator", "create", "--website", "memory.site"])
        .stdout(Stdio::piped())
        .output()
        .await
        .unwrap();
    assert!(created.status.success());
    let operator_key = String::from_utf8(created.stdout).unwrap().trim().to_owned();

    let port = free_port();
    let address = format!("http://127.0.0.1:{port}");
    let server = onair(&services)
        .arg("serve")
        .env("ONAIR_LISTEN", format!("127.0.0.1:{port}"))
        .env("ONAIR_WS_MAX_SOCKETS_PER_IP", "100000")
        .env("ONAIR_WS_NEW_SOCKETS_PER_IP_PER_SECOND", "100000")
        .env("ONAIR_MEMORY_TRIM_INTERVAL_MS", "500")
        .spawn()
        .unwrap();
    let pid = server.id().unwrap();
    let client = reqwest::Client::new();
    let started = Instant::now();
    while client
        .get(format!("{address}/health"))
        .send()
        .await
        .is_err()
    {
        assert!(started.elapsed() < Duration::from_secs(60), "no server");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Members, created through the back office (each password hashed with Argon2).
    let create = |member: String, role: &'static str| {
        let (client, url) = (
            client.clone(),
            format!("{address}/api/backoffice/CreateMember"),
        );
        let key = operator_key.clone();
        async move {
            let body = json!({"website": "memory.site", "key": key, "memberID": member,
                              "password": PASSWORD, "role": role, "nickname": "m"});
            post(&client, url, body).await;
        }
    };
    create(STAR.to_owned(), "streamer").await;
    let query = json!({"memberID": STAR, "password": PASSWORD}).to_string();
    let login = format!("{address}/api/action/loginStreamer");
    let token = post(&client, login, json!({ "query": query })).await["data"]["Authorization"]
        .as_str()
        .unwrap()
        .to_owned();

    // Warm up what every server keeps (pools, caches, the first sockets), then measure the base.
    let mut speaker = ChatClient::verified(&address, ROOM, STAR, &token).await;
    for _ in 0..20 {
        let mut warm = ChatClient::connect(&address, "").await;
        warm.room_add(ROOM).await;
    }
    let before = settled_rss(pid).await;

    let listeners: Vec<ChatClient> = stream::iter(0..SOCKETS)
        .map(|_| {
            let address = address.clone();
            async move {
                let mut listener = ChatClient::connect(&address, "").await;
                let joined = listener.room_add(ROOM).await;
                assert_eq!(joined["status"], "OK", "{joined}");
                listener
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let said = speaker.chat(ROOM, STAR, "to all 5,000").await;
    assert_eq!(said["status"], "OK", "{said}");
    let listeners = join_all(listeners.into_iter().map(|mut l| async move {
        let (_, message) = l.said("chat").await;
        assert_eq!(message["text"], "to all 5,000");
        l
    }))
    .await;
    // A burst of registrations: each Argon2 hash holds 19 MiB while it runs.
    join_all((0..REGISTRATIONS).map(|i| create(format!("fan-{i}@memory.site"), "member"))).await;
    let peak = rss(pid);
    drop(listeners);
    drop(speaker);

    let closed = Instant::now();
    let mut after = rss(pid);
    while after > before + before / 4 && closed.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        after = rss(pid);
    }
    let mib = |b: u64| b / (1 << 20);
    assert!(
        after <= before + before / 4,
        "RSS {} MiB before, {} MiB at the peak, still {} MiB 30 s after the sockets closed",
        mib(before),
        mib(peak),
        mib(after)
    );
    assert!(
        peak > before + before / 4,
        "the load did not raise RSS ({} → {} MiB): the test measured nothing",
        mib(before),
        mib(peak)
    );
}
