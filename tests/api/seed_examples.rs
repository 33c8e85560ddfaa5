//! The seed's own client examples, run against the server with only the base URL and key changed.

use std::time::Duration;

use crate::helpers::{Services, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seeds_python_ivs_client_works_unchanged() {
    let services = Services::start().await;
    let app = spawn_app(&services).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/seed/ivs_client.py");

    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new("python3")
            .arg(script)
            .arg(&app.address)
            .arg(&app.api_key)
            .output(),
    )
    .await
    .expect("the example finishes")
    .expect("python3 runs (scripts/test installs requests)");

    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
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
