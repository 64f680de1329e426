//! HTTP edge: axum routes that adapt sockets and requests to the hub and the store.
//!
//! Thin adapters only: validate at the edge (names, sizes, tokens, origins, limits), then hand
//! typed values to the hub or the store. Every refusal is an [`ApiError`] (HTTP) or an `error`
//! frame (WebSocket) with a stable code from `chorus_sdk::wire::ErrorCode`.

mod activity;
mod docs;
pub mod limits;
mod locks;
pub mod metrics;
mod mux;
mod notices;
mod output;
mod poll;
mod polls;
mod rest;
pub mod serve;
mod streams;
pub mod tls;
mod upgrade;
mod ws;

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use chorus_sdk::wire::{ErrorBody, ErrorCode};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::auth::Authenticator;
use crate::driver::HubHandle;
use crate::store::Store;

/// What every handler can reach: one shared [`AppStateInner`], so every connection task holds a
/// pointer, not its own copy of keys, paths and settings.
#[derive(Clone, Debug)]
pub struct AppState(Arc<AppStateInner>);

impl AppState {
    /// Shares `inner` with every handler.
    pub fn new(inner: AppStateInner) -> AppState {
        AppState(Arc::new(inner))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppStateInner;

    fn deref(&self) -> &AppStateInner {
        &self.0
    }
}

/// The server's shared state and settings (reached through [`AppState`]).
#[derive(Debug)]
pub struct AppStateInner {
    /// The hub task.
    pub hub: HubHandle,
    /// The shared documents' compactor (`crate::docs`).
    pub docs: crate::docs::compactor::Compactor,
    /// History, for the REST history endpoint and polls.
    pub store: Arc<dyn Store>,
    /// What this node hears from the others (for `/readyz` and `/metrics`).
    pub bus: Arc<dyn crate::bus::Bus>,
    /// Polling sessions shared between the nodes (Redis engine only).
    pub sessions: Option<crate::bus::sessions::SessionDirectory>,
    /// The nodes' figures, for a deployment-wide `/v1/stats` (Redis engine only).
    pub node_stats: Option<crate::bus::node_stats::NodeStatsDirectory>,
    /// Token verification.
    pub auth: Authenticator,
    /// The backend API key, if one is configured.
    pub api_key: Option<String>,
    /// `/metrics` needs the API key (`--private-metrics`).
    pub private_metrics: bool,
    /// Edge limits.
    pub limits: EdgeLimits,
    /// Open WebSocket connections, in total and per address.
    pub connections: Arc<limits::ConnectionLimiter>,
    /// Open WebSocket connections per user.
    pub users: Arc<limits::UserLimiter>,
    /// The total cap in force and the open-file limit it comes from (for `/metrics`).
    pub capacity: limits::ConnectionCapacity,
    /// Browser origins allowed to connect (empty: any).
    pub allowed_origins: Vec<String>,
    /// Reverse proxies whose `X-Forwarded-For` is believed (see `limits::client_ip`).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Counters for `/metrics`.
    pub counters: Arc<metrics::EdgeCounters>,
    /// Whether `POST /v1/dev/token` is served.
    pub dev: bool,
    /// Static directories: (URL prefix, directory), e.g. `/demo` -> `www/`.
    pub static_dirs: Vec<(&'static str, std::path::PathBuf)>,
    /// The single-page app served at `/` (index.html for every unknown path outside `/v1/`).
    pub app_dir: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for dyn Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

/// Limits and timings enforced by the HTTP and WebSocket edge.
#[derive(Clone, Copy, Debug)]
pub struct EdgeLimits {
    /// Largest client frame; larger ones get `frame_too_large` and the connection stays open.
    pub max_frame_bytes: usize,
    /// Largest `POST /v1/poll` body.
    pub max_poll_body_bytes: usize,
    /// Outbound queue length per connection.
    pub outbound_queue: usize,
    /// Outbound queue bytes per connection.
    pub outbound_queue_bytes: usize,
    /// How long a new connection may take to authenticate, and the write timeout.
    pub heartbeat: Duration,
    /// Longest a long poll is held.
    pub poll_wait: Duration,
    /// Held polls per session.
    pub max_held_polls: usize,
    /// Most rooms one connection (or polling session) may join: also the most cursors one
    /// long poll may carry.
    pub max_rooms_per_conn: usize,
    /// Most bytes of events one answer (a long poll, a history page) carries; past it the
    /// answer ends early and the client continues from its cursor.
    pub max_answer_bytes: usize,
    /// How long a `POST /v1/poll` waits for its acks (`--poll-ack-wait-ms`).
    pub poll_send_timeout: Duration,
    /// The reconnect hint given while shutting down.
    pub drain_retry: Duration,
    /// Largest stream chunk (`--stream-max-chunk-bytes`): the streaming text endpoint cuts
    /// its body into pieces that fit.
    pub max_stream_chunk_bytes: usize,
}

impl AppStateInner {
    /// The per-address key of the client behind a request from `peer` (the forwarded client
    /// when `peer` is a trusted proxy; see `limits::client_ip` and `limits::address_key`).
    pub fn client_address(&self, peer: std::net::IpAddr, headers: &HeaderMap) -> std::net::IpAddr {
        let forwarded_for = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok());
        limits::address_key(limits::client_ip(
            peer,
            forwarded_for,
            &self.trusted_proxies,
        ))
    }

    /// Whether a browser page from `origin` may use this server (no `Origin`: not a browser).
    pub fn origin_allowed(&self, origin: Option<&HeaderValue>) -> bool {
        match origin {
            None => true,
            Some(_) if self.allowed_origins.is_empty() => true,
            Some(origin) => self
                .allowed_origins
                .iter()
                .any(|allowed| allowed.as_bytes() == origin.as_bytes()),
        }
    }
}

/// The router with every route.
pub fn router(state: AppState) -> axum::Router {
    let cors_origins = if state.allowed_origins.is_empty() {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            state
                .allowed_origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok()),
        )
    };
    let cors = CorsLayer::new()
        .allow_origin(cors_origins)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("x-requested-with"),
        ])
        .max_age(Duration::from_secs(600));
    let frame_limit = DefaultBodyLimit::max(state.limits.max_frame_bytes + 1024);
    let poll_limit = DefaultBodyLimit::max(state.limits.max_poll_body_bytes);
    let mut router = axum::Router::new();
    for (prefix, dir) in &state.static_dirs {
        router = router.nest_service(
            prefix,
            tower_http::services::ServeDir::new(dir).append_index_html_on_directories(true),
        );
    }
    router = router
        .route("/v1/ws", get(ws::upgrade))
        .route(
            "/v1/poll",
            get(poll::poll).post(poll::send).layer(poll_limit),
        )
        .route("/v1/polls", post(polls::many).layer(poll_limit))
        .route(
            "/v1/rooms/{room}/events",
            get(rest::room_events)
                .post(rest::backend_publish)
                .layer(frame_limit),
        )
        .route(
            "/v1/users/{user}/events",
            post(rest::direct_message).layer(frame_limit),
        )
        .route("/v1/rooms/{room}/presence", get(rest::room_presence))
        .route("/v1/rooms/{room}/locks", get(locks::room_locks))
        .route(
            "/v1/rooms/{room}/docs/{doc}",
            get(docs::doc_state)
                .post(docs::doc_update)
                .layer(frame_limit),
        )
        .route(
            "/v1/rooms/{room}/docs/{doc}/content",
            get(docs::doc_content),
        )
        .route("/v1/notices", post(notices::to_everyone).layer(frame_limit))
        .route(
            "/v1/users/{user}/notices",
            post(notices::to_user).layer(frame_limit),
        )
        .route(
            "/v1/connections/{conn}/notices",
            post(notices::to_connection).layer(frame_limit),
        )
        .route(
            "/v1/rooms/{room}/streams/{id}",
            post(streams::stream_step).layer(frame_limit),
        )
        .route(
            "/v1/rooms/{room}/streams/{id}/text",
            post(streams::stream_text),
        )
        .route("/v1/stats", get(rest::stats))
        .route(
            "/v1/dev/token",
            post(rest::dev_token).layer(DefaultBodyLimit::max(4096)),
        )
        .route("/healthz", get(rest::healthz))
        .route("/readyz", get(rest::readyz))
        .route("/metrics", get(rest::metrics))
        // Every route's other methods: 405 with a JSON error like every other refusal.
        .method_not_allowed_fallback(rest::method_not_allowed);
    router = match &state.app_dir {
        Some(dir) => router
            // API paths stay JSON errors; everything else belongs to the app's own routing.
            .route("/v1/{*rest}", any(rest::not_found))
            .fallback_service(
                tower_http::services::ServeDir::new(dir)
                    .fallback(tower_http::services::ServeFile::new(dir.join("index.html"))),
            ),
        None => router.fallback(rest::not_found),
    };
    router.layer(cors).with_state(state)
}

/// An HTTP error: a status and a body with a stable code and a sentence.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            body: ErrorBody {
                code,
                message: message.into(),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

/// The path's parameters, like axum's `Path`, refused as every other bad input is: 400
/// `bad_request` with a JSON body (axum's own answer to, say, a segment that is not UTF-8 once
/// percent-decoded is plain text).
pub(crate) struct PathParts<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for PathParts<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(PathParts(value)),
            Err(rejection) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                format!("bad path: {}", rejection.body_text()),
            )),
        }
    }
}
