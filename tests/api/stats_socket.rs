use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{Services, TestApp, spawn_app_with};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(app: &TestApp) -> Socket {
    let url = format!(
        "{}/ws?apiKey={}",
        app.address.replace("http://", "ws://"),
        app.api_key
    );
    tokio_tungstenite::connect_async(url)
        .await
        .expect("upgrade")
        .0
}

async fn next_json(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("a frame within 5 s")
            .expect("open socket")
            .expect("valid frame");
        if let Message::Text(text) = message {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

async fn send(socket: &mut Socket, text: &str) {
    socket.send(Message::Text(text.into())).await.unwrap();
}

#[tokio::test]
async fn a_subscriber_gets_stats_updates_until_it_unsubscribes() {
    let services = Services::start().await;
    let app = spawn_app_with(&services, |s| s.stats_push_interval_ms = 200).await;
    assert_eq!(app.viewer_token("v1").await.status, 200);
    app.wait_for_projections().await;
    // The stats feed samples every 200 ms in the background and shows nothing a test can wait
    // on before a socket subscribes: the pause lets one sample include v1.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut socket = connect(&app).await;

    send(&mut socket, r#"{"type":"subscribe","channel":"stats"}"#).await;
    assert_eq!(
        next_json(&mut socket).await,
        json!({"type": "subscribed", "channel": "stats"})
    );
    for _ in 0..2 {
        let update = next_json(&mut socket).await;
        assert_eq!(update["type"], "stats_update");
        assert_eq!(update["data"]["viewerCount"], 1);
        assert_eq!(update["data"]["activeStages"], 1);
        assert!(update["data"]["timestamp"].as_str().unwrap().ends_with('Z'));
    }

    send(&mut socket, r#"{"type":"unsubscribe","channel":"stats"}"#).await;
    loop {
        let frame = next_json(&mut socket).await;
        if frame["type"] == "unsubscribed" {
            break;
        }
        assert_eq!(
            frame["type"], "stats_update",
            "only updates already under way"
        );
    }
    send(&mut socket, r#"{"type":"ping"}"#).await;
    // After unsubscribing, the next frame is the pong, not an update (updates come every 200 ms).
    // This proves an absence (no update after the unsubscribe), so it waits out more than two
    // update periods rather than a condition.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(next_json(&mut socket).await, json!({"type": "pong"}));
}

#[tokio::test]
async fn bad_frames_get_error_frames_and_the_socket_stays_open() {
    let services = Services::start().await;
    let app = spawn_app_with(&services, |s| s.stats_push_interval_ms = 200).await;
    let mut socket = connect(&app).await;

    for (frame, code) in [
        ("not json", "INVALID_MESSAGE"),
        (
            r#"{"type":"subscribe","channel":"chat"}"#,
            "UNKNOWN_CHANNEL",
        ),
        (r#"{"type":"dance"}"#, "UNKNOWN_TYPE"),
    ] {
        send(&mut socket, frame).await;
        let answer = next_json(&mut socket).await;
        assert_eq!(answer["type"], "error", "{frame}");
        assert_eq!(answer["error"], code, "{frame}");
    }
    socket
        .send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    assert_eq!(next_json(&mut socket).await["error"], "INVALID_MESSAGE");
    send(&mut socket, r#"{"type":"subscribe","channel":"stats"}"#).await;
    assert_eq!(next_json(&mut socket).await["type"], "subscribed");
}

#[tokio::test]
async fn the_socket_needs_an_api_key_in_the_header_or_query() {
    let services = Services::start().await;
    let app = spawn_app_with(&services, |s| s.stats_push_interval_ms = 200).await;
    let base = app.address.replace("http://", "ws://");

    let refused = tokio_tungstenite::connect_async(format!("{base}/ws")).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 401)
        }
        other => panic!("expected 401, got {other:?}"),
    }
    let wrong = tokio_tungstenite::connect_async(format!("{base}/ws?apiKey=onair_nope")).await;
    assert!(wrong.is_err());

    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("{base}/ws").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("x-api-key", app.api_key.parse().unwrap());
    assert!(tokio_tungstenite::connect_async(request).await.is_ok());
}

/// A plain GET of a WebSocket route (no `Upgrade: websocket`) is not an upgrade: 426
/// `UPGRADE_REQUIRED` in the API's error body, naming the protocol in `Upgrade`, with or without
/// an API key. An upgrade missing only its WebSocket key is still a 400.
#[tokio::test]
async fn a_plain_get_of_a_socket_route_answers_426_upgrade_required() {
    let services = Services::start().await;
    let app = spawn_app_with(&services, |_| {}).await;
    for path in ["/ws", "/primus", "/primus/?sessionID=abc"] {
        for key in [None, Some(app.api_key.as_str())] {
            let mut request = app.client.get(format!("{}{path}", app.address));
            if let Some(key) = key {
                request = request.header("x-api-key", key);
            }
            let answer = request.send().await.unwrap();
            assert_eq!(answer.status(), 426, "{path}");
            assert_eq!(answer.headers()["upgrade"], "websocket", "{path}");
            let body: Value = answer.json().await.unwrap();
            assert_eq!(body["success"], false, "{path}: {body}");
            assert_eq!(body["error"], "UPGRADE_REQUIRED", "{path}: {body}");
            assert!(
                body["message"]
                    .as_str()
                    .unwrap()
                    .contains("Upgrade: websocket"),
                "{body}"
            );
        }
    }
    let half = app
        .client
        .get(format!("{}/ws", app.address))
        .header("x-api-key", &app.api_key)
        .header("upgrade", "websocket")
        .header("connection", "upgrade")
        .send()
        .await
        .unwrap();
    assert_eq!(half.status(), 400);
    let body: Value = half.json().await.unwrap();
    assert_eq!(body["error"], "VALIDATION_ERROR", "{body}");
}
