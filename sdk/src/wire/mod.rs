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
//!
//! Where things are (each item is re-exported here, so its path is `wire::Name`):
//! - `names.rs`: validated names ([`RoomName`], [`EventId`], user ids, inbox rooms) and their
//!   limits.
//! - `opaque.rs`: [`Json`], opaque JSON kept as its raw text.
//! - `codes.rs`: [`ErrorCode`], [`close_code`], [`ResetReason`].
//! - `frames.rs`: [`ClientFrame`], [`ServerFrame`], their variant structs, the pieces they carry
//!   ([`Cursor`], presence) and [`WireError`].
//! - `live_cursors.rs`: live cursors ([`SetCursor`], [`CursorNotice`], [`LiveCursor`],
//!   [`CursorSnapshot`]): where each member points, not a history [`Cursor`].
//! - `bodies.rs`: HTTP bodies ([`ErrorBody`], [`EventsPage`], [`PresenceBody`], polling batches,
//!   backend publish, stats, health, dev tokens) and the client's [`StoredOutbox`].
//! - `resume.rs`: [`RoomHead`] and the one rule for whether a [`Cursor`] can resume
//!   ([`RoomHead::resume`]).
//! - `query.rs`: what travels in URLs: the long poll's [`PollQuery`] of [`PollCursor`]s,
//!   [`events_path`], [`percent_encode`], [`uri_component`].
//! - `mux.rs`: the envelope of a multiplexed socket ([`MuxIn`], [`mux_frame`]): a browser's
//!   tabs as logical connections over one WebSocket.
//! - `claims.rs`: [`TokenClaims`], [`RoomRight`].
//! - `streams.rs`: streams ([`StreamOp`] and [`StreamFrame`] with the steps they carry,
//!   [`StreamStepBody`] and [`StreamUpdate`]; [`Progress`], [`StreamResult`], the backend's
//!   [`BackendStreamOp`] and [`StreamAnswer`]).
//! - `shapes.rs`: how each of those travels as JSON: the macros that give a type its shape and
//!   the `wire_shapes!` catalogue of every struct's fields.
//! - [`json`]: the codec underneath.

mod bodies;
mod claims;
mod codes;
mod frames;
pub mod json;
mod live_cursors;
mod locks;
mod mux;
mod names;
mod notice;
mod opaque;
mod query;
mod resume;
mod shapes;
mod streams;
// The examples in docs/PROTOCOL.md include the lock frames, which need the `locks` feature.
#[cfg(all(test, feature = "locks"))]
mod tests;

pub use bodies::{
    BackendPublish, DevTokenRequest, DevTokenResponse, DocContent, DocState, DocUpdateBody,
    ErrorBody, EventsPage, HealthBody, LocksBody, OutboxRecord, PollAnswer, PollAnswers, PollBatch,
    PollFrames, PollMany, PollRequest, PollSend, PresenceBody, Published, Stats, StoredOutbox,
};
pub use claims::{RoomRight, TokenClaims};
pub use codes::{ErrorCode, LockChange, ResetReason, close_code};
pub use frames::{
    Ack, Auth, Authed, ClientFrame, Cursor, Draining, ErrorFrame, Event, Hello, Join, Joined,
    Leave, Left, Nack, Ping, Pong, PresenceConn, PresenceDiff, PresenceSnapshot, PresenceUser,
    Publish, Reset, RoomState, ServerFrame, SetPresence, Typing, TypingNotice, TypingSnapshot,
    Welcome, WireError,
};
pub use live_cursors::{CursorNotice, CursorSnapshot, LiveCursor, SetCursor};
pub use locks::{LockFence, LockInfo, LockNotice, LockRequest, LockSnapshot, UnlockRequest};
pub use mux::{MAX_TAB_ID_BYTES, MuxError, MuxIn, WS_MUX_SUBPROTOCOL, mux_closed, mux_frame};
pub use names::{
    EventId, INBOX_PREFIX, MAX_EVENT_ID_BYTES, MAX_ROOM_NAME_BYTES, MAX_USER_ID_BYTES, NameError,
    RoomName, check_user_id, inbox_room,
};
pub use notice::{MAX_EVENT_TYPE_BYTES, NOTICE_LEVELS, Notice, NoticeSent, SendNotice};
pub use opaque::Json;
pub use query::{PollCursor, PollQuery, events_path, percent_encode, uri_component};
pub use resume::RoomHead;
pub use streams::{
    BackendStreamOp, Progress, StreamAnswer, StreamFrame, StreamKind, StreamOp, StreamResult,
    StreamStep, StreamStepBody, StreamUpdate,
};

/// The protocol version spoken by this module; it is also the URL prefix (`/v1/...`).
pub const PROTOCOL_VERSION: &str = "v1";

/// The WebSocket subprotocol a client offers (and the server selects) for protocol `v1`.
pub const WS_SUBPROTOCOL: &str = "chorus.v1";

/// Prefix of the optional second subprotocol that carries the token in the upgrade request,
/// for clients that prefer not to send a `hello` frame: `chorus.token.<jwt>`.
pub const WS_TOKEN_PREFIX: &str = "chorus.token.";

/// Epochs and sequence numbers stay below 2^53 so JavaScript numbers represent them exactly.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;
