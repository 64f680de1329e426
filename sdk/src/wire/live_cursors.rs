//! Live cursors: the frames and pieces that carry each connection's cursor (a position, a
//! selection, a viewport: any small JSON the app chooses) to the other members of a room.
//!
//! A live cursor is not a [`super::Cursor`] (a position in a room's *history*): it is where a
//! person points on the app's surface. Its value is opaque [`Json`], kept as the exact text
//! the client sent, like a presence meta; JSON `null` means "no cursor". Their JSON shapes are
//! in `shapes.rs`; this module must never read or write JSON itself.

use super::{Json, RoomName};

/// `cursor` (from a client): replaces this connection's live cursor in a joined room; a
/// `null` value (or none) removes it.
#[derive(Clone, Debug, PartialEq)]
pub struct SetCursor {
    /// The room.
    pub room: RoomName,
    /// The cursor (any small JSON), or `null` to remove it.
    pub value: Json,
}

/// One connection's live cursor in a room.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveCursor {
    /// The connection's id (as in `welcome` and in presence).
    pub conn: String,
    /// Its user.
    pub user: String,
    /// The cursor, exactly as the connection sent it.
    pub value: Json,
}

/// `cursor` (from the server): a member's live cursor changed (`value` set) or went away
/// (`value` is `null`: it removed it, left the room or disconnected).
#[derive(Clone, Debug, PartialEq)]
pub struct CursorNotice {
    /// The room.
    pub room: RoomName,
    /// The connection whose cursor it is.
    pub conn: String,
    /// Its user.
    pub user: String,
    /// The new cursor, or `null` when it is gone.
    pub value: Json,
}

/// Every live cursor of a room at `version`, as a polling `state` frame carries it.
#[derive(Clone, Debug, PartialEq)]
pub struct CursorSnapshot {
    /// Names the set of cursors: equal versions mean equal sets, on every node (it is made
    /// from the cursors themselves; 0 for none). Clients compare it only for equality.
    pub version: u64,
    /// The cursors (the asking connection's own left out), ordered by connection id.
    pub cursors: Vec<LiveCursor>,
}
