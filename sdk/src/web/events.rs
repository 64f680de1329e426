//! The payloads of the JS API's events (`client.on(kind, fn)`), as JSON text for `JSON.parse`.
//!
//! These shapes belong to the npm package's API (typed in `pkg/chorus.d.ts`), not to the wire
//! protocol; events and presence users inside them are wire types and keep their wire shape.

use serde::Serialize;

use crate::client::{Badge, ClientEvent, ConnectionState, FailReason, Transport};
use crate::wire::{Cursor, ErrorCode, Event, EventId, Json, PresenceUser, ResetReason, RoomName};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct State<'a> {
    state: &'static str,
    badge: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    transport: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attempt: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_in_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

#[derive(Serialize)]
struct Own<'a> {
    event: &'a Event,
    own: bool,
}

#[derive(Serialize)]
struct Publication<'a> {
    room: &'a RoomName,
    id: &'a EventId,
    #[serde(skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<&'a Json>,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<ErrorCode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
}

#[derive(Serialize)]
struct Users<'a, T: Serialize> {
    room: &'a RoomName,
    users: &'a [T],
}

#[derive(Serialize)]
struct Other<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    room: Option<&'a RoomName>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cursor: Option<Cursor>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<ResetReason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<ErrorCode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pending: Option<usize>,
}

const NOTHING: Other<'static> = Other {
    room: None,
    cursor: None,
    reason: None,
    code: None,
    message: None,
    user: None,
    pending: None,
};

fn text<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

/// A room's presence list as JSON text.
pub(super) fn users_json(users: &[PresenceUser]) -> String {
    text(&users)
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
    let mut out = State {
        state: "",
        badge,
        transport: None,
        attempt: None,
        retry_in_ms: None,
        reason: None,
    };
    match state {
        ConnectionState::Connecting { transport } => {
            (out.state, out.transport) = ("connecting", Some(transport_name(*transport)))
        }
        ConnectionState::Connected { transport } => {
            (out.state, out.transport) = ("connected", Some(transport_name(*transport)))
        }
        ConnectionState::Reconnecting {
            attempt,
            next_attempt,
        } => {
            out.state = "reconnecting";
            out.attempt = Some(*attempt);
            out.retry_in_ms = Some(
                next_attempt
                    .saturating_duration_since(super::now())
                    .as_millis() as u64,
            );
        }
        ConnectionState::Offline => out.state = "offline",
        ConnectionState::Failed {
            reason: FailReason::AuthRefused(reason),
        } => {
            out.state = "failed";
            out.reason = Some(reason);
        }
        ConnectionState::Closed => out.state = "closed",
    }
    text(&out)
}

/// The event's kind and its payload as JSON text.
pub(super) fn to_js(event: &ClientEvent) -> (&'static str, String) {
    let publication = |room, id, seq, body, code, message| {
        text(&Publication {
            room,
            id,
            seq,
            body,
            code,
            message,
        })
    };
    match event {
        ClientEvent::State(s) => ("state", state(s)),
        ClientEvent::Welcome { user } => (
            "welcome",
            text(&Other {
                user: Some(user),
                ..NOTHING
            }),
        ),
        ClientEvent::Joined { room, cursor } => (
            "joined",
            text(&Other {
                room: Some(room),
                cursor: Some(*cursor),
                ..NOTHING
            }),
        ),
        ClientEvent::Pending { room, id, body } => (
            "pending",
            publication(room, id, None, Some(body), None, None),
        ),
        ClientEvent::Event { event, own } => ("event", text(&Own { event, own: *own })),
        ClientEvent::Acked { room, id, seq } => {
            ("acked", publication(room, id, Some(*seq), None, None, None))
        }
        ClientEvent::PublishFailed {
            room,
            id,
            code,
            message,
        } => (
            "publishFailed",
            publication(room, id, None, None, Some(*code), Some(message)),
        ),
        ClientEvent::Expired { room, id } => {
            ("expired", publication(room, id, None, None, None, None))
        }
        ClientEvent::Outbox { pending } => (
            "outbox",
            text(&Other {
                pending: Some(*pending),
                ..NOTHING
            }),
        ),
        ClientEvent::Presence { room, users } => ("presence", text(&Users { room, users })),
        ClientEvent::Typing { room, users } => ("typing", text(&Users { room, users })),
        ClientEvent::Reset { room, reason } => (
            "reset",
            text(&Other {
                room: Some(room),
                reason: Some(*reason),
                ..NOTHING
            }),
        ),
        ClientEvent::Error {
            code,
            message,
            room,
        } => (
            "error",
            text(&Other {
                room: room.as_ref(),
                code: Some(*code),
                message: Some(message),
                ..NOTHING
            }),
        ),
        ClientEvent::TokenNeeded => ("tokenNeeded", text(&NOTHING)),
    }
}
