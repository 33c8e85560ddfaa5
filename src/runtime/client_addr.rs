//! The client's address behind reverse proxies (`ONAIR_TRUSTED_PROXIES`).
//!
//! Without trusted proxies (the default) the client is the TCP peer. When the peer is inside one
//! of the trusted CIDRs, the client is taken from the addresses the proxies forwarded, by the
//! rightmost-untrusted rule (nginx's `realip` module with `real_ip_recursive on`): walk the list
//! from the right, that is from the hop nearest to onair, skip every address that is itself a
//! trusted proxy, and take the first one that is not. Addresses to its left were written by the
//! client or by proxies nobody vouches for, so they are never read: a client cannot forge its way
//! past the per-IP limits by sending its own `X-Forwarded-For`.
//!
//! The list is `X-Forwarded-For` (every line of it, comma-separated addresses, optionally with a
//! port: `203.0.113.7`, `203.0.113.7:4711`, `2001:db8::1`, `[2001:db8::1]:4711`) when the request
//! has one, else the `for=` parameters of RFC 7239 `Forwarded` (`for=192.0.2.60;proto=https`,
//! `for="[2001:db8:cafe::17]:4711"`). `X-Forwarded-For` wins because it is what nginx and most
//! load balancers write: behind such a proxy a client's own `Forwarded` passes through untouched
//! and must not be believed (a proxy that writes only `Forwarded` should drop the client's
//! `X-Forwarded-For`). When every forwarded address is a trusted proxy, the leftmost is taken.
//! An address the walk reaches that does not parse (`unknown`, an obfuscated `_node`, garbage)
//! leaves the client at the peer's address: a malformed header never fails a request.
//!
//! [`attach`] resolves the address once per request and keeps it as a request extension, where
//! the per-IP socket limits (src/runtime/socket_limits.rs), the chat's `remoteIP` and the request
//! span's `client.address` read it ([`ClientAddr::of`]).

use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV4};
use std::str::FromStr;
use std::sync::Arc;

use ipnet::IpNet;
use poem::http::HeaderMap;
use poem::{Endpoint, IntoResponse, Request, Response};

/// The proxies whose forwarded client addresses are believed (`ONAIR_TRUSTED_PROXIES`):
/// networks in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`) or single addresses. Empty (the
/// default): nobody is trusted and the client is always the TCP peer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Trusts the proxies inside `networks`.
    pub fn new(networks: Vec<IpNet>) -> Self {
        Self(networks.iter().map(IpNet::trunc).collect())
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` is a trusted proxy (an IPv4-mapped IPv6 address counts as its IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }
}

/// Parses `ONAIR_TRUSTED_PROXIES`: CIDRs or single addresses, comma-separated, spaces and empty
/// entries ignored (`""` trusts nobody). The error names the variable and the faulty entry.
impl FromStr for TrustedProxies {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let mut networks = Vec::new();
        for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let network = if entry.contains('/') {
                IpNet::from_str(entry).ok()
            } else {
                IpAddr::from_str(entry).ok().map(IpNet::from)
            };
            networks.push(network.ok_or_else(|| {
                format!(
                    "ONAIR_TRUSTED_PROXIES takes CIDRs such as 10.0.0.0/8 or 2001:db8::/32, or \
                     single addresses, comma-separated; {entry:?} is neither"
                )
            })?);
        }
        Ok(Self::new(networks))
    }
}

/// The client of a request, as [`attach`] resolved it (a request extension).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddr {
    /// The client's IP address: the TCP peer's, or the one a trusted proxy forwarded
    /// (`0.0.0.0` when the peer has no IP address).
    pub ip: IpAddr,
    /// The client's TCP port when `ip` is the peer's; `None` when it was forwarded (proxies do
    /// not forward ports reliably) or unknown.
    pub port: Option<u16>,
}

impl ClientAddr {
    /// The client of a request from `peer` with `headers` (see the module docs).
    pub fn resolve(
        peer: Option<SocketAddr>,
        headers: &HeaderMap,
        trusted: &TrustedProxies,
    ) -> Self {
        let Some(peer) = peer else {
            return Self {
                ip: IpAddr::from([0, 0, 0, 0]),
                port: None,
            };
        };
        match forwarded_client(peer.ip(), headers, trusted) {
            Some(ip) => Self { ip, port: None },
            None => Self {
                ip: peer.ip().to_canonical(),
                port: Some(peer.port()),
            },
        }
    }

    /// The client of `req`: what [`attach`] resolved, or the TCP peer of a request it did not
    /// see (a route mounted outside it).
    pub fn of(req: &Request) -> Self {
        req.extensions().get::<Self>().copied().unwrap_or_else(|| {
            Self::resolve(
                req.remote_addr().as_socket_addr().copied(),
                &HeaderMap::new(),
                &TrustedProxies::default(),
            )
        })
    }
}

/// The client a trusted proxy forwarded, by the rightmost-untrusted rule (see the module docs);
/// `None` when the client is the peer itself: the peer is not trusted, nothing was forwarded, or
/// an address the walk reached does not parse.
pub fn forwarded_client(
    peer: IpAddr,
    headers: &HeaderMap,
    trusted: &TrustedProxies,
) -> Option<IpAddr> {
    if trusted.is_empty() || !trusted.contains(peer) {
        return None;
    }
    let hops = if headers.contains_key("x-forwarded-for") {
        x_forwarded_for(headers)?
    } else {
        forwarded_for(headers)?
    };
    let mut client = None;
    for hop in hops.into_iter().rev() {
        let ip = hop?.to_canonical();
        client = Some(ip);
        if !trusted.contains(ip) {
            break;
        }
    }
    client
}

/// The addresses of every `X-Forwarded-For` line, left to right (`None` for one that does not
/// parse); `None` when a line is not text.
fn x_forwarded_for(headers: &HeaderMap) -> Option<Vec<Option<IpAddr>>> {
    let mut hops = Vec::new();
    for line in headers.get_all("x-forwarded-for") {
        let line = line.to_str().ok()?;
        hops.extend(
            line.split(',')
                .map(str::trim)
                .filter(|hop| !hop.is_empty())
                .map(parse_node),
        );
    }
    Some(hops)
}

/// The `for=` of every element of every `Forwarded` line, left to right (`None` for an element
/// without one, or whose node is not an address); `None` when a line is not text or its quotes
/// do not close.
fn forwarded_for(headers: &HeaderMap) -> Option<Vec<Option<IpAddr>>> {
    let mut hops = Vec::new();
    for line in headers.get_all("forwarded") {
        let line = line.to_str().ok()?;
        for element in split_outside_quotes(line, ',')? {
            if element.trim().is_empty() {
                continue;
            }
            let mut node = None;
            let mut repeated = false;
            for pair in split_outside_quotes(element, ';')? {
                let Some((name, value)) = pair.split_once('=') else {
                    continue;
                };
                if name.trim().eq_ignore_ascii_case("for") {
                    repeated |= node.is_some();
                    node = Some(unquote(value.trim()));
                }
            }
            let hop = match node {
                Some(Some(node)) if !repeated => parse_node(&node),
                _ => None,
            };
            hops.push(hop);
        }
    }
    Some(hops)
}

/// `text` split at every `separator` outside a quoted string (`\` escapes the next character
/// inside one); `None` when a quoted string does not end.
fn split_outside_quotes(text: &str, separator: char) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == separator && !quoted {
            parts.push(&text[start..i]);
            start = i + c.len_utf8();
        }
    }
    if quoted {
        return None;
    }
    parts.push(&text[start..]);
    Some(parts)
}

/// A token as is, or a quoted string without its quotes and escapes; `None` for a quote that
/// does not close.
fn unquote(value: &str) -> Option<String> {
    let Some(inner) = value.strip_prefix('"') else {
        return Some(value.to_owned());
    };
    let inner = inner.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        out.push(if c == '\\' { chars.next()? } else { c });
    }
    Some(out)
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`, `[2001:db8::1]`
/// or `[2001:db8::1]:4711`; `None` for anything else (`unknown`, `_hidden`, a name, garbage).
fn parse_node(node: &str) -> Option<IpAddr> {
    let node = node.trim();
    if let Some(rest) = node.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        let port_ok = after.is_empty()
            || after
                .strip_prefix(':')
                .is_some_and(|port| port.parse::<u16>().is_ok());
        if !port_ok {
            return None;
        }
        return Ipv6Addr::from_str(ip).ok().map(IpAddr::V6);
    }
    IpAddr::from_str(node).ok().or_else(|| {
        SocketAddrV4::from_str(node)
            .ok()
            .map(|a| IpAddr::V4(*a.ip()))
    })
}

/// The middleware that resolves the request's [`ClientAddr`] from `trusted` and keeps it as a
/// request extension for everything inside.
pub async fn attach<E: Endpoint>(
    ep: Arc<E>,
    mut req: Request,
    trusted: Arc<TrustedProxies>,
) -> poem::Result<Response> {
    let client = ClientAddr::resolve(
        req.remote_addr().as_socket_addr().copied(),
        req.headers(),
        &trusted,
    );
    req.extensions_mut().insert(client);
    ep.call(req).await.map(IntoResponse::into_response)
}

#[cfg(test)]
mod tests {
    use poem::http::HeaderValue;

    use super::*;

    fn trusted(list: &str) -> TrustedProxies {
        list.parse().expect("valid trusted proxies")
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn client(peer: &str, trusted_list: &str, pairs: &[(&'static str, &str)]) -> String {
        ClientAddr::resolve(
            Some(peer.parse().unwrap()),
            &headers(pairs),
            &trusted(trusted_list),
        )
        .ip
        .to_string()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let forged = [("x-forwarded-for", "203.0.113.9")];
        assert_eq!(client("198.51.100.1:5000", "", &forged), "198.51.100.1");
        assert_eq!(
            client("198.51.100.1:5000", "10.0.0.0/8", &forged),
            "198.51.100.1"
        );
        assert_eq!(
            client(
                "198.51.100.1:5000",
                "10.0.0.0/8",
                &[("forwarded", "for=203.0.113.9")]
            ),
            "198.51.100.1"
        );
        let peer = ClientAddr::resolve(
            Some("198.51.100.1:5000".parse().unwrap()),
            &headers(&forged),
            &trusted("10.0.0.0/8"),
        );
        assert_eq!(peer.port, Some(5000), "the peer's port is kept");
    }

    #[test]
    fn the_rightmost_untrusted_address_is_the_client() {
        let proxies = "10.0.0.0/8, 192.168.1.1";
        // The client sent `1.1.1.1` itself; the edge proxy appended the real client, an inner
        // proxy appended the edge proxy.
        let chain = [("x-forwarded-for", "1.1.1.1, 203.0.113.7, 10.1.2.3")];
        assert_eq!(client("192.168.1.1:80", proxies, &chain), "203.0.113.7");
        assert_eq!(
            client(
                "10.9.9.9:80",
                proxies,
                &[("x-forwarded-for", "203.0.113.7")]
            ),
            "203.0.113.7"
        );
        let forwarded = ClientAddr::resolve(
            Some("10.9.9.9:80".parse().unwrap()),
            &headers(&chain),
            &trusted(proxies),
        );
        assert_eq!(forwarded.port, None, "a forwarded client has no port");
        // Several lines are one list, in order.
        assert_eq!(
            client(
                "10.0.0.1:80",
                proxies,
                &[
                    ("x-forwarded-for", "1.1.1.1"),
                    ("x-forwarded-for", "203.0.113.7, 10.0.0.2")
                ]
            ),
            "203.0.113.7"
        );
        // Only proxies: the leftmost.
        assert_eq!(
            client(
                "10.0.0.1:80",
                proxies,
                &[("x-forwarded-for", "10.0.0.3, 10.0.0.2")]
            ),
            "10.0.0.3"
        );
        // Ports written by some balancers, empty entries.
        assert_eq!(
            client(
                "10.0.0.1:80",
                proxies,
                &[("x-forwarded-for", "203.0.113.7:4711, ,10.0.0.2:80")]
            ),
            "203.0.113.7"
        );
    }

    #[test]
    fn forwarded_is_read_when_there_is_no_x_forwarded_for() {
        let proxies = "10.0.0.0/8";
        assert_eq!(
            client(
                "10.0.0.1:80",
                proxies,
                &[(
                    "forwarded",
                    "for=1.1.1.1, For=\"203.0.113.7:4711\";proto=https;by=10.0.0.1, for=10.0.0.2"
                )]
            ),
            "203.0.113.7"
        );
        assert_eq!(
            client(
                "10.0.0.1:80",
                proxies,
                &[("forwarded", "proto=http;for=\"[2001:db8:cafe::17]:4711\"")]
            ),
            "2001:db8:cafe::17"
        );
        assert_eq!(
            client(
                "10.0.0.1:80",
                proxies,
                &[(
                    "forwarded",
                    "for=\"[2001:db8::1]\";by=\"a,b;c\", for=10.0.0.2"
                )]
            ),
            "2001:db8::1",
            "separators inside quotes do not split"
        );
        assert_eq!(
            client(
                "10.0.0.1:80",
                proxies,
                &[
                    ("forwarded", "for=203.0.113.9"),
                    ("x-forwarded-for", "198.51.100.4")
                ]
            ),
            "198.51.100.4",
            "X-Forwarded-For wins: a client's own Forwarded passes through nginx"
        );
    }

    #[test]
    fn ipv6_peers_proxies_and_clients() {
        let proxies = "2001:db8:ffff::/48, 127.0.0.1";
        assert_eq!(
            client(
                "[2001:db8:ffff::1]:443",
                proxies,
                &[("x-forwarded-for", "2001:db8:1::7, 2001:db8:ffff::2")]
            ),
            "2001:db8:1::7"
        );
        assert_eq!(
            client(
                "[2001:db8:ffff::1]:443",
                proxies,
                &[("x-forwarded-for", "[2001:db8:1::7]:5555")]
            ),
            "2001:db8:1::7"
        );
        // A dual-stack listener sees IPv4 peers as IPv4-mapped IPv6 addresses.
        assert_eq!(
            client(
                "[::ffff:127.0.0.1]:80",
                proxies,
                &[("x-forwarded-for", "::ffff:203.0.113.7")]
            ),
            "203.0.113.7"
        );
        assert_eq!(client("[::ffff:192.0.2.1]:80", proxies, &[]), "192.0.2.1");
    }

    #[test]
    fn malformed_headers_leave_the_client_at_the_peer() {
        let proxies = "10.0.0.0/8";
        for (name, value) in [
            ("x-forwarded-for", "not-an-address"),
            ("x-forwarded-for", "203.0.113.7, garbage, 10.0.0.2"),
            ("x-forwarded-for", "[2001:db8::1"),
            ("x-forwarded-for", "[2001:db8::1]:port"),
            ("x-forwarded-for", "203.0.113.7:99999"),
            ("x-forwarded-for", "fe80::1%eth0"),
            ("x-forwarded-for", ""),
            ("forwarded", "for=unknown"),
            ("forwarded", "for=_hidden"),
            ("forwarded", "proto=https"),
            ("forwarded", "for=\"203.0.113.7"),
            ("forwarded", "for=203.0.113.7;for=198.51.100.1"),
            ("forwarded", "for=\"[2001:db8::1]:4711\\"),
            ("forwarded", ";;==,,"),
        ] {
            assert_eq!(
                client("10.0.0.1:80", proxies, &[(name, value)]),
                "10.0.0.1",
                "{name}: {value}"
            );
        }
        // Not text at all.
        let mut map = HeaderMap::new();
        map.insert(
            "x-forwarded-for",
            HeaderValue::from_bytes(b"203.0.113.7\xff").unwrap(),
        );
        assert_eq!(
            forwarded_client("10.0.0.1".parse().unwrap(), &map, &trusted(proxies)),
            None
        );
        // Garbage left of the client is the client's own business.
        assert_eq!(
            client(
                "10.0.0.1:80",
                proxies,
                &[("x-forwarded-for", "garbage, 203.0.113.7")]
            ),
            "203.0.113.7"
        );
    }

    #[test]
    fn trusted_proxies_parse_cidrs_and_addresses_and_name_the_setting_when_wrong() {
        let parsed = trusted(" 10.0.0.0/8, 127.0.0.1 ,, 2001:db8::/32,");
        assert!(parsed.contains("10.200.0.1".parse().unwrap()));
        assert!(parsed.contains("127.0.0.1".parse().unwrap()));
        assert!(!parsed.contains("127.0.0.2".parse().unwrap()));
        assert!(parsed.contains("2001:db8:1::1".parse().unwrap()));
        assert!(parsed.contains("::ffff:10.0.0.1".parse().unwrap()));
        assert!(trusted("").is_empty());
        assert!(trusted("10.1.2.3/8").contains("10.0.0.1".parse().unwrap()));
        for bad in [
            "10.0.0.0/33",
            "localhost",
            "10.0.0/8",
            "2001:db8::/129",
            "*",
        ] {
            let error = bad.parse::<TrustedProxies>().unwrap_err();
            assert!(
                error.contains("ONAIR_TRUSTED_PROXIES") && error.contains(bad),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn a_peer_without_an_ip_address_is_the_unspecified_address() {
        let none = ClientAddr::resolve(None, &HeaderMap::new(), &trusted("0.0.0.0/0"));
        assert_eq!(none.ip, IpAddr::from([0, 0, 0, 0]));
        assert_eq!(none.port, None);
    }
}
