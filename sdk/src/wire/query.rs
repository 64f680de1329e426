//! What travels in URLs rather than JSON: the long poll's query ([`PollQuery`], one
//! [`PollCursor`] per room), the history page's path ([`events_path`]) and the percent codec
//! they share.
//!
//! Encoding runs in the browser, so it uses `text::push_decimal`, not `format!`. Decoding runs on the
//! server and must never panic on what the network sends: every refusal is a sentence the server
//! answers `bad_request` with.

use super::json;
use super::{Cursor, RoomName};
use crate::text::{concat, push_decimal};

/// One room a long poll follows, as carried in `GET /v1/poll?r=...`:
/// `room~epoch~seq~presence_version~typing_version~cursor_version`, then `~stream_version` when
/// that is not 0 or a lock version follows, then `~lock_version` for a client that follows locks
/// (`~` never occurs in room names; the last parts may be left out: for clients that show no
/// live cursors, follow no stream or no locks).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PollCursor {
    /// The room.
    pub room: RoomName,
    /// The client's history position (`None` when it has none yet).
    pub cursor: Option<Cursor>,
    /// The presence version the client has (0 = none).
    pub presence_version: u64,
    /// The typing version the client has (0 = none).
    pub typing_version: u64,
    /// The live cursors' version the client has (0 = none).
    pub cursor_version: u64,
    /// The stream version the client has (0 = none; see the `state` frame's `streams`).
    pub stream_version: u64,
    /// The lock version the client has (0 = none), or `None` when it does not follow locks: a
    /// poll then gets no `locks` in its `state`.
    pub lock_version: Option<u64>,
}

impl PollCursor {
    /// Encodes the `r` query value.
    pub fn encode(&self) -> String {
        // Each number written straight into the text (no `String` per part).
        let mut out = self.room.as_str().to_owned();
        let mut part = |n: Option<u64>| {
            out.push('~');
            if let Some(n) = n {
                push_decimal(&mut out, n);
            }
        };
        part(self.cursor.map(|c| c.epoch));
        part(self.cursor.map(|c| c.seq));
        part(Some(self.presence_version));
        part(Some(self.typing_version));
        part(Some(self.cursor_version));
        if self.stream_version > 0 || self.lock_version.is_some() {
            part(Some(self.stream_version));
        }
        if let Some(locks) = self.lock_version {
            part(Some(locks));
        }
        out
    }

    /// Decodes an `r` query value.
    pub fn decode(text: &str) -> Result<PollCursor, String> {
        let parts: Vec<&str> = text.split('~').collect();
        let (room, epoch, seq, presence, typing, cursors, streams, locks) = match parts[..] {
            [room, epoch, seq, presence, typing] => {
                (room, epoch, seq, presence, typing, "0", "0", None)
            }
            [room, epoch, seq, presence, typing, cursors] => {
                (room, epoch, seq, presence, typing, cursors, "0", None)
            }
            [room, epoch, seq, presence, typing, cursors, streams] => {
                (room, epoch, seq, presence, typing, cursors, streams, None)
            }
            [room, epoch, seq, presence, typing, cursors, streams, locks] => (
                room,
                epoch,
                seq,
                presence,
                typing,
                cursors,
                streams,
                Some(locks),
            ),
            _ => {
                return Err(format!(
                    "{text:?} is not room~epoch~seq~presence_version~typing_version[~cursor_version[~stream_version[~lock_version]]]"
                ));
            }
        };
        let number = |what: &str, value: &str| {
            json::parse_u64(value)
                .ok_or_else(|| format!("{what} {value:?} in {text:?} is not a number"))
        };
        let room = RoomName::parse(room).map_err(|err| err.to_string())?;
        let cursor = match (epoch, seq) {
            ("", "") => None,
            (epoch, seq) => Some(Cursor {
                epoch: number("epoch", epoch)?,
                seq: number("seq", seq)?,
            }),
        };
        Ok(PollCursor {
            room,
            cursor,
            presence_version: number("presence version", presence)?,
            typing_version: number("typing version", typing)?,
            cursor_version: number("cursor version", cursors)?,
            stream_version: number("stream version", streams)?,
            lock_version: locks.map(|v| number("lock version", v)).transpose()?,
        })
    }
}

/// The query of `GET /v1/poll`: `session=S&wait=MS&r=CURSOR&r=CURSOR...` (see [`PollCursor`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PollQuery {
    /// The polling session.
    pub session: String,
    /// How long the server may hold the poll, in milliseconds (`None`: the server's limit).
    pub wait_ms: Option<u64>,
    /// The rooms followed, with the client's positions.
    pub rooms: Vec<PollCursor>,
}

impl PollQuery {
    /// Encodes the query string (without `?`).
    pub fn encode(&self) -> String {
        let mut query = concat(&["session=", &percent_encode(&self.session)]);
        if let Some(wait) = self.wait_ms {
            query.push_str("&wait=");
            push_decimal(&mut query, wait);
        }
        for room in &self.rooms {
            query.push_str("&r=");
            query.push_str(&percent_encode(&room.encode()));
        }
        query
    }

    /// Decodes a query string; unknown parameters are ignored, like unknown fields.
    pub fn decode(query: &str) -> Result<PollQuery, String> {
        let mut parsed = PollQuery {
            session: String::new(),
            wait_ms: None,
            rooms: Vec::new(),
        };
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode(value)
                .ok_or_else(|| format!("{key}: {value:?} is not percent-encoded UTF-8"))?;
            match key {
                "session" => parsed.session = value,
                "r" => parsed.rooms.push(PollCursor::decode(&value)?),
                "wait" => {
                    let ms = json::parse_u64(&value)
                        .ok_or_else(|| format!("wait {value:?} is not a number of milliseconds"))?;
                    parsed.wait_ms = Some(ms);
                }
                _ => {}
            }
        }
        if parsed.rooms.is_empty() {
            return Err(
                "name at least one room: r=ROOM~EPOCH~SEQ~PRESENCE_VERSION~TYPING_VERSION".into(),
            );
        }
        Ok(parsed)
    }
}

/// The path and query of `GET /v1/rooms/{room}/events`: events after seq `after`, at most
/// `limit` of them.
pub fn events_path(room: &RoomName, after: u64, limit: u64) -> String {
    let mut path = concat(&[
        "/v1/rooms/",
        &percent_encode(room.as_str()),
        "/events?after=",
    ]);
    push_decimal(&mut path, after);
    path.push_str("&limit=");
    push_decimal(&mut path, limit);
    path
}

/// Percent-encodes a URL path segment or query value (room names may hold `:`, `/`, `@`).
pub fn percent_encode(value: &str) -> String {
    encode_keeping(value, |byte| matches!(byte, b'-' | b'_' | b'.' | b'~'))
}

/// Percent-encodes as JavaScript's `encodeURIComponent` does (it also keeps `!*'()`): how the
/// browser client's storage keys name a server and a user, the same as the npm package's.
pub fn uri_component(value: &str) -> String {
    encode_keeping(value, |byte| b"-_.~!*'()".contains(&byte))
}

/// Every byte as `%XX` but ASCII letters, digits and those `keep` says.
fn encode_keeping(value: &str, keep: impl Fn(u8) -> bool) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || keep(byte) {
            out.push(char::from(byte));
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 15)]));
        }
    }
    out
}

/// Decodes a percent-encoded query value (`+` is a space); `None` when it is not valid.
fn percent_decode(value: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(value.len());
    let mut rest = value.bytes();
    while let Some(byte) = rest.next() {
        bytes.push(match byte {
            b'+' => b' ',
            b'%' => {
                let high = char::from(rest.next()?).to_digit(16)?;
                let low = char::from(rest.next()?).to_digit(16)?;
                (high * 16 + low) as u8
            }
            other => other,
        });
    }
    String::from_utf8(bytes).ok()
}
