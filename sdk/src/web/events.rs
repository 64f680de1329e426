//! The payloads of the JS API's events (`client.on(kind, fn)`), as JSON text for `JSON.parse`.
//!
//! These shapes belong to the npm package's API (typed in `pkg/chorus.d.ts`), not to the wire
//! protocol; presence users inside them are wire types and keep their wire shape, and an
//! `event` payload is the event's wire fields with `own` beside them.
//! They are written with the wire codec's writer, like every other JSON the SDK makes.
//!
//! Text and `JSON.parse`, not JS values built by serde-wasm-bindgen: that was measured 4 KB
//! bigger and three times slower per event (ARCHITECTURE.md, "Dependencies").

use crate::client::{Badge, ClientEvent, ConnectionState, FailReason};
use crate::wire::json::{ObjectWriter, WireObject, Writer};
use crate::wire::{EventId, PresenceUser, RoomName};

/// A room's presence list as JSON text.
pub(super) fn users_json(users: &[PresenceUser]) -> String {
    let mut out = Writer::default();
    out.list(users);
    out.finish()
}

fn state(out: &mut ObjectWriter<'_>, state: &ConnectionState) {
    let badge = match state.badge() {
        Badge::Live => "live",
        Badge::Syncing => "syncing",
        Badge::Offline => "offline",
    };
    let name = match state {
        ConnectionState::Connecting { .. } => "connecting",
        ConnectionState::Connected { .. } => "connected",
        ConnectionState::Reconnecting { .. } => "reconnecting",
        ConnectionState::Offline => "offline",
        ConnectionState::Failed { .. } => "failed",
        ConnectionState::Closed => "closed",
    };
    out.str("state", name).str("badge", badge);
    match state {
        ConnectionState::Connecting { transport } | ConnectionState::Connected { transport } => {
            out.str("transport", transport.as_str());
        }
        ConnectionState::Reconnecting {
            attempt,
            next_attempt,
        } => {
            let retry_in = next_attempt.saturating_duration_since(super::now());
            out.field("attempt", &u64::from(*attempt))
                .field("retryInMs", &crate::time::millis(retry_in));
        }
        ConnectionState::Failed {
            reason: FailReason::AuthRefused(reason),
        } => {
            out.str("reason", reason);
        }
        ConnectionState::Offline | ConnectionState::Closed => {}
    }
}

fn room_and_id<'o, 'w>(
    out: &'o mut ObjectWriter<'w>,
    room: &RoomName,
    id: &EventId,
) -> &'o mut ObjectWriter<'w> {
    out.field("room", room).field("id", id)
}

/// The event's kind and its payload as JSON text.
pub(super) fn to_js(event: &ClientEvent) -> (&'static str, String) {
    let mut text = Writer::default();
    let mut out = text.object();
    let kind = match event {
        ClientEvent::State(s) => {
            state(&mut out, s);
            "state"
        }
        ClientEvent::Welcome { user } => {
            out.str("user", user);
            "welcome"
        }
        ClientEvent::Joined { room, cursor } => {
            out.field("room", room).field("cursor", cursor);
            "joined"
        }
        ClientEvent::Pending { room, id, body } => {
            room_and_id(&mut out, room, id).field("body", body);
            "pending"
        }
        ClientEvent::Event { event, own } => {
            // Flat, the event's fields and `own`, as the JS API hands it on (no copy there).
            event.write_fields(&mut out);
            out.field("own", own);
            "event"
        }
        ClientEvent::Acked { room, id, seq } => {
            room_and_id(&mut out, room, id).field("seq", seq);
            "acked"
        }
        ClientEvent::PublishFailed {
            room,
            id,
            code,
            message,
        } => {
            room_and_id(&mut out, room, id)
                .field("code", code)
                .str("message", message);
            "publishFailed"
        }
        ClientEvent::Expired { room, id } => {
            room_and_id(&mut out, room, id);
            "expired"
        }
        ClientEvent::Outbox { queued } => {
            out.field("queued", &(*queued as u64));
            "outbox"
        }
        ClientEvent::Presence { room, users } => {
            out.field("room", room).field("users", users);
            "presence"
        }
        ClientEvent::Typing { room, users } => {
            out.field("room", room).field("users", users);
            "typing"
        }
        ClientEvent::Reset { room, reason, .. } => {
            out.field("room", room).field("reason", reason);
            "reset"
        }
        ClientEvent::Error {
            code,
            message,
            room,
        } => {
            out.opt("room", room)
                .field("code", code)
                .str("message", message);
            "error"
        }
        #[cfg(feature = "locks")]
        ClientEvent::Locks { room, locks } => {
            out.field("room", room).field("locks", locks);
            "lock"
        }
        #[cfg(feature = "locks")]
        ClientEvent::LockDone {
            room,
            id,
            change,
            lock,
        } => {
            room_and_id(&mut out, room, id)
                .field("change", change)
                .field("lock", lock);
            "lockDone"
        }
        #[cfg(feature = "locks")]
        ClientEvent::LockFailed {
            room,
            id,
            code,
            message,
        } => {
            room_and_id(&mut out, room, id)
                .field("code", code)
                .str("message", message);
            "lockFailed"
        }
        ClientEvent::TokenNeeded => "tokenNeeded",
        ClientEvent::Notice(notice) => {
            out.str("id", &notice.id)
                .str("level", &notice.level)
                .field("body", &notice.body)
                .field("at", &notice.at);
            "notice"
        }
        // `chorus.js` folds these into each room's cursors and tells its listeners the list.
        ClientEvent::Cursors {
            room,
            cursors,
            whole,
        } => {
            out.field("room", room)
                .field(if *whole { "cursors" } else { "cursor" }, cursors);
            "cursors"
        }
        ClientEvent::Stream(frame) => {
            // The step as it came (`chorus.js` spreads it beside the room).
            out.field("room", &frame.room)
                .field("stream", &frame.stream);
            "stream"
        }
    };
    out.end();
    (kind, text.finish())
}
