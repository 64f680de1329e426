//! Live cursors: the frames and pieces that carry each connection's cursor (a position, a
//! selection, a viewport: any small JSON the app chooses) to the other members of a room.
//!
//! A live cursor is not a [`super::Cursor`] (a position in a room's *history*): it is where a
//! person points on the app's surface. Its value is opaque [`Json`], kept as the exact text
//! the client sent, like a presence meta; JSON `null` means "no cursor". Their JSON shapes are
//! in `shapes.rs`; this module must never read or write JSON itself beyond handing lists of
//! [`LiveCursor`] to the codec.
//!
//! Lists of cursors travel (in `joined` and polling `state` frames) as opaque [`Json`] too: the
//! client core hands them to the app as they came, so the browser build carries no decoder for
//! them (docs/SIZE.md). [`LiveCursor::read_list`] and [`LiveCursor::list_json`] convert for
//! Rust code that wants them typed.

use super::json::{self, JsonError};
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

impl LiveCursor {
    /// A JSON list of cursors, as `joined` and `state` carry them.
    pub fn list_json(cursors: &[LiveCursor]) -> Json {
        let mut out = json::Writer::default();
        out.list(cursors);
        Json(out.finish().into_boxed_str())
    }

    /// The cursor as JSON (what a `cursor` frame carries).
    pub fn to_json(&self) -> Json {
        Json::encode(self)
    }

    /// One cursor from its JSON object.
    pub fn read(cursor: &Json) -> Result<LiveCursor, JsonError> {
        json::from_str(cursor.as_text())
    }

    /// The cursors of such a list (`[]`, or `null`, for none).
    pub fn read_list(list: &Json) -> Result<Vec<LiveCursor>, JsonError> {
        if list.as_text() == "null" {
            return Ok(Vec::new());
        }
        json::from_str(list.as_text())
    }
}

/// `cursor` (from the server): a member's live cursor changed, or went away (its `value` is
/// `null`: it removed it, left the room or disconnected).
#[derive(Clone, Debug, PartialEq)]
pub struct CursorNotice {
    /// The room.
    pub room: RoomName,
    /// The cursor: one [`LiveCursor`] object (see [`LiveCursor::read`]).
    pub cursor: Json,
}

/// Every live cursor of a room at `version`: what the server's polling answers are made from
/// (a `state` frame carries its two parts as `cursors` and `cursor_version`).
#[derive(Clone, Debug, PartialEq)]
pub struct CursorSnapshot {
    /// Names the set of cursors: equal versions mean equal sets, on every node (it is made
    /// from the cursors themselves; 0 for none). Clients compare it only for equality.
    pub version: u64,
    /// The cursors (the asking connection's own left out), ordered by connection id: a JSON
    /// list of [`LiveCursor`] objects.
    pub cursors: Json,
}
