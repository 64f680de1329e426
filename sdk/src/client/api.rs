//! The client's public types: its settings ([`ClientConfig`], [`TransportMode`]), what it asks
//! a driver to do ([`Output`], [`HttpCall`]), what a driver reports back ([`HttpResult`],
//! [`Restored`]), and what it tells the app ([`ClientEvent`], [`ConnectionState`] and its
//! [`Badge`], [`PublishError`]).
//!
//! Plain data and small pure functions on it (a state's badge, an HTTP call's method, path and
//! body, reading its answer). It holds no client state and must never decide anything about
//! the connection, perform I/O or read a clock: the state machine is [`Client`].

use std::time::Duration;

use super::backoff::BackoffConfig;
use super::outbox::{OutboxConfig, OutboxError};
use super::presence::TypingConfig;
use crate::text::{Message, concat, message_display};
use crate::time::Instant;
use crate::wire::{
    self, ClientFrame, Cursor, ErrorCode, Event, EventId, Json, PresenceUser, ResetReason,
    RoomName, ServerFrame,
};

// Named only in doc links (rustc reports an import used only there as unused).
#[cfg(doc)]
use super::Client;
#[cfg(doc)]
use crate::wire::StoredOutbox;

/// Storage key of the outbox ([`StoredOutbox`]).
pub const OUTBOX_KEY: &str = "chorus.outbox";
/// Storage key of the remembered transport (`polling-until:<unix ms>`, or empty).
pub const TRANSPORT_KEY: &str = "chorus.transport";

/// Which transports the client may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportMode {
    /// WebSocket, falling back to polling when it does not work (the default).
    Auto,
    /// WebSocket only.
    WebSocket,
    /// Polling only (for networks known to block WebSocket).
    Polling,
}

/// A transport in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// A WebSocket.
    WebSocket,
    /// HTTP long polling.
    Polling,
}

impl Transport {
    /// Its name as the JS API and the CLI say it: `websocket` or `polling`.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::WebSocket => "websocket",
            Transport::Polling => "polling",
        }
    }
}

/// Why the client gave up for good.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FailReason {
    /// The server refused the token, and a refreshed one too.
    AuthRefused(String),
}

/// The connection state, as a UI shows it.
#[derive(Clone, Debug, PartialEq)]
pub enum ConnectionState {
    /// Trying to connect.
    Connecting {
        /// Over which transport.
        transport: Transport,
    },
    /// Connected and in sync.
    Connected {
        /// Over which transport.
        transport: Transport,
    },
    /// Lost the connection; trying again.
    Reconnecting {
        /// Consecutive attempts so far.
        attempt: u32,
        /// When the next attempt starts.
        next_attempt: Instant,
    },
    /// The platform says there is no network; waiting for it.
    Offline,
    /// Gave up (see the reason); the app must act.
    Failed {
        /// Why.
        reason: FailReason,
    },
    /// Closed by the app.
    Closed,
}

/// The three states a connection badge shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Badge {
    /// Connected over WebSocket: changes arrive as they happen.
    Live,
    /// Connected over polling, or connecting/reconnecting: changes arrive, maybe late.
    Syncing,
    /// Not connected and not about to be (no network, failed, closed).
    Offline,
}

impl ConnectionState {
    /// The badge for this state: `Live` only over a connected WebSocket; `Syncing` while
    /// polling, connecting or reconnecting; `Offline` when offline, failed or closed.
    pub fn badge(&self) -> Badge {
        match self {
            ConnectionState::Connected {
                transport: Transport::WebSocket,
            } => Badge::Live,
            ConnectionState::Connected {
                transport: Transport::Polling,
            }
            | ConnectionState::Connecting { .. }
            | ConnectionState::Reconnecting { .. } => Badge::Syncing,
            ConnectionState::Offline | ConnectionState::Failed { .. } | ConnectionState::Closed => {
                Badge::Offline
            }
        }
    }
}

/// Client settings. The defaults are documented on each field.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientConfig {
    /// Transports allowed (default `Auto`).
    pub transport: TransportMode,
    /// Reconnect backoff (500 ms base, 10 s cap, reset after 10 s healthy).
    pub backoff: BackoffConfig,
    /// Outbox bounds (1000 publishes, 1 MiB, 24 h).
    pub outbox: OutboxConfig,
    /// Typing timings (3 s throttle, 5 s idle, 8 s incoming expiry).
    pub typing: TypingConfig,
    /// A WebSocket must deliver `welcome` within this long, or `Auto` falls back to polling (4 s).
    pub socket_timeout: Duration,
    /// How long a fallback to polling is remembered (10 min).
    pub remember_fallback: Duration,
    /// While polling in `Auto` mode, try a WebSocket this often (30 s).
    pub probe_every: Duration,
    /// How long a long poll may be held by the server (25 s).
    pub poll_wait: Duration,
    /// An HTTP call taking longer than this (plus `poll_wait` for long polls) failed (10 s).
    pub http_timeout: Duration,
    /// Wait before re-sending a publish refused for a passing reason (1 s).
    pub retry_refused_after: Duration,
}

impl Default for ClientConfig {
    fn default() -> ClientConfig {
        ClientConfig {
            transport: TransportMode::Auto,
            backoff: BackoffConfig::default(),
            outbox: OutboxConfig::default(),
            typing: TypingConfig::default(),
            socket_timeout: Duration::from_secs(4),
            remember_fallback: Duration::from_secs(600),
            probe_every: Duration::from_secs(30),
            poll_wait: Duration::from_secs(25),
            http_timeout: Duration::from_secs(10),
            retry_refused_after: Duration::from_secs(1),
        }
    }
}

/// What the client wants a driver to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// Open a WebSocket to `/v1/ws`, offering subprotocols `chorus.v1` and `chorus.token.<token>`;
    /// report [`Client::handle_socket_open`], frames and [`Client::handle_socket_closed`] with `link`.
    OpenSocket {
        /// Identifies this socket in later calls.
        link: u64,
        /// The access token.
        token: String,
    },
    /// Send a frame on the socket `link`.
    Send {
        /// The socket.
        link: u64,
        /// The frame.
        frame: ClientFrame,
    },
    /// Close the socket `link` (no report needed).
    CloseSocket {
        /// The socket.
        link: u64,
    },
    /// Make an HTTP call with `Authorization: Bearer <token>`; report
    /// [`Client::handle_http_response`] with `request`.
    Http {
        /// Identifies this call.
        request: u64,
        /// The access token.
        token: String,
        /// What to call.
        call: HttpCall,
    },
    /// Save `value` under `key` in persistent storage (restore it into [`Restored`]).
    Save {
        /// The key.
        key: &'static str,
        /// The value.
        value: String,
    },
}

/// The HTTP calls the client makes.
#[derive(Clone, Debug, PartialEq)]
pub enum HttpCall {
    /// `POST /v1/poll` with this JSON body; the answer is [`wire::PollFrames`].
    PollSend(wire::PollSend),
    /// `GET /v1/poll?<query>`; the answer is [`wire::PollFrames`].
    Poll {
        /// The query string (without `?`), already URL-encoded.
        query: String,
    },
    /// `GET /v1/rooms/<room>/events?after=<after>&limit=1000`; the answer is
    /// [`wire::EventsPage`].
    History {
        /// The room.
        room: RoomName,
        /// Events after this seq.
        after: u64,
    },
}

impl HttpCall {
    /// The request's method.
    pub fn method(&self) -> &'static str {
        match self {
            HttpCall::PollSend(_) => "POST",
            HttpCall::Poll { .. } | HttpCall::History { .. } => "GET",
        }
    }

    /// The request's path and query, to append to the server's base URL.
    pub fn path(&self) -> String {
        match self {
            HttpCall::PollSend(_) => "/v1/poll".to_owned(),
            HttpCall::Poll { query } => concat(&["/v1/poll?", query]),
            HttpCall::History { room, after } => wire::events_path(room, *after, 1000),
        }
    }

    /// The request's JSON body, if it has one (send it with `content-type: application/json`).
    pub fn body(&self) -> Option<String> {
        match self {
            HttpCall::PollSend(send) => Some(wire::json::to_string(send)),
            HttpCall::Poll { .. } | HttpCall::History { .. } => None,
        }
    }

    /// Reads the server's answer to this call: its status and body text.
    pub fn read_response(&self, status: u16, body: &str) -> HttpResult {
        if !(200..300).contains(&status) {
            let code = wire::json::from_str::<wire::ErrorBody>(body)
                .map_or(ErrorCode::Internal, |body| body.code);
            return HttpResult::Refused { status, code };
        }
        let result = match self {
            HttpCall::History { .. } => wire::json::from_str(body).map(HttpResult::Page),
            HttpCall::PollSend(_) | HttpCall::Poll { .. } => {
                wire::json::from_str::<wire::PollFrames>(body)
                    .map(|page| HttpResult::Frames(page.frames))
            }
        };
        result.unwrap_or(HttpResult::Failed)
    }
}

/// The result of an HTTP call, as the driver saw it.
#[derive(Clone, Debug, PartialEq)]
pub enum HttpResult {
    /// A poll answer (2xx) with its frames.
    Frames(Vec<ServerFrame>),
    /// A history page (2xx).
    Page(wire::EventsPage),
    /// The server answered with an error status and body.
    Refused {
        /// HTTP status.
        status: u16,
        /// The error code from the body (`Internal` when there was none).
        code: ErrorCode,
    },
    /// No answer: network error, timeout, unreadable body.
    Failed,
}

/// What a driver restores from storage before starting.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Restored {
    /// The value saved under [`OUTBOX_KEY`].
    pub outbox: Option<String>,
    /// The value saved under [`TRANSPORT_KEY`].
    pub transport: Option<String>,
}

/// Things the app should know, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum ClientEvent {
    /// The connection state changed.
    State(ConnectionState),
    /// The server said who this client is: after each connect of a socket, and when a polling
    /// session opens (a polling client that resumes its session gets none).
    Welcome {
        /// The authenticated user id.
        user: String,
    },
    /// A room is joined (again) on the current connection.
    Joined {
        /// The room.
        room: RoomName,
        /// Live events follow after this position (a fresh join: the room's head, so fetch
        /// older history up to it if needed; a resume: the client's own cursor).
        cursor: Cursor,
    },
    /// An own publish, shown at once, before the server has it.
    Pending {
        /// The room.
        room: RoomName,
        /// Its id (the server's copy comes as an `Event` with `own: true` and the same id).
        id: EventId,
        /// The content.
        body: Json,
    },
    /// An event, exactly once, in order per room.
    Event {
        /// The event.
        event: Event,
        /// `true` when it is the server's copy of an own `Pending` publish: replace that one.
        own: bool,
    },
    /// A publish was stored under `seq` (the outbox no longer holds it).
    Acked {
        /// The room.
        room: RoomName,
        /// The publish's id.
        id: EventId,
        /// Its seq.
        seq: u64,
    },
    /// The locks held in a joined room changed (the whole set, by name).
    #[cfg(feature = "locks")]
    Locks {
        /// The room.
        room: RoomName,
        /// The locks held now: a list of grants as the server sent it (read it with
        /// `wire::LockInfo::list`).
        locks: crate::wire::Json,
    },
    /// A lock request of this client was answered (also its automatic renewals).
    #[cfg(feature = "locks")]
    LockDone {
        /// The room.
        room: RoomName,
        /// The request's id (as returned by `Client::lock` or `Client::unlock`).
        id: EventId,
        /// What became of the lock: `granted` or `renewed` (held), `released`.
        change: crate::wire::LockChange,
        /// The grant, with its fencing token.
        lock: crate::wire::LockInfo,
    },
    /// A lock request of this client was refused (`lock_held`, `lock_lost`, ...) or its
    /// connection ended before the answer came (`lock_lost`).
    #[cfg(feature = "locks")]
    LockFailed {
        /// The room.
        room: RoomName,
        /// The request's id.
        id: EventId,
        /// Why.
        code: ErrorCode,
        /// Why, for humans.
        message: String,
    },
    /// A publish was refused for good; its `Pending` copy should be withdrawn.
    PublishFailed {
        /// The room.
        room: RoomName,
        /// The publish's id.
        id: EventId,
        /// Why.
        code: ErrorCode,
        /// Why, for humans.
        message: String,
    },
    /// A publish stayed unacknowledged past the outbox time-to-live and was given up.
    Expired {
        /// The room.
        room: RoomName,
        /// The publish's id.
        id: EventId,
    },
    /// The number of publishes waiting in the outbox changed.
    Outbox {
        /// Waiting publishes.
        queued: usize,
    },
    /// A room's presence changed (the full list).
    Presence {
        /// The room.
        room: RoomName,
        /// Everyone present.
        users: Vec<PresenceUser>,
    },
    /// Who is typing in a room changed (never includes this user).
    Typing {
        /// The room.
        room: RoomName,
        /// Users typing now.
        users: Vec<String>,
    },
    /// The room's history could not be resumed: drop local state and refetch it.
    Reset {
        /// The room.
        room: RoomName,
        /// Why.
        reason: ResetReason,
        /// Live events follow after this position (the room's head in its current epoch).
        cursor: Cursor,
    },
    /// The server refused something (an `error` frame).
    Error {
        /// What.
        code: ErrorCode,
        /// What, for humans.
        message: String,
        /// The room, if it concerns one.
        room: Option<RoomName>,
    },
    /// The token was refused: call [`Client::handle_token`] with a fresh one.
    TokenNeeded,
    /// A notice from the application's backend (not a room event: never stored, so a client
    /// that was not connected when it was sent never sees it).
    Notice(crate::wire::Notice),
    /// The other members' live cursors in a room changed. Fold these into a
    /// [`LiveCursors`](super::live_cursors::LiveCursors) to keep them.
    Cursors {
        /// The room.
        room: RoomName,
        /// With `whole`, every other connection's cursor: a JSON list of
        /// [`LiveCursor`](crate::wire::LiveCursor) objects that replaces what you have;
        /// otherwise one `LiveCursor` object that changed (gone when its `value` is `null`).
        cursors: Json,
        /// Whether `cursors` is all of them (after a join, or a polling `state`).
        whole: bool,
    },
    /// A step of a stream in a joined room, as the server sent it (fold them with
    /// [`StreamView`](super::StreamView)).
    Stream(crate::wire::StreamFrame),
}

/// Why a publish was not accepted by the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublishError {
    /// The app has not joined the room.
    NotJoined(RoomName),
    /// The outbox is full.
    OutboxFull(OutboxError),
    /// The client is not connected (also after `close`), and what was asked is never queued:
    /// an ephemeral event, a stream step, a lock request.
    Offline,
    /// The client was closed.
    Closed,
}

impl From<OutboxError> for PublishError {
    fn from(err: OutboxError) -> PublishError {
        PublishError::OutboxFull(err)
    }
}

impl Message for PublishError {
    fn message(&self) -> String {
        match self {
            PublishError::NotJoined(room) => {
                concat(&["join room ", room.as_str(), " before publishing to it"])
            }
            PublishError::OutboxFull(err) => err.message(),
            PublishError::Offline => "ephemeral events are only sent while connected".to_owned(),
            PublishError::Closed => "the client is closed".to_owned(),
        }
    }
}

message_display!(PublishError);
