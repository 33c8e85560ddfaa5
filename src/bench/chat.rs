//! `onair bench chat`: `--listeners` sockets in one room (guests, or members with
//! `--verified`), `--senders` members saying `--rate` messages a second in total (or, with
//! `--rate 0`, each saying its next message as soon as the last one is answered), and `--slow`
//! sockets that stop reading. Measures deliveries/s, say-to-delivery latency, deliveries lost,
//! sockets dropped, and the server's CPU per delivery. With `--peer-url` the same scenario
//! then runs against an actionhero server (`bench/peers/actionhero/`) and both are printed
//! side by side.
//!
//! Every socket comes from one address unless `--source-ips` spreads them over 127.0.0.x:
//! lift the server's per-IP socket limits (`ONAIR_WS_MAX_SOCKETS_PER_IP`,
//! `ONAIR_WS_NEW_SOCKETS_PER_IP_PER_SECOND`) or use `--source-ips`; senders faster than the
//! per-member and per-socket limits (`ONAIR_CHAT_MESSAGES_PER_MINUTE`,
//! `ONAIR_WS_FRAMES_PER_SECOND`, `ONAIR_WS_FRAMES_BURST`) are refused (42901) and counted so.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use super::args::ChatArgs;
use super::chat_socket::{self as socket, Ws};
use super::report::{ChatFigures, Latency, Report, micros_histogram};
use super::runner::{http_client, progress};
use super::scrape::Sampler;
use super::setup;

/// Who speaks and listens where.
struct Target {
    name: String,
    /// `ws://…/primus` of each instance.
    ws_urls: Vec<String>,
    room: String,
    /// Each sender's `(member, token)` (none on the peer: guests say there).
    senders: Vec<Option<(String, String)>>,
    /// Each listener's `(member, token)` with `--verified`.
    listeners: Vec<Option<(String, String)>>,
    metrics_url: Option<String>,
    pids: Vec<u32>,
}

/// Latency histograms shared by the listeners, sharded to keep the locks cold.
struct Shards(Vec<Mutex<Histogram<u64>>>);

impl Shards {
    fn new() -> Self {
        Self((0..32).map(|_| Mutex::new(micros_histogram())).collect())
    }
    fn record(&self, n: usize, values: &mut Vec<u64>) {
        let mut h = self.0[n % self.0.len()].lock().expect("not poisoned");
        for v in values.drain(..) {
            h.saturating_record(v.max(1));
        }
    }
    fn merged(&self) -> Histogram<u64> {
        let mut all = micros_histogram();
        for h in &self.0 {
            all.add(&*h.lock().expect("not poisoned"))
                .expect("same bounds");
        }
        all
    }
}

/// `onair bench chat`.
pub async fn run(args: &ChatArgs) -> anyhow::Result<Report> {
    let run = setup::run_id();
    let onair = onair_target(args, &run).await?;
    let mut report = measure(args, &onair, &run).await?;
    if let Some(peer_url) = &args.peer_url {
        let peer = Target {
            name: format!("actionhero ({peer_url})"),
            ws_urls: vec![socket::primus_url(peer_url)?],
            room: args.peer_room.clone(),
            senders: vec![None; args.senders.max(1)],
            listeners: vec![None; args.listeners],
            metrics_url: None,
            pids: args.peer_pids.clone(),
        };
        report.peer = Some(Box::new(measure(args, &peer, &run).await?));
    }
    Ok(report)
}

/// Creates the senders (and verified listeners) as members and logs them in.
async fn onair_target(args: &ChatArgs, run: &str) -> anyhow::Result<Target> {
    let common = &args.common;
    let urls = super::base_urls(common);
    let client = http_client(16);
    let room = match &args.room {
        Some(room) => room.clone(),
        None => setup::room_of(&setup::member_id(run, "star"))?,
    };
    let sender_ids: Vec<String> = (0..args.senders)
        .map(|i| setup::member_id(run, &format!("s{i}")))
        .collect();
    let listener_ids: Vec<String> = if args.verified {
        (0..args.listeners)
            .map(|i| setup::member_id(run, &format!("l{i}")))
            .collect()
    } else {
        Vec::new()
    };
    let all: Vec<String> = sender_ids.iter().chain(&listener_ids).cloned().collect();
    let tokens = if all.is_empty() {
        Vec::new()
    } else {
        let operator = setup::operator(common, run).await?;
        if !common.quiet {
            eprintln!("creating and logging in {} members", all.len());
        }
        setup::create_members(&client, &urls[0], &operator, &all, "member").await?;
        setup::log_in(&client, &urls[0], &all, false).await?
    };
    let mut members = all.into_iter().zip(tokens).map(Some);
    let senders = members.by_ref().take(sender_ids.len()).collect();
    let listeners = if args.verified {
        members.collect()
    } else {
        vec![None; args.listeners]
    };
    Ok(Target {
        name: format!("onair ({})", urls.join(", ")),
        ws_urls: urls
            .iter()
            .map(|u| socket::primus_url(u))
            .collect::<anyhow::Result<_>>()?,
        room,
        senders,
        listeners,
        metrics_url: super::metrics_url(common),
        pids: common.pids.clone(),
    })
}

/// Opens socket `n` (listener, slow or sender), joins the room and verifies the member.
async fn open(
    args: &ChatArgs,
    target: &Target,
    urls: &[String],
    n: usize,
    member: Option<&(String, String)>,
    slow: bool,
) -> anyhow::Result<Ws> {
    let url = &urls[n % urls.len()];
    let (addr, source) = socket::addresses(url, n, args.source_ips).await?;
    let mut ws = socket::connect(url, addr, source, slow).await?;
    socket::join(&mut ws, &target.room).await?;
    if let Some((member, token)) = member {
        socket::verify(&mut ws, member, &target.room, token).await?;
    }
    Ok(ws)
}

/// Opens `members.len()` sockets numbered from `first` on `urls` in turn, 32 at a time.
async fn open_all(
    args: &ChatArgs,
    target: &Target,
    urls: &[String],
    first: usize,
    members: &[Option<(String, String)>],
    slow: bool,
) -> anyhow::Result<Vec<Ws>> {
    let bar = progress(args.common.quiet, "sockets", members.len() as u64);
    let sockets = futures_util::stream::iter(members.iter().enumerate())
        .map(|(i, m)| {
            let bar = bar.clone();
            async move {
                let ws = open(args, target, urls, first + i, m.as_ref(), slow).await;
                bar.inc(1);
                ws
            }
        })
        .buffered(32)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<Vec<_>>>();
    bar.finish_and_clear();
    sockets
}

/// What one listener saw.
struct Heard {
    received: u64,
    dropped: bool,
}

/// Reads a listener until `stop`: counts bench messages and their latency, answers pings.
async fn listen(
    n: usize,
    mut ws: Ws,
    marker: String,
    shards: Arc<Shards>,
    total: Arc<AtomicU64>,
    mut stop: watch::Receiver<bool>,
) -> Heard {
    let mut heard = Heard {
        received: 0,
        dropped: false,
    };
    let mut pending = Vec::with_capacity(64);
    let finder = socket::MessageFinder::new(&marker);
    loop {
        tokio::select! {
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(t))) => {
                    if let Some((_, _, sent)) = finder.find(&t) {
                        let now = wall_clock_micros();
                        pending.push(now.saturating_sub(sent));
                        heard.received += 1;
                        total.fetch_add(1, Ordering::Relaxed);
                        if pending.len() >= 64 {
                            shards.record(n, &mut pending);
                        }
                    } else if let Some(pong) = socket::pong_for(&t) {
                        let _ = ws.send(Message::Text(pong.into())).await;
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                    heard.dropped = true;
                    break;
                }
                Some(Ok(_)) => {}
            },
            _ = stop.changed() => break,
        }
    }
    shards.record(n, &mut pending);
    heard
}

/// Whether the server closed a socket that stopped reading: reads what is queued, at most
/// 500 ms per frame.
async fn was_dropped(mut ws: Ws) -> bool {
    loop {
        match tokio::time::timeout(Duration::from_millis(500), ws.next()).await {
            Err(_) => return false,
            Ok(Some(Ok(Message::Close(_)))) | Ok(Some(Err(_))) | Ok(None) => return true,
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// A sender's tally.
#[derive(Default)]
struct Said {
    sent: u64,
    answered_ok: u64,
    refused: u64,
}

/// One sender: says at `interval` (or closed-loop when `None`) until the deadline or until
/// `budget` says have been sent by all senders together.
#[allow(clippy::too_many_arguments)]
async fn speak(
    index: usize,
    ws: Ws,
    target_room: String,
    member: String,
    marker: String,
    interval: Option<Duration>,
    deadline: tokio::time::Instant,
    budget: Arc<AtomicU64>,
    answers: Arc<Mutex<Histogram<u64>>>,
    bar: indicatif::ProgressBar,
) -> Said {
    let (sink, mut stream) = ws.split();
    let sink = Arc::new(tokio::sync::Mutex::new(sink));
    let sent_at: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
    let (answered_tx, mut answered_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (sink, sent_at, answers, done) =
            (sink.clone(), sent_at.clone(), answers.clone(), done.clone());
        tokio::spawn(async move {
            let (mut ok, mut refused) = (0u64, 0u64);
            let mut since_done: Option<Instant> = None;
            loop {
                let wait = if done.load(Ordering::Relaxed) {
                    let started = *since_done.get_or_insert_with(Instant::now);
                    // Late answers still count, up to 30 s after the last say.
                    match Duration::from_secs(30).checked_sub(started.elapsed()) {
                        Some(left) => left,
                        None => break,
                    }
                } else {
                    Duration::from_millis(200)
                };
                let frame = match tokio::time::timeout(wait, stream.next()).await {
                    Err(_) => {
                        if done.load(Ordering::Relaxed)
                            && sent_at.lock().expect("not poisoned").is_empty()
                        {
                            break;
                        }
                        continue;
                    }
                    Ok(Some(Ok(Message::Text(t)))) => t,
                    Ok(Some(Ok(_))) => continue,
                    Ok(_) => break,
                };
                if let Some(pong) = socket::pong_for(&frame) {
                    let _ = sink.lock().await.send(Message::Text(pong.into())).await;
                    continue;
                }
                // Broadcasts (our own echo included) are not answers.
                if frame.contains("\"context\":\"user\"") {
                    continue;
                }
                // A refused say is answered with an error (onair also pushes the system message,
                // e.g. 42901, which is not counted again).
                let v: Value = serde_json::from_str(&frame).unwrap_or(Value::Null);
                let id = v["messageId"].as_u64();
                // (Taken out of the lock at once: it is locked again below.)
                let due = id.and_then(|id| sent_at.lock().expect("not poisoned").remove(&id));
                if v["context"] == "response"
                    && let Some(at) = due
                {
                    answers
                        .lock()
                        .expect("not poisoned")
                        .saturating_record(at.elapsed().as_micros().max(1) as u64);
                    if v["status"] == "OK" {
                        ok += 1;
                    } else {
                        refused += 1;
                    }
                    let _ = answered_tx.send(());
                    if done.load(Ordering::Relaxed)
                        && sent_at.lock().expect("not poisoned").is_empty()
                    {
                        break;
                    }
                }
            }
            (ok, refused)
        })
    };
    let mut said = Said::default();
    let started = tokio::time::Instant::now();
    let mut seq: u64 = 0;
    loop {
        if let Some(every) = interval {
            let due = started + every.mul_f64(seq as f64);
            if due >= deadline {
                break;
            }
            tokio::time::sleep_until(due).await;
        } else if tokio::time::Instant::now() >= deadline {
            break;
        }
        if budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| b.checked_sub(1))
            .is_err()
        {
            break;
        }
        seq += 1;
        let message = json!({"type": "chat", "memberID": member, "name": "bench",
            "text": socket::message_text(&marker, index, seq, wall_clock_micros()), "textColor": "#FFF"});
        let frame = json!({"event": "say", "room": target_room, "message": message.to_string(),
            "messageId": 100 + seq});
        sent_at
            .lock()
            .expect("not poisoned")
            .insert(100 + seq, Instant::now());
        if sink
            .lock()
            .await
            .send(Message::Text(frame.to_string().into()))
            .await
            .is_err()
        {
            break;
        }
        said.sent += 1;
        bar.inc(1);
        if interval.is_none()
            && tokio::time::timeout(Duration::from_secs(30), answered_rx.recv())
                .await
                .is_err()
        {
            break;
        }
    }
    done.store(true, Ordering::Relaxed);
    let (ok, refused) = reader.await.unwrap_or_default();
    said.answered_ok = ok;
    said.refused = refused;
    let _ = sink.lock().await.close().await;
    said
}

/// Runs the scenario against one target.
async fn measure(args: &ChatArgs, target: &Target, run: &str) -> anyhow::Result<Report> {
    let common = &args.common;
    if !common.quiet {
        eprintln!(
            "{}: opening {} listeners, {} slow, {} senders",
            target.name,
            target.listeners.len(),
            args.slow,
            target.senders.len()
        );
    }
    // `--split`: the senders on the first instance, every listener on the others.
    let (sender_urls, listener_urls) = match target.ws_urls.split_first() {
        Some((first, rest)) if args.split && !rest.is_empty() => {
            (std::slice::from_ref(first), rest)
        }
        _ => (&target.ws_urls[..], &target.ws_urls[..]),
    };
    let listeners = open_all(args, target, listener_urls, 0, &target.listeners, false).await?;
    let slow = open_all(
        args,
        target,
        listener_urls,
        listeners.len(),
        &vec![None; args.slow],
        true,
    )
    .await?;
    let senders = open_all(
        args,
        target,
        sender_urls,
        listeners.len() + slow.len(),
        &target.senders,
        false,
    )
    .await?;

    let marker_text = message_marker(args, run);
    let marker = format!("{marker_text} ");
    let shards = Arc::new(Shards::new());
    let total = Arc::new(AtomicU64::new(0));
    let (stop, stopped) = watch::channel(false);
    let listening: Vec<_> = listeners
        .into_iter()
        .enumerate()
        .map(|(n, ws)| {
            tokio::spawn(listen(
                n,
                ws,
                marker.clone(),
                shards.clone(),
                total.clone(),
                stopped.clone(),
            ))
        })
        .collect();

    let client = http_client(4);
    let sampler = Sampler::start(client, target.metrics_url.clone(), target.pids.clone()).await;
    let budget = Arc::new(AtomicU64::new(common.count.unwrap_or(u64::MAX)));
    let per_sender =
        (args.rate > 0.0).then(|| Duration::from_secs_f64(senders.len() as f64 / args.rate));
    let bar = match common.count {
        Some(n) => progress(common.quiet, "says", n),
        None => progress(
            common.quiet,
            "says",
            (args.rate * common.duration).max(1.0) as u64,
        ),
    };
    let answers = Arc::new(Mutex::new(micros_histogram()));
    let load_started = Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(common.duration.max(0.0));
    let speaking: Vec<_> = senders
        .into_iter()
        .zip(&target.senders)
        .enumerate()
        .map(|(i, (ws, m))| {
            let member = m
                .as_ref()
                .map_or_else(|| "guest".to_owned(), |(id, _)| id.clone());
            tokio::spawn(speak(
                i,
                ws,
                target.room.clone(),
                member,
                marker_text.clone(),
                per_sender,
                deadline,
                budget.clone(),
                answers.clone(),
                bar.clone(),
            ))
        })
        .collect();
    if speaking.is_empty() {
        // Listen-only: another process says; listen until the duration ends.
        tokio::time::sleep_until(deadline).await;
    }
    let mut said = Said::default();
    for s in speaking {
        let s = s.await?;
        said.sent += s.sent;
        said.answered_ok += s.answered_ok;
        said.refused += s.refused;
    }
    bar.finish_and_clear();
    let load_secs = load_started.elapsed().as_secs_f64();
    let accepted = said.answered_ok;
    // Deliveries still on their way: wait until every listener has every accepted message, or
    // until nothing arrives for 5 s.
    let expected = accepted * listening.len() as u64;
    let mut last = (total.load(Ordering::Relaxed), Instant::now());
    while total.load(Ordering::Relaxed) < expected && last.1.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = total.load(Ordering::Relaxed);
        if now != last.0 {
            last = (now, Instant::now());
        }
    }
    let elapsed = load_started.elapsed().as_secs_f64() - last.1.elapsed().as_secs_f64().min(5.0);
    let _ = stop.send(true);
    let mut figures = ChatFigures {
        listeners: listening.len(),
        senders: target.senders.len(),
        slow: args.slow,
        says_sent: said.sent,
        says_accepted: accepted,
        says_refused: said.refused,
        says_unanswered: said.sent.saturating_sub(said.answered_ok + said.refused),
        says_accepted_per_sec: accepted as f64 / load_secs.max(1e-9),
        say_answer: Latency::of(&answers.lock().expect("not poisoned")),
        ..Default::default()
    };
    for l in listening {
        let heard = l.await?;
        figures.deliveries += heard.received;
        if heard.dropped {
            figures.listeners_dropped += 1;
        } else {
            figures.deliveries_lost += accepted.saturating_sub(heard.received);
        }
    }
    for ws in slow {
        figures.slow_dropped += u64::from(was_dropped(ws).await);
    }
    let (_, server) = sampler.finish(None, Duration::ZERO).await;
    figures.elapsed_secs = elapsed.max(1e-9);
    figures.deliveries_per_sec = figures.deliveries as f64 / figures.elapsed_secs;
    figures.say_to_delivery = Latency::of(&shards.merged());
    figures.deliveries_per_cpu_sec = server
        .as_ref()
        .and_then(|s| s.cpu_seconds)
        .filter(|c| *c > 0.0)
        .map(|c| figures.deliveries as f64 / c);
    Ok(Report {
        scenario: "chat".into(),
        target: target.name.clone(),
        chat: Some(figures),
        server,
        ..Default::default()
    })
}

/// The text bench messages start with: `--marker`, or the run's own `bench<run>`.
fn message_marker(args: &ChatArgs, run: &str) -> String {
    args.marker.clone().unwrap_or_else(|| format!("bench{run}"))
}

/// Microseconds since the UNIX epoch (UTC): a say's timestamp, comparable between the bench
/// processes of one machine.
fn wall_clock_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}
