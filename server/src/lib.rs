//! `chorus-server`: the Chorus hub over axum and tokio.
//!
//! Layout (see ARCHITECTURE.md): [`hub`] is the sans-IO core, [`store`] sequences and keeps
//! history, [`driver`] runs the hub on tokio, [`http`] is the axum edge, [`auth`] verifies
//! tokens, [`config`] parses flags, [`clock`] is the wall clock beneath them all, [`listener`]
//! binds the socket and minds the open-file limit. [`start`] wires them together on a bound
//! listener.

pub mod auth;
pub mod clock;
pub mod config;
pub mod driver;
pub mod http;
pub mod hub;
pub mod identity;
pub mod listener;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::auth::Authenticator;
use crate::clock::unix_ms_now;
use crate::config::{Config, StoreKind};
use crate::driver::HubHandle;
use crate::http::limits::{ConnectionCapacity, ConnectionLimiter};
use crate::http::{AppState, EdgeLimits};
use crate::hub::{Hub, HubConfig};
use crate::store::{Store, StoreError};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is incomplete.
    #[error("configuration: {0}")]
    Config(&'static str),
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The listener failed.
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
}

/// A server running in this process.
#[derive(Debug)]
pub struct RunningServer {
    addr: std::net::SocketAddr,
    hub: HubHandle,
    connections: Arc<ConnectionLimiter>,
    drain_retry: Duration,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningServer {
    /// The address it listens on.
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// Graceful shutdown: finish pending writes, send `draining` to every client, close them,
    /// stop listening.
    pub async fn shutdown(mut self) {
        self.hub.drain(self.drain_retry).await;
        // The hub has queued `draining` and the closes; the connection tasks still have to
        // write them (each gives up on a peer after a second). Returning earlier lets the
        // process exit under them, and clients would see the socket drop without a word.
        let connections = Arc::clone(&self.connections);
        let _ = tokio::time::timeout(Duration::from_secs(3), async move {
            while connections.open() > 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = self.task.await;
    }
}

/// Opens the store, starts the hub and serves HTTP on `listener`.
pub async fn start(config: &Config, listener: TcpListener) -> Result<RunningServer, StartError> {
    let secret = config.secret().map_err(StartError::Config)?;
    let (outcomes_tx, outcomes_rx) = tokio::sync::mpsc::unbounded_channel();
    let store: Arc<dyn Store> = match config.store {
        StoreKind::Memory => Arc::new(store::memory::MemoryStore::new(
            config.retention(),
            outcomes_tx,
        )),
        StoreKind::Sqlite => Arc::new(store::sqlite::SqliteStore::open(
            &config.db,
            config.retention(),
            outcomes_tx,
        )?),
    };
    let hub_config = HubConfig {
        // Versions below 2^53 for ~280 years, and 1000 changes per millisecond of uptime apart.
        version_base: unix_ms_now() * 1000,
        node: format!("{:x}", store::random_epoch() & 0xffff_ffff),
        ..config.hub()
    };
    let poll_limits = driver::poll::PollLimits {
        max_held_polls: config.max_held_polls,
    };
    let hub = driver::spawn(
        Hub::new(hub_config),
        Arc::clone(&store),
        outcomes_rx,
        poll_limits,
    );
    let capacity = ConnectionCapacity::derive(
        config.max_connections,
        listener::open_file_limit(),
        config.reserved_files,
    );
    let open_files = capacity
        .open_files
        .map_or_else(|| "none".to_owned(), |limit| limit.to_string());
    if capacity.limited_by_open_files() {
        tracing::warn!(
            connection_cap = capacity.effective,
            max_connections = capacity.configured,
            open_files = %open_files,
            reserved_files = capacity.reserved_files,
            "the open-file limit caps WebSocket connections below --max-connections; raise the hard limit (e.g. LimitNOFILE=) to allow more"
        );
    } else {
        tracing::info!(
            connection_cap = capacity.effective,
            open_files = %open_files,
            reserved_files = capacity.reserved_files,
            "WebSocket connections capped by --max-connections"
        );
    }
    let counters = Arc::<http::metrics::EdgeCounters>::default();
    let connections = ConnectionLimiter::new(capacity.effective, config.max_connections_per_ip);
    let state = AppState::new(http::AppStateInner {
        hub: hub.clone(),
        store,
        auth: Authenticator::hs256(&secret),
        api_key: config.api_key.clone().filter(|key| !key.is_empty()),
        limits: EdgeLimits {
            max_frame_bytes: config.max_frame_bytes,
            max_poll_body_bytes: config.max_poll_body_bytes,
            outbound_queue: config.outbound_queue,
            heartbeat: Duration::from_millis(config.heartbeat_ms),
            poll_wait: Duration::from_millis(config.poll_wait_ms),
            max_held_polls: config.max_held_polls,
            poll_send_timeout: Duration::from_secs(10),
            drain_retry: Duration::from_millis(config.drain_retry_ms),
        },
        connections: Arc::clone(&connections),
        capacity,
        allowed_origins: config.allowed_origins.clone(),
        trusted_proxies: config.trusted_proxies.clone(),
        counters: Arc::clone(&counters),
        dev: config.dev,
        static_dirs: [
            ("/demo", config.demo_dir.clone()),
            ("/pkg", config.pkg_dir.clone()),
        ]
        .into_iter()
        .filter_map(|(prefix, dir)| dir.map(|dir| (prefix, dir)))
        .collect(),
        app_dir: config.app_dir.clone(),
    });
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let app = http::router(state);
    // Frames are small and latency matters more than packet count: no Nagle delay (which,
    // against a client's delayed ACK, holds a frame back for up to 40 ms).
    let listener = axum::serve::ListenerExt::tap_io(
        listener::PatientListener::new(listener, counters),
        |tcp| {
            if let Err(err) = tcp.set_nodelay(true) {
                tracing::debug!("TCP_NODELAY: {err}");
            }
        },
    );
    let task = tokio::spawn(async move {
        let serve = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = stopped.await;
        });
        if let Err(err) = serve.await {
            tracing::error!("server stopped with an error: {err}");
        }
    });
    Ok(RunningServer {
        addr,
        hub,
        connections,
        drain_retry: Duration::from_millis(config.drain_retry_ms),
        stop: Some(stop),
        task,
    })
}
