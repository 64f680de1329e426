//! The numbers shared between Rust and the JavaScript beside it: the operations of the npm
//! package's `WasmClient.call` (`pkg/src/chorus.js`) and the report kinds of the browser I/O
//! (`sdk/src/web/platform.js`).
//!
//! They live here, outside the wasm32-only `web` module, so a native test can check that the
//! JavaScript files declare exactly these numbers (`const NAME = N;`). Nothing here does
//! anything; it must only ever hold plain constants.

/// The operations of `WasmClient::call`: `(room, arg)` each takes, and its `ok` value.
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
    fn platform_js_declares_the_same_report_kinds() {
        let source = include_str!("web/platform.js");
        check("sdk/src/web/platform.js", source, super::report::ALL);
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
