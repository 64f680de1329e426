//! Server configuration: command-line flags with environment fallbacks (clap).
//!
//! Every knob has a documented default that is safe for production except where noted; tests
//! build a [`Config`] directly with [`Config::for_tests`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::hub::HubConfig;
use crate::store::Retention;

/// Where history lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StoreKind {
    /// SQLite file (durable, the default).
    Sqlite,
    /// Process memory (lost on restart; tests and demos).
    Memory,
}

/// `chorus-server` flags.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "chorus-server",
    version,
    about = "Chorus real-time hub: rooms, history, presence and typing."
)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "CHORUS_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Connection attempts the kernel queues until the server accepts them (the listen
    /// backlog; Linux caps it at `net.core.somaxconn`). A reconnect storm past it is dropped
    /// by the kernel and waits for TCP's 1 s retry.
    #[arg(long, env = "CHORUS_LISTEN_BACKLOG", default_value_t = 4096)]
    pub listen_backlog: u32,
    /// Serve HTTPS and WSS with this PEM certificate chain (the server's certificate first,
    /// then its intermediates); needs --tls-key. Without both, plain HTTP and WS.
    #[arg(long, env = "CHORUS_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key (PKCS#8, PKCS#1 or SEC1) of --tls-cert.
    #[arg(long, env = "CHORUS_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// History store.
    #[arg(long, env = "CHORUS_STORE", value_enum, default_value_t = StoreKind::Sqlite)]
    pub store: StoreKind,
    /// Keep history and seqs in Redis at this URL instead of --store
    /// (`redis://[:password@]host:port[/db]`, or `rediss://` for TLS). Nodes on one Redis act
    /// as one hub behind any load balancer: stored and ephemeral events, presence, typing and
    /// polling sessions cross nodes. See docs/SCALING.md for the Redis settings and what each
    /// guarantees.
    #[arg(
        long,
        env = "CHORUS_REDIS",
        hide_env_values = true,
        conflicts_with = "store"
    )]
    pub redis: Option<String>,
    /// The Redis is a Redis Cluster (7.0 or newer): --redis then takes one or more of its
    /// nodes' URLs, comma-separated (`redis://10.0.0.1:6379,redis://10.0.0.2:6379`); the other
    /// nodes are discovered. Each room lives on one shard; live messages and signals use
    /// sharded pub/sub. See docs/SCALING.md.
    #[arg(long, env = "CHORUS_REDIS_CLUSTER", requires = "redis")]
    pub redis_cluster: bool,
    /// Prefix of every Redis key and channel, so several deployments can share one Redis.
    #[arg(long, env = "CHORUS_REDIS_PREFIX", default_value = crate::store::redis::DEFAULT_PREFIX)]
    pub redis_prefix: String,
    /// SQLite database file (with --store sqlite).
    #[arg(long, env = "CHORUS_DB", default_value = "chorus.db")]
    pub db: PathBuf,
    /// Keep at most this many newest events per room.
    #[arg(long, env = "CHORUS_RETENTION_EVENTS", default_value_t = 1000)]
    pub retention_events: u64,
    /// Forget events older than this many seconds.
    #[arg(long, env = "CHORUS_RETENTION_SECS", default_value_t = 86_400)]
    pub retention_secs: u64,
    /// HS256 secret that access tokens are signed with (required unless --dev).
    #[arg(long, env = "CHORUS_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Development mode: a fixed insecure secret and `POST /v1/dev/token`. Never in production.
    #[arg(long, env = "CHORUS_DEV")]
    pub dev: bool,
    /// Clients must send a frame this often (milliseconds); twice as long silent closes them.
    #[arg(long, env = "CHORUS_HEARTBEAT_MS", default_value_t = 15_000)]
    pub heartbeat_ms: u64,
    /// How long a disconnected user still shows as present (milliseconds).
    #[arg(long, env = "CHORUS_PRESENCE_GRACE_MS", default_value_t = 5_000)]
    pub presence_grace_ms: u64,
    /// How long `typing` lasts without a refresh (milliseconds).
    #[arg(long, env = "CHORUS_TYPING_TTL_MS", default_value_t = 6_000)]
    pub typing_ttl_ms: u64,
    /// Largest frame a client may send, in bytes; larger ones are refused with an error frame.
    #[arg(long, env = "CHORUS_MAX_FRAME_BYTES", default_value_t = 64 * 1024)]
    pub max_frame_bytes: usize,
    /// Largest presence meta, in bytes.
    #[arg(long, env = "CHORUS_MAX_META_BYTES", default_value_t = 2048)]
    pub max_meta_bytes: usize,
    /// Largest live cursor value (a `cursor` frame's `value`), in bytes of JSON.
    #[arg(long, env = "CHORUS_MAX_CURSOR_BYTES", default_value_t = 1024)]
    pub max_cursor_bytes: usize,
    /// Most rooms one connection may join.
    #[arg(long, env = "CHORUS_MAX_ROOMS_PER_CONN", default_value_t = 100)]
    pub max_rooms_per_conn: usize,
    /// Frames queued per connection before it counts as a slow consumer and is closed.
    #[arg(long, env = "CHORUS_OUTBOUND_QUEUE", default_value_t = 1024)]
    pub outbound_queue: usize,
    /// Bytes of frames queued per connection before it counts as a slow consumer and is closed
    /// (a frame of any size is taken into an empty queue).
    #[arg(long, env = "CHORUS_OUTBOUND_QUEUE_BYTES", default_value_t = 8 * 1024 * 1024)]
    pub outbound_queue_bytes: usize,
    /// Longest a long poll is held when nothing happens (milliseconds).
    #[arg(long, env = "CHORUS_POLL_WAIT_MS", default_value_t = 25_000)]
    pub poll_wait_ms: u64,
    /// How long a `POST /v1/poll` waits for the hub's answers (acks of its publishes) before
    /// it answers 503 `storage_unavailable`; the client retries with the same ids (milliseconds).
    #[arg(long, env = "CHORUS_POLL_ACK_WAIT_MS", default_value_t = 10_000)]
    pub poll_ack_wait_ms: u64,
    /// A polling session without a request for this long is gone (milliseconds).
    #[arg(long, env = "CHORUS_POLL_SESSION_TIMEOUT_MS", default_value_t = 40_000)]
    pub poll_session_timeout_ms: u64,
    /// Long polls one session may hold at once.
    #[arg(long, env = "CHORUS_MAX_HELD_POLLS", default_value_t = 2)]
    pub max_held_polls: usize,
    /// Polling sessions one user may have open at once; more are refused (503
    /// `too_many_connections`) until one expires.
    #[arg(long, env = "CHORUS_MAX_POLL_SESSIONS_PER_USER", default_value_t = 16)]
    pub max_poll_sessions_per_user: usize,
    /// Polling sessions one client address (an IPv6 /64) may have open at once.
    #[arg(long, env = "CHORUS_MAX_POLL_SESSIONS_PER_IP", default_value_t = 256)]
    pub max_poll_sessions_per_ip: usize,
    /// Most bytes of events in one answer: a long poll or a history page ends early past it
    /// (with at least one event), and the client continues from its cursor.
    #[arg(long, env = "CHORUS_MAX_ANSWER_BYTES", default_value_t = 1024 * 1024)]
    pub max_answer_bytes: usize,
    /// Largest `POST /v1/poll` body, in bytes.
    #[arg(long, env = "CHORUS_MAX_POLL_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_poll_body_bytes: usize,
    /// Most WebSocket connections in total. The cap in force is lower when the open-file
    /// limit is: that limit less `--reserved-files` (see the start-up log and `/metrics`).
    #[arg(long, env = "CHORUS_MAX_CONNECTIONS", default_value_t = 100_000)]
    pub max_connections: usize,
    /// Open files kept back from WebSocket connections for everything else: health checks
    /// and other HTTP requests, polling, the store's files, outbound connections, refusals.
    #[arg(long, env = "CHORUS_RESERVED_FILES", default_value_t = 128)]
    pub reserved_files: u64,
    /// Most WebSocket connections from one client address.
    #[arg(long, env = "CHORUS_MAX_CONNECTIONS_PER_IP", default_value_t = 1_000)]
    pub max_connections_per_ip: usize,
    /// Most WebSocket connections of one user on this node (each logical connection of a
    /// multiplexed socket counts): a user's presence entry lists them all.
    #[arg(long, env = "CHORUS_MAX_CONNECTIONS_PER_USER", default_value_t = 64)]
    pub max_connections_per_user: usize,
    /// Plain HTTP connections (not WebSockets) one client address (an IPv6 /64) may hold open;
    /// more are answered `503 too_many_connections` and closed. Trusted proxies are exempt.
    #[arg(
        long,
        env = "CHORUS_MAX_HTTP_CONNECTIONS_PER_IP",
        default_value_t = 256
    )]
    pub max_http_connections_per_ip: usize,
    /// How long a connection may take to send a request's headers, counted from when the
    /// server starts waiting for them: on a new connection and after each response on a
    /// kept-alive one, so it is also the idle keep-alive timeout (milliseconds).
    #[arg(long, env = "CHORUS_HTTP_HEADER_TIMEOUT_MS", default_value_t = 10_000)]
    pub http_header_timeout_ms: u64,
    /// A response write that makes no progress (the client reads nothing) for this long closes
    /// the connection (milliseconds).
    #[arg(long, env = "CHORUS_HTTP_STALL_TIMEOUT_MS", default_value_t = 30_000)]
    pub http_stall_timeout_ms: u64,
    /// Reverse proxies (addresses or networks, comma-separated, e.g. `127.0.0.1,10.0.0.0/8`)
    /// whose `X-Forwarded-For` names the client. Connections from them count against the
    /// forwarded client address for `--max-connections-per-ip`; everyone else's header is ignored.
    #[arg(long, env = "CHORUS_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_trusted_proxy)]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Sustained publishes per second per connection (a token bucket).
    #[arg(long, env = "CHORUS_PUBLISH_RATE", default_value_t = 50.0)]
    pub publish_rate: f64,
    /// Publishes a connection may burst above the sustained rate.
    #[arg(long, env = "CHORUS_PUBLISH_BURST", default_value_t = 200.0)]
    pub publish_burst: f64,
    /// Sustained `typing` and `set_presence` frames per second per connection, together (a
    /// token bucket); frames beyond it are dropped with one `rate_limited` error per burst.
    #[arg(long, env = "CHORUS_SIGNAL_RATE", default_value_t = 10.0)]
    pub signal_rate: f64,
    /// `typing` and `set_presence` frames a connection may burst above the sustained rate.
    #[arg(long, env = "CHORUS_SIGNAL_BURST", default_value_t = 20.0)]
    pub signal_burst: f64,
    /// Sustained joins per second per connection, of a room not joined yet or again (a token
    /// bucket); a join beyond it is refused with `rate_limited`.
    #[arg(long, env = "CHORUS_JOIN_RATE", default_value_t = 10.0)]
    pub join_rate: f64,
    /// Joins a connection may burst above the sustained rate (a new connection joins all its
    /// rooms at once: never less than `--max-rooms-per-conn`).
    #[arg(long, env = "CHORUS_JOIN_BURST", default_value_t = 100.0)]
    pub join_burst: f64,
    /// Browser origins allowed to connect and to call the HTTP API (comma-separated, e.g.
    /// `https://app.example.com`); empty allows any origin.
    #[arg(long, env = "CHORUS_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
    /// The backend API key for publishing, direct messages and stats (unset: those endpoints
    /// refuse every request).
    #[arg(long, env = "CHORUS_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// `/metrics` answers only requests with the backend API key (`Authorization: Bearer <api
    /// key>`), as `/v1/stats` does; needs `--api-key`. Off: anyone who reaches the port reads
    /// it.
    #[arg(long, env = "CHORUS_PRIVATE_METRICS")]
    pub private_metrics: bool,
    /// Serve this directory (the plain-JS demo, `www/`) at `/demo/`.
    #[arg(long, env = "CHORUS_DEMO_DIR")]
    pub demo_dir: Option<PathBuf>,
    /// Serve this directory (the built Leptos app, `app/dist/`) at `/`: unknown paths outside
    /// `/v1/` get its `index.html`, so the app's own links survive a reload.
    #[arg(long, env = "CHORUS_APP_DIR")]
    pub app_dir: Option<PathBuf>,
    /// Serve this directory (the npm package, `pkg/`) at `/pkg/`.
    #[arg(long, env = "CHORUS_PKG_DIR")]
    pub pkg_dir: Option<PathBuf>,
    /// Tokio worker threads (default: one per available core). `1` runs every connection on one
    /// thread, as a Node.js server does; benchmarks use it for a like-for-like comparison.
    #[arg(long, env = "CHORUS_WORKER_THREADS", value_parser = clap::value_parser!(u16).range(1..))]
    pub worker_threads: Option<u16>,
    /// Reconnect hint sent to clients when the server shuts down (milliseconds).
    #[arg(long, env = "CHORUS_DRAIN_RETRY_MS", default_value_t = 1_000)]
    pub drain_retry_ms: u64,
    /// Largest stream chunk, in bytes of JSON; at least 26, so that the streaming text endpoint
    /// can always send four bytes of text, however they escape.
    #[arg(long, env = "CHORUS_STREAM_MAX_CHUNK_BYTES", default_value_t = 4096,
          value_parser = clap::value_parser!(u64).range(26..))]
    pub stream_max_chunk_bytes: u64,
    /// Most bytes of chunks one stream keeps: a text stream's together (its stored result is
    /// about that large), a progress stream's last.
    #[arg(long, env = "CHORUS_STREAM_MAX_BYTES", default_value_t = 64 * 1024)]
    pub stream_max_bytes: usize,
    /// Most open streams in one room.
    #[arg(long, env = "CHORUS_STREAM_MAX_PER_ROOM", default_value_t = 16)]
    pub stream_max_per_room: usize,
    /// Most locks held at once in one room: a `lock` for another one gets `too_many_locks`.
    #[arg(long, env = "CHORUS_MAX_LOCKS_PER_ROOM", default_value_t = 256)]
    pub max_locks_per_room: usize,
    /// Most open streams one connection may produce.
    #[arg(long, env = "CHORUS_STREAM_MAX_PER_CONN", default_value_t = 4)]
    pub stream_max_per_conn: usize,
    /// A stream whose producer sends nothing for this long fails with `stream_abandoned`
    /// (milliseconds).
    #[arg(long, env = "CHORUS_STREAM_TIMEOUT_MS", default_value_t = 30_000)]
    pub stream_timeout_ms: u64,
    /// Coalescing: a stream sends its members at most one frame per this period
    /// (milliseconds); faster chunks go together in the next one.
    #[arg(long, env = "CHORUS_STREAM_FLUSH_MS", default_value_t = 10)]
    pub stream_flush_ms: u64,
    /// Shared documents: fold a document's updates into a new snapshot once this many wait.
    #[arg(long, env = "CHORUS_DOC_COMPACT_EVERY", default_value_t = 100)]
    pub doc_compact_every: usize,
    /// Shared documents: and at most this long (milliseconds) after the first of them, so no
    /// update lives only in history for longer (history retention may drop it then).
    #[arg(long, env = "CHORUS_DOC_COMPACT_AFTER_MS", default_value_t = 10_000)]
    pub doc_compact_after_ms: u64,
}

/// One `--trusted-proxies` entry: a network in CIDR form (`10.0.0.0/8`, `fd00::/8`) or a plain
/// address (`127.0.0.1`, `::1`), which is the network of that one address.
fn parse_trusted_proxy(text: &str) -> Result<ipnet::IpNet, String> {
    let text = text.trim();
    if let Ok(net) = text.parse::<ipnet::IpNet>() {
        return Ok(net);
    }
    text.parse::<std::net::IpAddr>()
        .map(ipnet::IpNet::from)
        .map_err(|_| {
            format!(
                "`{text}` is neither an IP address (127.0.0.1, ::1) nor a network (10.0.0.0/8, fd00::/8)"
            )
        })
}

/// The secret used by `--dev`. Public knowledge: dev tokens prove nothing.
pub const DEV_SECRET: &str = "chorus-dev-secret-not-for-production";

impl Config {
    /// Defaults suitable for in-process tests: memory store, dev secret, port 0.
    pub fn for_tests() -> Config {
        let mut config = Config::parse_from([
            "chorus-server",
            "--store",
            "memory",
            "--bind",
            "127.0.0.1:0",
        ]);
        config.jwt_secret = Some(DEV_SECRET.into());
        config
    }

    /// The tokio runtime the binary runs on: multi-threaded, with `--worker-threads` workers
    /// when given (tokio's default, one per available core, otherwise).
    pub fn runtime(&self) -> std::io::Result<tokio::runtime::Runtime> {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        if let Some(threads) = self.worker_threads {
            builder.worker_threads(usize::from(threads));
        }
        builder.enable_all().build()
    }

    /// The hub's part of the configuration.
    pub fn hub(&self) -> HubConfig {
        HubConfig {
            heartbeat: Duration::from_millis(self.heartbeat_ms),
            presence_grace: Duration::from_millis(self.presence_grace_ms),
            typing_ttl: Duration::from_millis(self.typing_ttl_ms),
            max_meta_bytes: self.max_meta_bytes,
            max_cursor_bytes: self.max_cursor_bytes,
            max_rooms_per_conn: self.max_rooms_per_conn,
            poll_session_timeout: Duration::from_millis(self.poll_session_timeout_ms),
            publish_rate: self.publish_rate,
            publish_burst: self.publish_burst,
            signal_rate: self.signal_rate,
            signal_burst: self.signal_burst,
            join_rate: self.join_rate,
            // A new connection joins all its rooms at once.
            join_burst: self.join_burst.max(self.max_rooms_per_conn as f64),
            // With Redis, other nodes may share the rooms: presence, typing and ephemeral
            // events go out as signals (carried by the bus, which lands with the Redis
            // transport; until then the driver drops them). SQLite and memory are one node:
            // no signals at all.
            federated: self.redis.is_some(),
            stream_max_chunk_bytes: self.stream_max_chunk_bytes as usize,
            stream_max_bytes: self.stream_max_bytes,
            stream_max_per_room: self.stream_max_per_room,
            max_locks_per_room: self.max_locks_per_room,
            stream_max_per_conn: self.stream_max_per_conn,
            stream_timeout: Duration::from_millis(self.stream_timeout_ms),
            stream_flush: Duration::from_millis(self.stream_flush_ms),
            ..HubConfig::default()
        }
    }

    /// The retention policy.
    pub fn retention(&self) -> Retention {
        Retention {
            max_events: self.retention_events,
            max_age: Duration::from_secs(self.retention_secs),
        }
    }

    /// The token secret in force, or why there is none.
    pub fn secret(&self) -> Result<Vec<u8>, &'static str> {
        match (&self.jwt_secret, self.dev) {
            (Some(secret), _) if !secret.is_empty() => Ok(secret.as_bytes().to_vec()),
            (_, true) => Ok(DEV_SECRET.as_bytes().to_vec()),
            _ => Err(
                "set --jwt-secret (or CHORUS_JWT_SECRET), or run with --dev for local development",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_threads_size_the_runtime() {
        fn check(args: &[&str], expect: Option<usize>) {
            let parsed = Config::try_parse_from(
                ["chorus-server", "--store", "memory"]
                    .iter()
                    .chain(args)
                    .copied(),
            );
            let workers = parsed
                .ok()
                .map(|config| config.runtime().unwrap().metrics().num_workers());
            assert_eq!(workers, expect, "{args:?}");
        }
        check(&["--worker-threads", "1"], Some(1));
        check(&["--worker-threads", "3"], Some(3));
        check(&["--worker-threads", "0"], None);
        let default = std::thread::available_parallelism().map_or(1, usize::from);
        check(&[], Some(default));
    }

    #[test]
    fn a_stream_chunk_limit_under_26_bytes_is_refused() {
        let chunk = |value: &str| {
            Config::try_parse_from(["chorus-server", "--stream-max-chunk-bytes", value])
                .map(|config| config.hub().stream_max_chunk_bytes)
                .map_err(|err| err.to_string())
        };
        assert_eq!(chunk("26"), Ok(26));
        assert_eq!(chunk("4096"), Ok(4096));
        let refused = chunk("25").unwrap_err();
        assert!(refused.contains("26.."), "{refused}");
    }

    #[test]
    fn with_dev_and_a_jwt_secret_only_the_jwt_secret_is_accepted() {
        let secret = |args: &[&str]| {
            let base = ["chorus-server", "--store", "memory"];
            Config::try_parse_from(base.iter().chain(args).copied())
                .unwrap()
                .secret()
        };
        assert_eq!(
            secret(&["--dev", "--jwt-secret", "s3cret"]),
            Ok(b"s3cret".to_vec())
        );
        assert_eq!(secret(&["--dev"]), Ok(DEV_SECRET.as_bytes().to_vec()));
        assert!(secret(&[]).is_err());
        assert!(
            secret(&["--jwt-secret", ""]).is_err(),
            "an empty secret is none"
        );
    }

    #[test]
    fn trusted_proxies_are_addresses_or_networks() {
        fn check(value: &str, expect: Result<&[&str], &str>) {
            let parsed = Config::try_parse_from(["chorus-server", "--trusted-proxies", value]);
            match (parsed, expect) {
                (Ok(config), Ok(nets)) => {
                    let got: Vec<String> = config
                        .trusted_proxies
                        .iter()
                        .map(|n| n.to_string())
                        .collect();
                    assert_eq!(got, nets, "{value}");
                }
                (Err(err), Err(says)) => {
                    let text = err.to_string();
                    assert!(text.contains(says), "{value}: {text}");
                }
                (parsed, expect) => panic!("{value}: {:?} but expected {expect:?}", parsed.err()),
            }
        }
        check("127.0.0.1", Ok(&["127.0.0.1/32"]));
        check("::1", Ok(&["::1/128"]));
        // The example in `--help`.
        check("127.0.0.1,10.0.0.0/8", Ok(&["127.0.0.1/32", "10.0.0.0/8"]));
        check("fd00::/8, 192.168.1.7", Ok(&["fd00::/8", "192.168.1.7/32"]));
        check("proxy.local", Err("is neither an IP address"));
        check("10.0.0.0/33", Err("is neither an IP address"));
    }

    #[test]
    fn redis_replaces_the_store_flag_and_takes_a_prefix() {
        let config =
            Config::try_parse_from(["chorus-server", "--redis", "redis://10.0.0.5/"]).unwrap();
        assert_eq!(config.redis.as_deref(), Some("redis://10.0.0.5/"));
        assert_eq!(config.redis_prefix, "chorus:");
        assert!(
            config.hub().federated,
            "Redis nodes share presence and typing"
        );
        let one_node = Config::try_parse_from(["chorus-server", "--store", "memory"]).unwrap();
        assert!(!one_node.hub().federated, "one node sends no signals");
        let config = Config::try_parse_from([
            "chorus-server",
            "--redis",
            "rediss://h/",
            "--redis-prefix",
            "staging:",
        ])
        .unwrap();
        assert_eq!(config.redis_prefix, "staging:");
        let both = Config::try_parse_from([
            "chorus-server",
            "--store",
            "memory",
            "--redis",
            "redis://h/",
        ]);
        let err = both.unwrap_err().to_string();
        assert!(err.contains("--redis") && err.contains("--store"), "{err}");
    }

    #[test]
    fn redis_cluster_takes_the_nodes_urls_and_needs_redis() {
        let config = Config::try_parse_from([
            "chorus-server",
            "--redis",
            "redis://10.0.0.1:6379,redis://10.0.0.2:6379",
            "--redis-cluster",
        ])
        .unwrap();
        assert!(config.redis_cluster);
        assert!(
            !Config::try_parse_from(["chorus-server", "--redis", "redis://h/"])
                .unwrap()
                .redis_cluster
        );
        let err = Config::try_parse_from(["chorus-server", "--redis-cluster"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--redis <REDIS>"), "{err}");
    }
}
