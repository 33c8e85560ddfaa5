//! Malformed input on the sockets: tens of thousands of random and truncated frames,
//! wrong types, huge `messageId`s, deep JSON nesting and invalid UTF-8, to `/primus` and `/ws`,
//! from a seeded generator (the same frames every run). The server never panics, every socket
//! ends (its frames answered, then closed with a documented code: 1002 protocol error, 1007
//! invalid UTF-8, 1009 too big, or, without a code, its answer to the client's close or its
//! close after `quit`; or cut off when the client vanishes mid-frame, or with a reset after a
//! close the client did not read), and afterwards its
//! open-socket counts and its memory (RSS of this process, which runs the app) are back where
//! they were. Prints the frames sent, the closes by code and the memory before and after.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

use crate::helpers::{Services, TestApp, spawn_app_with};
use crate::socket_limits::{RawSocket, socket_url};

const SEED: u64 = 0x14_f100d5;
/// Concurrent clients; each opens its sockets one after another.
const WORKERS: usize = 6;
/// Sockets per client in the measured round (the warm-up round opens a third as many).
const SESSIONS: usize = 30;
/// Raw-TCP sessions (truncated frames, garbage) in the measured round.
const RAW_SESSIONS: usize = 150;

#[derive(Default)]
struct Tally {
    frames: AtomicU64,
    sessions: AtomicU64,
    /// "1009", "1007", …; "none" for a connection that ended without a close frame;
    /// "no code" for a close frame without one.
    closes: Mutex<BTreeMap<String, u64>>,
}

impl Tally {
    async fn close(&self, outcome: String) {
        *self.closes.lock().await.entry(outcome).or_default() += 1;
    }
}

/// This process's resident memory, in KiB (the app runs in it).
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

fn random_string(rng: &mut StdRng, max: usize) -> String {
    let len = rng.random_range(0..=max);
    (0..len)
        .map(|_| match rng.random_range(0..10) {
            0 => char::from_u32(rng.random_range(0x80..0x2_0000)).unwrap_or('?'),
            1 => ['"', '\\', '{', '}', '[', ']', ':', ',', '\0', '\n'][rng.random_range(0..10)],
            _ => char::from(rng.random_range(0x20u8..0x7f)),
        })
        .collect()
}

fn random_value(rng: &mut StdRng, depth: u32) -> Value {
    match rng.random_range(0..if depth > 3 { 5 } else { 7 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.random()),
        2 => json!(rng.random::<i64>()),
        3 => json!(rng.random::<f64>() * 1e300),
        4 => Value::String(random_string(rng, 40)),
        5 => Value::Array(
            (0..rng.random_range(0..4))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        ),
        _ => Value::Object(
            (0..rng.random_range(0..4))
                .map(|_| {
                    let key = [
                        "event",
                        "room",
                        "messageId",
                        "type",
                        "channel",
                        "params",
                        "message",
                    ][rng.random_range(0..7)];
                    (key.to_owned(), random_value(rng, depth + 1))
                })
                .collect(),
        ),
    }
}

fn huge_message_id(rng: &mut StdRng) -> String {
    let id = [
        "1e308",
        "-1e308",
        "184467440737095516161844674407370955161",
        "1e400",
        "-0",
        "[1,[2,[3]]]",
        "{\"a\":1}",
        "true",
        "\"\"",
    ];
    if rng.random_bool(0.2) {
        format!(
            "{{\"event\":\"detailsView\",\"messageId\":\"{}\"}}",
            "9".repeat(rng.random_range(1_000..30_000))
        )
    } else {
        format!(
            "{{\"event\":\"detailsView\",\"messageId\":{}}}",
            id[rng.random_range(0..id.len())]
        )
    }
}

fn deep_nesting(rng: &mut StdRng) -> String {
    let depth = [100, 128, 129, 1_000, 20_000][rng.random_range(0..5)];
    match rng.random_range(0..3) {
        0 => format!("{}{}", "[".repeat(depth), "]".repeat(depth)),
        1 => format!("{}1{}", "{\"event\":".repeat(depth), "}".repeat(depth)),
        _ => "[".repeat(depth),
    }
}

/// A request a client could send, or one of its truncations.
fn template(rng: &mut StdRng, stats: bool) -> String {
    let room = format!("chatroomSystem-chatroom-{}", random_string(rng, 12));
    let text = if stats {
        [
            json!({"type": "subscribe", "channel": "stats"}),
            json!({"type": "unsubscribe", "channel": "stats"}),
            json!({"type": "ping"}),
            json!({"type": "subscribe", "channel": 7}),
            json!({"type": ["ping"]}),
            json!({"type": "dance", "channel": null}),
        ][rng.random_range(0..6)]
        .to_string()
    } else {
        [
            json!({"event": "detailsView", "messageId": rng.random::<u32>()}),
            json!({"event": "roomView", "room": room}),
            json!({"event": "roomAdd", "room": room, "messageId": 2}),
            json!({"event": "roomLeave", "room": room}),
            json!({"event": "say", "room": room, "message": random_value(rng, 2)}),
            json!({"event": "action", "params": {"action": "verify", "memberID": random_string(rng, 8), "chatroom": room, "Authorization": "x"}}),
            json!({"event": "action", "params": random_value(rng, 1)}),
            json!({"event": random_string(rng, 10), "room": random_value(rng, 2)}),
            json!("primus::id::"),
            json!(format!("primus::pong::{}", random_string(rng, 20))),
            json!(format!("primus::{}", random_string(rng, 10))),
        ][rng.random_range(0..11)]
        .to_string()
    };
    if rng.random_bool(0.4) {
        let mut cut = rng.random_range(0..=text.len());
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text[..cut].to_owned()
    } else {
        text
    }
}

/// One fuzz frame for `/ws` (`stats`) or `/primus`.
fn fuzz_frame(rng: &mut StdRng, stats: bool) -> Message {
    let text = |s: String| Message::Text(s.into());
    // Per mille; the last three end the socket, so they are rare.
    match rng.random_range(0..1000) {
        0..=249 => text(template(rng, stats)),
        250..=399 => text(random_value(rng, 0).to_string()),
        400..=479 => text(huge_message_id(rng)),
        480..=519 => text(deep_nesting(rng)),
        520..=669 => {
            let mut bytes = vec![0u8; rng.random_range(0..300)];
            rng.fill(&mut bytes[..]);
            Message::Binary(bytes.into())
        }
        670..=869 => text(random_string(rng, 200)),
        870..=929 => text(String::new()),
        930..=993 => Message::Ping(vec![7; rng.random_range(0..100)].into()),
        994 | 995 => {
            // A text frame that is not UTF-8: the server closes with 1007.
            let mut bytes = b"{\"event\":\"".to_vec();
            bytes.extend([0xc3, 0x28, 0xff, 0xfe]);
            Message::Frame(Frame::message(bytes, OpCode::Data(Data::Text), true))
        }
        996 | 997 => text("x".repeat(70 * 1024)),
        _ => text(json!({"event": "quit"}).to_string()),
    }
}

/// One socket: a few hundred fuzz frames, then a close; what ended it goes to the tally.
async fn session(app: &TestApp, rng: &mut StdRng, tally: &Tally) {
    let stats = rng.random_bool(0.35);
    let path = if stats {
        "/ws".to_owned()
    } else {
        ["/primus", "/primus?sessionID=fz", "/primus/x/y?_primuscb=1"][rng.random_range(0..3)]
            .to_owned()
    };
    let (ws, _) = tokio_tungstenite::connect_async(socket_url(app, &path))
        .await
        .expect("upgrade");
    let (mut sink, mut stream) = ws.split();
    let reader = tokio::spawn(async move {
        let mut answers = 0u64;
        let outcome = loop {
            match stream.next().await {
                Some(Ok(Message::Close(Some(frame)))) => break u16::from(frame.code).to_string(),
                Some(Ok(Message::Close(None))) => break "no code".to_owned(),
                Some(Ok(_)) => answers += 1,
                None | Some(Err(_)) => break "none".to_owned(),
            }
        };
        (outcome, answers)
    });
    let frames = rng.random_range(100..400);
    let mut sent = 0;
    for _ in 0..frames {
        if sink.send(fuzz_frame(rng, stats)).await.is_err() {
            break;
        }
        sent += 1;
    }
    tally.frames.fetch_add(sent, Ordering::Relaxed);
    tally.sessions.fetch_add(1, Ordering::Relaxed);
    let _ = sink.close().await;
    let (outcome, answers) = tokio::time::timeout(Duration::from_secs(10), reader)
        .await
        .expect("every socket ends within 10 s")
        .expect("reader");
    assert!(answers > 0 || stats, "{path}: at least the welcome");
    tally.close(outcome).await;
}

/// A raw session: a few valid frames, then a truncated frame, garbage or a half header.
async fn raw_session(app: &TestApp, rng: &mut StdRng, tally: &Tally) {
    let path = if rng.random_bool(0.5) {
        "/ws"
    } else {
        "/primus"
    };
    let mut raw = RawSocket::connect(app, path).await.expect("upgraded");
    for _ in 0..rng.random_range(0..5) {
        let _ = raw
            .send_frame(true, 1, template(rng, path == "/ws").as_bytes())
            .await;
        tally.frames.fetch_add(1, Ordering::Relaxed);
    }
    let ends_by_itself = match rng.random_range(0..4) {
        0 => {
            // A frame cut short, then the connection goes.
            let mut frame = RawSocket::header(true, 1, 100);
            frame.extend_from_slice(&[b'a'; 37]);
            let _ = raw.tcp.write_all(&frame).await;
            false
        }
        1 => {
            // Half a header.
            let _ = raw
                .tcp
                .write_all(&RawSocket::header(true, 2, 70_000)[..3])
                .await;
            false
        }
        2 => {
            // Garbage in a whole frame: reserved bits set, any opcode, masked or not.
            let len = rng.random_range(0..126usize);
            let mut bytes = vec![0u8; 6 + len];
            rng.fill(&mut bytes[..]);
            bytes[0] |= 0x70;
            bytes[1] = (bytes[1] & 0x80) | len as u8;
            let _ = raw.tcp.write_all(&bytes).await;
            true
        }
        _ => {
            // A fragmented message whose continuation never comes, then a control frame of
            // more than 125 bytes (a protocol error).
            let _ = raw.send_frame(false, 1, b"{\"event\":").await;
            let _ = raw.send_frame(true, 9, &[0u8; 200]).await;
            true
        }
    };
    tally.frames.fetch_add(1, Ordering::Relaxed);
    tally.sessions.fetch_add(1, Ordering::Relaxed);
    let outcome = if ends_by_itself {
        match raw.close_code(Duration::from_secs(5)).await {
            Some(code) => code.to_string(),
            None => "none".to_owned(),
        }
    } else {
        drop(raw);
        "client gone".to_owned()
    };
    tally.close(outcome).await;
}

/// One round: `WORKERS` clients, each `sessions` fuzzed sockets one after another, and
/// `raw_sessions` raw ones.
async fn round(
    app: &Arc<TestApp>,
    seed: u64,
    sessions: usize,
    raw_sessions: usize,
    tally: &Arc<Tally>,
) {
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let (app, tally) = (app.clone(), tally.clone());
        workers.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(seed + w as u64);
            for _ in 0..sessions {
                session(&app, &mut rng, &tally).await;
            }
        }));
    }
    for lane in 0..3 {
        let (app, tally) = (app.clone(), tally.clone());
        workers.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(seed + 1_000 + lane);
            for _ in 0..raw_sessions / 3 {
                raw_session(&app, &mut rng, &tally).await;
            }
        }));
    }
    for worker in workers {
        worker.await.expect("worker");
    }
}

async fn settle(app: &TestApp) {
    let local = "127.0.0.1".parse().unwrap();
    crate::helpers::eventually(Duration::from_secs(10), || async {
        (app.state.chat.hub.is_empty() && app.state.socket_limits.open_sockets(local) == 0)
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sockets_survive_malformed_input_and_give_back_what_they_took() {
    let panics = Arc::new(AtomicU64::new(0));
    let counted = panics.clone();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        counted.fetch_add(1, Ordering::Relaxed);
        previous(info);
    }));

    let services = Services::start().await;
    let app = Arc::new(
        spawn_app_with(&services, |s| {
            // The frames must reach the parsers: the rate limits have their own tests.
            s.ws_frames_per_second = 1_000_000;
            s.ws_frames_burst = 1_000_000;
            s.ws_new_sockets_per_ip_per_second = 100_000;
            s.ws_max_sockets_per_ip = 10_000;
        })
        .await,
    );
    let started = Instant::now();

    // A first round warms the allocator and the caches; the second is measured against it.
    round(
        &app,
        SEED,
        SESSIONS / 3,
        RAW_SESSIONS / 3,
        &Arc::new(Tally::default()),
    )
    .await;
    settle(&app).await;
    let before = rss_kib();
    let warmed = started.elapsed();

    let tally = Arc::new(Tally::default());
    round(&app, SEED + 100, SESSIONS, RAW_SESSIONS, &tally).await;
    settle(&app).await;
    let after = rss_kib();

    let frames = tally.frames.load(Ordering::Relaxed);
    let closes = tally.closes.lock().await.clone();
    println!(
        "socket fuzz: {frames} frames in {} sessions, {:.1} s (warm-up {:.1} s); closes by \
         code: {closes:?}; RSS before {before} KiB, after {after} KiB",
        tally.sessions.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64(),
        warmed.as_secs_f64()
    );

    assert_eq!(panics.load(Ordering::Relaxed), 0, "the server panicked");
    assert!(frames >= 20_000, "tens of thousands of frames: {frames}");
    let documented = [
        "1000",
        "1002",
        "1007",
        "1009",
        "no code",
        "none",
        "client gone",
    ];
    for code in closes.keys() {
        assert!(
            documented.contains(&code.as_str()),
            "close {code}: {closes:?}"
        );
    }
    for code in ["1007", "1009", "1002"] {
        assert!(
            closes.contains_key(code),
            "the fuzz reached close {code}: {closes:?}"
        );
    }
    assert!(
        after <= before + 32 * 1024,
        "memory came back: RSS {before} KiB before, {after} KiB after"
    );

    // Still serving.
    let mut chat = crate::chat_support::ChatClient::connect(&app.address, "").await;
    let details = chat.request(json!({"event": "detailsView"})).await;
    assert_eq!(details["status"], "OK");
    let (mut stats, _) = tokio_tungstenite::connect_async(socket_url(&app, "/ws"))
        .await
        .unwrap();
    stats
        .send(Message::Text(r#"{"type":"ping"}"#.into()))
        .await
        .unwrap();
    let pong = tokio::time::timeout(Duration::from_secs(5), stats.next())
        .await
        .unwrap();
    assert!(
        matches!(&pong, Some(Ok(Message::Text(t))) if t.contains("pong")),
        "{pong:?}"
    );
}
