//! The listening socket and the process's open-file limit: binding with an explicit listen
//! backlog, raising the soft open-file limit to the hard one, and accepting in a way that rides
//! out running out of files instead of stalling (for `http::serve`'s accept loop).
//!
//! It never decides who may connect: the connection cap lives in `http::limits`, derived from
//! the limit read here.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream};

use crate::http::metrics::EdgeCounters;

/// Binds `addr` with a listen backlog of `backlog` pending connections. `TcpListener::bind`
/// uses 128, which a reconnect storm of a few thousand clients overflows: the kernel drops the
/// extra SYNs and those clients wait for TCP's retry (1 s, then 3 s). Linux caps the backlog
/// at `net.core.somaxconn` (4096 by default since 5.4).
pub fn bind(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    // As `TcpListener::bind` does on Unix: a restarted server can bind while connections of
    // the previous one linger in TIME_WAIT.
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// The open-file limit before and after [`raise_open_file_limit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenFileLimit {
    /// The soft limit the process started with.
    pub was: u64,
    /// The soft limit now.
    pub now: u64,
    /// The hard limit (the most an unprivileged process can raise the soft one to).
    pub hard: u64,
}

/// Raises the soft open-file limit (`RLIMIT_NOFILE`) to the hard limit. Service managers and
/// shells often start processes at a soft limit of 1024 while allowing far more; every
/// connection holds a file, so that default would cap the server near 1000 connections.
/// `None` where the platform has no such limit.
pub fn raise_open_file_limit() -> Option<std::io::Result<OpenFileLimit>> {
    #[cfg(unix)]
    {
        use rlimit::Resource;
        Some((|| {
            let (was, hard) = Resource::NOFILE.get()?;
            let now = rlimit::increase_nofile_limit(hard)?;
            Ok(OpenFileLimit { was, now, hard })
        })())
    }
    #[cfg(not(unix))]
    None
}

/// The soft open-file limit in force, where the platform has one.
pub fn open_file_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        rlimit::Resource::NOFILE.get().ok().map(|(soft, _)| soft)
    }
    #[cfg(not(unix))]
    None
}

/// How long the accept loop waits after an error that is not about one connection (out of
/// files, out of memory): long enough not to spin, short enough that a freed file is used
/// quickly. (axum's own loop sleeps a whole second, during which everything waits, `/healthz`
/// included.)
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);

/// How often, at most, the accept loop logs its errors (with a count of those not logged).
const ACCEPT_ERROR_LOG_EVERY: Duration = Duration::from_secs(10);

/// The listener `http::serve`'s accept loop takes connections from, which keeps serving when
/// accepting fails: errors about one
/// connection (reset or aborted before it was accepted) are skipped; others (`EMFILE`,
/// `ENFILE`, `ENOMEM`) are counted in `/metrics`, logged at most every 10 s, and retried after
/// [`ACCEPT_BACKOFF`].
#[derive(Debug)]
pub struct PatientListener {
    listener: TcpListener,
    counters: Arc<EdgeCounters>,
    last_logged: Option<tokio::time::Instant>,
    not_logged: u64,
}

impl PatientListener {
    /// Wraps `listener`, counting accept errors in `counters`.
    pub fn new(listener: TcpListener, counters: Arc<EdgeCounters>) -> PatientListener {
        PatientListener {
            listener,
            counters,
            last_logged: None,
            not_logged: 0,
        }
    }

    #[allow(clippy::disallowed_methods)] // A driver: rate-limiting a log line reads the clock.
    fn log_error(&mut self, err: &std::io::Error) {
        let now = tokio::time::Instant::now();
        if self
            .last_logged
            .is_some_and(|last| now.duration_since(last) < ACCEPT_ERROR_LOG_EVERY)
        {
            self.not_logged += 1;
            return;
        }
        tracing::error!(
            more_since_last_report = self.not_logged,
            "accept error: {err}; retrying every {} ms (connections in use: see chorus_connections and chorus_connections_max in /metrics)",
            ACCEPT_BACKOFF.as_millis()
        );
        self.last_logged = Some(now);
        self.not_logged = 0;
    }
}

impl PatientListener {
    /// The next connection, riding out accept errors as the type says. Cancel safe (a
    /// connection is never taken and then dropped): the accept loop selects on it.
    pub async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            match self.listener.accept().await {
                Ok(accepted) => return accepted,
                Err(err) if is_connection_error(&err) => continue,
                Err(err) => {
                    EdgeCounters::bump(&self.counters.accept_errors);
                    self.log_error(&err);
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// Errors about the one connection being accepted, not about the listener.
fn is_connection_error(err: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        err.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    )
}
