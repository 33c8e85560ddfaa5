//! HTTP hygiene: a client that trickles its request head is disconnected after
//! `ONAIR_HEADER_READ_TIMEOUT_SECS`, a WebSocket is not; connections beyond
//! `ONAIR_MAX_CONNECTIONS` are answered 503 and closed; HTML answers carry the security headers.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::chat_support::ChatClient;
use crate::helpers::{Services, eventually, spawn_app_with};

/// Reads until the server closes the connection (EOF or reset); returns what was read.
async fn read_until_closed(tcp: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tcp.read(&mut buf).await {
            Ok(0) | Err(_) => return all,
            Ok(n) => all.extend_from_slice(&buf[..n]),
        }
    }
}

fn host(address: &str) -> String {
    address.trim_start_matches("http://").to_owned()
}

#[tokio::test]
async fn a_client_trickling_its_request_head_is_disconnected_after_the_timeout() {
    let services = Services::start().await;
    let app = spawn_app_with(&services, |s| {
        s.header_read_timeout_secs = 0.5;
        s.keep_alive_timeout_secs = 1.5;
    })
    .await;
    let addr = host(&app.address);

    // Slowloris: a request line, then one header byte every 50 ms, never the blank line.
    let mut tcp = TcpStream::connect(&addr).await.unwrap();
    let started = Instant::now();
    tcp.write_all(b"GET /health HTTP/1.1\r\nHost: onair\r\n")
        .await
        .unwrap();
    let (mut reader, mut writer) = tcp.into_split();
    let trickle = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        let mut sent = 0u32;
        // Bounded: 200 bytes (10 s) at most; the server should close long before.
        while sent < 200 {
            tick.tick().await;
            if writer.write_all(b"X").await.is_err() {
                break;
            }
            sent += 1;
        }
        sent
    });
    let mut buf = [0u8; 1024];
    let read = tokio::time::timeout(Duration::from_secs(5), reader.read(&mut buf))
        .await
        .expect("the server closes a trickling client within timeout + margin");
    let elapsed = started.elapsed();
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "no answer, just a close: {read:?}"
    );
    assert!(
        elapsed >= Duration::from_millis(450) && elapsed < Duration::from_secs(3),
        "closed after {elapsed:?}, timeout 0.5 s"
    );
    let sent = trickle.await.unwrap();
    assert!(sent < 200, "the trickle was cut off (sent {sent} bytes)");

    // A complete head in time is served; the connection may then idle for the keep-alive
    // timeout (longer than the head's), after which it is closed.
    let mut tcp = TcpStream::connect(&addr).await.unwrap();
    tcp.write_all(b"GET /openapi.json HTTP/1.1\r\nHost: onair\r\n\r\n")
        .await
        .unwrap();
    let idle_from = Instant::now();
    let answer = tokio::time::timeout(Duration::from_secs(6), read_until_closed(&mut tcp))
        .await
        .expect("an idle keep-alive connection is closed within timeout + margin");
    let idle = idle_from.elapsed();
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer[..answer.len().min(200)])
    );
    assert!(idle >= Duration::from_millis(1400), "idle for {idle:?}");

    // On a kept-alive connection, the next head trickled slowly is cut at the head timeout.
    let mut tcp = TcpStream::connect(&addr).await.unwrap();
    tcp.write_all(b"GET /openapi.json HTTP/1.1\r\nHost: onair\r\n\r\n")
        .await
        .unwrap();
    let mut status = [0u8; 12];
    tcp.read_exact(&mut status).await.unwrap();
    assert_eq!(&status, b"HTTP/1.1 200");
    tcp.write_all(b"GET /health HTTP/1.1\r\n").await.unwrap();
    let second_from = Instant::now();
    let rest = tokio::time::timeout(Duration::from_secs(5), read_until_closed(&mut tcp))
        .await
        .expect("closed");
    let took = second_from.elapsed();
    assert!(
        !String::from_utf8_lossy(&rest).contains("HTTP/1.1 "),
        "the trickled second request was not answered"
    );
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_millis(1400),
        "the head timer (0.5 s), not the keep-alive one (1.5 s), closed it after {took:?}"
    );

    // A WebSocket is not a request head: it outlives the timeout and still answers.
    let mut chat = ChatClient::connect(&app.address, "").await;
    let mut tick = tokio::time::interval(Duration::from_millis(400));
    tick.tick().await;
    for _ in 0..3 {
        tick.tick().await;
        let details = chat
            .request(serde_json::json!({"event": "detailsView"}))
            .await;
        assert_eq!(details["data"]["id"], chat.id.as_str());
    }
}

#[tokio::test]
async fn connections_beyond_the_limit_are_answered_503_and_closed_until_one_ends() {
    let services = Services::start().await;
    let app = spawn_app_with(&services, |s| s.max_connections = 3).await;
    let addr = host(&app.address);

    // Three connections hold every slot; each is served (so it was accepted).
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut tcp = TcpStream::connect(&addr).await.unwrap();
        tcp.write_all(b"GET /openapi.json HTTP/1.1\r\nHost: onair\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 16];
        tcp.read_exact(&mut buf).await.unwrap();
        assert!(buf.starts_with(b"HTTP/1.1 200"));
        held.push(tcp);
    }

    for _ in 0..5 {
        let mut extra = TcpStream::connect(&addr).await.unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(5), read_until_closed(&mut extra))
            .await
            .expect("the extra connection is closed at once");
        let text = String::from_utf8_lossy(&answer);
        assert!(text.starts_with("HTTP/1.1 503"), "{text}");
        assert!(text.contains("too many connections"), "{text}");
    }
    let refused = app
        .client
        .get(format!("{}/health", app.address))
        .send()
        .await;
    assert!(
        refused.map(|r| r.status() == 503).unwrap_or(true),
        "a client gets 503 or a closed connection"
    );

    // One ends: its slot is free again.
    drop(held.pop());
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let url = format!("{}/openapi.json", app.address);
    eventually(Duration::from_secs(5), || {
        let (client, url) = (client.clone(), url.clone());
        async move {
            client
                .get(url)
                .send()
                .await
                .ok()
                .filter(|r| r.status() == 200)
        }
    })
    .await;
}

#[tokio::test]
async fn html_pages_carry_the_security_headers_and_json_answers_do_not() {
    let services = Services::start().await;
    let app = spawn_app_with(&services, |_| {}).await;

    let docs = app
        .client
        .get(format!("{}/docs", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(docs.status(), 200);
    let headers = docs.headers().clone();
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "{headers:?}"
    );
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert_eq!(
        csp,
        onair::http::security_headers::HTML_CONTENT_SECURITY_POLICY
    );
    for needed in [
        "default-src 'none'",
        "frame-ancestors 'none'",
        "connect-src 'self'",
    ] {
        assert!(csp.contains(needed), "{csp}");
    }
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    // Swagger UI works under that policy: everything it runs is inlined in the page (allowed by
    // 'unsafe-inline'), and it loads nothing from another origin.
    let page = docs.text().await.unwrap();
    assert!(page.contains("SwaggerUIBundle"));
    for tag in ["<script src=\"http", "<link rel=\"stylesheet\" href=\"http"] {
        assert!(!page.contains(tag), "the page loads {tag}...");
    }

    for path in ["/openapi.json", "/health"] {
        let answer = app
            .client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert!(
            answer.headers().get("content-security-policy").is_none(),
            "{path}: {:?}",
            answer.headers()
        );
    }
}
