//! Live cursors in one room: this client's own, throttled on the way out ([`CursorOut`]), and
//! [`LiveCursors`], the others' folded from the core's events for Rust apps.
//!
//! The core never looks inside a cursor or a list of them: it hands the server's JSON text to
//! the app in [`ClientEvent::Cursors`](super::ClientEvent::Cursors), so cursors cost the
//! browser build no decoder and no map of their own (docs/SIZE.md). Pure data: no clock
//! (times are passed in), no I/O.

use std::time::Duration;

use crate::time::Instant;
use crate::wire::{Json, LiveCursor};

/// At most one outgoing `cursor` frame per this interval and room; the last value set is
/// always sent, at the end of the interval it fell in.
pub const CURSOR_THROTTLE: Duration = Duration::from_millis(50);

/// The other members' live cursors in one room, folded from [`ClientEvent::Cursors`]: what a
/// Rust app keeps to draw them (the browser's JavaScript API keeps its own, so the core hands
/// the server's JSON on untouched and carries no map; see docs/SIZE.md).
///
/// [`ClientEvent::Cursors`]: super::ClientEvent::Cursors
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LiveCursors {
    cursors: Vec<LiveCursor>,
}

impl LiveCursors {
    /// Folds in one `Cursors` event's `cursors` (`whole`: every cursor, replacing the ones
    /// kept; otherwise one cursor, removed when its value is `null`). `true` if anything
    /// changed; JSON that is not cursors changes nothing.
    pub fn apply(&mut self, cursors: &Json, whole: bool) -> bool {
        let before = self.cursors.clone();
        if whole {
            if let Ok(list) = LiveCursor::read_list(cursors) {
                self.cursors = list;
            }
        } else if let Ok(cursor) = LiveCursor::read(cursors) {
            self.cursors.retain(|c| c.conn != cursor.conn);
            if cursor.value.as_text() != "null" {
                self.cursors.push(cursor);
            }
        }
        self.cursors.sort_by(|a, b| a.conn.cmp(&b.conn));
        before != self.cursors
    }

    /// The cursors now, ordered by connection id.
    pub fn list(&self) -> &[LiveCursor] {
        &self.cursors
    }
}

/// This client's own cursor in a room: the last value the app set, and the throttle.
#[derive(Debug, Default)]
pub struct CursorOut {
    /// The last value set (`None`: never set; JSON `null`: cleared).
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
