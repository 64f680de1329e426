//! The numbers shared between Rust and the JavaScript beside it: the operations of the npm
//! package's `WasmClient.call` (`pkg/src/chorus.js`) and the report kinds of the browser I/O
//! (`sdk/src/web/platform.js`).
//!
//! They live here, outside the wasm32-only `web` module, so a native test can check that the
//! JavaScript files declare exactly these numbers (`const NAME = N;`). Nothing here does
//! anything; it must only ever hold plain constants.

/// The operations of `WasmClient::call`: `(room, arg)` each takes, and its `ok` value. The
/// lock operations exist only in the module built with the `locks` feature (the package's locks
/// entry, `pkg/src/locks.js`); the core module answers them `unknown_op`.
pub mod op {
    /// Join `room` with presence meta `arg` (JSON): `null`.
    pub const JOIN: u32 = 0;
    /// Leave `room`: `null`.
    pub const LEAVE: u32 = 1;
    /// Publish body `arg` (JSON) durably: the event id.
    pub const PUBLISH: u32 = 2;
    /// Publish body `arg` (JSON) ephemerally: the event id.
    pub const EPHEMERAL: u32 = 3;
    /// Typing in `room` on (`arg` is `true`) or off: `null`.
    pub const TYPING: u32 = 4;
    /// Replace this tab's presence meta in `room` with `arg` (JSON): `null`.
    pub const SET_PRESENCE: u32 = 5;
    /// Who is in `room`: the presence list (`[]` when not joined).
    pub const PRESENCE: u32 = 6;
    /// A fresh token `arg` (`room` ignored): `null`.
    pub const TOKEN: u32 = 7;
    /// Close the client for good (arguments ignored): `null`.
    pub const CLOSE: u32 = 8;
    /// Replace this tab's live cursor in `room` with `arg` (JSON; `null` removes it): `null`.
    pub const SET_CURSOR: u32 = 9;
    /// Send the stream step `arg` (JSON: a `stream` frame's `stream` object) in `room`: `null`.
    pub const STREAM: u32 = 10;

    /// Every operation by the name the JavaScript side gives it.
    pub const ALL: &[(&str, u32)] = &[
        ("JOIN", JOIN),
        ("LEAVE", LEAVE),
        ("PUBLISH", PUBLISH),
        ("EPHEMERAL", EPHEMERAL),
        ("TYPING", TYPING),
        ("SET_PRESENCE", SET_PRESENCE),
        ("PRESENCE", PRESENCE),
        ("TOKEN", TOKEN),
        ("CLOSE", CLOSE),
        ("SET_CURSOR", SET_CURSOR),
        ("STREAM", STREAM),
    ];

    /// Acquire (or, with `token`, renew) a lock in `room`; `arg` is JSON
    /// `{"name","ttl_ms","token"?,"auto"?}` (`auto`: renew it at half its TTL): the request id,
    /// answered by a `lockDone` or `lockFailed` event. Only in the `locks` build.
    pub const LOCK: u32 = 11;
    /// Release the grant in `room` of `arg`'s `{"name","token"}`: the request id, answered alike.
    pub const UNLOCK: u32 = 12;
    /// Publish `arg`'s `body` durably only while `{"name","token"}`, `arg`'s `if_lock`, is
    /// still the publisher's grant: the event id.
    pub const PUBLISH_FENCED: u32 = 13;
    /// The locks held in `room`, as last reported by the server: a list of grants.
    pub const LOCKS: u32 = 14;

    /// The lock operations by the name `pkg/src/locks.js` gives them.
    pub const LOCK_OPS: &[(&str, u32)] = &[
        ("LOCK", LOCK),
        ("UNLOCK", UNLOCK),
        ("PUBLISH_FENCED", PUBLISH_FENCED),
        ("LOCKS", LOCKS),
    ];
}

/// The codes of a `ChorusError` that come from the client rather than the server (the server's
/// are [`crate::wire::ErrorCode`]); `pkg/chorus.d.ts`'s `ErrorCode` is the union of both (a
/// test checks).
pub mod client_code {
    /// The room name is not a valid one.
    pub const INVALID_ROOM: &str = "invalid_room";
    /// A body or meta that cannot become JSON (made by `chorus.js` or refused by the core).
    pub const INVALID_JSON: &str = "invalid_json";
    /// A publish before `join`.
    pub const NOT_JOINED: &str = "not_joined";
    /// The outbox is full.
    pub const OUTBOX_FULL: &str = "outbox_full";
    /// An ephemeral publish while disconnected (or, made by `chorus.js`, a history request
    /// that got no answer).
    pub const OFFLINE: &str = "offline";
    /// A lock operation's name, TTL or token of the wrong shape (the locks build only).
    pub const INVALID_LOCK: &str = "invalid_lock";
    /// The client was closed (also what `close()` rejects waiting publishes with).
    pub const CLOSED: &str = "closed";
    /// The browser has no `crypto.getRandomValues` (made by `chorus.js`).
    pub const NO_RANDOMNESS: &str = "no_randomness";
    /// A publish not acknowledged within the outbox's time to live (made by `chorus.js`).
    pub const EXPIRED: &str = "expired";

    /// Every client code.
    pub const ALL: &[&str] = &[
        INVALID_ROOM,
        INVALID_JSON,
        NOT_JOINED,
        OUTBOX_FULL,
        INVALID_LOCK,
        OFFLINE,
        CLOSED,
        NO_RANDOMNESS,
        EXPIRED,
    ];
}

/// What `platform.js` reports through its one callback `(kind, id, number, text)`: the kinds.
pub mod report {
    /// The timer fired.
    pub const TIMER: u32 = 0;
    /// Socket `id` opened.
    pub const OPEN: u32 = 1;
    /// Socket `id` received `text`.
    pub const MESSAGE: u32 = 2;
    /// Socket `id` closed with code `number`.
    pub const CLOSED: u32 = 3;
    /// Request `id` answered with status `number` and body `text` (status 0: it failed).
    pub const HTTP: u32 = 4;
    /// The network went online (`number` 1) or offline (0).
    pub const NETWORK: u32 = 5;
    /// The page became visible (1) or hidden (0).
    pub const VISIBLE: u32 = 6;

    /// Every report kind by the name `platform.js` gives it.
    pub const ALL: &[(&str, u32)] = &[
        ("TIMER", TIMER),
        ("OPEN", OPEN),
        ("MESSAGE", MESSAGE),
        ("CLOSED", CLOSED),
        ("HTTP", HTTP),
        ("NETWORK", NETWORK),
        ("VISIBLE", VISIBLE),
    ];
}

#[cfg(test)]
mod tests {
    /// The `const NAME = N;` declarations of a JavaScript file whose value is a number.
    fn numeric_consts(source: &str) -> Vec<(String, u32)> {
        let mut found = Vec::new();
        for line in source.lines() {
            let Some(rest) = line.trim_start().strip_prefix("const ") else {
                continue;
            };
            let Some((name, value)) = rest.split_once(" = ") else {
                continue;
            };
            let value = value.split(';').next().unwrap_or("");
            if let Ok(number) = value.trim().parse::<u32>() {
                found.push((name.trim().to_owned(), number));
            }
        }
        found
    }

    /// Both directions: every Rust number is declared alike in JS, and JS declares no other.
    fn check(file: &str, source: &str, rust: &[(&str, u32)]) {
        let js = numeric_consts(source);
        let mut expected: Vec<(String, u32)> = rust
            .iter()
            .map(|(name, value)| ((*name).to_owned(), *value))
            .collect();
        expected.sort();
        let mut actual = js;
        actual.sort();
        assert_eq!(actual, expected, "{file} declares other numbers than Rust");
    }

    #[test]
    fn chorus_js_declares_the_same_operations() {
        let source = include_str!("../../pkg/src/chorus.js");
        check("pkg/src/chorus.js", source, super::op::ALL);
    }

    #[test]
    fn locks_js_declares_the_lock_operations() {
        let source = include_str!("../../pkg/src/locks.js");
        check("pkg/src/locks.js", source, super::op::LOCK_OPS);
    }

    #[test]
    fn platform_js_declares_the_same_report_kinds() {
        let source = include_str!("web/platform.js");
        check("sdk/src/web/platform.js", source, super::report::ALL);
    }

    /// The string literals of `export type ErrorCode = | "a" | "b" ...;` in the typings.
    fn error_code_union(typings: &str) -> Vec<String> {
        let start = typings
            .find("export type ErrorCode =")
            .expect("chorus.d.ts declares ErrorCode");
        let rest = &typings[start..];
        let union = &rest[..rest.find(';').expect("the union ends with ;")];
        union
            .split('"')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn the_typings_error_code_union_is_the_client_and_server_codes() {
        let typings = include_str!("../../pkg/chorus.d.ts");
        let mut union = error_code_union(typings);
        union.sort();
        let mut expected: Vec<String> = crate::wire::ErrorCode::ALL
            .iter()
            .map(|code| code.as_str().to_owned())
            .chain(
                super::client_code::ALL
                    .iter()
                    .map(|code| (*code).to_owned()),
            )
            .collect();
        expected.sort();
        expected.dedup();
        assert_eq!(
            union, expected,
            "pkg/chorus.d.ts ErrorCode differs from Rust's codes"
        );
    }

    #[test]
    fn the_union_reader_sees_each_code() {
        let typings =
            "x\nexport type ErrorCode =\n  | \"a\" // one\n  | \"b_c\";\nexport type Y = \"z\";";
        assert_eq!(
            error_code_union(typings),
            vec!["a".to_owned(), "b_c".to_owned()]
        );
    }

    #[test]
    fn the_reader_sees_a_changed_number() {
        let changed = "const JOIN = 0;\nconst LEAVE = 7;\nconst X = \"no\";";
        assert_eq!(
            super::tests::numeric_consts(changed),
            vec![("JOIN".to_owned(), 0), ("LEAVE".to_owned(), 7)]
        );
    }
}
