//! [`Payload`]: a serialized server frame as the hub hands it out, and the two ways to make one.
//!
//! A broadcast is serialized once; every member gets a clone of the same payload (shared
//! bytes, reference-counted). The hub knows nothing of sockets or HTTP: the edges turn a
//! payload into what they write (`http::ws` into a WebSocket text message, handing over the
//! same bytes; `http::poll` into a response body).

use std::fmt;

use bytes::Bytes;
use chorus_sdk::wire::ServerFrame;

use crate::store::StoredEvent;

/// A serialized server frame: UTF-8 JSON text in shared bytes, cheap to clone.
///
/// It is only made from a `String` (see [`encode`]), so its bytes are always UTF-8.
#[derive(Clone, PartialEq, Eq)]
pub struct Payload(Bytes);

impl Payload {
    /// The frame's JSON text.
    pub fn as_str(&self) -> &str {
        // Cannot fail: the bytes came from a `String` and are never changed.
        std::str::from_utf8(&self.0).expect("a payload is UTF-8 text")
    }

    /// The frame's length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the frame is empty (never, for an encoded frame).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The frame's UTF-8 bytes, shared rather than copied.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl From<String> for Payload {
    /// Takes over the string's buffer (no copy).
    fn from(text: String) -> Payload {
        Payload(Bytes::from(text))
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// Serializes one frame.
pub fn encode(frame: &ServerFrame) -> Payload {
    Payload::from(frame.encode())
}

/// Serializes a stored event as the `event` frame clients receive.
pub fn encode_event(stored: &StoredEvent) -> Payload {
    encode(&ServerFrame::Event(stored.event.clone()))
}
