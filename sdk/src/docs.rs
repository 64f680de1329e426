//! Shared documents for Rust apps (feature `yjs`; docs/PROTOCOL.md, "Documents"): a Yjs
//! document (`yrs`, the Rust port of Yjs: the same update bytes) kept in step with a room, the
//! counterpart of the npm package's `ChorusProvider`. Sans-IO, like the client core: the app
//! passes in the room's events and the server's answer to [`SharedDoc::state_path`], and
//! publishes the bodies this hands out (through its client's outbox, so offline edits wait
//! there and survive a restart).
//!
//! The update event's shape (`{"type":"yjs","doc","update"}`) and its check are here too, and
//! the server uses them ([`read_update`]), so both sides read one definition.

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Doc, ReadTxn, StateVector, Transact, Update};

use crate::wire::{DocState, EventId, Json, json};

/// The `type` of a document update event.
pub const DOC_EVENT_TYPE: &str = "yjs";

/// The transaction origin of updates that came from the room (not to be published again).
const REMOTE: &str = "chorus-remote";

/// A checked document update: its document and the update's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocUpdate {
    /// The document's name.
    pub doc: EventId,
    /// The Yjs update (v1 encoding).
    pub update: Vec<u8>,
}

/// Reads an event body: `Ok(None)` for any event that is not a document update, `Ok(Some)` for
/// a valid one, and the reason for a `yjs` event that is malformed (no `doc` name, no `update`,
/// not base64, not a Yjs update).
pub fn read_update(body: &Json) -> Result<Option<DocUpdate>, String> {
    let Some(update) = read_stored(body)? else {
        return Ok(None);
    };
    check_update(&update.update)?;
    Ok(Some(update))
}

/// Like [`read_update`] without decoding the update itself: for events the server stored,
/// which it checked when they were published (their update is decoded once, where it is
/// applied).
pub fn read_stored(body: &Json) -> Result<Option<DocUpdate>, String> {
    read_fields(body, stored_fields)
}

/// [`read_stored`] for document `name` alone: another document's update is not decoded.
pub fn read_stored_of(body: &Json, name: &EventId) -> Result<Option<DocUpdate>, String> {
    read_fields(body, |doc, fields| {
        (doc == *name)
            .then(|| stored_fields(doc, fields))
            .transpose()
    })
    .map(Option::flatten)
}

fn stored_fields(doc: EventId, fields: &json::Fields<'_, '_>) -> Result<DocUpdate, String> {
    let update: String = fields.get("update").map_err(shape_error)?;
    Ok(DocUpdate {
        doc,
        update: decode(&update, "the update")?,
    })
}

/// The document a stored update event is for, without copying or decoding its update; `None`
/// for any other event (and a malformed one, which the server never stores).
pub fn stored_doc(body: &Json) -> Option<EventId> {
    read_fields(body, |doc, _| Ok(doc)).ok().flatten()
}

/// A `yjs` event's document name, and `then` with its other fields; `Ok(None)` for any other
/// event.
fn read_fields<T>(
    body: &Json,
    then: impl FnOnce(EventId, &json::Fields<'_, '_>) -> Result<T, String>,
) -> Result<Option<T>, String> {
    if body.event_type().as_deref() != Some(DOC_EVENT_TYPE) {
        return Ok(None);
    }
    let node = json::parse(body.as_text()).map_err(shape_error)?;
    let fields = node.object().map_err(shape_error)?;
    let doc: String = fields.get("doc").map_err(shape_error)?;
    let doc =
        EventId::parse(doc).map_err(|err| format!("the document name is not valid: {err}"))?;
    then(doc, &fields).map(Some)
}

/// Why a `yjs` event's body does not have the event's shape.
fn shape_error(err: impl std::fmt::Display) -> String {
    format!("a \"yjs\" event's body is {{\"type\":\"yjs\",\"doc\":NAME,\"update\":BASE64}}: {err}")
}

/// Bytes from base64 text (standard alphabet, padded); the error names `what` they were.
pub fn decode(text: &str, what: &str) -> Result<Vec<u8>, String> {
    BASE64
        .decode(text)
        .map_err(|err| format!("{what} is not base64 (standard alphabet, padded): {err}"))
}

/// A base64 Yjs update (v1), checked to decode.
pub fn decode_update(text: &str) -> Result<Vec<u8>, String> {
    let bytes = decode(text, "the update")?;
    check_update(&bytes)?;
    Ok(bytes)
}

/// Whether `bytes` decode as a Yjs update (v1).
fn check_update(bytes: &[u8]) -> Result<(), String> {
    Update::decode_v1(bytes)
        .map(drop)
        .map_err(|err| format!("the update is not a Yjs update (v1 encoding): {err}"))
}

/// Base64 text of bytes (updates and state vectors in JSON).
pub fn encode(bytes: &[u8]) -> String {
    BASE64.encode(bytes)
}

/// The body of the event that carries `update` of document `doc`.
pub fn update_body(doc: &EventId, update: &[u8]) -> Json {
    let mut out = json::Writer::default();
    let mut object = out.object();
    object
        .str("type", DOC_EVENT_TYPE)
        .str("doc", doc.as_str())
        .str("update", &encode(update));
    object.end();
    Json::from_text(out.finish()).expect("the writer makes JSON")
}

/// A Yjs document kept in step with one document of a room (see the module doc).
pub struct SharedDoc {
    name: EventId,
    doc: Doc,
    /// Updates made here (not applied from the room), waiting for [`SharedDoc::take_local`].
    local: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl std::fmt::Debug for SharedDoc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedDoc")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl SharedDoc {
    /// Document `name` of a room, empty until the room's events or the server's answer fill it.
    /// Its text offsets count UTF-16 code units, as Yjs does in JavaScript (so an index means the
    /// same on both sides); its client id is random.
    pub fn new(name: EventId) -> SharedDoc {
        let options = yrs::Options {
            offset_kind: yrs::OffsetKind::Utf16,
            ..yrs::Options::default()
        };
        SharedDoc::with_doc(name, Doc::with_options(options))
    }

    /// The same with a document of the app's (its client id, options, root types).
    pub fn with_doc(name: EventId, doc: Doc) -> SharedDoc {
        let local = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&local);
        let remote = yrs::Origin::from(REMOTE);
        doc.observe_update_v1("chorus", move |txn, event| {
            if txn.origin() != Some(&remote) {
                sink.lock()
                    .expect("local updates")
                    .push(event.update.clone());
            }
        })
        .expect("no transaction is open on a new document");
        SharedDoc { name, doc, local }
    }

    /// The document's name in the room.
    pub fn name(&self) -> &EventId {
        &self.name
    }

    /// The Yjs document: read it, and edit it in transactions as usual.
    pub fn doc(&self) -> &Doc {
        &self.doc
    }

    /// Applies a room event's body (a stored event, or an own publish shown at once or restored
    /// from the outbox) when it is an update of this document; `true` when it was one. Applying
    /// an update twice changes nothing.
    pub fn apply_event(&self, body: &Json) -> bool {
        match read_stored(body) {
            Ok(Some(update)) if update.doc == self.name => {
                self.apply(&update.update);
                true
            }
            _ => false,
        }
    }

    fn apply(&self, update: &[u8]) {
        if let Ok(update) = Update::decode_v1(update) {
            // A malformed update never reaches a client (the server checks them).
            let _ = self.doc.transact_mut_with(REMOTE).apply_update(update);
        }
    }

    /// The path and query of the server read in `room`
    /// (`/v1/rooms/{room}/docs/{doc}?sv=…`): with this document's state vector, so the answer
    /// holds only what it lacks. A native app sends it with `native::HttpApi::request("GET",
    /// …)` and its token, and passes the answer (a [`DocState`]) to [`SharedDoc::apply_state`].
    pub fn state_path(&self, room: &crate::wire::RoomName) -> String {
        let sv = self.doc.transact().state_vector().encode_v1();
        crate::text::concat(&[
            "/v1/rooms/",
            &crate::wire::percent_encode(room.as_str()),
            "/docs/",
            &crate::wire::percent_encode(self.name.as_str()),
            "?sv=",
            &crate::wire::uri_component(&encode(&sv)),
        ])
    }

    /// Takes the server's answer: applies what this document lacked, and returns the body to
    /// publish when this document has what the server lacks (edits from before a restart).
    pub fn apply_state(&self, state: &DocState) -> Result<Option<Json>, String> {
        self.apply(&decode_update(&state.update)?);
        let theirs = BASE64
            .decode(&state.state_vector)
            .ok()
            .and_then(|bytes| StateVector::decode_v1(&bytes).ok())
            .ok_or("the server's state vector is not valid")?;
        let txn = self.doc.transact();
        let ahead = txn
            .state_vector()
            .iter()
            .any(|(client, clock)| *clock > theirs.get(client));
        Ok(ahead.then(|| update_body(&self.name, &txn.encode_state_as_update_v1(&theirs))))
    }

    /// The local edits made since the last call, as one event body to publish (`None`: none).
    pub fn take_local(&self) -> Option<Json> {
        let updates = std::mem::take(&mut *self.local.lock().expect("local updates"));
        if updates.is_empty() {
            return None;
        }
        let merged = yrs::merge_updates_v1(&updates).expect("the document's own updates decode");
        Some(update_body(&self.name, &merged))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::{GetString, Text};

    fn name() -> EventId {
        EventId::parse("notes").unwrap()
    }

    fn text(doc: &SharedDoc) -> String {
        let text = doc.doc().get_or_insert_text("body");
        text.get_string(&doc.doc().transact())
    }

    fn insert(doc: &SharedDoc, at: u32, words: &str) {
        let text = doc.doc().get_or_insert_text("body");
        text.insert(&mut doc.doc().transact_mut(), at, words);
    }

    #[test]
    fn a_stored_update_is_read_for_its_own_document_only() {
        let body = update_body(&name(), &[0, 0]);
        let read = read_stored_of(&body, &name())
            .unwrap()
            .expect("its document");
        assert_eq!((read.doc, read.update), (name(), vec![0, 0]));
        let other = EventId::parse("other").unwrap();
        assert!(read_stored_of(&body, &other).unwrap().is_none());
        // Another document's update is not decoded: bad base64 there is no error.
        let bad =
            Json::from_text(r#"{"type":"yjs","doc":"other","update":"!!"}"#.to_owned()).unwrap();
        assert!(read_stored_of(&bad, &name()).unwrap().is_none());
        assert!(read_stored_of(&bad, &other).is_err());
    }

    #[test]
    fn local_edits_go_out_once_and_remote_ones_never() {
        let (ana, ben) = (SharedDoc::new(name()), SharedDoc::new(name()));
        insert(&ana, 0, "hello ");
        insert(&ana, 6, "world");
        let body = ana.take_local().expect("two edits, one body");
        assert_eq!(ana.take_local(), None, "taken once");
        assert_eq!(body.event_type().as_deref(), Some("yjs"));
        assert!(ben.apply_event(&body));
        assert!(ben.apply_event(&body), "again: harmless");
        assert_eq!(text(&ben), "hello world");
        assert_eq!(
            ben.take_local(),
            None,
            "what came from the room is not published again"
        );
        let other = SharedDoc::new(EventId::parse("other").unwrap());
        assert!(!other.apply_event(&body), "another document's update");
        assert!(!ben.apply_event(&Json::from_text(r#"{"type":"chat"}"#).unwrap()));
    }

    #[test]
    fn the_server_answer_fills_the_document_and_what_it_lacks_is_published() {
        let (server, ana) = (SharedDoc::new(name()), SharedDoc::new(name()));
        insert(&server, 0, "stored ");
        insert(&ana, 0, "offline ");
        let txn = server.doc().transact();
        let state = DocState {
            room: crate::wire::RoomName::parse("r").unwrap(),
            doc: name(),
            epoch: 1,
            seq: 3,
            update: encode(&txn.encode_state_as_update_v1(&StateVector::default())),
            state_vector: encode(&txn.state_vector().encode_v1()),
        };
        drop(txn);
        let publish = ana
            .apply_state(&state)
            .unwrap()
            .expect("ana has what the server lacks");
        assert!(server.apply_event(&publish));
        assert_eq!(text(&server), text(&ana));
        assert!(text(&ana).contains("stored") && text(&ana).contains("offline"));
        let room = crate::wire::RoomName::parse("doc:1").unwrap();
        assert!(
            ana.state_path(&room)
                .starts_with("/v1/rooms/doc%3A1/docs/notes?sv=")
        );
    }

    #[test]
    fn malformed_updates_are_refused_with_the_reason() {
        let body = |text: &str| Json::from_text(text).unwrap();
        assert_eq!(read_update(&body(r#"{"type":"chat","x":1}"#)), Ok(None));
        let missing = read_update(&body(r#"{"type":"yjs","doc":"n"}"#)).unwrap_err();
        assert!(missing.contains("update"), "{missing}");
        let bad_name = read_update(&body(r#"{"type":"yjs","doc":"a b","update":"AA=="}"#));
        assert!(bad_name.unwrap_err().contains("document name"));
        let not_base64 = read_update(&body(r#"{"type":"yjs","doc":"n","update":"@@"}"#));
        assert!(not_base64.unwrap_err().contains("base64"));
        let not_yjs = read_update(&body(r#"{"type":"yjs","doc":"n","update":"////"}"#));
        assert!(not_yjs.unwrap_err().contains("not a Yjs update"));
        // A stored event's document is read without its update: the server checked that.
        assert_eq!(
            stored_doc(&body(r#"{"type":"yjs","doc":"n","update":"@@"}"#)),
            Some(EventId::parse("n").unwrap())
        );
        assert_eq!(stored_doc(&body(r#"{"type":"chat","doc":"n"}"#)), None);
        assert_eq!(stored_doc(&body(r#"{"type":"yjs","doc":"a b"}"#)), None);
    }
}
