//! `chorus-server`: the Chorus hub over axum and tokio.
//!
//! Layout (see ARCHITECTURE.md): [`hub`] is the sans-IO core, [`store`] sequences and keeps
//! history, [`driver`] runs the hub on tokio, [`http`] is the axum edge, [`auth`] verifies
//! tokens, [`config`] parses flags, [`clock`] is the wall clock beneath them all, [`listener`]
//! binds the socket and minds the open-file limit. [`start`] wires them together on a bound
//! listener.

pub mod auth;
pub mod bus;
pub mod clock;
pub mod config;
pub mod docs;
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
use crate::bus::Bus;
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
    /// The Redis engine could not start (unreachable, too old, a bad URL or prefix).
    #[error("could not start the Redis engine: {0}")]
    Redis(String),
    /// The TLS certificate or key could not be used.
    #[error(transparent)]
    Tls(#[from] http::tls::TlsSetupError),
    /// The listener failed.
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
}

/// A server running in this process.
#[derive(Debug)]
pub struct RunningServer {
    addr: std::net::SocketAddr,
    hub: HubHandle,
    drain_retry: Duration,
    connections: Arc<ConnectionLimiter>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    /// On the Redis engine: this node's figures for `/v1/stats` elsewhere, and the task that
    /// publishes them (see `bus::node_stats`).
    node_stats: Option<(
        bus::node_stats::NodeStatsDirectory,
        tokio::task::JoinHandle<()>,
    )>,
}

/// How long shutdown waits for WebSocket connections to write their last frames and close
/// (each frame must be taken within a second; a peer that takes nothing is given up on).
const SOCKETS_CLOSE_LIMIT: Duration = Duration::from_secs(10);

impl RunningServer {
    /// The address it listens on.
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// Graceful shutdown: send `draining` to every client, ack every publish already being
    /// stored (refusing new ones), close every connection (1012), stop listening, and return
    /// once every WebSocket connection task has written its last frames and its close frame
    /// (upgraded connections are no longer axum's, so its graceful shutdown does not wait for
    /// them; returning earlier would let the runtime's end cut them off mid-goodbye).
    pub async fn shutdown(mut self) {
        // Out of the deployment's stats at once, rather than when its record goes stale.
        if let Some((directory, publisher)) = self.node_stats.take() {
            publisher.abort();
            directory.withdraw().await;
        }
        self.hub.drain(self.drain_retry).await;
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let (connections, task) = (Arc::clone(&self.connections), self.task);
        let everything = async move {
            connections.all_closed().await;
            let _ = task.await;
        };
        if tokio::time::timeout(SOCKETS_CLOSE_LIMIT, everything)
            .await
            .is_err()
        {
            tracing::warn!(
                open = self.connections.open(),
                "connections still open after {SOCKETS_CLOSE_LIMIT:?}; exiting anyway"
            );
        }
    }
}

/// Opens the store, starts the hub and serves HTTP on `listener`.
pub async fn start(config: &Config, listener: TcpListener) -> Result<RunningServer, StartError> {
    let secret = config.secret().map_err(StartError::Config)?;
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some(http::tls::acceptor(cert, key)?),
        (None, None) => None,
        _ => {
            return Err(StartError::Config(
                "--tls-cert and --tls-key go together: give both or neither",
            ));
        }
    };
    let api_key = config.api_key.clone().filter(|key| !key.is_empty());
    if config.private_metrics && api_key.is_none() {
        return Err(StartError::Config(
            "--private-metrics needs --api-key: /metrics answers only requests with that key",
        ));
    }
    let (outcomes_tx, outcomes_rx) = tokio::sync::mpsc::unbounded_channel();
    let (inbound_tx, inbound_rx) = tokio::sync::mpsc::unbounded_channel();
    let node = format!("{:x}", store::random_epoch() & 0xffff_ffff);
    let redis_target = match &config.redis {
        Some(text) => Some(
            store::redis::RedisTarget::parse(text, config.redis_cluster)
                .map_err(|err| StartError::Redis(err.to_string()))?,
        ),
        None => None,
    };
    let store: Arc<dyn Store> = match (&redis_target, config.store) {
        (Some(target), _) => Arc::new(
            store::redis::RedisStore::open_on(
                target,
                &config.redis_prefix,
                config.retention(),
                outcomes_tx,
            )
            .await
            .map_err(|err| match err {
                StoreError::Backend(message) => StartError::Redis(message),
                StoreError::Closed => StartError::Redis(err.to_string()),
            })?,
        ),
        (None, StoreKind::Memory) => Arc::new(store::memory::MemoryStore::new(
            config.retention(),
            outcomes_tx,
        )),
        (None, StoreKind::Sqlite) => Arc::new(store::sqlite::SqliteStore::open(
            &config.db,
            config.retention(),
            outcomes_tx,
        )?),
    };
    let hub_config = HubConfig {
        // Versions below 2^53 for ~280 years, and 1000 changes per millisecond of uptime apart.
        version_base: unix_ms_now() * 1000,
        node: node.clone(),
        ..config.hub()
    };
    let poll_limits = driver::poll::PollLimits {
        max_held_polls: config.max_held_polls,
        max_sessions_per_user: config.max_poll_sessions_per_user,
        max_sessions_per_address: config.max_poll_sessions_per_ip,
    };
    let sessions = match &redis_target {
        Some(target) => Some(
            bus::sessions::SessionDirectory::open(
                target,
                &config.redis_prefix,
                Duration::from_millis(config.poll_session_timeout_ms),
            )
            .await
            .map_err(|err| StartError::Redis(format!("Redis at {}: {err}", target.shown())))?,
        ),
        None => None,
    };
    let node_stats = match &redis_target {
        Some(target) => Some(
            bus::node_stats::NodeStatsDirectory::open(target, &config.redis_prefix, &node)
                .await
                .map_err(|err| StartError::Redis(format!("Redis at {}: {err}", target.shown())))?,
        ),
        None => None,
    };
    let bus: Arc<dyn Bus> = match &redis_target {
        Some(target) => {
            let keys = store::redis::KeyLayout::new(&config.redis_prefix)?;
            Arc::new(
                bus::redis::RedisBus::open_on(target, keys, node, inbound_tx)
                    .await
                    .map_err(|err| StartError::Redis(err.to_string()))?,
            )
        }
        None => Arc::new(bus::local::LocalBus),
    };
    let compactor = docs::compactor::Compactor::spawn(
        Arc::clone(&store),
        docs::compactor::CompactPolicy {
            every: config.doc_compact_every.max(1),
            after: Duration::from_millis(config.doc_compact_after_ms),
        },
    );
    let hub = driver::spawn(
        Hub::new(hub_config),
        Arc::clone(&store),
        compactor.clone(),
        outcomes_rx,
        Arc::clone(&bus),
        inbound_rx,
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
        docs: compactor,
        store,
        bus,
        sessions,
        node_stats: node_stats.clone(),
        auth: Authenticator::hs256(&secret),
        api_key,
        private_metrics: config.private_metrics,
        limits: EdgeLimits {
            max_frame_bytes: config.max_frame_bytes,
            max_poll_body_bytes: config.max_poll_body_bytes,
            outbound_queue: config.outbound_queue,
            outbound_queue_bytes: config.outbound_queue_bytes,
            heartbeat: Duration::from_millis(config.heartbeat_ms),
            poll_wait: Duration::from_millis(config.poll_wait_ms),
            max_held_polls: config.max_held_polls,
            max_rooms_per_conn: config.max_rooms_per_conn,
            max_answer_bytes: config.max_answer_bytes,
            poll_send_timeout: Duration::from_millis(config.poll_ack_wait_ms),
            drain_retry: Duration::from_millis(config.drain_retry_ms),
            max_stream_chunk_bytes: config.stream_max_chunk_bytes as usize,
        },
        connections: Arc::clone(&connections),
        users: http::limits::UserLimiter::new(config.max_connections_per_user),
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
    let serve_limits = http::serve::ServeLimits {
        header_timeout: Duration::from_millis(config.http_header_timeout_ms),
        stall_timeout: Duration::from_millis(config.http_stall_timeout_ms),
        max_per_address: config.max_http_connections_per_ip,
        trusted_proxies: config.trusted_proxies.clone(),
    };
    let task = tokio::spawn(http::serve::serve(
        listener::PatientListener::new(listener, counters),
        app,
        serve_limits,
        tls,
        async move {
            let _ = stopped.await;
        },
    ));
    let node_stats = node_stats.map(|directory| {
        let publisher = tokio::spawn(publish_node_stats(directory.clone(), hub.clone()));
        (directory, publisher)
    });
    Ok(RunningServer {
        node_stats,
        addr,
        hub,
        drain_retry: Duration::from_millis(config.drain_retry_ms),
        connections,
        stop: Some(stop),
        task,
    })
}

/// Publishes this node's figures for the deployment's `/v1/stats` every
/// `bus::node_stats::PUBLISH_EVERY`, until the hub stops.
async fn publish_node_stats(directory: bus::node_stats::NodeStatsDirectory, hub: HubHandle) {
    let mut tick = tokio::time::interval(bus::node_stats::PUBLISH_EVERY);
    loop {
        tick.tick().await;
        let Some(stats) = hub.ask(|reply| driver::HubMsg::Stats { reply }).await else {
            return;
        };
        directory.publish(&stats, unix_ms_now()).await;
    }
}
