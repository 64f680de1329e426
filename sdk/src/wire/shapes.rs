//! How every wire type travels as JSON, all in one place: names and enums as strings, `Json` as
//! its raw text, structs as objects listed in the `wire_shapes!` catalogue below (one line per
//! type: each field and how it travels), frames as their struct's object after a `"type"`.
//!
//! The macros here (`serde_via_wire!`, `wire_enum!`, `frame_enum!`, `wire_names!`,
//! `wire_shapes!`) generate both directions from that one description, against the codec in
//! `json`; `wire_enum!` and `frame_enum!` are invoked where their enums are declared, with each
//! variant's text or tag, so they name everything by its full path. The tests check every shape
//! against its documented example, and `docs/PROTOCOL.md` shows each one.
//!
//! This module must never hold a second description of a shape (a serde derive or a reader
//! beside a catalogue line; the one hand-written writer, `PollFrames::encode_raw`, and the one
//! hand-written reader, `PollBatch::decode` (the server's frame-by-frame reading of a
//! `PollSend`), sit here next to the lines they must agree with), and must never grow generic code: what a macro
//! expands to, the browser SDK carries once per type.

use std::collections::BTreeMap;

use super::json::{
    FieldReader, Fields, JsonError, Node, ObjectWriter, StandIn, Wire, WireObject, Writer,
    stand_ins,
};
use super::{
    Ack, Auth, Authed, BackendPublish, ClientFrame, Cursor, CursorNotice, DevTokenRequest,
    DevTokenResponse, DocContent, DocState, DocUpdateBody, Draining, ErrorBody, ErrorFrame, Event,
    EventId, EventsPage, HealthBody, Hello, Join, Joined, Json, Leave, Left, LiveCursor, LockInfo,
    LocksBody, Nack, Notice, NoticeSent, OutboxRecord, Ping, PollAnswer, PollAnswers, PollBatch,
    PollFrames, PollMany, PollRequest, PollSend, Pong, PresenceBody, PresenceConn, PresenceDiff,
    PresenceSnapshot, PresenceUser, Publish, Published, Reset, RoomName, RoomState, SendNotice,
    SetCursor, SetPresence, Stats, StoredOutbox, TokenClaims, Typing, TypingNotice, TypingSnapshot,
    Welcome, WireError,
};
use super::{
    BackendStreamOp, Progress, StreamAnswer, StreamFrame, StreamKind, StreamOp, StreamResult,
    StreamStepBody, StreamUpdate,
};
use crate::text::Message;

/// `Serialize`/`Deserialize` (with the `serde` feature) through the wire codec, for code that
/// speaks serde (axum bodies, jsonwebtoken claims, tests). Works with `serde_json`, which
/// carries the text as a raw value. Every macro here that gives a type its wire shape calls it.
macro_rules! serde_via_wire {
    ($ty:ty) => {
        #[cfg(feature = "serde")]
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let raw =
                    serde_json::value::RawValue::from_string($crate::wire::json::to_string(self))
                        .map_err(serde::ser::Error::custom)?;
                raw.serialize(serializer)
            }
        }
        #[cfg(feature = "serde")]
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = <Box<serde_json::value::RawValue>>::deserialize(deserializer)?;
                $crate::wire::json::from_str(raw.get()).map_err(serde::de::Error::custom)
            }
        }
    };
}

/// Declares a fieldless enum whose variants travel as fixed strings.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident [$($derive:ident),*] {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive($($derive),*)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$( $name::$variant, )*];

            /// Every value's wire text, in declaration order.
            const NAMES: &'static [&'static str] = &[$( $text, )*];

            /// The value as it appears on the wire.
            pub fn as_str(self) -> &'static str {
                $name::NAMES[self as usize]
            }

            /// Reads the wire text back.
            pub fn from_wire(text: &str) -> Option<$name> {
                $crate::wire::shapes::position($name::NAMES, text).map(|at| $name::ALL[at])
            }
        }

        $crate::wire::shapes::serde_via_wire!($name);

        impl $crate::wire::json::StandIn for $name {
            fn stand_in() -> Self {
                $name::ALL[0]
            }
        }

        impl $crate::wire::json::Wire for $name {
            fn write(&self, out: &mut $crate::wire::json::Writer) {
                out.str(self.as_str());
            }
            fn read(
                node: &$crate::wire::json::Node<'_>,
            ) -> Result<Self, $crate::wire::json::JsonError> {
                $crate::wire::shapes::read_variant(node, $name::NAMES).map(|at| $name::ALL[at])
            }
        }
    };
}

/// Where `text` is in `names` (a `wire_enum!`'s table): one search, out of line, for every
/// enum rather than a `match` on strings per enum.
#[inline(never)]
pub(crate) fn position(names: &[&str], text: &str) -> Option<usize> {
    names.iter().position(|name| *name == text)
}

/// Reads a string naming one of `names` (a `wire_enum!`'s table): its index there.
#[inline(never)]
pub(crate) fn read_variant(node: &Node<'_>, names: &[&str]) -> Result<usize, JsonError> {
    let text = node.str()?;
    position(names, text)
        .ok_or_else(|| JsonError::new(crate::text::concat(&["unknown variant `", text, "`"])))
}

/// Reads a frame's fields and its `"type"`.
pub(super) fn frame_fields<'a, 'n>(
    node: &'n Node<'a>,
) -> Result<(Fields<'a, 'n>, &'n str), WireError> {
    let fields = node.object()?;
    let kind = match fields.node("type") {
        Some(kind) => kind.str().map_err(|err| err.in_field("type"))?,
        None => return Err(WireError::Malformed("missing field `type`".into())),
    };
    Ok((fields, kind))
}

/// Why a frame of type `kind` could not be read from its `fields`: a `publish` whose `id` still
/// reads is [`WireError::InvalidPublish`] (with its room, if that reads too), so it can be
/// answered by a `nack` the sender matches; anything else is malformed.
#[inline(never)]
pub(super) fn frame_error(kind: &str, fields: Fields<'_, '_>, err: JsonError) -> WireError {
    // The tag of `ClientFrame::Publish` (no server frame has it).
    if kind == "publish"
        && let Ok(id) = fields.get::<EventId>("id")
    {
        let room = fields.get::<RoomName>("room").ok();
        let why = err.into_message();
        return WireError::InvalidPublish { id, room, why };
    }
    WireError::from(err)
}

/// Declares a frame enum whose variants each wrap one struct, tagged by `"type"`: the frame is
/// that struct's object with a `"type"` field written first. A variant followed by
/// `if "feature"` is read only with that cargo feature of the crate: without it, its type reads
/// as unknown (the lock frames: `wire/locks.rs`).
macro_rules! frame_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $tag:literal => $variant:ident($ty:ty) $(if $feature:literal)?, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq)]
        pub enum $name {
            $( $(#[$vmeta])* $variant($ty), )*
        }

        impl $name {
            /// Decodes one frame from JSON text.
            pub fn decode(text: &str) -> Result<$name, $crate::wire::WireError> {
                $name::read_frame(&$crate::wire::json::parse(text)?)
            }

            pub(crate) fn read_frame(
                node: &$crate::wire::json::Node<'_>,
            ) -> Result<$name, $crate::wire::WireError> {
                let (fields, kind) = $crate::wire::shapes::frame_fields(node)?;
                let frame = match kind {
                    $( $tag $(if cfg!(feature = $feature))? => {
                        <$ty as $crate::wire::json::Wire>::read(node).map($name::$variant)
                    } )*
                    other => {
                        return Err($crate::wire::WireError::UnknownType(
                            $crate::wire::names::shown(other),
                        ));
                    }
                };
                // One error path for every type (not one per match arm).
                frame.map_err(|err| $crate::wire::shapes::frame_error(kind, fields, err))
            }

            /// Encodes the frame as JSON text.
            pub fn encode(&self) -> String {
                $crate::wire::json::to_string(self)
            }

            /// The frame's `"type"`.
            pub fn kind(&self) -> &'static str {
                match self { $( $name::$variant(_) => $tag, )* }
            }
        }

        $crate::wire::shapes::serde_via_wire!($name);

        impl $crate::wire::json::Wire for $name {
            fn write(&self, out: &mut $crate::wire::json::Writer) {
                let mut object = out.object();
                object.str("type", self.kind());
                match self {
                    $( $name::$variant(body) => {
                        $crate::wire::json::WireObject::write_fields(body, &mut object)
                    } )*
                }
                object.end();
            }

            fn read(
                node: &$crate::wire::json::Node<'_>,
            ) -> Result<Self, $crate::wire::json::JsonError> {
                $name::read_frame(node).map_err(|err| {
                    $crate::wire::json::JsonError::new($crate::text::Message::message(&err))
                })
            }
        }
    };
}

// The macros above are invoked where their types are declared.
pub(super) use {frame_enum, serde_via_wire, wire_enum};

macro_rules! wire_names {
    ($($ty:ident),*) => {
        $(
            impl Wire for $ty {
                fn write(&self, out: &mut Writer) {
                    out.str(&self.0);
                }
                fn read(node: &Node<'_>) -> Result<Self, JsonError> {
                    $ty::parse(node.str()?).map_err(|err| JsonError::new(err.message()))
                }
            }
            stand_ins!($ty => $ty(String::new()));
            serde_via_wire!($ty);
        )*
    };
}
wire_names!(RoomName, EventId);

stand_ins!(Json => Json::null());

serde_via_wire!(Json);

impl Wire for Json {
    fn write(&self, out: &mut Writer) {
        out.raw(&self.0);
    }
    fn read(node: &Node<'_>) -> Result<Self, JsonError> {
        Ok(Json(node.raw.into()))
    }
}

/// Implements [`WireObject`] (and [`Wire`]) for structs from a list of their fields, each with
/// how it travels; the JSON key is the field's name, fields are written in the listed order:
///
/// - `req`: always written; must be present.
/// - `opt`: an `Option`, left out when `None`; absent or `null` reads as `None`.
/// - `list`: a `Vec`, left out when empty; absent or `null` reads as empty.
/// - `or(value)`: left out when equal to `value`; absent or `null` reads as `value`.
/// - `default(value)`: always written; absent or `null` reads as `value`.
///
/// A field followed by `if "feature"` is read only with that cargo feature of the crate; without
/// it, it is ignored and reads as its stand-in (`None` for an `opt`; the lock fields:
/// `wire/locks.rs`).
macro_rules! wire_shapes {
    ($( $ty:ident { $( $field:ident: $mode:ident $(($value:expr))? $(if $feature:literal)? ),* $(,)? } )*) => {
        $(
            impl WireObject for $ty {
                fn write_fields(&self, out: &mut ObjectWriter<'_>) {
                    $( wire_shapes!(@write out, self.$field, stringify!($field), $mode $(($value))?); )*
                }
            }
            impl Wire for $ty {
                fn write(&self, out: &mut Writer) {
                    let mut object = out.object();
                    self.write_fields(&mut object);
                    object.end();
                }
                fn read(node: &Node<'_>) -> Result<Self, JsonError> {
                    let mut f = FieldReader::new(node)?;
                    let value = $ty {
                        $( $field: wire_shapes!(
                            @gated f, stringify!($field), $mode $(($value))?; $($feature)?
                        ), )*
                    };
                    match f.finish() {
                        None => Ok(value),
                        Some(err) => Err(err),
                    }
                }
            }
            impl StandIn for $ty {
                fn stand_in() -> Self {
                    $ty { $( $field: StandIn::stand_in(), )* }
                }
            }
            serde_via_wire!($ty);
        )*
    };
    (@write $out:ident, $value:expr, $key:expr, req) => { $out.field($key, &$value) };
    (@write $out:ident, $value:expr, $key:expr, default($default:expr)) => { $out.field($key, &$value) };
    (@write $out:ident, $value:expr, $key:expr, opt) => { $out.opt($key, &$value) };
    (@write $out:ident, $value:expr, $key:expr, list) => { $out.list($key, &$value) };
    (@write $out:ident, $value:expr, $key:expr, or($default:expr)) => {
        if $value != $default {
            $out.field($key, &$value);
        }
    };
    (@gated $f:ident, $key:expr, $mode:ident $(($value:expr))?;) => {
        wire_shapes!(@read $f, $key, $mode $(($value))?)
    };
    (@gated $f:ident, $key:expr, $mode:ident $(($value:expr))?; $feature:literal) => {{
        #[cfg(feature = $feature)]
        let value = wire_shapes!(@read $f, $key, $mode $(($value))?);
        #[cfg(not(feature = $feature))]
        let value = StandIn::stand_in();
        value
    }};
    (@read $f:ident, $key:expr, req) => { $f.get($key) };
    (@read $f:ident, $key:expr, opt) => { $f.opt($key) };
    (@read $f:ident, $key:expr, list) => { $f.list($key) };
    (@read $f:ident, $key:expr, or($default:expr)) => { $f.or($key, $default) };
    (@read $f:ident, $key:expr, default($default:expr)) => { $f.or($key, $default) };
}

wire_shapes! {
    Cursor { epoch: req, seq: req }
    PresenceConn { conn: req, meta: req, since: req }
    PresenceUser { user: req, name: opt, conns: req }
    PresenceSnapshot { version: req, users: req }
    Hello { token: req }
    Auth { token: req }
    Authed { user: req }
    Join { room: req, meta: default(Json::null()), resume: opt }
    Leave { room: req }
    Publish { room: req, id: req, body: req, durable: or(true), if_seq: opt, if_lock: opt if "locks" }
    LockInfo { name: req, token: req, user: req, conn: req, until: req }
    Typing { room: req, on: req }
    SetPresence { room: req, meta: req }
    Ping { nonce: opt }
    Pong { nonce: opt }
    Welcome { conn: req, user: req, heartbeat_ms: req, protocol: req }
    Joined { room: req, epoch: req, head: req, presence: req, typing: req, cursors: opt, locks: opt if "locks" }
    Left { room: req }
    Event { room: req, seq: opt, id: req, from: req, at: req, body: req }
    Ack { room: req, id: req, seq: opt, duplicate: or(false) }
    Nack { room: opt, id: req, code: req, message: req, head: opt, retry_after_ms: opt }
    PresenceDiff { room: req, version: req, joins: list, updates: list, leaves: list }
    TypingNotice { room: req, user: req, on: req }
    Reset { room: req, reason: req, epoch: req, head: req }
    ErrorFrame { code: req, message: req, room: opt }
    RoomState { room: req, presence: opt, typing: opt, cursors: opt, cursor_version: opt, streams: opt, locks: opt if "locks" }
    TypingSnapshot { version: req, users: req }
    Draining { retry_after_ms: req }
    ErrorBody { code: req, message: req }
    EventsPage { room: req, epoch: req, head: req, oldest: req, events: req, next_after: opt, next_before: opt }
    PresenceBody { room: req, version: req, users: req }
    LocksBody { room: req, locks: req }
    DocState { room: req, doc: req, epoch: req, seq: req, update: req, state_vector: req }
    DocContent { room: req, doc: req, seq: req, content: req }
    DocUpdateBody { update: req, from: opt }
    PollSend { session: req, frames: req }
    PollFrames { frames: req }
    PollMany { polls: req }
    PollRequest { id: req, token: req, query: req, waited: opt }
    PollAnswers { polls: req }
    PollAnswer { id: req, status: req, body: req }
    BackendPublish { id: req, body: req, from: opt, if_seq: opt, if_lock: opt if "locks" }
    Published { room: req, seq: req, duplicate: or(false) }
    Stats {
        connections: req,
        peak_connections: req,
        polling_sessions: req,
        rooms: req,
        users: req,
        events_per_second: req,
        events_total: req,
        nodes: opt,
    }
    HealthBody { status: req }
    DevTokenRequest { name: req, ttl_seconds: opt, rooms: opt }
    DevTokenResponse { token: req, user: req }
    Notice { id: req, level: req, body: req, at: req }
    SendNotice { id: opt, level: opt, body: req }
    NoticeSent { id: req, delivered: req }
    OutboxRecord { room: req, id: req, body: req, if_seq: opt, created_ms: req, user: opt, if_lock: opt if "locks" }
    StoredOutbox { entries: req }
    TokenClaims { sub: req, name: opt, exp: req, rooms: default(BTreeMap::new()) }
    SetCursor { room: req, value: default(Json::null()) }
    LiveCursor { conn: req, user: req, value: req }
    CursorNotice { room: req, cursor: req }
    StreamOp { room: req, stream: req }
    StreamFrame { room: req, stream: req }
    StreamStepBody {
        id: req,
        op: req,
        kind: or(StreamKind::Text),
        n: opt,
        chunk: opt,
        meta: opt,
        message: opt,
    }
    StreamUpdate {
        id: req,
        from: req,
        kind: or(StreamKind::Text),
        op: req,
        n: or(0),
        chunks: list,
        meta: opt,
        seq: opt,
        code: opt,
        message: opt,
    }
    Progress { percent: req, step: opt, eta_ms: opt }
    StreamResult { stream: req, text: opt, progress: opt, meta: opt }
    BackendStreamOp {
        op: req,
        from: opt,
        kind: or(StreamKind::Text),
        n: opt,
        chunk: opt,
        meta: opt,
        message: opt,
    }
    StreamAnswer { room: req, id: req, chunks: opt, seq: opt, duplicate: or(false) }
}

// The lock frames' and fields' types: real only with the `locks` feature (see `wire/locks.rs`).
#[cfg(feature = "locks")]
use super::{LockFence, LockNotice, LockRequest, LockSnapshot, UnlockRequest};
#[cfg(feature = "locks")]
wire_shapes! {
    LockRequest { room: req, id: req, name: req, ttl_ms: req, token: opt }
    UnlockRequest { room: req, id: req, name: req, token: req }
    LockFence { name: req, token: req }
    LockNotice { room: req, change: req, lock: req, locks: req, id: opt }
    LockSnapshot { version: req, locks: req }
}

impl PollFrames {
    /// The response body for frames that are already encoded (as `ServerFrame::encode` makes
    /// them), without decoding them again.
    pub fn encode_raw(frames: &[&str]) -> String {
        let mut body =
            String::with_capacity(16 + frames.iter().map(|f| f.len() + 1).sum::<usize>());
        body.push_str(r#"{"frames":["#);
        for (n, frame) in frames.iter().enumerate() {
            if n > 0 {
                body.push(',');
            }
            body.push_str(frame);
        }
        body.push_str("]}");
        body
    }
}

impl PollBatch {
    /// How many levels a polling batch wraps each frame in: its object and its `frames` list.
    const ENVELOPE_LEVELS: usize = 2;

    /// Reads a `POST /v1/poll` body (the shape of `PollSend` above: `session` and `frames`):
    /// the envelope must be valid, and each frame is decoded on its own. Nesting is counted
    /// from each frame, as on a WebSocket: the envelope's levels do not count against it.
    pub fn decode(text: &str) -> Result<PollBatch, WireError> {
        let node = super::json::parse_enveloped(text, Self::ENVELOPE_LEVELS)?;
        let fields = node.object()?;
        let session = fields.get::<String>("session")?;
        let frames = match fields.node("frames") {
            Some(list) => list.array().map_err(|err| err.in_field("frames"))?,
            None => return Err(WireError::Malformed("missing field `frames`".into())),
        };
        let mut decoded = Vec::with_capacity(frames.len());
        for frame in frames {
            decoded.push(ClientFrame::read_frame(frame));
        }
        Ok(PollBatch {
            session,
            frames: decoded,
        })
    }
}
