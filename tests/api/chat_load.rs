//! The chat under load, bounded: slow consumers cost nobody else, an instance receives only the
//! chat of rooms it has sockets in, and one socket's says are pipelined yet answered in order.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::chat_support::{ChatClient, Frame};
use crate::gateway_support::Gateway;
use crate::helpers::{Services, eventually, spawn_app_with};

const STAR: &str = "star@mabu.mabumaster";
const ROOM: &str = "chatroomSystem-chatroom-mabu.mabumaster-star@mabu.mabumaster";
const OTHER_ROOM: &str = "chatroomSystem-chatroom-mabu.mabumaster-ben@mabu.mabumaster";

fn chat(text: &str) -> Value {
    json!({"type": "chat", "memberID": STAR, "name": "m", "text": text, "textColor": "#FFF"})
}

/// Large chat messages, as fast as a test says them, many sockets from one address.
fn load_settings(s: &mut onair::server::config::ServeSettings) {
    s.chat_max_text_chars = 100_000;
    s.chat_messages_per_minute = 100_000;
    s.ws_max_message_bytes = 1 << 20;
    s.ws_frames_per_second = 10_000;
    s.ws_frames_burst = 10_000;
    s.ws_new_sockets_per_ip_per_second = 10_000;
}

/// Two sockets that stop reading are dropped once their queues are full, while the room's 20
/// reading listeners hear every message, in order, each well within a (generous) bound of its
/// `say`: the room never waits for its slowest socket.
#[tokio::test]
async fn slow_sockets_are_dropped_while_the_other_listeners_hear_every_message() {
    const LISTENERS: usize = 20;
    const MESSAGES: usize = 60;
    let services = Services::start().await;
    let gw = Gateway::start_with(&services, |s| {
        load_settings(s);
        s.chat_socket_queue_frames = 8;
    })
    .await;
    let star = gw.member(STAR, "streamer").await;
    let mut speaker = ChatClient::verified(&gw.app.address, ROOM, STAR, &star).await;
    let mut slow = Vec::new();
    for _ in 0..2 {
        let mut client = ChatClient::connect_with_small_receive_buffer(&gw.app.address).await;
        client.room_add(ROOM).await;
        slow.push(client);
    }
    // From here on the slow sockets read nothing.
    let epoch = Instant::now();
    let mut readers = Vec::new();
    for _ in 0..LISTENERS {
        let mut listener = ChatClient::connect(&gw.app.address, "").await;
        listener.room_add(ROOM).await;
        readers.push(tokio::spawn(async move {
            let mut heard = Vec::new();
            for _ in 0..MESSAGES {
                let (_, message) = listener.said("chat").await;
                let n: usize = message["text"].as_str().unwrap()[..8].parse().unwrap();
                heard.push((n, epoch.elapsed()));
            }
            heard
        }));
    }

    // 60 messages of 50 kB: far more than a non-reading connection and a queue of 8 hold.
    let filler = "x".repeat(50_000 - 8);
    let mut said_at = Vec::new();
    for n in 0..MESSAGES {
        said_at.push(epoch.elapsed());
        let ok = speaker.say(ROOM, &chat(&format!("{n:08}{filler}"))).await;
        assert_eq!(ok["status"], "OK", "{ok}");
    }
    for reader in readers {
        let heard = reader.await.unwrap();
        let order: Vec<usize> = heard.iter().map(|(n, _)| *n).collect();
        assert_eq!(order, (0..MESSAGES).collect::<Vec<_>>());
        for (n, at) in heard {
            let latency = at.saturating_sub(said_at[n]);
            assert!(
                latency < Duration::from_secs(5),
                "message {n} took {latency:?} to a reading listener"
            );
        }
    }
    let hub = &gw.app.state.chat.hub;
    assert_eq!(hub.slow_consumers_dropped(), 2);
    // Both are closed and gone from the room: the speaker and the 20 listeners remain.
    eventually(Duration::from_secs(10), || async {
        (gw.app.state.chat.hub.members(ROOM).len() == 1 + LISTENERS).then_some(())
    })
    .await;
    for mut client in slow {
        let closed = client
            .wait_for(Duration::from_secs(10), |f| *f == Frame::Closed)
            .await;
        assert_eq!(closed, Some(Frame::Closed));
    }
}

/// An instance subscribes to a room's chat only while one of its sockets is in the room: the
/// other instance receives none of it until a socket there joins, and none again after it left.
#[tokio::test]
async fn an_instance_with_no_socket_in_a_room_receives_none_of_its_chat() {
    let services = Services::start().await;
    let gw = Gateway::start_with(&services, load_settings).await;
    let other = spawn_app_with(&services, load_settings).await;
    let star = gw.member(STAR, "streamer").await;
    let mut speaker = ChatClient::verified(&gw.app.address, ROOM, STAR, &star).await;
    speaker.room_add(OTHER_ROOM).await;
    let mut elsewhere = ChatClient::connect(&other.address, "").await;
    elsewhere.room_add(OTHER_ROOM).await;
    let here = &gw.app.state.chat.interest;
    let there = &other.state.chat.interest;
    assert_eq!(there.rooms().await, [OTHER_ROOM]);

    // Ten messages in the room, then one in the other room as a barrier: the other instance
    // gets that one, and (over the same connections, in order) would have got the ten first.
    for n in 0..10 {
        speaker.chat(ROOM, STAR, &format!("unheard {n}")).await;
    }
    speaker.chat(OTHER_ROOM, STAR, "barrier 1").await;
    let (_, barrier) = elsewhere.said("chat").await;
    assert_eq!(barrier["text"], "barrier 1");
    assert_eq!(there.received(), 1, "only the other room's message");
    eventually(Duration::from_secs(5), || async {
        (here.received() >= 11).then_some(())
    })
    .await;

    // A socket there joins: that instance now receives the room's chat, and delivers it.
    let mut joined = ChatClient::connect(&other.address, "").await;
    joined.room_add(ROOM).await;
    assert_eq!(there.rooms().await.len(), 2);
    speaker.chat(ROOM, STAR, "heard").await;
    let (_, heard) = joined.said("chat").await;
    assert_eq!(heard["text"], "heard");
    assert_eq!(there.received(), 2);

    // It leaves: unsubscribed again.
    let left = joined
        .request(json!({"event": "roomLeave", "room": ROOM}))
        .await;
    assert_eq!(left["status"], "OK", "{left}");
    assert_eq!(there.rooms().await, [OTHER_ROOM]);
    for n in 0..5 {
        speaker
            .chat(ROOM, STAR, &format!("unheard again {n}"))
            .await;
    }
    speaker.chat(OTHER_ROOM, STAR, "barrier 2").await;
    let (_, barrier) = elsewhere.said("chat").await;
    assert_eq!(barrier["text"], "barrier 2");
    assert_eq!(there.received(), 3);
}

/// One socket's says are pipelined: sent without waiting, each is answered OK in request order,
/// and the room hears them in that order.
#[tokio::test]
async fn pipelined_says_are_answered_and_delivered_in_order() {
    const MESSAGES: u64 = 200;
    let services = Services::start().await;
    let gw = Gateway::start_with(&services, load_settings).await;
    let star = gw.member(STAR, "streamer").await;
    let mut speaker = ChatClient::verified(&gw.app.address, ROOM, STAR, &star).await;
    let mut listener = ChatClient::connect(&gw.app.address, "").await;
    listener.room_add(ROOM).await;
    for n in 0..MESSAGES {
        let said = json!({"event": "say", "room": ROOM, "messageId": 1000 + n,
                          "message": chat(&n.to_string()).to_string()});
        speaker.send_text(said.to_string()).await;
    }
    let mut answered = Vec::new();
    while (answered.len() as u64) < MESSAGES {
        match speaker.next().await {
            Frame::Json(v) if v["context"] == "response" => {
                assert_eq!(v["status"], "OK", "{v}");
                answered.push(v["messageId"].as_u64().unwrap() - 1000);
            }
            Frame::Closed => panic!("closed"),
            _ => {}
        }
    }
    assert_eq!(answered, (0..MESSAGES).collect::<Vec<_>>());
    for n in 0..MESSAGES {
        let (_, message) = listener.said("chat").await;
        assert_eq!(message["text"], n.to_string());
    }
}

/// The sum of a counter in the app's `/metrics` text.
fn counter(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

/// With a write delay, the frames due to a socket within it leave in one write: a burst of says
/// reaches the listener in order, no sooner than the delay, in fewer writes than frames.
#[tokio::test]
async fn a_write_delay_sends_the_frames_due_within_it_together() {
    const MESSAGES: u64 = 10;
    const DELAY: Duration = Duration::from_millis(300);
    let services = Services::start().await;
    let gw = Gateway::start_with(&services, |s| {
        load_settings(s);
        s.chat_write_delay_ms = DELAY.as_millis() as u64;
    })
    .await;
    let star = gw.member(STAR, "streamer").await;
    let mut speaker = ChatClient::verified(&gw.app.address, ROOM, STAR, &star).await;
    let mut listener = ChatClient::connect(&gw.app.address, "").await;
    listener.room_add(ROOM).await;
    let before = gw.app.get_text("/metrics").await;

    let sent = Instant::now();
    for n in 0..MESSAGES {
        let said = json!({"event": "say", "room": ROOM, "messageId": 2000 + n,
                          "message": chat(&n.to_string()).to_string()});
        speaker.send_text(said.to_string()).await;
    }
    for n in 0..MESSAGES {
        let (_, message) = listener.said("chat").await;
        assert_eq!(message["text"], n.to_string());
        if n == 0 {
            assert!(
                sent.elapsed() >= DELAY,
                "delivered {:?} after the say, within the {DELAY:?} write delay",
                sent.elapsed()
            );
        }
    }
    let after = gw.app.get_text("/metrics").await;
    let writes = counter(&after, "onair_chat_socket_writes_total")
        - counter(&before, "onair_chat_socket_writes_total");
    let frames = counter(&after, "onair_chat_frames_written_total")
        - counter(&before, "onair_chat_frames_written_total");
    // The listener's 10 deliveries and the speaker's 10 answers and 10 deliveries.
    assert!(frames >= 30.0, "{frames} frames written");
    assert!(
        frames >= 3.0 * writes,
        "{frames} frames in {writes} writes: the delay did not gather them"
    );
}
