//! Live cursors in one room: the others' (kept from `joined`, `cursor` frames and polling
//! `state` frames) and this client's own, throttled on the way out.
//!
//! The values, and the lists of cursors, stay opaque JSON text: the core never looks inside a
//! cursor (the app parses it), and it reads a list only to split it by connection, with the
//! codec's generic parser, so cursors cost the browser build no decoder of their own
//! (docs/SIZE.md). Pure data: no clock (times are passed in), no I/O.

use std::time::Duration;

use crate::time::Instant;
use crate::wire::json::{self, Writer};
use crate::wire::{CursorNotice, Json};

/// At most one outgoing `cursor` frame per this interval and room; the last value set is
/// always sent, at the end of the interval it fell in.
pub const CURSOR_THROTTLE: Duration = Duration::from_millis(50);

/// The other members' live cursors in a room, each kept as its JSON object text.
#[derive(Debug, Default)]
pub struct CursorsIn {
    /// The server's version of the set (polling; 0 = none seen).
    version: u64,
    /// One per connection: its id and its `{conn, user, value}` object, in the order they came.
    cursors: Vec<(String, String)>,
}

impl CursorsIn {
    /// A member's cursor changed or went (a `null` value); `true` if anything changed.
    pub fn apply(&mut self, notice: CursorNotice) -> bool {
        let found = self
            .cursors
            .iter()
            .position(|(conn, _)| *conn == notice.conn);
        let entry = (notice.value.as_text() != "null").then(|| {
            let mut text = Writer::default();
            let mut object = text.object();
            object
                .str("conn", &notice.conn)
                .str("user", &notice.user)
                .field("value", &notice.value);
            object.end();
            text.finish()
        });
        match (found, entry) {
            (Some(at), None) => {
                self.cursors.remove(at);
            }
            (Some(at), Some(entry)) if self.cursors[at].1 != entry => self.cursors[at].1 = entry,
            (None, Some(entry)) => self.cursors.push((notice.conn, entry)),
            _ => return false,
        }
        true
    }

    /// Replaces every cursor with a list from a `joined` or a polling `state` (a list it
    /// cannot read counts as empty); `true` if anything changed.
    pub fn replace(&mut self, list: &Json, version: u64) -> bool {
        self.version = version;
        let mut cursors = Vec::new();
        if let Ok(node) = json::parse(list.as_text())
            && let Ok(items) = node.array()
        {
            for item in items {
                if let Ok(conn) = item
                    .object()
                    .and_then(|fields| fields.get::<String>("conn"))
                {
                    cursors.push((conn, item.raw.to_owned()));
                }
            }
        }
        let changed = cursors != self.cursors;
        self.cursors = cursors;
        changed
    }

    /// The server's version of the set last seen (polling).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The cursors now: a JSON list of `{conn, user, value}` objects.
    pub fn list(&self) -> Json {
        let mut text = String::from("[");
        for (n, (_, entry)) in self.cursors.iter().enumerate() {
            if n > 0 {
                text.push(',');
            }
            text.push_str(entry);
        }
        text.push(']');
        Json::from_text(text).unwrap_or_else(|_| Json::empty_list())
    }
}

/// This client's own cursor in a room: the last value the app set, and the throttle.
#[derive(Debug, Default)]
pub struct CursorOut {
    /// The last value set (`None`: never set, or cleared and the clearing sent).
    value: Option<Json>,
    /// The value has not been sent yet.
    pending: bool,
    /// When the last frame was sent.
    sent_at: Option<Instant>,
    /// The room is joined on the current link (a frame sent before `joined` would be refused).
    pub(crate) ready: bool,
}

impl CursorOut {
    /// The app set a value: the frame to send now, if the throttle allows one (otherwise it
    /// goes at [`CursorOut::next_timeout`]).
    pub fn set(&mut self, value: Json, now: Instant) -> Option<Json> {
        self.value = Some(value);
        self.pending = true;
        self.due(now)
    }

    /// The room is joined (again) on a new link: the server forgot the cursor with the old
    /// one, so the last value goes again (at once, or when the throttle allows).
    pub fn rejoined(&mut self, now: Instant) -> Option<Json> {
        self.ready = true;
        self.pending = self.value.as_ref().is_some_and(|v| v.as_text() != "null");
        self.due(now)
    }

    /// Time passed: the pending value, if its interval is over.
    pub fn due(&mut self, now: Instant) -> Option<Json> {
        if !self.pending || !self.ready || self.next_timeout().is_some_and(|at| at > now) {
            return None;
        }
        self.pending = false;
        self.sent_at = Some(now);
        self.value.clone()
    }

    /// When a pending value may go.
    pub fn next_timeout(&self) -> Option<Instant> {
        // Never sent: `due` sends at once, so nothing waits.
        let sent = self.sent_at.filter(|_| self.pending && self.ready)?;
        Some(sent + CURSOR_THROTTLE)
    }
}
