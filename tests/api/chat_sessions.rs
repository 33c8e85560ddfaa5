//! Chat sessions end with their token: a verified socket whose token expires (by the
//! injected clock) or whose member's tokens are revoked (a password change, on any instance) is
//! told 40302 and says as a guest until it verifies again.

use std::time::Duration;

use serde_json::{Value, json};

use crate::chat_support::{ChatClient, Frame};
use crate::gateway_support::Gateway;
use crate::helpers::{Services, spawn_app_with};

const STAR: &str = "star@mabu.mabumaster";
const BEN: &str = "ben@mabu.mabumaster";
const ROOM: &str = "chatroomSystem-chatroom-mabu.mabumaster-star@mabu.mabumaster";
const NOT_LOGGED_IN: &str = "Error: The account is not logged in";

/// The next system message code, answering the Primus pings that come meanwhile (so a socket
/// waiting here is not closed as silent).
async fn system_code_answering_pings(client: &mut ChatClient, wait: Duration) -> Option<u64> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let frame = client
            .wait_for(left, |f| match f {
                Frame::Control(c) => c.starts_with("primus::ping::"),
                Frame::Json(v) => v["context"] == "api" && v["data"]["code"].is_number(),
                Frame::Closed => true,
            })
            .await?;
        match frame {
            Frame::Control(ping) => {
                client
                    .send_text(Value::String(ping.replace("ping", "pong")).to_string())
                    .await
            }
            Frame::Json(v) => return v["data"]["code"].as_u64(),
            Frame::Closed => panic!("the socket closed while waiting for a system message"),
        }
    }
}

/// Whether `client` hears a chat message of `text` within 10 s (other frames are dropped).
async fn hears(client: &mut ChatClient, text: &str) -> bool {
    let heard = client
        .wait_for(Duration::from_secs(10), |f| match f {
            Frame::Json(v) if v["context"] == "user" => {
                serde_json::from_str::<Value>(v["message"].as_str().unwrap_or(""))
                    .is_ok_and(|m| m["type"] == "chat" && m["text"] == text)
            }
            _ => false,
        })
        .await;
    heard.is_some()
}

/// `loginStreamer` for the streamer, with the test password.
async fn streamer_token(gw: &Gateway) -> String {
    let answer = gw
        .action(
            "loginStreamer",
            json!({"memberID": STAR, "password": crate::gateway_support::PASSWORD}),
            None,
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.data()["Authorization"].as_str().unwrap().to_owned()
}

/// A verb that needs a member finds the token expired by the clock: 40302, the `say` is refused as
/// a guest's, the socket still reads its room and leaves the room's presence, and a fresh token
/// makes it a member again.
#[tokio::test]
async fn a_socket_whose_token_expires_is_told_40302_and_says_as_a_guest_until_it_verifies_again() {
    let services = Services::start().await;
    let gw = Gateway::start_with(&services, |s| s.member_token_ttl_secs = 60).await;
    let star_token = gw.member(STAR, "streamer").await;
    let ben_token = gw.member(BEN, "member").await;
    let mut star = ChatClient::verified(&gw.app.address, ROOM, STAR, &star_token).await;
    let mut ben = ChatClient::verified(&gw.app.address, ROOM, BEN, &ben_token).await;
    assert_eq!(ben.chat(ROOM, BEN, "before").await["status"], "OK");
    crate::helpers::eventually(Duration::from_secs(10), || async {
        let present = crate::chat_support::present(&gw.app.db, ROOM).await;
        (present == [BEN, STAR]).then_some(())
    })
    .await;

    gw.app.state.clock.advance(Duration::from_secs(61));
    let said = ben.chat(ROOM, BEN, "after").await;
    assert_eq!(said["error"], NOT_LOGGED_IN, "{said}");
    assert_eq!(
        ben.system_code().await,
        40302,
        "told first that the token ended"
    );
    assert_eq!(ben.system_code().await, 40101, "then refused as a guest");
    let moderate = ben
        .action("mute", json!({"memberID": STAR, "chatroom": ROOM}))
        .await;
    assert_eq!(moderate["error"], "The account is not logged in");
    crate::helpers::eventually(Duration::from_secs(10), || async {
        let present = crate::chat_support::present(&gw.app.db, ROOM).await;
        (present == [STAR]).then_some(())
    })
    .await;

    // The old token no longer verifies by the clock either.
    let stale = ben.verify(BEN, ROOM, &ben_token).await;
    assert_eq!(stale["error"], "The token is not valid", "{stale}");

    // Still in the room: the guest reads what the (re-verified) streamer says.
    let star_token = streamer_token(&gw).await;
    assert_eq!(star.verify(STAR, ROOM, &star_token).await["verified"], true);
    assert_eq!(
        star.chat(ROOM, STAR, "still reading?").await["status"],
        "OK"
    );
    assert!(hears(&mut ben, "still reading?").await, "the guest reads");

    // A fresh token: a member again, who speaks and is present again.
    let fresh = gw.member_token(BEN).await;
    assert_eq!(ben.verify(BEN, ROOM, &fresh).await["verified"], true);
    assert_eq!(ben.chat(ROOM, BEN, "back").await["status"], "OK");
    assert!(
        hears(&mut star, "back").await,
        "the streamer hears the member"
    );
    crate::helpers::eventually(Duration::from_secs(10), || async {
        let present = crate::chat_support::present(&gw.app.db, ROOM).await;
        (present == [BEN, STAR]).then_some(())
    })
    .await;
}

/// An idle socket is told too: the heartbeat's sweep ends the expired session.
#[tokio::test]
async fn an_idle_socket_whose_token_expires_is_told_40302_by_the_heartbeat() {
    let services = Services::start().await;
    let gw = Gateway::start_with(&services, |s| {
        s.member_token_ttl_secs = 60;
        s.chat_ping_interval_ms = 2_000;
    })
    .await;
    let ben_token = gw.member(BEN, "member").await;
    let mut ben = ChatClient::verified(&gw.app.address, ROOM, BEN, &ben_token).await;

    assert_eq!(
        system_code_answering_pings(&mut ben, Duration::from_millis(2_500)).await,
        None,
        "nothing before the token expires"
    );
    gw.app.state.clock.advance(Duration::from_secs(61));
    assert_eq!(
        system_code_answering_pings(&mut ben, Duration::from_secs(5)).await,
        Some(40302)
    );
    let said = ben.chat(ROOM, BEN, "after").await;
    assert_eq!(said["error"], NOT_LOGGED_IN, "{said}");
    assert_eq!(ben.system_code().await, 40101);
}

/// A password change in the back office (on one instance) revokes the member's tokens: the
/// member's socket on another instance is told 40302 and says as a guest, until it verifies with a
/// token of the new password.
#[tokio::test]
async fn a_password_change_ends_the_session_of_a_socket_on_another_instance() {
    let services = Services::start().await;
    let gw = Gateway::start(&services).await;
    let other = spawn_app_with(&services, |_| {}).await;
    gw.create_member(STAR, "streamer").await;
    let ben_token = gw.member(BEN, "member").await;
    let mut ben = ChatClient::verified(&other.address, ROOM, BEN, &ben_token).await;
    assert_eq!(ben.chat(ROOM, BEN, "before").await["status"], "OK");

    let edited = gw
        .backoffice(
            "EditMember",
            json!({"memberID": BEN, "password": "another-pass"}),
        )
        .await;
    assert_eq!(edited.status, 200, "{}", edited.body);
    assert_eq!(ben.system_code().await, 40302, "told without saying a word");
    let said = ben.chat(ROOM, BEN, "after").await;
    assert_eq!(said["error"], NOT_LOGGED_IN, "{said}");
    assert_eq!(ben.system_code().await, 40101);
    let stale = ben.verify(BEN, ROOM, &ben_token).await;
    assert_eq!(stale["error"], "The token is not valid", "{stale}");

    let login = gw
        .action(
            "loginAction",
            json!({"memberID": BEN, "password": "another-pass"}),
            None,
        )
        .await;
    assert_eq!(login.status, 200, "{}", login.body);
    let fresh = login.data()["Authorization"].as_str().unwrap().to_owned();
    assert_eq!(ben.verify(BEN, ROOM, &fresh).await["verified"], true);
    assert_eq!(ben.chat(ROOM, BEN, "again").await["status"], "OK");
}
