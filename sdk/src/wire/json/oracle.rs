//! `serde_json` as the oracle for [`parse`](super::parse): the one comparison the codec's
//! tests and the `json_codec` fuzz target (`fuzz/`) both make.
//!
//! Only with feature `serde` (and in tests): the browser build never carries it.

use serde_json::Value as Oracle;

use super::{Node, Value, parse};

/// The tree as a `serde_json` value, for comparing with `serde_json`'s reading of the same text.
pub fn to_serde_json(node: &Node<'_>) -> Oracle {
    match &node.value {
        Value::Null => Oracle::Null,
        Value::Bool(value) => Oracle::Bool(*value),
        // Read alone, a number node's text must be a number serde_json reads too; when it is
        // not, a value no JSON number equals makes the comparison fail and say so.
        Value::Number => serde_json::from_str(node.raw)
            .unwrap_or_else(|_| Oracle::String(format!("<not a number: {}>", node.raw))),
        Value::String(text) => Oracle::String(text.to_string()),
        Value::Array(items) => Oracle::Array(items.iter().map(to_serde_json).collect()),
        Value::Object(members) => {
            let mut map = serde_json::Map::new();
            for (key, value) in members {
                // Like serde_json, the tree keeps repeated keys; `Fields` reads the first.
                map.insert(key.to_string(), to_serde_json(value));
            }
            Oracle::Object(map)
        }
    }
}

/// Whether [`parse`] and `serde_json` agree on whether `text` is JSON and on what it says
/// (and the tree's `raw` is the text without its surrounding whitespace); the disagreement,
/// described, when they do not.
///
/// The two allowed differences: RFC 8259 leaves number range to implementations, and
/// `serde_json` refuses numbers beyond `f64` where the tree keeps their text (reading one as an
/// integer refuses it); and a `\u` escape of a lone UTF-16 surrogate, which `serde_json`
/// refuses, reads as U+FFFD (as the text with `\uFFFD` in its place, which both must read
/// alike).
pub fn agree(text: &str) -> Result<(), String> {
    let ours = parse(text);
    let mut theirs = serde_json::from_str::<Oracle>(text);
    if let (Ok(_), Err(_)) = (&ours, &theirs)
        && let Some(replaced) = lone_surrogates_replaced(text)
    {
        theirs = serde_json::from_str::<Oracle>(&replaced);
    }
    match (&ours, &theirs) {
        (Ok(node), Ok(value)) => {
            let read = to_serde_json(node);
            if &read != value {
                return Err(format!(
                    "values differ for {text:?}: ours {read}, serde_json {value}"
                ));
            }
            let trimmed = text.trim_matches([' ', '\n', '\r', '\t']);
            if node.raw != trimmed {
                return Err(format!("raw of {text:?} is {:?}", node.raw));
            }
            Ok(())
        }
        (Err(_), Err(_)) => Ok(()),
        (Ok(_), Err(err)) if err.to_string().starts_with("number out of range") => Ok(()),
        _ => Err(format!(
            "for {text:?}: ours {ours:?}, serde_json {theirs:?}"
        )),
    }
}

/// `text` with every `\u` escape of a lone surrogate replaced by `\uFFFD`; `None` when it
/// has none. (Backslashes only occur in strings of a text [`parse`] accepted.)
fn lone_surrogates_replaced(text: &str) -> Option<String> {
    let escape = |at: usize| {
        let hex = text.get(at..at + 6)?.strip_prefix("\\u")?;
        u16::from_str_radix(hex, 16).ok()
    };
    let surrogate = |unit: u16| (0xd800..0xe000).contains(&unit);
    let mut out = String::with_capacity(text.len());
    let (mut at, mut copied, mut replaced) = (0, 0, false);
    while let Some(offset) = text[at..].find('\\') {
        at += offset;
        match escape(at) {
            Some(0xd800..0xdc00)
                if escape(at + 6).is_some_and(|low| (0xdc00..0xe000).contains(&low)) =>
            {
                // A pair: one character, which serde_json reads too.
                at += 12;
            }
            Some(unit) if surrogate(unit) => {
                out.push_str(&text[copied..at]);
                out.push_str("\\uFFFD");
                at += 6;
                copied = at;
                replaced = true;
            }
            _ => at += 1 + text[at + 1..].chars().next().map_or(0, char::len_utf8),
        }
    }
    out.push_str(&text[copied..]);
    replaced.then_some(out)
}
