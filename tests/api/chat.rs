//! The chat WebSocket at the wire level: Primus framing, the actionhero verbs, the seed's rules,
//! moderation and delivery across two instances.

use std::time::Duration;

use serde_json::{Value, json};

use crate::chat_support::{ChatClient, Frame};
use crate::gateway_support::Gateway;
use crate::helpers::{Services, spawn_app_with};

const STAR: &str = "star@mabu.mabumaster";
const BEN: &str = "ben@mabu.mabumaster";
const AMY: &str = "amy@mabu.mabumaster";
const ROOM: &str = "chatroomSystem-chatroom-mabu.mabumaster-star@mabu.mabumaster";

fn chat(member: &str, text: &str) -> Value {
    json!({"type": "chat", "memberID": member, "name": member.split('@').next().unwrap(),
           "text": text, "textColor": "#FFF"})
}

#[tokio::test]
async fn the_socket_speaks_primus_and_the_actionhero_verbs() {
    let services = Services::start().await;
    let gw = Gateway::start(&services).await;
    let address = gw.app.address.clone();

    // A plain GET is not an upgrade.
    let plain = reqwest::get(format!("{address}/primus")).await.unwrap();
    assert_eq!(plain.status(), 426);

    let mut a = ChatClient::connect(&address, "sessionID=fp-A&_primuscb=x1").await;
    let details = a.request(json!({"event": "detailsView"})).await;
    assert_eq!(details["status"], "OK");
    assert_eq!(details["data"]["fingerprint"], "fp-A");
    assert_eq!(details["data"]["rooms"], json!([]));
    assert!(uuid::Uuid::parse_str(details["data"]["id"].as_str().unwrap()).is_ok());

    // Any path beginning with /primus upgrades too; without sessionID the fingerprint is the id.
    let mut b = ChatClient::connect(&format!("{address}/primusfoo/extra"), "").await;
    let details = b.request(json!({"event": "detailsView"})).await;
    assert_eq!(details["data"]["fingerprint"], details["data"]["id"]);

    // primus::id, and frames that are not JSON are dropped without closing.
    a.send_text("\"primus::id::\"".into()).await;
    assert_eq!(
        a.next().await,
        Frame::Control(format!("primus::id::{}", a.id))
    );
    a.send_text("not json at all".into()).await;

    let added = a.room_add(ROOM).await;
    assert_eq!(
        added,
        json!({"status": "OK", "context": "response", "data": true, "messageId": added["messageId"]})
    );
    let again = a.room_add(ROOM).await;
    assert_eq!(
        again["status"],
        format!("Error: connection already in this room ({ROOM})")
    );
    assert_eq!(again["error"], again["status"]);
    let view = a.request(json!({"event": "roomView", "room": ROOM})).await;
    assert_eq!(view["data"]["membersCount"], 1);
    assert!(view["data"]["members"][&a.id]["joinedAt"].is_number());
    let unknown = a.request(json!({"event": "paramAdd"})).await;
    assert_eq!(
        unknown["error"],
        "Error: verb not found or not allowed (paramAdd)"
    );
    let missing = a.request(json!({"event": "say", "room": ROOM})).await;
    assert_eq!(
        missing["error"],
        "Error: both room and message are required"
    );
    let not_in = b.say(ROOM, &chat(BEN, "hi")).await;
    assert_eq!(
        not_in["error"],
        format!("Error: connection not in this room ({ROOM})")
    );
    let action = a.action("noSuchAction", json!({})).await;
    assert_eq!(action["error"], "unknown action or invalid apiVersion");

    // A falsy messageId is replaced by a UUID, and answers come in request order.
    a.send_text(json!({"event": "detailsView", "messageId": 0}).to_string())
        .await;
    let Frame::Json(reply) = a.next().await else {
        panic!()
    };
    assert!(uuid::Uuid::parse_str(reply["messageId"].as_str().unwrap()).is_ok());
    for id in 100..110 {
        a.send_text(json!({"event": "roomView", "room": ROOM, "messageId": id}).to_string())
            .await;
    }
    for id in 100..110 {
        let Frame::Json(reply) = a.next().await else {
            panic!()
        };
        assert_eq!(reply["messageId"], id);
    }

    // say before verify: 40101.
    let said = a.say(ROOM, &chat(BEN, "hello")).await;
    assert_eq!(said["error"], "Error: The account is not logged in");
    assert_eq!(a.system_code().await, 40101);

    let left = a.request(json!({"event": "roomLeave", "room": ROOM})).await;
    assert_eq!(left["data"], true);
    let left = a.request(json!({"event": "roomLeave", "room": ROOM})).await;
    assert_eq!(
        left["error"],
        format!("Error: connection not in this room ({ROOM})")
    );

    // quit: server::close, then the socket closes.
    a.send_text(json!({"event": "quit"}).to_string()).await;
    assert_eq!(
        a.next().await,
        Frame::Control("primus::server::close".into())
    );
    assert_eq!(a.next().await, Frame::Closed);
}

#[tokio::test]
async fn the_server_pings_and_closes_a_silent_socket_so_it_reconnects() {
    let services = Services::start().await;
    let app = spawn_app_with(&services, |s| s.chat_ping_interval_ms = 200).await;
    let mut polite = ChatClient::connect(&app.address, "").await;
    let mut silent = ChatClient::connect(&app.address, "").await;
    for _ in 0..3 {
        let ping = polite
            .wait_for(
                Duration::from_secs(2),
                |f| matches!(f, Frame::Control(c) if c.starts_with("primus::ping::")),
            )
            .await
            .expect("a ping");
        let Frame::Control(c) = ping else {
            unreachable!()
        };
        let ms: i64 = c.trim_start_matches("primus::ping::").parse().unwrap();
        assert!(ms > 1_700_000_000_000);
        polite
            .send_text(Value::String(c.replace("ping", "pong")).to_string())
            .await;
    }
    let end = silent
        .wait_for(Duration::from_secs(3), |f| {
            matches!(f, Frame::Closed)
                || matches!(f, Frame::Control(c) if c == "primus::server::close")
        })
        .await;
    assert_eq!(end, Some(Frame::Closed), "closed without server::close");
    let details = polite.request(json!({"event": "detailsView"})).await;
    assert_eq!(details["status"], "OK", "the answering socket stays open");
}

/// Two members and a streamer in the room, verified.
struct Room {
    gw: Gateway,
    star_token: String,
    ben_token: String,
    star: ChatClient,
    ben: ChatClient,
    amy: ChatClient,
}

async fn room(services: &Services) -> Room {
    let gw = Gateway::start(services).await;
    let star_token = gw.member(STAR, "streamer").await;
    let ben_token = gw.member(BEN, "member").await;
    let amy_token = gw.member(AMY, "member").await;
    let mut clients = Vec::new();
    for (member, token) in [(STAR, &star_token), (BEN, &ben_token), (AMY, &amy_token)] {
        let mut c = ChatClient::connect(&gw.app.address, "").await;
        c.room_add(ROOM).await;
        let verified = c.verify(member, ROOM, token).await;
        assert_eq!(verified["verified"], true, "{verified}");
        assert_eq!(verified["memberID"], member);
        clients.push(c);
    }
    let amy = clients.pop().unwrap();
    let ben = clients.pop().unwrap();
    let star = clients.pop().unwrap();
    Room {
        gw,
        star_token,
        ben_token,
        star,
        ben,
        amy,
    }
}

#[tokio::test]
async fn the_seeds_flow_verify_say_and_every_system_code() {
    let services = Services::start().await;
    let Room {
        gw,
        ben_token,
        mut star,
        mut ben,
        mut amy,
        ..
    } = room(&services).await;

    // A joinRoom for each verified member reaches the room, with the seed's fields.
    let (payload, join) = star.said("joinRoom").await;
    assert_eq!(payload["from"], "0");
    assert_eq!(payload["room"], ROOM);
    assert_eq!(join["member"], STAR);
    assert_eq!(join["role"], "streamer");
    let (_, welcome) = star.said("welcome").await;
    assert_eq!(welcome["member"], STAR);

    // The room's viewerCount follows presence at once (popularity is recomputed every 10 s here,
    // and has not been yet).
    let info = crate::helpers::eventually(Duration::from_secs(3), || async {
        let a = gw
            .action("getRoomInfo", json!({"streamerID": STAR}), None)
            .await;
        (a.data()["viewerCount"] == 3).then_some(a)
    })
    .await;
    assert_eq!(info.data()["popularity"], 0, "{}", info.body);

    // say: everyone in the room, the sender included, gets it.
    let ok = ben.say(ROOM, &chat(BEN, "Hello")).await;
    assert_eq!(
        ok,
        json!({"status": "OK", "context": "response", "messageId": ok["messageId"]})
    );
    let ben_id = ben.id.clone();
    for client in [&mut star, &mut ben, &mut amy] {
        let (payload, message) = client.said("chat").await;
        assert_eq!(payload["context"], "user");
        assert_eq!(payload["room"], ROOM);
        assert_eq!(payload["from"], ben_id);
        assert!(payload["sentAt"].as_i64().unwrap() > 1_700_000_000_000);
        assert_eq!(
            message,
            json!({"type": "chat", "memberID": BEN, "role": "member", "name": "BEN",
                   "text": "Hello", "textColor": "#FFF"})
        );
    }

    // Verify with a bad token: 40302. A message in someone else's name: 40305. A URL: 40306.
    let mut guest = ChatClient::connect(&gw.app.address, "").await;
    guest.room_add(ROOM).await;
    let bad = guest.verify(BEN, ROOM, "not-a-token").await;
    assert_eq!(bad["error"], "The token is not valid");
    assert_eq!(guest.system_code().await, 40302);
    let wrong_member = guest.verify(AMY, ROOM, &ben_token).await;
    assert_eq!(wrong_member["error"], "The token is not valid");
    assert_eq!(guest.system_code().await, 40302);

    ben.say(ROOM, &chat(AMY, "I am Amy")).await;
    assert_eq!(ben.system_code().await, 40305);
    ben.say(ROOM, &chat(BEN, "visit https://spam.example"))
        .await;
    assert_eq!(ben.system_code().await, 40306);
    let link = star
        .say(ROOM, &chat(STAR, "my shop: shop.example.com"))
        .await;
    assert_eq!(link["status"], "OK", "the streamer may send URLs");
    let bad_color = ben.say(ROOM, &json!({"type": "chat", "memberID": BEN, "name": "ben", "text": "x", "textColor": "red"})).await;
    assert!(bad_color["error"].as_str().unwrap().contains("textColor"));

    // Maintenance: 40308 on every message until it is switched off.
    let on = gw
        .backoffice("SetMaintenance", json!({"enabled": true}))
        .await;
    assert_eq!(on.status, 200, "{}", on.body);
    crate::helpers::eventually(Duration::from_secs(5), || {
        let on = gw.app.state.chat.maintenance();
        async move { on.then_some(()) }
    })
    .await;
    let refused = ben.say(ROOM, &chat(BEN, "during maintenance")).await;
    assert_eq!(
        refused["error"], "Error: System is maintaining",
        "{refused}"
    );
    assert_eq!(ben.system_code().await, 40308);
    gw.backoffice("SetMaintenance", json!({"enabled": false}))
        .await;

    // An operator's system broadcast reaches the room.
    let sent = gw
        .backoffice(
            "BroadcastSystemMessage",
            json!({"message": "Maintenance at 03:00"}),
        )
        .await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    let (payload, system) = amy.said("system").await;
    assert_eq!(payload["from"], "0");
    assert_eq!(
        system,
        json!({"type": "system", "message": "Maintenance at 03:00"})
    );

    // History: the room's last messages from the stream.
    let history = amy
        .action("chatHistory", json!({"chatroom": ROOM, "limit": 5}))
        .await;
    let messages = history["messages"].as_array().unwrap();
    assert!(!messages.is_empty() && messages.len() <= 5, "{history}");
    assert_eq!(messages[0]["context"], "user");
}

#[tokio::test]
async fn moderation_bans_mutes_and_admins_with_relationship_codes() {
    let services = Services::start().await;
    let Room {
        gw,
        star_token,
        ben_token,
        mut star,
        mut ben,
        mut amy,
        ..
    } = room(&services).await;

    // A member cannot moderate; the streamer can; an admin can, but not grant admin.
    let refused = ben
        .action("mute", json!({"memberID": AMY, "chatroom": ROOM}))
        .await;
    assert!(
        refused["error"].as_str().unwrap().contains("streamer"),
        "{refused}"
    );
    let granted = star
        .action("grantAdmin", json!({"memberID": BEN, "chatroom": ROOM}))
        .await;
    assert_eq!(granted["moderated"], true, "{granted}");
    folded(&gw, |room| room.admins.contains(BEN)).await;
    let no_grant = ben
        .action("grantAdmin", json!({"memberID": AMY, "chatroom": ROOM}))
        .await;
    assert!(no_grant["error"].is_string());

    // A temporary mute (by the admin): 40303, then it ends.
    let muted = ben
        .action(
            "mute",
            json!({"memberID": AMY, "chatroom": ROOM, "seconds": 60}),
        )
        .await;
    assert_eq!(muted["moderated"], true, "{muted}");
    assert!(muted["until"].is_string());
    folded(&gw, |room| room.muted_until.contains_key(AMY)).await;
    amy.say(ROOM, &chat(AMY, "can I speak?")).await;
    assert_eq!(amy.system_code().await, 40303);
    gw.app.state.clock.advance(Duration::from_secs(61));
    let after = amy.say(ROOM, &chat(AMY, "yes")).await;
    assert_eq!(after["status"], "OK", "the mute ended: {after}");

    // A permanent mute through REST: 40304 until unmuted.
    let rest = gw
        .action(
            "moderate",
            json!({"action": "mute", "memberID": AMY}),
            Some(&star_token),
        )
        .await;
    assert_eq!(rest.status, 200, "{}", rest.body);
    assert_eq!(rest.data()["chatroom"], ROOM);
    gw.action(
        "moderate",
        json!({"action": "ban", "memberID": STAR, "streamerID": STAR}),
        Some(&ben_token),
    )
    .await
    .expect_error(403, "FORBIDDEN");
    folded(&gw, |room| room.muted.contains(AMY)).await;
    amy.say(ROOM, &chat(AMY, "still?")).await;
    assert_eq!(amy.system_code().await, 40304);
    star.action("unmute", json!({"memberID": AMY, "chatroom": ROOM}))
        .await;

    // A ban closes Amy's socket with server::close; her new socket cannot join or verify.
    star.action("ban", json!({"memberID": AMY, "chatroom": ROOM}))
        .await;
    let end = amy
        .wait_for(
            Duration::from_secs(2),
            |f| matches!(f, Frame::Control(c) if c == "primus::server::close"),
        )
        .await;
    assert!(end.is_some(), "server::close before the close");
    assert_eq!(amy.next().await, Frame::Closed);
    let mut again = ChatClient::connect(&gw.app.address, "").await;
    again.room_add(ROOM).await;
    let verify = again.verify(AMY, ROOM, &gw.member_token(AMY).await).await;
    assert_eq!(verify["error"], "The account had been ban");
    assert_eq!(again.system_code().await, 40301);

    // Ben (admin) shows relationship 3 when he joins again.
    let mut ben2 = ChatClient::connect(&gw.app.address, "").await;
    ben2.room_add(ROOM).await;
    ben2.verify(BEN, ROOM, &ben_token).await;
    let (_, join) = loop {
        let (p, m) = star.said("joinRoom").await;
        if m["member"] == BEN
            && m["relationship"]
                .as_array()
                .is_some_and(|r| r.contains(&json!(3)))
        {
            break (p, m);
        }
    };
    assert_eq!(join["nickname"], "BEN");
    drop(ben);
}

/// Waits until the gateway's moderation-rule follower has folded what `done` looks for in ROOM.
async fn folded(gw: &Gateway, done: impl Fn(&onair::domain::chat::RoomModeration) -> bool) {
    crate::helpers::eventually(Duration::from_secs(5), || {
        let folded = done(&gw.app.state.chat.room_moderation(ROOM));
        async move { folded.then_some(()) }
    })
    .await;
}

#[tokio::test]
async fn gifts_and_going_live_reach_the_room_and_the_followers() {
    let services = Services::start().await;
    let Room {
        gw,
        star_token,
        ben_token,
        mut star,
        mut ben,
        ..
    } = room(&services).await;
    gw.set_gift(1, "Rose", 10).await;
    let follow = gw
        .action("follow", json!({"streamerID": STAR}), Some(&ben_token))
        .await;
    assert_eq!(follow.status, 200);
    let (_, followed) = star.said("follow").await;
    assert_eq!(
        followed,
        json!({"type": "follow", "streamer": STAR, "follower": BEN})
    );
    crate::helpers::eventually(Duration::from_secs(5), || async {
        let a = gw
            .action("getRoomInfo", json!({"streamerID": STAR}), None)
            .await;
        (a.data()["followers"] == 1).then_some(())
    })
    .await;

    // Ben, in another room too, hears Star go live as `sub`; the room hears `streamStatus`.
    let live = gw.action("startStream", json!({}), Some(&star_token)).await;
    assert_eq!(live.status, 200);
    let (_, sub) = ben.said("sub").await;
    assert_eq!(
        sub,
        json!({"type": "sub", "streamer": STAR, "status": "start"})
    );
    let (_, status) = star.said("streamStatus").await;
    assert_eq!(status["status"], "start");

    let sent = gw.send_gift(&ben_token, BEN, STAR, 1, 2).await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    let (_, gift) = star.said("gift").await;
    assert_eq!(
        gift["gift"],
        json!({"id": 1, "name": "Rose", "animeUrl": "/anime/1.webp", "count": 2})
    );
    let (_, rank) = star.said("giftRank").await;
    assert_eq!(rank["rankState"], "NEW");
    assert_eq!(rank["rankingList"][0]["memberId"], BEN);
    assert_eq!(rank["rankingList"][0]["score"], 20);
}

/// The limit is per member across instances: sockets on two instances share one budget.
#[tokio::test]
async fn a_member_saying_too_fast_gets_a_clear_system_message() {
    let services = Services::start().await;
    let gw = Gateway::start_with(&services, |s| s.chat_messages_per_minute = 3).await;
    let other = spawn_app_with(&services, |s| s.chat_messages_per_minute = 3).await;
    let token = gw.member(BEN, "member").await;
    gw.create_member(STAR, "streamer").await;
    let mut ben = ChatClient::verified(&gw.app.address, ROOM, BEN, &token).await;
    let mut ben_elsewhere = ChatClient::verified(&other.address, ROOM, BEN, &token).await;
    for i in 0..3 {
        let socket = if i == 1 { &mut ben_elsewhere } else { &mut ben };
        let ok = socket.say(ROOM, &chat(BEN, &format!("m{i}"))).await;
        assert_eq!(ok["status"], "OK", "{ok}");
    }
    let limited = ben_elsewhere.say(ROOM, &chat(BEN, "one too many")).await;
    assert!(limited["error"].as_str().unwrap().contains("too fast"));
    assert_eq!(ben_elsewhere.system_code().await, 42901);
}

#[tokio::test]
async fn two_instances_share_messages_and_bans() {
    let services = Services::start().await;
    let gw = Gateway::start(&services).await;
    let other = spawn_app_with(&services, |_| {}).await;
    let star_token = gw.member(STAR, "streamer").await;
    let ben_token = gw.member(BEN, "member").await;

    let mut star = ChatClient::connect(&gw.app.address, "").await;
    star.room_add(ROOM).await;
    star.verify(STAR, ROOM, &star_token).await;
    let mut ben = ChatClient::connect(&other.address, "").await;
    ben.room_add(ROOM).await;
    ben.verify(BEN, ROOM, &ben_token).await;

    // roomView lists the verified members of both instances (once presence has Ben's join).
    crate::helpers::eventually(Duration::from_secs(10), || async {
        let present = crate::chat_support::present(&gw.app.db, ROOM).await;
        (present == [BEN, STAR]).then_some(())
    })
    .await;
    let view = star
        .request(json!({"event": "roomView", "room": ROOM}))
        .await;
    assert_eq!(view["data"]["membersCount"], 2, "{view}");
    let members = &view["data"]["members"];
    assert_eq!(members[&ben.id]["id"], ben.id.clone());
    assert!(members[&star.id]["joinedAt"].is_i64());

    // Said on the second instance, heard on the first.
    ben.say(ROOM, &chat(BEN, "from instance two")).await;
    let (payload, message) = star.said("chat").await;
    assert_eq!(message["text"], "from instance two");
    assert_eq!(payload["from"], ben.id.clone());

    // Banned on the first instance, closed on the second within a second.
    let started = std::time::Instant::now();
    let banned = star
        .action("ban", json!({"memberID": BEN, "chatroom": ROOM}))
        .await;
    assert_eq!(banned["moderated"], true);
    let end = ben
        .wait_for(
            Duration::from_secs(1),
            |f| matches!(f, Frame::Control(c) if c == "primus::server::close"),
        )
        .await;
    assert!(
        end.is_some(),
        "the ban reached the other instance within 1 s"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn presence_and_chat_count_toward_popularity() {
    let services = Services::start().await;
    let gw = Gateway::start_with(&services, |s| s.popularity_interval_ms = 100).await;
    let star_token = gw.member(STAR, "streamer").await;
    let ben_token = gw.member(BEN, "member").await;
    let mut star = ChatClient::connect(&gw.app.address, "").await;
    star.room_add(ROOM).await;
    star.verify(STAR, ROOM, &star_token).await;
    let mut ben = ChatClient::connect(&gw.app.address, "").await;
    ben.room_add(ROOM).await;
    ben.verify(BEN, ROOM, &ben_token).await;
    ben.say(ROOM, &chat(BEN, "one")).await;
    ben.say(ROOM, &chat(BEN, "two")).await;

    // 2 present × 10 + 2 messages × 2.
    let info = crate::helpers::eventually(Duration::from_secs(10), || async {
        let a = gw
            .action("getRoomInfo", json!({"streamerID": STAR}), None)
            .await;
        (a.data()["popularity"] == 24).then_some(a)
    })
    .await;
    assert_eq!(info.data()["viewerCount"], 2);
    let (_, popularity) = star.said("popularity").await;
    assert_eq!(popularity["streamer"], STAR);

    // Ben leaves: one viewer fewer.
    ben.request(json!({"event": "roomLeave", "room": ROOM}))
        .await;
    let (_, left) = star.said("leaveRoom").await;
    assert_eq!(
        left,
        json!({"type": "leaveRoom", "member": BEN, "nickname": "BEN"})
    );
    crate::helpers::eventually(Duration::from_secs(10), || async {
        let a = gw
            .action("getRoomInfo", json!({"streamerID": STAR}), None)
            .await;
        (a.data()["popularity"] == 14 && a.data()["viewerCount"] == 1).then_some(())
    })
    .await;

    // Ben comes back: joinRoom again, but no second welcome within the window.
    let is_bens = |kind: &'static str| {
        move |f: &Frame| match f {
            Frame::Json(v) if v["context"] == "user" => {
                let m: Value = serde_json::from_str(v["message"].as_str().unwrap()).unwrap();
                m["type"] == kind && m["member"] == BEN
            }
            _ => false,
        }
    };
    ben.room_add(ROOM).await;
    ben.verify(BEN, ROOM, &ben_token).await;
    assert!(
        star.wait_for(Duration::from_secs(5), is_bens("joinRoom"))
            .await
            .is_some()
    );
    assert!(
        star.wait_for(Duration::from_millis(500), is_bens("welcome"))
            .await
            .is_none(),
        "welcome at most once per window"
    );

    // A second tab of Ben's is still one viewer: 2 present × 10 + 3 messages × 2.
    let mut ben_tab = ChatClient::connect(&gw.app.address, "").await;
    ben_tab.room_add(ROOM).await;
    ben_tab.verify(BEN, ROOM, &ben_token).await;
    ben_tab.say(ROOM, &chat(BEN, "three")).await;
    let info = crate::helpers::eventually(Duration::from_secs(10), || async {
        let a = gw
            .action("getRoomInfo", json!({"streamerID": STAR}), None)
            .await;
        (a.data()["popularity"].as_i64() >= Some(26)).then_some(a)
    })
    .await;
    assert_eq!(info.data()["popularity"], 26, "{}", info.body);
    assert_eq!(info.data()["viewerCount"], 2, "{}", info.body);
}

/// A member on a chat instance that stopped answering (crashed, killed) leaves the room once that
/// instance has been silent for the timeout: the room hears `leaveRoom`, and presence and
/// `viewerCount` stop counting them. Members on live instances stay.
#[tokio::test]
async fn members_of_a_silent_chat_instance_leave_their_rooms() {
    let services = Services::start().await;
    let gw = Gateway::start_with(&services, |s| {
        s.chat_instance_timeout_ms = 600;
        s.popularity_interval_ms = 100;
    })
    .await;
    let star = gw.member(STAR, "streamer").await;
    assert_eq!(
        gw.action("startStream", json!({}), Some(&star))
            .await
            .status,
        200
    );
    gw.member(AMY, "member").await;
    let ben = gw.member(BEN, "member").await;
    let mut socket = ChatClient::verified(&gw.app.address, ROOM, BEN, &ben).await;

    // What a crashed instance leaves behind: Amy's join, on an instance that never answers again.
    gw.app
        .state
        .store
        .publish(onair::event_store::NewEvent::new(
            time::OffsetDateTime::now_utc(),
            onair::events::Event::MemberJoinedRoom(onair::events::MemberJoinedRoom {
                room: ROOM.to_owned(),
                member_id: AMY.to_owned(),
                connection_id: "connection-on-a-crashed-instance".to_owned(),
                instance_id: Some("crashed-instance".to_owned()),
            }),
        ))
        .await
        .unwrap();

    let (_, left) = socket.said("leaveRoom").await;
    assert_eq!(
        left,
        json!({"type": "leaveRoom", "member": AMY, "nickname": "AMY"})
    );
    let present = || crate::chat_support::present(&gw.app.db, ROOM);
    crate::helpers::eventually(Duration::from_secs(10), || async {
        (present().await == [BEN]).then_some(())
    })
    .await;

    // Several timeouts later Ben, on this live instance, is still there, and Amy left once. The
    // silence is measured in Postgres time (which every instance's announcements share), not by
    // the instance's clock, so this waits for real: the reactor reaps every 200 ms meanwhile.
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    let reaped = onair::reactors::presence::reap(
        &gw.app.db,
        &gw.app.state.store,
        Duration::from_millis(600),
        gw.app.state.clock.now(),
    )
    .await
    .unwrap();
    assert_eq!(reaped, 0, "nothing left to reap");
    gw.app.wait_for_projections().await;
    assert_eq!(present().await, [BEN]);
    crate::helpers::eventually(Duration::from_secs(10), || async {
        let info = gw
            .action("getRoomInfo", json!({"streamerID": STAR}), None)
            .await;
        (info.data()["viewerCount"] == 1).then_some(())
    })
    .await;
    let leaves = gw.notice_of_type("leaveRoom", 1).await;
    assert_eq!(leaves.len(), 1, "{leaves:?}");
}

/// A socket that stops reading is dropped once its queue is full, without holding up the room:
/// every `say` is answered, a reading listener hears every message, and the slow member leaves
/// the room (`leaveRoom`, presence) as on any disconnect.
#[tokio::test]
async fn a_socket_that_stops_reading_is_dropped_and_its_member_leaves() {
    const MESSAGES: usize = 100;
    let services = Services::start().await;
    let gw = Gateway::start_with(&services, |s| {
        allow_large_fast_messages(s);
        s.chat_socket_queue_frames = 8;
    })
    .await;
    let star = gw.member(STAR, "streamer").await;
    let ben = gw.member(BEN, "member").await;
    let amy = gw.member(AMY, "member").await;
    let mut speaker = ChatClient::verified(&gw.app.address, ROOM, STAR, &star).await;
    let mut listener = ChatClient::verified(&gw.app.address, ROOM, BEN, &ben).await;
    let slow = non_reading_member(&gw, AMY, &amy).await;
    // From here on Amy reads nothing.

    let text = "x".repeat(100_000);
    for _ in 0..MESSAGES {
        let ok = speaker.say(ROOM, &chat(STAR, &text)).await;
        assert_eq!(ok["status"], "OK");
        let (_, message) = listener.said("chat").await;
        assert_eq!(message["text"].as_str().unwrap().len(), 100_000);
    }
    let left = gw.notice_of_type("leaveRoom", 1).await;
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["message"]["member"], AMY);
    crate::helpers::eventually(Duration::from_secs(10), || async {
        let present = crate::chat_support::present(&gw.app.db, ROOM).await;
        (present == [BEN, STAR]).then_some(())
    })
    .await;
    drop(slow);
}

/// A socket whose peer neither reads nor answers pings, with writes stuck behind a full
/// connection, is dropped after its second missed heartbeat although its queue never fills.
#[tokio::test]
async fn a_socket_stuck_mid_write_is_dropped_after_two_missed_heartbeats() {
    let services = Services::start().await;
    let gw = Gateway::start_with(&services, |s| {
        allow_large_fast_messages(s);
        s.chat_ping_interval_ms = 1_500;
    })
    .await;
    let star = gw.member(STAR, "streamer").await;
    let amy = gw.member(AMY, "member").await;
    let stuck = non_reading_member(&gw, AMY, &amy).await;
    let mut speaker = ChatClient::verified(&gw.app.address, ROOM, STAR, &star).await;

    // 100 messages of 100 kB at once: more than the connection holds, fewer than the queue's 256.
    let text = "x".repeat(100_000);
    for _ in 0..100 {
        let ok = speaker.say(ROOM, &chat(STAR, &text)).await;
        assert_eq!(ok["status"], "OK");
        // The speaker answers the pings it got meanwhile, so only Amy misses them.
        while let Some(Frame::Control(ping)) = speaker
            .wait_for(
                Duration::ZERO,
                |f| matches!(f, Frame::Control(c) if c.starts_with("primus::ping")),
            )
            .await
        {
            speaker
                .send_text(Value::String(ping.replace("ping", "pong")).to_string())
                .await;
        }
    }
    drop(speaker);
    crate::helpers::eventually(Duration::from_secs(15), || async {
        let left = gw.notice_of_type("leaveRoom", 1).await;
        left.iter()
            .any(|l| l["message"]["member"] == AMY)
            .then_some(())
    })
    .await;
    drop(stuck);
}

/// Chat messages of up to 100,000 characters, as fast as a test says them.
fn allow_large_fast_messages(s: &mut onair::server::config::ServeSettings) {
    s.chat_max_text_chars = 100_000;
    s.chat_messages_per_minute = 10_000;
    s.ws_max_message_bytes = 1 << 20;
    s.ws_frames_per_second = 10_000;
    s.ws_frames_burst = 10_000;
}

/// `member` verified in the room over a connection with a tiny receive buffer, which the caller
/// then never reads.
async fn non_reading_member(gw: &Gateway, member: &str, token: &str) -> ChatClient {
    let mut client = ChatClient::connect_with_small_receive_buffer(&gw.app.address).await;
    client.room_add(ROOM).await;
    assert_eq!(client.verify(member, ROOM, token).await["verified"], true);
    client
}
