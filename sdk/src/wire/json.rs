//! The JSON reader and writer behind every wire type.
//!
//! Chorus needs a small slice of JSON: objects with known fields, strings, unsigned integers,
//! booleans, lists, and opaque values (event bodies, presence metas) kept as their exact text.
//! This module does exactly that without generic (de)serializer machinery, so the browser
//! build carries one parser instead of one generated decoder per type (serde_json's per-type
//! code was a third of the SDK's wasm). Native builds use it too: there is one codec.
//!
//! - [`parse`] reads RFC 8259 JSON into a [`Node`] tree that borrows from the text; every node
//!   keeps the exact text it was read from (`raw`), which is how opaque values are captured.
//!   It refuses trailing characters, control characters in strings, bad escapes and nesting
//!   deeper than [`MAX_DEPTH`]. Lone UTF-16 surrogates in `\u` escapes read as U+FFFD.
//! - [`Writer`] and [`ObjectWriter`] write compact JSON with the escapes `serde_json` uses.
//! - [`Wire`] is implemented by every type with a wire shape; [`Wire::read`] errors name the
//!   field they are about (``field `room`: ...``), so `bad_frame` messages say what is wrong.

use crate::text::concat;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

/// The deepest nesting of arrays and objects [`parse`] accepts, counting the outermost value:
/// a frame is an object at level 1, so what it carries may nest 127 levels more.
pub const MAX_DEPTH: usize = 128;

/// Why a text is not the JSON a type expects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonError(Box<str>);

impl JsonError {
    /// An error with this explanation.
    pub fn new(message: impl Into<String>) -> JsonError {
        JsonError(message.into().into_boxed_str())
    }

    /// The explanation.
    pub fn into_message(self) -> String {
        self.0.into()
    }

    /// The same error, said to be about field `key`.
    pub fn in_field(self, key: &str) -> JsonError {
        JsonError::new(concat(&["field `", key, "`: ", &self.0]))
    }
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for JsonError {}

/// One parsed JSON value and the exact text it was read from.
#[derive(Debug)]
pub struct Node<'a> {
    /// The value's text, without surrounding whitespace.
    pub raw: &'a str,
    /// The value.
    pub value: Value<'a>,
}

/// A parsed JSON value. Numbers stay text (see [`Node::raw`]) until a type asks for one.
#[derive(Debug)]
pub enum Value<'a> {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number; its text is the node's `raw`.
    Number,
    /// A string, unescaped.
    String(Cow<'a, str>),
    /// An array.
    Array(Vec<Node<'a>>),
    /// An object's members in text order.
    Object(Vec<(Cow<'a, str>, Node<'a>)>),
}

impl Value<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        }
    }
}

impl<'a> Node<'a> {
    /// An error saying this node is not what was `expected`.
    pub fn unexpected(&self, expected: &str) -> JsonError {
        JsonError::new(concat(&[
            "expected ",
            expected,
            ", found ",
            self.value.kind(),
        ]))
    }

    /// The node as a string.
    pub fn str(&self) -> Result<&str, JsonError> {
        match &self.value {
            Value::String(text) => Ok(text),
            _ => Err(self.unexpected("a string")),
        }
    }

    /// The node as a non-negative integer (no fraction, no exponent).
    pub fn u64(&self) -> Result<u64, JsonError> {
        match self.value {
            Value::Number => parse_u64(self.raw).ok_or_else(|| {
                JsonError::new(concat(&["expected an unsigned integer, found ", self.raw]))
            }),
            _ => Err(self.unexpected("an unsigned integer")),
        }
    }

    /// The node as a number of type `T`, parsed from its text; `expected` names `T` in errors.
    fn number<T: std::str::FromStr>(&self, expected: &str) -> Result<T, JsonError> {
        match self.value {
            Value::Number => self.raw.parse().map_err(|_| {
                JsonError::new(concat(&["expected ", expected, ", found ", self.raw]))
            }),
            _ => Err(self.unexpected(expected)),
        }
    }

    /// The node as a boolean.
    pub fn bool(&self) -> Result<bool, JsonError> {
        match self.value {
            Value::Bool(value) => Ok(value),
            _ => Err(self.unexpected("a boolean")),
        }
    }

    /// The node as an array's items.
    pub fn array(&self) -> Result<&[Node<'a>], JsonError> {
        match &self.value {
            Value::Array(items) => Ok(items),
            _ => Err(self.unexpected("an array")),
        }
    }

    /// The node as an object, for reading fields.
    pub fn object(&self) -> Result<Fields<'a, '_>, JsonError> {
        match &self.value {
            Value::Object(members) => Ok(Fields { members }),
            _ => Err(self.unexpected("an object")),
        }
    }
}

/// An object's members, read by field name. Unknown fields are ignored; when a field repeats,
/// the first one counts.
#[derive(Clone, Copy, Debug)]
pub struct Fields<'a, 'n> {
    members: &'n [(Cow<'a, str>, Node<'a>)],
}

impl<'a, 'n> Fields<'a, 'n> {
    /// The field's node, if present (`null` counts as present).
    pub fn node(&self, key: &str) -> Option<&'n Node<'a>> {
        self.members
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, node)| node)
    }

    /// A field that must be present (struct readers use [`FieldReader`]).
    pub fn get<T: Wire>(&self, key: &str) -> Result<T, JsonError> {
        T::read(self.present(key)?).map_err(|err| err.in_field(key))
    }

    // The parts of reading a field that do not depend on its type, kept out of line: the
    // readers are instantiated for every field type, and this code ships in the browser SDK.

    #[inline(never)]
    fn present(&self, key: &str) -> Result<&'n Node<'a>, JsonError> {
        self.node(key)
            .ok_or_else(|| JsonError::new(concat(&["missing field `", key, "`"])))
    }

    #[inline(never)]
    fn non_null(&self, key: &str) -> Option<&'n Node<'a>> {
        self.node(key)
            .filter(|node| !matches!(node.value, Value::Null))
    }
}

/// A value that stands in for a field a struct reader could not read (see [`FieldReader`]).
/// It is never seen: the reader then returns the error, not the struct.
pub trait StandIn {
    /// The stand-in value.
    fn stand_in() -> Self;
}

/// Reads a struct's fields straight through: each read gives a value (a stand-in where the
/// field is wrong), the first error is kept, and [`FieldReader::finish`] returns it instead of
/// the struct. With no early return per field, a struct's reader has no per-field cleanup
/// paths, which made the readers about half as large (this code ships in the browser SDK).
#[derive(Debug)]
pub struct FieldReader<'a, 'n> {
    fields: Fields<'a, 'n>,
    error: Option<JsonError>,
}

impl<'a, 'n> FieldReader<'a, 'n> {
    /// Starts reading `node`, which must be an object.
    pub fn new(node: &'n Node<'a>) -> Result<FieldReader<'a, 'n>, JsonError> {
        Ok(FieldReader {
            fields: node.object()?,
            error: None,
        })
    }

    /// A field that must be present.
    pub fn get<T: Wire + StandIn>(&mut self, key: &str) -> T {
        match self.fields.present(key) {
            Ok(node) => self.value(node, key),
            Err(err) => self.fail(err),
        }
    }

    /// A field that may be absent or `null`.
    pub fn opt<T: Wire + StandIn>(&mut self, key: &str) -> Option<T> {
        let node = self.fields.non_null(key)?;
        Some(self.value(node, key))
    }

    /// A field that takes `default` when absent or `null`.
    pub fn or<T: Wire + StandIn>(&mut self, key: &str, default: T) -> T {
        self.opt(key).unwrap_or(default)
    }

    /// A list field that reads as empty when absent or `null`.
    pub fn list<T: Wire + StandIn>(&mut self, key: &str) -> Vec<T> {
        self.opt(key).unwrap_or_default()
    }

    /// The first error, if any field was wrong (then the struct read is not to be used).
    #[inline(never)]
    pub fn finish(self) -> Option<JsonError> {
        self.error
    }

    /// The field's value read from its node (a stand-in if it is wrong).
    #[inline(never)]
    fn value<T: Wire + StandIn>(&mut self, node: &Node<'_>, key: &str) -> T {
        match T::read(node) {
            Ok(value) => value,
            Err(err) => self.fail(err.in_field(key)),
        }
    }

    /// Keeps the first error; returns a stand-in for the field.
    fn fail<T: StandIn>(&mut self, err: JsonError) -> T {
        self.keep(err);
        T::stand_in()
    }

    #[inline(never)]
    fn keep(&mut self, err: JsonError) {
        self.error.get_or_insert(err);
    }
}

macro_rules! stand_ins {
    ($($ty:ty => $value:expr),* $(,)?) => {
        $( impl StandIn for $ty {
            fn stand_in() -> Self {
                $value
            }
        } )*
    };
}
pub(crate) use stand_ins;

stand_ins!(u64 => 0, bool => false, String => String::new(), f64 => 0.0);

impl<T> StandIn for Vec<T> {
    fn stand_in() -> Self {
        Vec::new()
    }
}

impl<T> StandIn for Option<T> {
    fn stand_in() -> Self {
        None
    }
}

impl<T> StandIn for BTreeMap<String, T> {
    fn stand_in() -> Self {
        BTreeMap::new()
    }
}

/// Decimal digits (at least one, nothing else) as a `u64`; `None` if they overflow. Used for
/// every integer the SDK reads instead of `str::parse`, whose generic code is larger (this
/// ships in the browser SDK).
pub fn parse_u64(text: &str) -> Option<u64> {
    if text.is_empty() {
        return None;
    }
    text.bytes().try_fold(0u64, |n, b| match b {
        b'0'..=b'9' => n.checked_mul(10)?.checked_add(u64::from(b - b'0')),
        _ => None,
    })
}

/// A type with a JSON shape on the wire.
pub trait Wire: Sized {
    /// Appends the value's JSON to `out`.
    fn write(&self, out: &mut Writer);
    /// Reads the value from a parsed node.
    fn read(node: &Node<'_>) -> Result<Self, JsonError>;
}

/// A wire type that is a JSON object; frames write their `"type"` before these fields. (Its
/// [`Wire::read`] reads the object: one function per type, shared by frames and nested values.)
pub trait WireObject: Wire {
    /// Writes the object's fields.
    fn write_fields(&self, out: &mut ObjectWriter<'_>);
}

/// Encodes a value as compact JSON text.
pub fn to_string<T: Wire>(value: &T) -> String {
    let mut out = Writer::default();
    value.write(&mut out);
    out.finish()
}

/// Decodes a value from JSON text.
pub fn from_str<T: Wire>(text: &str) -> Result<T, JsonError> {
    T::read(&parse(text)?)
}

impl Wire for u64 {
    fn write(&self, out: &mut Writer) {
        out.u64(*self);
    }
    fn read(node: &Node<'_>) -> Result<Self, JsonError> {
        node.u64()
    }
}

impl Wire for bool {
    fn write(&self, out: &mut Writer) {
        out.raw(if *self { "true" } else { "false" });
    }
    fn read(node: &Node<'_>) -> Result<Self, JsonError> {
        node.bool()
    }
}

impl Wire for String {
    fn write(&self, out: &mut Writer) {
        out.str(self);
    }
    fn read(node: &Node<'_>) -> Result<Self, JsonError> {
        node.str().map(str::to_owned)
    }
}

impl Wire for f64 {
    fn write(&self, out: &mut Writer) {
        if self.is_finite() {
            out.raw(&self.to_string());
        } else {
            out.raw("null");
        }
    }
    fn read(node: &Node<'_>) -> Result<Self, JsonError> {
        node.number("a number")
    }
}

impl<T: Wire> Wire for Vec<T> {
    fn write(&self, out: &mut Writer) {
        out.list(self);
    }
    fn read(node: &Node<'_>) -> Result<Self, JsonError> {
        // A loop rather than `collect`, growing as it goes rather than `with_capacity`, and
        // one way out after the loop rather than a `?` per item: a smaller function per item
        // type (this code ships in the browser SDK; lists on the wire are short, so the few
        // extra allocations cost little).
        let items = node.array()?;
        let mut out = Vec::new();
        let mut error = None;
        for item in items {
            match T::read(item) {
                Ok(value) => out.push(value),
                Err(err) => {
                    error = Some(err);
                    break;
                }
            }
        }
        match error {
            None => Ok(out),
            Some(err) => Err(err),
        }
    }
}

/// An object whose keys are free text (e.g. a token's room grants), in key order.
impl<T: Wire> Wire for BTreeMap<String, T> {
    fn write(&self, out: &mut Writer) {
        let mut object = out.object();
        for (key, value) in self {
            object.field(key, value);
        }
        object.end();
    }
    fn read(node: &Node<'_>) -> Result<Self, JsonError> {
        let Value::Object(members) = &node.value else {
            return Err(node.unexpected("an object"));
        };
        let mut map = BTreeMap::new();
        for (key, value) in members {
            let value = T::read(value).map_err(|err| err.in_field(key))?;
            // When a key repeats, the first one counts (as for `Fields`).
            map.entry(key.to_string()).or_insert(value);
        }
        Ok(map)
    }
}

impl<T: Wire> Wire for Option<T> {
    fn write(&self, out: &mut Writer) {
        match self {
            Some(value) => value.write(out),
            None => out.raw("null"),
        }
    }
    fn read(node: &Node<'_>) -> Result<Self, JsonError> {
        match node.value {
            Value::Null => Ok(None),
            _ => T::read(node).map(Some),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

/// Compact JSON text being written.
#[derive(Debug, Default)]
pub struct Writer(String);

impl Writer {
    /// The text written so far.
    pub fn finish(self) -> String {
        self.0
    }

    /// Appends text that is already JSON.
    pub fn raw(&mut self, json: &str) {
        self.0.push_str(json);
    }

    /// Appends a string literal.
    pub fn str(&mut self, text: &str) {
        let out = &mut self.0;
        out.reserve(text.len() + 2);
        out.push('"');
        let mut clean = 0;
        for (at, byte) in text.bytes().enumerate() {
            let escape = match byte {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0x08 => "\\b",
                0x0c => "\\f",
                0..=0x1f => "",
                _ => continue,
            };
            out.push_str(&text[clean..at]);
            clean = at + 1;
            if escape.is_empty() {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\u00");
                out.push(char::from(HEX[usize::from(byte >> 4)]));
                out.push(char::from(HEX[usize::from(byte & 15)]));
            } else {
                out.push_str(escape);
            }
        }
        out.push_str(&text[clean..]);
        out.push('"');
    }

    /// Appends an unsigned integer.
    pub fn u64(&mut self, value: u64) {
        crate::text::push_decimal(&mut self.0, value);
    }

    /// Appends an array.
    pub fn list<T: Wire>(&mut self, items: &[T]) {
        self.0.push('[');
        for (n, item) in items.iter().enumerate() {
            if n > 0 {
                self.0.push(',');
            }
            item.write(self);
        }
        self.0.push(']');
    }

    /// Starts an object; call [`ObjectWriter::end`] to close it.
    pub fn object(&mut self) -> ObjectWriter<'_> {
        self.0.push('{');
        ObjectWriter {
            out: self,
            empty: true,
        }
    }
}

/// An object being written field by field.
#[derive(Debug)]
pub struct ObjectWriter<'w> {
    out: &'w mut Writer,
    empty: bool,
}

impl ObjectWriter<'_> {
    /// Writes the next key and returns the writer for its value.
    pub fn key(&mut self, key: &str) -> &mut Writer {
        if !self.empty {
            self.out.0.push(',');
        }
        self.empty = false;
        self.out.str(key);
        self.out.0.push(':');
        self.out
    }

    /// Writes a field.
    pub fn field<T: Wire>(&mut self, key: &str, value: &T) -> &mut Self {
        value.write(self.key(key));
        self
    }

    /// Writes a field unless it is `None`.
    pub fn opt<T: Wire>(&mut self, key: &str, value: &Option<T>) -> &mut Self {
        if let Some(value) = value {
            self.field(key, value);
        }
        self
    }

    /// Writes a list field unless it is empty.
    pub fn list<T: Wire>(&mut self, key: &str, value: &Vec<T>) -> &mut Self {
        if !value.is_empty() {
            self.field(key, value);
        }
        self
    }

    /// Writes a string field.
    pub fn str(&mut self, key: &str, value: &str) -> &mut Self {
        self.key(key).str(value);
        self
    }

    /// Closes the object.
    pub fn end(self) {
        self.out.0.push('}');
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

/// Parses one JSON value (any type), surrounded by optional whitespace.
pub fn parse(text: &str) -> Result<Node<'_>, JsonError> {
    parse_enveloped(text, 0)
}

/// Parses like [`parse`], allowing `envelope_levels` more levels of nesting: for a document
/// that carries frames inside objects and lists of its own (a polling batch), so that each
/// frame may nest exactly as deep as it may on its own.
pub fn parse_enveloped(text: &str, envelope_levels: usize) -> Result<Node<'_>, JsonError> {
    let mut parser = Parser {
        text,
        bytes: text.as_bytes(),
        at: 0,
        depth: 0,
        max_depth: MAX_DEPTH + envelope_levels,
    };
    let node = parser.value()?;
    parser.skip_whitespace();
    if parser.at != text.len() {
        return Err(parser.error("trailing characters"));
    }
    Ok(node)
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
    depth: usize,
    max_depth: usize,
}

impl<'a> Parser<'a> {
    fn error(&self, what: &str) -> JsonError {
        let at = crate::text::decimal(self.at as u64);
        JsonError::new(concat(&[what, " at byte ", &at]))
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.at += 1;
        }
    }

    fn expect(&mut self, byte: u8, what: &str) -> Result<(), JsonError> {
        self.skip_whitespace();
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.error(what))
        }
    }

    fn value(&mut self) -> Result<Node<'a>, JsonError> {
        self.skip_whitespace();
        let start = self.at;
        let value = match self.peek() {
            Some(b'{') => self.nested(Parser::object)?,
            Some(b'[') => self.nested(Parser::array)?,
            Some(b'"') => Value::String(self.string()?),
            Some(b't') => self.literal("true", Value::Bool(true))?,
            Some(b'f') => self.literal("false", Value::Bool(false))?,
            Some(b'n') => self.literal("null", Value::Null)?,
            Some(b'-' | b'0'..=b'9') => self.number()?,
            None => return Err(self.error("unexpected end of JSON")),
            Some(_) => return Err(self.error("expected a JSON value")),
        };
        Ok(Node {
            raw: &self.text[start..self.at],
            value,
        })
    }

    fn nested(
        &mut self,
        read: fn(&mut Parser<'a>) -> Result<Value<'a>, JsonError>,
    ) -> Result<Value<'a>, JsonError> {
        if self.depth == self.max_depth {
            return Err(self.error("nesting too deep"));
        }
        self.depth += 1;
        self.at += 1; // the opening bracket
        let value = read(self);
        self.depth -= 1;
        value
    }

    /// Reads comma-separated items up to the `close` bracket, each with `item`.
    fn items(
        &mut self,
        close: u8,
        mut item: impl FnMut(&mut Parser<'a>) -> Result<(), JsonError>,
    ) -> Result<(), JsonError> {
        self.skip_whitespace();
        if self.peek() == Some(close) {
            self.at += 1;
            return Ok(());
        }
        loop {
            item(self)?;
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(byte) if byte == close => {
                    self.at += 1;
                    return Ok(());
                }
                _ if close == b']' => return Err(self.error("expected `,` or `]`")),
                _ => return Err(self.error("expected `,` or `}`")),
            }
        }
    }

    fn object(&mut self) -> Result<Value<'a>, JsonError> {
        let mut members = Vec::new();
        self.items(b'}', |parser| {
            parser.skip_whitespace();
            if parser.peek() != Some(b'"') {
                return Err(parser.error("expected a string key"));
            }
            let key = parser.string()?;
            parser.expect(b':', "expected `:`")?;
            members.push((key, parser.value()?));
            Ok(())
        })?;
        Ok(Value::Object(members))
    }

    fn array(&mut self) -> Result<Value<'a>, JsonError> {
        let mut items = Vec::new();
        self.items(b']', |parser| {
            items.push(parser.value()?);
            Ok(())
        })?;
        Ok(Value::Array(items))
    }

    fn literal(&mut self, word: &str, value: Value<'a>) -> Result<Value<'a>, JsonError> {
        if self.bytes[self.at..].starts_with(word.as_bytes()) {
            self.at += word.len();
            Ok(value)
        } else {
            Err(self.error("expected a JSON value"))
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while let Some(b'0'..=b'9') = self.peek() {
            self.at += 1;
        }
        self.at - start
    }

    fn number(&mut self) -> Result<Value<'a>, JsonError> {
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        let int_start = self.at;
        match self.digits() {
            0 => return Err(self.error("expected a digit")),
            1 => {}
            _ if self.bytes[int_start] == b'0' => {
                return Err(self.error("leading zeros are not allowed"));
            }
            _ => {}
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            if self.digits() == 0 {
                return Err(self.error("expected a digit after `.`"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            if self.digits() == 0 {
                return Err(self.error("expected a digit in the exponent"));
            }
        }
        Ok(Value::Number)
    }

    /// Reads a string literal; borrows it when it has no escapes.
    fn string(&mut self) -> Result<Cow<'a, str>, JsonError> {
        self.at += 1; // the opening quote
        let start = self.at;
        let mut owned: Option<String> = None;
        let mut clean = start;
        loop {
            let Some(byte) = self.peek() else {
                return Err(self.error("unterminated string"));
            };
            match byte {
                b'"' => {
                    let text = &self.text[clean..self.at];
                    self.at += 1;
                    return Ok(match owned {
                        None => Cow::Borrowed(text),
                        Some(mut out) => {
                            out.push_str(text);
                            Cow::Owned(out)
                        }
                    });
                }
                b'\\' => {
                    let out = owned.get_or_insert_with(String::new);
                    out.push_str(&self.text[clean..self.at]);
                    self.at += 1;
                    let unescaped = self.escape()?;
                    out.push(unescaped);
                    clean = self.at;
                }
                0..=0x1f => return Err(self.error("control character in string")),
                _ => self.at += 1,
            }
        }
    }

    /// Reads the escape after a backslash.
    fn escape(&mut self) -> Result<char, JsonError> {
        let Some(byte) = self.peek() else {
            return Err(self.error("unterminated string"));
        };
        self.at += 1;
        Ok(match byte {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let first = self.hex4()?;
                let code = if (0xd800..0xdc00).contains(&first)
                    && self.bytes[self.at..].starts_with(b"\\u")
                {
                    let resume = self.at;
                    self.at += 2;
                    let second = self.hex4()?;
                    if (0xdc00..0xe000).contains(&second) {
                        0x10000 + ((first - 0xd800) << 10) + (second - 0xdc00)
                    } else {
                        self.at = resume; // not a pair: read the next escape on its own
                        first
                    }
                } else {
                    first
                };
                char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER)
            }
            _ => {
                self.at -= 1;
                return Err(self.error("invalid escape"));
            }
        })
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let mut code = 0;
        for _ in 0..4 {
            let digit = match self.peek() {
                Some(byte @ b'0'..=b'9') => byte - b'0',
                Some(byte @ b'a'..=b'f') => byte - b'a' + 10,
                Some(byte @ b'A'..=b'F') => byte - b'A' + 10,
                _ => return Err(self.error("invalid \\u escape")),
            };
            code = code * 16 + u32::from(digit);
            self.at += 1;
        }
        Ok(code)
    }
}

#[cfg(any(test, feature = "serde"))]
pub mod oracle;
#[cfg(test)]
mod tests;
