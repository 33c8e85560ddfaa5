//! The seed's own client examples, run against the server with only the base URL and key changed.

use std::time::Duration;

use crate::helpers::{Services, python, run_to_success, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seeds_python_ivs_client_works_unchanged() {
    let services = Services::start().await;
    let app = spawn_app(&services).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/seed/ivs_client.py");

    let mut command = python();
    command.arg(script).arg(&app.address).arg(&app.api_key);
    let stdout = run_to_success(
        command,
        Duration::from_secs(60),
        "the seed's Python example",
    )
    .await;
    let beats = stdout.lines().filter(|l| l.starts_with("心跳成功")).count();
    assert!(beats >= 3, "heartbeats sent: {beats}\n{stdout}");
    assert!(!stdout.contains("心跳失敗"), "{stdout}");
    assert!(
        stdout
            .lines()
            .filter(|l| l.starts_with("心跳成功"))
            .all(|l| l.contains("'success': True")),
        "{stdout}"
    );
    let result = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .expect("a RESULT line");
    let result: serde_json::Value = serde_json::from_str(result).unwrap();
    assert_eq!(result["token"]["success"], true);
    assert_eq!(result["token"]["data"]["userId"], "viewer-viewer-001");
    assert_eq!(
        result["token"]["data"]["attributes"]["displayName"],
        "測試觀眾"
    );
    assert_eq!(result["heartbeat"]["success"], true);
    assert_eq!(result["stats"]["success"], true);
    assert_eq!(result["stats"]["data"]["activeStages"], 1);
    // The stats read model may trail the token by a few milliseconds.
    assert!(result["stats"]["data"]["totalViewers"].as_u64().unwrap() <= 1);
}

/// The gateway and chat description: the axios interceptor puts `Authorization` beside `query`, and
/// the sendGift example sends `server` and `actionName` too, with `Authorization` inside `query`
/// and lower-case `masteragent` ids. Both bodies are taken as they are.
#[tokio::test]
async fn the_seeds_gateway_bodies_work_unchanged() {
    use serde_json::json;

    let services = Services::start().await;
    let gw = crate::gateway_support::Gateway::start(&services).await;
    gw.create_member("livestreamer@agent.masteragent", "streamer")
        .await;
    let token = gw.member("member@agent.masteragent", "member").await;
    gw.set_gift(1, "Rose", 10).await;

    // The interceptor's shape: `{query, Authorization}`.
    let follow = gw
        .app
        .post_public(
            "/api/action/follow",
            &json!({"query": "{\"streamerID\":\"livestreamer@agent.masteragent\"}",
                    "Authorization": token}),
        )
        .await;
    assert_eq!(follow.status, 200, "{}", follow.body);

    // The sendGift example, verbatim but for the token.
    let query = format!(
        "{{\"Authorization\": \"{token}\", \"giftID\":1,\"giftCount\":1,\
         \"memberID\":\"member@agent.masteragent\",\"gameID\":\"livestreamer@agent.masteragent\",\
         \"agentID\":\"agent.masteragent\"}}"
    );
    let gift = gw
        .app
        .post_public(
            "/api/action/sendGift",
            &json!({"server": "giftSystem", "actionName": "sendGift", "query": query}),
        )
        .await;
    assert_eq!(gift.status, 200, "{}", gift.body);
    assert_eq!(gift.data()["gameID"], "livestreamer@agent.masteragent");
    assert_eq!(gift.data()["score"], 10);
}
