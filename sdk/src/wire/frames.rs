//! The WebSocket frames: [`ClientFrame`] and [`ServerFrame`] with one struct per frame type, the
//! pieces they carry ([`Cursor`], presence), and [`WireError`], why a frame could not be decoded.
//! The polling transport carries the same frames.
//!
//! The types here are plain data: their JSON (the `"type"` tag and each struct's fields) is
//! said in `shapes.rs`, and this module must never read or write JSON itself.

use super::json::JsonError;
use super::shapes::frame_enum;
use super::{
    CursorNotice, ErrorCode, EventId, Json, LockFence, LockNotice, LockRequest, LockSnapshot,
    ResetReason, RoomName, SetCursor, UnlockRequest,
};
use crate::text::{Message, concat, message_display};

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
        /// Renews the token of an authenticated WebSocket in place.
        "auth" => Auth(Auth),
        /// Acquires or renews a named lock in a room.
        "lock" => Lock(LockRequest) if "locks",
        /// Releases a named lock in a room.
        "unlock" => Unlock(UnlockRequest) if "locks",
        /// Replaces this connection's live cursor in a room.
        "cursor" => SetCursor(SetCursor),
        /// A step of a stream this connection produces.
        "stream" => Stream(super::StreamOp),
    }
}

/// `hello`: authenticates the connection; must be the first frame unless the token came in the
/// `Sec-WebSocket-Protocol` header.
#[derive(Clone, Debug, PartialEq)]
pub struct Hello {
    /// A JWT issued by the application's backend.
    pub token: String,
}

/// `auth`: a fresh token for a WebSocket that is already authenticated (renewal before the old
/// one expires, without reconnecting). It must be the same user's; the connection then acts
/// with the new token's grants and expiry.
#[derive(Clone, Debug, PartialEq)]
pub struct Auth {
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
    /// Only store the event while the publisher still holds this lock grant (fencing).
    pub if_lock: Option<LockFence>,
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

/// `pong`: the answer to a `ping`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Pong {
    /// The `ping`'s nonce, echoed back.
    pub nonce: Option<u64>,
}

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
        "pong" => Pong(Pong),
        /// The server is shutting down.
        "draining" => Draining(Draining),
        /// The full presence and/or typing state of a room (polling transport).
        "state" => State(RoomState),
        /// An `auth` frame's token was accepted.
        "authed" => Authed(Authed),
        /// A lock in a joined room changed (or a `lock`/`unlock` request's answer).
        "lock" => Lock(LockNotice) if "locks",
        /// A message from the application's backend, outside any room.
        "notice" => Notice(super::Notice),
        /// A member's live cursor changed or went away.
        "cursor" => Cursor(CursorNotice),
        /// A step of a stream in a joined room.
        "stream" => Stream(super::StreamFrame),
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

/// `authed`: the token of an `auth` frame was accepted; the connection now acts with its grants
/// and is closed at its expiry instead of the old one's.
#[derive(Clone, Debug, PartialEq)]
pub struct Authed {
    /// The authenticated user id (the same as before).
    pub user: String,
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
    /// The locks held right now, by name: a list of [`LockInfo`] (opaque to the client, which
    /// hands it to the app as it came; [`LockInfo::list`] reads it). Absent when none is held.
    pub locks: Option<Json>,
    /// The other members' live cursors right now (this connection's own left out), absent when
    /// there are none: a JSON list of [`LiveCursor`](super::LiveCursor) objects (see
    /// [`LiveCursor::read_list`](super::LiveCursor::read_list)).
    pub cursors: Option<Json>,
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
    /// The room; absent only when the refused frame's room could not be read (`bad_frame`).
    pub room: Option<RoomName>,
    /// The publish's id.
    pub id: EventId,
    /// Why.
    pub code: ErrorCode,
    /// Why, for humans.
    pub message: String,
    /// The room's head, for `conflict`.
    pub head: Option<u64>,
    /// When to publish again, for `rate_limited` and `draining`.
    pub retry_after_ms: Option<u64>,
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
    /// The live cursors, when they changed since the version the client has: a JSON list of
    /// [`LiveCursor`](super::LiveCursor) objects, the asking connection's own left out (see
    /// [`LiveCursor::read_list`](super::LiveCursor::read_list)).
    pub cursors: Option<Json>,
    /// The version of those cursors (with `cursors`): equal versions mean equal sets, on every
    /// node (it is made from the cursors themselves; 0 for none). A field of its own rather
    /// than a `{version, ...}` object like `presence` and `typing`: the browser's client core
    /// then needs no decoder for one (docs/SIZE.md).
    pub cursor_version: Option<u64>,
    /// The room's stream version, when it changed since the version the client has: the
    /// `stream` frames that follow bring the client to it (polling).
    pub streams: Option<u64>,
    /// The locks held, when they changed since the version the client has.
    pub locks: Option<LockSnapshot>,
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
    /// A `publish` whose `id` could be read but that is invalid otherwise: answered with a
    /// `nack` for that id, so a client keeping an outbox can tell which publish failed.
    InvalidPublish {
        /// The publish's id.
        id: EventId,
        /// Its room, when that could be read too.
        room: Option<RoomName>,
        /// What is wrong with it.
        why: String,
    },
}

impl Message for WireError {
    fn message(&self) -> String {
        match self {
            WireError::Malformed(why) | WireError::InvalidPublish { why, .. } => {
                concat(&["invalid frame: ", why])
            }
            WireError::UnknownType(kind) => concat(&["unknown frame type \"", kind, "\""]),
        }
    }
}

message_display!(WireError);

impl WireError {
    /// The error code to answer with.
    pub fn code(&self) -> ErrorCode {
        match self {
            WireError::Malformed(_) | WireError::InvalidPublish { .. } => ErrorCode::BadFrame,
            WireError::UnknownType(_) => ErrorCode::UnknownType,
        }
    }

    /// The frame a server answers the refused client frame with, on either transport: a `nack`
    /// (code `bad_frame`) for a publish whose id could be read, an `error` otherwise.
    pub fn answer(self) -> ServerFrame {
        let (code, message) = (self.code(), self.message());
        match self {
            WireError::InvalidPublish { id, room, .. } => ServerFrame::Nack(Nack {
                room,
                id,
                code,
                message,
                head: None,
                retry_after_ms: None,
            }),
            _ => ServerFrame::error(code, message, None),
        }
    }
}

impl From<JsonError> for WireError {
    fn from(err: JsonError) -> WireError {
        WireError::Malformed(err.into_message())
    }
}
