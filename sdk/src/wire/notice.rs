//! Notices: what an application's backend tells connections outside any room (a maintenance
//! warning to everyone, a note to one user or to one tab), and the event type that the
//! activity feed filters history by.
//!
//! Plain data: the JSON shapes are in `shapes.rs`; this module must never read or write JSON
//! by hand, except [`Json::event_type`], which reads one member of an opaque body.

use super::Json;

/// `notice`: a message from the application's backend to this connection. Not a room event:
/// never stored, never replayed; a connection that is not open when it is sent never gets it.
#[derive(Clone, Debug, PartialEq)]
pub struct Notice {
    /// The notice's id (given by the backend, or made by the server): the same notice reaches
    /// a connection once on a WebSocket; a polling session on several nodes may see it twice.
    pub id: String,
    /// How it should be shown: `info`, `warning` or `critical` (the server sends no other).
    pub level: String,
    /// The content (any JSON), exactly as the backend sent it.
    pub body: Json,
    /// When the server accepted it, in milliseconds since the Unix epoch.
    pub at: u64,
}

/// `POST /v1/notices`, `/v1/users/{user}/notices`, `/v1/connections/{conn}/notices` (backend
/// API key): what to send.
#[derive(Clone, Debug, PartialEq)]
pub struct SendNotice {
    /// The notice's id (1–64 letters, digits and `. _ - :`); the server makes one when absent.
    pub id: Option<String>,
    /// `info` (the default), `warning` or `critical`.
    pub level: Option<String>,
    /// The content.
    pub body: Json,
}

/// The answer to a notice request.
#[derive(Clone, Debug, PartialEq)]
pub struct NoticeSent {
    /// The notice's id.
    pub id: String,
    /// Connections on the answering node it was handed to (the other nodes' are not counted).
    pub delivered: u64,
}

/// The levels a notice may have, the default first.
pub const NOTICE_LEVELS: [&str; 3] = ["info", "warning", "critical"];

/// The longest event type the activity feed keeps and filters by, in bytes.
pub const MAX_EVENT_TYPE_BYTES: usize = 64;

impl Json {
    /// The event type of a body: its top-level `"type"` member when the body is an object
    /// and that member is a string of 1 to [`MAX_EVENT_TYPE_BYTES`] bytes (the first, when it
    /// is given twice); `None` otherwise. What `GET /v1/rooms/{room}/events?type=` matches.
    ///
    /// ```
    /// use chorus_sdk::wire::Json;
    ///
    /// let body = Json::from_text(r#"{"type":"comment","text":"hi"}"#).unwrap();
    /// assert_eq!(body.event_type().as_deref(), Some("comment"));
    /// assert_eq!(Json::from_text(r#"{"type":7}"#).unwrap().event_type(), None);
    /// assert_eq!(Json::from_text(r#""comment""#).unwrap().event_type(), None);
    /// ```
    pub fn event_type(&self) -> Option<String> {
        let node = super::json::parse(self.as_text()).ok()?;
        let fields = node.object().ok()?;
        let kind = fields.node("type")?.str().ok()?;
        (!kind.is_empty() && kind.len() <= MAX_EVENT_TYPE_BYTES).then(|| kind.to_owned())
    }
}
