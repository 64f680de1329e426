//! HTTP edge: axum routes that adapt sockets and requests to the hub and the store.
//!
//! Thin adapters only: validate at the edge (names, sizes, tokens), then hand typed values to
//! the hub or the store. Every refusal is an [`ApiError`] (HTTP) or an `error` frame (WebSocket)
//! with a stable code from `chorus_sdk::wire::ErrorCode`.

mod rest;
mod ws;

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chorus_sdk::wire::{ErrorBody, ErrorCode};

use crate::auth::Authenticator;
use crate::driver::HubHandle;
use crate::store::Store;

/// What every handler can reach.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The hub task.
    pub hub: HubHandle,
    /// History, for the REST history endpoint.
    pub store: Arc<dyn Store>,
    /// Token verification.
    pub auth: Authenticator,
    /// Edge limits.
    pub limits: EdgeLimits,
    /// Whether `POST /v1/dev/token` is served.
    pub dev: bool,
}

impl std::fmt::Debug for dyn Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

/// Limits enforced by the HTTP and WebSocket edge.
#[derive(Clone, Copy, Debug)]
pub struct EdgeLimits {
    /// Largest client frame; larger ones get `frame_too_large` and the connection stays open.
    pub max_frame_bytes: usize,
    /// Outbound queue length per connection.
    pub outbound_queue: usize,
    /// How long a new connection may take to authenticate, and the write timeout.
    pub heartbeat: Duration,
}

/// The router with every route.
pub fn router(state: AppState) -> axum::Router {
    axum::Router::new()
        .route("/v1/ws", get(ws::upgrade))
        .route("/v1/rooms/{room}/events", get(rest::room_events))
        .route("/v1/rooms/{room}/presence", get(rest::room_presence))
        .route("/v1/dev/token", post(rest::dev_token))
        .route("/healthz", get(rest::healthz))
        .fallback(rest::not_found)
        .with_state(state)
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
