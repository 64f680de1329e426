//! The protocol's stable codes: [`ErrorCode`] (in `error` frames, `nack`s and HTTP error
//! bodies), the WebSocket close codes ([`close_code`]) and [`ResetReason`].
//!
//! Each code's text or number is part of the protocol (`docs/PROTOCOL.md`): this module must
//! never rename, renumber or reuse one, only add new ones.

use std::fmt;

use super::shapes::wire_enum;

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
        /// The lock is held by someone else (the message says who and until when).
        LockHeld => "lock_held",
        /// The stated lock grant is no longer held (released, expired or taken over): a
        /// publish's `if_lock`, a renewal or a release of a grant that is gone.
        LockLost => "lock_lost",
        /// A `lock` request for a new lock in a room that holds as many locks as allowed.
        TooManyLocks => "too_many_locks",
        /// A live cursor's value is larger than the server allows.
        CursorTooLarge => "cursor_too_large",
        /// No stream with this id is open in the room (never started, or already ended).
        StreamNotFound => "stream_not_found",
        /// The stream step does not fit the stream: another producer's id, another kind, or
        /// a chunk index past the chunks the stream has.
        StreamConflict => "stream_conflict",
        /// A chunk, or the stream as a whole, is larger than the server allows.
        StreamTooLarge => "stream_too_large",
        /// The room, or the producing connection, has as many open streams as allowed.
        TooManyStreams => "too_many_streams",
        /// A stream's producer went silent past the stream timeout; the stream failed.
        StreamAbandoned => "stream_abandoned",
        /// The producer failed the stream.
        StreamFailed => "stream_failed",
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
    /// Frames against the WebSocket protocol, such as an unmasked one from a client (RFC 6455
    /// "protocol error").
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// A text message that is not UTF-8 (RFC 6455 "invalid frame payload data").
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// A message exceeded the hard size cap (RFC 6455 "message too big").
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    /// The server is restarting or shutting down (RFC 6455 "service restart").
    pub const SERVICE_RESTART: u16 = 1012;
    /// A logical connection of a multiplexed socket was refused by a connection limit (RFC 6455
    /// "try again later").
    pub const TRY_AGAIN_LATER: u16 = 1013;
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

wire_enum! {
    /// What happened to a lock, in a `lock` frame.
    pub enum LockChange [Clone, Copy, Debug, PartialEq, Eq] {
        /// A new grant (a new fencing token).
        Granted => "granted",
        /// The grant was extended (same token, later `until`; shorter when its holder's
        /// connection went away).
        Renewed => "renewed",
        /// The holder released it, or left the room.
        Released => "released",
        /// Its `until` passed without a renewal.
        Expired => "expired",
    }
}

impl LockChange {
    /// Whether the lock is held after this change.
    pub fn held(self) -> bool {
        matches!(self, LockChange::Granted | LockChange::Renewed)
    }
}
