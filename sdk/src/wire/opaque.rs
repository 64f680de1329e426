//! Opaque JSON: event bodies and presence metas, kept as the exact text they arrived as.
//!
//! The server stores and forwards a [`Json`] without looking inside. This module must never
//! re-encode or normalize that text (beyond dropping surrounding whitespace): what was published
//! is what is delivered. (The inner text is visible to `wire` only so that `shapes.rs` can read
//! and write it.)

use std::fmt;

use super::json::{self, JsonError};

/// An opaque JSON value (event body, presence meta) kept as its raw text.
///
/// The server never looks inside; it stores and forwards the exact text it was given (without
/// surrounding whitespace).
#[derive(Clone)]
pub struct Json(pub(super) Box<str>);

impl Json {
    /// Parses `text` as one JSON value (any type).
    ///
    /// ```
    /// use chorus_sdk::wire::Json;
    ///
    /// let body = Json::from_text(r#" {"text": "hi"} "#).unwrap();
    /// assert_eq!(body.as_text(), r#"{"text": "hi"}"#); // kept as given, minus outer whitespace
    /// assert!(Json::from_text("{oops").is_err());
    /// ```
    pub fn from_text(text: impl Into<String>) -> Result<Json, JsonError> {
        let text = text.into();
        let raw = json::parse(&text)?.raw;
        Ok(if raw.len() == text.len() {
            Json(text.into_boxed_str())
        } else {
            Json(raw.into())
        })
    }

    /// Serializes any value into opaque JSON.
    #[cfg(feature = "serde")]
    pub fn from_value<T: serde::Serialize + ?Sized>(value: &T) -> Json {
        Json(
            serde_json::to_string(value)
                .expect("a Serialize value always encodes")
                .into_boxed_str(),
        )
    }

    /// JSON `null`.
    pub fn null() -> Json {
        Json("null".into())
    }

    /// An empty JSON list, `[]`.
    pub fn empty_list() -> Json {
        Json("[]".into())
    }

    /// The raw JSON text.
    pub fn as_text(&self) -> &str {
        &self.0
    }

    /// The size of the raw JSON text in bytes (what limits are measured on).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Never true: a JSON value has at least one byte. Present for API symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Decodes the value into a concrete type.
    #[cfg(feature = "serde")]
    pub fn decode<'a, T: serde::Deserialize<'a>>(&'a self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.0)
    }
}

impl PartialEq for Json {
    fn eq(&self, other: &Json) -> bool {
        self.as_text() == other.as_text()
    }
}

impl fmt::Debug for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_text())
    }
}
