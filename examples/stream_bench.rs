//! Event-stream tools benchmark: writes a workload through the HTTP API (viewer seats,
//! heartbeats and leaves on the Stage API, gifts on the client gateway), waits for the read models, then
//! times `events export`, `audit`, `replay --all` and, given an empty second NATS, `events import`
//! of the export. Prints events per second for each.
//!
//! Runs the server in-process against running services (e.g. the ones `scripts/dev` starts):
//!
//! ```text
//! cargo run --release --example stream_bench -- \
//!   --database-url postgres://postgres@127.0.0.1:25432/onair --nats-url nats://127.0.0.1:4222 \
//!   --viewers 2000 --gifts 20000 [--import-nats-url nats://127.0.0.1:4333]
//! ```
//!
//! The figures cover the whole stream, so use a fresh development stream and database for
//! comparable runs; it registers members `bench-<run>-<n>@bench.agent` and an API key.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use onair::domain::member::{MemberId, Role};
use onair::server::config::ServeSettings;
use onair::server::startup::Application;
use serde_json::json;

#[derive(Parser)]
struct Args {
    #[arg(long)]
    database_url: String,
    #[arg(long)]
    nats_url: String,
    /// Viewers seated, each followed by one heartbeat and a leave.
    #[arg(long, default_value_t = 2_000)]
    viewers: usize,
    /// Gifts sent (each is one `gift.sent` and two notices on the stream).
    #[arg(long, default_value_t = 20_000)]
    gifts: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// An empty JetStream to import the export into.
    #[arg(long)]
    import_nats_url: Option<String>,
}

fn rate(events: u64, took: Duration) -> String {
    format!(
        "{events} events in {:.2} s ({:.0} events/s)",
        took.as_secs_f64(),
        events as f64 / took.as_secs_f64()
    )
}

/// Runs `each(i)` for `0..count` with `concurrency` requests in flight.
async fn spread<F, Fut>(count: usize, concurrency: usize, each: F) -> anyhow::Result<()>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let each = Arc::new(each);
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let each = each.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = worker;
            while i < count {
                each(i).await?;
                i += concurrency;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}

async fn post(
    http: &reqwest::Client,
    url: String,
    key: Option<&str>,
    body: serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    let mut request = http.post(url).json(&body);
    if let Some(key) = key {
        request = request.header("x-api-key", key);
    }
    let answer = request.send().await?;
    let status = answer.status();
    let body: serde_json::Value = answer.json().await?;
    anyhow::ensure!(status.is_success(), "{status}: {body}");
    Ok(body)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut settings = ServeSettings::with_connection(&args.database_url, &args.nats_url);
    settings.listen = "127.0.0.1:0".parse()?;
    settings.rate_limits = false;
    let app = Application::build(settings).await?;
    let base = format!("http://127.0.0.1:{}", app.port());
    let state = app.state();
    tokio::spawn(app.run_until_stopped(std::future::pending()));

    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let (_, key) =
        onair::records::api_keys::create(&state.db, &format!("bench-{run}"), 1_000_000).await?;
    let now = time::OffsetDateTime::now_utc();
    let streamer = format!("bench-{run}-star@bench.agent");
    let mut tokens = Vec::new();
    for (n, role) in std::iter::once(Role::Streamer)
        .chain(std::iter::repeat_n(Role::Member, args.concurrency))
        .enumerate()
    {
        let id = if n == 0 {
            streamer.clone()
        } else {
            format!("bench-{run}-{n}@bench.agent")
        };
        onair::commands::members::register(
            &state.db,
            &state.store,
            onair::commands::members::NewMember::new(
                MemberId::parse(&id, "id")?,
                role,
                "bench-password",
                &format!("b{n}"),
            ),
            now,
        )
        .await?;
        if n > 0 {
            tokens.push((
                id.clone(),
                state.member_tokens.issue(&id, role, 0, now).token,
            ));
        }
    }
    let gift = onair::commands::gift_catalog::Gift {
        gift_id: 9_001,
        name: "bench rose".into(),
        points: 3,
        anime_url: String::new(),
        enabled: true,
    };
    onair::commands::gift_catalog::define(&state.db, &state.store, gift, now).await?;
    let http = reqwest::Client::new();

    let started = Instant::now();
    {
        let (http, base, key, run) = (http.clone(), base.clone(), key.clone(), run.clone());
        spread(args.viewers, args.concurrency, move |i| {
            let (http, base, key, run) = (http.clone(), base.clone(), key.clone(), run.clone());
            async move {
                let user = format!("bench-{run}-viewer-{i}");
                let seat = post(
                    &http,
                    format!("{base}/api/token/viewer"),
                    Some(&key),
                    json!({"userId": user}),
                )
                .await?;
                let stage = seat["data"]["stageArn"].clone();
                for route in ["heartbeat", "leave"] {
                    post(
                        &http,
                        format!("{base}/api/viewer/{route}"),
                        Some(&key),
                        json!({"userId": user, "stageArn": stage}),
                    )
                    .await?;
                }
                Ok(())
            }
        })
        .await?;
    }
    eprintln!(
        "viewers: {} seats, heartbeats and leaves in {:.2} s",
        args.viewers,
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    {
        let (http, base, streamer) = (http.clone(), base.clone(), streamer.clone());
        let tokens = Arc::new(tokens);
        spread(args.gifts, args.concurrency, move |i| {
            let (http, base, streamer) = (http.clone(), base.clone(), streamer.clone());
            let (member, token) = tokens[i % tokens.len()].clone();
            async move {
                let query = json!({"Authorization": token, "giftID": 9_001, "giftCount": 1,
                    "memberID": member, "gameID": streamer, "agentID": "bench.agent"});
                post(
                    &http,
                    format!("{base}/api/action/sendGift"),
                    None,
                    json!({"query": query.to_string()}),
                )
                .await?;
                Ok(())
            }
        })
        .await?;
    }
    eprintln!(
        "gifts: {} sent in {:.2} s",
        args.gifts,
        started.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    let last = loop {
        let last = state
            .store
            .stream()
            .await?
            .info()
            .await?
            .state
            .last_sequence;
        if onair::http::consistency::read_models_reached(&state, last, None)
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?
            .is_ok()
        {
            break last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!(
        "stream: {last} events; read models caught up {:.2} s after the last write",
        started.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    let mut file = Vec::new();
    let exported = onair::ops::events::export(
        &state.store,
        &onair::ops::events::Selection::default(),
        false,
        &mut file,
    )
    .await?;
    println!(
        "export: {} ({:.1} MB of JSON lines)",
        rate(exported, started.elapsed()),
        file.len() as f64 / 1e6
    );

    let started = Instant::now();
    let audit = onair::ops::audit::run(&state.db, &state.store, false).await?;
    println!(
        "audit: {}, clean: {}",
        rate(audit.events, started.elapsed()),
        audit.is_clean()
    );

    let started = Instant::now();
    let replay =
        onair::ops::replay::run(&state.db, &state.store, onair::ops::replay::select(None)?).await?;
    println!(
        "replay --all: {} (rebuild and swap of {} read models)",
        rate(replay.events, started.elapsed()),
        replay.projections.len()
    );

    if let Some(url) = args.import_nats_url {
        let target = onair::event_store::EventStore::connect(&url, "/bench").await?;
        target.open_stream(1).await?;
        let started = Instant::now();
        let imported =
            onair::ops::events::import(&target, &mut std::io::Cursor::new(&file)).await?;
        println!("import: {}", rate(imported, started.elapsed()));
    }
    Ok(())
}
