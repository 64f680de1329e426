//! The WebSocket endpoint `/v1/ws`: one task per connection.
//!
//! The task authenticates the connection (token in the `Sec-WebSocket-Protocol` header or a
//! first `hello` frame, never in the URL), then joins two loops with `select!`: client frames
//! are decoded here (so parsing runs in parallel across connections) and passed to the hub;
//! the hub's frames arrive on a bounded queue and are written out. Bad frames are answered
//! with `error` frames; the connection and its rooms keep working. The socket is not split
//! into halves (no lock between them); one future polls its reading and writing sides
//! together ([`Output`]), so the task reads while a slow peer takes its frames. The hub's
//! frames are written raw, bypassing tungstenite's write buffer (`http::output`).

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chorus_sdk::wire::{self, ClientFrame, ErrorCode, ServerFrame, close_code};
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};

use super::limits::{ConnectionPermit, LimitHit, UserPermit};
use super::metrics::EdgeCounters;
use super::output::{Io, Outgoing, Output};
use super::upgrade::{Socket as WebSocket, Upgrade};
use super::{ApiError, AppState};
use crate::auth::AuthError;
use crate::driver::{FrameQueue, FrameReceiver, HubMsg, SocketSender};
use crate::hub::{ConnId, Payload, draining_message, encode};
use crate::identity::Identity;

/// The read buffer every connection holds from its first byte to its last: small, because
/// clients mostly send small frames (bigger ones are read in several chunks).
const READ_BUFFER: usize = 1024;
/// Bytes a frame may wait in tungstenite's write buffer before it is written to the socket:
/// none, every frame it makes (pongs, closes, the closing paths' messages) is written at once.
/// The hub's frames do not go through it (`http::output`).
const WRITE_BUFFER: usize = 0;
/// How long a closing connection waits for the peer's close frame (see [`close`]).
const CLOSE_LINGER: Duration = Duration::from_secs(1);
/// Messages beyond this many bytes close the connection (1009) instead of getting an error.
pub(super) fn hard_cap(max_frame_bytes: usize) -> usize {
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
    let client = state.client_address(peer.ip(), &headers);
    let permit = match acquire_permit(&state, client) {
        Ok(permit) => permit,
        Err(hit) => {
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
    let mut multiplexed = false;
    for protocol in ws.offered_protocols() {
        if protocol == wire::WS_MUX_SUBPROTOCOL {
            multiplexed = true;
        } else if protocol == wire::WS_SUBPROTOCOL {
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
    if multiplexed {
        // Several logical connections, each authenticated by its own `open` (`http::mux`).
        return ws.accept(
            Some(wire::WS_MUX_SUBPROTOCOL),
            config,
            move |socket| async move {
                super::mux::connection(socket, state, client).await;
                drop(permit);
            },
        );
    }
    let protocol = speaks_v1.then_some(wire::WS_SUBPROTOCOL);
    ws.accept(protocol, config, move |socket| {
        connection(socket, state, token, permit)
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
/// WebSocket-level pings and pongs; `None` when the socket closes first, `Err` when reading
/// failed.
async fn first_frame(
    socket: &mut WebSocket,
) -> Result<Option<String>, tokio_tungstenite::tungstenite::Error> {
    while let Some(message) = socket.next().await {
        match message? {
            Message::Text(text) => return Ok(Some(text.as_str().to_owned())),
            Message::Binary(_) => return Ok(Some(String::new())),
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            Message::Close(_) => return Ok(None),
        }
    }
    Ok(None)
}

/// One WebSocket connection, which holds `permit` (its connection slot) until it ends.
///
/// A function returning an async block rather than an async fn: an async fn keeps a second
/// copy of its arguments for as long as it runs, and every connection holds this future.
#[expect(
    clippy::manual_async_fn,
    reason = "an async fn would hold its arguments twice"
)]
fn connection(
    mut socket: WebSocket,
    state: AppState,
    header_token: Option<String>,
    permit: ConnectionPermit,
) -> impl Future<Output = ()> + Send {
    async move {
        // The identity is found first, by a boxed future of its own: what authentication
        // holds (the first frame's wait, a refusal's goodbye) is then not part of the state
        // every connection keeps.
        if let Some(identity) = Box::pin(authenticate(&mut socket, &state, header_token)).await {
            match acquire_user_permit(&state, &identity.user) {
                Ok(user_permit) => {
                    run(socket, state, identity).await;
                    drop(user_permit);
                }
                Err(message) => {
                    let code = close_code::TRY_AGAIN_LATER;
                    let reason = ErrorCode::TooManyConnections;
                    Box::pin(goodbye(&mut socket, code, reason, &message)).await;
                }
            }
        }
        drop(permit);
    }
}

/// Who the client is: the token of the `Sec-WebSocket-Protocol` header, or else of a first
/// `hello` frame. `None` when the client closed first, or was refused (told why and closed).
async fn authenticate(
    socket: &mut WebSocket,
    state: &AppState,
    header_token: Option<String>,
) -> Option<Arc<Identity>> {
    let identity = match header_token {
        Some(token) => state.auth.verify(&token),
        None => match tokio::time::timeout(state.limits.heartbeat, first_frame(socket)).await {
            Ok(Ok(Some(text))) => hello_identity(state, &text),
            Ok(Ok(None)) => return None, // Closed before saying anything.
            Ok(Err(err)) => {
                // Told and closed, as after authentication.
                if let Some((code, reason, message)) =
                    read_refusal(err, state.limits.max_frame_bytes)
                {
                    goodbye(socket, code, reason, &message).await;
                }
                return None;
            }
            Err(_) => Err(AuthError::Missing),
        },
    };
    match identity {
        Ok(identity) => Some(Arc::new(identity)),
        Err(err) => {
            let message = err.to_string();
            goodbye(socket, close_code::UNAUTHENTICATED, err.code(), &message).await;
            None
        }
    }
}

/// A connection permit for `client` under the total and per-address limits; a refusal is
/// counted in the metrics by which limit it hit.
pub(super) fn acquire_permit(
    state: &AppState,
    client: std::net::IpAddr,
) -> Result<ConnectionPermit, LimitHit> {
    state.connections.acquire(client).inspect_err(|hit| {
        EdgeCounters::bump(match hit {
            LimitHit::Total(_) => &state.counters.rejected_total_limit,
            LimitHit::PerIp(_) => &state.counters.rejected_per_ip_limit,
        });
    })
}

/// A slot for one more connection of `user`; a refusal (its sentence) is counted in the
/// metrics.
pub(super) fn acquire_user_permit(state: &AppState, user: &str) -> Result<UserPermit, String> {
    state
        .users
        .acquire(user)
        .inspect_err(|_| EdgeCounters::bump(&state.counters.rejected_per_user_limit))
}

/// What the hub gives a connection's task: its frames, and a request to close with a code.
pub(super) type HubLink = (FrameReceiver, oneshot::Receiver<(u16, ErrorCode)>);

/// Hands connection `conn` to the hub (`HubMsg::Connect`) with a bounded queue of its own.
/// `None`: the hub takes no more connections (the server shuts down; see [`draining`]).
pub(super) async fn connect_to_hub(
    state: &AppState,
    conn: ConnId,
    identity: Arc<Identity>,
) -> Option<HubLink> {
    let (frames_tx, frames) = FrameQueue::bounded(
        state.limits.outbound_queue,
        state.limits.outbound_queue_bytes,
    );
    let (close_tx, close_rx) = oneshot::channel();
    let sender = SocketSender {
        frames: frames_tx,
        close: close_tx,
    };
    let connect = HubMsg::Connect {
        conn,
        identity,
        sender,
    };
    state.hub.send(connect).await.then_some((frames, close_rx))
}

/// The sentence of the `error` before the hub closes a connection: a slow consumer, or a peer
/// silent for two heartbeats.
pub(super) fn hub_close_message(reason: ErrorCode) -> &'static str {
    match reason {
        ErrorCode::SlowConsumer => "you fell behind and were disconnected; reconnect and resume",
        _ => "no frame arrived within two heartbeat intervals",
    }
}

/// The `draining` frame: the server shuts down; reconnect after its delay.
pub(super) fn draining(state: &AppState) -> ServerFrame {
    ServerFrame::Draining(wire::Draining {
        retry_after_ms: state.limits.drain_retry.as_millis() as u64,
    })
}

async fn run(mut socket: WebSocket, state: AppState, identity: Arc<Identity>) {
    // A peer that takes no frame and sends none for two heartbeats is gone.
    let write_timeout = state.limits.heartbeat * 2;
    let conn = state.hub.next_conn_id();
    // A socket must not outlive its token: at expiry the client is told and closed (4001), and
    // reconnects with a fresh one. Polling needs no timer: every request is checked.
    // An `auth` frame may renew the token in place: the timer then follows the new one's expiry.
    let mut token = TokenHolder {
        user: identity.user.clone(),
        expires_at_ms: identity.expires_at_ms,
    };
    let mut deadlines = Deadlines {
        expiry: identity.expires_at_ms.map(instant_of_unix_ms),
        stall: None,
        armed: None,
    };
    let Some((mut frames, mut close_rx)) = Box::pin(connect_to_hub(&state, conn, identity)).await
    else {
        return Box::pin(refuse_draining(&mut socket, &state)).await;
    };
    let mut output = Output::default();
    // One timer for both deadlines (see `Deadlines`); it fires at the earliest.
    let timer = tokio::time::sleep(write_timeout);
    tokio::pin!(timer);
    // Every connection holds this loop's state for its whole life, sized by the largest
    // future awaited in it; so the futures of the frame handler, of the closing paths and of
    // the hub sends (912 bytes each in a test build: a bounded channel's send holds the
    // 248-byte message and its wait) are boxed (heap-allocated while they run), not inline.
    loop {
        // While output waits for the peer: neither a frame taken nor one sent for
        // `write_timeout` means it is gone (a peer that sends but never reads falls behind in
        // its queue instead: slow consumer).
        match (output.busy(), deadlines.stall) {
            (true, None) => deadlines.stall = Some(in_from_now(write_timeout)),
            (false, Some(_)) => deadlines.stall = None,
            _ => {}
        }
        let timed = deadlines.arm(timer.as_mut());
        tokio::select! {
            biased;
            closing = &mut close_rx => {
                Box::pin(hub_closes(&mut socket, &mut output, &mut frames, closing)).await;
                break;
            }
            () = &mut timer, if timed => {
                if deadlines.token_expired() {
                    let message = "the token has expired; reconnect with a fresh one";
                    Box::pin(goodbye(&mut socket, close_code::UNAUTHENTICATED, ErrorCode::TokenExpired, message)).await;
                }
                // Otherwise the write stall: the peer is gone.
                break;
            }
            io = std::future::poll_fn(|cx| output.poll(cx, &mut socket, &mut frames)) => match io {
                Io::Wrote => deadlines.progress(write_timeout),
                Io::Failed => break,
                Io::QueueEnded => {
                    // The hub drops a connection's queue together with sending its close (or
                    // in place of one, if it stops): the close is already here, though the
                    // queue's end can be seen first when the two land during one poll of this
                    // loop, on another thread. Ending here without it would drop the socket
                    // with no close frame, and often with a reset that destroys the last acks.
                    let closing = (&mut close_rx).await;
                    Box::pin(hub_closes(&mut socket, &mut output, &mut frames, closing)).await;
                    break;
                }
                Io::Read(incoming) => {
                    // Inbound traffic proves the peer alive too: a slow link that takes its
                    // frames slower than the kernel wakes writers still pings.
                    deadlines.progress(write_timeout);
                    match incoming {
                        Some(Ok(Message::Text(text))) => {
                            let expires_at_ms = token.expires_at_ms;
                            if let Some(reply) = Box::pin(read_frame(&state, conn, &mut token, &text)).await {
                                output.reply(Outgoing::new(encode(&reply)));
                            }
                            if token.expires_at_ms != expires_at_ms {
                                deadlines.expiry = token.expires_at_ms.map(instant_of_unix_ms);
                            }
                        }
                        Some(Ok(Message::Binary(_))) => {
                            Box::pin(state.hub.send(HubMsg::Activity { conn })).await;
                            let frame = ServerFrame::error(ErrorCode::BadFrame, "binary frames are not supported; send JSON text frames", None);
                            output.reply(Outgoing::new(encode(&frame)));
                        }
                        Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {
                            Box::pin(state.hub.send(HubMsg::Activity { conn })).await;
                        }
                        Some(Err(err)) => {
                            if let Some((code, reason, message)) = read_refusal(err, state.limits.max_frame_bytes) {
                                Box::pin(goodbye(&mut socket, code, reason, &message)).await;
                            }
                            break;
                        }
                        Some(Ok(Message::Close(_))) | None => break,
                    }
                }
            },
        }
    }
    Box::pin(state.hub.send(HubMsg::Disconnect { conn })).await;
}

/// A connection's two deadlines on one timer (a tokio timer is 112 bytes of every connection's
/// state): its token's expiry, at which the client is told and closed; and while output waits
/// for the peer, the write stall, at which the peer is gone.
struct Deadlines {
    expiry: Option<tokio::time::Instant>,
    stall: Option<tokio::time::Instant>,
    /// Where the timer points, if anywhere.
    armed: Option<tokio::time::Instant>,
}

impl Deadlines {
    /// Points `timer` at the earliest deadline if that moved; whether there is one.
    fn arm(&mut self, timer: std::pin::Pin<&mut tokio::time::Sleep>) -> bool {
        let due = match (self.expiry, self.stall) {
            (Some(expiry), Some(stall)) => Some(expiry.min(stall)),
            (expiry, stall) => expiry.or(stall),
        };
        if due != self.armed
            && let Some(due) = due
        {
            timer.reset(due);
        }
        self.armed = due;
        due.is_some()
    }

    /// The peer took or sent something: a write stall starts over.
    fn progress(&mut self, write_timeout: Duration) {
        if self.stall.is_some() {
            self.stall = Some(in_from_now(write_timeout));
        }
    }

    /// Whether the timer fired for the token (else for the write stall).
    fn token_expired(&self) -> bool {
        self.expiry
            .is_some_and(|expiry| expiry <= in_from_now(Duration::ZERO))
    }
}

/// Tells a client the hub did not take that the server shuts down (`draining`), then closes
/// (1012).
async fn refuse_draining(socket: &mut WebSocket, state: &AppState) {
    let _ = send_payload(socket, encode(&draining(state)), Duration::from_secs(1)).await;
    close(socket, close_code::SERVICE_RESTART, ErrorCode::Draining).await;
}

/// Carries out the hub's close (or its silent end): a slow consumer or a silent peer is told
/// why and closed; a draining server's connection (or one whose hub stopped without a word,
/// which only a shutdown does) first gets what is queued for it (acks, `draining`), then 1012.
pub(super) async fn hub_closes(
    socket: &mut WebSocket,
    output: &mut Output,
    frames: &mut FrameReceiver,
    closing: Result<(u16, ErrorCode), oneshot::error::RecvError>,
) {
    match closing {
        Ok((code, reason)) if code != close_code::SERVICE_RESTART => {
            goodbye(socket, code, reason, hub_close_message(reason)).await;
        }
        _ => {
            for message in output.take() {
                if !send(socket, message.into_message(), Duration::from_secs(1)).await {
                    break;
                }
            }
            while let Some(payload) = frames.try_recv() {
                if !send_payload(socket, payload, Duration::from_secs(1)).await {
                    break;
                }
            }
            close(socket, close_code::SERVICE_RESTART, ErrorCode::Draining).await;
        }
    }
}

/// Whose token a WebSocket holds and when it expires (an `auth` frame may replace it).
pub(super) struct TokenHolder {
    pub(super) user: String,
    pub(super) expires_at_ms: Option<u64>,
}

/// Verifies the token of an `auth` frame with the rules of the connect: a valid token of the
/// same user replaces the connection's (the hub applies its grants and answers `authed`);
/// anything else is refused with an `error` and the connection keeps its current token.
async fn renew_token(
    state: &AppState,
    conn: ConnId,
    holder: &mut TokenHolder,
    token: &str,
) -> Option<ServerFrame> {
    let identity = match state.auth.verify(token) {
        Ok(identity) => identity,
        Err(err) => {
            let message = format!(
                "the new token was refused ({err}); the connection keeps its current token"
            );
            return Some(ServerFrame::error(err.code(), message, None));
        }
    };
    if identity.user != holder.user {
        let message = format!(
            "the new token is for user {}, but this connection is {}'s; open a new connection for another user",
            identity.user, holder.user
        );
        return Some(ServerFrame::error(ErrorCode::Forbidden, message, None));
    }
    let expires_at_ms = identity.expires_at_ms;
    let identity = Arc::new(identity);
    if !state.hub.send(HubMsg::Auth { conn, identity }).await {
        return None; // Shutting down: the close follows.
    }
    holder.expires_at_ms = expires_at_ms;
    None
}

/// Takes one text message from the peer: decodes it and passes it to the hub (an `auth`
/// frame's token is verified here first); returns the answer the connection gives itself (an
/// `error` for a frame it refuses, or a `nack` for a publish the hub no longer takes because
/// the server is shutting down).
pub(super) async fn read_frame(
    state: &AppState,
    conn: ConnId,
    token: &mut TokenHolder,
    text: &str,
) -> Option<ServerFrame> {
    EdgeCounters::bump(&state.counters.frames_received);
    let max = state.limits.max_frame_bytes;
    let answer = if text.len() > max {
        ServerFrame::error(
            ErrorCode::FrameTooLarge,
            format!("the frame is {} bytes; the limit is {max}", text.len()),
            None,
        )
    } else {
        match ClientFrame::decode(text) {
            Ok(ClientFrame::Auth(auth)) => {
                state.hub.send(HubMsg::Activity { conn }).await;
                let answer = renew_token(state, conn, token, &auth.token).await?;
                EdgeCounters::bump(&state.counters.frames_refused);
                return Some(answer);
            }
            Ok(frame) => {
                let publish = match &frame {
                    ClientFrame::Publish(publish) => {
                        Some((publish.room.clone(), publish.id.clone()))
                    }
                    _ => None,
                };
                if state.hub.send(HubMsg::Frame { conn, frame }).await {
                    return None;
                }
                // The hub has stopped taking frames (the last step of a drain): a publish is
                // answered as the draining hub would; the close follows.
                let (room, id) = publish?;
                return Some(ServerFrame::Nack(wire::Nack {
                    room: Some(room),
                    id,
                    code: ErrorCode::Draining,
                    message: draining_message(state.limits.drain_retry),
                    head: None,
                    retry_after_ms: Some(state.limits.drain_retry.as_millis() as u64),
                }));
            }
            // A publish whose id reads gets a `nack` for it, anything else an `error`.
            Err(err) => err.answer(),
        }
    };
    EdgeCounters::bump(&state.counters.frames_refused);
    // A refused frame is still traffic: the peer is alive.
    state.hub.send(HubMsg::Activity { conn }).await;
    Some(answer)
}

/// Why reading a socket failed, when the peer broke a rule it is told of before the close:
/// a message over the hard cap (see [`hard_cap`]: 1009 `frame_too_large`), a text message
/// that is not UTF-8 (1007 `bad_frame`) or frames against the WebSocket protocol, such as an
/// unmasked one (1002 `bad_frame`). `None` for the rest (the connection is gone).
pub(super) fn read_refusal(
    err: tokio_tungstenite::tungstenite::Error,
    max_frame_bytes: usize,
) -> Option<(u16, ErrorCode, String)> {
    use tokio_tungstenite::tungstenite::error::{CapacityError, Error, ProtocolError};
    match err {
        Error::Capacity(CapacityError::MessageTooLong { size, .. }) => {
            let cap = hard_cap(max_frame_bytes);
            let message = format!(
                "the message is at least {size} bytes; messages over {cap} bytes close the connection"
            );
            Some((
                close_code::MESSAGE_TOO_BIG,
                ErrorCode::FrameTooLarge,
                message,
            ))
        }
        Error::Utf8(_) => Some((
            close_code::INVALID_PAYLOAD,
            ErrorCode::BadFrame,
            "a text message was not valid UTF-8".to_owned(),
        )),
        // Framing the peer got wrong; not the ends of a connection (a reset, a frame after
        // the close), after which nothing can be told.
        Error::Protocol(
            violation @ (ProtocolError::UnmaskedFrameFromClient
            | ProtocolError::NonZeroReservedBits
            | ProtocolError::FragmentedControlFrame
            | ProtocolError::ControlFrameTooBig
            | ProtocolError::UnknownControlFrameType(_)
            | ProtocolError::UnknownDataFrameType(_)
            | ProtocolError::UnexpectedContinueFrame
            | ProtocolError::ExpectedFragment(_)
            | ProtocolError::InvalidOpcode(_)
            | ProtocolError::InvalidCloseSequence),
        ) => Some((
            close_code::PROTOCOL_ERROR,
            ErrorCode::BadFrame,
            format!("the WebSocket protocol was broken: {violation}"),
        )),
        _ => None,
    }
}

/// Sends a hub payload as one text message; `false` if the socket failed or the peer did not
/// take it in time.
pub(super) async fn send_payload(
    socket: &mut WebSocket,
    payload: Payload,
    timeout: Duration,
) -> bool {
    send(socket, Outgoing::new(payload).into_message(), timeout).await
}

/// Sends one message; `false` if the socket failed or the peer did not take it in time.
pub(super) async fn send(socket: &mut WebSocket, message: Message, timeout: Duration) -> bool {
    matches!(
        tokio::time::timeout(timeout, socket.send(message)).await,
        Ok(Ok(()))
    )
}

/// Tells the client why with an `error` frame, then closes with `code`.
pub(super) async fn goodbye(socket: &mut WebSocket, code: u16, reason: ErrorCode, message: &str) {
    let frame = ServerFrame::error(reason, message, None);
    let _ = send_payload(socket, encode(&frame), Duration::from_secs(1)).await;
    close(socket, code, reason).await;
}

/// Sends the close frame, then reads (and drops) what the peer still sends until its own
/// close frame, for at most [`CLOSE_LINGER`]. Dropping a socket with unread input makes the
/// kernel answer with a reset, and a reset can destroy what the peer has not read yet: the
/// last acks, `draining`, the close frame itself.
///
/// Not after a message over the hard cap: the rest of that message would be buffered whole
/// while reading on, so the socket is dropped at once (the peer may then miss the close).
pub(super) async fn close(socket: &mut WebSocket, code: u16, reason: ErrorCode) {
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: reason.as_str().into(),
    };
    if !send(socket, Message::Close(Some(frame)), Duration::from_secs(1)).await
        || code == close_code::MESSAGE_TOO_BIG
    {
        return;
    }
    let linger = async {
        while let Some(Ok(message)) = socket.next().await {
            if let Message::Close(_) = message {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(CLOSE_LINGER, linger).await;
}

/// The tokio instant `after` from now.
#[allow(clippy::disallowed_methods)] // The connection task is a driver: it may read the clock.
pub(super) fn in_from_now(after: Duration) -> tokio::time::Instant {
    tokio::time::Instant::now() + after
}

/// The tokio instant of a wall-clock time (ms since the Unix epoch).
#[allow(clippy::disallowed_methods)] // The connection task is a driver: it may read the clock.
pub(super) fn instant_of_unix_ms(unix_ms: u64) -> tokio::time::Instant {
    tokio::time::Instant::now()
        + Duration::from_millis(unix_ms.saturating_sub(crate::clock::unix_ms_now()))
}
