//! Chat fan-out benchmark: one room, `--listeners` verified sockets, `--messages` chat messages
//! said one after another by a member; prints how long a message takes from `say` to each
//! listener (p50, p99, max) and the deliveries per second.
//!
//! Runs the server in-process against running services (e.g. the ones `scripts/dev` starts):
//!
//! ```text
//! cargo run --release --example chat_bench -- \
//!   --database-url postgres://postgres@127.0.0.1:55432/onair --nats-url nats://127.0.0.1:4222 \
//!   --listeners 200 --messages 300
//! ```
//!
//! It registers members `bench-<run>-<n>@bench.agent` in that database and publishes events to that
//! stream; use a development database.

use std::time::{Duration, Instant};

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use onair::domain::member::{MemberId, Role, chatroom_name};
use onair::runtime::config::ServeSettings;
use onair::runtime::startup::Application;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser)]
struct Args {
    #[arg(long)]
    database_url: String,
    #[arg(long)]
    nats_url: String,
    #[arg(long, default_value_t = 200)]
    listeners: usize,
    #[arg(long, default_value_t = 300)]
    messages: usize,
    /// Says sent before waiting for the first answer (1: one after another).
    #[arg(long, default_value_t = 1)]
    pipeline: usize,
}

/// CPU seconds this process has used (user + system), from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .map(|(_, rest)| rest.split(' ').collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn socket(port: u16, room: &str, member: &str, token: &str) -> Ws {
    // Browsers disable Nagle's algorithm on WebSockets; so does this client.
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(
        format!("ws://127.0.0.1:{port}/primus"),
        None,
        true,
    )
    .await
    .expect("connect");
    for frame in [
        json!({"event": "roomAdd", "room": room, "messageId": 1}),
        json!({"event": "action", "messageId": 2, "params": {"action": "verify",
               "memberID": member, "chatroom": room, "Authorization": token}}),
    ] {
        ws.send(Message::Text(frame.to_string().into()))
            .await
            .unwrap();
    }
    // Read until the verify answer.
    while let Some(Ok(Message::Text(t))) = ws.next().await {
        let v: Value = serde_json::from_str(&t).unwrap_or(Value::Null);
        if v["messageId"] == 2 {
            assert_eq!(v["verified"], true, "{v}");
            break;
        }
    }
    ws
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut settings = ServeSettings::with_connection(&args.database_url, &args.nats_url);
    settings.listen = "127.0.0.1:0".parse()?;
    settings.chat_messages_per_minute = 1_000_000;
    // Every listener comes from this one loopback address: lift the per-IP socket limits.
    settings.ws_max_sockets_per_ip = u32::MAX;
    settings.ws_new_sockets_per_ip_per_second = u32::MAX;
    let app = Application::build(settings).await?;
    let port = app.port();
    let state = app.state();
    tokio::spawn(app.run_until_stopped(std::future::pending()));

    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let streamer = MemberId::parse(&format!("bench-{run}-star@bench.agent"), "id")?;
    let room = chatroom_name(streamer.agent_id(), &streamer);
    let now = time::OffsetDateTime::now_utc();
    let mut members = Vec::new();
    for n in 0..=args.listeners {
        let id = format!("bench-{run}-{n}@bench.agent");
        onair::commands::members::register(
            &state.db,
            &state.store,
            onair::commands::members::NewMember::new(
                MemberId::parse(&id, "id")?,
                Role::Member,
                "bench-password",
                &format!("b{n}"),
            ),
            now,
        )
        .await?;
        let token = state.member_tokens.issue(&id, Role::Member, 0, now).token;
        members.push((id, token));
    }
    eprintln!("{} members registered; opening sockets", members.len());
    let (speaker_id, speaker_token) = members.pop().unwrap();
    let mut speaker = socket(port, &room, &speaker_id, &speaker_token).await;
    let mut listeners = Vec::new();
    for (id, token) in &members {
        listeners.push(socket(port, &room, id, token).await);
    }
    eprintln!(
        "{} listeners verified; saying {} messages",
        listeners.len(),
        args.messages
    );

    let started = Instant::now();
    let epoch = Instant::now();
    let expected = args.messages;
    let mut readers = Vec::new();
    for mut ws in listeners {
        readers.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(expected);
            while latencies.len() < expected {
                let Ok(Some(Ok(Message::Text(t)))) =
                    tokio::time::timeout(Duration::from_secs(30), ws.next()).await
                else {
                    break;
                };
                let v: Value = serde_json::from_str(&t).unwrap_or(Value::Null);
                if v["context"] != "user" {
                    continue;
                }
                let message: Value = serde_json::from_str(v["message"].as_str().unwrap_or("{}"))
                    .unwrap_or(Value::Null);
                if message["type"] == "chat"
                    && let Some(sent) = message["text"].as_str().and_then(|t| t.parse::<u64>().ok())
                {
                    latencies.push(epoch.elapsed().as_micros() as u64 - sent);
                }
            }
            latencies
        }));
    }
    let cpu_started = cpu_seconds();
    let say = |n: usize| {
        let text = epoch.elapsed().as_micros().to_string();
        let said = json!({"event": "say", "room": room, "messageId": 100 + n, "message":
            json!({"type": "chat", "memberID": speaker_id, "name": "s", "text": text,
                   "textColor": "#FFF"}).to_string()});
        Message::Text(said.to_string().into())
    };
    // Keep `pipeline` says unanswered at most; answers come in order.
    let mut sent = 0;
    for n in 0..args.messages {
        while sent < args.messages && sent < n + args.pipeline.max(1) {
            speaker.send(say(sent)).await?;
            sent += 1;
        }
        while let Some(Ok(Message::Text(t))) = speaker.next().await {
            let v: Value = serde_json::from_str(&t).unwrap_or(Value::Null);
            if v["messageId"] == json!(100 + n) {
                assert_eq!(v["status"], "OK", "{v}");
                break;
            }
        }
    }
    let said_in = started.elapsed();
    let mut all = Vec::new();
    for r in readers {
        all.extend(r.await?);
    }
    let elapsed = started.elapsed();
    let cpu = cpu_seconds() - cpu_started;
    all.sort_unstable();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)] as f64 / 1000.0;
    println!(
        "listeners={} messages={} deliveries={} (expected {}) in {:.2} s: {:.0} deliveries/s, \
         say->delivery p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; says answered {:.0}/s; \
         process CPU {:.2} s ({:.0} deliveries per CPU-second)",
        members.len(),
        args.messages,
        all.len(),
        members.len() * args.messages,
        elapsed.as_secs_f64(),
        all.len() as f64 / elapsed.as_secs_f64(),
        pct(0.50),
        pct(0.99),
        pct(1.0),
        args.messages as f64 / said_in.as_secs_f64(),
        cpu,
        all.len() as f64 / cpu.max(0.001),
    );
    Ok(())
}
