//! The seed's page flow with the **real** ActionheroWebsocketClient (built at test time from the
//! npm packages `scripts/test` installs, docs/chat.md#the-real-client-in-the-tests) and with
//! onair's own served client script: tests/chat/client_flow.js, run by Node against the server.

use std::time::Duration;

use serde_json::json;

use crate::gateway_support::Gateway;
use crate::helpers::{Services, TempDir};

const STAR: &str = "star@mabu.mabumaster";
const BEN: &str = "ben@mabu.mabumaster";
const AMY: &str = "amy@mabu.mabumaster";
const ROOM: &str = "chatroomSystem-chatroom-mabu.mabumaster-star@mabu.mabumaster";

/// Runs the flow; returns what it printed.
async fn run_flow(mode: &str) -> String {
    let client_dir = std::env::var("ONAIR_AH_CLIENT_DIR").expect(
        "ONAIR_AH_CLIENT_DIR is not set: run the tests with scripts/test, which installs the \
         actionhero client packages",
    );
    let services = Services::start().await;
    let gw = Gateway::start(&services).await;
    let config = json!({
        "room": ROOM,
        "star": {"id": STAR, "token": gw.member(STAR, "streamer").await},
        "ben": {"id": BEN, "token": gw.member(BEN, "member").await},
        "amy": {"id": AMY, "token": gw.member(AMY, "member").await},
        "website": "site-a",
        "key": gw.key,
    });
    gw.set_gift(1, "Rose", 10).await;
    let dir = TempDir::new("onair-chat-flow");
    let config_path = dir.0.join("config.json");
    std::fs::write(&config_path, config.to_string()).unwrap();

    let mut command = tokio::process::Command::new("node");
    command
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/chat/client_flow.js"
        ))
        .arg(mode)
        .arg(&gw.app.address)
        .arg(&config_path)
        .env("ONAIR_AH_CLIENT_DIR", client_dir);
    let stdout = crate::helpers::run_to_success(
        command,
        Duration::from_secs(120),
        &format!("the {mode} client flow (node)"),
    )
    .await;
    assert!(stdout.contains("DONE"), "{mode} client flow:\n{stdout}");
    for step in [
        "say reaches both clients",
        "40101",
        "40301",
        "40302",
        "40303",
        "40304",
        "40305",
        "40306",
        "40308",
        "gift and giftRank",
        "sub start",
        "a ban closes the socket without reconnect",
    ] {
        assert!(
            stdout.contains(step),
            "{mode}: step {step:?} missing\n{stdout}"
        );
    }
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_actionhero_client_runs_the_seeds_flow() {
    run_flow("real").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_served_client_script_runs_the_same_flow() {
    let stdout = run_flow("ours").await;
    assert!(
        stdout.contains("reconnects and re-joins its rooms"),
        "{stdout}"
    );
}
