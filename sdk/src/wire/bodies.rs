//! JSON documents that are not frames: HTTP request and response bodies ([`ErrorBody`],
//! [`EventsPage`], [`PresenceBody`], the polling batches [`PollSend`] (read by the server as a
//! [`PollBatch`]) and [`PollFrames`], several polls in one request ([`PollMany`],
//! [`PollAnswers`]), backend
//! publish, stats, health, dev tokens) and the client's stored outbox ([`StoredOutbox`]).
//!
//! Plain data: each type's JSON shape is in `shapes.rs`, and this module must never read or
//! write JSON by hand.

use std::collections::BTreeMap;

use super::json;
use super::{
    ClientFrame, ErrorCode, Event, EventId, Json, LockFence, LockInfo, PresenceUser, RoomName,
    RoomRight, ServerFrame, WireError,
};

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
    /// Reading backward (`before`): pass as `before` to read the page of older events; absent
    /// when no older events are kept.
    pub next_before: Option<u64>,
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

/// A `POST /v1/poll` body as the server reads it ([`PollBatch::decode`]): the same document as
/// [`PollSend`], with each frame decoded on its own, so that one bad frame is refused alone
/// (as on a WebSocket) and the others still count.
#[derive(Debug)]
pub struct PollBatch {
    /// The polling session.
    pub session: String,
    /// Each frame, in order, or why it could not be decoded.
    pub frames: Vec<Result<ClientFrame, WireError>>,
}

/// The answer to `POST /v1/poll` and `GET /v1/poll`: server frames, oldest first.
#[derive(Clone, Debug, PartialEq)]
pub struct PollFrames {
    /// The frames.
    pub frames: Vec<ServerFrame>,
}

/// `POST /v1/polls`: several long polls in one request, each exactly a `GET /v1/poll` of its
/// own (how tabs sharing one connection poll: ARCHITECTURE.md, "Tabs sharing one connection").
#[derive(Clone, Debug, PartialEq)]
pub struct PollMany {
    /// The polls, at most 64, with distinct ids.
    pub polls: Vec<PollRequest>,
}

/// One long poll of a [`PollMany`].
#[derive(Clone, Debug, PartialEq)]
pub struct PollRequest {
    /// Names the poll in the answer (1-64 ASCII letters, digits, `_`, `.` and `-`).
    pub id: String,
    /// The JWT the `GET` would carry in its `Authorization` header.
    pub token: String,
    /// The `GET`'s query string (`session=S&r=...&wait=MS`), without the `?`.
    pub query: String,
    /// How long, in ms, this poll already waited in earlier requests that did not answer it:
    /// its `wait` counts from before them, so it is held that much less.
    pub waited: Option<u64>,
}

/// The answer to `POST /v1/polls`: the polls that are answered, each as its `GET` would be.
#[derive(Clone, Debug, PartialEq)]
pub struct PollAnswers {
    /// The answered polls; a poll of the request that is not here is not answered yet.
    pub polls: Vec<PollAnswer>,
}

/// One answered poll of a [`PollAnswers`].
#[derive(Clone, Debug, PartialEq)]
pub struct PollAnswer {
    /// The poll's id from the request.
    pub id: String,
    /// The HTTP status its `GET` would have had.
    pub status: u64,
    /// The body its `GET` would have had (a [`PollFrames`] or an [`ErrorBody`]).
    pub body: Json,
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
    /// Store only while `from` holds this lock grant (fencing; see `LockFence`).
    pub if_lock: Option<LockFence>,
}

/// `GET /v1/rooms/{room}/docs/{doc}`: what a client lacks of a shared document.
#[derive(Clone, Debug, PartialEq)]
pub struct DocState {
    /// The room.
    pub room: RoomName,
    /// The document's name.
    pub doc: EventId,
    /// The room history's epoch `seq` belongs to.
    pub epoch: u64,
    /// Every update stored up to this seq is in `update`: follow the room's events after it.
    pub seq: u64,
    /// What the client lacks (everything, without `sv`): one Yjs update, v1 encoding, base64.
    pub update: String,
    /// The server's state vector (v1 encoding, base64): what the client has and this lacks,
    /// `Y.encodeStateAsUpdate(doc, state_vector)`, is what to publish.
    pub state_vector: String,
}

/// `GET /v1/rooms/{room}/docs/{doc}/content`: a shared document's content as JSON.
#[derive(Clone, Debug, PartialEq)]
pub struct DocContent {
    /// The room.
    pub room: RoomName,
    /// The document's name.
    pub doc: EventId,
    /// The content includes every update stored up to this seq.
    pub seq: u64,
    /// The asked-for root types by name: a text as a string, a map as an object, an array as
    /// an array, an XML fragment as its XML text.
    pub content: Json,
}

/// `POST /v1/rooms/{room}/docs/{doc}` (backend API key): apply an update to a shared document.
#[derive(Clone, Debug, PartialEq)]
pub struct DocUpdateBody {
    /// A Yjs update, v1 encoding, base64.
    pub update: String,
    /// The user to publish it as; `"system"` when absent.
    pub from: Option<String>,
}

/// `GET /v1/rooms/{room}/locks`: the locks held in a room, as the store has them.
#[derive(Clone, Debug, PartialEq)]
pub struct LocksBody {
    /// The room.
    pub room: RoomName,
    /// The locks held now, by name.
    pub locks: Vec<LockInfo>,
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
    /// How many live nodes the figures add up, on the Redis engine (absent on one node).
    pub nodes: Option<u64>,
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
    /// How long the token is valid, 1 to 43200 seconds (default: 43200, 12 hours). Short ones
    /// let a dev app (and its tests) see a token expire.
    pub ttl_seconds: Option<u64>,
    /// The token's room grants, pattern to right (default: `{"*":"publish"}`, every room), so
    /// a dev setup can try a read-only or a refused room.
    pub rooms: Option<BTreeMap<String, RoomRight>>,
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
    /// Fencing, if requested: stored only while the publisher holds this lock grant.
    pub if_lock: Option<LockFence>,
    /// The user it is published as (set once the server has welcomed the client; `None`
    /// before): a client sends only its own user's records and holds the others.
    pub user: Option<String>,
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
