//! The Chorus `v1` wire protocol: every WebSocket frame, every HTTP body and the token claims.
//!
//! This module is the ONLY place in the workspace that knows the JSON shape of anything Chorus
//! sends or receives. Servers, clients, tests and tools encode and decode through the types here;
//! nobody else writes `serde_json::json!` for protocol traffic. `docs/PROTOCOL.md` is the
//! normative description of the same shapes and must change in the same commit as this module.
//!
//! It must never perform I/O or depend on a runtime: it is compiled into the browser SDK too.
//!
//! Design notes:
//! - Frames are JSON objects tagged by `"type"`. Unknown fields are ignored (forward compatible);
//!   an unknown `"type"` decodes to [`WireError::UnknownType`] so the peer can answer with an
//!   `error` frame instead of dropping the connection.
//! - Names that the server trusts ([`RoomName`], [`EventId`]) are validated while decoding, so
//!   code past the edge never sees an invalid one.
//! - Event bodies and presence metas are opaque JSON kept as raw text ([`Json`]): the server
//!   stores and forwards them without re-parsing.
//! - Every type's JSON shape is written by hand against the small codec in [`json`], all of it
//!   in `shapes.rs`: no serde code is generated per type, which keeps the browser SDK small.
//!   With the `serde` feature, each type also implements `Serialize`/`Deserialize` by going
//!   through that same codec (for axum, jsonwebtoken and tests); there is one codec.

use std::collections::BTreeMap;
use std::fmt;

use crate::text::{Message, decimal, message_display};

pub mod json;
mod shapes;

use json::JsonError;
use shapes::{frame_enum, wire_enum};

/// The protocol version spoken by this module; it is also the URL prefix (`/v1/...`).
pub const PROTOCOL_VERSION: &str = "v1";

/// The WebSocket subprotocol a client offers (and the server selects) for protocol `v1`.
pub const WS_SUBPROTOCOL: &str = "chorus.v1";

/// Prefix of the optional second subprotocol that carries the token in the upgrade request,
/// for clients that prefer not to send a `hello` frame: `chorus.token.<jwt>`.
pub const WS_TOKEN_PREFIX: &str = "chorus.token.";

/// The longest room name, in bytes.
pub const MAX_ROOM_NAME_BYTES: usize = 128;

/// The longest client-generated event id, in bytes.
pub const MAX_EVENT_ID_BYTES: usize = 64;

/// The longest user id (the token's `sub`), in bytes.
pub const MAX_USER_ID_BYTES: usize = 128;

/// Epochs and sequence numbers stay below 2^53 so JavaScript numbers represent them exactly.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

// ---------------------------------------------------------------------------------------------
// Validated names
// ---------------------------------------------------------------------------------------------

/// A room name: 1 to 128 bytes of ASCII letters, digits and `. _ - : / @`.
///
/// Validated when decoded, so every `RoomName` in the program is a valid one.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomName(String);

impl RoomName {
    /// Checks `name` and wraps it, or says what is wrong with it.
    pub fn parse(name: impl Into<String>) -> Result<RoomName, NameError> {
        let name = name.into();
        check_name(&name, "room name", MAX_ROOM_NAME_BYTES, |c| {
            c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-' | b':' | b'/' | b'@')
        })?;
        Ok(RoomName(name))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A client-generated event id (the idempotency key of a publish): 1 to 64 bytes of ASCII
/// letters, digits and `. _ - :`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId(String);

impl EventId {
    /// Checks `id` and wraps it, or says what is wrong with it.
    pub fn parse(id: impl Into<String>) -> Result<EventId, NameError> {
        let id = id.into();
        check_name(&id, "event id", MAX_EVENT_ID_BYTES, |c| {
            c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-' | b':')
        })?;
        Ok(EventId(id))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a room name, event id or user id was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameError {
    what: &'static str,
    shown: String,
    reason: String,
}

impl Message for NameError {
    fn message(&self) -> String {
        let NameError {
            what,
            shown,
            reason,
        } = self;
        ["invalid ", what, " \"", shown, "\": ", reason].concat()
    }
}

message_display!(NameError);

fn check_name(
    text: &str,
    what: &'static str,
    max: usize,
    allowed: fn(u8) -> bool,
) -> Result<(), NameError> {
    let fail = |reason: String| NameError {
        what,
        shown: shown(text),
        reason,
    };
    if text.is_empty() {
        return Err(fail("it must not be empty".into()));
    }
    if text.len() > max {
        return Err(fail(
            [
                "it is ",
                &decimal(text.len() as u64),
                " bytes long, the limit is ",
                &decimal(max as u64),
            ]
            .concat(),
        ));
    }
    if let Some(at) = text.bytes().position(|c| !allowed(c)) {
        // Each check allows or refuses all non-ASCII bytes alike, so `at` starts a character.
        let bad = text[at..].chars().next().unwrap_or('\u{FFFD}');
        return Err(fail(
            [
                "character '",
                &shown(bad.encode_utf8(&mut [0; 4])),
                "' is not allowed (letters, digits and . _ - : are; rooms also allow / @)",
            ]
            .concat(),
        ));
    }
    Ok(())
}

/// Untrusted text quoted in an error message: its first 40 characters, control characters
/// (newlines included) replaced by U+FFFD so a message stays one clean line in logs.
fn shown(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars().take(40) {
        out.push(if c.is_control() { '\u{FFFD}' } else { c });
    }
    out
}

macro_rules! name_impls {
    ($ty:ident) => {
        impl TryFrom<String> for $ty {
            type Error = NameError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                $ty::parse(value)
            }
        }
        impl From<$ty> for String {
            fn from(value: $ty) -> String {
                value.0
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }
        impl std::str::FromStr for $ty {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $ty::parse(s)
            }
        }
    };
}
name_impls!(RoomName);
name_impls!(EventId);

/// Checks a user id (a token's `sub`): 1 to 128 bytes, no control characters.
pub fn check_user_id(user: &str) -> Result<(), NameError> {
    check_name(user, "user id", MAX_USER_ID_BYTES, |c| {
        !c.is_ascii_control()
    })
}

// ---------------------------------------------------------------------------------------------
// Opaque JSON
// ---------------------------------------------------------------------------------------------

/// An opaque JSON value (event body, presence meta) kept as its raw text.
///
/// The server never looks inside; it stores and forwards the exact text it was given (without
/// surrounding whitespace).
#[derive(Clone)]
pub struct Json(Box<str>);

impl Json {
    /// Parses `text` as one JSON value (any type).
    pub fn from_text(text: impl Into<String>) -> Result<Json, JsonError> {
        let text = text.into();
        let raw = json::parse(&text)?.raw;
        Ok(if raw.len() == text.len() {
            Json(text.into_boxed_str())
        } else {
            Json(raw.into())
        })
    }

    /// Serializes any value into opaque JSON.
    #[cfg(feature = "serde")]
    pub fn from_value<T: serde::Serialize + ?Sized>(value: &T) -> Json {
        Json(
            serde_json::to_string(value)
                .expect("a Serialize value always encodes")
                .into_boxed_str(),
        )
    }

    /// JSON `null`.
    pub fn null() -> Json {
        Json("null".into())
    }

    /// The raw JSON text.
    pub fn as_text(&self) -> &str {
        &self.0
    }

    /// The size of the raw JSON text in bytes (what limits are measured on).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Never true: a JSON value has at least one byte. Present for API symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Decodes the value into a concrete type.
    #[cfg(feature = "serde")]
    pub fn decode<'a, T: serde::Deserialize<'a>>(&'a self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.0)
    }
}

impl PartialEq for Json {
    fn eq(&self, other: &Json) -> bool {
        self.as_text() == other.as_text()
    }
}

impl fmt::Debug for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_text())
    }
}

// ---------------------------------------------------------------------------------------------
// Shared pieces
// ---------------------------------------------------------------------------------------------

/// A position in a room's history: the last event a client has, under the history's epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    /// Identifies one lineage of the room's history; a different epoch means the old seqs are void.
    pub epoch: u64,
    /// The last sequence number the client has seen (0 = none).
    pub seq: u64,
}

/// One connection of a user in a room's presence.
#[derive(Clone, Debug, PartialEq)]
pub struct PresenceConn {
    /// The connection id (as in `welcome`).
    pub conn: String,
    /// Free-form JSON the connection announced (name, color, status, ...).
    pub meta: Json,
    /// When this connection joined the room, in milliseconds since the Unix epoch.
    pub since: u64,
}

/// One user in a room's presence, aggregating all of that user's connections (tabs, devices).
#[derive(Clone, Debug, PartialEq)]
pub struct PresenceUser {
    /// The user id (the token's `sub`).
    pub user: String,
    /// The display name from the token, if it has one.
    pub name: Option<String>,
    /// The user's connections in this room, oldest first.
    pub conns: Vec<PresenceConn>,
}

/// A full picture of a room's presence at `version`.
#[derive(Clone, Debug, PartialEq)]
pub struct PresenceSnapshot {
    /// Increases by one with every change to the room's presence.
    pub version: u64,
    /// Everyone present, ordered by user id.
    pub users: Vec<PresenceUser>,
}

wire_enum! {
    /// A stable, machine-readable error code. The `message` next to it is for humans.
    pub enum ErrorCode [Clone, Copy, Debug, PartialEq, Eq, Hash] {
        /// The frame is not valid JSON or does not have the fields its type needs.
        BadFrame => "bad_frame",
        /// The frame's `type` is not one this server knows.
        UnknownType => "unknown_type",
        /// The frame is larger than the server's frame limit.
        FrameTooLarge => "frame_too_large",
        /// No valid token was presented before other frames, or the token is malformed or forged.
        Unauthenticated => "unauthenticated",
        /// The token has expired.
        TokenExpired => "token_expired",
        /// The token does not grant this right on this room.
        Forbidden => "forbidden",
        /// The connection has not joined the room it publishes or signals in.
        NotJoined => "not_joined",
        /// The connection has joined as many rooms as it may.
        TooManyRooms => "too_many_rooms",
        /// The presence meta is larger than the server allows.
        MetaTooLarge => "meta_too_large",
        /// `if_seq` did not match the room's head: someone published first.
        Conflict => "conflict",
        /// The event could not be stored; it was not delivered and may be retried with the same id.
        StorageUnavailable => "storage_unavailable",
        /// The connection fell behind its outbound queue and was closed; resume to catch up.
        SlowConsumer => "slow_consumer",
        /// No frame arrived within two heartbeat intervals; the connection was closed.
        IdleTimeout => "idle_timeout",
        /// The server is shutting down; reconnect after the hinted delay.
        Draining => "draining",
        /// The requested thing does not exist (HTTP).
        NotFound => "not_found",
        /// A query parameter or body is invalid (HTTP).
        BadRequest => "bad_request",
        /// Something unexpected failed on the server.
        Internal => "internal",
        /// Too many publishes too fast; slow down (the message says for how long).
        RateLimited => "rate_limited",
        /// The server (or this client address) has as many connections as it allows.
        TooManyConnections => "too_many_connections",
        /// This polling session already has as many held polls as it allows.
        TooManyPolls => "too_many_polls",
        /// The request's `Origin` is not on the server's allow-list.
        ForbiddenOrigin => "forbidden_origin",
        /// An HTTP body is larger than the server allows.
        BodyTooLarge => "body_too_large",
        /// The server can not serve requests right now (storage down, shutting down).
        NotReady => "not_ready",
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// WebSocket close codes the server uses (4000-4999 are application codes).
pub mod close_code {
    /// No valid `hello` arrived in time, or the token was refused.
    pub const UNAUTHENTICATED: u16 = 4001;
    /// The outbound queue overflowed; resume to catch up.
    pub const SLOW_CONSUMER: u16 = 4008;
    /// No frame within two heartbeat intervals.
    pub const IDLE_TIMEOUT: u16 = 4009;
    /// A message exceeded the hard size cap (RFC 6455 "message too big").
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    /// The server is restarting or shutting down (RFC 6455 "service restart").
    pub const SERVICE_RESTART: u16 = 1012;
}

wire_enum! {
    /// Why a room's history could not be resumed from the client's cursor.
    pub enum ResetReason [Clone, Copy, Debug, PartialEq, Eq] {
        /// The history was rebuilt (e.g. the store was wiped); old seqs mean nothing now.
        EpochChanged => "epoch_changed",
        /// The events after the cursor were trimmed by retention (count or age).
        HistoryTrimmed => "history_trimmed",
        /// The cursor is ahead of the room's head.
        CursorAhead => "cursor_ahead",
        /// The history could not be read; the client should refetch its state.
        HistoryUnavailable => "history_unavailable",
    }
}

// ---------------------------------------------------------------------------------------------
// Frame decoding
// ---------------------------------------------------------------------------------------------

/// Why a frame could not be decoded.
#[derive(Debug)]
pub enum WireError {
    /// The text is not JSON, or a field is missing or of the wrong type or value.
    Malformed(String),
    /// The frame's `type` is not known to this side.
    UnknownType(String),
}

impl Message for WireError {
    fn message(&self) -> String {
        match self {
            WireError::Malformed(why) => ["invalid frame: ", why].concat(),
            WireError::UnknownType(kind) => ["unknown frame type \"", kind, "\""].concat(),
        }
    }
}

message_display!(WireError);

impl WireError {
    /// The error code to answer with.
    pub fn code(&self) -> ErrorCode {
        match self {
            WireError::Malformed(_) => ErrorCode::BadFrame,
            WireError::UnknownType(_) => ErrorCode::UnknownType,
        }
    }
}

impl From<JsonError> for WireError {
    fn from(err: JsonError) -> WireError {
        WireError::Malformed(err.into_message())
    }
}

// ---------------------------------------------------------------------------------------------
// Client -> server frames
// ---------------------------------------------------------------------------------------------

frame_enum! {
    /// A frame sent by a client.
    pub enum ClientFrame {
        /// Authenticates the connection.
        "hello" => Hello(Hello),
        /// Joins a room.
        "join" => Join(Join),
        /// Leaves a room.
        "leave" => Leave(Leave),
        /// Publishes an event.
        "publish" => Publish(Publish),
        /// Says whether the user is typing.
        "typing" => Typing(Typing),
        /// Replaces this connection's presence meta.
        "presence" => SetPresence(SetPresence),
        /// Keeps the connection alive.
        "ping" => Ping(Ping),
    }
}

/// `hello`: authenticates the connection; must be the first frame unless the token came in the
/// `Sec-WebSocket-Protocol` header.
#[derive(Clone, Debug, PartialEq)]
pub struct Hello {
    /// A JWT issued by the application's backend.
    pub token: String,
}

/// `join`: joins a room (or refreshes the meta of a room already joined).
#[derive(Clone, Debug, PartialEq)]
pub struct Join {
    /// The room to join.
    pub room: RoomName,
    /// This connection's presence meta (free-form JSON; `null` when absent).
    pub meta: Json,
    /// The last event the client has; the server replays everything after it.
    pub resume: Option<Cursor>,
}

/// `leave`: leaves a room.
#[derive(Clone, Debug, PartialEq)]
pub struct Leave {
    /// The room to leave.
    pub room: RoomName,
}

/// `publish`: publishes an event to a joined room.
#[derive(Clone, Debug, PartialEq)]
pub struct Publish {
    /// The room to publish to.
    pub room: RoomName,
    /// Client-generated unique id; publishing the same id again is acknowledged, not repeated.
    pub id: EventId,
    /// The event's content (any JSON).
    pub body: Json,
    /// `false` for ephemeral events (cursors, progress): fanned out, never stored or sequenced.
    pub durable: bool,
    /// Only store the event if the room's head is still this seq (optimistic concurrency).
    pub if_seq: Option<u64>,
}

/// `typing`: says whether the user is typing in a room.
#[derive(Clone, Debug, PartialEq)]
pub struct Typing {
    /// The room.
    pub room: RoomName,
    /// `true` while typing; the server expires it after its TTL unless refreshed.
    pub on: bool,
}

/// `presence` (from a client): replaces this connection's presence meta in a room.
#[derive(Clone, Debug, PartialEq)]
pub struct SetPresence {
    /// The room.
    pub room: RoomName,
    /// The new meta.
    pub meta: Json,
}

/// `ping`: keeps the connection alive; answered with `pong`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ping {
    /// Echoed back in the `pong`.
    pub nonce: Option<u64>,
}

// ---------------------------------------------------------------------------------------------
// Server -> client frames
// ---------------------------------------------------------------------------------------------

frame_enum! {
    /// A frame sent by the server.
    pub enum ServerFrame {
        /// The connection is authenticated.
        "welcome" => Welcome(Welcome),
        /// The connection is a member of a room.
        "joined" => Joined(Joined),
        /// The connection left a room.
        "left" => Left(Left),
        /// An event published to a joined room.
        "event" => Event(Event),
        /// A publish was accepted.
        "ack" => Ack(Ack),
        /// A publish was refused.
        "nack" => Nack(Nack),
        /// A change to a room's presence.
        "presence" => Presence(PresenceDiff),
        /// A user started or stopped typing.
        "typing" => Typing(TypingNotice),
        /// The client's cursor can not be resumed.
        "reset" => Reset(Reset),
        /// A frame was refused or something went wrong.
        "error" => Error(ErrorFrame),
        /// The answer to `ping`.
        "pong" => Pong(Ping),
        /// The server is shutting down.
        "draining" => Draining(Draining),
        /// The full presence and/or typing state of a room (polling transport).
        "state" => State(RoomState),
    }
}

impl ServerFrame {
    /// An `error` frame.
    pub fn error(
        code: ErrorCode,
        message: impl Into<String>,
        room: Option<RoomName>,
    ) -> ServerFrame {
        ServerFrame::Error(ErrorFrame {
            code,
            message: message.into(),
            room,
        })
    }
}

/// `welcome`: the connection is authenticated.
#[derive(Clone, Debug, PartialEq)]
pub struct Welcome {
    /// This connection's id (as it appears in presence).
    pub conn: String,
    /// The authenticated user id.
    pub user: String,
    /// Send a frame (at least a `ping`) this often; silence for twice as long closes the connection.
    pub heartbeat_ms: u64,
    /// The protocol version, `"v1"`.
    pub protocol: String,
}

/// `joined`: the connection is a member of the room.
#[derive(Clone, Debug, PartialEq)]
pub struct Joined {
    /// The room.
    pub room: RoomName,
    /// The room history's epoch.
    pub epoch: u64,
    /// The seq of the newest stored event at the time of joining (0 = none yet).
    pub head: u64,
    /// Everyone present, including this connection.
    pub presence: PresenceSnapshot,
    /// Users typing right now.
    pub typing: Vec<String>,
}

/// `left`: the connection left the room.
#[derive(Clone, Debug, PartialEq)]
pub struct Left {
    /// The room.
    pub room: RoomName,
}

/// `event`: an event as delivered to clients (and as kept in history).
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// The room it was published to.
    pub room: RoomName,
    /// Its place in the room's history; absent for ephemeral events.
    pub seq: Option<u64>,
    /// The publisher's id for it (idempotency key).
    pub id: EventId,
    /// The authenticated user who published it (never taken from the client).
    pub from: String,
    /// When the server accepted it, in milliseconds since the Unix epoch.
    pub at: u64,
    /// The content, exactly as published.
    pub body: Json,
}

/// `ack`: a publish was accepted.
#[derive(Clone, Debug, PartialEq)]
pub struct Ack {
    /// The room.
    pub room: RoomName,
    /// The publish's id.
    pub id: EventId,
    /// The stored event's seq; absent for ephemeral publishes.
    pub seq: Option<u64>,
    /// `true` when this id had already been accepted: the seq is the original one.
    pub duplicate: bool,
}

/// `nack`: a publish was refused; nothing was stored or delivered.
#[derive(Clone, Debug, PartialEq)]
pub struct Nack {
    /// The room.
    pub room: RoomName,
    /// The publish's id.
    pub id: EventId,
    /// Why.
    pub code: ErrorCode,
    /// Why, for humans.
    pub message: String,
    /// The room's head, for `conflict`.
    pub head: Option<u64>,
}

/// `presence` (from the server): a change to a room's presence.
#[derive(Clone, Debug, PartialEq)]
pub struct PresenceDiff {
    /// The room.
    pub room: RoomName,
    /// The presence version after this change.
    pub version: u64,
    /// Users who arrived (full entries).
    pub joins: Vec<PresenceUser>,
    /// Users whose connections or metas changed (full entries that replace the old ones).
    pub updates: Vec<PresenceUser>,
    /// Users who left (after the grace period).
    pub leaves: Vec<String>,
}

/// `typing` (from the server): a user started or stopped typing.
#[derive(Clone, Debug, PartialEq)]
pub struct TypingNotice {
    /// The room.
    pub room: RoomName,
    /// Who.
    pub user: String,
    /// Whether they are typing now.
    pub on: bool,
}

/// `reset`: the client's cursor for this room can not be resumed: drop local state and refetch.
#[derive(Clone, Debug, PartialEq)]
pub struct Reset {
    /// The room.
    pub room: RoomName,
    /// Why.
    pub reason: ResetReason,
    /// The current epoch.
    pub epoch: u64,
    /// Continue from here: later events follow live.
    pub head: u64,
}

/// `error`: a frame was refused or something went wrong; the connection stays open unless closed.
#[derive(Clone, Debug, PartialEq)]
pub struct ErrorFrame {
    /// What went wrong.
    pub code: ErrorCode,
    /// What went wrong, for humans.
    pub message: String,
    /// The room it concerns, when it concerns one.
    pub room: Option<RoomName>,
}

/// `state`: the full presence and/or typing state of a room, sent by the polling transport
/// (which carries no diffs) whenever the versions the client has seen are out of date.
#[derive(Clone, Debug, PartialEq)]
pub struct RoomState {
    /// The room.
    pub room: RoomName,
    /// The whole presence, when it changed since the version the client has.
    pub presence: Option<PresenceSnapshot>,
    /// Who is typing, when that changed since the version the client has.
    pub typing: Option<TypingSnapshot>,
}

/// Who is typing in a room at `version`.
#[derive(Clone, Debug, PartialEq)]
pub struct TypingSnapshot {
    /// Increases with every change of who is typing.
    pub version: u64,
    /// Users typing now, ordered by user id.
    pub users: Vec<String>,
}

/// `draining`: the server is shutting down; reconnect (to any node) after the hinted delay.
#[derive(Clone, Debug, PartialEq)]
pub struct Draining {
    /// Wait this long before reconnecting.
    pub retry_after_ms: u64,
}

// ---------------------------------------------------------------------------------------------
// HTTP bodies
// ---------------------------------------------------------------------------------------------

/// The body of every HTTP error response.
#[derive(Clone, Debug, PartialEq)]
pub struct ErrorBody {
    /// What went wrong.
    pub code: ErrorCode,
    /// What went wrong, for humans.
    pub message: String,
}

/// `GET /v1/rooms/{room}/events?after=&limit=`: one page of a room's history.
#[derive(Clone, Debug, PartialEq)]
pub struct EventsPage {
    /// The room.
    pub room: RoomName,
    /// The history's epoch.
    pub epoch: u64,
    /// The room's head when the page was read.
    pub head: u64,
    /// The oldest seq still kept (head + 1 when nothing is kept).
    pub oldest: u64,
    /// Events with seq > `after`, oldest first, at most `limit`.
    pub events: Vec<Event>,
    /// Pass as `after` to read the next page; absent when this page reaches the head.
    pub next_after: Option<u64>,
}

/// `GET /v1/rooms/{room}/presence`.
#[derive(Clone, Debug, PartialEq)]
pub struct PresenceBody {
    /// The room.
    pub room: RoomName,
    /// The presence version (as in `joined` and `presence` frames).
    pub version: u64,
    /// Everyone present, ordered by user id.
    pub users: Vec<PresenceUser>,
}

/// `POST /v1/poll`: client frames sent over the polling transport.
#[derive(Clone, Debug, PartialEq)]
pub struct PollSend {
    /// The polling session (client-generated, 8-64 characters, one per tab).
    pub session: String,
    /// The frames, processed in order (`hello` is not needed: the token is in the header).
    pub frames: Vec<ClientFrame>,
}

/// The answer to `POST /v1/poll` and `GET /v1/poll`: server frames, oldest first.
#[derive(Clone, Debug, PartialEq)]
pub struct PollFrames {
    /// The frames.
    pub frames: Vec<ServerFrame>,
}

/// One room a long poll follows, as carried in `GET /v1/poll?r=...`:
/// `room~epoch~seq~presence_version~typing_version` (`~` never occurs in room names).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PollCursor {
    /// The room.
    pub room: RoomName,
    /// The client's history position (`None` when it has none yet).
    pub cursor: Option<Cursor>,
    /// The presence version the client has (0 = none).
    pub presence_version: u64,
    /// The typing version the client has (0 = none).
    pub typing_version: u64,
}

impl PollCursor {
    /// Encodes the `r` query value.
    pub fn encode(&self) -> String {
        let epoch = self.cursor.map(|c| decimal(c.epoch));
        let seq = self.cursor.map(|c| decimal(c.seq));
        fn or_empty(n: &Option<String>) -> &str {
            n.as_deref().unwrap_or("")
        }
        [
            self.room.as_str(),
            "~",
            or_empty(&epoch),
            "~",
            or_empty(&seq),
            "~",
            &decimal(self.presence_version),
            "~",
            &decimal(self.typing_version),
        ]
        .concat()
    }

    /// Decodes an `r` query value.
    pub fn decode(text: &str) -> Result<PollCursor, String> {
        let parts: Vec<&str> = text.split('~').collect();
        let [room, epoch, seq, presence, typing] = parts[..] else {
            return Err(format!(
                "{text:?} is not room~epoch~seq~presence_version~typing_version"
            ));
        };
        let number = |what: &str, value: &str| {
            json::parse_u64(value)
                .ok_or_else(|| format!("{what} {value:?} in {text:?} is not a number"))
        };
        let room = RoomName::parse(room).map_err(|err| err.to_string())?;
        let cursor = match (epoch, seq) {
            ("", "") => None,
            (epoch, seq) => Some(Cursor {
                epoch: number("epoch", epoch)?,
                seq: number("seq", seq)?,
            }),
        };
        Ok(PollCursor {
            room,
            cursor,
            presence_version: number("presence version", presence)?,
            typing_version: number("typing version", typing)?,
        })
    }
}

/// The query of `GET /v1/poll`: `session=S&wait=MS&r=CURSOR&r=CURSOR...` (see [`PollCursor`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PollQuery {
    /// The polling session.
    pub session: String,
    /// How long the server may hold the poll, in milliseconds (`None`: the server's limit).
    pub wait_ms: Option<u64>,
    /// The rooms followed, with the client's positions.
    pub rooms: Vec<PollCursor>,
}

impl PollQuery {
    /// Encodes the query string (without `?`).
    pub fn encode(&self) -> String {
        let mut query = ["session=", &percent_encode(&self.session)].concat();
        if let Some(wait) = self.wait_ms {
            query.push_str("&wait=");
            query.push_str(&decimal(wait));
        }
        for room in &self.rooms {
            query.push_str("&r=");
            query.push_str(&percent_encode(&room.encode()));
        }
        query
    }

    /// Decodes a query string; unknown parameters are ignored, like unknown fields.
    pub fn decode(query: &str) -> Result<PollQuery, String> {
        let mut parsed = PollQuery {
            session: String::new(),
            wait_ms: None,
            rooms: Vec::new(),
        };
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode(value)
                .ok_or_else(|| format!("{key}: {value:?} is not percent-encoded UTF-8"))?;
            match key {
                "session" => parsed.session = value,
                "r" => parsed.rooms.push(PollCursor::decode(&value)?),
                "wait" => {
                    let ms = json::parse_u64(&value)
                        .ok_or_else(|| format!("wait {value:?} is not a number of milliseconds"))?;
                    parsed.wait_ms = Some(ms);
                }
                _ => {}
            }
        }
        if parsed.rooms.is_empty() {
            return Err(
                "name at least one room: r=ROOM~EPOCH~SEQ~PRESENCE_VERSION~TYPING_VERSION".into(),
            );
        }
        Ok(parsed)
    }
}

/// The path and query of `GET /v1/rooms/{room}/events`: events after seq `after`, at most
/// `limit` of them.
pub fn events_path(room: &RoomName, after: u64, limit: u64) -> String {
    [
        "/v1/rooms/",
        &percent_encode(room.as_str()),
        "/events?after=",
        &decimal(after),
        "&limit=",
        &decimal(limit),
    ]
    .concat()
}

/// Percent-encodes a URL path segment or query value (room names may hold `:`, `/`, `@`).
pub fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 15)]));
        }
    }
    out
}

/// Decodes a percent-encoded query value (`+` is a space); `None` when it is not valid.
fn percent_decode(value: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(value.len());
    let mut rest = value.bytes();
    while let Some(byte) = rest.next() {
        bytes.push(match byte {
            b'+' => b' ',
            b'%' => {
                let high = char::from(rest.next()?).to_digit(16)?;
                let low = char::from(rest.next()?).to_digit(16)?;
                (high * 16 + low) as u8
            }
            other => other,
        });
    }
    String::from_utf8(bytes).ok()
}

/// `POST /v1/rooms/{room}/events` (backend API key): publish on behalf of the system or a user.
#[derive(Clone, Debug, PartialEq)]
pub struct BackendPublish {
    /// Idempotency key: publishing it again returns the original seq.
    pub id: EventId,
    /// The content.
    pub body: Json,
    /// The user to publish as; `"system"` when absent.
    pub from: Option<String>,
    /// Store only if the room's head is exactly this seq.
    pub if_seq: Option<u64>,
}

/// The answer to a backend publish.
#[derive(Clone, Debug, PartialEq)]
pub struct Published {
    /// The room (for a direct message, the user's inbox room `@user`).
    pub room: RoomName,
    /// The event's seq.
    pub seq: u64,
    /// `true` when the id had been published before (the seq is the original one).
    pub duplicate: bool,
}

/// `GET /v1/stats` (backend API key).
#[derive(Clone, Debug, PartialEq)]
pub struct Stats {
    /// Open WebSocket connections.
    pub connections: u64,
    /// The most WebSocket connections open at once since start.
    pub peak_connections: u64,
    /// Live polling sessions.
    pub polling_sessions: u64,
    /// Rooms with members on this node.
    pub rooms: u64,
    /// Distinct users connected (either transport).
    pub users: u64,
    /// Durable events stored per second, over the last few seconds.
    pub events_per_second: f64,
    /// Durable events stored since start.
    pub events_total: u64,
}

/// The prefix of a user's inbox room: direct messages to `ana` are kept in room `@ana`.
pub const INBOX_PREFIX: &str = "@";

/// The inbox room of `user`, if the user id can name one.
pub fn inbox_room(user: &str) -> Result<RoomName, NameError> {
    RoomName::parse(format!("{INBOX_PREFIX}{user}"))
}

/// `GET /healthz`.
#[derive(Clone, Debug, PartialEq)]
pub struct HealthBody {
    /// `"ok"`.
    pub status: String,
}

/// `POST /v1/dev/token` request (dev mode only).
#[derive(Clone, Debug, PartialEq)]
pub struct DevTokenRequest {
    /// The display name to issue a token for.
    pub name: String,
}

/// `POST /v1/dev/token` response.
#[derive(Clone, Debug, PartialEq)]
pub struct DevTokenResponse {
    /// A token granting publish on every room.
    pub token: String,
    /// The user id derived from the name.
    pub user: String,
}

/// A publish waiting in a client's outbox, as kept in client storage across reloads.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxRecord {
    /// The room.
    pub room: RoomName,
    /// The idempotency key it will be published with.
    pub id: EventId,
    /// The content.
    pub body: Json,
    /// Optimistic concurrency, if requested.
    pub if_seq: Option<u64>,
    /// When the app published it, in milliseconds since the Unix epoch.
    pub created_ms: u64,
}

/// A client's outbox in storage (key `chorus.outbox`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StoredOutbox {
    /// Waiting publishes, oldest first.
    pub entries: Vec<OutboxRecord>,
}

impl StoredOutbox {
    /// Encodes for storage.
    pub fn encode(&self) -> String {
        json::to_string(self)
    }

    /// Decodes from storage; a damaged value reads as empty rather than failing the client.
    pub fn decode(text: &str) -> StoredOutbox {
        json::from_str(text).unwrap_or_default()
    }
}

/// The claims of a Chorus access token (a JWT, HS256 by default).
#[derive(Clone, Debug, PartialEq)]
pub struct TokenClaims {
    /// The user id.
    pub sub: String,
    /// The user's display name.
    pub name: Option<String>,
    /// Expiry, in seconds since the Unix epoch.
    pub exp: u64,
    /// Room grants: pattern (`doc:42`, `doc:*`, `*`) to right.
    pub rooms: BTreeMap<String, RoomRight>,
}

wire_enum! {
    /// What a token allows in the rooms matching a grant's pattern.
    pub enum RoomRight [Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord] {
        /// Join, receive events, presence and typing; send presence and typing.
        Read => "read",
        /// Everything `read` allows, and publish.
        Publish => "publish",
    }
}

#[cfg(test)]
mod tests;
