//! Live cursors in one room: the others' (kept from `joined`, `cursor` frames and polling
//! `state` frames) and this client's own, throttled on the way out.
//!
//! The values stay opaque [`Json`] text: the core never looks inside a cursor (the app's JSON
//! is parsed by the app), so cursors cost the browser build no decoder of their own. Pure
//! data: no clock (times are passed in), no I/O.

use std::time::Duration;

use crate::time::Instant;
use crate::wire::{CursorNotice, Json, LiveCursor};

/// At most one outgoing `cursor` frame per this interval and room; the last value set is
/// always sent, at the end of the interval it fell in.
pub const CURSOR_THROTTLE: Duration = Duration::from_millis(50);

/// The other members' live cursors in a room.
#[derive(Debug, Default)]
pub struct CursorsIn {
    /// The server's version of the set (polling; 0 = none seen).
    version: u64,
    /// One per connection, in the order they first came.
    cursors: Vec<LiveCursor>,
}

impl CursorsIn {
    /// A member's cursor changed or went (a `null` value); `true` if anything changed.
    pub fn apply(&mut self, notice: CursorNotice) -> bool {
        let gone = notice.value.as_text() == "null";
        let found = self.cursors.iter().position(|c| c.conn == notice.conn);
        match found {
            Some(at) if gone => {
                self.cursors.remove(at);
            }
            Some(at) if self.cursors[at].value != notice.value => {
                self.cursors[at].value = notice.value
            }
            None if !gone => self.cursors.push(LiveCursor {
                conn: notice.conn,
                user: notice.user,
                value: notice.value,
            }),
            _ => return false,
        }
        true
    }

    /// Replaces every cursor (a `joined` or a polling `state`); `true` if anything changed.
    pub fn replace(&mut self, cursors: Vec<LiveCursor>, version: u64) -> bool {
        self.version = version;
        let changed = cursors != self.cursors;
        self.cursors = cursors;
        changed
    }

    /// The server's version of the set last seen (polling).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The cursors now.
    pub fn list(&self) -> Vec<LiveCursor> {
        self.cursors.clone()
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
