//! The envelope of a multiplexed WebSocket (subprotocol [`WS_MUX_SUBPROTOCOL`]): several
//! logical connections — the tabs of one browser — over one socket. Each text message names
//! the logical connection it belongs to (its *tab*, an id the client picks) and carries one
//! ordinary frame, so a logical connection speaks exactly the `v1` protocol.
//!
//! The envelope is a short prefix, not JSON, so neither side re-encodes a frame to wrap it:
//!
//! | direction | message | meaning |
//! |---|---|---|
//! | client → server | `<tab>+<token>` | open logical connection `tab`, authenticated by `token` |
//! | client → server | `<tab>:<frame>` | a frame of `tab` |
//! | client → server | `<tab>-` | close `tab` |
//! | server → client | `<tab>:<frame>` | a frame to `tab` |
//! | server → client | `<tab>-<code>` | `tab` was closed with WebSocket close code `code` |
//! | server → client | `:<frame>` | an `error` about a message that names no valid tab |
//!
//! A tab id is 1–64 bytes of ASCII letters, digits, `_` and `.` (never `+`, `:` or `-`).

use crate::text::{Message, message_display};

/// The WebSocket subprotocol of a multiplexed socket (`docs/PROTOCOL.md`, "Several tabs on one
/// socket").
pub const WS_MUX_SUBPROTOCOL: &str = "chorus.v1.mux";

/// The most bytes a tab id may have.
pub const MAX_TAB_ID_BYTES: usize = 64;

/// One client message of a multiplexed socket, borrowed from its text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MuxIn<'a> {
    /// `<tab>+<token>`: open a logical connection.
    Open {
        /// The tab id.
        tab: &'a str,
        /// Its token (a JWT), verified as a socket's.
        token: &'a str,
    },
    /// `<tab>:<frame>`: one frame of an open logical connection.
    Frame {
        /// The tab id.
        tab: &'a str,
        /// The frame's JSON text.
        frame: &'a str,
    },
    /// `<tab>-`: close a logical connection.
    Close {
        /// The tab id.
        tab: &'a str,
    },
}

/// Why a multiplexed message was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MuxError {
    /// It does not start with a tab id of 1–64 allowed bytes.
    BadTab,
    /// The tab id is followed by none of `+`, `:`, `-`.
    BadKind,
    /// `<tab>-` followed by something.
    TrailingClose,
}

impl Message for MuxError {
    fn message(&self) -> String {
        match self {
            MuxError::BadTab => {
                "a multiplexed message starts with a tab id of 1-64 letters, digits, '_' or '.'"
            }
            MuxError::BadKind => "a tab id is followed by '+' (open), ':' (frame) or '-' (close)",
            MuxError::TrailingClose => "a close message is the tab id and '-' alone",
        }
        .to_owned()
    }
}

message_display!(MuxError);

impl<'a> MuxIn<'a> {
    /// Reads one client message.
    pub fn parse(text: &'a str) -> Result<MuxIn<'a>, MuxError> {
        let end = text
            .bytes()
            .position(|byte| !is_tab_byte(byte))
            .unwrap_or(text.len());
        if end == 0 || end > MAX_TAB_ID_BYTES {
            return Err(MuxError::BadTab);
        }
        let (tab, rest) = text.split_at(end);
        match rest.as_bytes().first() {
            Some(b'+') => Ok(MuxIn::Open {
                tab,
                token: &rest[1..],
            }),
            Some(b':') => Ok(MuxIn::Frame {
                tab,
                frame: &rest[1..],
            }),
            Some(b'-') if rest.len() == 1 => Ok(MuxIn::Close { tab }),
            Some(b'-') => Err(MuxError::TrailingClose),
            _ => Err(MuxError::BadKind),
        }
    }
}

fn is_tab_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'.'
}

/// The server's message carrying `frame` (JSON text) to `tab` (`""`: the socket as a whole).
pub fn mux_frame(tab: &str, frame: &str) -> String {
    [tab, ":", frame].concat()
}

/// The server's message saying `tab` was closed with close code `code`.
pub fn mux_closed(tab: &str, code: u16) -> String {
    [tab, "-", &crate::text::decimal(code.into())].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_read_as_documented() {
        fn check(text: &str, expect: Result<MuxIn<'_>, MuxError>) {
            assert_eq!(MuxIn::parse(text), expect, "{text:?}");
        }
        check(
            "t1+abc.def",
            Ok(MuxIn::Open {
                tab: "t1",
                token: "abc.def",
            }),
        );
        check(
            r#"a.b_9:{"type":"ping"}"#,
            Ok(MuxIn::Frame {
                tab: "a.b_9",
                frame: r#"{"type":"ping"}"#,
            }),
        );
        check("t1-", Ok(MuxIn::Close { tab: "t1" }));
        check(
            "t1:",
            Ok(MuxIn::Frame {
                tab: "t1",
                frame: "",
            }),
        );
        check("t1-x", Err(MuxError::TrailingClose));
        check(":{}", Err(MuxError::BadTab));
        check("", Err(MuxError::BadTab));
        check("t1", Err(MuxError::BadKind));
        check("t 1:{}", Err(MuxError::BadKind));
        check(
            &["x".repeat(65), ":{}".into()].concat(),
            Err(MuxError::BadTab),
        );
        assert!(MuxIn::parse(&["x".repeat(64), ":{}".into()].concat()).is_ok());
        assert_eq!(mux_frame("t1", "{}"), "t1:{}");
        assert_eq!(mux_closed("t1", 4001), "t1-4001");
    }
}
