//! [`Payload`]: a serialized server frame as the hub hands it out, and the two ways to make one.
//!
//! A broadcast is serialized once; every member gets a clone of the same payload.

use chorus_sdk::wire::ServerFrame;

use crate::store::StoredEvent;

/// A serialized frame, cheap to clone (shared bytes).
pub type Payload = axum::extract::ws::Utf8Bytes;

/// Serializes one frame.
pub fn encode(frame: &ServerFrame) -> Payload {
    Payload::from(frame.encode())
}

/// Serializes a stored event as the `event` frame clients receive.
pub fn encode_event(stored: &StoredEvent) -> Payload {
    encode(&ServerFrame::Event(stored.event.clone()))
}
