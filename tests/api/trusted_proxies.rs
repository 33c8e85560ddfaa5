//! Clients behind a proxy (`ONAIR_TRUSTED_PROXIES`, src/runtime/client_addr.rs): the per-IP socket
//! limits of `/primus` and `/ws` and the chat's `remoteIP` take the client from `X-Forwarded-For`
//! or `Forwarded` only when the TCP peer is a trusted proxy; an untrusted peer's forwarded
//! addresses are ignored. The rules themselves (rightmost untrusted, IPv6, malformed headers) are
//! the unit tests of src/runtime/client_addr.rs.

use std::net::IpAddr;

use serde_json::json;
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};

use crate::chat_support::ChatClient;
use crate::helpers::{Services, TestApp, spawn_app_with};
use crate::socket_limits::socket_url;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Upgrades `path` (`/primus` or `/ws`) with extra request `headers`; the socket, or the
/// refusal's status.
async fn upgrade(app: &TestApp, path: &str, headers: &[(&'static str, &str)]) -> Result<Ws, u16> {
    let mut request = socket_url(app, path).into_client_request().unwrap();
    for (name, value) in headers {
        request
            .headers_mut()
            .append(*name, value.parse().expect("a header value"));
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((ws, _)) => Ok(ws),
        Err(tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
        Err(e) => panic!("{path} {headers:?}: {e}"),
    }
}

fn open_sockets(app: &TestApp, client: &str) -> u32 {
    let ip: IpAddr = client.parse().unwrap();
    app.state.socket_limits.open_sockets(ip)
}

#[tokio::test]
async fn an_untrusted_peers_forwarded_addresses_are_ignored_so_spoofing_them_escapes_no_limit() {
    let services = Services::start().await;
    // Proxies are trusted, but the test client's 127.0.0.1 is none of them.
    let app = spawn_app_with(&services, |s| {
        s.trusted_proxies = "10.0.0.0/8, 2001:db8::/32".parse().unwrap();
        s.ws_max_sockets_per_ip = 2;
        s.ws_new_sockets_per_ip_per_second = 1_000;
    })
    .await;

    let mut chat =
        ChatClient::connect_with_headers(&app.address, &[("x-forwarded-for", "203.0.113.1")]).await;
    let details = chat.request(json!({"event": "detailsView"})).await;
    assert_eq!(details["data"]["remoteIP"], "127.0.0.1", "{details}");
    assert_ne!(details["data"]["remotePort"], 0, "the peer's own port");

    let _stats = upgrade(&app, "/ws", &[("x-forwarded-for", "203.0.113.2")])
        .await
        .expect("the second socket of 127.0.0.1");
    for forged in [
        ("x-forwarded-for", "203.0.113.3"),
        ("x-forwarded-for", "198.51.100.1, 203.0.113.3"),
        ("forwarded", "for=203.0.113.4"),
    ] {
        assert_eq!(
            upgrade(&app, "/primus", &[forged]).await.err(),
            Some(429),
            "{forged:?} counts as 127.0.0.1, which holds its 2 sockets"
        );
    }
    assert_eq!(open_sockets(&app, "127.0.0.1"), 2);
    assert_eq!(open_sockets(&app, "203.0.113.1"), 0);
}

#[tokio::test]
async fn a_trusted_proxys_forwarded_clients_each_get_their_own_per_ip_budget() {
    let services = Services::start().await;
    // The test client plays the proxy (nginx on loopback, as in scripts/cluster).
    let app = spawn_app_with(&services, |s| {
        s.trusted_proxies = "127.0.0.1/32".parse().unwrap();
        s.ws_max_sockets_per_ip = 1;
        s.ws_new_sockets_per_ip_per_second = 1_000;
    })
    .await;

    let mut alice =
        ChatClient::connect_with_headers(&app.address, &[("x-forwarded-for", "203.0.113.1")]).await;
    let details = alice.request(json!({"event": "detailsView"})).await;
    assert_eq!(details["data"]["remoteIP"], "203.0.113.1", "{details}");
    assert_eq!(
        details["data"]["remotePort"], 0,
        "a forwarded client has no port"
    );
    assert_eq!(
        upgrade(&app, "/ws", &[("x-forwarded-for", "203.0.113.1")])
            .await
            .err(),
        Some(429),
        "203.0.113.1 holds its one socket, /primus and /ws together"
    );

    // Another client through the same proxy has its own budget.
    let _bob = upgrade(&app, "/ws", &[("x-forwarded-for", "203.0.113.2")])
        .await
        .expect("203.0.113.2's own socket");
    // A client that names itself 203.0.113.1 is the address the proxy appended after it.
    let _carol = upgrade(
        &app,
        "/primus",
        &[("x-forwarded-for", "203.0.113.1, 198.51.100.7")],
    )
    .await
    .expect("198.51.100.7's own socket");
    // RFC 7239 `Forwarded`, IPv6 with a port.
    let _dave = upgrade(
        &app,
        "/primus",
        &[("forwarded", "for=\"[2001:db8::5]:4711\";proto=http")],
    )
    .await
    .expect("2001:db8::5's own socket");
    // The proxy's own requests (nothing forwarded) are its own.
    let _proxy = upgrade(&app, "/primus", &[])
        .await
        .expect("127.0.0.1's own socket");
    assert_eq!(upgrade(&app, "/primus", &[]).await.err(), Some(429));
    // A malformed header leaves the request at the proxy's address, which is full.
    assert_eq!(
        upgrade(&app, "/ws", &[("x-forwarded-for", "not-an-address")])
            .await
            .err(),
        Some(429)
    );

    for client in [
        "203.0.113.1",
        "203.0.113.2",
        "198.51.100.7",
        "2001:db8::5",
        "127.0.0.1",
    ] {
        assert_eq!(open_sockets(&app, client), 1, "{client}");
    }
}
