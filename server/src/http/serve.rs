//! The HTTP server's accept loop and connections: hyper's HTTP/1 server, with the limits that
//! keep idle, slow and greedy peers from holding sockets and memory (axum's `serve` has none).
//!
//! - A connection must send a complete request head within [`ServeLimits::header_timeout`] of
//!   the server starting to wait for one. Hyper starts that clock on a new connection and again
//!   after each response on a kept-alive one, so the same timeout cuts a slowloris peer (headers
//!   a byte at a time) and closes an idle kept-alive connection.
//! - A write that makes no progress for [`ServeLimits::stall_timeout`] fails, which closes the
//!   connection ([`StallGuard`]): a peer that never reads its response does not pin it in
//!   memory. Upgraded WebSockets keep the guard (they also have their own write timeout).
//! - At most [`ServeLimits::max_per_address`] plain HTTP connections per client address
//!   (`limits::address_key`: an IPv6 /64), counted from accept until the connection closes or
//!   becomes a WebSocket (which then counts against `--max-connections-per-ip`). Connections
//!   from trusted proxies are not capped here: everyone behind the proxy shares its address.
//!   A refused connection gets `503` with `too_many_connections` and is closed, unread.
//!
//! - With `--tls-cert/--tls-key` ([`serve`]'s `tls`), each connection's TLS handshake runs in
//!   its own task and must finish within the header timeout; then the connection is served
//!   as a plain one is. Without them the plain path is the same code it always was (the
//!   connection is generic over its stream, so neither path pays for the other).
//!
//! It must never parse requests itself or decide anything about routes: that is axum's.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::extract::ConnectInfo;
use chorus_sdk::wire::{ErrorBody, ErrorCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Sleep;
use tower_http::add_extension::AddExtension;

use super::limits::ConnectionLimiter;
use crate::listener::PatientListener;

/// The connection limits of [`serve`].
#[derive(Clone, Debug)]
pub struct ServeLimits {
    /// How long a peer may take to send a request head, counted from when the server starts
    /// waiting for it (also the idle timeout of a kept-alive connection).
    pub header_timeout: Duration,
    /// How long a write may make no progress before the connection is closed.
    pub stall_timeout: Duration,
    /// Plain HTTP connections per client address.
    pub max_per_address: usize,
    /// Peers exempt from the per-address cap (reverse proxies).
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

/// Serves `app` on `listener` until `shutdown` resolves; then stops accepting, asks every
/// connection to finish its request and close, and returns once all have. Accept errors are
/// the listener's business ([`PatientListener`]: counted, logged now and then, retried soon).
/// With `tls`, every connection is HTTPS (and its WebSockets WSS).
pub async fn serve(
    mut listener: PatientListener,
    app: axum::Router,
    limits: ServeLimits,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) {
    let per_address = ConnectionLimiter::new(usize::MAX, limits.max_per_address);
    let limits = Arc::new(limits);
    let (stop_tx, stop_rx) = watch::channel(());
    let (open_tx, open_rx) = watch::channel(());
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        // Frames are small and latency matters more than packet count: no Nagle delay (which,
        // against a client's delayed ACK, holds a frame back for up to 40 ms).
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!("TCP_NODELAY: {err}");
        }
        let trusted = limits
            .trusted_proxies
            .iter()
            .any(|net| net.contains(&peer.ip()));
        let permit = if trusted {
            None
        } else {
            match per_address.acquire(peer.ip()) {
                Ok(permit) => Some(permit),
                Err(hit) => {
                    tokio::spawn(refuse(tcp, hit.to_string()));
                    continue;
                }
            }
        };
        let app = app.clone();
        let limits = Arc::clone(&limits);
        let mut stop = stop_rx.clone();
        let open = open_rx.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => serve_connection(tcp, peer, app, &limits, &mut stop).await,
                Some(acceptor) => {
                    // A peer that never finishes its handshake is cut like one that never
                    // finishes its request head.
                    let handshake = acceptor.accept(tcp);
                    match tokio::time::timeout(limits.header_timeout, handshake).await {
                        Ok(Ok(stream)) => {
                            serve_connection(stream, peer, app, &limits, &mut stop).await;
                        }
                        Ok(Err(err)) => tracing::debug!(%peer, "TLS handshake failed: {err}"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
            drop(permit);
            drop(open);
        });
    }
    drop(listener);
    stop_tx.send_replace(());
    drop(open_rx);
    open_tx.closed().await;
}

/// The read buffer's limit, which bounds a request's head (request line and headers).
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Serves one accepted connection (TCP, or TLS over it) until it ends or, after `stop`
/// changes, finishes its request and closes.
async fn serve_connection<S>(
    stream: S,
    peer: std::net::SocketAddr,
    app: axum::Router,
    limits: &ServeLimits,
    stop: &mut watch::Receiver<()>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(StallGuard::new(stream, limits.stall_timeout));
    let service = TowerToHyperService::new(AddExtension::new(app, ConnectInfo(peer)));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        // hyper refuses a head (431) once this much of it arrived incomplete (its default is
        // about 400 KiB); the last read may bring more, so heads up to 64 KiB always pass and
        // heads over 128 KiB never do.
        .max_buf_size(MAX_HEAD_BYTES)
        .keep_alive(true);
    let conn = builder.serve_connection(io, service).with_upgrades();
    tokio::pin!(conn);
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(err) = result {
                    tracing::debug!(%peer, "connection ended: {err}");
                }
                break;
            }
            Ok(()) = stop.changed() => conn.as_mut().graceful_shutdown(),
        }
    }
}

/// Answers a connection over the per-address cap with `503 too_many_connections` and closes it
/// without reading the request (its bytes are discarded by the close).
async fn refuse(mut tcp: TcpStream, message: String) {
    let body = serde_json::to_string(&ErrorBody {
        code: ErrorCode::TooManyConnections,
        message,
    })
    .expect("an error body encodes");
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let write = async {
        tcp.write_all(response.as_bytes()).await?;
        tcp.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
}

/// A socket whose writes fail with `TimedOut` after making no progress for the stall timeout.
/// Reads pass through (how long a peer may stay silent is the header timeout's business, and
/// the WebSocket heartbeat's after an upgrade).
#[derive(Debug)]
pub struct StallGuard<T> {
    inner: T,
    stall_timeout: Duration,
    /// Armed while a write waits for the peer; disarmed by any progress.
    stalled_since: Option<Pin<Box<Sleep>>>,
}

impl<T> StallGuard<T> {
    /// Guards `inner`'s writes with `stall_timeout`.
    pub fn new(inner: T, stall_timeout: Duration) -> StallGuard<T> {
        StallGuard {
            inner,
            stall_timeout,
            stalled_since: None,
        }
    }

    /// Passes a write's outcome on; a pending one arms the timer (once) and fails when it fires.
    fn guard<R>(
        &mut self,
        cx: &mut Context<'_>,
        outcome: Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        match outcome {
            Poll::Ready(result) => {
                self.stalled_since = None;
                Poll::Ready(result)
            }
            Poll::Pending => {
                let timeout = self.stall_timeout;
                let timer = self
                    .stalled_since
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                ready!(timer.as_mut().poll(cx));
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the peer took nothing for the stall timeout",
                )))
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for StallGuard<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for StallGuard<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let outcome = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.guard(cx, outcome)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let outcome = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.guard(cx, outcome)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let outcome = Pin::new(&mut this.inner).poll_flush(cx);
        this.guard(cx, outcome)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let outcome = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.guard(cx, outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test(start_paused = true)]
    #[allow(clippy::disallowed_methods)] // A test of a driver: it reads the (paused) clock.
    async fn a_write_that_makes_no_progress_fails_after_the_stall_timeout() {
        // A pipe whose reader never reads: writes fill its buffer, then wait.
        let (writer, _reader) = tokio::io::duplex(1024);
        let mut guarded = StallGuard::new(writer, Duration::from_secs(3));
        let started = tokio::time::Instant::now();
        let err = guarded.write_all(&[0; 4096]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn writes_that_progress_are_never_cut() {
        let (writer, mut reader) = tokio::io::duplex(1024);
        let mut guarded = StallGuard::new(writer, Duration::from_secs(3));
        let drain = tokio::spawn(async move {
            let mut buf = [0; 512];
            let mut total = 0;
            while total < 64 * 1024 {
                // A slow reader: 512 bytes a second, always within the stall timeout.
                tokio::time::sleep(Duration::from_secs(1)).await;
                total += tokio::io::AsyncReadExt::read(&mut reader, &mut buf)
                    .await
                    .unwrap();
            }
        });
        guarded.write_all(&[0; 64 * 1024]).await.unwrap();
        drain.await.unwrap();
    }
}
