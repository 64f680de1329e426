//! The payloads of the JS API's events (`client.on(kind, fn)`), as JSON text for `JSON.parse`.
//!
//! These shapes belong to the npm package's API (typed in `pkg/chorus.d.ts`), not to the wire
//! protocol; events and presence users inside them are wire types and keep their wire shape.
//! They are written with the wire codec's writer, like every other JSON the SDK makes.

use crate::client::{Badge, ClientEvent, ConnectionState, FailReason, Transport};
use crate::wire::json::{ObjectWriter, Writer};
use crate::wire::{EventId, PresenceUser, RoomName};

/// Writes one object and returns its text.
fn object(fields: impl FnOnce(&mut ObjectWriter<'_>)) -> String {
    let mut out = Writer::default();
    let mut object = out.object();
    fields(&mut object);
    object.end();
    out.finish()
}

/// A room's presence list as JSON text.
pub(super) fn users_json(users: &[PresenceUser]) -> String {
    let mut out = Writer::default();
    out.list(users);
    out.finish()
}

fn transport_name(transport: Transport) -> &'static str {
    match transport {
        Transport::WebSocket => "websocket",
        Transport::Polling => "polling",
    }
}

fn state(state: &ConnectionState) -> String {
    let badge = match state.badge() {
        Badge::Live => "live",
        Badge::Syncing => "syncing",
        Badge::Offline => "offline",
    };
    object(|out| match state {
        ConnectionState::Connecting { transport } => {
            out.str("state", "connecting")
                .str("badge", badge)
                .str("transport", transport_name(*transport));
        }
        ConnectionState::Connected { transport } => {
            out.str("state", "connected")
                .str("badge", badge)
                .str("transport", transport_name(*transport));
        }
        ConnectionState::Reconnecting {
            attempt,
            next_attempt,
        } => {
            let retry_in = next_attempt.saturating_duration_since(super::now());
            out.str("state", "reconnecting")
                .str("badge", badge)
                .field("attempt", &u64::from(*attempt))
                .field("retryInMs", &crate::time::millis(retry_in));
        }
        ConnectionState::Offline => {
            out.str("state", "offline").str("badge", badge);
        }
        ConnectionState::Failed {
            reason: FailReason::AuthRefused(reason),
        } => {
            out.str("state", "failed")
                .str("badge", badge)
                .str("reason", reason);
        }
        ConnectionState::Closed => {
            out.str("state", "closed").str("badge", badge);
        }
    })
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
    match event {
        ClientEvent::State(s) => ("state", state(s)),
        ClientEvent::Welcome { user } => (
            "welcome",
            object(|out| {
                out.str("user", user);
            }),
        ),
        ClientEvent::Joined { room, cursor } => (
            "joined",
            object(|out| {
                out.field("room", room).field("cursor", cursor);
            }),
        ),
        ClientEvent::Pending { room, id, body } => (
            "pending",
            object(|out| {
                room_and_id(out, room, id).field("body", body);
            }),
        ),
        ClientEvent::Event { event, own } => (
            "event",
            object(|out| {
                out.field("event", event).field("own", own);
            }),
        ),
        ClientEvent::Acked { room, id, seq } => (
            "acked",
            object(|out| {
                room_and_id(out, room, id).field("seq", seq);
            }),
        ),
        ClientEvent::PublishFailed {
            room,
            id,
            code,
            message,
        } => (
            "publishFailed",
            object(|out| {
                room_and_id(out, room, id)
                    .field("code", code)
                    .str("message", message);
            }),
        ),
        ClientEvent::Expired { room, id } => (
            "expired",
            object(|out| {
                room_and_id(out, room, id);
            }),
        ),
        ClientEvent::Outbox { pending } => (
            "outbox",
            object(|out| {
                out.field("pending", &(*pending as u64));
            }),
        ),
        ClientEvent::Presence { room, users } => (
            "presence",
            object(|out| {
                out.field("room", room).field("users", users);
            }),
        ),
        ClientEvent::Typing { room, users } => (
            "typing",
            object(|out| {
                out.field("room", room).field("users", users);
            }),
        ),
        ClientEvent::Reset { room, reason } => (
            "reset",
            object(|out| {
                out.field("room", room).field("reason", reason);
            }),
        ),
        ClientEvent::Error {
            code,
            message,
            room,
        } => (
            "error",
            object(|out| {
                out.opt("room", room)
                    .field("code", code)
                    .str("message", message);
            }),
        ),
        ClientEvent::TokenNeeded => ("tokenNeeded", "{}".to_owned()),
    }
}
