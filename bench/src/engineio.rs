//! Engine.IO v4 and Socket.IO v5 packets as the load generator speaks them over a WebSocket
//! (`/socket.io/?EIO=4&transport=websocket`), one packet per text message. This module is the
//! only place in the generator that knows their text shape.
//!
//! Only what a benchmark client needs: the handshake (`0{...}` open, `40` connect, `40{...}`
//! connected), heartbeats (`2` ping answered by `3` pong) and events (`42["name",...]`). No
//! binary attachments, no acknowledgements, no namespaces other than `/`.

use serde_json::Value;

/// The WebSocket path of an Engine.IO v4 server (socket.io 4 and socketioxide).
pub const WEBSOCKET_PATH: &str = "/socket.io/?EIO=4&transport=websocket";

/// A packet received from the server, decoded.
#[derive(Clone, Debug, PartialEq)]
pub enum Incoming {
    /// Engine.IO `open` (`0{...}`): the session id and the server's ping interval.
    Open {
        /// The Engine.IO session id.
        sid: String,
        /// How often the server pings, in milliseconds.
        ping_interval_ms: u64,
    },
    /// Engine.IO `ping` (`2`): must be answered with [`PONG`].
    Ping,
    /// Socket.IO `CONNECT` to `/` accepted (`40{...}`).
    Connected,
    /// Socket.IO `CONNECT_ERROR` (`44{...}`) with the server's message.
    ConnectError(String),
    /// Socket.IO `EVENT` (`42[...]`): its name and arguments.
    Event {
        /// The event name.
        name: String,
        /// The arguments after the name.
        args: Vec<Value>,
    },
    /// Engine.IO `close` (`1`) or Socket.IO `DISCONNECT` (`41`).
    Closed,
    /// Anything else (upgrade probes, noop, acks).
    Other,
}

/// Why a packet could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DecodeError {}

/// The Engine.IO `pong` answer to a server ping.
pub const PONG: &str = "3";

/// The Socket.IO `CONNECT` to the default namespace, sent after `open`.
pub const CONNECT: &str = "40";

/// Encodes a Socket.IO event `42["name",arg,...]`; each argument is JSON text already.
pub fn encode_event(name: &str, args: &[&str]) -> String {
    let name = Value::from(name).to_string();
    let mut text =
        String::with_capacity(4 + name.len() + args.iter().map(|a| a.len() + 1).sum::<usize>());
    text.push_str("42[");
    text.push_str(&name);
    for arg in args {
        text.push(',');
        text.push_str(arg);
    }
    text.push(']');
    text
}

/// Decodes one packet received as a WebSocket text message.
pub fn decode(text: &str) -> Result<Incoming, DecodeError> {
    let bad = |why: &str| {
        DecodeError(format!(
            "{why}: {:?}",
            text.chars().take(80).collect::<String>()
        ))
    };
    let mut chars = text.chars();
    match chars.next() {
        Some('0') => {
            let open: Value =
                serde_json::from_str(&text[1..]).map_err(|_| bad("open is not JSON"))?;
            let sid = open["sid"]
                .as_str()
                .ok_or_else(|| bad("open without sid"))?
                .to_owned();
            let ping_interval_ms = open["pingInterval"]
                .as_u64()
                .ok_or_else(|| bad("open without pingInterval"))?;
            Ok(Incoming::Open {
                sid,
                ping_interval_ms,
            })
        }
        Some('1') => Ok(Incoming::Closed),
        Some('2') => Ok(Incoming::Ping),
        Some('4') => decode_socketio(&text[1..]).ok_or_else(|| bad("bad socket.io packet")),
        Some('3' | '5' | '6') => Ok(Incoming::Other),
        _ => Err(bad("unknown engine.io packet")),
    }
}

/// Decodes a Socket.IO packet (the Engine.IO `message` payload after its `4`).
fn decode_socketio(packet: &str) -> Option<Incoming> {
    let (kind, rest) = packet.split_at_checked(1)?;
    // A namespace other than `/` would start with `/name,`; the benchmark only uses `/`.
    match kind {
        "0" => Some(Incoming::Connected),
        "1" => Some(Incoming::Closed),
        "4" => {
            let message = serde_json::from_str::<Value>(rest).ok();
            let message = message
                .as_ref()
                .and_then(|v| v["message"].as_str())
                .unwrap_or(rest)
                .to_owned();
            Some(Incoming::ConnectError(message))
        }
        "2" => {
            // An ack id may sit between the type and the array.
            let start = rest.find('[')?;
            let Value::Array(mut items) = serde_json::from_str(&rest[start..]).ok()? else {
                return None;
            };
            if items.is_empty() {
                return None;
            }
            let Value::String(name) = items.remove(0) else {
                return None;
            };
            Some(Incoming::Event { name, args: items })
        }
        _ => Some(Incoming::Other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn packets_decode() {
        fn check(text: &str, expect: Result<Incoming, ()>) {
            assert_eq!(decode(text).map_err(|_| ()), expect, "{text}");
        }
        let event = |name: &str, args: Vec<Value>| {
            Ok(Incoming::Event {
                name: name.into(),
                args,
            })
        };
        check(
            r#"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#,
            Ok(Incoming::Open {
                sid: "lv_VI97HAXpY6yYWAAAC".into(),
                ping_interval_ms: 25000,
            }),
        );
        check(r#"0{"upgrades":[]}"#, Err(()));
        check("0not json", Err(()));
        check("2", Ok(Incoming::Ping));
        check("1", Ok(Incoming::Closed));
        check("6", Ok(Incoming::Other));
        check(
            r#"40{"sid":"wZX3oN0bSVIhsaknAAAI"}"#,
            Ok(Incoming::Connected),
        );
        check("40", Ok(Incoming::Connected));
        check("41", Ok(Incoming::Closed));
        check(
            r#"44{"message":"Not authorized"}"#,
            Ok(Incoming::ConnectError("Not authorized".into())),
        );
        check(
            r#"42["joined","room-1"]"#,
            event("joined", vec![json!("room-1")]),
        );
        check(
            r#"42["msg",{"bench":[3,1234]}]"#,
            event("msg", vec![json!({"bench":[3,1234]})]),
        );
        check(r#"4212["msg",1,2]"#, event("msg", vec![json!(1), json!(2)]));
        check("42[]", Err(()));
        check("42[7]", Err(()));
        check("42 not json", Err(()));
        check("4", Err(()));
        check("", Err(()));
        check("x", Err(()));
    }

    #[test]
    fn events_encode() {
        fn check(name: &str, args: &[&str], expect: &str) {
            assert_eq!(encode_event(name, args), expect);
        }
        check("join", &[r#""room-1""#], r#"42["join","room-1"]"#);
        check(
            "msg",
            &[r#""r""#, r#"{"bench":[1,2]}"#],
            r#"42["msg","r",{"bench":[1,2]}]"#,
        );
        check("ping", &[], r#"42["ping"]"#);
        check(r#"a"b"#, &[], r#"42["a\"b"]"#);
    }

    #[test]
    fn encoded_events_decode_back() {
        let text = encode_event("msg", &[r#""room""#, r#"{"x":[1,"y"]}"#]);
        assert_eq!(
            decode(&text).unwrap(),
            Incoming::Event {
                name: "msg".into(),
                args: vec![json!("room"), json!({"x":[1,"y"]})]
            }
        );
    }
}
