//! The WebSocket handshake (RFC 6455, HTTP/1.1) done here rather than by axum's
//! `WebSocketUpgrade`, so that the connection task owns a tokio-tungstenite socket over an I/O
//! of ours ([`RawFrames`]): the hub's frames are then written raw, with no copy and no write
//! buffer keeping the capacity of the largest message a connection ever received.
//!
//! It only checks the request and switches protocols; who may connect is `ws::upgrade`'s call.

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use chorus_sdk::wire::ErrorCode;
use futures_util::FutureExt;
use futures_util::future::Either;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use super::ApiError;
use super::output::RawFrames;

/// The server side of an open WebSocket, boxed: it is handed down from the connection task
/// to the functions it awaits, and each async function keeps its own copy of what it was
/// given for as long as it runs (an unboxed socket, a few hundred bytes, would be held once per
/// level by every connection).
/// Under tungstenite, [`RawFrames`] also takes the hub's frames written raw.
pub(super) type Socket = Box<WebSocketStream<RawFrames<TokioIo<hyper::upgrade::Upgraded>>>>;

/// A valid WebSocket upgrade request, not yet answered.
#[derive(Debug)]
pub(super) struct Upgrade {
    key: HeaderValue,
    offered_protocols: Vec<String>,
    on_upgrade: hyper::upgrade::OnUpgrade,
}

impl<S: Send + Sync> FromRequestParts<S> for Upgrade {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Upgrade, ApiError> {
        let bad = |message: &'static str| {
            ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, message)
        };
        if parts.method != Method::GET {
            return Err(bad("a WebSocket upgrade is a GET request"));
        }
        if !has_token(&parts.headers, header::CONNECTION, "upgrade")
            || !has_token(&parts.headers, header::UPGRADE, "websocket")
        {
            return Err(bad(
                "this endpoint speaks WebSocket: send `Connection: Upgrade` and `Upgrade: websocket`",
            ));
        }
        if parts
            .headers
            .get(header::SEC_WEBSOCKET_VERSION)
            .is_none_or(|version| version.as_bytes() != b"13")
        {
            return Err(bad("only WebSocket version 13 is spoken"));
        }
        let key = parts
            .headers
            .get(header::SEC_WEBSOCKET_KEY)
            .ok_or_else(|| bad("the Sec-WebSocket-Key header is missing"))?
            .clone();
        let on_upgrade = parts
            .extensions
            .remove::<hyper::upgrade::OnUpgrade>()
            .ok_or_else(|| bad("this connection cannot be upgraded"))?;
        let offered_protocols = parts
            .headers
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(|protocol| protocol.trim().to_owned())
            .collect();
        Ok(Upgrade {
            key,
            offered_protocols,
            on_upgrade,
        })
    }
}

impl Upgrade {
    /// The subprotocols the client offered, in order.
    pub(super) fn offered_protocols(&self) -> impl Iterator<Item = &str> {
        self.offered_protocols.iter().map(String::as_str)
    }

    /// Answers `101 Switching Protocols` (naming `protocol` if given) and runs `connection` on
    /// the socket once the client has it.
    pub(super) fn accept<F, Fut>(
        self,
        protocol: Option<&'static str>,
        config: WebSocketConfig,
        connection: F,
    ) -> Response
    where
        F: FnOnce(Socket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        // A chain of futures rather than one async block: each step's inputs are dropped when
        // it is done, so for the connection's whole life its task holds the connection's own
        // future and nothing else (an async block keeps its captures, here the closure and the
        // config, in every state).
        let task = self.on_upgrade.then(move |upgraded| match upgraded {
            Ok(upgraded) => {
                let io = RawFrames::new(TokioIo::new(upgraded));
                Either::Left(
                    WebSocketStream::from_raw_socket(io, Role::Server, Some(config))
                        .then(move |socket| connection(Box::new(socket))),
                )
            }
            Err(err) => {
                tracing::debug!("WebSocket upgrade failed: {err}");
                Either::Right(std::future::ready(()))
            }
        });
        tokio::spawn(task);
        let mut response = Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(header::CONNECTION, "upgrade")
            .header(header::UPGRADE, "websocket")
            .header(
                header::SEC_WEBSOCKET_ACCEPT,
                derive_accept_key(self.key.as_bytes()),
            );
        if let Some(protocol) = protocol {
            response = response.header(header::SEC_WEBSOCKET_PROTOCOL, protocol);
        }
        response
            .body(Body::empty())
            .expect("a 101 response from valid parts")
    }
}

/// Whether a comma-separated header lists `token` (case-insensitive).
fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| item.trim().eq_ignore_ascii_case(token))
}
