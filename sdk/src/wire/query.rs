//! What travels in URLs rather than JSON: the long poll's query ([`PollQuery`], one
//! [`PollCursor`] per room), the history page's path ([`events_path`]) and the percent codec
//! they share.
//!
//! Encoding runs in the browser, so it uses `text::decimal`, not `format!`. Decoding runs on the
//! server and must never panic on what the network sends: every refusal is a sentence the server
//! answers `bad_request` with.

use super::json;
use super::{Cursor, RoomName};
use crate::text::decimal;

/// One room a long poll follows, as carried in `GET /v1/poll?r=...`:
/// `room~epoch~seq~presence_version~typing_version[~lock_version]` (`~` never occurs in room
/// names; the lock version is left out when it is 0).
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
    /// The lock version the client has (0 = none).
    pub lock_version: u64,
}

impl PollCursor {
    /// Encodes the `r` query value.
    pub fn encode(&self) -> String {
        let epoch = self.cursor.map(|c| decimal(c.epoch));
        let seq = self.cursor.map(|c| decimal(c.seq));
        fn or_empty(n: &Option<String>) -> &str {
            n.as_deref().unwrap_or("")
        }
        [
            self.room.as_str(),
            "~",
            or_empty(&epoch),
            "~",
            or_empty(&seq),
            "~",
            &decimal(self.presence_version),
            "~",
            &decimal(self.typing_version),
            if self.lock_version == 0 { "" } else { "~" },
            &if self.lock_version == 0 {
                String::new()
            } else {
                decimal(self.lock_version)
            },
        ]
        .concat()
    }

    /// Decodes an `r` query value.
    pub fn decode(text: &str) -> Result<PollCursor, String> {
        let parts: Vec<&str> = text.split('~').collect();
        let (room, epoch, seq, presence, typing, locks) = match parts[..] {
            [room, epoch, seq, presence, typing] => (room, epoch, seq, presence, typing, "0"),
            [room, epoch, seq, presence, typing, locks] => {
                (room, epoch, seq, presence, typing, locks)
            }
            _ => {
                return Err(format!(
                    "{text:?} is not room~epoch~seq~presence_version~typing_version[~lock_version]"
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
            lock_version: number("lock version", locks)?,
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
        let mut query = ["session=", &percent_encode(&self.session)].concat();
        if let Some(wait) = self.wait_ms {
            query.push_str("&wait=");
            query.push_str(&decimal(wait));
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
    [
        "/v1/rooms/",
        &percent_encode(room.as_str()),
        "/events?after=",
        &decimal(after),
        "&limit=",
        &decimal(limit),
    ]
    .concat()
}

/// Percent-encodes a URL path segment or query value (room names may hold `:`, `/`, `@`).
pub fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
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
