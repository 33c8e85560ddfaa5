//! Limits on the HTTP listener's connections: how many are open at once, and how long a client
//! may take to send a request head (a slowloris client, which trickles a request's headers a byte
//! at a time, would otherwise hold its connection, and a slot, for good).
//!
//! poem 3 exposes no header read timeout (hyper's `header_read_timeout` needs a timer poem does
//! not set), so both limits live in the acceptor ([`GuardedAcceptor`]) and in the connection it
//! hands poem ([`GuardedIo`]):
//! - **connections**: at most `ONAIR_MAX_CONNECTIONS` are open; one more is answered
//!   `503 Service Unavailable` with `Connection: close` (written without waiting, best effort) and
//!   closed at once, so a flood is refused quickly instead of queueing in the kernel's backlog
//!   behind connections that may never end. A WebSocket counts until it closes.
//! - **request heads**: from the accept, the client has `ONAIR_HEADER_READ_TIMEOUT_SECS` to send
//!   a complete request head (up to the blank line). If it has not, the next read fails with
//!   `TimedOut` and hyper closes the connection.
//! - **keep-alive**: after a response, a connection may sit idle `ONAIR_KEEP_ALIVE_TIMEOUT_SECS`
//!   (longer than a load balancer's usual 60 s, so the balancer, not onair, closes first); the
//!   next request's first byte starts the head timer again. Bytes the server writes (a long
//!   response) push either deadline back.
//!
//! Once a head is in, the body and the handler take as long as they take (the body size is
//! capped by `ONAIR_MAX_BODY_BYTES`; a body trickled slowly holds its slot until it ends, bounded
//! by the connection limit). After a `101 Switching Protocols` (WebSocket) and on cleartext
//! HTTP/2 (`PRI *` preface) the timers are off: those connections have their own pings and
//! limits. The head is recognised by bytes, not parsed: its end is the first blank line (CRLF or
//! bare LF) after a non-blank byte, and a response head is a write starting `HTTP/1.`.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use poem::listener::Acceptor;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// The answer to a connection over the limit: written with one non-blocking write, then closed.
const OVER_LIMIT_ANSWER: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\
Content-Type: application/json\r\nContent-Length: 91\r\nRetry-After: 1\r\n\r\n\
{\"success\":false,\"error\":\"SERVICE_UNAVAILABLE\",\"message\":\"too many connections; try again\"}";

/// The listener's limits (settings `ONAIR_MAX_CONNECTIONS`, `ONAIR_HEADER_READ_TIMEOUT_SECS`).
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    /// Most connections open at once.
    pub max_connections: usize,
    /// Time a client has to send a complete request head, from the accept or from the head's
    /// first byte on a kept-alive connection; `None`: no limit.
    pub header_read_timeout: Option<Duration>,
    /// Time a keep-alive connection may sit idle between a response and the next request's
    /// first byte; `None`: no limit.
    pub keep_alive_timeout: Option<Duration>,
}

/// Wraps poem's TCP acceptor: Nagle off, the connection limit, the request-head timer.
pub struct GuardedAcceptor {
    inner: poem::listener::TcpAcceptor,
    permits: Arc<Semaphore>,
    limits: ConnectionLimits,
    /// When a refusal was last logged (refusals are logged at most once a second).
    last_refusal_log: Option<Instant>,
    refused_since_log: u64,
}

impl GuardedAcceptor {
    /// Guards `inner` with `limits`.
    pub fn new(inner: poem::listener::TcpAcceptor, limits: ConnectionLimits) -> Self {
        Self {
            inner,
            permits: Arc::new(Semaphore::new(limits.max_connections.max(1))),
            limits,
            last_refusal_log: None,
            refused_since_log: 0,
        }
    }

    fn refuse(&mut self, io: TcpStream, remote: &poem::web::RemoteAddr) {
        // Best effort: a full send buffer just means the client sees the close without the answer.
        let _ = io.try_write(OVER_LIMIT_ANSWER);
        drop(io);
        metrics::counter!("onair_http_connections_refused_total").increment(1);
        self.refused_since_log += 1;
        let now = Instant::now();
        if self
            .last_refusal_log
            .is_none_or(|at| now.duration_since(at) >= Duration::from_secs(1))
        {
            tracing::warn!(
                remote = %remote,
                refused = self.refused_since_log,
                max_connections = self.limits.max_connections,
                "connection refused: too many open connections"
            );
            self.last_refusal_log = Some(now);
            self.refused_since_log = 0;
        }
    }
}

impl Acceptor for GuardedAcceptor {
    type Io = GuardedIo;

    fn local_addr(&self) -> Vec<poem::web::LocalAddr> {
        self.inner.local_addr()
    }

    async fn accept(
        &mut self,
    ) -> io::Result<(
        Self::Io,
        poem::web::LocalAddr,
        poem::web::RemoteAddr,
        poem::http::uri::Scheme,
    )> {
        loop {
            let (io, local, remote, scheme) = self.inner.accept().await?;
            let Ok(permit) = self.permits.clone().try_acquire_owned() else {
                self.refuse(io, &remote);
                continue;
            };
            // Answers and chat frames are small: with Nagle on, a reply waits for the peer's
            // delayed ACK (40 ms) whenever an earlier frame is unacknowledged (measured: `say` ->
            // `OK` went from 40 ms to under 1 ms).
            if let Err(e) = io.set_nodelay(true) {
                tracing::debug!(error = %e, "TCP_NODELAY not set");
            }
            let io = GuardedIo::new(io, permit, self.limits, remote.to_string());
            return Ok((io, local, remote, scheme));
        }
    }
}

/// Where a connection is in the timers' eyes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for the rest of a request head (on a fresh connection, from the accept); the
    /// head deadline is armed.
    Head,
    /// Between requests on a keep-alive connection, no byte of the next head yet; the
    /// keep-alive deadline is armed.
    Idle,
    /// The head is in; the request is being read or served. No deadline.
    Request,
    /// Upgraded (WebSocket) or HTTP/2: the timers are off for good.
    Passthrough,
}

/// A TCP connection holding a slot of the connection limit (released when it is dropped) and
/// timing request heads (see the module docs).
pub struct GuardedIo {
    inner: TcpStream,
    _permit: OwnedSemaphorePermit,
    limits: ConnectionLimits,
    deadline: Option<Pin<Box<Sleep>>>,
    phase: Phase,
    /// Line feeds seen in a row (carriage returns aside); 2 end a head that has content.
    newlines: u8,
    /// Whether the awaited head has a byte other than CR and LF yet (blank lines before a
    /// request line end nothing).
    content: bool,
    /// Whether no byte was read yet (the HTTP/2 preface check).
    first_read: bool,
    remote: String,
}

impl GuardedIo {
    fn new(
        inner: TcpStream,
        permit: OwnedSemaphorePermit,
        limits: ConnectionLimits,
        remote: String,
    ) -> Self {
        let mut io = Self {
            inner,
            _permit: permit,
            limits,
            deadline: None,
            phase: Phase::Request,
            newlines: 0,
            content: false,
            first_read: true,
            remote,
        };
        io.enter(Phase::Head, None);
        io
    }

    /// Moves to `phase` and arms its deadline from now (or none). The deadline is polled with the
    /// caller's context at once (the connection's one task reads and writes): hyper may not poll
    /// a read again before bytes arrive, and an unpolled timer would wake nobody.
    fn enter(&mut self, phase: Phase, cx: Option<&mut Context<'_>>) {
        if phase == Phase::Head && self.phase != Phase::Head {
            self.newlines = 0;
            self.content = false;
        }
        self.phase = phase;
        let timeout = match phase {
            Phase::Head => self.limits.header_read_timeout,
            Phase::Idle => self.limits.keep_alive_timeout,
            Phase::Request | Phase::Passthrough => None,
        };
        let Some(timeout) = timeout else {
            self.deadline = None;
            return;
        };
        let at = Instant::now() + timeout;
        let sleep = self
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        sleep.as_mut().reset(at);
        if let Some(cx) = cx {
            let _ = sleep.as_mut().poll(cx);
        }
    }

    /// Scans bytes the client sent while no request is in: the first byte after an idle spell
    /// starts the head timer; the blank line ends the head.
    fn saw(&mut self, bytes: &[u8], cx: Option<&mut Context<'_>>) {
        if bytes.is_empty() {
            return;
        }
        if std::mem::take(&mut self.first_read) && bytes.starts_with(b"PRI ") {
            self.enter(Phase::Passthrough, cx);
            return;
        }
        if self.phase == Phase::Idle {
            self.enter(Phase::Head, cx);
        }
        for &b in bytes {
            match b {
                b'\n' => {
                    self.newlines += 1;
                    if self.newlines >= 2 && self.content {
                        self.enter(Phase::Request, None);
                        return;
                    }
                }
                b'\r' => {}
                _ => {
                    self.newlines = 0;
                    self.content = true;
                }
            }
        }
    }

    /// Notes bytes the server writes: a response head starts the keep-alive timer (a `101` turns
    /// the timers off); while no request is in, any write pushes the deadline back.
    fn wrote(&mut self, bytes: &[u8], cx: Option<&mut Context<'_>>) {
        if self.phase == Phase::Passthrough || bytes.is_empty() {
            return;
        }
        if bytes.starts_with(b"HTTP/1.1 101") || bytes.starts_with(b"HTTP/1.0 101") {
            self.enter(Phase::Passthrough, cx);
        } else if bytes.starts_with(b"HTTP/1.") {
            self.enter(Phase::Idle, cx);
        } else if self.phase != Phase::Request {
            self.enter(self.phase, cx);
        }
    }
}

impl AsyncRead for GuardedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let timed = matches!(this.phase, Phase::Head | Phase::Idle);
        if timed
            && let Some(deadline) = &mut this.deadline
            && deadline.as_mut().poll(cx).is_ready()
        {
            let head = this.phase == Phase::Head;
            this.enter(Phase::Passthrough, None);
            if head {
                tracing::debug!(
                    remote = %this.remote,
                    timeout_secs = this.limits.header_read_timeout.unwrap_or_default().as_secs_f64(),
                    "no complete request head in time; connection closed"
                );
                metrics::counter!("onair_http_header_timeouts_total").increment(1);
            } else {
                tracing::trace!(remote = %this.remote, "idle keep-alive connection closed");
            }
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                if head {
                    "request head not received in time"
                } else {
                    "keep-alive connection idle too long"
                },
            )));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if timed && matches!(polled, Poll::Ready(Ok(()))) {
            let new = buf.filled()[before..].to_vec();
            this.saw(&new, Some(cx));
        }
        polled
    }
}

impl AsyncWrite for GuardedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.wrote(buf, Some(cx));
        }
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0)
            && let Some(first) = bufs.iter().find(|b| !b.is_empty())
        {
            this.wrote(first, Some(cx));
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_over_limit_answer_is_the_documented_503_with_a_matching_length() {
        let text = std::str::from_utf8(OVER_LIMIT_ANSWER).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 "));
        assert!(head.contains(&format!("Content-Length: {}\r\n", body.len())));
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"], "SERVICE_UNAVAILABLE");
        assert_eq!(json["success"], false);
    }

    const SECS: Option<Duration> = Some(Duration::from_secs(5));

    async fn pair(head: Option<Duration>, keep_alive: Option<Duration>) -> GuardedIo {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, _) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let permit = Arc::new(Semaphore::new(1)).try_acquire_owned().unwrap();
        let limits = ConnectionLimits {
            max_connections: 1,
            header_read_timeout: head,
            keep_alive_timeout: keep_alive,
        };
        GuardedIo::new(client.unwrap(), permit, limits, "test".into())
    }

    #[tokio::test]
    async fn a_head_ends_at_the_blank_line_with_or_without_carriage_returns() {
        for head in [
            &b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"[..],
            b"GET / HTTP/1.1\nHost: a\n\n",
        ] {
            let mut io = pair(SECS, SECS).await;
            for chunk in head.chunks(3) {
                assert_eq!(io.phase, Phase::Head);
                assert!(io.deadline.is_some());
                io.saw(chunk, None);
            }
            assert_eq!(io.phase, Phase::Request);
            assert!(io.deadline.is_none(), "a request in is not timed");
            io.wrote(b"HTTP/1.1 200 OK\r\n", None);
            assert_eq!(io.phase, Phase::Idle, "keep-alive until the next head");
            io.saw(b"G", None);
            assert_eq!(
                io.phase,
                Phase::Head,
                "its first byte starts the head timer"
            );
            io.saw(b"ET / HTTP/1.1\r\n\r\n", None);
            io.wrote(b"HTTP/1.1 101 Switching Protocols\r\n", None);
            assert_eq!(io.phase, Phase::Passthrough);
            io.wrote(b"HTTP/1.1 200 OK\r\n", None);
            assert_eq!(
                io.phase,
                Phase::Passthrough,
                "frames after an upgrade are not heads"
            );
        }
    }

    #[tokio::test]
    async fn blank_lines_before_the_request_line_do_not_end_the_head() {
        let mut io = pair(SECS, SECS).await;
        io.saw(b"\r\n\r\n\r\nGET / HTTP/1.1\r\n", None);
        assert_eq!(io.phase, Phase::Head);
        io.saw(b"\r\n", None);
        assert_eq!(io.phase, Phase::Request);
    }

    #[tokio::test]
    async fn http2_and_zero_timeouts_are_not_timed() {
        let mut io = pair(SECS, SECS).await;
        io.saw(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", None);
        assert_eq!(io.phase, Phase::Passthrough);
        assert!(io.deadline.is_none());
        let mut io = pair(None, None).await;
        assert!(io.deadline.is_none());
        io.saw(b"GET / HTTP/1.1\r\n\r\n", None);
        io.wrote(b"HTTP/1.1 200 OK\r\n", None);
        assert!(io.deadline.is_none());
    }
}
