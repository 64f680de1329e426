//! Validated names: room names, event ids and user ids, checked once where they enter.
//!
//! A [`RoomName`] or [`EventId`] is only made by `parse`, so code past the edge never holds an
//! invalid one; a refusal ([`NameError`]) says what is wrong and quotes the untrusted text on one
//! short line. This module must never offer a way round the check (the inner `String` is
//! visible to `wire` only so that `shapes.rs` can write it) and knows nothing of JSON.

use crate::text::concat;
use std::fmt;

use crate::text::{Message, decimal, message_display};

/// The longest room name, in bytes.
pub const MAX_ROOM_NAME_BYTES: usize = 128;

/// The longest client-generated event id, in bytes.
pub const MAX_EVENT_ID_BYTES: usize = 64;

/// The longest user id (the token's `sub`), in bytes.
pub const MAX_USER_ID_BYTES: usize = 128;

/// A room name: 1 to 128 bytes of ASCII letters, digits and `. _ - : / @`.
///
/// Validated when decoded, so every `RoomName` in the program is a valid one.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomName(pub(super) String);

impl RoomName {
    /// Checks `name` and wraps it, or says what is wrong with it.
    ///
    /// ```
    /// use chorus_sdk::wire::RoomName;
    ///
    /// let room = RoomName::parse("doc:42").unwrap();
    /// assert_eq!(room.as_str(), "doc:42");
    /// assert!(RoomName::parse("no spaces").is_err());
    /// ```
    pub fn parse(name: impl Into<String>) -> Result<RoomName, NameError> {
        let name = name.into();
        check_name(&name, "room name", MAX_ROOM_NAME_BYTES, |c| {
            c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-' | b':' | b'/' | b'@')
        })?;
        Ok(RoomName(name))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A client-generated event id (the idempotency key of a publish): 1 to 64 bytes of ASCII
/// letters, digits and `. _ - :`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId(pub(super) String);

impl EventId {
    /// Checks `id` and wraps it, or says what is wrong with it.
    pub fn parse(id: impl Into<String>) -> Result<EventId, NameError> {
        let id = id.into();
        check_name(&id, "event id", MAX_EVENT_ID_BYTES, |c| {
            c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-' | b':')
        })?;
        Ok(EventId(id))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a room name, event id or user id was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameError {
    what: &'static str,
    shown: String,
    reason: String,
}

impl Message for NameError {
    fn message(&self) -> String {
        let NameError {
            what,
            shown,
            reason,
        } = self;
        concat(&["invalid ", what, " \"", shown, "\": ", reason])
    }
}

message_display!(NameError);

fn check_name(
    text: &str,
    what: &'static str,
    max: usize,
    allowed: fn(u8) -> bool,
) -> Result<(), NameError> {
    let fail = |reason: String| NameError {
        what,
        shown: shown(text),
        reason,
    };
    if text.is_empty() {
        return Err(fail("it must not be empty".into()));
    }
    if text.len() > max {
        return Err(fail(concat(&[
            "it is ",
            &decimal(text.len() as u64),
            " bytes long, the limit is ",
            &decimal(max as u64),
        ])));
    }
    if let Some(at) = text.bytes().position(|c| !allowed(c)) {
        // Each check allows or refuses all non-ASCII bytes alike, so `at` starts a character.
        let bad = text[at..].chars().next().unwrap_or('\u{FFFD}');
        return Err(fail(concat(&[
            "character '",
            &shown(bad.encode_utf8(&mut [0; 4])),
            "' is not allowed (letters, digits and . _ - : are; rooms also allow / @)",
        ])));
    }
    Ok(())
}

/// Untrusted text quoted in an error message: its first 40 characters, control characters
/// (newlines included) replaced by U+FFFD so a message stays one clean line in logs.
pub(super) fn shown(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars().take(40) {
        out.push(if c.is_control() { '\u{FFFD}' } else { c });
    }
    out
}

macro_rules! name_impls {
    ($ty:ident) => {
        impl TryFrom<String> for $ty {
            type Error = NameError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                $ty::parse(value)
            }
        }
        impl From<$ty> for String {
            fn from(value: $ty) -> String {
                value.0
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }
        impl std::str::FromStr for $ty {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $ty::parse(s)
            }
        }
    };
}
name_impls!(RoomName);
name_impls!(EventId);

/// Checks a user id (a token's `sub`): 1 to 128 bytes, no control characters.
pub fn check_user_id(user: &str) -> Result<(), NameError> {
    check_name(user, "user id", MAX_USER_ID_BYTES, |c| {
        !c.is_ascii_control()
    })
}

/// The prefix of a user's inbox room: direct messages to `ana` are kept in room `@ana`.
pub const INBOX_PREFIX: &str = "@";

/// The inbox room of `user`, if the user id can name one.
pub fn inbox_room(user: &str) -> Result<RoomName, NameError> {
    RoomName::parse(format!("{INBOX_PREFIX}{user}"))
}
