//! The checks behind the fuzz targets in `fuzz_targets/`, one function (or module) per target.
//!
//! Each takes what libFuzzer generated and panics when a property does not hold; a panic is
//! what libFuzzer reports as a crash (and keeps the input in `artifacts/`). Run them with
//! `cargo xtask fuzz` (see ARCHITECTURE.md, Testing); the seeds are in `corpus/<target>/`.
//! This crate is never part of the product: it only drives the workspace's crates.

pub mod grants;
pub mod hub;

use chorus_sdk::wire::json::{self, Node, Value, Writer};
use chorus_sdk::wire::{ClientFrame, PollCursor, PollQuery, ServerFrame};

/// `json_codec`: the codec accepts and refuses what `serde_json` does, reads the same values,
/// and writes every string it read as `serde_json` writes it.
pub fn json_codec(text: &str) {
    if let Err(disagreement) = json::oracle::agree(text) {
        panic!("{disagreement}");
    }
    if let Ok(node) = json::parse(text) {
        write_strings_back(&node);
    }
}

fn write_strings_back(node: &Node<'_>) {
    let check = |text: &str| {
        let mut out = Writer::default();
        out.str(text);
        let written = out.finish();
        assert_eq!(
            written,
            serde_json::to_string(text).expect("a string serializes"),
            "written differently from serde_json"
        );
        let read = json::parse(&written).expect("written strings parse");
        assert_eq!(read.str().expect("a string"), text, "read back differently");
    };
    match &node.value {
        Value::String(text) => check(text),
        Value::Array(items) => items.iter().for_each(write_strings_back),
        Value::Object(members) => {
            for (key, value) in members {
                check(key);
                write_strings_back(value);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number => {}
    }
}

/// `client_frame`: decoding never panics; a decoded frame re-encodes to a text that decodes
/// to the same frame and encodes to the same text again. The same for server frames (which
/// the client decodes), and a refusal always has a message.
pub fn client_frame(text: &str) {
    match ClientFrame::decode(text) {
        Ok(frame) => {
            let encoded = frame.encode();
            let again = ClientFrame::decode(&encoded)
                .unwrap_or_else(|err| panic!("{encoded} (from {text:?}) does not decode: {err}"));
            assert_eq!(again, frame, "{encoded} decodes differently");
            assert_eq!(again.encode(), encoded, "encoding is not stable");
        }
        Err(err) => assert!(!err.to_string().is_empty(), "a refusal without a message"),
    }
    match ServerFrame::decode(text) {
        Ok(frame) => {
            let encoded = frame.encode();
            let again = ServerFrame::decode(&encoded)
                .unwrap_or_else(|err| panic!("{encoded} (from {text:?}) does not decode: {err}"));
            assert_eq!(again, frame, "{encoded} decodes differently");
            assert_eq!(again.encode(), encoded, "encoding is not stable");
        }
        Err(err) => assert!(!err.to_string().is_empty(), "a refusal without a message"),
    }
}

/// `poll_query`: decoding a query string (and one cursor) never panics; whatever decodes
/// encodes to a query that decodes to the same value. Refusals are sentences.
pub fn poll_query(text: &str) {
    match PollQuery::decode(text) {
        Ok(query) => {
            let encoded = query.encode();
            let again = PollQuery::decode(&encoded)
                .unwrap_or_else(|err| panic!("{encoded} (from {text:?}) does not decode: {err}"));
            assert_eq!(again, query, "{encoded} decodes differently");
            assert_eq!(again.encode(), encoded, "encoding is not stable");
        }
        Err(err) => assert!(!err.is_empty(), "a refusal without a message"),
    }
    match PollCursor::decode(text) {
        Ok(cursor) => {
            let encoded = cursor.encode();
            let again = PollCursor::decode(&encoded)
                .unwrap_or_else(|err| panic!("{encoded} (from {text:?}) does not decode: {err}"));
            assert_eq!(again, cursor, "{encoded} decodes differently");
        }
        Err(err) => assert!(!err.is_empty(), "a refusal without a message"),
    }
}
