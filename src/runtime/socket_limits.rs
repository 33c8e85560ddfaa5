//! Flood guards of the two WebSocket endpoints, `/primus*` (src/chat/socket.rs) and `/ws`
//! (src/http/stats_socket.rs) (docs/security.md#websocket-floods-and-message-size-primus-and-ws):
//!
//! - **Per IP, before the upgrade** ([`SocketLimits::admit`]): at most `ONAIR_WS_MAX_SOCKETS_PER_IP`
//!   sockets open at once (both endpoints counted together) and at most
//!   `ONAIR_WS_NEW_SOCKETS_PER_IP_PER_SECOND` new ones per second (a GCRA whose burst is the same
//!   number). Over either, the upgrade is answered 429 `TOO_MANY_REQUESTS` with `Retry-After`
//!   and a warning is logged with the IP. The IP is the client's
//!   ([`super::client_addr::ClientAddr`]): the TCP peer's, or, behind a proxy listed in
//!   `ONAIR_TRUSTED_PROXIES`, the address that proxy forwarded (an untrusted peer's
//!   `X-Forwarded-For` is ignored: any client could forge it). IPv6 clients are counted per /64,
//!   the block one host usually holds.
//! - **Per socket** ([`FrameRate`]): at most `ONAIR_WS_FRAMES_PER_SECOND` frames (any kind, burst
//!   `ONAIR_WS_FRAMES_BURST`); a frame over it is not handled and the client is told once a
//!   second (chat: system message 42901; stats: an error frame `TOO_FAST`); a client that sends
//!   more than twice the rate within one second is closed with 1008 (policy violation).
//! - **Message size** ([`SocketLimits::websocket_config`]): the WebSocket library refuses a
//!   frame or message over `ONAIR_WS_MAX_MESSAGE_BYTES` as soon as its header announces the size,
//!   before reading it; the socket is then closed with 1009 ([`close_for_read_error`]).
//!
//! A [`SocketPermit`] counts one open socket of its IP until it is dropped.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use poem::web::websocket::WebSocketConfig;

use crate::runtime::clock::Clock;

/// Entries kept for IPs with no open socket before the map is pruned of those whose rate
/// window is over.
const PRUNE_ABOVE: usize = 4096;

/// A socket refused before its upgrade: answered 429 `TOO_MANY_REQUESTS` with its `message`,
/// `details` and `Retry-After` (src/http/api_error.rs words the answer).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SocketRefused {
    /// What the client is told.
    pub message: String,
    /// The limit that refused it.
    pub details: String,
    /// When to retry (`Retry-After`), in seconds.
    pub retry_after_secs: u64,
}

impl poem::error::ResponseError for SocketRefused {
    fn status(&self) -> poem::http::StatusCode {
        poem::http::StatusCode::TOO_MANY_REQUESTS
    }
}

/// The socket limits' settings (src/server/config.rs, `ONAIR_WS_*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocketLimitSettings {
    /// Sockets (`/primus` and `/ws` together) one IP may hold open (default 100).
    pub max_sockets_per_ip: u32,
    /// New sockets one IP may open per second, also the burst (default 20).
    pub new_sockets_per_ip_per_second: u32,
    /// Frames a socket may send per second (default 20).
    pub frames_per_second: u32,
    /// Frames a socket may send at once before the rate applies (default 40).
    pub frames_burst: u32,
    /// Largest WebSocket message (and frame), in bytes (default 64 KiB, the REST body limit).
    pub max_message_bytes: usize,
    /// A `/ws` socket from which nothing arrived (not even a pong) this long is closed; the server
    /// pings it every third of this (default 90 s).
    pub idle_timeout: Duration,
}

impl Default for SocketLimitSettings {
    fn default() -> Self {
        Self {
            max_sockets_per_ip: 100,
            new_sockets_per_ip_per_second: 20,
            frames_per_second: 20,
            frames_burst: 40,
            max_message_bytes: 64 * 1024,
            idle_timeout: Duration::from_secs(90),
        }
    }
}

#[derive(Debug, Default)]
struct IpEntry {
    /// Sockets open now.
    open: u32,
    /// GCRA theoretical arrival time of the next new socket, Unix ms.
    tat_ms: f64,
}

/// Per-IP socket counts and rates of this instance (see the module docs). Cheap to clone; clones
/// share their counts.
#[derive(Clone)]
pub struct SocketLimits {
    settings: Arc<SocketLimitSettings>,
    clock: Clock,
    per_ip: Arc<Mutex<HashMap<IpAddr, IpEntry>>>,
}

/// Why a new socket was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The IP already holds the most sockets allowed.
    TooManyOpen,
    /// The IP opened sockets faster than allowed; retry after this many seconds.
    TooFast {
        /// Seconds until the next socket is allowed (at least 1).
        retry_after_secs: u64,
    },
}

impl SocketLimits {
    /// Limits with `settings`, timed by `clock`.
    pub fn new(settings: SocketLimitSettings, clock: Clock) -> Self {
        Self {
            settings: Arc::new(settings),
            clock,
            per_ip: Arc::default(),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &SocketLimitSettings {
        &self.settings
    }

    /// The WebSocket library's configuration: messages and frames over the size limit are
    /// refused from their header, before they are read.
    pub fn websocket_config(&self) -> WebSocketConfig {
        WebSocketConfig::default()
            .max_message_size(Some(self.settings.max_message_bytes))
            .max_frame_size(Some(self.settings.max_message_bytes))
    }

    /// Sockets open now from the client address `client` (its /64 for IPv6).
    pub fn open_sockets(&self, client: IpAddr) -> u32 {
        self.per_ip
            .lock()
            .expect("socket limits")
            .get(&ip_key(client))
            .map_or(0, |e| e.open)
    }

    /// Counts a new socket of the client address `client` on `endpoint` (`/primus` or `/ws`), or
    /// refuses it with the 429 to answer (and logs a warning).
    pub fn admit(
        &self,
        client: IpAddr,
        endpoint: &'static str,
    ) -> Result<SocketPermit, SocketRefused> {
        let ip = ip_key(client);
        let now = self.clock.now_ms() as f64;
        let decision = self.decide(ip, now);
        match decision {
            Ok(()) => Ok(SocketPermit {
                limits: self.clone(),
                ip,
            }),
            Err(refusal) => {
                tracing::warn!(%ip, endpoint, ?refusal, "WebSocket refused before the upgrade: over the per-IP limit");
                Err(self.refusal_error(refusal))
            }
        }
    }

    fn decide(&self, ip: IpAddr, now: f64) -> Result<(), Refusal> {
        let mut map = self.per_ip.lock().expect("socket limits");
        if map.len() > PRUNE_ABOVE {
            map.retain(|_, e| e.open > 0 || e.tat_ms > now);
        }
        let entry = map.entry(ip).or_default();
        if entry.open >= self.settings.max_sockets_per_ip {
            return Err(Refusal::TooManyOpen);
        }
        let rate = f64::from(self.settings.new_sockets_per_ip_per_second.max(1));
        let interval = 1000.0 / rate;
        let tolerance = interval * (rate - 1.0);
        let tat = entry.tat_ms.max(now);
        if tat - now > tolerance {
            let wait_ms = tat - now - tolerance;
            return Err(Refusal::TooFast {
                retry_after_secs: ((wait_ms / 1000.0).ceil() as u64).max(1),
            });
        }
        entry.tat_ms = tat + interval;
        entry.open += 1;
        Ok(())
    }

    fn refusal_error(&self, refusal: Refusal) -> SocketRefused {
        let s = &self.settings;
        match refusal {
            Refusal::TooManyOpen => SocketRefused {
                message: format!(
                    "too many open WebSockets from this address (limit {}); close one first",
                    s.max_sockets_per_ip
                ),
                details: format!(
                    "limit: {} open sockets per IP address, /primus and /ws together",
                    s.max_sockets_per_ip
                ),
                retry_after_secs: 1,
            },
            Refusal::TooFast { retry_after_secs } => SocketRefused {
                message: format!(
                    "too many new WebSockets from this address (limit {} per second); retry in \
                     {retry_after_secs} s",
                    s.new_sockets_per_ip_per_second
                ),
                details: format!(
                    "limit: {} new sockets per second per IP address, burst {}",
                    s.new_sockets_per_ip_per_second, s.new_sockets_per_ip_per_second
                ),
                retry_after_secs,
            },
        }
    }

    fn release(&self, ip: IpAddr) {
        let now = self.clock.now_ms() as f64;
        let mut map = self.per_ip.lock().expect("socket limits");
        if let Some(entry) = map.get_mut(&ip) {
            entry.open = entry.open.saturating_sub(1);
            if entry.open == 0 && entry.tat_ms <= now {
                map.remove(&ip);
            }
        }
    }
}

/// The key an address is counted under: an IPv4 address (IPv4-mapped IPv6 included) as is, the
/// /64 of any other IPv6 address.
fn ip_key(client: IpAddr) -> IpAddr {
    match client.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
        v4 => v4,
    }
}

/// One open socket of an IP, counted until dropped (held by the socket's task).
pub struct SocketPermit {
    limits: SocketLimits,
    ip: IpAddr,
}

impl SocketPermit {
    /// The socket limits' settings.
    pub fn settings(&self) -> &SocketLimitSettings {
        self.limits.settings()
    }

    /// A fresh frame-rate counter for this socket.
    pub fn frame_rate(&self) -> FrameRate {
        FrameRate::new(
            self.limits.settings.frames_per_second,
            self.limits.settings.frames_burst,
            self.now_ms(),
        )
    }

    /// Now, Unix ms, from the injected clock.
    pub fn now_ms(&self) -> i64 {
        self.limits.clock.now_ms()
    }
}

impl Drop for SocketPermit {
    fn drop(&mut self) {
        self.limits.release(self.ip);
    }
}

/// What to do with a socket's frame (see [`FrameRate::check`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameVerdict {
    /// Within the rate: handle it.
    Handle,
    /// Over the rate: do not handle it, and tell the client it is too fast.
    RefuseAndWarn,
    /// Over the rate, already told this second: do not handle it.
    Refuse,
    /// Over twice the rate within one second: close the socket with 1008.
    Close,
}

/// A socket's frame rate: a token bucket of `burst` frames refilled at `per_second`, and the
/// refusals of the current one-second window.
#[derive(Clone, Debug)]
pub struct FrameRate {
    per_second: f64,
    burst: f64,
    tokens: f64,
    last_ms: i64,
    window_start_ms: i64,
    refused_in_window: u32,
    close_after: u32,
}

impl FrameRate {
    /// A full bucket at `now_ms`.
    pub fn new(per_second: u32, burst: u32, now_ms: i64) -> Self {
        let burst = f64::from(burst.max(per_second).max(1));
        Self {
            per_second: f64::from(per_second.max(1)),
            burst,
            tokens: burst,
            last_ms: now_ms,
            window_start_ms: i64::MIN,
            refused_in_window: 0,
            close_after: per_second.max(1),
        }
    }

    /// Counts one frame arriving at `now_ms`.
    pub fn check(&mut self, now_ms: i64) -> FrameVerdict {
        let elapsed = (now_ms - self.last_ms).max(0) as f64 / 1000.0;
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        self.last_ms = now_ms.max(self.last_ms);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return FrameVerdict::Handle;
        }
        if now_ms.saturating_sub(self.window_start_ms) >= 1000 {
            self.window_start_ms = now_ms;
            self.refused_in_window = 1;
            return FrameVerdict::RefuseAndWarn;
        }
        self.refused_in_window += 1;
        if self.refused_in_window > self.close_after {
            FrameVerdict::Close
        } else {
            FrameVerdict::Refuse
        }
    }
}

/// The close code and reason for a read error of the WebSocket library: 1009 for a message or
/// frame over the size limit, 1007 for a text frame that is not UTF-8, 1002 for any other
/// protocol error; `None` for a connection that is simply gone.
pub fn close_for_read_error(error: &std::io::Error) -> Option<(u16, &'static str)> {
    // poem turns the library's errors into `io::Error::other(error.to_string())`.
    let text = error.to_string();
    if text.contains("Message too long") {
        Some((1009, "message too big"))
    } else if text.contains("UTF-8") {
        Some((1007, "text frames are UTF-8"))
    } else if text.contains("protocol error") {
        Some((1002, "WebSocket protocol error"))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_open: u32, per_second: u32) -> SocketLimits {
        SocketLimits::new(
            SocketLimitSettings {
                max_sockets_per_ip: max_open,
                new_sockets_per_ip_per_second: per_second,
                ..Default::default()
            },
            Clock::system(),
        )
    }

    fn addr(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn new_sockets_per_second_allow_a_burst_then_refuse_until_time_passes() {
        let l = limits(1_000, 5);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..5 {
            assert_eq!(l.decide(ip, 0.0), Ok(()));
        }
        assert_eq!(
            l.decide(ip, 0.0),
            Err(Refusal::TooFast {
                retry_after_secs: 1
            })
        );
        assert_eq!(
            l.decide(ip, 199.0),
            Err(Refusal::TooFast {
                retry_after_secs: 1
            })
        );
        assert_eq!(l.decide(ip, 200.0), Ok(()), "one more every 1/5 s");
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!(
            l.decide(other, 0.0),
            Ok(()),
            "another IP has its own budget"
        );
    }

    #[test]
    fn open_sockets_are_counted_until_their_permit_is_dropped() {
        let l = limits(2, 1_000);
        let a = l.admit(addr("10.0.0.1"), "/ws").unwrap();
        let _b = l.admit(addr("10.0.0.1"), "/ws").unwrap();
        assert_eq!(l.open_sockets(addr("10.0.0.1")), 2);
        assert_eq!(
            l.open_sockets(addr("::ffff:10.0.0.1")),
            2,
            "an IPv4-mapped address is its IPv4 address"
        );
        assert!(l.admit(addr("10.0.0.1"), "/ws").is_err());
        assert!(l.admit(addr("10.0.0.3"), "/ws").is_ok());
        drop(a);
        assert_eq!(l.open_sockets(addr("10.0.0.1")), 1);
        assert!(l.admit(addr("10.0.0.1"), "/primus").is_ok());
    }

    #[test]
    fn ipv6_addresses_count_per_64_block() {
        let l = limits(1, 1_000);
        let _a = l.admit(addr("2001:db8:1:2::1"), "/ws").unwrap();
        assert!(l.admit(addr("2001:db8:1:2::ffff"), "/ws").is_err());
        assert!(l.admit(addr("2001:db8:1:3::1"), "/ws").is_ok());
    }

    #[test]
    fn a_fast_socket_is_warned_once_a_second_and_closed_past_twice_the_rate() {
        let mut rate = FrameRate::new(10, 20, 0);
        for _ in 0..20 {
            assert_eq!(rate.check(0), FrameVerdict::Handle);
        }
        assert_eq!(rate.check(0), FrameVerdict::RefuseAndWarn);
        assert_eq!(rate.check(50), FrameVerdict::Refuse);
        assert_eq!(rate.check(100), FrameVerdict::Handle, "refilled by one");
        for _ in 0..8 {
            assert_eq!(rate.check(100), FrameVerdict::Refuse);
        }
        assert_eq!(
            rate.check(100),
            FrameVerdict::Close,
            "11 refused within a second"
        );

        let mut polite = FrameRate::new(10, 20, 0);
        for i in 0..1_000 {
            assert_eq!(polite.check(i * 100), FrameVerdict::Handle);
        }
    }

    #[test]
    fn read_errors_map_to_close_codes() {
        let other = |s: &str| std::io::Error::other(s.to_owned());
        assert_eq!(
            close_for_read_error(&other(
                "Space limit exceeded: Message too long: 70000 > 65536"
            )),
            Some((1009, "message too big"))
        );
        assert_eq!(
            close_for_read_error(&other("UTF-8 encoding error: invalid")),
            Some((1007, "text frames are UTF-8"))
        );
        assert_eq!(
            close_for_read_error(&other(
                "WebSocket protocol error: Reserved bits are non-zero"
            )),
            Some((1002, "WebSocket protocol error"))
        );
        assert_eq!(
            close_for_read_error(&std::io::Error::from(std::io::ErrorKind::ConnectionReset)),
            None
        );
    }
}
