//! The WebSocket endpoint `/v1/ws`: one task per connection.
//!
//! The task authenticates the connection (token in the `Sec-WebSocket-Protocol` header or a
//! first `hello` frame, never in the URL), then joins two loops with `select!`: client frames
//! are decoded here (so parsing runs in parallel across connections) and passed to the hub;
//! the hub's frames arrive on a bounded queue and are written out. Bad frames are answered
//! with `error` frames; the connection and its rooms keep working. The socket is not split
//! into halves (no lock between them): the loop never reads and writes at the same time.

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chorus_sdk::wire::{self, ClientFrame, ErrorCode, ServerFrame, close_code};
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{Frame, Utf8Bytes};
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};

use super::limits::{LimitHit, client_ip};
use super::metrics::EdgeCounters;
use super::upgrade::{Socket as WebSocket, Upgrade};
use super::{ApiError, AppState};
use crate::auth::AuthError;
use crate::driver::{HubMsg, SocketSender, sleep_until};
use crate::hub::{Payload, encode};
use crate::identity::Identity;

/// The read buffer every connection holds from its first byte to its last: small, because
/// clients mostly send small frames (bigger ones are read in several chunks).
const READ_BUFFER: usize = 1024;
/// Bytes a frame may wait in the write buffer before it is written to the socket: none, every
/// frame is written as soon as it is formed (each message is flushed at once anyway). The
/// buffer then never holds more than one frame, and keeps that frame's capacity for the
/// connection's life.
const WRITE_BUFFER: usize = 0;
/// The largest frame sent: longer messages (a `joined` listing a big room's presence, a large
/// event) go out as several frames of at most this many bytes, so what the write buffer keeps
/// does not grow with the largest message a connection ever got (it did: 55 KiB per idle
/// connection in rooms of 1000, against 8 KiB in rooms of 10).
const FRAGMENT: usize = 1024;
/// Messages beyond this many bytes close the connection (1009) instead of getting an error.
fn hard_cap(max_frame_bytes: usize) -> usize {
    (max_frame_bytes * 4).max(256 * 1024)
}

/// `GET /v1/ws`
pub(super) async fn upgrade(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    ws: Upgrade,
) -> Response {
    // Browsers always send Origin; a page from a site not on the allow-list must not ride on a
    // user's token (cross-site WebSocket hijacking).
    if !state.origin_allowed(headers.get(header::ORIGIN)) {
        EdgeCounters::bump(&state.counters.rejected_origin);
        let message = "this page's origin may not connect to this server (see --allowed-origins)";
        return ApiError::new(StatusCode::FORBIDDEN, ErrorCode::ForbiddenOrigin, message)
            .into_response();
    }
    let forwarded_for = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok());
    let client = client_ip(peer.ip(), forwarded_for, &state.trusted_proxies);
    let permit = match state.connections.acquire(client) {
        Ok(permit) => permit,
        Err(hit) => {
            EdgeCounters::bump(match hit {
                LimitHit::Total(_) => &state.counters.rejected_total_limit,
                LimitHit::PerIp(_) => &state.counters.rejected_per_ip_limit,
            });
            let message = hit.to_string();
            let mut refusal = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::TooManyConnections,
                message,
            )
            .into_response();
            // The refused client's TCP connection must not stay open on keep-alive: it holds
            // an open file, and the server refuses because it is short of them.
            refusal
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return refusal;
        }
    };
    let mut token = None;
    let mut speaks_v1 = false;
    for protocol in ws.offered_protocols() {
        if protocol == wire::WS_SUBPROTOCOL {
            speaks_v1 = true;
        } else if let Some(value) = protocol.strip_prefix(wire::WS_TOKEN_PREFIX) {
            token = Some(value.to_owned());
        }
    }
    let cap = hard_cap(state.limits.max_frame_bytes);
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_message_size(Some(cap))
        .max_frame_size(Some(cap));
    let protocol = speaks_v1.then_some(wire::WS_SUBPROTOCOL);
    ws.accept(protocol, config, move |socket| async move {
        connection(socket, state, token).await;
        drop(permit);
    })
}

/// Verifies the token of a first frame, which must be `hello`.
fn hello_identity(state: &AppState, text: &str) -> Result<Identity, AuthError> {
    EdgeCounters::bump(&state.counters.frames_received);
    match ClientFrame::decode(text) {
        Ok(ClientFrame::Hello(hello)) => state.auth.verify(&hello.token),
        _ => Err(AuthError::Missing),
    }
}

/// The first data message (binary ones as empty text, which fails to decode), skipping
/// WebSocket-level pings and pongs; `None` when the socket closes first.
async fn first_frame(socket: &mut WebSocket) -> Option<String> {
    while let Some(Ok(message)) = socket.next().await {
        match message {
            Message::Text(text) => return Some(text.as_str().to_owned()),
            Message::Binary(_) => return Some(String::new()),
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            Message::Close(_) => return None,
        }
    }
    None
}

async fn connection(mut socket: WebSocket, state: AppState, header_token: Option<String>) {
    let identity = match header_token {
        Some(token) => state.auth.verify(&token),
        None => {
            match tokio::time::timeout(state.limits.heartbeat, first_frame(&mut socket)).await {
                Ok(Some(text)) => hello_identity(&state, &text),
                Ok(None) => return, // Closed before saying anything.
                Err(_) => Err(AuthError::Missing),
            }
        }
    };
    let identity = match identity {
        Ok(identity) => Arc::new(identity),
        Err(err) => {
            let message = err.to_string();
            return goodbye(
                &mut socket,
                close_code::UNAUTHENTICATED,
                err.code(),
                &message,
            )
            .await;
        }
    };
    run(socket, state, identity).await;
}

async fn run(mut socket: WebSocket, state: AppState, identity: Arc<Identity>) {
    // A peer that takes no frame for two heartbeats is gone.
    let write_timeout = state.limits.heartbeat * 2;
    let conn = state.hub.next_conn_id();
    // A socket must not outlive its token: at expiry the client is told and closed (4001), and
    // reconnects with a fresh one. Polling needs no timer: every request is checked.
    let token_expiry = sleep_until(identity.expires_at_ms.map(instant_of_unix_ms));
    tokio::pin!(token_expiry);
    let (frames_tx, frames) = flume::bounded(state.limits.outbound_queue);
    // One receive stream for the connection's life: its waker stays registered across loop
    // turns instead of being re-registered on every turn.
    let mut outgoing = frames.stream();
    let (close_tx, mut close_rx) = oneshot::channel();
    let sender = SocketSender {
        frames: frames_tx,
        close: close_tx,
    };
    if !state
        .hub
        .send(HubMsg::Connect {
            conn,
            identity,
            sender,
        })
        .await
    {
        close(
            &mut socket,
            close_code::SERVICE_RESTART,
            ErrorCode::Draining,
        )
        .await;
        return;
    }
    loop {
        tokio::select! {
            biased;
            closing = &mut close_rx => {
                if let Ok((code, reason)) = closing {
                    if code == close_code::SERVICE_RESTART {
                        // Deliver what is queued (acks, the `draining` frame) before saying goodbye.
                        while let Ok(payload) = frames.try_recv() {
                            if !send_payload(&mut socket, payload, Duration::from_secs(1)).await {
                                break;
                            }
                        }
                        close(&mut socket, code, reason).await;
                    } else {
                        let message = match reason {
                            ErrorCode::SlowConsumer => "you fell behind and were disconnected; reconnect and resume",
                            _ => "no frame arrived within two heartbeat intervals",
                        };
                        goodbye(&mut socket, code, reason, message).await;
                    }
                }
                break;
            }
            () = &mut token_expiry => {
                let message = "the token has expired; reconnect with a fresh one";
                goodbye(&mut socket, close_code::UNAUTHENTICATED, ErrorCode::TokenExpired, message).await;
                break;
            }
            next = outgoing.next() => match next {
                Some(payload) => {
                    if !send_payload(&mut socket, payload, write_timeout).await {
                        break;
                    }
                }
                None => break,
            },
            incoming = socket.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    EdgeCounters::bump(&state.counters.frames_received);
                    let max = state.limits.max_frame_bytes;
                    let answer = if text.len() > max {
                        Some(ServerFrame::error(
                            ErrorCode::FrameTooLarge,
                            format!("the frame is {} bytes; the limit is {max}", text.len()),
                            None,
                        ))
                    } else {
                        match ClientFrame::decode(&text) {
                            Ok(frame) => {
                                if !state.hub.send(HubMsg::Frame { conn, frame }).await {
                                    break;
                                }
                                None
                            }
                            Err(err) => Some(ServerFrame::error(err.code(), err.to_string(), None)),
                        }
                    };
                    if answer.is_some() {
                        EdgeCounters::bump(&state.counters.frames_refused);
                    }
                    if let Some(frame) = answer
                        && !send_payload(&mut socket, encode(&frame), write_timeout).await
                    {
                        break;
                    }
                }
                Some(Ok(Message::Binary(_))) => {
                    let frame = ServerFrame::error(ErrorCode::BadFrame, "binary frames are not supported; send JSON text frames", None);
                    if !send_payload(&mut socket, encode(&frame), write_timeout).await {
                        break;
                    }
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {
                    state.hub.send(HubMsg::Activity { conn }).await;
                }
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
            },
        }
    }
    state.hub.send(HubMsg::Disconnect { conn }).await;
}

/// Sends a hub payload as one text message; `false` if the socket failed or the peer did not
/// take it in time. The payload's shared bytes are handed over, not copied. A payload longer
/// than [`FRAGMENT`] goes out as a text frame and continuation frames of at most that size
/// (cut at character boundaries), so the write buffer never holds more than one small frame.
async fn send_payload(socket: &mut WebSocket, payload: Payload, timeout: Duration) -> bool {
    let bytes = payload.into_bytes();
    if bytes.len() <= FRAGMENT {
        let text = Utf8Bytes::try_from(bytes).expect("a payload is UTF-8 text");
        return send(socket, Message::Text(text), timeout).await;
    }
    let text = std::str::from_utf8(&bytes).expect("a payload is UTF-8 text");
    let fragments = fragment_bounds(text, FRAGMENT);
    let last = fragments.len() - 1;
    let all = async {
        for (n, range) in fragments.into_iter().enumerate() {
            let opcode = if n == 0 { Data::Text } else { Data::Continue };
            let frame = Frame::message(bytes.slice(range), OpCode::Data(opcode), n == last);
            socket.feed(Message::Frame(frame)).await?;
        }
        socket.flush().await
    };
    matches!(tokio::time::timeout(timeout, all).await, Ok(Ok(())))
}

/// Cuts `text` into consecutive byte ranges of at most `max` bytes (at least 4, the longest
/// UTF-8 character), each ending on a character boundary.
fn fragment_bounds(text: &str, max: usize) -> Vec<std::ops::Range<usize>> {
    let mut ranges = Vec::with_capacity(text.len().div_ceil(max));
    let mut start = 0;
    while start < text.len() {
        let mut end = (start + max).min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        ranges.push(start..end);
        start = end;
    }
    ranges
}

/// Sends one message; `false` if the socket failed or the peer did not take it in time.
async fn send(socket: &mut WebSocket, message: Message, timeout: Duration) -> bool {
    matches!(
        tokio::time::timeout(timeout, socket.send(message)).await,
        Ok(Ok(()))
    )
}

/// Tells the client why with an `error` frame, then closes with `code`.
async fn goodbye(socket: &mut WebSocket, code: u16, reason: ErrorCode, message: &str) {
    let frame = ServerFrame::error(reason, message, None);
    let _ = send_payload(socket, encode(&frame), Duration::from_secs(1)).await;
    close(socket, code, reason).await;
}

async fn close(socket: &mut WebSocket, code: u16, reason: ErrorCode) {
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: reason.as_str().into(),
    };
    let _ = send(socket, Message::Close(Some(frame)), Duration::from_secs(1)).await;
}

/// The tokio instant of a wall-clock time (ms since the Unix epoch).
#[allow(clippy::disallowed_methods)] // The connection task is a driver: it may read the clock.
fn instant_of_unix_ms(unix_ms: u64) -> tokio::time::Instant {
    tokio::time::Instant::now()
        + Duration::from_millis(unix_ms.saturating_sub(crate::clock::unix_ms_now()))
}

#[cfg(test)]
mod tests {
    use super::fragment_bounds;

    #[test]
    fn fragments_cover_the_text_and_end_on_character_boundaries() {
        fn check(text: &str, max: usize, expect: &[&str]) {
            let got: Vec<&str> = fragment_bounds(text, max)
                .into_iter()
                .map(|range| &text[range])
                .collect();
            assert_eq!(got, expect, "{text:?} in pieces of {max}");
        }
        check("", 4, &[]);
        check("abcd", 4, &["abcd"]);
        check("abcdefghij", 4, &["abcd", "efgh", "ij"]);
        // "é" is two bytes and "€" three: never cut in the middle.
        check("abcé", 4, &["abc", "é"]);
        check("a€€", 4, &["a€", "€"]);
        check("€€€", 5, &["€", "€", "€"]);
    }
}
